r"""Randomization schedules for micro-randomized trials and audits of delivered randomization.

Design
------
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

Audit
-----
:func:`audit` compares a delivered-treatment log with the stated probabilities (from a design,
or from the log's own probability columns). On the randomized rows (available, valid, first copy
of duplicated rows), for a level l_k and a group G of rows (one participant, or one block of
days pooled over participants) the count X = #{t in G : A_t = l_k} is, if the randomization
was carried out as stated, a sum of independent Bernoulli(pi_t(k)) variables: binomial when
pi_t(k) is constant on G (exact ``scipy.stats.binomtest``), otherwise Poisson-binomial (exact
distribution by convolving the binomials of the distinct probabilities). The two-sided p-value
is the total probability of counts no more likely than the observed one (binomtest's
``two-sided``). The p-values of each family (all participant x level tests; all block x level
tests) are adjusted by Holm's step-down method, which controls the family-wise error rate:
p_(j) -> max_{m <= j} min(1, (M - m + 1) p_(m)) for the M sorted p-values; a group is flagged
when its adjusted p-value is below ``alpha``. The observed rate X / n carries the exact
(Clopper-Pearson) interval.

The audit also lists, row by row, treatment delivered while unavailable (A != l_0 with
I = 0), decision points missing from the design's grid (participant x day x decision), rows
duplicated on (participant, day, decision), and invalid rows (missing values, unknown levels,
off-grid day / decision, unknown states, invalid stated probabilities, stated probabilities that
disagree with the design). Nothing is dropped silently: every excluded or flagged row is in a
table of the :class:`AuditResult` and counted in its summary.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import signal, stats

from hte_mrt.design.samplesize import Curve, _per_decision, _positive_int
from hte_mrt.errors import DesignError, MissingColumnError

__all__ = ["AuditResult", "RandomizationDesign", "audit"]

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
            "decision point(s) affected)."
        )
    sums = tab.sum(axis=1)
    off = np.abs(sums - 1) > _TOL
    if off.any():
        t = int(np.flatnonzero(off)[0])
        raise DesignError(
            f"probs: the level probabilities {np.round(tab[t], 6).tolist()} at "
            f"{_where(t, per_day, state)} sum to {sums[t]:.6g}, not 1 ({int(off.sum())} "
            "decision point(s) affected)."
        )


@dataclass(frozen=True, eq=False)
class RandomizationDesign:
    """Decision rules and (time- or state-dependent) randomization probabilities of an MRT.

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
            raise DesignError(f"levels must hold at least 2 distinct values, got {levels!r}.")
        object.__setattr__(self, "levels", levels)
        specs = dict(self.probs) if isinstance(self.probs, Mapping) else {None: self.probs}
        if not specs:
            raise DesignError("probs: the state -> probabilities dict is empty.")
        tables = {}
        for state, spec in specs.items():
            name = "probs" if state is None else f"probs[{state!r}]"
            tab = _prob_table(spec, D, K, len(levels), name)
            _validate_table(tab, K, state, levels)
            tables[state] = tab
        object.__setattr__(self, "tables", tables)
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
                    f"availability {avail[t]:.6g} at {_where(t, K)} lies outside [0, 1]."
                )
        object.__setattr__(self, "avail", avail)
        if self.state_probs is not None:
            if not self.has_states:
                raise DesignError("state_probs is given but probs does not depend on a state.")
            sp = self.state_probs
            unknown = set(sp) - set(tables)
            if unknown or set(tables) - set(sp):
                raise DesignError(
                    f"state_probs must give a probability to each state of probs "
                    f"({list(tables)}), got {list(sp)}."
                )
            w = np.array([sp[s] for s in tables], dtype=float)
            if np.any(w < 0) or abs(w.sum() - 1) > _TOL:
                raise DesignError(f"state_probs must be >= 0 and sum to 1, got {dict(sp)}.")

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
        """The stated probabilities: one row per (state,) day and decision."""
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
        ids = (
            np.arange(1, _positive_int(participants, "participants") + 1)
            if isinstance(participants, int | np.integer)
            else np.asarray(list(participants), dtype=object)
        )
        n, T, K, L = len(ids), self.n_decisions, self.per_day, len(self.levels)
        if n == 0 or len(set(ids.tolist())) != n:
            raise DesignError("participants: give a positive number or distinct ids.")
        rng = np.random.default_rng(seed)
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
        frame = self.table() if participants is None else self.schedule(participants, seed, states)
        frame.to_csv(path, index=False)
        return frame

    def describe(self) -> str:
        lv = ", ".join(map(repr, self.levels))
        st = f"; state-dependent ({len(self.tables)} states)" if self.has_states else ""
        av = "" if self.avail is None else f"; mean availability {self.avail.mean():.3g}"
        return f"{self.days} days x {self.per_day} decisions/day; levels ({lv}){st}{av}"


