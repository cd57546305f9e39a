r"""Simulation-based power for micro-randomized trials, next to the analytic calculator.

:func:`simulated_power` takes the inputs of :func:`hte_mrt.design.mrt_power` (days D, decisions
per day K, randomization probability p_t, availability tau_t, standardized effect beta_t, tested
effect model Z_t, control dimension q) and simulates whole trials, analyses each with WCLS and
counts rejections. It also simulates what the formula leaves out (keyword options).

Generative model (participant i = 1..N, decision point t = 1..T, T = D K, day index j(t))
------------------------------------------------------------------------------------------
::

    u_i ~ N(0, sd_slope^2)                 person-level effect deviation (random slope)
    c_k ~ N(0, sd_cluster^2)               cluster intercept, clusters of ``cluster_size``
    I_t ~ Bernoulli(tau_t - availability_feedback * A_{t-1})     (A_0 = 0; clipped to [0, 1])
    A_t ~ Bernoulli(p_t) if I_t = 1, else A_t = 0
    e_t = rho e_{t-1} + sqrt(1 - rho^2) z_t,  z_t ~ N(0, 1),  e_1 ~ N(0, 1)   (stationary AR(1))
    Y_t = g_t' alpha + (A_t - p_t)(beta_t + u_i) + c_{k(i)} + e_t

with g_t = (1, j, j^2, ..., j^{q-1}) (q = 3: the quadratic control model the calculator
assumes). With every option at its default (rho = sd_slope = availability_feedback =
sd_cluster = 0) this is exactly Liao et al.'s (2016) working model: E[Y_t | H_t, I_t = 1, A_t]
linear in q known terms plus the centred treatment term, residual variance 1 (so beta_t is the
effect in residual-SD units), errors independent over time. The WCLS estimate of beta is
invariant to alpha (g_t is among the regressors), so alpha = 0 is simulated.

Analysis (each replicate)
-------------------------
On available rows, least squares of Y_t on x_t = (g_t, (A_t - p_t) Z_t) (WCLS with numerator
probability p_t, hence weights 1), theta = (alpha, beta) in R^{q+p}. The variance of beta-hat is
the participant-level sandwich with the Mancl-DeRouen small-sample correction (Liao et al.'s
choice; ``small_sample=False`` for the plain sandwich), computed exactly by
:func:`hte_mrt.estimators.sandwich.wls_sandwich`. The test of H0: beta = 0 is the one users run
on their trial, :meth:`hte_mrt.results.frequentist.ExcursionResult.joint_test` (Hotelling T^2
with the F calibration of the t intervals' df)::

    T^2 = beta-hat' V-hat^{-1} beta-hat,     df = n - (p + q),     d2 = df - p + 1,
    F = T^2 d2 / (p df),                     reject when F > F^{-1}_{p, d2}(1 - alpha)

with n the participants who have an available decision point (N in every realistic design),
so the simulated power is the power of ``hm.wcls(...).joint_test()``: on the same simulated
trial the two rejection decisions agree exactly (tested). The analytic calculator
(``continuous_design(...).power(N, alpha)``, :func:`hte_mrt.mrt_power`) keeps MRT-SS's
calibration, F(p, N - q - p) with noncentrality lambda (Liao et al. 2016), as MRT-SS computes
it. The two calibrations differ by one denominator degree of freedom per extra effect
parameter (d2 = N - q - 2p + 1 against N - q - p): the same test for p = 1; for p = 3 and q = 3 the
critical value of T^2 is 7% higher at N = 20, 1% at N = 40 and 0.1% at N = 100, so the simulated
power sits a little below the formula's at small N with several effect terms (on top of the
Mancl-DeRouen conservativeness noted below).

Every replicate has the same design (N, T, Z, g), so the per-participant cross-products
sum_t I_t x_t x_t' and sum_t I_t x_t Y_t of a whole batch of replicates are a few matrix products
over t, and the batch is solved at once (no per-trial Python loop).

Monte Carlo error: with R replicates and R_rej rejections, power-hat = R_rej / R,
mc_se = sqrt(power-hat (1 - power-hat) / R), and the Wilson score interval.

When simulation and formula diverge
-----------------------------------
* ``sd_slope`` (person-level effect heterogeneity). The marginal effect is still beta_t, but
  participant i's score sum_t I_t (A_t - p_t) Z_t [(A_t - p_t) u_i + e_t] carries u_i with the
  weight w_i = sum_t I_t (A_t - p_t)^2 Z_t, whose mean m = sum_t tau_t p_t (1 - p_t) Z_t grows
  like T. So Var(beta-hat) = M^{-1} (M + sd_slope^2 E[w w']) M^{-1} / N instead of the
  formula's M^{-1} / N (M = sum_t tau_t p_t (1 - p_t) Z_t Z_t', unit residual variance): the
  extra term does not shrink with the number of decision points, and once
  sd_slope^2 m' M^{-1} m is comparable to 1 the noncentrality drops by about that factor. In
  the reference design (T = 210, p = 0.4, mean availability 0.5) m' M^{-1} m ~
  sum_t tau_t p_t (1 - p_t) ~ 25, so sd_slope = 0.15 (1.5 times the average effect) cuts the
  noncentrality by about a third and the power from 0.80 to about 0.64 (simulated 0.63). The
  test stays valid (the sandwich sees the between-person variance); the *formula* is what is
  wrong, because it assumes the residual variance is the only noise. :func:`heterogeneity_power`
  gives the formula with this extra term, which the simulation matches.
* ``availability_feedback``: fewer available decision points than the stated tau_t (the
  realized mean availability is reported), so less power than computed.
* ``rho`` costs nothing: A_t - p_t is randomized independently of the past, so the
  cross-products (A_t - p_t)(A_s - p_s), t != s, that would carry serial correlation into
  Var(beta-hat) have mean zero, and the AR(1) residual keeps variance 1.
* ``sd_cluster`` adds the cluster intercept's variance to the residual variance (e_t has
  variance 1 on its own): the scores of participants of one cluster stay uncorrelated (their
  treatments are randomized independently), so the cluster structure itself costs nothing,
  but the residual SD is sqrt(1 + sd_cluster^2 (1 - 1/K)) with K clusters (the intercept in
  g_t absorbs the mean of the c_k), and the power is about the formula's with the effect
  divided by that. If your standardized effect already uses the total SD, leave sd_cluster 0.
* Small N: with the Mancl-DeRouen correction and few decision points per participant the test
  is somewhat conservative relative to the formula (e.g. 20 days x 4, p = 0.5, tau = 0.8,
  constant effect 0.15, N = 25: simulated 0.789 +- 0.006 vs 0.816 analytic, 5000 replicates;
  the plain sandwich gives 0.816 there but is anticonservative at N = 15). The same holds,
  more mildly, at the reference design's N = 46: 10,000 replicates give 0.786 +- 0.004 and
  0.797 +- 0.004 (two seeds) with the correction vs 0.803 analytic, and 0.805 +- 0.004 with
  ``small_sample=False``; the formula's F test is the plain-sandwich one.

Seeds and backends: replicate r uses the r-th child of ``SeedSequence(seed)`` (its own
generator, fixed draw order), so the result does not depend on the backend (joblib or a dask
``client``), on ``n_jobs`` or on how replicates are batched; and two calls differing only in
effect sizes or standard deviations share common random numbers for the same seed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import signal, stats

from hte_mrt._contract import Result, check_conf_level
from hte_mrt.design.common import (
    _check_level,
    _check_n,
    _finite,
    check_bool,
    check_n_jobs,
    check_seed,
)
from hte_mrt.design.continuous import ContinuousDesign, continuous_design
from hte_mrt.design.curves import Curve
from hte_mrt.errors import DesignError, EstimationError
from hte_mrt.estimators.sandwich import wls_sandwich

__all__ = ["SimulatedPowerResult", "heterogeneity_power", "simulated_power"]

_BATCH_ELEMENTS = 4_000_000  # replicates x participants x decision points per batch (~32 MB)


# ---------------------------------------------------------------------------------------------
# the simulation specification (picklable; sent to joblib / dask workers)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Spec:
    n: int
    prob: np.ndarray  # (T,)
    tau: np.ndarray  # (T,)
    effect: np.ndarray  # (T,)
    G: np.ndarray  # (T, q) control basis (well-conditioned basis of span(1, j, ..., j^{q-1}))
    Z: np.ndarray  # (T, p) orthonormalized effect basis
    back: np.ndarray  # (p, p): beta in the user's Z = back @ beta in the internal basis
    alpha: float
    rho: float
    sd_slope: float
    feedback: float
    sd_cluster: float
    cluster_size: int
    small_sample: bool

    @property
    def T(self) -> int:
        return len(self.prob)

    @property
    def p(self) -> int:
        return self.Z.shape[1]

    @property
    def q(self) -> int:
        return self.G.shape[1]


def _draw(spec: _Spec, seeds: list[np.random.SeedSequence]) -> dict[str, np.ndarray]:
    """Standard uniforms / normals of each replicate from its own generator (fixed order)."""
    R, N, T = len(seeds), spec.n, spec.T
    n_cl = -(-N // spec.cluster_size)
    out = {
        "ua": np.empty((R, N, T)),
        "ut": np.empty((R, N, T)),
        "ze": np.empty((R, N, T)),
        "zu": np.empty((R, N)),
        "zc": np.empty((R, n_cl)),
    }
    for r, ss in enumerate(seeds):
        rng = np.random.default_rng(ss)
        for key in ("ua", "ut", "ze", "zu", "zc"):
            shape = out[key].shape[1:]
            out[key][r] = rng.standard_normal(shape) if key[0] == "z" else rng.random(shape)
    return out


def _generate(spec: _Spec, seeds: list[np.random.SeedSequence]) -> dict[str, np.ndarray]:
    """Simulate a batch of trials: availability, treatment, outcome, each (R, N, T)."""
    u = _draw(spec, seeds)
    R, N, T = len(seeds), spec.n, spec.T
    pr, tau = spec.prob, spec.tau
    # availability and treatment
    if spec.feedback == 0.0:
        avail = u["ua"] < tau
        treat = avail & (u["ut"] < pr)
    else:
        avail = np.zeros((R, N, T), dtype=bool)
        treat = np.zeros((R, N, T), dtype=bool)
        prev = np.zeros((R, N))
        for t in range(T):
            avail[..., t] = u["ua"][..., t] < np.clip(tau[t] - spec.feedback * prev, 0.0, 1.0)
            treat[..., t] = avail[..., t] & (u["ut"][..., t] < pr[t])
            prev = treat[..., t]
    # errors: stationary AR(1) along t
    if spec.rho == 0.0:
        e = u["ze"]
    else:
        s = math.sqrt(1.0 - spec.rho**2)
        z = u["ze"].copy()
        z[..., 0] /= s  # so that e_1 = z_1 ~ N(0, 1)
        e = signal.lfilter([s], [1.0, -spec.rho], z, axis=-1)
    effect = spec.effect + spec.sd_slope * u["zu"][..., None]  # (R, N, T)
    y = (treat - pr) * avail * effect + e  # g_t' alpha omitted: beta-hat is invariant to it
    if spec.sd_cluster > 0.0:
        k = np.arange(N) // spec.cluster_size
        y = y + spec.sd_cluster * u["zc"][:, k][..., None]
    return {"available": avail, "treatment": treat, "y": y}


def _simulate_batch(spec: _Spec, seeds: list[np.random.SeedSequence]) -> dict[str, np.ndarray]:
    """Simulate and analyse one batch of replicates; returns per-replicate arrays."""
    sim = _generate(spec, seeds)
    avail, treat, y = sim["available"], sim["treatment"], sim["y"]
    R, N, T, p, q = len(seeds), spec.n, spec.T, spec.p, spec.q
    I = avail.astype(float)  # noqa: E741
    cent = (treat - spec.prob) * I  # (A_t - p_t) I_t
    # per-participant cross-products, all replicates at once: sum over t is a matrix product
    G, Z = spec.G, spec.Z
    GG = (G[:, :, None] * G[:, None, :]).reshape(T, q * q)
    GZ = (G[:, :, None] * Z[:, None, :]).reshape(T, q * p)
    ZZ = (Z[:, :, None] * Z[:, None, :]).reshape(T, p * p)
    d = q + p
    C = np.empty((R, N, d, d))
    C[..., :q, :q] = (I @ GG).reshape(R, N, q, q)
    C[..., :q, q:] = (cent @ GZ).reshape(R, N, q, p)
    C[..., q:, :q] = np.swapaxes(C[..., :q, q:], -1, -2)
    C[..., q:, q:] = ((cent * cent) @ ZZ).reshape(R, N, p, p)
    b = np.concatenate([(I * y) @ G, (cent * y) @ Z], axis=-1)
    theta, cov, ok = _solve(C, b, spec.small_sample)
    beta = theta[:, q:]
    V = cov[:, q:, q:]
    with np.errstate(invalid="ignore"):
        t2 = np.full(R, np.nan)
        for r in np.flatnonzero(ok):  # T^2 = beta' V^{-1} beta (p x p: cheap per replicate)
            try:
                t2[r] = beta[r] @ np.linalg.solve(V[r], beta[r])
            except np.linalg.LinAlgError:  # singular variance: counted as a failed fit
                pass
        # the calibration of ExcursionResult.joint_test (the test users run on their trial):
        # df = n - dim(theta), n = participants with an available decision point
        df = avail.any(axis=2).sum(axis=1) - (p + q)
        df2 = df - p + 1
        with np.errstate(divide="ignore"):
            f = np.where(df2 > 0, t2 * df2 / (p * df), np.nan)
            pval = stats.f.sf(f, p, np.maximum(df2, 1))
    return {
        "F": f,
        "p": pval,
        "estimate": beta @ spec.back.T,
        "availability": avail.mean(axis=(1, 2)),
        "treated": treat.sum(axis=(1, 2)) / np.maximum(avail.sum(axis=(1, 2)), 1),
    }


def _solve(C: np.ndarray, b: np.ndarray, small: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched WLS + sandwich; a replicate whose system is singular gets NaN (``ok`` False)."""
    R, _, d, _ = C.shape
    try:
        theta, cov = wls_sandwich(C, b, small)
        ok = np.all(np.isfinite(theta), axis=1)
        return theta, cov, ok
    except EstimationError:
        theta, cov = np.full((R, d), np.nan), np.full((R, d, d), np.nan)
        ok = np.zeros(R, dtype=bool)
        for r in range(R):  # rare: tiny trials where some replicate is not identified
            try:
                theta[r], cov[r] = wls_sandwich(C[r], b[r], small)
                ok[r] = True
            except EstimationError:
                pass
        return theta, cov, ok


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------
@dataclass(repr=False)
class SimulatedPowerResult(Result):
    """Simulated power of the WCLS F test, with its Monte Carlo error and the analytic power.

    ``power`` = share of the ``n_reps`` replicates that rejected H0: beta = 0 at ``alpha``
    (a replicate whose fit failed counts as not rejecting: ``n_failed``); ``mc_se`` =
    sqrt(power (1 - power) / n_reps); ``lcl``, ``ucl`` the Wilson interval at ``conf_level``;
    ``analytic_power`` the Liao et al. (2016) formula at the same N and stated inputs.
    ``replicates`` holds one row per replicate (F, p, reject, the estimates of the Z
    coefficients, realized availability and treated share).

    ``table(conf_level)`` has one row with columns ``n``, ``estimate`` (the simulated power),
    ``se`` (its Monte Carlo SE), ``lcl``, ``ucl`` (Wilson interval), ``analytic_power``,
    ``difference`` (simulated - analytic), ``z_score`` (difference / se), ``n_reps``,
    ``n_failed``, ``alpha`` and ``availability_realized`` (mean realized availability).
    """

    n: int
    power: float
    mc_se: float
    lcl: float
    ucl: float
    n_reps: int
    n_rejected: int
    analytic_power: float
    alpha: float
    p: int
    q: int
    settings: dict[str, Any]
    design: ContinuousDesign = field(repr=False)
    replicates: pd.DataFrame = field(repr=False)
    conf_level: float = 0.95
    n_failed: int = 0
    seed: Any = None
    backend: str = "joblib"
    seconds: float = float("nan")

    _kind = "simulated MRT power"

    @property
    def difference(self) -> float:
        """Simulated minus analytic power."""
        return self.power - self.analytic_power

    @property
    def z_score(self) -> float:
        """(simulated - analytic) / mc_se (inf when mc_se = 0 and they differ)."""
        if self.mc_se == 0:
            return 0.0 if self.difference == 0 else math.copysign(math.inf, self.difference)
        return self.difference / self.mc_se

    @property
    def availability_realized(self) -> float:
        """Mean realized availability over replicates (< stated with availability feedback)."""
        return float(self.replicates["availability"].mean())

    def mean_estimates(self) -> pd.DataFrame:
        """Monte Carlo mean (``estimate``) of each Z coefficient with its Monte Carlo SE
        (``se``), against the true (projected) coefficient ``true``."""
        cols = [c for c in self.replicates.columns if c.startswith("beta[")]
        est = self.replicates[cols]
        return pd.DataFrame(
            {
                "term": [c[5:-1] for c in cols],
                "true": self.design.d,
                "estimate": est.mean().to_numpy(),
                "se": (est.std(ddof=1) / np.sqrt(est.notna().sum())).to_numpy(),
            }
        )

    # ---- the results contract -------------------------------------------------------------
    def _table(self, conf_level: float) -> pd.DataFrame:
        lo, hi = _wilson(self.n_rejected, self.n_reps, conf_level)
        return pd.DataFrame(
            [
                {
                    "n": self.n,
                    "estimate": self.power,
                    "se": self.mc_se,
                    "lcl": lo,
                    "ucl": hi,
                    "analytic_power": self.analytic_power,
                    "difference": self.difference,
                    "z_score": self.z_score,
                    "n_reps": self.n_reps,
                    "n_failed": self.n_failed,
                    "alpha": self.alpha,
                    "availability_realized": self.availability_realized,
                }
            ]
        )

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        sandwich = "Mancl-DeRouen corrected" if self.settings["small_sample"] else "plain"
        title = (
            f"Simulated MRT power (WCLS, Hotelling-type F test, {sandwich} sandwich): N = "
            f"{self.n}, simulated power {self.power:.4f} vs analytic {self.analytic_power:.4f} "
            f"({self.n_reps} replicates)"
        )
        opts = ", ".join(f"{k}={v:g}" for k, v in self.settings.items() if k != "small_sample")
        info = {
            "design": self.design.describe(),
            "test": (
                f"Hotelling T^2 with F({self.p}, n - {self.q + 2 * self.p - 1}) as "
                f"ExcursionResult.joint_test; analytic: F({self.p}, N - {self.p + self.q}) "
                "(MRT-SS)"
            ),
            "options": opts,
            "availability (stated, realized)": (
                f"{self.design.availability.mean():.4f}, {self.availability_realized:.4f}"
            ),
        }
        notes = []
        if self.n_failed:
            notes.append(f"{self.n_failed} replicate(s) could not be fitted (not rejections)")
        return title, info, notes

    def _repr_extra(self) -> str:
        return (
            f"N = {self.n}, power {self.power:.3f} (MC SE {self.mc_se:.3f}) vs analytic "
            f"{self.analytic_power:.3f}, {self.n_reps} replicates"
        )


