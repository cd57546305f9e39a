"""Sample size, power and minimum detectable effect for micro-randomized trials (MRTs).

Continuous proximal outcome — Liao, Klasnja, Tewari & Murphy (2016, Stat Med 35:1944), computed
exactly as the R package MRTSampleSize (the MRT-SS calculator) does
------------------------------------------------------------------------------------------------
A trial lasts D days with K decision points a day, T = D K decision points t = 1..T; j(t) is the
day index 0..D-1 of decision point t. The design is given by

* the standardized proximal effect beta_t (effect / outcome SD),
* the expected availability tau_t = P(I_t = 1), and
* the randomization probability p_t = P(A_t = 1 | I_t = 1),

each either a :class:`Curve` over days (constant / linear / quadratic, constant within a day, as
in MRT-SS), a scalar, one value per day, or one value per decision point. The effect is tested
through the p-dimensional model beta_t = Z_t' d with, by default, Z_t = (1, j, j^2) truncated to
the degree of the effect curve (constant: p = 1, linear: p = 2, quadratic: p = 3); ``z`` sets any
other Z (``z="constant"`` tests the average effect only). q is the dimension of the control
(baseline) model, 3 in MRT-SS. Then

    M = sum_t tau_t p_t (1 - p_t) Z_t Z_t'                          (p x p)
    d = (sum_t tau_t Z_t Z_t')^{-1} sum_t tau_t Z_t beta_t           (availability-weighted LS)
    lambda(N) = N d' M d                                             (noncentrality)
    power(N) = 1 - F_{p, N-p-q; lambda(N)}(c),  c = F^{-1}_{p, N-p-q}(1 - alpha)

(F_{a,b;l}: noncentral F distribution function). The sample size is the smallest integer N with
power(N) >= the target; power(N) increases strictly with N (lambda grows, c falls), so it is found
by integer bisection. Unlike MRT-SS there is no floor of 10 and no cap of 1,000: the exact N is
reported (with a note below 10, where the F approximation is doubtful) up to ``n_max``.

Binary proximal outcome — Cohn, Qian & Murphy (2023, Stat Med; R MRTSampleSizeBinary)
------------------------------------------------------------------------------------
The marginal excursion effect on the log relative-risk scale is f_t' beta, the null success
probability E[Y_{t+1} | I_t = 1, A_t = 0] = exp(g_t' a) (``null_coef`` = a, alpha in the paper).
With mu0_t = exp(g_t' a) and m_t = f_t' beta,

    M = sum_t tau_t p_t (1-p_t) e^{p_t m_t} mu0_t f_t f_t'                          (bread)
    S = sum_t tau_t p_t (1-p_t) e^{2 p_t m_t} mu0_t [(1-p_t) e^{-m_t} + p_t - mu0_t] f_t f_t'
    lambda(N) = N beta' (M^{-1} S M^{-1})^{-1} beta

and the same F(p, N - p - q) test with q = dim g. As in MRTSampleSizeBinary the sample size
solves power(N) = target for real N (``n_exact``) and rounds up. These are the asymptotic bread
and meat of the EMEE2 estimating equation (treatment centred at p_t inside the residual), see
:func:`hte_mrt.estimators.emee.emee` with ``variant="emee2"``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, stats

from hte_mrt.errors import DesignError, HteMrtWarning

__all__ = [
    "BinaryDesign",
    "ContinuousDesign",
    "Curve",
    "DesignWarning",
    "MDEResult",
    "PowerNotReachableError",
    "PowerResult",
    "SampleSizeResult",
    "binary_design",
    "binary_power",
    "binary_sample_size",
    "continuous_design",
    "minimum_detectable_effect",
    "mrt_power",
    "mrt_sample_size",
    "plot_power_curve",
    "power_table",
]

SMALL_N = 10  # below this MRT-SS reports only "<= 10": we report N and add a note
DEFAULT_N_MAX = 1_000_000


class PowerNotReachableError(DesignError):
    """The target power is not reached by any N up to ``n_max``.

    Attributes: ``target``, ``n_max``, ``power_at_n_max``.
    """

    def __init__(self, message: str, *, target: float, n_max: int, power_at_n_max: float):
        self.target = target
        self.n_max = n_max
        self.power_at_n_max = power_at_n_max
        super().__init__(message)


class DesignWarning(HteMrtWarning):
    """A design that can be computed but whose result may mislead (e.g. model mismatch)."""


# ---------------------------------------------------------------------------------------------
# curves over days
# ---------------------------------------------------------------------------------------------
def _finite(x: Any, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise DesignError(f"{name} must be a number, got {x!r}.") from None
    if not math.isfinite(v):
        raise DesignError(f"{name} must be finite, got {v}.")
    return v


@dataclass(frozen=True)
class Curve:
    """A curve over the days of the trial (for the effect, availability or probability).

    Day j = 0..D-1 (day 1 is j = 0); the value is constant within a day, as in MRT-SS.

    * ``Curve.constant(v)``: v every day.
    * ``Curve.linear(initial, mean)``: initial + 2 (mean - initial) j / (D - 1), i.e. from
      ``initial`` on day 1 to ``2 mean - initial`` on day D, averaging ``mean``.
    * ``Curve.quadratic(initial, mean, turn_day, turn=None)``: initial + b j + c j^2 with its
      vertex on day ``turn_day`` (b = -2 c (turn_day - 1)) and average ``mean`` over the D days.
      ``turn="max"`` / ``"min"`` states what the turning point must be (MRT-SS's effect curve
      has its *maximum* on the given day); an impossible combination raises :class:`DesignError`.
    * ``Curve.from_values(v)``: any values, one per day or one per decision point.
    """

    shape: Literal["constant", "linear", "quadratic", "values"]
    mean: float | None = None
    initial: float | None = None
    turn_day: float | None = None
    turn: Literal["max", "min"] | None = None
    values: tuple[float, ...] | None = field(default=None, repr=False)

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def constant(cls, value: float) -> Curve:
        """The same value every day."""
        return cls("constant", mean=_finite(value, "Curve.constant(value)"))

    @classmethod
    def linear(cls, initial: float, mean: float) -> Curve:
        """Straight line from ``initial`` (day 1) to ``2 mean - initial`` (last day)."""
        return cls(
            "linear",
            mean=_finite(mean, "Curve.linear(mean)"),
            initial=_finite(initial, "Curve.linear(initial)"),
        )

    @classmethod
    def quadratic(
        cls,
        initial: float,
        mean: float,
        turn_day: float,
        turn: Literal["max", "min"] | None = None,
    ) -> Curve:
        """Quadratic in the day with value ``initial`` on day 1, average ``mean``, vertex on
        day ``turn_day`` (1-based); ``turn`` optionally requires a maximum or a minimum there."""
        td = _finite(turn_day, "Curve.quadratic(turn_day)")
        if td < 1:
            raise DesignError(
                f"Curve.quadratic(turn_day) is a 1-based day, got {turn_day!r}: give a day >= 1."
            )
        if turn not in (None, "max", "min"):
            raise DesignError(f"Curve.quadratic(turn) must be 'max', 'min' or None, got {turn!r}.")
        return cls(
            "quadratic",
            mean=_finite(mean, "Curve.quadratic(mean)"),
            initial=_finite(initial, "Curve.quadratic(initial)"),
            turn_day=td,
            turn=turn,
        )

    @classmethod
    def from_values(cls, values: ArrayLike) -> Curve:
        """Arbitrary values: one per day (constant within the day) or one per decision point."""
        v = np.asarray(values, dtype=float).ravel()
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise DesignError("Curve.from_values needs a non-empty vector of finite numbers.")
        return cls("values", mean=float(v.mean()), values=tuple(v.tolist()))

    # ---- properties ---------------------------------------------------------------------
    @property
    def degree(self) -> int | None:
        """Polynomial degree in the day (0, 1, 2); None for arbitrary values."""
        return {"constant": 0, "linear": 1, "quadratic": 2}.get(self.shape)

    def scaled(self, factor: float) -> Curve:
        """The curve multiplied by ``factor`` (shape, initial value and mean all scale)."""
        s = float(factor)
        if self.shape == "values":
            return Curve.from_values(np.asarray(self.values) * s)
        return Curve(
            self.shape,
            mean=None if self.mean is None else self.mean * s,
            initial=None if self.initial is None else self.initial * s,
            turn_day=self.turn_day,
            turn=self.turn if s >= 0 else {"max": "min", "min": "max", None: None}[self.turn],
        )

    def describe(self) -> str:
        """Short description, e.g. ``quadratic(initial=0, mean=0.1, turn day 28)``."""
        if self.shape == "constant":
            return f"constant({self.mean:g})"
        if self.shape == "linear":
            return f"linear(initial={self.initial:g}, mean={self.mean:g})"
        if self.shape == "quadratic":
            t = "" if self.turn is None else f" ({self.turn})"
            return (
                f"quadratic(initial={self.initial:g}, mean={self.mean:g}, "
                f"turn day {self.turn_day:g}{t})"
            )
        return f"{len(self.values or ())} values (mean {self.mean:g})"

    # ---- evaluation ---------------------------------------------------------------------
    def daily(self, days: int, *, name: str = "curve") -> np.ndarray:
        """Values on days 1..D (length D). Not defined for per-decision-point values."""
        D = int(days)
        j = np.arange(D, dtype=float)
        if self.shape == "constant":
            return np.full(D, self.mean)
        if self.shape == "values":
            v = np.asarray(self.values, dtype=float)
            if v.size == 1:
                return np.full(D, v[0])
            if v.size != D:
                raise DesignError(f"{name}: {v.size} values do not give one per day ({D} days).")
            return v
        b0, m = float(self.initial), float(self.mean)  # type: ignore[arg-type]
        if self.shape == "linear":
            if D == 1:
                if not math.isclose(b0, m, abs_tol=1e-12):
                    raise DesignError(
                        f"{name}: a 1-day trial has a single value, so the linear curve's initial "
                        f"({b0:g}) must equal its mean ({m:g}); use Curve.constant({m:g})."
                    )
                return np.full(1, m)
            return b0 + 2.0 * (m - b0) * j / (D - 1)
        # quadratic: beta_j = b0 + b j + c j^2, b = -2 c j*, mean over the D days = m
        js = float(self.turn_day) - 1.0  # type: ignore[arg-type]
        if self.turn_day > D:  # type: ignore[operator]
            raise DesignError(
                f"{name}: turn_day={self.turn_day:g} lies after the last day ({D}). Give a "
                f"turn_day between 1 and {D}, or a linear or Curve.from_values curve."
            )
        s1, s2 = j.sum(), (j**2).sum()
        den = s2 - 2.0 * js * s1  # = D (D-1) ((2D-1)/6 - j*)
        if abs(den) <= 1e-10 * max(s2, 1.0):
            if math.isclose(b0, m, abs_tol=1e-12):
                return np.full(D, m)
            raise DesignError(
                f"{name}: every quadratic with its turning point on day {self.turn_day:g} of a "
                f"{D}-day trial averages exactly its initial value, so initial={b0:g} and "
                f"mean={m:g} cannot both hold. Move turn_day or set initial equal to mean."
            )
        c = D * (m - b0) / den
        b = -2.0 * js * c
        if self.turn is not None and c != 0.0 and (c < 0) != (self.turn == "max"):
            other = "minimum" if self.turn == "max" else "maximum"
            # a max (c < 0) needs (m - b0) / den < 0
            need = "<=" if (den < 0) == (self.turn == "max") else ">="
            raise DesignError(
                f"{name}: Curve.quadratic(initial={b0:g}, mean={m:g}, turn_day="
                f"{self.turn_day:g}, turn='{self.turn}') is impossible over {D} days: a "
                f"quadratic with its vertex on day {self.turn_day:g} and this initial value has "
                f"a {other} there. A {self.turn}imum on that day needs initial {need} mean; "
                f"change initial or mean, or turn_day, or drop turn='{self.turn}'."
            )
        return b0 + b * j + c * j**2

    def expand(self, days: int, per_day: int, *, name: str = "curve") -> np.ndarray:
        """Values at all D K decision points (day-major order)."""
        if self.shape == "values" and self.values is not None:
            v = np.asarray(self.values, dtype=float)
            if v.size == days * per_day and v.size != days:
                return v.copy()
            if v.size not in (1, days):
                raise DesignError(
                    f"{name}: {v.size} values; give 1, one per day ({days}) or one per decision "
                    f"point ({days} x {per_day} = {days * per_day})."
                )
        return np.repeat(self.daily(days, name=name), per_day)


def _per_decision(x: Any, name: str, days: int, per_day: int) -> tuple[np.ndarray, Curve | None]:
    """Expand a Curve / scalar / per-day / per-decision-point vector to length T = D K."""
    T = days * per_day
    if isinstance(x, Curve):
        return x.expand(days, per_day, name=name), x
    try:
        v = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise DesignError(
            f"{name} must be a Curve, a number or a vector of numbers, got {type(x).__name__}."
        ) from None
    if v.ndim == 0 or v.size == 1:
        val = float(v.ravel()[0])
        return np.full(T, val), Curve("constant", mean=val)
    v = v.ravel()
    if v.size == T:
        return v.copy(), None
    if v.size == days:
        return np.repeat(v, per_day), None
    raise DesignError(
        f"{name} has {v.size} values; give one number, one per day ({days}) or one per decision "
        f"point ({days} x {per_day} = {T})."
    )


def _where(t: int, per_day: int | None) -> str:
    """'decision point 12 (day 3, decision 2)' for a 0-based index."""
    if per_day:
        return f"decision point {t + 1} (day {t // per_day + 1}, decision {t % per_day + 1})"
    return f"decision point {t + 1}"


def _check_range(
    v: np.ndarray,
    name: str,
    lo: float,
    hi: float,
    *,
    open_lo: bool,
    open_hi: bool,
    per_day: int | None,
    curve: Curve | None = None,
    hint: str = "",
) -> None:
    if not np.all(np.isfinite(v)):
        t = int(np.nonzero(~np.isfinite(v))[0][0])
        raise DesignError(f"{name} is not finite at {_where(t, per_day)}.")
    bad = (v <= lo if open_lo else v < lo) | (v >= hi if open_hi else v > hi)
    if bad.any():
        t = int(np.nonzero(bad)[0][0])
        rng = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        src = f" {curve.describe()}" if curve is not None and curve.shape != "constant" else ""
        raise DesignError(
            f"{name}{src} must lie in {rng} at every decision point, but is {v[t]:.6g} at "
            f"{_where(t, per_day)} ({int(bad.sum())} decision point(s) outside). {hint}".rstrip()
        )


def _check_level(alpha: float, power: float | None = None) -> None:
    a = _finite(alpha, "alpha")
    if not 0 < a < 1:
        raise DesignError(f"alpha (significance level) must lie in (0, 1), got {alpha!r}.")
    if power is not None:
        pw = _finite(power, "power")
        if not 0 < pw < 1:
            raise DesignError(f"power (target) must lie in (0, 1), got {power!r}, e.g. 0.8.")
        if pw <= a:
            raise DesignError(
                f"power (target) = {pw:g} must exceed alpha = {a:g}: any N has power >= alpha."
            )


def _check_n(n: Any, p: int, q: int, *, integer: bool = True) -> np.ndarray:
    arr = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise DesignError("n (number of participants) must be finite.")
    if integer and np.any(arr != np.round(arr)):
        raise DesignError(f"n (number of participants) must be whole numbers, got {n!r}.")
    small = arr <= p + q
    if np.any(small):
        nn = float(arr[small].ravel()[0])
        raise DesignError(
            f"p + q too large for N: with N = {nn:g} participants the F test has "
            f"N - p - q = {nn - p - q:g} denominator degrees of freedom (p = {p} effect "
            f"parameters, q = {q} control parameters). Use N > {p + q}, or fewer effect (z) or "
            f"control (q) parameters."
        )
    return arr


def _f_power(n: np.ndarray, delta: float, p: int, q: int, alpha: float) -> np.ndarray:
    """1 - F_{p, n-p-q; n delta}(F^{-1}_{p, n-p-q}(1 - alpha)), vectorized over n (real)."""
    n = np.asarray(n, dtype=float)
    df2 = n - p - q
    crit = stats.f.ppf(1.0 - alpha, p, df2)
    if delta <= 0:
        return np.asarray(stats.f.sf(crit, p, df2), dtype=float)
    return np.asarray(stats.ncf.sf(crit, p, df2, n * delta), dtype=float)


def _rank_check(mat: np.ndarray, name: str, advice: str) -> None:
    w = np.linalg.eigvalsh(mat)
    if w.min() <= 1e-10 * max(w.max(), 1e-300):
        raise DesignError(
            f"{name} is singular (rank {np.sum(w > 1e-10 * w.max())} of {len(w)}): {advice}"
        )


# ---------------------------------------------------------------------------------------------
# designs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ContinuousDesign:
    """A continuous-outcome MRT design (Liao et al. 2016), expanded to decision points.

    Build it with :func:`continuous_design`. ``delta = d' M d`` is the noncentrality contributed
    by one participant: lambda(N) = N delta.
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

    def noncentrality(self, n: ArrayLike) -> np.ndarray:
        """lambda(N) = N d' M d."""
        return np.asarray(n, dtype=float) * self.delta

    def power(self, n: ArrayLike, alpha: float = 0.05) -> np.ndarray | float:
        """Power of the level-alpha F(p, N-p-q) test at N participants (vectorized)."""
        _check_level(alpha)
        arr = _check_n(n, self.p, self.q)
        out = _f_power(arr, self.delta, self.p, self.q, alpha)
        return float(out) if np.ndim(n) == 0 else out

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


