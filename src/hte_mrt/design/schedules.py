r"""Randomization schedules for micro-randomized trials: :class:`RandomizationDesign`.

A trial has D days with K decision points a day, t = (day - 1) K + decision = 1..T (day and
decision are 1-based). At each decision point the treatment A_t takes one of L levels
l_0, ..., l_{L-1} (l_0 is the reference, "no treatment", level) with stated probabilities

    pi_t(k | s) = P(A_t = l_k | S_t = s, I_t = 1),     sum_k pi_t(k | s) = 1,

which may depend on time (a number, one value per day or per decision point, a :class:`Curve`,
a table or a function of (day, decision)) and on an observed categorical state S_t (a dict
state -> any of these). When an availability probability a_t is given, I_t ~ Bernoulli(a_t) and
an unavailable decision point gets l_0 (no randomization). :meth:`RandomizationDesign.schedule`
draws, for participants i = 1..n, S_it ~ ``state_probs`` (unless given), I_it and
A_it = l_k with k = #{j < L - 1 : U_it >= sum_{m <= j} pi_t(m | S_it)}, U_it ~ U(0, 1), from one
seeded generator in a fixed order, so a seed reproduces the schedule exactly.

Audits of delivered randomization against these probabilities are in
:mod:`hte_mrt.design.audits`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from hte_mrt._util import output_path
from hte_mrt.design.common import _positive_int, check_seed
from hte_mrt.design.curves import Curve, _per_decision
from hte_mrt.errors import DesignError

__all__ = ["RandomizationDesign"]

_TOL = 1e-8  # tolerance on probabilities summing to 1


# ---------------------------------------------------------------------------------------------
# design
# ---------------------------------------------------------------------------------------------
def _where(t: int, per_day: int, state: Any = None) -> str:
    s = "" if state is None else f"state {state!r}, "
    return f"{s}day {t // per_day + 1}, decision {t % per_day + 1} (decision point {t + 1})"


def _prob_table(spec: Any, days: int, per_day: int, n_levels: int, name: str) -> np.ndarray:
    """Resolve a probability specification to a (T, L) table (not yet validated)."""
    T = days * per_day
    if callable(spec) and not isinstance(spec, Curve):
        day = np.repeat(np.arange(1, days + 1), per_day)
        dec = np.tile(np.arange(1, per_day + 1), days)
        vals = [spec(int(d), int(k)) for d, k in zip(day, dec, strict=True)]
        return _prob_table(np.asarray(vals, dtype=float), days, per_day, n_levels, name)
    if isinstance(spec, pd.DataFrame):
        return _frame_table(spec, days, per_day, n_levels, name)
    if isinstance(spec, Curve) or np.ndim(spec) <= 1:
        if isinstance(spec, Curve) or n_levels == 2 or np.size(spec) != n_levels:
            if n_levels != 2:
                raise DesignError(
                    f"{name}: with {n_levels} treatment levels give one probability per level "
                    f"({n_levels} values) or a table with {n_levels} columns; a single number, "
                    "per-day / per-decision vector or Curve is P(treatment = second level) of a "
                    "binary design."
                )
            p1, _ = _per_decision(spec, name, days, per_day)
            return np.column_stack([1.0 - p1, p1])
        return np.tile(np.asarray(spec, dtype=float), (T, 1))
    arr = np.asarray(spec, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != n_levels:
        raise DesignError(
            f"{name}: a probability table needs {n_levels} columns (one per level), got shape "
            f"{arr.shape}."
        )
    if arr.shape[0] == 1:
        return np.tile(arr, (T, 1))
    if arr.shape[0] == days and days != T:
        return np.repeat(arr, per_day, axis=0)
    if arr.shape[0] != T:
        raise DesignError(
            f"{name}: the table has {arr.shape[0]} rows; give 1, one per day ({days}) or one per "
            f"decision point ({days} x {per_day} = {T})."
        )
    return arr


def _frame_table(
    frame: pd.DataFrame, days: int, per_day: int, n_levels: int, name: str
) -> np.ndarray:
    """A DataFrame with ``day`` (and optionally ``decision``) and one column per level."""
    cols = [c for c in frame.columns if c not in ("day", "decision", "t", "state")]
    if "day" not in frame.columns:
        raise DesignError(f"{name}: a probability DataFrame needs a 'day' column.")
    if n_levels == 2 and len(cols) == 1:
        vals = frame[cols[0]].to_numpy(dtype=float)
        vals = np.column_stack([1 - vals, vals])
    elif len(cols) == n_levels:
        vals = frame[cols].to_numpy(dtype=float)
    else:
        raise DesignError(
            f"{name}: a probability DataFrame needs day[, decision] and {n_levels} probability "
            f"columns (one per level), got columns {list(frame.columns)}."
        )
    day = frame["day"].to_numpy()
    if "decision" in frame.columns:
        idx = (day - 1) * per_day + (frame["decision"].to_numpy() - 1)
    else:  # one row per day: repeat over its decision points
        idx = ((day - 1) * per_day)[:, None] + np.arange(per_day)[None, :]
        vals = np.repeat(vals, per_day, axis=0)
        idx = idx.ravel()
    T = days * per_day
    out = np.full((T, n_levels), np.nan)
    ok = (idx >= 0) & (idx < T)
    out[idx[ok].astype(int)] = vals[ok]
    if np.isnan(out).any():
        t = int(np.flatnonzero(np.isnan(out).any(axis=1))[0])
        raise DesignError(f"{name}: the probability DataFrame has no row for {_where(t, per_day)}.")
    return out


def _validate_table(tab: np.ndarray, per_day: int, state: Any, levels: Sequence[Any]) -> None:
    if not np.all(np.isfinite(tab)):
        t = int(np.flatnonzero(~np.isfinite(tab).all(axis=1))[0])
        raise DesignError(f"probs: non-finite probability at {_where(t, per_day, state)}.")
    bad = (tab < 0) | (tab > 1)
    if bad.any():
        t, k = (int(v[0]) for v in np.nonzero(bad))
        raise DesignError(
            f"probs: P(treatment = {levels[k]!r}) = {tab[t, k]:.6g} at "
            f"{_where(t, per_day, state)} lies outside [0, 1] ({int(bad.any(axis=1).sum())} "
            "decision point(s) affected); give probabilities in [0, 1] that sum to 1 over the "
            "levels."
        )
    sums = tab.sum(axis=1)
    off = np.abs(sums - 1) > _TOL
    if off.any():
        t = int(np.flatnonzero(off)[0])
        raise DesignError(
            f"probs: the level probabilities {np.round(tab[t], 6).tolist()} at "
            f"{_where(t, per_day, state)} sum to {sums[t]:.6g}, not 1 ({int(off.sum())} "
            "decision point(s) affected); give one probability per level, summing to 1."
        )


@dataclass(frozen=True, eq=False)
class RandomizationDesign:
    """Decision rules and (time- or state-dependent) randomization probabilities of an MRT.

    A design whose treatment is deterministic at every decision point (e.g. ``probs=0`` or
    ``probs=1``) is not randomized and raises :class:`DesignError`; a probability of 0 or 1 at
    some decision points only is allowed (and shows in an audit's positivity check).

    Parameters
    ----------
    days, per_day
        D days with K decision points a day (day and decision are 1-based in every table).
    probs
        The randomization probabilities pi_t(k | s) given availability. For a binary design a
        number, one value per day or per decision point, or a :class:`Curve` is
        P(treatment = ``levels[1]``); a function ``f(day, decision)`` returning that number (or
        one probability per level); a 2-D array with one column per level and 1, D or T rows;
        a DataFrame with ``day`` [``decision``] and one column per level (or one column for a
        binary design); for L > 2 levels also a vector of L probabilities. A dict
        {state: any of these} makes the probabilities depend on an observed state.
    levels
        Treatment levels; ``levels[0]`` is the reference (no treatment), given when unavailable.
    availability
        Optional availability probability a_t (number, per day / per decision point, Curve or
        ``f(day, decision)``); None: always available (no availability column).
    state_probs
        Distribution of the state used by :meth:`schedule` to simulate states when none are
        given (default: uniform over the states of ``probs``).

    Examples
    --------
    Probability 0.5 of treatment on day 1 and 0.3 on day 2, available 80% of the time:

    >>> import hte_mrt as hm
    >>> design = hm.RandomizationDesign(days=2, per_day=3, probs=[0.5, 0.3], availability=0.8)
    >>> design.table()
       day  decision  t  prob_0  prob_1  availability
    0    1         1  1     0.5     0.5           0.8
    1    1         2  2     0.5     0.5           0.8
    2    1         3  3     0.5     0.5           0.8
    3    2         1  4     0.7     0.3           0.8
    4    2         2  5     0.7     0.3           0.8
    5    2         3  6     0.7     0.3           0.8
    >>> schedule = design.schedule(2, seed=1)  # the same seed gives the same schedule
    >>> schedule.columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['participant', 'day', 'decision', 't', 'prob_0', 'prob_1', 'availability',
     'available', 'treatment']
    >>> len(schedule)
    12
    """

    days: int
    per_day: int
    probs: Any
    levels: tuple[Hashable, ...] = (0, 1)
    availability: Any = None
    state_probs: Mapping[Hashable, float] | None = None
    tables: dict[Hashable, np.ndarray] = field(init=False, repr=False)
    avail: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        D = _positive_int(self.days, "days")
        K = _positive_int(self.per_day, "per_day")
        levels = tuple(self.levels)
        if len(levels) < 2 or len(set(levels)) != len(levels):
            raise DesignError(
                f"levels must hold at least 2 distinct values, got {levels!r}; pass e.g. "
                "levels=(0, 1) (the reference first)."
            )
        object.__setattr__(self, "levels", levels)
        specs = dict(self.probs) if isinstance(self.probs, Mapping) else {None: self.probs}
        if not specs:
            raise DesignError(
                "probs: the state -> probabilities dict is empty; give each state's "
                "probabilities, or a single number for a design without states."
            )
        tables = {}
        for state, spec in specs.items():
            name = "probs" if state is None else f"probs[{state!r}]"
            tab = _prob_table(spec, D, K, len(levels), name)
            _validate_table(tab, K, state, levels)
            tables[state] = tab
        object.__setattr__(self, "tables", tables)
        if all(np.all(tab.max(axis=1) >= 1 - _TOL) for tab in tables.values()):
            raise DesignError(
                "probs: the treatment is deterministic at every decision point (one level has "
                "probability 1 everywhere, e.g. probs=0 or probs=1); a randomized design needs "
                "probabilities strictly inside (0, 1) somewhere; pass e.g. probs=0.5."
            )
        avail = None
        if self.availability is not None:
            spec = self.availability
            if callable(spec) and not isinstance(spec, Curve):
                day = np.repeat(np.arange(1, D + 1), K)
                dec = np.tile(np.arange(1, K + 1), D)
                spec = np.array([spec(int(d), int(k)) for d, k in zip(day, dec, strict=True)])
            avail, _ = _per_decision(spec, "availability", D, K)
            bad = ~((avail >= 0) & (avail <= 1))
            if bad.any():
                t = int(np.flatnonzero(bad)[0])
                raise DesignError(
                    f"availability {avail[t]:.6g} at {_where(t, K)} lies outside [0, 1]; give "
                    "availability probabilities in [0, 1]."
                )
        object.__setattr__(self, "avail", avail)
        if self.state_probs is not None:
            if not self.has_states:
                raise DesignError(
                    "state_probs is given but probs does not depend on a state; drop "
                    "state_probs, or give probs as a dict {state: probabilities}."
                )
            sp = self.state_probs
            unknown = set(sp) - set(tables)
            if unknown or set(tables) - set(sp):
                raise DesignError(
                    f"state_probs must give a probability to each state of probs "
                    f"({list(tables)}), got {list(sp)}."
                )
            if any(
                isinstance(v, str | bytes | bool | np.bool_)
                or not isinstance(v, int | float | np.integer | np.floating)
                for v in sp.values()
            ):
                raise DesignError(
                    f"state_probs must map each state to a number, got {dict(sp)}; give the "
                    "probabilities as numbers (0.5, not '0.5')."
                )
            w = np.array([sp[s] for s in tables], dtype=float)
            if np.any(w < 0) or abs(w.sum() - 1) > _TOL:
                raise DesignError(
                    f"state_probs must be >= 0 and sum to 1, got {dict(sp)}; give a "
                    "probability distribution over the states."
                )

    # ---- properties ---------------------------------------------------------------------
    @property
    def n_decisions(self) -> int:
        return self.days * self.per_day

    @property
    def has_states(self) -> bool:
        return None not in self.tables

    @property
    def states(self) -> list[Hashable]:
        return [] if not self.has_states else list(self.tables)

    @property
    def prob_columns(self) -> list[str]:
        return [f"prob_{lev}" for lev in self.levels]

    def _state_weights(self) -> np.ndarray:
        if self.state_probs is None:
            return np.full(len(self.tables), 1.0 / len(self.tables))
        return np.array([self.state_probs[s] for s in self.tables], dtype=float)

    # ---- tables -------------------------------------------------------------------------
    def table(self) -> pd.DataFrame:
        """The stated probabilities (the design's specification, not a result).

        One row per [state,] day and decision: columns [state], day, decision, t (decision
        point 1..T), prob_<level> for each level, [availability]; the same names as the columns
        of :meth:`schedule`.
        """
        T, K = self.n_decisions, self.per_day
        parts = []
        for state, tab in self.tables.items():
            part = pd.DataFrame(
                {
                    "day": np.arange(T) // K + 1,
                    "decision": np.arange(T) % K + 1,
                    "t": np.arange(T) + 1,
                }
            )
            if state is not None:
                part.insert(0, "state", state)
            for k, col in enumerate(self.prob_columns):
                part[col] = tab[:, k]
            if self.avail is not None:
                part["availability"] = self.avail
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def stated(
        self, day: ArrayLike, decision: ArrayLike, state: ArrayLike | None = None
    ) -> np.ndarray:
        """Stated probabilities (n, L) at the given days (1..D) and decisions (1..K).

        ``day`` and ``decision`` are whole numbers of the same length; a point off the
        design's grid is a :class:`DesignError`.
        """
        arrs = {}
        for name, x, hi in (("day", day, self.days), ("decision", decision, self.per_day)):
            a = np.atleast_1d(np.asarray(x))
            if a.dtype.kind not in "iuf" or a.ndim != 1:
                raise DesignError(
                    f"stated: {name} must be a vector of whole numbers, got {x!r}; pass e.g. "
                    f"{name}=[1, 2]."
                )
            a = a.astype(float)
            bad = ~np.isfinite(a) | (a != np.round(a)) | (a < 1) | (a > hi)
            if bad.any():
                raise DesignError(
                    f"stated: {name} {a[bad][0]:g} is off the design's grid; give whole "
                    f"numbers from 1 to {hi}."
                )
            arrs[name] = a
        if arrs["day"].size != arrs["decision"].size:
            raise DesignError(
                f"stated: day has {arrs['day'].size} values but decision has "
                f"{arrs['decision'].size}; give one decision per day (the same length)."
            )
        return self._stated(arrs["day"], arrs["decision"], state)

    def _stated(
        self, day: ArrayLike, decision: ArrayLike, state: ArrayLike | None = None
    ) -> np.ndarray:
        """Stated probabilities (n, L) at the given points; NaN rows where off the grid."""
        day = np.asarray(day, dtype=float)
        dec = np.asarray(decision, dtype=float)
        out = np.full((day.size, len(self.levels)), np.nan)
        ok = (day >= 1) & (day <= self.days) & (dec >= 1) & (dec <= self.per_day)
        ok &= (day == np.round(day)) & (dec == np.round(dec))
        t = np.where(ok, (day - 1) * self.per_day + dec - 1, 0).astype(int)
        if not self.has_states:
            out[ok] = self.tables[None][t[ok]]
            return out
        if state is None:
            raise DesignError("stated: this design depends on a state; give the states.")
        st = pd.Series(np.asarray(state, dtype=object))
        for s, tab in self.tables.items():
            m = ok & (st == s).to_numpy()
            out[m] = tab[t[m]]
        return out

    def schedule(
        self,
        participants: int | Sequence[Hashable],
        seed: int | np.random.SeedSequence | None = None,
        states: ArrayLike | pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Draw a randomization schedule (one row per participant x decision point).

        Columns: participant, day, decision, t, [state], prob_<level> for each level,
        [availability, available], treatment. ``participants`` is a number n (ids 1..n) or the
        ids. ``states`` (state-dependent designs): an (n, T) array or a DataFrame with
        participant, day, decision, state; by default drawn from ``state_probs``. The same seed
        gives the same schedule (uniforms for state, availability and treatment are drawn in
        that order, each n x T).
        """
        if isinstance(participants, str | bytes | bool | np.bool_ | float) or not (
            isinstance(participants, int | np.integer) or isinstance(participants, Iterable)
        ):
            raise DesignError(
                f"participants must be a number of participants or a list of ids, got "
                f"{participants!r}; pass e.g. participants=20 or participants=['a', 'b']."
            )
        ids = (
            np.arange(1, _positive_int(participants, "participants") + 1)
            if isinstance(participants, int | np.integer)
            else np.asarray(list(participants), dtype=object)
        )
        n, T, K, L = len(ids), self.n_decisions, self.per_day, len(self.levels)
        if n == 0 or len(set(ids.tolist())) != n:
            raise DesignError(
                "participants: give a positive number or distinct ids; pass e.g. participants=20."
            )
        if states is not None and not self.has_states:
            raise DesignError(
                "schedule: states is given but this design's probs do not depend on a state; "
                "drop states, or build the design with probs as a dict {state: probabilities}."
            )
        rng = np.random.default_rng(check_seed(seed))
        u_state, u_avail, u_treat = rng.random((n, T)), rng.random((n, T)), rng.random((n, T))
        keys = list(self.tables)
        if self.has_states:
            if states is None:
                cw = np.cumsum(self._state_weights())[:-1]
                s_idx = (u_state[..., None] >= cw).sum(axis=-1)
            else:
                s_idx = self._state_index(states, ids)
            probs = np.stack([self.tables[s] for s in keys])[s_idx, np.arange(T)[None, :]]
        else:
            s_idx = None
            probs = np.broadcast_to(self.tables[None], (n, T, L))
        cum = np.cumsum(probs, axis=-1)[..., :-1]
        k = (u_treat[..., None] >= cum).sum(axis=-1)
        k = np.minimum(k, L - 1)
        # a level with probability 0 is never drawn, even at u on its boundary
        zero = np.take_along_axis(probs, k[..., None], axis=-1)[..., 0] <= 0
        if zero.any():
            k[zero] = np.argmax(probs[zero] > 0, axis=-1)
        available = np.ones((n, T), dtype=bool) if self.avail is None else u_avail < self.avail
        k = np.where(available, k, 0)
        frame = pd.DataFrame(
            {
                "participant": np.repeat(ids, T),
                "day": np.tile(np.arange(T) // K + 1, n),
                "decision": np.tile(np.arange(T) % K + 1, n),
                "t": np.tile(np.arange(T) + 1, n),
            }
        )
        if s_idx is not None:
            frame["state"] = np.asarray(keys, dtype=object)[s_idx.ravel()]
        for j, col in enumerate(self.prob_columns):
            frame[col] = probs[..., j].ravel()
        if self.avail is not None:
            frame["availability"] = np.tile(self.avail, n)
            frame["available"] = available.ravel().astype(int)
        frame["treatment"] = np.asarray(self.levels, dtype=object)[k.ravel()]
        frame["treatment"] = frame["treatment"].infer_objects()
        return frame

    def _state_index(self, states: ArrayLike | pd.DataFrame, ids: np.ndarray) -> np.ndarray:
        n, T = len(ids), self.n_decisions
        if isinstance(states, pd.DataFrame):
            need = {"participant", "day", "decision", "state"}
            if not need <= set(states.columns):
                raise DesignError(f"states: a DataFrame needs columns {sorted(need)}.")
            pos = {v: i for i, v in enumerate(ids.tolist())}
            arr = np.full((n, T), None, dtype=object)
            i = states["participant"].map(pos)
            t = (states["day"] - 1) * self.per_day + states["decision"] - 1
            ok = i.notna() & (t >= 0) & (t < T)
            arr[i[ok].astype(int).to_numpy(), t[ok].astype(int).to_numpy()] = states.loc[
                ok, "state"
            ].to_numpy()
        else:
            arr = np.asarray(states, dtype=object)
            if arr.shape != (n, T):
                raise DesignError(f"states: give an array of shape ({n}, {T}), got {arr.shape}.")
        lookup = {s: j for j, s in enumerate(self.tables)}
        flat = pd.Series(arr.ravel()).map(lookup)
        if flat.isna().any():
            r = int(np.flatnonzero(flat.isna().to_numpy())[0])
            raise DesignError(
                f"states: participant {ids[r // T]!r} at {_where(r % T, self.per_day)} has state "
                f"{arr.ravel()[r]!r}, not one of {list(self.tables)} ({int(flat.isna().sum())} "
                "decision point(s))."
            )
        return flat.to_numpy(dtype=int).reshape(n, T)

    def to_csv(
        self,
        path: str | Path,
        participants: int | Sequence[Hashable] | None = None,
        seed: int | np.random.SeedSequence | None = None,
        states: ArrayLike | pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Write the schedule (when ``participants`` is given) or else :meth:`table` to CSV.

        Returns the DataFrame written.
        """
        path = output_path(path, "RandomizationDesign.to_csv", ".csv")
        frame = self.table() if participants is None else self.schedule(participants, seed, states)
        frame.to_csv(path, index=False)
        return frame

    def describe(self) -> str:
        lv = ", ".join(map(repr, self.levels))
        st = f"; state-dependent ({len(self.tables)} states)" if self.has_states else ""
        av = "" if self.avail is None else f"; mean availability {self.avail.mean():.3g}"
        return f"{self.days} days x {self.per_day} decisions/day; levels ({lv}){st}{av}"
