"""Result objects of the design calculators: power, sample size and minimum detectable effect.

Each follows the package's results contract (:class:`hte_mrt._contract.Result`): ``table()`` is a
one-row tidy DataFrame (columns listed on each class), ``summary()`` a
:class:`~hte_mrt._contract.Summary` that prints the design, the numbers and the notes, and the
``design`` attribute is the design they were computed from (its ``power_table``, ``curves``...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hte_mrt._contract import Result, Style

if TYPE_CHECKING:
    from hte_mrt.design.binary import BinaryDesign
    from hte_mrt.design.continuous import ContinuousDesign

    Design = ContinuousDesign | BinaryDesign

__all__ = ["MDEResult", "PowerResult", "SampleSizeResult"]

#: headers of ``table(style="paper")`` (keys: the generic headers made from the tidy names)
_PAPER_HEADERS = {
    "n": "N",
    "n exact": "N (exact root)",
    "power": "Power",
    "power at n": "Power at N",
    "power at n minus 1": "Power at N - 1",
    "target power": "Target power",
    "alpha": "Alpha",
    "noncentrality": "Noncentrality",
    "critical value": "Critical value",
    "mde": "MDE",
    "scale": "Scale",
}


class _DesignResult(Result):
    """Shared summary: the title states the answer (power to six decimals, as MRT-SS prints
    it), the info line the design, the notes the caveats."""

    design: Any
    note: str | None = None

    def _title(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def table(self, conf_level: float | None = None, style: Style = "tidy") -> pd.DataFrame:
        """The result as a one-row tidy DataFrame (``style="tidy"``) or a publication table
        (``style="paper"``: human headers, consistent significant digits, empty cells)."""
        tab = super().table(conf_level, style)
        if style == "paper":
            tab = tab.rename(columns=_PAPER_HEADERS)
        return tab

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        return self._title(), {"design": self.design.describe()}, [self.note] if self.note else []


@dataclass(repr=False)
class PowerResult(_DesignResult):
    """Power of the level-alpha F(p, N-p-q) test at N participants.

    ``table()`` has one row with columns ``n``, ``power``, ``alpha``, ``df1`` (= p, effect
    parameters tested), ``df2`` (= N - p - q), ``noncentrality`` (lambda(N)) and
    ``critical_value`` (the F quantile the test statistic must exceed).
    """

    n: float
    power: float
    alpha: float
    p: int
    q: int
    noncentrality: float
    critical_value: float
    design: Design = field(repr=False)

    _kind = "MRT power"

    @property
    def df(self) -> tuple[int, float]:
        """Degrees of freedom (p, N - p - q) of the F test."""
        return (self.p, self.n - self.p - self.q)

    def _table(self, conf_level: float) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "n": self.n,
                    "power": self.power,
                    "alpha": self.alpha,
                    "df1": self.p,
                    "df2": self.n - self.p - self.q,
                    "noncentrality": self.noncentrality,
                    "critical_value": self.critical_value,
                }
            ]
        )

    def _title(self) -> str:
        return (
            f"MRT power ({self.design.outcome} outcome): N = {self.n:g} gives power "
            f"{self.power:.6f} at alpha {self.alpha:g} (F({self.p}, "
            f"{self.n - self.p - self.q:g}) test)"
        )

    def _repr_extra(self) -> str:
        return f"N = {self.n:g}, power {self.power:.4f} ({self.design.outcome} outcome)"


@dataclass(repr=False)
class SampleSizeResult(_DesignResult):
    """Smallest N reaching the target power.

    ``n_exact`` is the real-valued root of power(N) = target (binary calculator, as
    MRTSampleSizeBinary's ``exact=TRUE``); None for the continuous calculator, which searches
    integers as MRT-SS does.

    ``table()`` has one row with columns ``n``, ``n_exact`` (empty for a continuous outcome),
    ``power_at_n``, ``power_at_n_minus_1``, ``target_power``, ``alpha``, ``df1`` (= p),
    ``df2`` (= N - p - q) and ``noncentrality`` (lambda at N); ``note`` is in ``summary()``.
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

    _kind = "MRT sample size"

    def _table(self, conf_level: float) -> pd.DataFrame:
        nan = float("nan")
        return pd.DataFrame(
            [
                {
                    "n": self.n,
                    "n_exact": nan if self.n_exact is None else self.n_exact,
                    "power_at_n": self.power_at_n,
                    "power_at_n_minus_1": (
                        nan if self.power_at_n_minus_1 is None else self.power_at_n_minus_1
                    ),
                    "target_power": self.target_power,
                    "alpha": self.alpha,
                    "df1": self.p,
                    "df2": self.n - self.p - self.q,
                    "noncentrality": self.n * self.noncentrality_per_participant,
                }
            ]
        )

    def _title(self) -> str:
        ex = "" if self.n_exact is None else f" (exact root {self.n_exact:.4f})"
        before = (
            ""
            if self.power_at_n_minus_1 is None
            else f"; N = {self.n - 1}: {self.power_at_n_minus_1:.6f}"
        )
        return (
            f"MRT sample size ({self.design.outcome} outcome): N = {self.n} participants{ex} "
            f"for power {self.target_power:g} at alpha {self.alpha:g} (power "
            f"{self.power_at_n:.6f}{before})"
        )

    def _repr_extra(self) -> str:
        return (
            f"N = {self.n} for power {self.target_power:g} at alpha {self.alpha:g} "
            f"({self.design.outcome} outcome)"
        )

    def power_table(self, ns: Sequence[int] | None = None) -> pd.DataFrame:
        """Power at ``ns`` (default: every N from p + q + 1 to 1.5 n) for this design."""
        if ns is None:
            ns = range(self.p + self.q + 1, max(int(1.5 * self.n), self.n + 5) + 1)
        return self.design.power_table(ns, self.alpha)

    def plot(self, ns: Sequence[int] | None = None, ax: Any = None):
        """Power curve with the target and N marked; see :func:`plot_power_curve`."""
        from hte_mrt.design.plots import plot_power_curve

        return plot_power_curve(self, ns, ax=ax)


@dataclass(repr=False)
class MDEResult(_DesignResult):
    """Minimum detectable effect: the effect curve scaled until power = target at N.

    ``mde`` is the average standardized effect (over decision points) of the scaled curve;
    ``scale`` the factor applied to the given curve; ``effect`` the scaled per-decision values.

    ``table()`` has one row with columns ``n``, ``mde``, ``scale``, ``power``,
    ``target_power``, ``alpha``, ``df1`` (= p) and ``df2`` (= N - p - q).
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

    _kind = "minimum detectable effect"

    def _table(self, conf_level: float) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "n": self.n,
                    "mde": self.mde,
                    "scale": self.scale,
                    "power": self.power,
                    "target_power": self.target_power,
                    "alpha": self.alpha,
                    "df1": self.p,
                    "df2": self.n - self.p - self.q,
                }
            ]
        )

    def _title(self) -> str:
        return (
            f"Minimum detectable effect (continuous outcome): at N = {self.n} an average "
            f"standardized effect of {self.mde:.6g} (the effect curve x {self.scale:.6g}) gives "
            f"power {self.power:.6f} at alpha {self.alpha:g}"
        )

    def _repr_extra(self) -> str:
        return f"N = {self.n}, MDE {self.mde:.4g} for power {self.target_power:g}"
