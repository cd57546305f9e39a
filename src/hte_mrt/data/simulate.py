r"""Simulated micro-randomized trials with a known causal excursion effect.

:class:`MRTSimulation` generates seeded, reproducible MRTs (vectorized over participants, one
loop over decision points) for estimator validation, Bayesian-model recovery and
simulation-based power. Participant i = 0..n-1 sits in cluster k(i) = i mod K; decision points
are t = 0..T-1 with ``tfrac`` = t / T.

Data-generating process
-----------------------
Latent effects (independent, mean zero)::

    b_i ~ N(0, sd_participant^2)     c_k ~ N(0, sd_cluster^2)          (intercepts)
    u_i ~ N(0, sd_slope^2)           v_k ~ N(0, sd_cluster_slope^2)    (effect deviations)

At each decision point t, given the state S_t and the previous treatment A_{t-1} (A_{-1} = 0)::

    I_t ~ Bernoulli(q_t),  q_t = availability_after_treatment if A_{t-1} = 1 else availability
    p_t = prob                (constant)   or   prob(S_t, tfrac_t, A_{t-1})   (policy function)
    A_t ~ Bernoulli(p_t) if I_t = 1, else A_t = 0
    beta_t = beta0 + beta1 tfrac_t + beta2 S_t                        (column ``beta_true``)
    tau_it = beta_t + u_i + v_k                                       (column ``tau``)
    Y_{t+1} = mu0 + b_i + c_k + g(S_t, tfrac_t) + A_t tau_it + e_{t+1}  (column ``y``, row t)
    e_{t+1} = ar e_t + sqrt(1 - ar^2) sd_error z_{t+1}                (stationary AR(1))

The control part g (``baseline``) may be nonlinear; by default
g(s, f) = 0.5 tanh(s) + 0.3 cos(2 pi f). The time-varying covariate S evolves as::

    endogenous:  S_{t+1} = s_ar S_t + s_treatment A_t + s_outcome (Ytilde_{t+1} - mu0)
                           + sd_s w_{t+1},      Ytilde_{t+1} = Y_{t+1} - A_t (u_i + v_k)
    exogenous:   S_{t+1} = s_ar S_t + sd_s w_{t+1}

with S_0 ~ N(0, sd_s^2 / (1 - s_ar^2)). So with ``endogenous=True`` S_t depends on the past
treatment (directly and through the past outcome), on the past outcome, on b_i and c_k and on the
serially correlated error. The feedback uses Ytilde, the past outcome with the participant's and
cluster's effect *deviation* removed, so that no part of the history (S, I, A) carries
information on u_i or v_k; see the estimand below for why.

Estimand
--------
WCLS with moderators ``"~ tfrac + S"`` targets the marginal causal excursion effect

.. math::

    \beta(t; s) = E[ Y_{i,t+1}(1) - Y_{i,t+1}(0) \mid S_{it} = s, I_{it} = 1 ]
                = \beta_0 + \beta_1 t / T + \beta_2 s,

marginal over participants (b, c, u, v), errors and past randomizations under the trial's
policy. The equality is exact: given the history, Y_{t+1}(1) - Y_{t+1}(0) = tau_it =
beta_t + u_i + v_k, and (S_t, I_t) are functions of b, c, the errors and the randomizations
only, which are independent of (u_i, v_k); hence E[u_i + v_k | S_t, I_t = 1] = 0. (Feeding the
raw past outcome back into S would make S_t informative about u_i, so E[u_i | S_t] would be a
nonlinear function of S_t and the marginal effect would no longer be linear in S.) Because the
true effect is exactly linear in f(S_t) = (1, tfrac_t, S_t), WCLS estimates (beta0, beta1, beta2)
for any control formula (g is nonlinear and the errors are autocorrelated on purpose) and any
numerator probability depending on S_t only. With ``sd_slope = sd_cluster_slope = 0`` the
effect is also the conditional (participant-specific) one; otherwise the participant-specific
effect is tau_it, i.e. coefficients (beta0 + u_i + v_k, beta1, beta2).
Lagged effects (A_t on Y_{t+2}, through S_{t+1}) exist when ``endogenous`` but are not linear
in general: :meth:`MRTSimulation.true_beta` covers the proximal effect (lag 0) only.

Random numbers
--------------
``simulate(seed)`` draws, in a fixed order, all standard-normal / uniform innovations for the
given (n_participants, n_decisions, n_clusters) before scaling them by the configured standard
deviations; so two configurations differing only in effect sizes, standard deviations or
probabilities share common random numbers for the same seed (smooth power curves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hte_mrt.data.checks import check_bool, check_int, check_number, check_seed
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DesignError

ProbFn = Callable[[np.ndarray, float, np.ndarray], Any]
"""Randomization policy ``prob(S_t, tfrac_t, A_prev) -> P(A_t = 1)`` (arrays over participants)."""
BaselineFn = Callable[[np.ndarray, float], Any]
"""Control part ``g(S_t, tfrac_t)`` of the outcome mean (arrays over participants)."""

SeedLike = int | np.random.SeedSequence | np.random.Generator | None

MODERATORS = "~ tfrac + S"
"""Moderator formula whose WCLS coefficients equal :meth:`MRTSimulation.true_beta`."""

COLUMNS = (
    "id",  # participant 0..n-1
    "cluster",  # cluster k(i) = i mod n_clusters
    "t",  # decision point 0..T-1
    "day",  # t // decisions_per_day
    "tfrac",  # t / T
    "A",  # treatment 0/1 (0 when unavailable)
    "prob",  # P(A_t = 1 | H_t) under the policy (also on unavailable rows)
    "avail",  # availability I_t 0/1
    "S",  # time-varying covariate S_t (moderator)
    "y",  # proximal outcome Y_{t+1}
    "beta_true",  # marginal excursion effect beta0 + beta1 tfrac + beta2 S_t
    "tau",  # individual effect beta_true + u_i + v_k = Y_{t+1}(1) - Y_{t+1}(0)
    "b",  # participant random intercept b_i
    "c",  # cluster random intercept c_k
    "u",  # participant effect deviation u_i
    "v",  # cluster effect deviation v_k
)


def default_baseline(s: np.ndarray, tfrac: float) -> np.ndarray:
    """g(s, f) = 0.5 tanh(s) + 0.3 cos(2 pi f): bounded, nonlinear in S and in time."""
    return 0.5 * np.tanh(s) + 0.3 * np.cos(2.0 * np.pi * tfrac)


@dataclass(frozen=True)
class MRTSimulation:
    """A micro-randomized trial generator with a known causal excursion effect.

    See the module docstring for the data-generating process and the exact estimand.

    Parameters
    ----------
    n_participants, n_decisions
        Participants n and decision points per participant T (t = 0..T-1).
    decisions_per_day
        Only for the ``day`` column (t // decisions_per_day).
    prob
        P(A_t = 1) on available decision points: a constant in (0, 1), or a policy
        ``prob(S_t, tfrac_t, A_prev) -> array`` (vectorized over participants).
    availability, availability_after_treatment
        P(I_t = 1); the second, if given, applies when A_{t-1} = 1 (availability depending on
        past treatment).
    beta
        (beta0, beta1, beta2) of the effect beta0 + beta1 tfrac + beta2 S_t.
    endogenous
        S depends on past treatment and past outcome (True) or is an exogenous AR(1) (False).
    s_ar, s_treatment, s_outcome, sd_s
        Dynamics of S (see module docstring). Keep
        ``s_ar + s_outcome * (0.5 + abs(beta2)) < 1`` for a stable S with the default baseline.
    intercept, baseline
        mu0 and the control part g(S_t, tfrac_t) of the outcome mean.
    sd_participant, sd_cluster, n_clusters
        Random intercepts b_i and c_k; participants are assigned to clusters i mod n_clusters.
    sd_slope, sd_cluster_slope
        Mean-zero random treatment-effect deviations u_i and v_k.
    sd_error, ar
        Marginal residual sd and within-participant AR(1) correlation of the errors.
    slope_feedback
        Feed the raw outcome (including the participant's own response A_t u_i) back into S:
        S becomes informative about u_i (see :meth:`true_beta`).

    Examples
    --------
    A small trial, and WCLS recovering its known effect (within sampling error):

    >>> import hte_mrt as hm
    >>> sim = hm.MRTSimulation(n_participants=30, n_decisions=50)
    >>> sim.true_beta()
    {'Intercept': 0.3, 'tfrac': -0.2, 'S': 0.15}
    >>> data = sim.mrt_data(seed=1)
    >>> data
    <MRTData: 30 participants, 1500 rows, binary treatment 'A', outcome 'y'>
    >>> hm.wcls(data, moderators="~ tfrac + S", controls="~ tfrac + S").params.round(2).tolist()
    [0.24, -0.22, 0.09]
    """

    n_participants: int = 30
    n_decisions: int = 100
    decisions_per_day: int = 5
    prob: float | ProbFn = 0.5
    availability: float = 0.8
    availability_after_treatment: float | None = None
    beta: tuple[float, float, float] = (0.3, -0.2, 0.15)
    endogenous: bool = True
    s_ar: float = 0.5
    s_treatment: float = 0.3
    s_outcome: float = 0.2
    sd_s: float = 1.0
    intercept: float = 0.0
    baseline: BaselineFn = default_baseline
    sd_participant: float = 0.5
    sd_cluster: float = 0.0
    n_clusters: int = 1
    sd_slope: float = 0.0
    sd_cluster_slope: float = 0.0
    sd_error: float = 1.0
    ar: float = 0.0
    slope_feedback: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise DesignError(f"MRTSimulation: {msg}")

        def typed(check, *args, **kw):
            try:
                return check(*args, **kw)
            except DesignError as e:
                raise DesignError(f"MRTSimulation: {e}") from None

        for name in ("n_participants", "n_decisions", "decisions_per_day", "n_clusters"):
            typed(check_int, name, getattr(self, name), 1)
        need(
            1 <= int(self.n_clusters) <= int(self.n_participants),
            "n_clusters must lie between 1 and n_participants.",
        )
        if not callable(self.prob):
            typed(check_number, "prob", self.prob, low=0.0, high=1.0, example="0.5")
        for name in ("availability", "availability_after_treatment"):
            q = getattr(self, name)
            if q is not None:
                typed(check_number, name, q, low=0.0, high=1.0, high_open=False, example="0.8")
        if isinstance(self.beta, str) or not hasattr(self.beta, "__len__"):
            need(False, f"beta must be (beta0, beta1, beta2), got {self.beta!r}.")
        need(len(self.beta) == 3, f"beta must be (beta0, beta1, beta2), got {self.beta!r}.")
        for k, b in enumerate(self.beta):
            typed(check_number, f"beta[{k}]", b)
        for name in ("endogenous", "slope_feedback"):
            typed(check_bool, name, getattr(self, name))
        for name in ("s_treatment", "s_outcome", "intercept"):
            typed(check_number, name, getattr(self, name), example="0.5")
        for name in (
            "sd_s",
            "sd_participant",
            "sd_cluster",
            "sd_slope",
            "sd_cluster_slope",
            "sd_error",
        ):
            typed(check_number, name, getattr(self, name), low=0.0, low_open=False,
                  example="1.0 (a standard deviation, 0 or more)")  # fmt: skip
        for name in ("ar", "s_ar"):
            typed(check_number, name, getattr(self, name), low=-1.0, high=1.0, example="0.5")
        if not callable(self.baseline):
            need(
                False,
                f"baseline must be a function baseline(s, tfrac) -> array (the outcome's "
                f"control part), got {self.baseline!r}; leave it out for the default, or pass "
                "e.g. baseline=lambda s, tfrac: 0.5 * s.",
            )

    # ------------------------------------------------------------------ truth
    def true_beta(self) -> dict[str, float]:
        """Coefficients of the marginal proximal excursion effect for ``moderators="~ tfrac + S"``.

        With ``slope_feedback=True`` these are the effects *conditional* on the participant's
        random slope u_i: S then carries information about u_i (the state feeds back the
        participant's own response), so the marginal effect given S differs from them. This is
        the endogenous-covariate scenario in which random-effects models and WCLS disagree
        (Qian, Klasnja & Murphy 2020).

        beta(t; s) = E[Y_{t+1}(1) - Y_{t+1}(0) | S_t = s, I_t = 1] = beta0 + beta1 t/T + beta2 s,
        exactly (see the module docstring), keyed by WCLS term names
        ``{"Intercept": beta0, "tfrac": beta1, "S": beta2}``.
        """
        b0, b1, b2 = (float(x) for x in self.beta)
        return {"Intercept": b0, "tfrac": b1, "S": b2}

    def true_effect(self, tfrac: Any, s: Any) -> np.ndarray:
        """beta(t; s) = beta0 + beta1 tfrac + beta2 s (broadcast)."""
        b0, b1, b2 = (float(x) for x in self.beta)
        args = {}
        for name, v in (("tfrac", tfrac), ("s", s)):
            try:
                args[name] = np.asarray(v, dtype=float)
            except (TypeError, ValueError):
                raise DesignError(
                    f"MRTSimulation.true_effect: {name} must be a number or an array of numbers "
                    f"(tfrac = t/T in [0, 1], s the state), got {v!r}."
                ) from None
        return b0 + b1 * args["tfrac"] + b2 * args["s"]

    # ------------------------------------------------------------------ simulation
    def _prob(self, s: np.ndarray, tfrac: float, a_prev: np.ndarray) -> np.ndarray:
        n = s.shape[0]
        if not callable(self.prob):
            return np.full(n, float(self.prob))
        p = np.broadcast_to(np.asarray(self.prob(s, tfrac, a_prev), dtype=float), (n,))
        if not np.all((p > 0.0) & (p < 1.0)):
            raise DesignError(
                "MRTSimulation: the prob(S, tfrac, A_prev) policy returned values outside (0, 1) "
                f"at tfrac={tfrac:g} (range {np.nanmin(p):g}..{np.nanmax(p):g})."
            )
        return p.copy()

    def simulate(self, seed: SeedLike = None) -> pd.DataFrame:
        """One trial as a long frame (n * T rows) with the columns in :data:`COLUMNS`.

        Row (i, t) holds the state S_t, availability, probability and treatment at decision t and
        the proximal outcome y = Y_{t+1}. ``seed`` is anything ``np.random.default_rng`` takes.
        """
        check_seed(seed)
        rng = np.random.default_rng(seed)
        n, T, K = int(self.n_participants), int(self.n_decisions), int(self.n_clusters)
        # --- all innovations, in a fixed order (common random numbers across configurations)
        z_b, z_u = rng.standard_normal(n), rng.standard_normal(n)
        z_c, z_v = rng.standard_normal(K), rng.standard_normal(K)
        z_s0, z_e0 = rng.standard_normal(n), rng.standard_normal(n)
        u_avail = rng.random((T, n))
        u_treat = rng.random((T, n))
        z_err = rng.standard_normal((T, n))
        z_state = rng.standard_normal((T, n))

        cl = np.arange(n) % K
        b = self.sd_participant * z_b
        u = self.sd_slope * z_u
        c = (self.sd_cluster * z_c)[cl]
        v = (self.sd_cluster_slope * z_v)[cl]
        dev = u + v  # effect deviation of participant i (mean zero, independent of history)
        level = self.intercept + b + c
        b0, b1, b2 = (float(x) for x in self.beta)
        q0 = float(self.availability)
        q1 = q0 if self.availability_after_treatment is None else self.availability_after_treatment
        rho, ar, sd_e = float(self.s_ar), float(self.ar), float(self.sd_error)
        innov_sd = np.sqrt(1.0 - ar**2) * sd_e

        shape = (T, n)
        S, P, Y = np.empty(shape), np.empty(shape), np.empty(shape)
        A, avl = np.zeros(shape, dtype=np.int8), np.zeros(shape, dtype=np.int8)
        beta_t = np.empty(shape)

        s = self.sd_s / np.sqrt(1.0 - rho**2) * z_s0
        e = sd_e * z_e0  # stationary e_0
        a_prev = np.zeros(n, dtype=np.int8)
        for t in range(T):
            f = t / T
            avail = u_avail[t] < np.where(a_prev == 1, q1, q0)
            p = self._prob(s, f, a_prev)
            a = (avail & (u_treat[t] < p)).astype(np.int8)
            bt = b0 + b1 * f + b2 * s
            e = ar * e + innov_sd * z_err[t]
            mean0 = level + np.asarray(self.baseline(s, f), dtype=float)
            y = mean0 + a * (bt + dev) + e
            S[t], P[t], A[t], avl[t], Y[t], beta_t[t] = s, p, a, avail, y, bt
            if self.endogenous:
                y_tilde = y if self.slope_feedback else y - a * dev
                s = (
                    rho * s
                    + self.s_treatment * a
                    + self.s_outcome * (y_tilde - self.intercept)
                    + self.sd_s * z_state[t]
                )
            else:
                s = rho * s + self.sd_s * z_state[t]
            a_prev = a

        tt = np.arange(T)

        def long(x: np.ndarray) -> np.ndarray:  # (T, n) -> participant-major (n * T,)
            return x.T.reshape(-1)

        def per_id(x: np.ndarray) -> np.ndarray:
            return np.repeat(x, T)

        frame = pd.DataFrame(
            {
                "id": per_id(np.arange(n)),
                "cluster": per_id(cl),
                "t": np.tile(tt, n),
                "day": np.tile(tt // int(self.decisions_per_day), n),
                "tfrac": np.tile(tt / T, n),
                "A": long(A).astype(np.int64),
                "prob": long(P),
                "avail": long(avl).astype(np.int64),
                "S": long(S),
                "y": long(Y),
                "beta_true": long(beta_t),
                "tau": long(beta_t) + per_id(dev),
                "b": per_id(b),
                "c": per_id(c),
                "u": per_id(u),
                "v": per_id(v),
            }
        )
        return frame

    def mrt_data(self, seed: SeedLike = None) -> MRTData:
        """One simulated trial as validated :class:`MRTData`.

        Roles: id ``id``, time ``t``, treatment ``A``, outcome ``y``, availability ``avail``,
        cluster ``cluster`` (only when n_clusters > 1); prob is the constant when ``prob`` is a
        number (so WCLS' default numerator applies) and the ``prob`` column otherwise.
        """
        return self.to_mrt_data(self.simulate(seed))

    def to_mrt_data(self, frame: pd.DataFrame) -> MRTData:
        """Wrap a frame from :meth:`simulate` (possibly modified) as :class:`MRTData`."""
        prob: float | str = "prob" if callable(self.prob) else float(self.prob)
        return MRTData(
            frame,
            id="id",
            time="t",
            treatment="A",
            outcome="y",
            prob=prob,
            availability="avail",
            cluster="cluster" if int(self.n_clusters) > 1 else None,
        )

    def replicates(self, n_reps: int, seed: int | np.random.SeedSequence) -> Iterator[MRTData]:
        """``n_reps`` independent trials from ``SeedSequence(seed).spawn(n_reps)``."""
        check_int("n_reps", n_reps, 1)
        check_seed(seed)
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        for child in ss.spawn(n_reps):
            yield self.mrt_data(child)
