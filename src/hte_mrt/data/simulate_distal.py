r"""Simulated MRTs with a distal outcome and known distal / mediated excursion effects.

Two seeded generators whose true estimands are exactly what ``hm.dcee`` and ``hm.mcee`` target
(MRTAnalysis ``dcee()`` / ``mcee()``; Qian 2025, Biometrics, arXiv:2502.13500; Qian et al.
2025, arXiv:2506.20027). Both are linear-Gaussian in the time-varying part, so the truth is
computed analytically; :meth:`DistalSimulation.monte_carlo_truth` and
:meth:`MediationSimulation.monte_carlo_truth` recompute it by brute force from simulated
potential outcomes (the same simulation code with one treatment, or one mediator, set by
hand) and are what the tests compare the analytic truth with.

What the estimators target
--------------------------
Both R estimators average over *all* rows (i, t), available or not, and an unavailable
decision point contributes an effect of zero (its treatment cannot be changed). With moderator
(or effect-basis) vector f, the DCEE coefficients are

.. math::

    \beta^* = \Big(\sum_t E[f_t f_t^\top]\Big)^{-1} \sum_t E\big[I_t\, f_t\, \tau_t(H_t)\big],
    \qquad \tau_t(H_t) = E\{Y(\bar A_{t-1}, 1, \bar A_{t+1:T}) - Y(\bar A_{t-1}, 0,
    \bar A_{t+1:T}) \mid H_t\},

future (and past) treatments following the trial's randomization policy. With a constant
numerator probability this is what ``dcee(moderator_formula = ~ S)`` converges to (the IPW
term of its estimating equation has conditional mean I_t tau_t(H_t) whatever the nuisance
fits). The NDEE alpha and NIEE beta of ``mcee(time_varying_effect_form = ~ f(dp))`` are

.. math::

    \alpha^* = \Big(\sum_t f_t f_t^\top\Big)^{-1} \sum_t f_t\, E[I_t\, \mathrm{NDE}_t(H_t)],
    \qquad
    \beta^* = \Big(\sum_t f_t f_t^\top\Big)^{-1} \sum_t f_t\, E[I_t\, \mathrm{NIE}_t(H_t)],

with NDE_t = E{Y(1, M_t(0)) - Y(0, M_t(0)) | H_t} and NIE_t = E{Y(1, M_t(1)) - Y(1, M_t(0)) |
H_t}: A_t set, M_t drawn as under the stated treatment, everything after M_t (covariates,
future treatments at the policy, future mediators) evolving naturally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulaic import model_matrix

from hte_mrt.data.checks import check_int, check_seed
from hte_mrt.data.checks import check_setting as _check
from hte_mrt.data.schema import MRTData
from hte_mrt.errors import DesignError

SeedLike = int | np.random.SeedSequence | np.random.Generator | None


def default_distal_baseline(z: np.ndarray) -> np.ndarray:
    """g(z) = z + sin(2 z): the distal outcome's nonlinear dependence on the baseline covariate."""
    return z + np.sin(2.0 * z)


def _check_settings(
    obj: Any,
    c: str,
    pair: tuple[str, str],
    ar: str,
    numbers: tuple[str, ...],
    sds: tuple[str, ...],
) -> None:
    """The settings checks both simulations share: sizes, probabilities, the 2-tuple effect
    ``pair`` = (attribute, what it must be), the AR coefficient ``ar``, free ``numbers``,
    standard deviations ``sds`` and the baseline function; messages start with ``c``."""
    _check(c, "int", "n_participants", obj.n_participants, minimum=2)
    _check(c, "int", "n_decisions", obj.n_decisions, minimum=1)
    _check(c, "num", "prob", obj.prob, low=0.0, high=1.0, example="0.5")
    _check(c, "num", "availability", obj.availability, low=0.0, high=1.0,
           high_open=False, example="0.8")  # fmt: skip
    name, shape = pair
    value = getattr(obj, name)
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise DesignError(f"{c}: {name} must be {shape}, got {value!r}.")
    for k, v in enumerate(value):
        _check(c, "num", f"{name}[{k}]", v)
    _check(c, "num", ar, getattr(obj, ar), low=-1.0, high=1.0, example="0.5")
    for name in numbers:
        _check(c, "num", name, getattr(obj, name))
    for name in sds:
        _check(c, "num", name, getattr(obj, name), low=0.0, low_open=False,
               example="1.0 (a standard deviation, 0 or more)")  # fmt: skip
    if not callable(obj.baseline):
        raise DesignError(f"{c}: baseline must be a function g(z) -> array, got {obj.baseline!r}.")