def _wilson(k: int, n: int, conf_level: float) -> tuple[float, float]:
    ci = stats.binomtest(int(k), int(n)).proportion_ci(
        confidence_level=float(conf_level), method="wilson"
    )
    return float(ci.low), float(ci.high)


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------
def heterogeneity_power(
    design: ContinuousDesign, n: int, sd_slope: float, alpha: float = 0.05
) -> float:
    r"""Liao et al.'s (2016) power with a person-level random effect slope of SD ``sd_slope``.

    Per participant the sandwich meat is M + sd_slope^2 E[w w'],
    w = sum_t I_t (A_t - p_t)^2 Z_t, with E[w w'] = m m' + sum_t v_t Z_t Z_t',
    m = sum_t tau_t p_t (1 - p_t) Z_t and
    v_t = Var(I_t (A_t - p_t)^2) = tau_t p_t (1 - p_t) ((1 - p_t)^3 + p_t^3)
    - (tau_t p_t (1 - p_t))^2. Then

    .. math::

        \Sigma = M^{-1} (M + \sigma_u^2 E[w w^\top]) M^{-1}, \qquad
        \lambda = N d^\top \Sigma^{-1} d, \qquad
        \text{power} = 1 - F_{p,\, N-p-q;\, \lambda}\big(F^{-1}_{p,\, N-p-q}(1 - \alpha)\big).

    ``sd_slope = 0`` gives ``design.power(n, alpha)``. The formula is closed-form (no
    simulation, so no ``seed`` or ``progress``); :func:`simulated_power` with ``sd_slope``
    checks it.

    Parameters
    ----------
    design : ContinuousDesign
        The design, e.g. the ``design`` of an :func:`hte_mrt.mrt_sample_size` result.
    n : int
        Number of participants N (> p + q).
    sd_slope : float
        SD sigma_u of the person-level deviation of the effect (units of ``effect``).
    alpha : float, default 0.05
        Significance level of the planned F test.

    Returns
    -------
    float
        The power.

    Examples
    --------
    The reference design of MRT-SS (N = 46 for 80% power) loses power when the effect varies
    between people with SD 0.15 (1.5 times the average effect):

    >>> import hte_mrt as hm
    >>> ss = hm.mrt_sample_size(
    ...     days=42, per_day=5, prob=0.4,
    ...     availability=hm.Curve.quadratic(initial=0.7, mean=0.5, turn_day=42),
    ...     effect=hm.Curve.quadratic(initial=0, mean=0.1, turn_day=28))
    >>> round(hm.heterogeneity_power(ss.design, 46, sd_slope=0.15), 3)
    0.631
    """
    if not isinstance(design, ContinuousDesign):
        raise DesignError(
            f"heterogeneity_power: design must be a ContinuousDesign, got "
            f"{type(design).__name__}; pass e.g. hm.mrt_sample_size(...).design."
        )
    _check_level(alpha)
    _check_n(n, design.p, design.q)
    sd_slope = _nonneg(sd_slope, "sd_slope")
    tau, pr, Z = design.availability, design.prob, design.z
    w1 = tau * pr * (1 - pr)
    v = w1 * ((1 - pr) ** 3 + pr**3) - w1**2
    m = Z.T @ w1
    Eww = np.outer(m, m) + (Z * v[:, None]).T @ Z
    M = design.M
    Minv = np.linalg.inv(M)
    sigma = Minv @ (M + float(sd_slope) ** 2 * Eww) @ Minv
    lam = float(n) * float(design.d @ np.linalg.solve(sigma, design.d))
    p, q = design.p, design.q
    crit = stats.f.ppf(1 - alpha, p, n - p - q)
    return float(stats.ncf.sf(crit, p, n - p - q, lam))