# ---------------------------------------------------------------------------------------------
# exact tests
# ---------------------------------------------------------------------------------------------
def _poisson_binomial_pmf(probs: np.ndarray) -> np.ndarray:
    """pmf of a sum of independent Bernoulli(p_t): convolution of one binomial per distinct p."""
    vals, counts = np.unique(probs, return_counts=True)
    pmf = np.ones(1)
    for p, m in zip(vals, counts, strict=True):
        b = stats.binom.pmf(np.arange(m + 1), m, p)
        if len(pmf) * len(b) <= 4_000_000:
            pmf = np.convolve(pmf, b)
        else:
            pmf = np.clip(signal.fftconvolve(pmf, b), 0.0, None)
    return pmf / pmf.sum()


def _exact_test(x: int, probs: np.ndarray) -> float:
    """Two-sided exact p-value of X = x, X ~ sum Bernoulli(probs) (binomtest when constant)."""
    n = len(probs)
    if n == 0:
        return float("nan")
    if np.all(probs == probs[0]):
        return float(stats.binomtest(int(x), n, float(probs[0])).pvalue)
    pmf = _poisson_binomial_pmf(probs)
    return float(min(1.0, pmf[pmf <= pmf[x] * (1 + 1e-7)].sum()))


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN left as NaN, not counted)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


def _group_tests(
    rows: pd.DataFrame, keys: list[str], levels: Sequence[Hashable], tested: list[int]
) -> pd.DataFrame:
    """Observed vs stated for each group x tested level, exact p-value and Clopper-Pearson CI."""
    out = []
    for key, g in rows.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for k in tested:
            probs = g[f"_p{k}"].to_numpy()
            n = len(probs)
            x = int((g["_k"].to_numpy() == k).sum())
            ci = stats.binomtest(x, n).proportion_ci(method="exact") if n else None
            out.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "level": levels[k],
                    "n": n,
                    "observed": x,
                    "expected": float(probs.sum()),
                    "observed_rate": x / n if n else np.nan,
                    "stated_rate": float(probs.mean()) if n else np.nan,
                    "ci_low": ci.low if ci else np.nan,
                    "ci_high": ci.high if ci else np.nan,
                    "p_value": _exact_test(x, probs),
                }
            )
    cols = [*keys, "level", "n", "observed", "expected", "observed_rate", "stated_rate",
            "ci_low", "ci_high", "p_value"]  # fmt: skip
    return pd.DataFrame(out, columns=cols)