@dataclass(frozen=True, eq=False)
class BinaryDesign:
    """A binary-outcome MRT design (Cohn, Qian & Murphy 2023). Build with :func:`binary_design`.

    ``delta = beta' Sigma^{-1} beta`` with Sigma = M^{-1} S M^{-1}: lambda(N) = N delta.
    """

    prob: np.ndarray
    availability: np.ndarray
    f: np.ndarray
    g: np.ndarray
    beta: np.ndarray
    null_coef: np.ndarray
    f_names: tuple[str, ...]
    g_names: tuple[str, ...]
    per_day: int | None = None
    M: np.ndarray = field(init=False, repr=False)
    S: np.ndarray = field(init=False, repr=False)
    sigma: np.ndarray = field(init=False, repr=False)
    delta: float = field(init=False)

    def __post_init__(self) -> None:
        pr, tau, F = self.prob, self.availability, self.f
        m = F @ self.beta
        mu0 = np.exp(self.g @ self.null_coef)
        base = tau * pr * (1 - pr) * mu0
        wm = base * np.exp(pr * m)
        ws = base * np.exp(2 * pr * m) * ((1 - pr) * np.exp(-m) + pr - mu0)
        M = (F * wm[:, None]).T @ F
        S = (F * ws[:, None]).T @ F
        advice = "f needs as many linearly independent rows with positive availability as columns."
        _rank_check(M, "the bread M", advice)
        _rank_check(S, "the meat S", advice)
        Minv = np.linalg.inv(M)
        sigma = Minv @ S @ Minv.T
        delta = float(self.beta @ np.linalg.solve(sigma, self.beta))
        object.__setattr__(self, "M", M)
        object.__setattr__(self, "S", S)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "delta", delta)

    @property
    def p(self) -> int:
        return self.f.shape[1]

    @property
    def q(self) -> int:
        return self.g.shape[1]

    @property
    def n_decisions(self) -> int:
        return len(self.prob)

    @property
    def outcome(self) -> str:
        return "binary"

    def noncentrality(self, n: ArrayLike) -> np.ndarray:
        return np.asarray(n, dtype=float) * self.delta

    def power(self, n: ArrayLike, alpha: float = 0.05) -> np.ndarray | float:
        """Power of the level-alpha F(p, N-p-q) test at N participants (N may be real)."""
        _check_level(alpha)
        arr = _check_n(n, self.p, self.q, integer=False)
        out = _f_power(arr, self.delta, self.p, self.q, alpha)
        return float(out) if np.ndim(n) == 0 else out

    def curves(self) -> pd.DataFrame:
        """One row per decision point: availability, prob, null and treated success prob, RR."""
        m = self.f @ self.beta
        mu0 = np.exp(self.g @ self.null_coef)
        return pd.DataFrame(
            {
                "decision_point": np.arange(1, self.n_decisions + 1),
                "availability": self.availability,
                "prob": self.prob,
                "p_success_control": mu0,
                "p_success_treated": mu0 * np.exp(m),
                "log_rr": m,
            }
        )

    def describe(self) -> str:
        rr = np.exp(self.f @ self.beta)
        pr = f"{self.prob[0]:g}" if np.all(self.prob == self.prob[0]) else "time-varying"
        return (
            f"{self.n_decisions} decision points; randomization probability {pr}; mean "
            f"availability {self.availability.mean():.4g}; relative risk {rr.min():.4g}.."
            f"{rr.max():.4g}; f = ({', '.join(self.f_names)}), p = {self.p}; "
            f"g = ({', '.join(self.g_names)}), q = {self.q}"
        )


