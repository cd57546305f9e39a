"""What every design calculation shares: input checks, the F-test power and the design errors.

The power of the level-alpha test of p effect parameters with q control parameters at N
participants is

    power(N) = 1 - F_{p, N-p-q; N delta}(F^{-1}_{p, N-p-q}(1 - alpha))

(F_{a,b;l}: noncentral F distribution function), where delta is the noncentrality one
participant contributes (Liao et al. 2016 for a continuous outcome, Cohn et al. 2023 for a
binary one).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from hte_mrt.errors import DesignError, HteMrtWarning

if TYPE_CHECKING:
    from hte_mrt.design.curves import Curve

__all__ = ["DEFAULT_N_MAX", "SMALL_N", "DesignWarning", "PowerNotReachableError"]

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


def _finite(x: Any, name: str) -> float:
    if isinstance(x, str | bytes | bool | np.bool_):
        what = "a string" if isinstance(x, str | bytes) else "a bool"
        raise DesignError(f"{name} must be a number, got {x!r} ({what}); pass a number.")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise DesignError(f"{name} must be a number, got {x!r}; pass a number.") from None
    if not math.isfinite(v):
        raise DesignError(f"{name} must be finite, got {v}; pass a finite number.")
    return v


def _positive_int(x: Any, name: str, minimum: int = 1) -> int:
    hint = f"pass a whole number such as {name}={max(minimum, 1)}"
    if isinstance(x, str | bytes | bool | np.bool_):
        what = "a string" if isinstance(x, str | bytes) else "a bool"
        raise DesignError(
            f"{name} must be a whole number >= {minimum}, got {x!r} ({what}); {hint}."
        )
    try:
        v = int(x)
    except (TypeError, ValueError):
        raise DesignError(f"{name} must be a whole number, got {x!r}; {hint}.") from None
    if v != x or v < minimum:
        raise DesignError(f"{name} must be a whole number >= {minimum}, got {x!r}; {hint}.")
    return v


def check_bool(value: Any, name: str) -> bool:
    """A bool (numpy bools too); a string such as ``"no"`` (truthy in Python) or a number is a
    :class:`DesignError` naming the argument."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise DesignError(
        f"{name} must be True or False, got {value!r}; pass {name.split('(')[0].split()[-1]}"
        "=True or False (a string such as 'no' would count as True)."
    )


def check_seed(value: Any, name: str = "seed") -> Any:
    """A seed: None, a non-negative int or a :class:`numpy.random.SeedSequence` /
    :class:`numpy.random.Generator`; anything else is a :class:`DesignError`."""
    if value is None or isinstance(value, np.random.SeedSequence | np.random.Generator):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise DesignError(
        f"{name} must be None or a non-negative integer, got {value!r}; pass e.g. seed=1 (None "
        "draws fresh entropy)."
    )


def check_n_jobs(value: Any, name: str = "n_jobs") -> int | None:
    """joblib's ``n_jobs``: None or a nonzero integer (-1 = all cores)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value == 0:
        raise DesignError(
            f"{name} must be None or a nonzero integer (joblib: -1 = all cores), got {value!r}; "
            "pass e.g. n_jobs=1 or n_jobs=-1."
        )
    return int(value)


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
        raise DesignError(
            f"{name} is not finite at {_where(t, per_day)}; give finite values at every "
            "decision point."
        )
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
        raise DesignError(
            f"alpha (significance level) must lie in (0, 1), got {alpha!r}; pass e.g. alpha=0.05."
        )
    if power is not None:
        pw = _finite(power, "power")
        if not 0 < pw < 1:
            hint = f" (did you mean {pw / 100:g}?)" if 1 < pw < 100 else ""
            raise DesignError(
                f"power (target) must lie in (0, 1), got {power!r}{hint}; pass e.g. power=0.8."
            )
        if pw <= a:
            raise DesignError(
                f"power (target) = {pw:g} must exceed alpha = {a:g}: any N has power >= alpha; "
                "raise power (e.g. 0.8) or lower alpha."
            )


def _check_n(n: Any, p: int, q: int, *, integer: bool = True) -> np.ndarray:
    raw = np.asarray(n, dtype=object)
    if raw.size == 0:
        raise DesignError(
            "n (number of participants): no values given; pass a number or a list such as "
            "range(20, 101)."
        )
    if any(isinstance(v, str | bytes | bool | np.bool_) for v in raw.ravel()):
        raise DesignError(
            f"n (number of participants) must be numbers, got {n!r}; pass a whole number "
            "(or a list of them), not a string or a bool."
        )
    try:
        arr = np.asarray(n, dtype=float)
    except (TypeError, ValueError):
        raise DesignError(
            f"n (number of participants) must be numbers, got {n!r}; pass a whole number "
            "(or a list of them)."
        ) from None
    if not np.all(np.isfinite(arr)):
        raise DesignError("n (number of participants) must be finite; pass whole numbers.")
    if integer and np.any(arr != np.round(arr)):
        raise DesignError(
            f"n (number of participants) must be whole numbers, got {n!r}; round it (a sample "
            "size is a count)."
        )
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