def _nonneg(x: Any, name: str, upper: float | None = None) -> float:
    v = _finite(x, name)
    if v < 0 or (upper is not None and v > upper):
        rng = f"in [0, {upper:g}]" if upper is not None else ">= 0"
        raise DesignError(f"{name} must be {rng}, got {x!r}; pass a number {rng} (0: off).")
    return v


def _control_basis(days: int, per_day: int, q: int) -> np.ndarray:
    """Legendre basis in the scaled day: the same span as (1, j, ..., j^{q-1}), well conditioned."""
    j = np.repeat(np.arange(days, dtype=float), per_day)
    x = 2.0 * j / (days - 1) - 1.0 if days > 1 else np.zeros_like(j)
    G = np.polynomial.legendre.legvander(x, q - 1)
    if np.linalg.matrix_rank(G) < q:
        raise DesignError(
            f"q = {q}: the control model (1, j, ..., j^{q - 1}) in the day j needs at least {q} "
            f"days, the trial has {days}; lower q."
        )
    return G


def simulated_power(
    n: int,
    *,
    days: int,
    per_day: int,
    prob: Curve | float | ArrayLike,
    availability: Curve | float | ArrayLike,
    effect: Curve | float | ArrayLike,
    z: str | ArrayLike | None = None,
    q: int = 3,
    alpha: float = 0.05,
    n_reps: int = 1000,
    rho: float = 0.0,
    sd_slope: float = 0.0,
    availability_feedback: float = 0.0,
    sd_cluster: float = 0.0,
    cluster_size: int | None = None,
    small_sample: bool = True,
    conf_level: float = 0.95,
    seed: int | np.random.SeedSequence | None = None,
    n_jobs: int | None = None,
    client: Any = None,
    progress: bool = True,
) -> SimulatedPowerResult:
    """Power of the WCLS test of the effect model by simulating ``n_reps`` whole MRTs.

    The trials follow the working model of Liao, Klasnja, Tewari & Murphy (2016) (the model
    behind :func:`hte_mrt.mrt_power`), optionally with what the formula leaves out: AR(1)
    errors, person-level effect heterogeneity, availability that drops after treatment, cluster
    intercepts. See :mod:`hte_mrt.studies.mrt_power` for the generative model, the test and when
    simulation and formula diverge.

    Each simulated trial is tested as a user tests theirs, by ``hm.wcls(...).joint_test()``:
    Hotelling's T^2 with F(p, df - p + 1), df = n - (p + q), so the power is the power of that
    test (the rejection decisions agree trial by trial). ``analytic_power`` is MRT-SS's formula,
    which calibrates with F(p, N - q - p): the same test for p = 1, slightly more liberal for
    several effect terms at small N (see the module docstring).

    Parameters
    ----------
    n : int
        Number of participants N (> p + q).
    days, per_day, prob, availability, effect, z, q, alpha
        The design, as in :func:`hte_mrt.mrt_power` (Curve, number, per-day or
        per-decision-point vectors; ``effect`` in residual-SD units; ``z`` the tested effect
        model; ``alpha`` the significance level of the test).
    n_reps : int, default 1000
        Number of simulated trials (MC SE <= 0.5 / sqrt(n_reps)).
    rho : float, default 0
        AR(1) correlation of the residual within person, in (-1, 1).
    sd_slope : float, default 0
        SD of the person-level deviation u_i of the effect (same units as ``effect``).
    availability_feedback : float, default 0
        Availability at t is tau_t minus this after a treated decision t - 1 (in [0, 1]).
    sd_cluster, cluster_size : float, int
        SD of a cluster random intercept (default 0: none); consecutive participants form
        clusters of ``cluster_size`` (default 10; giving it needs ``sd_cluster > 0`` and
        ``cluster_size <= n``).
    small_sample : bool, default True
        Mancl-DeRouen corrected sandwich (Liao et al.); False: the plain sandwich.
    conf_level : float, default 0.95
        Level of the Wilson interval for the power.
    seed : int or numpy.random.SeedSequence, optional
        Root seed; None draws fresh entropy (stored in ``result.seed``). A numpy Generator
        is refused (replicates are seeded from ``SeedSequence(seed)``).
    n_jobs : int, optional
        joblib workers over batches of replicates (None: joblib's default, one process).
    client : dask.distributed.Client, optional
        Batches are sent with ``client.map``; the result equals joblib's for the same seed.
    progress : bool, default True
        Show a progress bar (``tqdm.auto``) over the simulated trials.

    Returns
    -------
    SimulatedPowerResult
        ``power``, ``mc_se``, ``lcl``, ``ucl``, ``analytic_power``, ``replicates`` (one row per
        trial), ``mean_estimates()``; ``table()`` has one row with columns n, estimate (the
        simulated power), se (its Monte Carlo SE), lcl, ucl (Wilson interval at
        ``conf_level``), analytic_power, difference, z_score, n_reps, n_failed, alpha and
        availability_realized.

    Examples
    --------
    A handful of trials (use 1,000 or more for a real answer):

    >>> import hte_mrt as hm
    >>> sim = hm.simulated_power(30, days=30, per_day=5, prob=0.5, availability=0.7,
    ...                          effect=0.1, n_reps=40, seed=2, progress=False)
    >>> sim.table()[["n", "estimate", "se", "lcl", "ucl", "analytic_power"]].round(2)
        n  estimate    se   lcl   ucl  analytic_power
    0  30      0.78  0.07  0.62  0.88            0.77
    """
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    if not isinstance(n, int | np.integer) or isinstance(n, bool):
        raise DesignError(
            f"n (number of participants) must be a whole number, got {n!r}; pass e.g. n=40."
        )
    if isinstance(n_reps, bool) or not isinstance(n_reps, int | np.integer) or n_reps < 1:
        raise DesignError(
            f"n_reps must be a positive whole number, got {n_reps!r}; pass e.g. n_reps=1000."
        )
    rho_ = _finite(rho, "rho (AR(1) correlation)")
    if not -1.0 < rho_ < 1.0:
        raise DesignError(
            f"rho (AR(1) correlation) must lie in (-1, 1), got {rho!r}; pass e.g. rho=0.5."
        )
    if cluster_size is not None and (
        isinstance(cluster_size, bool)
        or not isinstance(cluster_size, int | np.integer)
        or cluster_size < 1
    ):
        raise DesignError(
            f"cluster_size must be a positive whole number, got {cluster_size!r}; pass e.g. "
            "cluster_size=10."
        )
    sd_cluster_ = _nonneg(sd_cluster, "sd_cluster")
    if cluster_size is not None and sd_cluster_ == 0:
        raise DesignError(
            f"cluster_size={cluster_size!r} has no effect without a cluster intercept; pass "
            "sd_cluster > 0 as well (e.g. sd_cluster=0.5), or drop cluster_size."
        )
    if cluster_size is not None and cluster_size > n:
        raise DesignError(
            f"cluster_size={cluster_size!r} exceeds n = {n} participants (one cluster holds "
            "everyone); pass cluster_size <= n."
        )
    _check_level(alpha)
    if isinstance(seed, np.random.Generator):
        raise DesignError(
            "seed must be None, a non-negative integer or a numpy SeedSequence, got a numpy "
            "Generator; pass an integer such as seed=1 (replicates use SeedSequence(seed))."
        )
    check_seed(seed)
    if client is not None and not (hasattr(client, "map") and hasattr(client, "gather")):
        raise DesignError(
            f"client must be a dask.distributed.Client or None, got {client!r}; pass "
            "client=None to run with joblib (n_jobs), or a Client(...)."
        )
    check_n_jobs(n_jobs)
    check_bool(progress, "progress")
    settings = {
        "rho": rho_,
        "sd_slope": _nonneg(sd_slope, "sd_slope"),
        "availability_feedback": _nonneg(availability_feedback, "availability_feedback", 1.0),
        "sd_cluster": sd_cluster_,
        "cluster_size": 10 if cluster_size is None else int(cluster_size),
        "small_sample": check_bool(small_sample, "small_sample"),
    }
    return _simulate(
        design,
        int(n),
        float(alpha),
        int(n_reps),
        settings,
        conf_level=check_conf_level(conf_level),
        seed=seed,
        n_jobs=n_jobs,
        client=client,
        progress=progress,
    )