def _z_matrix(
    z: Any, days: int, per_day: int, effect_curve: Curve | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    T = days * per_day
    j = np.repeat(np.arange(days, dtype=float), per_day)
    if z is None:
        if effect_curve is None or effect_curve.degree is None:
            raise DesignError(
                "z: the effect was given as values, so say which effect model to test: "
                "z='constant' (the average effect), 'linear' or 'quadratic' (in the day), or a "
                "matrix with one row per decision point (or per day)."
            )
        z = ("constant", "linear", "quadratic")[effect_curve.degree]
    if isinstance(z, str):
        deg = {"constant": 0, "linear": 1, "quadratic": 2}.get(z.lower())
        if deg is None:
            raise DesignError(
                f"z must be 'constant', 'linear', 'quadratic' or a matrix, got {z!r}."
            )
        names = ("1", "day", "day^2")[: deg + 1]
        return np.column_stack([j**k for k in range(deg + 1)]), names
    try:
        Z = np.asarray(z, dtype=float)
    except (TypeError, ValueError):
        raise DesignError("z must be a name or a numeric matrix.") from None
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
        raise DesignError("z contains non-finite values.")
    return Z, tuple(f"z{k + 1}" for k in range(Z.shape[1]))


def _positive_int(x: Any, name: str, minimum: int = 1) -> int:
    try:
        v = int(x)
    except (TypeError, ValueError):
        raise DesignError(f"{name} must be a whole number, got {x!r}.") from None
    if v != x or v < minimum:
        raise DesignError(f"{name} must be a whole number >= {minimum}, got {x!r}.")
    return v


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
        hint="Randomization probabilities must be strictly between 0 and 1.",
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
        raise DesignError("effect contains non-finite values.")
    if tau.sum() <= 0:
        raise DesignError("availability is 0 at every decision point: nobody can be treated.")
    Z, names = _z_matrix(z, D, K, ecurve)
    return ContinuousDesign(D, K, beta, tau, pr, Z, names, qq, ecurve, acurve)


def binary_design(
    *,
    prob: float | ArrayLike,
    availability: float | ArrayLike,
    beta: float | ArrayLike,
    null_coef: float | ArrayLike,
    f: ArrayLike | None = None,
    g: ArrayLike | None = None,
    decisions: int | None = None,
    per_day: int | None = None,
) -> BinaryDesign:
    """Validate a binary-outcome MRT design (Cohn, Qian & Murphy 2023).

    Parameters
    ----------
    prob, availability
        Randomization probability in (0, 1) and expected availability in [0, 1]: a number or one
        value per decision point.
    beta
        Coefficients of the log relative risk f_t' beta (p values).
    null_coef
        Coefficients of the log null success probability, log P(Y = 1 | A = 0, I = 1) = g_t' a
        (q values; "alpha" in Cohn et al.).
    f, g
        T x p and T x q matrices (default: a column of ones, i.e. a constant log RR and a constant
        null probability).
    decisions
        Number of decision points T; needed only when every other input is a number.
    per_day
        Optional: decision points per day, only to name the day in error messages.
    """
    arrays = [np.asarray(x, dtype=float) for x in (prob, availability) if x is not None]
    mats = [np.asarray(x, dtype=float) for x in (f, g) if x is not None]
    lengths = {a.size for a in arrays if a.size > 1} | {m.shape[0] for m in mats if m.ndim >= 1}
    if decisions is not None:
        lengths.add(_positive_int(decisions, "decisions"))
    if len(lengths) > 1:
        raise DesignError(
            f"prob, availability, f, g and decisions disagree on the number of decision points "
            f"({sorted(lengths)}); give every per-decision input with the same length."
        )
    if not lengths:
        raise DesignError("decisions: give the number of decision points (T).")
    T = lengths.pop()

    def vec(x: Any, name: str) -> np.ndarray:
        v = np.asarray(x, dtype=float).ravel()
        return np.full(T, v[0]) if v.size == 1 else v

    pr, tau = vec(prob, "prob"), vec(availability, "availability")
    _check_range(
        pr,
        "prob",
        0,
        1,
        open_lo=True,
        open_hi=True,
        per_day=per_day,
        hint="Randomization probabilities must be strictly between 0 and 1.",
    )
    _check_range(tau, "availability", 0, 1, open_lo=False, open_hi=False, per_day=per_day)
    if tau.sum() <= 0:
        raise DesignError("availability is 0 at every decision point: nobody can be treated.")

    def mat(x: Any, name: str) -> np.ndarray:
        if x is None:
            return np.ones((T, 1))
        a = np.asarray(x, dtype=float)
        a = a[:, None] if a.ndim == 1 else a
        if a.ndim != 2 or not np.all(np.isfinite(a)):
            raise DesignError(f"{name} must be a finite matrix with one row per decision point.")
        return a

    F, G = mat(f, "f"), mat(g, "g")
    b = np.atleast_1d(np.asarray(beta, dtype=float)).ravel()
    a = np.atleast_1d(np.asarray(null_coef, dtype=float)).ravel()
    if b.size != F.shape[1]:
        raise DesignError(f"beta has {b.size} value(s) but f has {F.shape[1]} column(s).")
    if a.size != G.shape[1]:
        raise DesignError(f"null_coef has {a.size} value(s) but g has {G.shape[1]} column(s).")
    for name, M_ in (("f", F), ("g", G)):
        if np.linalg.matrix_rank(M_) < M_.shape[1]:
            raise DesignError(f"{name} has linearly dependent columns: drop the redundant ones.")
    mu0 = np.exp(G @ a)
    mu1 = mu0 * np.exp(F @ b)
    for arr_, what, fix in (
        (mu0, "null success probability exp(g_t' null_coef)", "null_coef"),
        (mu1, "treated success probability exp(g_t' null_coef + f_t' beta)", "beta"),
    ):
        bad = ~((arr_ > 0) & (arr_ < 1))
        if bad.any():
            t = int(np.nonzero(bad)[0][0])
            raise DesignError(
                f"The {what} is {arr_[t]:.6g} at {_where(t, per_day)}, outside (0, 1) "
                f"({int(bad.sum())} decision point(s)). Change {fix} (or f/g) so every implied "
                f"probability is a probability."
            )
    # Cohn et al.: p_t f_t should lie in the span of g_t, else the estimator is not consistent
    # for the marginal effect and the sample size can be inaccurate.
    for k in range(F.shape[1]):
        col = pr * F[:, k]
        resid = col - G @ np.linalg.lstsq(G, col, rcond=None)[0]
        if np.linalg.norm(resid) > 1e-8 * max(np.linalg.norm(col), 1e-300):
            warnings.warn(
                f"p_t * f_t[:, {k}] is not in the linear span of g: the sample size can be "
                "inaccurate; add columns to g (e.g. g = [f, p f]).",
                DesignWarning,
                stacklevel=3,
            )
    fn = tuple(f"f{k + 1}" for k in range(F.shape[1])) if f is not None else ("1",)
    gn = tuple(f"g{k + 1}" for k in range(G.shape[1])) if g is not None else ("1",)
    return BinaryDesign(pr, tau, F, G, b, a, fn, gn, per_day)


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
Design = ContinuousDesign | BinaryDesign


@dataclass
class PowerResult:
    """Power of the level-alpha F test at N participants."""

    n: float
    power: float
    alpha: float
    p: int
    q: int
    noncentrality: float
    critical_value: float
    design: Design = field(repr=False)

    @property
    def df(self) -> tuple[int, float]:
        return (self.p, self.n - self.p - self.q)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "outcome": self.design.outcome,
                    "n": self.n,
                    "power": self.power,
                    "alpha": self.alpha,
                    "p": self.p,
                    "q": self.q,
                    "df1": self.p,
                    "df2": self.n - self.p - self.q,
                    "noncentrality": self.noncentrality,
                    "critical_value": self.critical_value,
                }
            ]
        )

    def __str__(self) -> str:
        return (
            f"MRT power ({self.design.outcome} outcome)\n  {self.design.describe()}\n"
            f"  N = {self.n:g}: power {self.power:.6f} at alpha {self.alpha:g} "
            f"(F({self.p}, {self.n - self.p - self.q:g}) test, noncentrality "
            f"{self.noncentrality:.4f}, critical value {self.critical_value:.4f})"
        )


