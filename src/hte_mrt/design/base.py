"""What a continuous and a binary MRT design have in common: power, power tables, sample size.

A design (:class:`~hte_mrt.design.continuous.ContinuousDesign`,
:class:`~hte_mrt.design.binary.BinaryDesign`) knows p (effect parameters tested), q (control
parameters) and delta, the noncentrality one participant contributes: lambda(N) = N delta. The
methods here turn that into power(N) (:mod:`hte_mrt.design.common`), power tables, result
objects and the sample size; each design says only how N is solved for (``_solve_n``: an integer
search as MRT-SS, or a real root as MRTSampleSizeBinary).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from hte_mrt.design.common import (
    DEFAULT_N_MAX,
    SMALL_N,
    DesignWarning,
    PowerNotReachableError,
    _check_level,
    _check_n,
    _f_power,
    _positive_int,
)
from hte_mrt.design.results import PowerResult, SampleSizeResult
from hte_mrt.errors import DesignError

__all__: list[str] = []


def _small_note(n: int) -> str | None:
    if n < SMALL_N:
        return (
            f"N = {n} is below {SMALL_N}: the F approximation (and the small-sample behaviour of "
            "the estimator) is doubtful with so few participants (MRT-SS reports only "
            "'<= 10'); check by simulation."
        )
    return None


class _DesignBase:
    """Power, power table and sample size from ``p``, ``q`` and ``delta`` (mixin)."""

    #: whether N must be a whole number (MRT-SS) or may be real (MRTSampleSizeBinary)
    _integer_n: ClassVar[bool] = True
    p: int
    q: int
    delta: float

    # ---- to implement -------------------------------------------------------------------
    @property
    def outcome(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _solve_n(self, target: float, alpha: float, n_max: int) -> tuple[int, float | None]:
        """(N, real-valued root or None) for the target power."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _design_note(self) -> str | None:
        """A remark every sample size of this design carries (None: nothing to say)."""
        return None

    # ---- power ----------------------------------------------------------------------------
    def noncentrality(self, n: ArrayLike) -> np.ndarray:
        """lambda(N) = N delta."""
        return np.asarray(n, dtype=float) * self.delta

    def _power(self, n: float, alpha: float) -> float:
        return float(_f_power(np.array([float(n)]), self.delta, self.p, self.q, alpha)[0])

    def power(self, n: ArrayLike, alpha: float = 0.05) -> np.ndarray | float:
        """Power of the level-``alpha`` F(p, N-p-q) test at N participants (vectorized)."""
        _check_level(alpha)
        arr = _check_n(n, self.p, self.q, integer=self._integer_n)
        out = _f_power(arr, self.delta, self.p, self.q, alpha)
        return float(out) if np.ndim(n) == 0 else out

    def power_result(self, n: float, alpha: float = 0.05) -> PowerResult:
        """The power at N participants as a :class:`PowerResult`."""
        _check_level(alpha)
        alpha = float(alpha)
        _check_n(n, self.p, self.q, integer=self._integer_n)
        if np.ndim(n) != 0:
            raise DesignError(
                f"n (number of participants) must be one whole number here, got {n!r}; for "
                "the power at several sample sizes use hm.power_table(ns, ...)."
            )
        df2 = n - self.p - self.q
        return PowerResult(
            n=n,
            power=self._power(n, alpha),
            alpha=alpha,
            p=self.p,
            q=self.q,
            noncentrality=float(n * self.delta),
            critical_value=float(stats.f.ppf(1 - alpha, self.p, df2)),
            design=self,  # type: ignore[arg-type]
        )

    def power_table(self, ns: Sequence[float] | ArrayLike, alpha: float = 0.05) -> pd.DataFrame:
        """Power at each N in ``ns``: columns n, power, noncentrality, df1, df2, critical_value."""
        _check_level(alpha)
        alpha = float(alpha)
        arr = _check_n(ns, self.p, self.q, integer=self._integer_n).ravel()
        df2 = arr - self.p - self.q
        whole = bool(np.all(arr == np.round(arr)))
        return pd.DataFrame(
            {
                "n": arr.astype(int) if whole else arr,
                "power": _f_power(arr, self.delta, self.p, self.q, alpha),
                "noncentrality": arr * self.delta,
                "df1": self.p,
                "df2": df2.astype(int) if whole else df2,
                "critical_value": stats.f.ppf(1 - alpha, self.p, df2),
            }
        )

    # ---- sample size ----------------------------------------------------------------------
    def _unreachable(self, target: float, alpha: float, n_max: int) -> None:
        pw = self._power(n_max, alpha)
        extra = (
            " The effect is zero (after projection on the tested effect model), so power equals "
            "alpha for every N: give a non-zero effect (or change z)."
            if self.delta <= 0
            else " Increase n_max, the effect, the number of decision points or the "
            "randomization probability (towards 0.5), or lower the target power."
        )
        raise PowerNotReachableError(
            f"power: the target {target:g} is not reachable below n_max = {n_max} participants "
            f"(power at n_max is {pw:.4f}).{extra}",
            target=target,
            n_max=n_max,
            power_at_n_max=pw,
        )

    def _integer_search(self, target: float, alpha: float, n_max: int) -> int:
        """Smallest integer N in [p+q+1, n_max] with power(N) >= target (power increases)."""
        lo = self.p + self.q + 1
        if n_max < lo:
            raise DesignError(f"n_max = {n_max} must exceed p + q = {lo - 1}; raise n_max.")
        if self._power(n_max, alpha) < target:
            self._unreachable(target, alpha, n_max)
        if self._power(lo, alpha) >= target:
            return lo
        a, b = lo, n_max  # pw(a) < target <= pw(b)
        while b - a > 1:
            mid = (a + b) // 2
            if self._power(mid, alpha) >= target:
                b = mid
            else:
                a = mid
        return b

    def sample_size(
        self, power: float = 0.8, alpha: float = 0.05, n_max: int = DEFAULT_N_MAX
    ) -> SampleSizeResult:
        """Smallest number of participants N with power(N) >= ``power`` at level ``alpha``."""
        _check_level(alpha, power)
        n_max = _positive_int(n_max, "n_max")
        target, alpha = float(power), float(alpha)
        n, n_exact = self._solve_n(target, alpha, n_max)
        p, q = self.p, self.q
        pw = _f_power(np.array([n, n - 1], dtype=float), self.delta, p, q, alpha)
        before = float(pw[1]) if n - 1 > p + q else None
        small = _small_note(n)
        if small:
            warnings.warn(
                f"sample_size: N = {n} is below {SMALL_N}, where the F approximation of "
                "Liao et al. (2016) is unreliable (MRT-SS never returns fewer than "
                f"{SMALL_N}). Plan for at least {SMALL_N} participants, or check the power "
                "at this N by simulation (hm.simulated_power).",
                DesignWarning,
                stacklevel=3,
            )
        notes = [small]
        if n == p + q + 1:
            notes.append(
                f"the target is already reached at N = p + q + 1 = {n}, the smallest N the "
                "F test allows."
            )
        notes.append(self._design_note())
        notes = [s for s in notes if s]
        note = None
        if notes:
            note = notes[0] + "".join(f" Also, {s}" for s in notes[1:])
        return SampleSizeResult(
            n=int(n),
            power_at_n=float(pw[0]),
            power_at_n_minus_1=before,
            target_power=target,
            alpha=alpha,
            p=p,
            q=q,
            noncentrality_per_participant=self.delta,
            n_max=n_max,
            design=self,  # type: ignore[arg-type]
            n_exact=n_exact,
            note=note,
        )