def _run_batches(
    spec: _Spec,
    batches: list[list[np.random.SeedSequence]],
    n_jobs: int | None,
    client: Any,
    progress: bool,
) -> tuple[list[dict[str, np.ndarray]], str]:
    """Run the batches (joblib or dask), in order, with a progress bar over trials."""
    from hte_mrt._util import tqdm

    total = sum(len(b) for b in batches)
    with tqdm(total=total, disable=not progress, desc="simulating trials", unit="trial") as bar:
        if client is not None:
            from distributed import as_completed

            futures = client.map(_simulate_batch, [spec] * len(batches), batches, pure=False)
            size = {f.key: len(b) for f, b in zip(futures, batches, strict=True)}
            for fut in as_completed(futures):
                bar.update(size[fut.key])
            return client.gather(futures), "dask"
        from joblib import Parallel, delayed

        parts = []
        gen = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_simulate_batch)(spec, b) for b in batches
        )
        for part, b in zip(gen, batches, strict=True):
            parts.append(part)
            bar.update(len(b))
        return parts, "joblib"


def _simulate(
    design: ContinuousDesign,
    n: int,
    alpha: float,
    n_reps: int,
    settings: dict[str, Any],
    *,
    conf_level: float,
    seed: int | np.random.SeedSequence | None,
    n_jobs: int | None,
    client: Any,
    progress: bool,
) -> SimulatedPowerResult:
    """Simulate ``n_reps`` trials of ``design`` with N = ``n`` and count rejections."""
    N, p, qq = n, design.p, design.q
    analytic = float(design.power(N, alpha))  # validates N > p + q and alpha
    # internal bases: any basis of the same column spaces gives the same T^2
    G = _control_basis(design.days, design.per_day, qq)
    Q, Rz = np.linalg.qr(design.z)
    scale = math.sqrt(design.n_decisions)
    Zs = Q * scale  # Z = Zs Rz / scale, so beta_user = Rz^{-1} beta_internal * scale
    back = np.linalg.solve(Rz, np.eye(p)) * scale
    spec = _Spec(
        N,
        design.prob,
        design.availability,
        design.effect,
        G,
        Zs,
        back,
        alpha,
        settings["rho"],
        settings["sd_slope"],
        settings["availability_feedback"],
        settings["sd_cluster"],
        settings["cluster_size"],
        settings["small_sample"],
    )
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    seeds = root.spawn(n_reps)
    per_batch = max(1, min(256, _BATCH_ELEMENTS // (N * design.n_decisions)))
    batches = [seeds[i : i + per_batch] for i in range(0, len(seeds), per_batch)]

    t0 = time.perf_counter()
    parts, backend = _run_batches(spec, batches, n_jobs, client, progress)
    res = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}

    pval = res["p"]
    reject = np.where(np.isnan(pval), False, pval < alpha)
    k, R = int(reject.sum()), n_reps
    pw = k / R
    lo, hi = _wilson(k, R, conf_level)
    reps = pd.DataFrame(
        {
            "replicate": np.arange(R),
            "F": res["F"],
            "p": pval,
            "reject": reject,
            **{f"beta[{nm}]": res["estimate"][:, i] for i, nm in enumerate(design.z_names)},
            "availability": res["availability"],
            "treated_share": res["treated"],
        }
    )
    return SimulatedPowerResult(
        n=N,
        power=pw,
        mc_se=math.sqrt(pw * (1 - pw) / R),
        lcl=lo,
        ucl=hi,
        n_reps=R,
        n_rejected=k,
        analytic_power=analytic,
        alpha=alpha,
        p=p,
        q=qq,
        settings=settings,
        design=design,
        replicates=reps,
        conf_level=conf_level,
        n_failed=int(np.isnan(pval).sum()),
        seed=seed if seed is not None else root.entropy,
        backend=backend,
        seconds=time.perf_counter() - t0,
    )