@dataclass
class SampleSizeResult:
    """Smallest N reaching the target power.

    ``n_exact`` is the real-valued root of power(N) = target (binary calculator, as
    MRTSampleSizeBinary's ``exact=TRUE``); None for the continuous calculator, which searches
    integers as MRT-SS does.
    """

    n: int
    power_at_n: float
    power_at_n_minus_1: float | None
    target_power: float
    alpha: float
    p: int
    q: int
    noncentrality_per_participant: float
    n_max: int
    design: Design = field(repr=False)
    n_exact: float | None = None
    note: str | None = None

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "outcome": self.design.outcome,
                    "n": self.n,
                    "n_exact": self.n_exact,
                    "power_at_n": self.power_at_n,
                    "power_at_n_minus_1": self.power_at_n_minus_1,
                    "target_power": self.target_power,
                    "alpha": self.alpha,
                    "p": self.p,
                    "q": self.q,
                    "noncentrality_at_n": self.n * self.noncentrality_per_participant,
                    "note": self.note,
                }
            ]
        )

    def power_table(self, ns: Sequence[int] | None = None) -> pd.DataFrame:
        """Power at ``ns`` (default: every N from p + q + 1 to 1.5 n) for this design."""
        if ns is None:
            ns = range(self.p + self.q + 1, max(int(1.5 * self.n), self.n + 5) + 1)
        return _table(self.design, ns, self.alpha)

    def plot(self, ns: Sequence[int] | None = None, ax: Any = None):
        """Power curve with the target and N marked; see :func:`plot_power_curve`."""
        return plot_power_curve(self, ns, ax=ax)

    def __str__(self) -> str:
        before = (
            ""
            if self.power_at_n_minus_1 is None
            else f" (N = {self.n - 1}: {self.power_at_n_minus_1:.6f})"
        )
        ex = "" if self.n_exact is None else f" (exact root {self.n_exact:.4f})"
        lines = [
            f"MRT sample size ({self.design.outcome} outcome)",
            f"  {self.design.describe()}",
            f"  N = {self.n} participants{ex} for power {self.target_power:g} at alpha "
            f"{self.alpha:g}: power {self.power_at_n:.6f}{before}",
        ]
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