# ---------------------------------------------------------------------------------------------
# audit result
# ---------------------------------------------------------------------------------------------
@dataclass
class AuditResult:
    """What :func:`audit` found. Every table lists each affected row or group.

    ``by_participant`` / ``by_block``: observed vs stated rate per participant (block of
    ``block_days`` days) and tested level, with the exact p-value, its Holm adjustment and
    ``flagged`` (adjusted p < ``alpha``). ``unavailable_treated``, ``gaps``, ``duplicates``,
    ``invalid`` (with a ``reason``) and ``prob_mismatch`` list rows of the log (or, for gaps, the
    missing grid points).
    """

    by_participant: pd.DataFrame
    by_block: pd.DataFrame
    unavailable_treated: pd.DataFrame
    gaps: pd.DataFrame
    duplicates: pd.DataFrame
    invalid: pd.DataFrame
    prob_mismatch: pd.DataFrame
    alpha: float
    block_days: int
    levels: tuple[Hashable, ...]
    n_rows: int
    n_participants: int
    n_tested_rows: int
    grid: str
    notes: list[str] = field(default_factory=list)

    @property
    def flagged_participants(self) -> list[Hashable]:
        """Participants with at least one flagged level (adjusted p < alpha)."""
        f = self.by_participant
        return list(dict.fromkeys(f.loc[f["flagged"], "participant"].tolist()))

    @property
    def flagged_blocks(self) -> list[int]:
        f = self.by_block
        return list(dict.fromkeys(f.loc[f["flagged"], "block"].tolist()))

    @property
    def ok(self) -> bool:
        """True when nothing was flagged or listed."""
        return len(self.flags()) == 0

    def flags(self) -> pd.DataFrame:
        """Every flagged item in one table: check, participant, day, decision, detail."""
        parts = []
        fp = self.by_participant[self.by_participant["flagged"]]
        for r in fp.itertuples(index=False):
            parts.append(
                ("probability (participant)", r.participant, None, None,
                 f"level {r.level!r}: observed {r.observed_rate:.3f} ({r.observed}/{r.n}) vs "
                 f"stated {r.stated_rate:.3f}, Holm p = {r.p_adjusted:.2g}")
            )  # fmt: skip
        fb = self.by_block[self.by_block["flagged"]]
        for r in fb.itertuples(index=False):
            parts.append(
                ("probability (block)", None, f"{r.day_from}-{r.day_to}", None,
                 f"level {r.level!r}: observed {r.observed_rate:.3f} ({r.observed}/{r.n}) vs "
                 f"stated {r.stated_rate:.3f}, Holm p = {r.p_adjusted:.2g}")
            )  # fmt: skip
        for name, tab, what in (
            ("treated while unavailable", self.unavailable_treated, "treatment {t!r}"),
            ("missing decision point", self.gaps, "not in the log"),
            ("duplicated row", self.duplicates, "row {row}, copy {copy}"),
            ("invalid row", self.invalid, "{reason}"),
            ("stated probability differs from design", self.prob_mismatch, "row {row}"),
        ):
            for r in tab.to_dict("records"):
                detail = what.format(
                    t=r.get("treatment"), row=r.get("row"), copy=r.get("copy"),
                    reason=r.get("reason"),
                )  # fmt: skip
                parts.append((name, r.get("participant"), r.get("day"), r.get("decision"), detail))
        return pd.DataFrame(parts, columns=["check", "participant", "day", "decision", "detail"])

    def summary(self, max_rows: int = 20) -> str:
        """Short text report; lists up to ``max_rows`` items per check (the rest: see tables)."""
        bp, bb = self.by_participant, self.by_block
        lines = [
            f"Randomization audit: {self.n_rows} log rows, {self.n_participants} participants, "
            f"{self.n_tested_rows} randomized rows tested; grid {self.grid}",
            f"  tests: exact binomial (Poisson-binomial where the stated probability varies), "
            f"Holm-adjusted within each family, flag at adjusted p < {self.alpha:g}",
        ]
        lines += [f"  note: {n}" for n in self.notes]

        def block(title: str, tab: pd.DataFrame, fmt: Callable[[dict], str], hint: str) -> None:
            lines.append(f"  {title}: {len(tab)}")
            recs = tab.to_dict("records")
            for r in recs[:max_rows]:
                lines.append(f"    {fmt(r)}")
            if len(recs) > max_rows:
                lines.append(f"    ... and {len(recs) - max_rows} more (see result.{hint})")

        def rate(r: dict) -> str:
            return (
                f"level {r['level']!r}: observed {r['observed_rate']:.3f} ({r['observed']}/"
                f"{r['n']}) vs stated {r['stated_rate']:.3f}, p = {r['p_value']:.2g}, "
                f"Holm p = {r['p_adjusted']:.2g}"
            )

        n_fam = int(bp["p_value"].notna().sum())
        n_blk = int(bb["p_value"].notna().sum())
        block(
            f"flagged participant x level tests (of {n_fam})",
            bp[bp["flagged"]],
            lambda r: f"participant {r['participant']!r}, {rate(r)}",
            "by_participant",
        )
        block(
            f"flagged blocks of {self.block_days} day(s) x level (of {n_blk})",
            bb[bb["flagged"]],
            lambda r: f"days {r['day_from']}-{r['day_to']}, {rate(r)}",
            "by_block",
        )
        block(
            "treatment delivered while unavailable",
            self.unavailable_treated,
            lambda r: (
                f"row {r['row']}: participant {r['participant']!r}, day {r['day']}, "
                f"decision {r['decision']}, treatment {r['treatment']!r}"
            ),
            "unavailable_treated",
        )
        block(
            "missing decision points",
            self.gaps,
            lambda r: f"participant {r['participant']!r}, day {r['day']}, decision {r['decision']}",
            "gaps",
        )
        block(
            "duplicated rows",
            self.duplicates,
            lambda r: (
                f"row {r['row']}: participant {r['participant']!r}, day {r['day']}, "
                f"decision {r['decision']} (copy {r['copy']})"
            ),
            "duplicates",
        )
        block(
            "invalid rows (not tested)",
            self.invalid,
            lambda r: f"row {r['row']}: {r['reason']}",
            "invalid",
        )
        if len(self.prob_mismatch) or "design" in self.grid:
            block(
                "stated probabilities differing from the design",
                self.prob_mismatch,
                lambda r: (
                    f"row {r['row']}: participant {r['participant']!r}, day {r['day']}, "
                    f"decision {r['decision']}"
                ),
                "prob_mismatch",
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, level: Hashable | None = None):
        """Observed vs stated rate with exact 95% CIs, by block (top) and by participant (bottom).

        Flagged groups are drawn in red. ``level``: which tested level (default: the first).
        Returns the matplotlib Figure.
        """
        import matplotlib.pyplot as plt

        tested = list(dict.fromkeys(self.by_block["level"].tolist()))
        lev = tested[0] if level is None else level
        if lev not in tested:
            raise DesignError(f"plot: level {lev!r} was not tested; tested levels: {tested}.")
        fig, axes = plt.subplots(2, 1, figsize=(7, 6))
        for ax, tab, xcol, xlabel in (
            (axes[0], self.by_block, "block", f"block of {self.block_days} day(s)"),
            (axes[1], self.by_participant, "participant", "participant"),
        ):
            t = tab[tab["level"] == lev].reset_index(drop=True)
            x = np.arange(len(t))
            col = np.where(t["flagged"], "tab:red", "tab:blue")
            err = np.vstack([t["observed_rate"] - t["ci_low"], t["ci_high"] - t["observed_rate"]])
            ax.errorbar(x, t["observed_rate"], yerr=err, fmt="none", ecolor=list(col), lw=1)
            ax.scatter(x, t["observed_rate"], c=list(col), s=12, zorder=3, label="observed")
            ax.step(x, t["stated_rate"], where="mid", color="k", lw=1, label="stated")
            if xcol == "block":
                labels = [f"{a}-{b}" for a, b in zip(t["day_from"], t["day_to"], strict=True)]
            else:
                labels = [str(v) for v in t["participant"]]
            step = max(1, len(x) // 20)
            ax.set_xticks(x[::step], labels[::step], fontsize=7, rotation=45)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"P(treatment = {lev!r})")
            ax.set_ylim(0, 1)
        axes[0].legend(fontsize=8, loc="best")
        axes[0].set_title("observed (exact 95% CI; red: flagged) vs stated", fontsize=9)
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------------------------
def _require(log: pd.DataFrame, col: str, role: str) -> None:
    if col not in log.columns:
        raise MissingColumnError(
            f"audit: the {role} column {col!r} is not in the log (columns: {list(log.columns)}).",
            column=col,
        )


