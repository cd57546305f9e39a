r"""Sample size, power and minimum detectable effect for a continuous proximal outcome.

Liao, Klasnja, Tewari & Murphy (2016, Stat Med 35:1944), computed exactly as the R package
MRTSampleSize (the MRT-SS calculator) does.

A trial lasts D days with K decision points a day, T = D K decision points t = 1..T; j(t) is the
day index 0..D-1 of decision point t. The design is given by

* the standardized proximal effect beta_t (effect / outcome SD),
* the expected availability tau_t = P(I_t = 1), and
* the randomization probability p_t = P(A_t = 1 | I_t = 1),

each either a :class:`~hte_mrt.design.Curve` over days (constant / linear / quadratic, constant
within a day, as in MRT-SS), a scalar, one value per day, or one value per decision point. The
effect is tested through the p-dimensional model beta_t = Z_t' d with, by default,
Z_t = (1, j, j^2) truncated to the degree of the effect curve (constant: p = 1, linear: p = 2,
quadratic: p = 3); ``z`` sets any other Z (``z="constant"`` tests the average effect only). q is
the dimension of the control (baseline) model, 3 in MRT-SS. Then

.. math::

    M &= \sum_t \tau_t p_t (1 - p_t) Z_t Z_t^\top, \qquad
    d = \Big(\sum_t \tau_t Z_t Z_t^\top\Big)^{-1} \sum_t \tau_t Z_t \beta_t, \\
    \lambda(N) &= N\, d^\top M d, \qquad
    \text{power}(N) = 1 - F_{p,\, N-p-q;\, \lambda(N)}\big(F^{-1}_{p,\, N-p-q}(1 - \alpha)\big)

(d: the availability-weighted least-squares projection of the effect on Z;
F_{a,b;l}: the noncentral F distribution function). The sample size is the smallest integer N
with power(N) >= the target; power(N) increases strictly with N (lambda grows, the critical value
falls), so it is found by integer bisection. Unlike MRT-SS there is no floor of 10 and no cap of
1,000: the exact N is reported up to ``n_max``; below 10, where the F approximation is
unreliable, it comes with a note and a :class:`~hte_mrt.design.common.DesignWarning` (a warning
about the design calculation, not the data, hence not a ``DegenerateDataWarning``).

The public functions take the design as keyword arguments, build one :class:`ContinuousDesign`
(:func:`continuous_design`) and ask it; a design built once answers every question
(``design.sample_size()``, ``design.power_table(ns)``, ``design.power_result(n)``,
``design.minimum_detectable_effect(n)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, stats

from hte_mrt.design.base import _DesignBase, _small_note
from hte_mrt.design.common import (
    DEFAULT_N_MAX,
    _check_level,
    _check_n,
    _check_range,
    _positive_int,
    _rank_check,
)
from hte_mrt.design.curves import Curve, _per_decision
from hte_mrt.design.results import MDEResult, PowerResult, SampleSizeResult
from hte_mrt.errors import DesignError

__all__ = [
    "ContinuousDesign",
    "continuous_design",
    "minimum_detectable_effect",
    "mrt_power",
    "mrt_sample_size",
    "power_table",
]


@dataclass(frozen=True, eq=False)
class ContinuousDesign(_DesignBase):
    """A continuous-outcome MRT design (Liao et al. 2016), expanded to decision points.

    Build it with :func:`continuous_design`. ``delta = d' M d`` is the noncentrality contributed
    by one participant: lambda(N) = N delta. A design answers every question about itself:
    ``power(n)`` (numbers), ``power_result(n)``, ``power_table(ns)``, ``sample_size(power)``,
    ``minimum_detectable_effect(n)``, ``curves()`` (the per-decision inputs) and ``describe()``.
    """

    days: int
    per_day: int
    effect: np.ndarray
    availability: np.ndarray
    prob: np.ndarray
    z: np.ndarray
    z_names: tuple[str, ...]
    q: int
    effect_curve: Curve | None = None
    availability_curve: Curve | None = None
    M: np.ndarray = field(init=False, repr=False)
    d: np.ndarray = field(init=False, repr=False)
    delta: float = field(init=False)
    fitted_effect: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tau, pr, Z = self.availability, self.prob, self.z
        w = tau * pr * (1 - pr)
        M = (Z * w[:, None]).T @ Z
        A = (Z * tau[:, None]).T @ Z
        advice = (
            "z needs as many distinct days with positive availability as it has columns "
            "(a quadratic in the day needs >= 3 days); drop columns or use z='constant'."
        )
        _rank_check(A, "sum_t tau_t Z_t Z_t'", advice)
        d = np.linalg.solve(A, (Z * tau[:, None]).T @ self.effect)
        object.__setattr__(self, "M", M)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "delta", float(d @ M @ d))
        object.__setattr__(self, "fitted_effect", Z @ d)

    @property
    def p(self) -> int:
        """Number of effect parameters tested (columns of Z)."""
        return self.z.shape[1]

    @property
    def n_decisions(self) -> int:
        return self.days * self.per_day

    @property
    def outcome(self) -> str:
        return "continuous"

    @property
    def average_effect(self) -> float:
        """Mean standardized effect over all decision points."""
        return float(self.effect.mean())

    @property
    def effect_in_span(self) -> bool:
        """Whether Z d reproduces the effect exactly (else the test sees only its projection)."""
        scale = max(float(np.max(np.abs(self.effect))), 1e-300)
        return bool(np.max(np.abs(self.fitted_effect - self.effect)) <= 1e-8 * scale)

    def curves(self) -> pd.DataFrame:
        """One row per decision point: day, decision, effect, availability, prob, fitted."""
        T = self.n_decisions
        return pd.DataFrame(
            {
                "decision_point": np.arange(1, T + 1),
                "day": np.arange(T) // self.per_day + 1,
                "decision": np.arange(T) % self.per_day + 1,
                "effect": self.effect,
                "availability": self.availability,
                "prob": self.prob,
                "fitted_effect": self.fitted_effect,
            }
        )

    def describe(self) -> str:
        eff = self.effect_curve.describe() if self.effect_curve else "per-decision values"
        av = self.availability_curve.describe() if self.availability_curve else "per-decision"
        pr = f"{self.prob[0]:g}" if np.all(self.prob == self.prob[0]) else "time-varying"
        return (
            f"{self.days} days x {self.per_day} decisions/day = {self.n_decisions} decision "
            f"points; randomization probability {pr}; availability {av}; standardized effect "
            f"{eff} (average {self.average_effect:.4g}); tested with Z = "
            f"({', '.join(self.z_names)}), p = {self.p}, q = {self.q}"
        )

    # ---- solving (hooks of _DesignBase) --------------------------------------------------
    def _solve_n(self, target: float, alpha: float, n_max: int) -> tuple[int, float | None]:
        return self._integer_search(target, alpha, n_max), None

    def _design_note(self) -> str | None:
        if self.effect_in_span:
            return None
        return (
            "the effect curve is not in the span of z: the power is that of its "
            "availability-weighted projection on z (see design.curves()['fitted_effect'])."
        )

    def scaled(self, factor: float) -> ContinuousDesign:
        """The same design with the effect multiplied by ``factor`` (lambda scales by s^2)."""
        s = float(factor)
        return ContinuousDesign(
            self.days,
            self.per_day,
            self.effect * s,
            self.availability,
            self.prob,
            self.z,
            self.z_names,
            self.q,
            None if self.effect_curve is None else self.effect_curve.scaled(s),
            self.availability_curve,
        )

    def minimum_detectable_effect(
        self, n: int, power: float = 0.8, alpha: float = 0.05
    ) -> MDEResult:
        """The multiple of this design's effect detected with probability ``power`` at N.

        See :func:`minimum_detectable_effect`.
        """
        _check_level(alpha, power)
        p, qq, a, target = self.p, self.q, float(alpha), float(power)
        _check_n(n, p, qq)
        if self.delta <= 0:
            raise DesignError(
                "effect: the effect shape projects to zero on z, so no multiple of it is "
                "detectable; give a non-zero effect shape."
            )
        df2 = n - p - qq
        crit = stats.f.ppf(1 - a, p, df2)

        def gap(lam: float) -> float:
            return float(stats.ncf.sf(crit, p, df2, lam)) - target

        hi = 1.0
        while gap(hi) < 0:
            hi *= 2.0
            if hi > 1e12:  # pragma: no cover - numerically unreachable targets
                raise DesignError(f"power: target {target:g} cannot be reached at N = {n}.")
        lam = optimize.brentq(gap, 0.0, hi, xtol=1e-14, rtol=1e-14, maxiter=500)
        s = math.sqrt(lam / (n * self.delta))
        scaled_design = self.scaled(s)
        scaled = scaled_design.effect
        mean = float(scaled.mean())
        note = None
        if abs(self.average_effect) <= 1e-12 * max(float(np.max(np.abs(self.effect))), 1e-300):
            note = "the effect shape averages zero, so the MDE is reported as the scale only."
            mean = float("nan")
        return MDEResult(
            n=int(n),
            mde=mean,
            scale=s,
            power=scaled_design._power(n, a),
            target_power=target,
            alpha=a,
            p=p,
            q=qq,
            effect=scaled,
            design=scaled_design,
            note=note if note else _small_note(int(n)),
        )


def _z_matrix(
    z: Any, days: int, per_day: int, effect_curve: Curve | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    T = days * per_day
    j = np.repeat(np.arange(days, dtype=float), per_day)
    if z is None:
        if effect_curve is None or effect_curve.degree is None:
            raise DesignError(
                "z: the effect was given as values, so say which effect model to test: pass "
                "z='constant' (the average effect), 'linear' or 'quadratic' (in the day), or a "
                "matrix with one row per decision point (or per day)."
            )
        z = ("constant", "linear", "quadratic")[effect_curve.degree]
    if isinstance(z, str):
        deg = {"constant": 0, "linear": 1, "quadratic": 2}.get(z.lower())
        if deg is None:
            raise DesignError(
                f"z must be 'constant', 'linear', 'quadratic' or a matrix, got {z!r}; pass one "
                "of those names or a (decision points x p) matrix."
            )
        names = ("1", "day", "day^2")[: deg + 1]
        return np.column_stack([j**k for k in range(deg + 1)]), names
    try:
        Z = np.asarray(z, dtype=float)
    except (TypeError, ValueError):
        raise DesignError(
            "z must be a name ('constant', 'linear', 'quadratic') or a numeric matrix; pass "
            "one of those."
        ) from None
    if Z.ndim == 0:
        Z = np.full((T, 1), float(Z))
    if Z.ndim == 1:
        Z = Z[:, None]
    if Z.ndim != 2:
        raise DesignError(f"z must be a matrix (decision points x p), got {Z.ndim} dimensions.")
    if Z.shape[0] == days and Z.shape[0] != T:
        Z = np.repeat(Z, per_day, axis=0)
    if Z.shape[0] != T:
        raise DesignError(
            f"z has {Z.shape[0]} rows; give one per decision point ({T}) or one per day ({days})."
        )
    if not np.all(np.isfinite(Z)):
        raise DesignError("z contains non-finite values; give a finite matrix.")
    return Z, tuple(f"z{k + 1}" for k in range(Z.shape[1]))


def continuous_design(
    *,
    days: int,
    per_day: int,
    prob: Curve | float | ArrayLike,
    availability: Curve | float | ArrayLike,
    effect: Curve | float | ArrayLike,
    z: str | ArrayLike | None = None,
    q: int = 3,
) -> ContinuousDesign:
    """Validate and expand a continuous-outcome MRT design (see the module docstring).

    Parameters
    ----------
    days, per_day
        D days with K decision points a day.
    prob
        Randomization probability in (0, 1): a number, one per day, one per decision point or
        a :class:`Curve`.
    availability
        Expected availability in [0, 1] (same forms).
    effect
        Standardized proximal effect (effect / outcome SD): a :class:`Curve` (MRT-SS's three
        shapes), a number, or one value per day / per decision point.
    z
        The effect model tested: ``'constant'`` (the average effect, p = 1), ``'linear'``,
        ``'quadratic'`` (in the day index j), or a matrix (T x p or D x p). Default: the degree
        of the effect curve, as MRT-SS; required when ``effect`` is a vector.
    q
        Number of parameters of the control (baseline) model; MRT-SS uses 3.
    """
    D = _positive_int(days, "days")
    K = _positive_int(per_day, "per_day")
    qq = _positive_int(q, "q")
    beta, ecurve = _per_decision(effect, "effect", D, K)
    tau, acurve = _per_decision(availability, "availability", D, K)
    pr, pcurve = _per_decision(prob, "prob", D, K)
    _check_range(
        pr,
        "prob",
        0,
        1,
        open_lo=True,
        open_hi=True,
        per_day=K,
        curve=pcurve,
        hint="Give randomization probabilities strictly between 0 and 1.",
    )
    _check_range(
        tau,
        "availability",
        0,
        1,
        open_lo=False,
        open_hi=False,
        per_day=K,
        curve=acurve,
        hint="Choose values (or curve parameters) that stay within [0, 1].",
    )
    if not np.all(np.isfinite(beta)):
        raise DesignError("effect contains non-finite values; give finite effects.")
    if tau.sum() <= 0:
        raise DesignError(
            "availability is 0 at every decision point: nobody can be treated; give the "
            "expected availability (e.g. availability=0.7)."
        )
    Z, names = _z_matrix(z, D, K, ecurve)
    return ContinuousDesign(D, K, beta, tau, pr, Z, names, qq, ecurve, acurve)


# ---------------------------------------------------------------------------------------------
# public API: the design as keyword arguments
# ---------------------------------------------------------------------------------------------
_DESIGN_PARAMS = """days, per_day : int
        D days with K decision points a day.
    prob : Curve, float or array_like
        Randomization probability p_t in (0, 1): a number, one value per day or per decision
        point, or a :class:`~hte_mrt.design.Curve`.
    availability : Curve, float or array_like
        Expected availability tau_t in [0, 1] (same forms).
    effect : Curve, float or array_like
        Standardized proximal effect beta_t (effect / outcome SD): a
        :class:`~hte_mrt.design.Curve` (MRT-SS's three shapes), a number, or one value per day
        or per decision point.
    z : {'constant', 'linear', 'quadratic'} or array_like, optional
        The effect model tested (Z_t): the average effect (p = 1), linear or quadratic in the
        day index, or a T x p (or D x p) matrix. Default: the degree of the effect curve, as
        MRT-SS; required when ``effect`` is a vector.
    q : int, default 3
        Number of parameters of the control (baseline) model; MRT-SS uses 3."""


def _doc(fn):
    fn.__doc__ = fn.__doc__.replace("%(design_params)s", _DESIGN_PARAMS)
    return fn


@_doc
def mrt_sample_size(
    *,
    days: int,
    per_day: int,
    prob: Curve | float | ArrayLike,
    availability: Curve | float | ArrayLike,
    effect: Curve | float | ArrayLike,
    z: str | ArrayLike | None = None,
    q: int = 3,
    alpha: float = 0.05,
    power: float = 0.8,
    n_max: int = DEFAULT_N_MAX,
) -> SampleSizeResult:
    """Smallest number of participants N with power(N) >= ``power`` (continuous outcome).

    The sample-size formula of Liao, Klasnja, Tewari & Murphy (2016, Stat Med 35:1944), as the
    MRT-SS calculator (R ``MRTSampleSize::calculateSampleSize``) computes it, exactly when
    N >= 10; see :mod:`hte_mrt.design.continuous` for the formulas.

    Parameters
    ----------
    %(design_params)s
    alpha : float, default 0.05
        Significance level of the planned F test.
    power : float, default 0.8
        Target power.
    n_max : int, default 1,000,000
        Largest N searched.

    Returns
    -------
    SampleSizeResult
        ``n``, ``power_at_n``, ``note``, ``design``; ``table()`` has one row with columns
        n, n_exact (empty), power_at_n, power_at_n_minus_1, target_power, alpha, df1, df2 and
        noncentrality; ``power_table()`` and ``plot()`` around N.

    Raises
    ------
    PowerNotReachableError
        The target is not reached below ``n_max``.
    DesignError
        Invalid inputs (each message names the argument).

    Examples
    --------
    MRT-SS's reference example (42 days, 5 decision points a day):

    >>> import hte_mrt as hm
    >>> res = hm.mrt_sample_size(
    ...     days=42, per_day=5, prob=0.4,
    ...     availability=hm.Curve.quadratic(initial=0.7, mean=0.5, turn_day=42),
    ...     effect=hm.Curve.quadratic(initial=0, mean=0.1, turn_day=28))
    >>> res.n
    46
    >>> res.table()[["n", "power_at_n", "power_at_n_minus_1"]].round(4)
        n  power_at_n  power_at_n_minus_1
    0  46      0.8033              0.7925
    """
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    return design.sample_size(power=power, alpha=alpha, n_max=n_max)


@_doc
def mrt_power(
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
) -> PowerResult:
    """Power of the F(p, N-p-q) test of the effect at N participants (continuous outcome).

    Liao, Klasnja, Tewari & Murphy (2016), as MRT-SS computes it; see
    :mod:`hte_mrt.design.continuous` for the formulas.

    Parameters
    ----------
    n : int
        Number of participants N (> p + q).
    %(design_params)s
    alpha : float, default 0.05
        Significance level of the planned F test.

    Returns
    -------
    PowerResult
        ``power``, ``noncentrality``, ``critical_value``, ``design``; ``table()`` has one row
        with columns n, power, alpha, df1, df2, noncentrality and critical_value.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> res = hm.mrt_power(30, days=30, per_day=5, prob=0.5, availability=0.7, effect=0.1)
    >>> round(res.power, 4)
    0.7708
    >>> res.table()[["n", "power", "df1", "df2"]].round(4)
        n   power  df1  df2
    0  30  0.7708    1   26
    """
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    return design.power_result(n, alpha)


@_doc
def power_table(
    ns: Sequence[int] | ArrayLike,
    *,
    days: int,
    per_day: int,
    prob: Curve | float | ArrayLike,
    availability: Curve | float | ArrayLike,
    effect: Curve | float | ArrayLike,
    z: str | ArrayLike | None = None,
    q: int = 3,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Power at each number of participants in ``ns`` (continuous outcome, Liao et al. 2016).

    Parameters
    ----------
    ns : sequence of int
        The numbers of participants N (each > p + q).
    %(design_params)s
    alpha : float, default 0.05
        Significance level of the planned F test.

    Returns
    -------
    pandas.DataFrame
        One row per N; columns n, power, noncentrality (lambda(N)), df1 (p), df2 (N - p - q)
        and critical_value.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> tab = hm.power_table([20, 30, 40], days=30, per_day=5, prob=0.5, availability=0.7,
    ...                      effect=0.1)
    >>> tab[["n", "power", "df2"]].round(3)
        n  power  df2
    0  20  0.576   16
    1  30  0.771   26
    2  40  0.884   36
    """
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    return design.power_table(ns, alpha)


@_doc
def minimum_detectable_effect(
    n: int,
    *,
    days: int,
    per_day: int,
    prob: Curve | float | ArrayLike,
    availability: Curve | float | ArrayLike,
    effect: Curve | float | ArrayLike = 1.0,
    z: str | ArrayLike | None = None,
    q: int = 3,
    alpha: float = 0.05,
    power: float = 0.8,
) -> MDEResult:
    """Smallest multiple of the effect curve detected with probability ``power`` at N.

    ``effect`` gives the *shape* (default: constant); it is scaled by s > 0 (the noncentrality
    of Liao et al. 2016 scales by s^2), s solves power(N; lambda*) = target with lambda* found
    by root-finding, and the MDE is reported as the average standardized effect of the scaled
    curve, s * mean(effect).

    Parameters
    ----------
    n : int
        Number of participants N (> p + q).
    %(design_params)s
    alpha : float, default 0.05
        Significance level of the planned F test.
    power : float, default 0.8
        Target power.

    Returns
    -------
    MDEResult
        ``mde``, ``scale``, the scaled ``effect`` and ``design``; ``table()`` has one row with
        columns n, mde, scale, power, target_power, alpha, df1 and df2.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> m = hm.minimum_detectable_effect(40, days=30, per_day=5, prob=0.5, availability=0.7)
    >>> round(m.mde, 4), round(m.power, 4)
    (0.0889, 0.8)
    """
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    return design.minimum_detectable_effect(n, power=power, alpha=alpha)