@dataclass
class MDEResult:
    """Minimum detectable effect: the effect curve scaled until power = target at N.

    ``mde`` is the average standardized effect (over decision points) of the scaled curve;
    ``scale`` the factor applied to the given curve; ``effect`` the scaled per-decision values.
    """

    n: int
    mde: float
    scale: float
    power: float
    target_power: float
    alpha: float
    p: int
    q: int
    effect: np.ndarray = field(repr=False)
    design: ContinuousDesign = field(repr=False)
    note: str | None = None

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "n": self.n,
                    "mde": self.mde,
                    "scale": self.scale,
                    "power": self.power,
                    "target_power": self.target_power,
                    "alpha": self.alpha,
                    "p": self.p,
                    "q": self.q,
                    "note": self.note,
                }
            ]
        )

    def __str__(self) -> str:
        s = (
            f"Minimum detectable effect (continuous outcome)\n  {self.design.describe()}\n"
            f"  N = {self.n}: average standardized effect {self.mde:.6g} (the effect curve "
            f"x {self.scale:.6g}) gives power {self.power:.6f} at alpha {self.alpha:g}"
        )
        return s + (f"\n  note: {self.note}" if self.note else "")


# ---------------------------------------------------------------------------------------------
# solvers
# ---------------------------------------------------------------------------------------------
def _small_note(n: int) -> str | None:
    if n < SMALL_N:
        return (
            f"N = {n} is below {SMALL_N}: the F approximation (and the small-sample behaviour of "
            "the estimator) is doubtful with so few participants (MRT-SS reports only "
            "'<= 10'); check by simulation."
        )
    return None