def audit(
    log: pd.DataFrame,
    design: RandomizationDesign | None = None,
    *,
    prob: str | Sequence[str] | Mapping[Hashable, str] | None = None,
    levels: Sequence[Hashable] | None = None,
    participant: str = "participant",
    day: str = "day",
    decision: str = "decision",
    treatment: str = "treatment",
    available: str | None = None,
    state: str = "state",
    participants: Sequence[Hashable] | None = None,
    block_days: int = 7,
    alpha: float = 0.05,
) -> AuditResult:
    """Audit a delivered-treatment log against the stated randomization probabilities.

    Parameters
    ----------
    log
        One row per participant x decision point: ``participant``, ``day``, ``decision``,
        ``treatment`` columns (1-based day and decision), optionally availability and state.
    design
        The :class:`RandomizationDesign`: stated probabilities (looked up by day, decision and,
        if state-dependent, the ``state`` column) and the grid for missing decision points.
    prob
        Alternatively (or in addition, then checked against the design) the log's stated
        probability column(s): one column = P(treatment = ``levels[1]``) of a binary design, or
        one column per level (a list in the order of ``levels``, or a dict level -> column).
    levels
        Treatment levels (reference first) when no design is given (default (0, 1)).
    available
        The availability column (0/1); default ``"available"`` if the log has it, else every row
        counts as available (noted in the summary).
    participants
        The enrolled participants (default: those in the log); absent ones show up as gaps.
    block_days
        Days per time block for the pooled tests (1: per day).
    alpha
        Flag groups whose Holm-adjusted p-value is below ``alpha`` (family-wise error rate).

    Returns
    -------
    AuditResult
        ``summary()``, ``plot()``, ``flags()`` and the tables described there. Without a design
        the grid is inferred from the log (days 1..max day, decisions 1..max decision).
    """
    if not isinstance(log, pd.DataFrame):
        raise DesignError(f"audit: log must be a pandas DataFrame, got {type(log).__name__}.")
    if design is None and prob is None:
        raise DesignError("audit: give the design or the stated-probability column(s) (prob=).")
    if not 0 < float(alpha) < 1:
        raise DesignError(f"audit: alpha must lie in (0, 1), got {alpha!r}.")
    bd = _positive_int(block_days, "block_days")
    for col, role in ((participant, "participant"), (day, "day"), (decision, "decision"),
                      (treatment, "treatment")):  # fmt: skip
        _require(log, col, role)
    notes: list[str] = []
    if available is None and "available" in log.columns:
        available = "available"
    if available is not None:
        _require(log, available, "availability")
    else:
        notes.append("no availability column: every row counts as available")
    lv = tuple(design.levels) if design is not None else tuple(levels or (0, 1))
    if design is not None and levels is not None and tuple(levels) != lv:
        raise DesignError(f"audit: levels {tuple(levels)} differ from the design's {lv}.")
    L = len(lv)

    df = log.reset_index(drop=True)
    work = pd.DataFrame(
        {
            "row": np.arange(len(df)),
            "participant": df[participant],
            "day": df[day],
            "decision": df[decision],
            "treatment": df[treatment],
        }
    )
    reasons = pd.Series("", index=work.index, dtype=object)

    def mark(mask: ArrayLike, why: str) -> None:
        m = np.asarray(mask, dtype=bool) & (reasons == "").to_numpy()
        reasons[m] = why

    mark(work[["participant", "day", "decision", "treatment"]].isna().any(axis=1).to_numpy(),
         "missing participant, day, decision or treatment")  # fmt: skip
    dnum = pd.to_numeric(work["day"], errors="coerce")
    knum = pd.to_numeric(work["decision"], errors="coerce")
    mark((dnum != np.round(dnum)) | (knum != np.round(knum)) | (dnum < 1) | (knum < 1),
         "day / decision not a positive whole number")  # fmt: skip
    if design is not None:
        D, K = design.days, design.per_day
        grid = f"{D} days x {K} decisions (design)"
    else:
        good = (reasons == "").to_numpy()
        D = int(dnum[good].max()) if good.any() else 0
        K = int(knum[good].max()) if good.any() else 0
        grid = f"{D} days x {K} decisions (inferred from the log)"
    mark((dnum > D) | (knum > K), f"day / decision outside the grid ({D} x {K})")
    level_index = {v: i for i, v in enumerate(lv)}
    kidx = work["treatment"].map(lambda v: level_index.get(v, np.nan))
    mark(kidx.isna().to_numpy(), f"treatment not one of the levels {lv}")
    work["_k"] = kidx
    if available is not None:
        av = pd.to_numeric(df[available], errors="coerce")
        mark(~av.isin([0, 1]).to_numpy(), "availability missing or not 0/1")
        work["_avail"] = av.fillna(0).astype(bool)
    else:
        work["_avail"] = True

    # stated probabilities
    P = np.full((len(df), L), np.nan)
    mismatch = np.zeros(len(df), dtype=bool)
    if design is not None:
        st = None
        if design.has_states:
            _require(df, state, "state")
            st = df[state]
            mark(~st.isin(design.states).to_numpy(), f"state not one of {design.states}")
        P = design.stated(dnum.fillna(0), knum.fillna(0), st)
    if prob is not None:
        if isinstance(prob, str):
            if L != 2:
                raise DesignError(
                    f"audit: one prob column needs 2 levels, got {L}: give {L} columns."
                )
            _require(df, prob, "stated probability")
            p1 = pd.to_numeric(df[prob], errors="coerce").to_numpy(dtype=float)
            Q = np.column_stack([1 - p1, p1])
        else:
            cols = [prob[v] for v in lv] if isinstance(prob, Mapping) else list(prob)
            if len(cols) != L:
                raise DesignError(f"audit: prob needs one column per level ({L}), got {cols}.")
            for c in cols:
                _require(df, c, "stated probability")
            Q = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        badq = ~np.all((Q >= 0) & (Q <= 1), axis=1) | (np.abs(Q.sum(axis=1) - 1) > 1e-6)
        mark(badq, "stated probabilities missing, outside [0, 1] or not summing to 1")
        if design is not None:
            valid = (reasons == "").to_numpy()
            mismatch = valid & ~np.all(np.abs(Q - P) <= 1e-6, axis=1)
        P = Q
    mark(np.isnan(P).any(axis=1), "no stated probability for this row")
    for k in range(L):
        work[f"_p{k}"] = P[:, k]

    valid = (reasons == "").to_numpy()
    invalid = work.loc[~valid, ["row", "participant", "day", "decision", "treatment"]].copy()
    invalid["reason"] = reasons[~valid].to_numpy()
    ok = work[valid].copy()
    ok["day"] = ok["day"].astype(int)
    ok["decision"] = ok["decision"].astype(int)
    ok["_k"] = ok["_k"].astype(int)

    # duplicates: every copy listed; the first copy is kept for the tests
    key = ["participant", "day", "decision"]
    dup_mask = ok.duplicated(key, keep=False)
    duplicates = ok.loc[dup_mask, ["row", *key, "treatment"]].copy()
    duplicates["copy"] = ok[dup_mask].groupby(key).cumcount().to_numpy() + 1
    duplicates = duplicates.sort_values([*key, "copy"]).reset_index(drop=True)
    first = ok[~ok.duplicated(key, keep="first")]

    # treatment while unavailable (every valid row, duplicates included)
    ut = ok[(~ok["_avail"]) & (ok["_k"] != 0)]
    unavailable_treated = ut[["row", *key, "treatment"]].reset_index(drop=True)

    # gaps against the grid
    ids = list(dict.fromkeys(work["participant"].dropna().tolist()))
    if participants is not None:
        ids = list(participants) + [i for i in ids if i not in set(participants)]
    grid_frame = pd.DataFrame(
        {
            "participant": np.repeat(np.asarray(ids, dtype=object), D * K),
            "day": np.tile(np.repeat(np.arange(1, D + 1), K), len(ids)),
            "decision": np.tile(np.arange(1, K + 1), D * len(ids)),
        }
    )
    seen = first[key].astype({"participant": object})
    merged = grid_frame.merge(seen, on=key, how="left", indicator=True)
    gaps = merged.loc[merged["_merge"] == "left_only", key].reset_index(drop=True)
    gaps["t"] = (gaps["day"] - 1) * K + gaps["decision"]

    prob_mismatch = work.loc[mismatch, ["row", *key, "treatment"]].reset_index(drop=True)
    if prob_mismatch.shape[0]:
        for k in range(L):
            prob_mismatch[f"stated_{lv[k]}"] = P[mismatch, k]

    # probability tests on the randomized rows
    tested_rows = first[first["_avail"]].copy()
    tested_rows["block"] = (tested_rows["day"] - 1) // bd + 1
    tested = [1] if L == 2 else list(range(L))
    by_p = _group_tests(tested_rows, ["participant"], lv, tested)
    by_p["p_adjusted"] = _holm(by_p["p_value"].to_numpy())
    by_p["flagged"] = by_p["p_adjusted"] < alpha
    by_b = _group_tests(tested_rows, ["block"], lv, tested)
    by_b.insert(1, "day_from", (by_b["block"] - 1) * bd + 1)
    by_b.insert(2, "day_to", np.minimum(by_b["block"] * bd, D))
    by_b["p_adjusted"] = _holm(by_b["p_value"].to_numpy())
    by_b["flagged"] = by_b["p_adjusted"] < alpha
    return AuditResult(
        by_participant=by_p,
        by_block=by_b,
        unavailable_treated=unavailable_treated,
        gaps=gaps,
        duplicates=duplicates,
        invalid=invalid.reset_index(drop=True),
        prob_mismatch=prob_mismatch,
        alpha=float(alpha),
        block_days=bd,
        levels=lv,
        n_rows=len(df),
        n_participants=len(ids),
        n_tested_rows=len(tested_rows),
        grid=grid,
        notes=notes,
    )
