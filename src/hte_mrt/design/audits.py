r"""Audits of delivered randomization in a micro-randomized trial: :func:`audit`.

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

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import signal, stats

from hte_mrt._contract import Result, Summary, check_conf_level
from hte_mrt.design.common import _positive_int
from hte_mrt.design.schedules import RandomizationDesign
from hte_mrt.errors import DataError, DesignError, MissingColumnError

__all__ = ["AuditResult", "audit"]


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


def _clopper_pearson(x: np.ndarray, n: np.ndarray, conf_level: float) -> tuple[np.ndarray, ...]:
    """Exact (Clopper-Pearson) interval of a binomial proportion x / n, vectorized."""
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    a = 1.0 - conf_level
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, stats.beta.ppf(a / 2, x, n - x + 1), 0.0)
        hi = np.where(x < n, stats.beta.ppf(1 - a / 2, x + 1, n - x), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)


def _group_tests(
    rows: pd.DataFrame,
    keys: list[str],
    levels: Sequence[Hashable],
    tested: list[int],
    conf_level: float,
) -> pd.DataFrame:
    """Observed vs stated for each group x tested level, exact p-value and Clopper-Pearson CI."""
    out = []
    for key, g in rows.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for k in tested:
            probs = g[f"_p{k}"].to_numpy()
            n = len(probs)
            x = int((g["_k"].to_numpy() == k).sum())
            out.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "level": levels[k],
                    "n": n,
                    "observed": x,
                    "expected": float(probs.sum()),
                    "observed_rate": x / n if n else np.nan,
                    "stated_rate": float(probs.mean()) if n else np.nan,
                    "p": _exact_test(x, probs),
                }
            )
    cols = [*keys, "level", "n", "observed", "expected", "observed_rate", "stated_rate", "p"]
    tab = pd.DataFrame(out, columns=cols)
    lcl, ucl = _clopper_pearson(tab["observed"], tab["n"], conf_level)
    tab.insert(len(cols) - 1, "lcl", lcl)
    tab.insert(len(cols), "ucl", ucl)
    return tab


# ---------------------------------------------------------------------------------------------
# audit result
# ---------------------------------------------------------------------------------------------
@dataclass(repr=False)
class AuditResult(Result):
    """What :func:`audit` found. Every table lists each affected row or group.

    ``by_participant`` / ``by_block``: observed vs stated rate per participant (block of
    ``block_days`` days) and tested level: n, observed, expected, observed_rate, stated_rate,
    the exact (Clopper-Pearson) interval ``lcl``, ``ucl`` at ``conf_level``, the exact p-value
    ``p``, its Holm adjustment ``p_adjusted`` and ``flagged`` (adjusted p < ``alpha``).
    ``unavailable_treated``, ``gaps``, ``duplicates``, ``invalid`` (with a ``reason``) and
    ``prob_mismatch`` list rows of the log (or, for gaps, the missing grid points).

    ``table()`` stacks the two test families (column ``family``: "participant" or "block");
    ``summary()`` counts every check and lists the flagged items (:meth:`flags`).
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
    conf_level: float = 0.95

    _kind = "randomization audit"

    @property
    def flagged_participants(self) -> list[Hashable]:
        """Participants with at least one flagged level (adjusted p < alpha)."""
        f = self.by_participant
        return list(dict.fromkeys(f.loc[f["flagged"], "participant"].tolist()))

    @property
    def flagged_blocks(self) -> list[int]:
        """Blocks of days with at least one flagged level (adjusted p < alpha)."""
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

    # ---- the results contract -------------------------------------------------------------
    def _table(self, conf_level: float) -> pd.DataFrame:
        parts = []
        for family, tab in (("participant", self.by_participant), ("block", self.by_block)):
            t = tab.copy()
            t.insert(0, "family", family)
            for col in ("participant", "block", "day_from", "day_to"):
                if col in t:  # object columns, so that the other family's rows hold None
                    t[col] = t[col].astype(object)
            if not np.isclose(conf_level, self.conf_level):
                t["lcl"], t["ucl"] = _clopper_pearson(t["observed"], t["n"], conf_level)
            parts.append(t)
        cols = ["family", "participant", "block", "day_from", "day_to", "level", "n",
                "observed", "expected", "observed_rate", "stated_rate", "lcl", "ucl", "p",
                "p_adjusted", "flagged"]  # fmt: skip
        out = pd.concat([p for p in parts if len(p)], ignore_index=True).reindex(columns=cols)
        for col in ("participant", "block", "day_from", "day_to"):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        return out

    def _counts(self) -> dict[str, Any]:
        bp, bb = self.by_participant, self.by_block
        info: dict[str, Any] = {
            "grid": self.grid,
            "randomized rows tested": self.n_tested_rows,
            "flagged participant x level tests": (
                f"{int(bp['flagged'].sum())} of {int(bp['p'].notna().sum())}"
            ),
            f"flagged blocks of {self.block_days} day(s) x level": (
                f"{int(bb['flagged'].sum())} of {int(bb['p'].notna().sum())}"
            ),
            "treatment delivered while unavailable": len(self.unavailable_treated),
            "missing decision points": len(self.gaps),
            "duplicated rows": len(self.duplicates),
            "invalid rows (not tested)": len(self.invalid),
        }
        if len(self.prob_mismatch) or "design" in self.grid:
            info["stated probabilities differing from the design"] = len(self.prob_mismatch)
        return info

    def summary(self, conf_level: float | None = None, max_rows: int = 20) -> Summary:
        """A :class:`~hte_mrt._contract.Summary`: counts of every check (info) and the flagged
        items (``.table``: :meth:`flags`, at most ``max_rows`` per check; the full lists are
        the result's tables). ``conf_level`` is unused (the flags carry no intervals)."""
        flags = self.flags()
        shown = flags.groupby("check", sort=False, group_keys=False).head(max_rows)
        notes = list(self.notes)
        hints = {
            "probability (participant)": "by_participant",
            "probability (block)": "by_block",
            "treated while unavailable": "unavailable_treated",
            "missing decision point": "gaps",
            "duplicated row": "duplicates",
            "invalid row": "invalid",
            "stated probability differs from design": "prob_mismatch",
        }
        for check, n in flags["check"].value_counts(sort=False).items():
            if n > max_rows:
                notes.append(f"{check}: {n - max_rows} more not shown (see result.{hints[check]})")
        title = (
            f"Randomization audit: {self.n_rows} log rows, {self.n_participants} participants; "
            "exact binomial tests (Poisson-binomial where the stated probability varies), "
            f"Holm-adjusted within each family, flagged at adjusted p < {self.alpha:g}"
        )
        return Summary(title, shown.reset_index(drop=True), self._counts(), notes)

    def to_xarray(self):
        """The tidy table as an xarray Dataset (dimension ``test``)."""
        import xarray as xr

        tab = self.table().astype({"participant": str, "level": str})
        ds = xr.Dataset.from_dataframe(tab.rename_axis("test"))
        ds.attrs["hte_mrt_class"] = type(self).__name__
        return ds

    def _repr_extra(self) -> str:
        n = len(self.flags())
        return f"{self.n_participants} participants, {n} flagged item(s)"

    def plot(self, level: Hashable | None = None):
        """Observed vs stated rate with exact CIs, by block (top) and by participant (bottom).

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
            err = np.vstack([t["observed_rate"] - t["lcl"], t["ucl"] - t["observed_rate"]])
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
        axes[0].set_title(
            f"observed (exact {100 * self.conf_level:g}% CI; red: flagged) vs stated", fontsize=9
        )
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------------------------
_ARG = {"availability": "available", "stated probability": "prob"}


def _require(log: pd.DataFrame, col: str, role: str) -> None:
    if col not in log.columns:
        raise MissingColumnError(
            f"audit: the {role} column {col!r} is not in the log (columns: "
            f"{list(log.columns)}); rename the column or pass "
            f"{_ARG.get(role, role)}=<its name>.",
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
    conf_level: float = 0.95,
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
        Numeric columns only. With both a design and ``prob``, the log's probabilities win:
        they are used in the tests, and rows where they differ from the design are listed in
        ``prob_mismatch`` (and the summary says so).
    levels
        Treatment levels (reference first) when no design is given (default (0, 1)).
    available
        The availability column (0/1); default ``"available"`` if the log has it, else every row
        counts as available (noted in the summary).
    participants
        The enrolled participants as a list of ids (default: those in the log); absent ones
        show up as gaps.
    block_days
        Days per time block for the pooled tests (1: per day).
    alpha
        Flag groups whose Holm-adjusted p-value is below ``alpha`` (family-wise error rate).
    conf_level
        Level of the exact (Clopper-Pearson) intervals of the observed rates.

    Returns
    -------
    AuditResult
        ``table()``: one row per tested group x level, columns family ("participant" or
        "block"), participant, block, day_from, day_to, level, n, observed, expected,
        observed_rate, stated_rate, lcl, ucl, p, p_adjusted, flagged. ``summary()`` counts every
        check and lists the flagged items; ``flags()``, ``plot()`` and the tables
        ``by_participant``, ``by_block``, ``unavailable_treated``, ``gaps``, ``duplicates``,
        ``invalid``, ``prob_mismatch``. Without a design the grid is inferred from the log
        (days 1..max day, decisions 1..max decision).

    Examples
    --------
    A seeded schedule passes its own audit; a participant treated too often is flagged:

    >>> import hte_mrt as hm
    >>> design = hm.RandomizationDesign(days=14, per_day=5, probs=0.4)
    >>> log = design.schedule(20, seed=2)
    >>> hm.audit(log, design).ok
    True
    >>> log.loc[log["participant"] == 3, "treatment"] = 1
    >>> res = hm.audit(log, design)
    >>> res.flagged_participants
    [3]
    >>> res.table().query("flagged")[["family", "participant", "block", "observed", "n"]]
             family participant block  observed    n
    2   participant           3  None        70   70
    21        block        None     2       312  700
    """
    if not isinstance(log, pd.DataFrame):
        raise DesignError(
            f"audit: log must be a pandas DataFrame, got {type(log).__name__}; pass the "
            "delivered-treatment log as a DataFrame."
        )
    if design is not None and not isinstance(design, RandomizationDesign):
        raise DesignError(
            f"audit: design must be a RandomizationDesign, got {type(design).__name__}; pass "
            "hm.RandomizationDesign(...) or give the stated probabilities with prob=."
        )
    if design is None and prob is None:
        raise DesignError(
            "audit: give the design (hm.RandomizationDesign) or the stated-probability "
            "column(s) (prob=)."
        )
    if participants is not None and (
        isinstance(participants, str | bytes) or not isinstance(participants, Iterable)
    ):
        raise DesignError(
            f"audit: participants must be a list of participant ids, got {participants!r}; "
            "pass e.g. participants=['a', 'b'] (a single id as a one-element list)."
        )
    a = alpha
    if isinstance(a, bool | str) or not isinstance(a, int | float | np.number) or not 0 < a < 1:
        raise DesignError(
            f"audit: alpha must be a number in (0, 1), got {alpha!r}; pass e.g. alpha=0.05."
        )
    if len(log) == 0:
        raise DataError(
            "audit: the log has no rows; pass the delivered-treatment log (one row per "
            "participant x decision point)."
        )
    bd = _positive_int(block_days, "block_days")
    conf = check_conf_level(conf_level)
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
        raise DesignError(
            f"audit: levels {tuple(levels)} differ from the design's {lv}; drop levels= (the "
            "design's are used) or fix the design."
        )
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
        P = design._stated(dnum.fillna(0), knum.fillna(0), st)
    if prob is not None:
        for c in (
            [prob]
            if isinstance(prob, str)
            else (list(prob.values()) if isinstance(prob, Mapping) else list(prob))
        ):
            if c in df.columns and not (
                pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
            ):
                raise DataError(
                    f"audit: the stated probability column {c!r} holds {df[c].dtype} values, "
                    f"not numbers (e.g. {df[c].iloc[0]!r}); convert it with "
                    f"log[{c!r}] = pd.to_numeric(log[{c!r}])."
                )
        if design is not None:
            notes.append(
                "stated probabilities: the log's prob column(s) are used in the tests; rows "
                "where they differ from the design are listed in prob_mismatch"
            )
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
    by_p = _group_tests(tested_rows, ["participant"], lv, tested, conf)
    by_p["p_adjusted"] = _holm(by_p["p"].to_numpy())
    by_p["flagged"] = by_p["p_adjusted"] < alpha
    by_b = _group_tests(tested_rows, ["block"], lv, tested, conf)
    by_b.insert(1, "day_from", (by_b["block"] - 1) * bd + 1)
    by_b.insert(2, "day_to", np.minimum(by_b["block"] * bd, D))
    by_b["p_adjusted"] = _holm(by_b["p"].to_numpy())
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
        conf_level=conf,
    )