def _unreachable(design: Design, target: float, alpha: float, n_max: int) -> None:
    pw = float(_f_power(np.array([float(n_max)]), design.delta, design.p, design.q, alpha)[0])
    extra = (
        " The effect is zero (after projection on the tested effect model), so power equals "
        "alpha for every N."
        if design.delta <= 0
        else " Increase n_max, the effect, the number of decision points or the randomization "
        "probability (towards 0.5), or lower the target power."
    )
    raise PowerNotReachableError(
        f"power: the target {target:g} is not reachable below n_max = {n_max} participants "
        f"(power at n_max is {pw:.4f}).{extra}",
        target=target,
        n_max=n_max,
        power_at_n_max=pw,
    )


def _integer_search(design: Design, target: float, alpha: float, n_max: int) -> int:
    """Smallest integer N in [p+q+1, n_max] with power(N) >= target (power increases in N)."""
    lo = design.p + design.q + 1

    def pw(n: int) -> float:
        return float(_f_power(np.array([float(n)]), design.delta, design.p, design.q, alpha)[0])

    if n_max < lo:
        raise DesignError(f"n_max = {n_max} must exceed p + q = {lo - 1}.")
    if pw(n_max) < target:
        _unreachable(design, target, alpha, n_max)
    if pw(lo) >= target:
        return lo
    a, b = lo, n_max  # pw(a) < target <= pw(b)
    while b - a > 1:
        mid = (a + b) // 2
        if pw(mid) >= target:
            b = mid
        else:
            a = mid
    return b