def _long_columns(r: dict, n: int, T: int, prob: float, varying: tuple[str, ...]) -> dict[str, Any]:
    """The long frame's columns from one ``_run`` result ``r`` (arrays T x n): ``id``, ``dp``,
    ``A``, ``prob``, ``avail``, the time-varying columns ``varying``, ``Z``, ``Y``."""
    cols: dict[str, Any] = {
        "id": np.repeat(np.arange(n), T),
        "dp": np.tile(np.arange(1, T + 1), n),
        "A": r["A"].T.reshape(-1).astype(np.int64),
        "prob": float(prob),
        "avail": r["I"].T.reshape(-1).astype(np.int64),
    }
    for name in varying:
        cols[name] = r[name].T.reshape(-1)
    cols["Z"] = np.repeat(r["Z"], T)
    cols["Y"] = np.repeat(r["Y"], T)
    return cols


def _as_mrt_data(frame: pd.DataFrame) -> MRTData:
    return MRTData(frame, id="id", time="dp", treatment="A", outcome="Y", prob="prob",
                   availability="avail")  # fmt: skip


def _geometric(r: float, n: np.ndarray) -> np.ndarray:
    """sum_{k=1}^{n} r^{k-1} elementwise (0 for n = 0)."""
    n = np.asarray(n, dtype=float)
    if abs(r - 1.0) < 1e-12:
        return n
    return (1.0 - r**n) / (1.0 - r)


def _rhs_matrix(formula: Any, frame: pd.DataFrame, cls: str, arg: str) -> pd.DataFrame:
    if not isinstance(formula, str) or not formula.strip().startswith("~"):
        raise DesignError(
            f"{cls}: {arg} must be a one-sided formula string such as '~ 1' or '~ S', "
            f"got {formula!r}."
        )
    try:
        mm = model_matrix(formula, frame)
    except Exception as e:  # formulaic raises several types
        raise DesignError(
            f"{cls}: {arg}={formula!r} could not be evaluated on the columns "
            f"{list(frame.columns)}: {e}"
        ) from None
    return pd.DataFrame(np.asarray(mm, dtype=float), columns=list(mm.columns))


