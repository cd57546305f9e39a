"""Curves over the days of a trial: the effect, availability and randomization probability.

As in MRT-SS (Liao et al. 2016) a value is constant within a day; day j = 0..D-1 (day 1 is
j = 0). Scalars, per-day and per-decision-point vectors are accepted wherever a :class:`Curve`
is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from hte_mrt.design.common import _finite, _positive_int
from hte_mrt.errors import DesignError

__all__ = ["Curve"]


@dataclass(frozen=True)
class Curve:
    """A curve over the days of the trial (for the effect, availability or probability).

    Day j = 0..D-1 (day 1 is j = 0); the value is constant within a day, as in MRT-SS.

    * ``Curve.constant(v)``: v every day.
    * ``Curve.linear(initial, mean)``: initial + 2 (mean - initial) j / (D - 1), i.e. from
      ``initial`` on day 1 to ``2 mean - initial`` on day D, averaging ``mean``.
    * ``Curve.quadratic(initial, mean, turn_day, turn=None)``: initial + b j + c j^2 with its
      vertex on day ``turn_day`` (b = -2 c (turn_day - 1)) and average ``mean`` over the D days.
      ``turn_day`` may lie after the last day (as in MRT-SS's second example, availability
      turning on day 42 of a 28-day trial): the curve is then monotone over the trial.
      ``turn="max"`` / ``"min"`` states what the turning point must be (MRT-SS's effect curve
      has its *maximum* on the given day); an impossible combination raises :class:`DesignError`.
    * ``Curve.from_values(v)``: any values, one per day or one per decision point.

    The shapes are those of the MRT-SS calculator (Liao, Klasnja, Tewari & Murphy 2016).

    Examples
    --------
    MRT-SS's reference effect: 0 on day 1, a maximum on day 28, averaging 0.1 over 42 days:

    >>> import hte_mrt as hm
    >>> effect = hm.Curve.quadratic(initial=0, mean=0.1, turn_day=28)
    >>> effect.describe()
    'quadratic(initial=0, mean=0.1, turn day 28)'
    >>> effect.daily(42)[[0, 27, 41]].round(4)
    array([0.    , 0.135 , 0.0987])
    >>> hm.Curve.linear(initial=0.1, mean=0.2).daily(3)
    array([0.1, 0.2, 0.3])
    """

    shape: Literal["constant", "linear", "quadratic", "values"]
    mean: float | None = None
    initial: float | None = None
    turn_day: float | None = None
    turn: Literal["max", "min"] | None = None
    values: tuple[float, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Direct construction is checked like the classmethods (which are the usual way)."""
        need = {
            "constant": ("mean",),
            "linear": ("initial", "mean"),
            "quadratic": ("initial", "mean", "turn_day"),
            "values": ("values",),
        }
        if self.shape not in need:
            raise DesignError(
                f"Curve: shape must be one of {sorted(need)}, got {self.shape!r}; build curves "
                "with hm.Curve.constant(v), hm.Curve.linear(initial=..., mean=...), "
                "hm.Curve.quadratic(initial=..., mean=..., turn_day=...) or "
                "hm.Curve.from_values([...])."
            )
        for name in need[self.shape]:
            if getattr(self, name) is None:
                maker = "from_values" if self.shape == "values" else self.shape
                raise DesignError(
                    f"Curve({self.shape!r}) needs {name}=; use hm.Curve.{maker}(...), which asks "
                    f"for {', '.join(need[self.shape])}."
                )
        for name in ("mean", "initial", "turn_day"):
            v = getattr(self, name)
            if v is not None:
                _finite(v, f"Curve({name})")
        if self.turn not in (None, "max", "min"):
            raise DesignError(f"Curve: turn must be 'max', 'min' or None, got {self.turn!r}.")

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
            raise DesignError(
                f"Curve.quadratic(turn) must be 'max', 'min' or None, got {turn!r}; pass one of "
                "those."
            )
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
        if isinstance(values, str | bytes):
            raise DesignError(
                f"Curve.from_values needs a vector of numbers, got the string {values!r}; pass "
                "a list or array of numbers."
            )
        try:
            arr = np.asarray(values)
            if arr.dtype.kind in "USO" and arr.dtype != object:
                raise ValueError
            v = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise DesignError(
                f"Curve.from_values needs a vector of numbers, got {values!r}; pass a list or "
                "array of numbers (one per day or per decision point)."
            ) from None
        if v.ndim > 1:
            raise DesignError(
                f"Curve.from_values needs a vector (1-D) of numbers, got an array of shape "
                f"{v.shape}; pass one value per day or per decision point (call .ravel() "
                "yourself if a flattened array is meant)."
            )
        v = v.ravel()
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise DesignError(
                "Curve.from_values needs a non-empty vector of finite numbers; pass one value "
                "per day or per decision point."
            )
        return cls("values", mean=float(v.mean()), values=tuple(v.tolist()))

    # ---- properties ---------------------------------------------------------------------
    @property
    def degree(self) -> int | None:
        """Polynomial degree in the day (0, 1, 2); None for arbitrary values."""
        return {"constant": 0, "linear": 1, "quadratic": 2}.get(self.shape)

    def scaled(self, factor: float) -> Curve:
        """The curve multiplied by ``factor`` (shape, initial value and mean all scale)."""
        s = _finite(factor, "Curve.scaled(factor)")
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
        D = _positive_int(days, "days")
        j = np.arange(D, dtype=float)
        if self.shape == "constant":
            return np.full(D, self.mean)
        if self.shape == "values":
            v = np.asarray(self.values, dtype=float)
            if v.size == 1:
                return np.full(D, v[0])
            if v.size != D:
                raise DesignError(
                    f"{name}: {v.size} values do not give one per day ({D} days); give {D} "
                    "values (or one per decision point)."
                )
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
        # a turning day after the last day is allowed (MRT-SS's second example has the
        # availability turning on day 42 of a 28-day trial): the quadratic is still defined
        # on days 1..D, monotone there.
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
        days = _positive_int(days, "days")
        per_day = _positive_int(per_day, "per_day")
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
    if isinstance(x, str | bytes | bool | np.bool_):
        raise DesignError(
            f"{name} must be a Curve, a number or a vector of numbers, got {x!r} "
            f"({type(x).__name__}); pass e.g. {name}=0.5 or hm.Curve.constant(0.5)."
        )
    try:
        if np.asarray(x).dtype.kind in "USb":  # strings or bools inside an array
            raise TypeError
        v = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise DesignError(
            f"{name} must be a Curve, a number or a vector of numbers, got {type(x).__name__}; "
            f"pass e.g. {name}=0.5 or hm.Curve.constant(0.5)."
        ) from None
    if v.ndim == 0 or v.size == 1:
        val = _finite(float(v.ravel()[0]), name)
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