def _sample_size_result(
    design: Design, n: int, target: float, alpha: float, n_max: int, n_exact: float | None
) -> SampleSizeResult:
    p, q = design.p, design.q
    pw = _f_power(np.array([n, n - 1], dtype=float), design.delta, p, q, alpha)
    before = float(pw[1]) if n - 1 > p + q else None
    note = _small_note(n)
    if n == p + q + 1:
        more = (
            f"the target is already reached at N = p + q + 1 = {n}, the smallest N the "
            "F test allows."
        )
        note = more if note is None else f"{note} Also, {more}"
    if isinstance(design, ContinuousDesign) and not design.effect_in_span:
        msg = (
            "the effect curve is not in the span of z: the power is that of its "
            "availability-weighted projection on z (see design.curves()['fitted_effect'])."
        )
        note = msg if note is None else f"{note} Also, {msg}"
    return SampleSizeResult(
        n=int(n),
        power_at_n=float(pw[0]),
        power_at_n_minus_1=before,
        target_power=target,
        alpha=alpha,
        p=p,
        q=q,
        noncentrality_per_participant=design.delta,
        n_max=n_max,
        design=design,
        n_exact=n_exact,
        note=note,
    )


def _power_result(design: Design, n: float, alpha: float) -> PowerResult:
    _check_level(alpha)
    _check_n(n, design.p, design.q, integer=isinstance(design, ContinuousDesign))
    df2 = n - design.p - design.q
    return PowerResult(
        n=n,
        power=float(_f_power(np.array([float(n)]), design.delta, design.p, design.q, alpha)[0]),
        alpha=alpha,
        p=design.p,
        q=design.q,
        noncentrality=float(n * design.delta),
        critical_value=float(stats.f.ppf(1 - alpha, design.p, df2)),
        design=design,
    )


def _table(design: Design, ns: Sequence[float] | ArrayLike, alpha: float) -> pd.DataFrame:
    _check_level(alpha)
    arr = _check_n(ns, design.p, design.q, integer=isinstance(design, ContinuousDesign)).ravel()
    df2 = arr - design.p - design.q
    return pd.DataFrame(
        {
            "n": arr.astype(int) if np.all(arr == np.round(arr)) else arr,
            "power": _f_power(arr, design.delta, design.p, design.q, alpha),
            "noncentrality": arr * design.delta,
            "df1": design.p,
            "df2": df2,
            "critical_value": stats.f.ppf(1 - alpha, design.p, df2),
        }
    )