def _sandwich(F: np.ndarray, D: np.ndarray, ids: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """theta = (sum f f')^-1 sum f D over rows, and its sandwich covariance over participants."""
    bread = F.T @ F / n
    theta = np.linalg.solve(bread, F.T @ D / n)
    resid = D - F @ theta
    U = np.zeros((n, F.shape[1]))
    np.add.at(U, ids, F * resid[:, None])
    binv = np.linalg.inv(bread)
    cov = binv @ (U.T @ U / n) @ binv.T / n
    return theta, cov


def _truth_frame(names: list[str], theta: np.ndarray, se: np.ndarray | None) -> pd.DataFrame:
    out = pd.DataFrame({"term": names, "estimate": theta})
    if se is not None:
        out["se"] = se
    return out


# ============================================================================ DCEE design
@dataclass(frozen=True)
class DistalSimulation:
    r"""An MRT with a distal outcome and a known distal causal excursion effect (DCEE).

    Participant i has a baseline covariate Z_i ~ N(0, 1). At decision points t = 0..T-1
    (column ``dp`` = t + 1)::

        I_t ~ Bernoulli(availability)
        A_t ~ Bernoulli(prob) if I_t = 1, else A_t = 0
        S_{t+1} = s_ar S_t + s_treatment A_t + s_baseline Z + sd_s w_{t+1}     (endogenous)
        S_0 = s_baseline Z / (1 - s_ar) + sd_s / sqrt(1 - s_ar^2) w_0
        Y = intercept + g(Z) + sum_t [s_effect S_t + A_t (effect[0] + effect[1] S_t)] + sd_y e

    Y is measured once per participant (repeated on every row, column ``Y``). S_t is an
    endogenous time-varying covariate: treatment raises future S, which raises Y directly and
    moderates the later treatments' effects. The excursion effect of A_t (past and future
    treatments at the policy), given the history, is exactly

    .. math::

        \tau_t(H_t) = \gamma_0 + \gamma_1 S_t + \kappa (\alpha + \pi \gamma_1)
        \frac{1 - \rho^{T-1-t}}{1 - \rho}, \qquad \pi = \text{availability} \times \text{prob},

    (gamma = ``effect``, kappa = ``s_treatment``, alpha = ``s_effect``, rho = ``s_ar``): linear
    in the moderator S_t with a time-varying intercept (a treatment late in the study has less
    future to act on). :meth:`truth` gives the coefficients ``dcee`` estimates for
    ``moderators="~ 1"`` or ``"~ S"`` (see the module docstring: unavailable decision points
    count with effect 0, as in MRTAnalysis), computed from the exact first and second moments
    of S_t.

    Parameters
    ----------
    n_participants, n_decisions
        Participants n and decision points T.
    prob, availability
        Randomization probability P(A_t = 1 | I_t = 1) and availability P(I_t = 1).
    effect
        (gamma0, gamma1): the immediate effect gamma0 + gamma1 S_t of A_t on Y.
    s_ar, s_treatment, s_baseline, sd_s
        Dynamics of the endogenous covariate S.
    s_effect
        alpha: each S_t's contribution to Y.
    intercept, baseline, sd_y
        Y's intercept, its nonlinear dependence g(Z) on the baseline covariate, and its noise sd.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.DistalSimulation(n_participants=50, n_decisions=10)
    >>> data = sim.mrt_data(seed=1)
    >>> data
    <MRTData: 50 participants, 500 rows, binary treatment 'A', outcome 'Y'>
    >>> sim.truth("~ 1").round(4)
            term  estimate
    0  Intercept    0.4577
    >>> sim.truth("~ S").round(4)
            term  estimate
    0  Intercept    0.3813
    1          S    0.2385
    """

    n_participants: int = 50
    n_decisions: int = 30
    prob: float = 0.5
    availability: float = 0.8
    effect: tuple[float, float] = (0.3, 0.3)
    s_ar: float = 0.5
    s_treatment: float = 0.5
    s_baseline: float = 0.3
    sd_s: float = 1.0
    s_effect: float = 0.1
    intercept: float = 0.0
    baseline: Callable[[np.ndarray], Any] = default_distal_baseline
    sd_y: float = 1.0

    def __post_init__(self) -> None:
        _check_settings(self, "DistalSimulation", ("effect", "(gamma0, gamma1)"), "s_ar",
                        ("s_treatment", "s_baseline", "s_effect", "intercept"),
                        ("sd_s", "sd_y"))  # fmt: skip

    # ------------------------------------------------------------------ simulation core
    def _draws(self, n: int, seed: SeedLike) -> dict[str, np.ndarray]:
        check_seed(seed)
        rng = np.random.default_rng(seed)
        T = int(self.n_decisions)
        return {
            "z": rng.standard_normal(n),
            "w0": rng.standard_normal(n),
            "u_avail": rng.random((T, n)),
            "u_treat": rng.random((T, n)),
            "w": rng.standard_normal((T, n)),
            "e": rng.standard_normal(n),
        }

    def _run(self, d: dict[str, np.ndarray], force: tuple[int, int] | None = None) -> dict:
        """One trial from the draws; ``force=(t, a)`` sets A_t = a where available."""
        T = int(self.n_decisions)
        n = d["z"].shape[0]
        rho, kap, lam, sd_s = self.s_ar, self.s_treatment, self.s_baseline, self.sd_s
        g0, g1 = (float(x) for x in self.effect)
        z = d["z"]
        s = lam * z / (1.0 - rho) + sd_s / np.sqrt(1.0 - rho**2) * d["w0"]
        S, A, avl = np.empty((T, n)), np.zeros((T, n), dtype=np.int8), np.zeros((T, n), np.int8)
        acc = np.zeros(n)
        for t in range(T):
            avail = d["u_avail"][t] < self.availability
            a = avail & (d["u_treat"][t] < self.prob)
            if force is not None and force[0] == t:
                a = avail & bool(force[1])
            a = a.astype(np.int8)
            S[t], A[t], avl[t] = s, a, avail
            acc += self.s_effect * s + a * (g0 + g1 * s)
            s = rho * s + kap * a + lam * z + sd_s * d["w"][t]
        g = np.asarray(self.baseline(z), dtype=float)
        y = self.intercept + g + acc + self.sd_y * d["e"]
        return {"S": S, "A": A, "I": avl, "Y": y, "Z": z}

    def simulate(self, seed: SeedLike = None) -> pd.DataFrame:
        """One trial as a long frame: ``id``, ``dp`` (1..T), ``A``, ``prob``, ``avail``, ``S``,
        ``Z``, ``Y`` (the distal outcome, constant within participant) and ``tau`` (the true
        excursion effect tau_t(H_t) of the row's decision, 0 where unavailable)."""
        n, T = int(self.n_participants), int(self.n_decisions)
        r = self._run(self._draws(n, seed))
        tau = self._tau(r["S"], np.arange(T)[:, None]) * r["I"]
        cols = _long_columns(r, n, T, self.prob, ("S",))
        cols["tau"] = tau.T.reshape(-1)
        return pd.DataFrame(cols)

    def mrt_data(self, seed: SeedLike = None) -> MRTData:
        """One simulated trial as :class:`MRTData`: id ``id``, time ``dp``, treatment ``A``,
        outcome ``Y`` (distal, constant within participant), prob ``prob``, availability
        ``avail``."""
        return _as_mrt_data(self.simulate(seed))

    # ------------------------------------------------------------------ truth
    def _future(self, t: np.ndarray) -> np.ndarray:
        """kappa (alpha + pi gamma1) sum_{k=1}^{T-1-t} rho^{k-1}: the path through future S."""
        T = int(self.n_decisions)
        pi = self.availability * self.prob
        return (
            self.s_treatment
            * (self.s_effect + pi * float(self.effect[1]))
            * _geometric(self.s_ar, T - 1 - np.asarray(t))
        )

    def _tau(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        g0, g1 = (float(x) for x in self.effect)
        return g0 + g1 * s + self._future(t)

    def moments(self) -> pd.DataFrame:
        """Exact E[S_t], E[S_t^2] per decision point (t = 0..T-1; ``dp`` = t + 1) under the
        randomization policy, and the excursion effect's time-varying intercept
        ``tau0`` = gamma0 + (path through future S), so tau_t = tau0_t + gamma1 S_t."""
        T = int(self.n_decisions)
        rho, kap, lam, sd_s = self.s_ar, self.s_treatment, self.s_baseline, self.sd_s
        pi = self.availability * self.prob
        m, c = 0.0, lam / (1.0 - rho)  # E[S_0], E[S_0 Z]
        v = c**2 + sd_s**2 / (1.0 - rho**2)  # E[S_0^2]
        rows = []
        for t in range(T):
            rows.append((t + 1, m, v))
            m, v, c = (
                rho * m + kap * pi,
                rho**2 * v + kap**2 * pi + lam**2 + sd_s**2 + 2 * rho * kap * pi * m
                + 2 * rho * lam * c,
                rho * c + lam,
            )  # fmt: skip
        out = pd.DataFrame(rows, columns=["dp", "mean_S", "mean_S2"])
        out["tau0"] = float(self.effect[0]) + self._future(np.arange(T))
        return out

    def truth(self, moderators: str = "~ 1") -> pd.DataFrame:
        """The DCEE coefficients ``dcee(data, moderators=...)`` estimates, exactly.

        ``moderators`` is ``"~ 1"`` (the availability-weighted average excursion effect over
        decision points) or ``"~ S"``. Returns a table with ``term`` and ``estimate``.
        """
        mod = " ".join(str(moderators).split()) if isinstance(moderators, str) else moderators
        mo = self.moments()
        q = self.availability
        g1 = float(self.effect[1])
        m, v, a0 = mo["mean_S"].to_numpy(), mo["mean_S2"].to_numpy(), mo["tau0"].to_numpy()
        if mod == "~ 1":
            return _truth_frame(["Intercept"], np.array([q * np.mean(a0 + g1 * m)]), None)
        if mod == "~ S":
            G = np.array([[len(m), m.sum()], [m.sum(), v.sum()]])
            h = q * np.array([np.sum(a0 + g1 * m), np.sum(a0 * m + g1 * v)])
            return _truth_frame(["Intercept", "S"], np.linalg.solve(G, h), None)
        raise DesignError(
            f"DistalSimulation.truth: moderators must be '~ 1' or '~ S' (the analytic truth), got "
            f"{moderators!r}; use monte_carlo_truth(moderators=...) for other formulas."
        )

    def monte_carlo_truth(
        self, moderators: str = "~ 1", n_participants: int = 20000, seed: SeedLike = 0
    ) -> pd.DataFrame:
        """The DCEE coefficients by brute force: for every decision point t, the trial is rerun
        with A_t set to 1 and to 0 (same random numbers otherwise, future treatments drawn from
        the policy), the difference I_t (Y^1 - Y^0) regressed on f(S_t) over all rows as the
        estimator does. Returns ``term``, ``estimate`` and ``se`` (Monte Carlo standard error,
        sandwich over simulated participants). Any formula in ``S``, ``Z``, ``dp``."""
        n = check_int("n_participants", n_participants, 2)
        T = int(self.n_decisions)
        d = self._draws(n, seed)
        base = self._run(d)
        diff = np.empty((T, n))
        for t in range(T):
            y1 = self._run(d, force=(t, 1))["Y"]
            y0 = self._run(d, force=(t, 0))["Y"]
            diff[t] = base["I"][t] * (y1 - y0)
        frame = pd.DataFrame(
            {
                "S": base["S"].T.reshape(-1),
                "Z": np.repeat(base["Z"], T),
                "dp": np.tile(np.arange(1, T + 1), n),
            }
        )
        F = _rhs_matrix(moderators, frame, "DistalSimulation", "moderators")
        theta, cov = _sandwich(F.to_numpy(), diff.T.reshape(-1), np.repeat(np.arange(n), T), n)
        return _truth_frame(list(F.columns), theta, np.sqrt(np.diag(cov)))


# ============================================================================ mediation design
@dataclass(frozen=True)
class MediationSimulation:
    r"""An MRT with a time-varying mediator, a distal outcome and known NDEE / NIEE.

    At decision points t = 0..T-1 (column ``dp`` = t + 1)::

        I_t ~ Bernoulli(availability);  A_t ~ Bernoulli(prob) if I_t = 1, else 0
        M_t = m_intercept + m_treatment A_t + m_covariate X_t + sd_m e_t      (mediator)
        X_{t+1} = x_ar X_t + x_treatment A_t + x_mediator M_t + sd_x w_{t+1}  (endogenous)
        X_0 ~ N(0, sd_x^2)
        Y = intercept + g(Z) + sum_t [(direct[0] + direct[1] t/T) A_t + y_mediator M_t
                                      + y_covariate X_t] + sd_y e_Y

    with a baseline covariate Z ~ N(0, 1) and g as in :class:`DistalSimulation`. Everything
    downstream of the treatment is linear, so with r = x_ar + x_mediator m_covariate,
    c = y_covariate + y_mediator m_covariate and G_t = sum_{k=1}^{T-1-t} r^{k-1}:

    .. math::

        \mathrm{NDE}_t = \theta_0 + \theta_1 t/T + x_{treatment}\, c\, G_t, \qquad
        \mathrm{NIE}_t = m_{treatment}\,(y_{mediator} + x_{mediator}\, c\, G_t),

    both time-varying (effects late in the study have less future to act on), and the mcee
    estimands are their availability-weighted projections on the effect basis f(dp)
    (:meth:`truth`). The treatment model q_t(1 | H_t, M_t) is exactly logistic-linear in
    (M_t, X_t), so ``mcee`` with ``controls="~ dp + M + X"`` and a logistic (glm) model for it
    is consistent.

    Parameters
    ----------
    n_participants, n_decisions, prob, availability
        As in :class:`DistalSimulation`.
    m_intercept, m_treatment, m_covariate, sd_m
        The mediator model.
    x_ar, x_treatment, x_mediator, sd_x
        The endogenous covariate X.
    direct, y_mediator, y_covariate, intercept, baseline, sd_y
        The distal outcome model (``direct`` = (theta0, theta1) of the direct effect
        theta0 + theta1 t/T of A_t on Y).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> sim = hm.MediationSimulation(n_participants=50, n_decisions=10)
    >>> sim.mrt_data(seed=1)
    <MRTData: 50 participants, 500 rows, binary treatment 'A', outcome 'Y'>
    >>> sim.truth("~ 1").round(4)
            term effect  estimate
    0  Intercept   NDEE    0.1774
    1  Intercept   NIEE    0.1467
    """

    n_participants: int = 50
    n_decisions: int = 20
    prob: float = 0.5
    availability: float = 0.8
    m_intercept: float = 0.0
    m_treatment: float = 0.5
    m_covariate: float = 0.3
    sd_m: float = 1.0
    x_ar: float = 0.5
    x_treatment: float = 0.2
    x_mediator: float = 0.2
    sd_x: float = 1.0
    direct: tuple[float, float] = (0.2, -0.1)
    y_mediator: float = 0.3
    y_covariate: float = 0.1
    intercept: float = 0.0
    baseline: Callable[[np.ndarray], Any] = default_distal_baseline
    sd_y: float = 1.0

    def __post_init__(self) -> None:
        _check_settings(self, "MediationSimulation", ("direct", "(theta0, theta1)"), "x_ar",
                        ("m_intercept", "m_treatment", "m_covariate", "x_treatment",
                         "x_mediator", "y_mediator", "y_covariate", "intercept"),
                        ("sd_m", "sd_x", "sd_y"))  # fmt: skip

    def _draws(self, n: int, seed: SeedLike) -> dict[str, np.ndarray]:
        check_seed(seed)
        rng = np.random.default_rng(seed)
        T = int(self.n_decisions)
        return {
            "z": rng.standard_normal(n),
            "x0": rng.standard_normal(n),
            "u_avail": rng.random((T, n)),
            "u_treat": rng.random((T, n)),
            "em": rng.standard_normal((T, n)),
            "w": rng.standard_normal((T, n)),
            "e": rng.standard_normal(n),
        }

    def _run(self, d: dict[str, np.ndarray], force: tuple[int, int, int] | None = None) -> dict:
        """One trial; ``force=(t, a, a_m)`` sets A_t = a and draws M_t as under A_t = a_m
        (where available)."""
        T = int(self.n_decisions)
        n = d["z"].shape[0]
        th0, th1 = (float(v) for v in self.direct)
        x = self.sd_x * d["x0"]
        X, M = np.empty((T, n)), np.empty((T, n))
        A, avl = np.zeros((T, n), dtype=np.int8), np.zeros((T, n), dtype=np.int8)
        acc = np.zeros(n)
        for t in range(T):
            avail = d["u_avail"][t] < self.availability
            a = (avail & (d["u_treat"][t] < self.prob)).astype(np.int8)
            a_m = a
            if force is not None and force[0] == t:
                a = (avail & bool(force[1])).astype(np.int8)
                a_m = (avail & bool(force[2])).astype(np.int8)
            m = (self.m_intercept + self.m_treatment * a_m + self.m_covariate * x
                 + self.sd_m * d["em"][t])  # fmt: skip
            X[t], M[t], A[t], avl[t] = x, m, a, avail
            acc += (th0 + th1 * t / T) * a + self.y_mediator * m + self.y_covariate * x
            x = self.x_ar * x + self.x_treatment * a + self.x_mediator * m + self.sd_x * d["w"][t]
        g = np.asarray(self.baseline(d["z"]), dtype=float)
        y = self.intercept + g + acc + self.sd_y * d["e"]
        return {"X": X, "M": M, "A": A, "I": avl, "Y": y, "Z": d["z"]}

    def simulate(self, seed: SeedLike = None) -> pd.DataFrame:
        """One trial as a long frame: ``id``, ``dp`` (1..T), ``A``, ``prob``, ``avail``, ``M``
        (mediator), ``X`` (endogenous covariate), ``Z`` (baseline), ``Y`` (distal outcome,
        constant within participant)."""
        n, T = int(self.n_participants), int(self.n_decisions)
        r = self._run(self._draws(n, seed))
        return pd.DataFrame(_long_columns(r, n, T, self.prob, ("M", "X")))

    def mrt_data(self, seed: SeedLike = None) -> MRTData:
        """One simulated trial as :class:`MRTData` (id ``id``, time ``dp``, treatment ``A``,
        outcome ``Y``, prob ``prob``, availability ``avail``; mediator column ``M``)."""
        return _as_mrt_data(self.simulate(seed))

    def effects_by_decision(self) -> pd.DataFrame:
        """NDE_t and NIE_t per decision point (``dp`` = t + 1), and their availability-weighted
        versions ``ndee`` = availability x NDE_t, ``niee`` = availability x NIE_t (what the
        estimator's rows average)."""
        T = int(self.n_decisions)
        t = np.arange(T)
        th0, th1 = (float(v) for v in self.direct)
        r = self.x_ar + self.x_mediator * self.m_covariate
        c = self.y_covariate + self.y_mediator * self.m_covariate
        G = _geometric(r, T - 1 - t)
        nde = th0 + th1 * t / T + self.x_treatment * c * G
        nie = self.m_treatment * (self.y_mediator + self.x_mediator * c * G)
        q = self.availability
        return pd.DataFrame({"dp": t + 1, "nde": nde, "nie": nie, "ndee": q * nde,
                             "niee": q * nie})  # fmt: skip

    def truth(self, effect: str = "~ 1") -> pd.DataFrame:
        """NDEE (alpha) and NIEE (beta) coefficients ``mcee(data, ..., moderators=effect)``
        estimates, for any effect basis in ``dp`` (e.g. ``"~ 1"``, ``"~ dp"``): the projection
        of availability x NDE_t (NIE_t) on f(dp) over decision points. Columns ``term``,
        ``effect`` ("NDEE" / "NIEE"), ``estimate``."""
        by = self.effects_by_decision()
        F = _rhs_matrix(effect, by[["dp"]], "MediationSimulation", "effect")
        Fm = F.to_numpy()
        G = Fm.T @ Fm
        a = np.linalg.solve(G, Fm.T @ by["ndee"].to_numpy())
        b = np.linalg.solve(G, Fm.T @ by["niee"].to_numpy())
        names = list(F.columns)
        return pd.DataFrame(
            {"term": names * 2, "effect": ["NDEE"] * len(names) + ["NIEE"] * len(names),
             "estimate": np.concatenate([a, b])}
        )  # fmt: skip

    def monte_carlo_truth(
        self, effect: str = "~ 1", n_participants: int = 20000, seed: SeedLike = 0
    ) -> pd.DataFrame:
        """NDEE / NIEE by brute force from potential outcomes: for every t the trial is rerun
        as (A_t, M_t-as-under) = (1, 1), (1, 0), (0, 0) with the same random numbers, and
        I_t {Y(1, M(0)) - Y(0, M(0))} and I_t {Y(1, M(1)) - Y(1, M(0))} are projected on f(dp)
        over all rows. Columns ``term``, ``effect``, ``estimate``, ``se`` (Monte Carlo)."""
        n = check_int("n_participants", n_participants, 2)
        T = int(self.n_decisions)
        d = self._draws(n, seed)
        base = self._run(d)
        da, db = np.empty((T, n)), np.empty((T, n))
        for t in range(T):
            y11 = self._run(d, force=(t, 1, 1))["Y"]
            y10 = self._run(d, force=(t, 1, 0))["Y"]
            y00 = self._run(d, force=(t, 0, 0))["Y"]
            da[t] = base["I"][t] * (y10 - y00)
            db[t] = base["I"][t] * (y11 - y10)
        frame = pd.DataFrame({"dp": np.tile(np.arange(1, T + 1), n)})
        F = _rhs_matrix(effect, frame, "MediationSimulation", "effect").to_numpy()
        names = list(_rhs_matrix(effect, frame.iloc[:T], "MediationSimulation", "effect").columns)
        ids = np.repeat(np.arange(n), T)
        ta, ca = _sandwich(F, da.T.reshape(-1), ids, n)
        tb, cb = _sandwich(F, db.T.reshape(-1), ids, n)
        return pd.DataFrame(
            {
                "term": names * 2,
                "effect": ["NDEE"] * len(names) + ["NIEE"] * len(names),
                "estimate": np.concatenate([ta, tb]),
                "se": np.concatenate([np.sqrt(np.diag(ca)), np.sqrt(np.diag(cb))]),
            }
        )