# ---------------------------------------------------------------------------------------------
# public API: continuous outcome
# ---------------------------------------------------------------------------------------------
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
    """Smallest number of participants N with power(N) >= ``power`` (Liao et al. 2016).

    See :func:`continuous_design` for the design arguments and the module docstring for the
    formulas. Reproduces MRT-SS (``calculateSampleSize``) exactly when N >= 10, e.g.::

        mrt_sample_size(days=42, per_day=5, prob=0.4,
                        availability=Curve.quadratic(initial=0.7, mean=0.5, turn_day=42),
                        effect=Curve.quadratic(initial=0, mean=0.1, turn_day=28))  # N = 46

    Raises
    ------
    PowerNotReachableError
        The target is not reached below ``n_max``.
    DesignError
        Invalid inputs (each message names the argument).
    """
    _check_level(alpha, power)
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    n_max = _positive_int(n_max, "n_max")
    n = _integer_search(design, float(power), float(alpha), n_max)
    return _sample_size_result(design, n, float(power), float(alpha), n_max, None)


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
    """Power of the F(p, N-p-q) test of the effect at N participants (continuous outcome)."""
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    return _power_result(design, n, float(alpha))


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
    """Power at each N in ``ns`` (columns n, power, noncentrality, df1, df2, critical_value)."""
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    return _table(design, ns, float(alpha))


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

    ``effect`` gives the *shape* (default: constant); it is scaled by s > 0 (lambda scales by
    s^2), s solves power(N; lambda*) = target with lambda* found by root-finding, and the MDE is
    reported as the average standardized effect of the scaled curve, s * mean(effect).
    """
    _check_level(alpha, power)
    design = continuous_design(
        days=days, per_day=per_day, prob=prob, availability=availability, effect=effect, z=z, q=q
    )
    p, qq, a, target = design.p, design.q, float(alpha), float(power)
    _check_n(n, p, qq)
    if design.delta <= 0:
        raise DesignError(
            "effect: the effect shape projects to zero on z, so no multiple of it is detectable; "
            "give a non-zero effect shape."
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
    s = math.sqrt(lam / (n * design.delta))
    scaled = design.effect * s
    mean = float(scaled.mean())
    note = None
    if abs(design.average_effect) <= 1e-12 * max(float(np.max(np.abs(design.effect))), 1e-300):
        note = "the effect shape averages zero, so the MDE is reported as the scale only."
        mean = float("nan")
    scaled_design = ContinuousDesign(
        design.days,
        design.per_day,
        scaled,
        design.availability,
        design.prob,
        design.z,
        design.z_names,
        design.q,
        None if design.effect_curve is None else design.effect_curve.scaled(s),
        design.availability_curve,
    )
    return MDEResult(
        n=int(n),
        mde=mean,
        scale=s,
        power=float(_f_power(np.array([float(n)]), scaled_design.delta, p, qq, a)[0]),
        target_power=target,
        alpha=a,
        p=p,
        q=qq,
        effect=scaled,
        design=scaled_design,
        note=note if note else _small_note(int(n)),
    )


# ---------------------------------------------------------------------------------------------
# public API: binary outcome
# ---------------------------------------------------------------------------------------------
def binary_sample_size(
    *,
    prob: float | ArrayLike,
    availability: float | ArrayLike,
    beta: float | ArrayLike,
    null_coef: float | ArrayLike,
    f: ArrayLike | None = None,
    g: ArrayLike | None = None,
    decisions: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    n_max: int = DEFAULT_N_MAX,
) -> SampleSizeResult:
    """Sample size for a binary proximal outcome (Cohn, Qian & Murphy 2023).

    Solves power(N) = ``power`` for real N (``n_exact``, MRTSampleSizeBinary's
    ``mrt_binary_ss(..., exact=TRUE)``) and rounds up (``n``). Arguments as in
    :func:`binary_design`.
    """
    _check_level(alpha, power)
    design = binary_design(
        prob=prob,
        availability=availability,
        beta=beta,
        null_coef=null_coef,
        f=f,
        g=g,
        decisions=decisions,
    )
    n_max = _positive_int(n_max, "n_max")
    a, target = float(alpha), float(power)
    p, q = design.p, design.q
    lo = p + q + 1
    if n_max < lo:
        raise DesignError(f"n_max = {n_max} must exceed p + q = {lo - 1}.")

    def gap(n: float) -> float:
        return float(_f_power(np.array([n]), design.delta, p, q, a)[0]) - target

    if gap(float(n_max)) < 0:
        _unreachable(design, target, a, n_max)
    if gap(float(lo)) >= 0:
        n_exact, n = None, lo
    else:
        n_exact = float(optimize.brentq(gap, float(lo), float(n_max), xtol=1e-10, rtol=1e-12))
        n = math.ceil(n_exact - 1e-9)
        if gap(float(n)) < 0:  # guard against the root landing a hair above an integer
            n += 1
    return _sample_size_result(design, n, target, a, n_max, n_exact)


def binary_power(
    n: float,
    *,
    prob: float | ArrayLike,
    availability: float | ArrayLike,
    beta: float | ArrayLike,
    null_coef: float | ArrayLike,
    f: ArrayLike | None = None,
    g: ArrayLike | None = None,
    decisions: int | None = None,
    alpha: float = 0.05,
) -> PowerResult:
    """Power at N participants for a binary proximal outcome (Cohn, Qian & Murphy 2023)."""
    design = binary_design(
        prob=prob,
        availability=availability,
        beta=beta,
        null_coef=null_coef,
        f=f,
        g=g,
        decisions=decisions,
    )
    return _power_result(design, float(n), float(alpha))


# ---------------------------------------------------------------------------------------------
# plot
# ---------------------------------------------------------------------------------------------
def plot_power_curve(
    source: Design | SampleSizeResult | PowerResult | MDEResult | pd.DataFrame,
    ns: Sequence[int] | ArrayLike | None = None,
    *,
    alpha: float | None = None,
    ax: Any = None,
):
    """Power against the number of participants; returns the matplotlib Figure.

    ``source`` is a design (:func:`continuous_design` / :func:`binary_design`), a result
    (its design and alpha are used; a sample-size result also marks the target and N), or a
    :func:`power_table` DataFrame. ``ns`` defaults to p + q + 1 up to where power reaches 0.99
    (at most 1,000 points).
    """
    import matplotlib.pyplot as plt

    target = n_mark = None
    if isinstance(source, pd.DataFrame):
        if not {"n", "power"} <= set(source.columns):
            raise DesignError("plot_power_curve: the table needs columns 'n' and 'power'.")
        table = source
    else:
        design = source if isinstance(source, ContinuousDesign | BinaryDesign) else source.design
        a = alpha if alpha is not None else getattr(source, "alpha", 0.05)
        if isinstance(source, SampleSizeResult):
            target, n_mark = source.target_power, source.n
        if ns is None:
            lo = design.p + design.q + 1
            try:
                hi = _integer_search(design, 0.99, a, DEFAULT_N_MAX)
            except PowerNotReachableError:
                hi = lo + 1000
            hi = max(hi, (n_mark or 0) + 5, lo + 10)
            step = max(1, (hi - lo) // 1000)
            ns = np.arange(lo, hi + 1, step)
        table = _table(design, ns, a)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    ax.plot(table["n"], table["power"], lw=1.5)
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=0.8)
        ax.axvline(n_mark, color="grey", ls=":", lw=0.8)
        ax.annotate(
            f"N = {n_mark}",
            (n_mark, target),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=8,
        )
    ax.set_xlabel("number of participants N")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig
