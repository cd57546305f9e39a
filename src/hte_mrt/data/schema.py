"""The MRT data model: a long DataFrame with explicit column roles, validated once.

One row per (participant i, decision point t). Roles:

* ``id`` participant, ``time`` decision point (numeric, unique within participant);
* ``treatment`` A_it: binary 0/1, or categorical with named ``levels``;
* ``prob`` P(A_it = a | H_it), the randomization probability (constant or column; per level for
  categorical treatments);
* ``availability`` I_it in {0, 1} (default: always available);
* ``outcome`` the proximal outcome Y_{i,t+1}; optional ``cluster``.

Only available decision points carry the estimand beta(t; s) = E[Y(1) - Y(0) | S = s, I = 1], so
checks on treatment, probability and outcome apply to available rows; unavailable rows are kept
(they matter for lags and for n) and are never randomized.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from hte_mrt._util import first_ids, fmt_ids, release_arrow_memory
from hte_mrt.data.checks import (
    excluded_rows,
    exclusions_table,
    numeric_outcome,
    require_column,
)
from hte_mrt.errors import (
    DataError,
    DegenerateDataWarning,
    DuplicateRowError,
    MissingColumnError,
    MissingValueError,
    ProbabilityError,
    TreatmentError,
)

if TYPE_CHECKING:
    from hte_mrt.data.large import LargeMRTData

ProbSpec = float | str
PROB_TOL = 1e-6


@dataclass(frozen=True)
class Roles:
    """Which column plays which role."""

    id: str
    time: str
    treatment: str
    outcome: str
    availability: str | None = None
    cluster: str | None = None


@dataclass
class TrialSummary:
    """What :meth:`MRTData.describe` returns: counts, randomization check, exclusions."""

    n_participants: int
    n_clusters: int | None
    n_rows: int
    decision_points: tuple[float, float]
    decisions_per_participant: pd.Series
    availability_rate: float
    randomization: pd.DataFrame
    exclusions: pd.DataFrame = field(repr=False)

    def __str__(self) -> str:
        d = self.decisions_per_participant
        lines = [
            "MRT data",
            f"  participants          {self.n_participants}",
        ]
        if self.n_clusters is not None:
            lines.append(f"  clusters              {self.n_clusters}")
        lines += [
            f"  rows (decisions)      {self.n_rows}",
            f"  decision points       {self.decision_points[0]:g} .. {self.decision_points[1]:g}",
            f"  per participant       min {d.min()}, median {d.median():g}, max {d.max()}",
            f"  availability rate     {self.availability_rate:.3f}",
            "  randomization (available rows): observed vs stated probability",
        ]
        lines += ["    " + s for s in self.randomization.to_string(index=False).splitlines()]
        if len(self.exclusions):
            lines.append(f"  rows excluded         {len(self.exclusions)}")
            counts = self.exclusions["reason"].value_counts()
            lines += [f"    {n:6d}  {reason}" for reason, n in counts.items()]
        else:
            lines.append("  rows excluded         0")
        return "\n".join(lines)

    _repr_pretty_ = None  # plain __str__ in notebooks too

    def __repr__(self) -> str:
        return str(self)


class MRTData:
    """A validated micro-randomized-trial data set.

    Parameters
    ----------
    frame
        Long data, one row per participant and decision point (any order: it is sorted).
    id, time, treatment, outcome
        Column names for participant, decision point, treatment A and proximal outcome Y.
    prob
        Randomization probability. Binary treatment: P(A = 1), a constant in (0, 1) or a column.
        Categorical treatment: leave ``None`` and give ``levels``.
    levels
        Categorical treatment only: ``{level: probability}`` in order, the first level being the
        reference (usually "no treatment"); each probability a constant or a column name.
    availability
        0/1 column; ``None`` means every decision point is available.
    cluster
        Optional cluster column (participants nested in clusters).
    missing
        ``"error"`` (default): NaN outcome on an available row raises. ``"drop"``: such rows are
        removed and listed in :attr:`exclusions` with the reason.

    Raises
    ------
    MissingColumnError, MissingValueError, ProbabilityError, TreatmentError, DuplicateRowError,
    OutcomeTypeError, DataError
        Each names the column (and the first offending ids) and says what to do: e.g. an
        empty frame, an infinite outcome (``log(0)``), ``prob="0.6"`` (a string is a column
        name: pass ``prob=0.6``).

    Warns
    -----
    DegenerateDataWarning
        A participant is never available (named, with ids): they contribute no decision point
        to any excursion effect.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import hte_mrt as hm
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({
    ...     "user": np.repeat([1, 2, 3], 4), "t": np.tile(range(4), 3),
    ...     "a": rng.integers(0, 2, 12), "y": rng.normal(size=12).round(2),
    ... })
    >>> data = hm.MRTData(df, id="user", time="t", treatment="a", outcome="y", prob=0.5)
    >>> data
    <MRTData: 3 participants, 12 rows, binary treatment 'a', outcome 'y'>

    Bad input raises an error that names the column and says what to do; rows dropped on
    request are listed, never silent:

    >>> df.loc[2, "y"] = np.nan
    >>> hm.MRTData(df, id="user", time="t", treatment="a", outcome="y", prob=0.5)
    Traceback (most recent call last):
    ...
    hte_mrt.errors.MissingValueError: Column 'y' (outcome) is missing ... missing='drop' ...
    >>> kept = hm.MRTData(df, id="user", time="t", treatment="a", outcome="y", prob=0.5,
    ...                   missing="drop")
    >>> kept.exclusions[["row", "user", "t"]]
       row  user  t
    0    2     1  2

    The bundled HeartSteps V1 data with their column roles:

    >>> hm.load_dataset("heartsteps", as_data=True)
    <MRTData: 37 participants, 7540 rows, binary treatment 'send', outcome 'jbsteps30_log'>
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        id: str,
        time: str,
        treatment: str,
        outcome: str,
        prob: ProbSpec | None = None,
        levels: Mapping[object, ProbSpec] | None = None,
        availability: str | None = None,
        cluster: str | None = None,
        missing: Literal["error", "drop"] = "error",
    ) -> None:
        if not isinstance(missing, str) or missing not in ("error", "drop"):
            raise DataError(
                f"missing must be 'error' (a missing outcome raises) or 'drop' (such rows are "
                f"removed and listed in .exclusions), got {missing!r}."
            )
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"MRTData needs a pandas DataFrame (one row per participant and decision point), "
                f"got {type(frame).__name__}: convert it with pd.DataFrame(...) first."
            )
        if isinstance(frame.columns, pd.MultiIndex):
            raise DataError(
                "MRTData needs one level of column names, but the frame has MultiIndex columns; "
                "flatten them first, e.g. frame.columns = ['_'.join(map(str, c)).strip('_') "
                "for c in frame.columns]."
            )
        for role, col in (("id", id), ("time", time), ("treatment", treatment),
                          ("outcome", outcome), ("availability", availability),
                          ("cluster", cluster)):  # fmt: skip
            if col is not None and not isinstance(col, str):
                raise DataError(
                    f"{role}= must be the name of a column (a string), got {col!r}; e.g. "
                    f"{role}={str(col)!r} if that is the column's name."
                )
        dup_cols = frame.columns[frame.columns.duplicated()]
        if len(dup_cols):
            raise DataError(
                f"The data frame has duplicated column name(s) {sorted(map(str, set(dup_cols)))}: "
                "rename or drop the copies so that each column name is unique.",
                column=str(dup_cols[0]),
            )
        if len(frame) == 0:
            raise DataError(
                "The data frame has no rows: MRTData needs one row per participant and decision "
                "point. Check the filter or the file that produced it."
            )
        self.roles = Roles(id, time, treatment, outcome, availability, cluster)
        self.missing = missing
        self._exclusions: list[pd.DataFrame] = []

        prob_specs = self._prob_specs(prob, levels)
        #: names of the randomization-probability columns (none for constant probabilities)
        self.prob_columns: list[str] = [s for s in prob_specs.values() if isinstance(s, str)]
        self._require_role_columns(frame, prob_specs)
        release_arrow_memory()  # what a Parquet read left cached, before the sorted copy
        df = self._sorted_frame(frame)
        key = [id, time]
        categorical = levels is not None
        level_values: list[object] = list(prob_specs) if categorical else [0, 1]
        avail = self._availability(df, key)
        a_idx = self._treatment_index(df, level_values, avail, key, categorical)
        probs = self._probabilities(df, prob_specs, level_values, avail, key, categorical)
        y = numeric_outcome(df, outcome, key)
        self._check_finite_outcome(df, y, key)
        # decision points counted within participant (0, 1, 2, ... in time order), before rows
        # are dropped: ``lag`` counts these, whatever the unit of the time column
        position = df.groupby(id, sort=False).cumcount().to_numpy(dtype=np.int64)
        df, avail, a_idx, probs, y, position = self._drop_missing_outcomes(
            df, avail, a_idx, probs, y, position, key
        )

        self.frame: pd.DataFrame = df
        self.level_values = level_values
        self.available = avail
        self.a_index = a_idx
        self.probs = probs
        self.y = y
        self.decision_index = position
        codes, uniques = pd.factorize(df[id], sort=False)
        self.id_codes = codes.astype(np.int64)
        self.id_values = pd.Index(uniques, name=id)
        self._check_clusters(df, key)
        self._warn_never_available()

    # ------------------------------------------------------------------ trials beyond memory
    @classmethod
    def from_parquet(
        cls,
        path: str | os.PathLike,
        *,
        id: str,
        time: str,
        treatment: str,
        outcome: str,
        prob: ProbSpec | None = None,
        levels: Mapping[object, ProbSpec] | None = None,
        availability: str | None = None,
        cluster: str | None = None,
        missing: Literal["error", "drop"] = "error",
        client: Any = None,
        shuffle_dir: str | os.PathLike | None = None,
    ) -> LargeMRTData:
        r"""A trial kept as partitioned Parquet, for :func:`hm.wcls <hte_mrt.wcls>`,
        :func:`hm.emee <hte_mrt.emee>`, :func:`hm.randomization_test
        <hte_mrt.randomization_test>` and :class:`hm.BayesMRT <hte_mrt.BayesMRT>` on Dask.

        The column roles are those of :class:`MRTData` (same arguments, same meaning). No row is
        loaded here: a first pass over the partitions (on the Dask cluster) validates each one
        as an in-memory ``MRTData`` of whole participants, so bad data raise the same named
        errors as in memory, with the partition's file in the message; it also fixes the
        levels of every text column, so that every partition encodes a categorical moderator
        alike. The estimators then sum per-participant statistics over the partitions
        (map-reduce): WCLS, EMEE and the collapsed Bayesian model give the in-memory numbers
        up to summation order.

        Parameters
        ----------
        path : str or path
            A ``.parquet`` file or a folder of them (searched recursively, in sorted order).
            Each file is one partition and should hold whole participants; otherwise the
            trial is shuffled by participant once (a :class:`~hte_mrt.errors.PartitionWarning`
            says so).
        id, time, treatment, outcome, prob, levels, availability, cluster, missing
            As for :class:`MRTData`.
        client : distributed.Client, "sync" or None
            Where partitions are processed: the given client; ``"sync"`` runs them here, one
            after the other; ``None`` (default) uses the running client, else starts a
            ``distributed.LocalCluster`` (one single-threaded worker per core, at most 4).
        shuffle_dir : path, optional
            Where the shuffled partitions go (default: a temporary folder).

        Returns
        -------
        LargeMRTData
            Trial-wide attributes as ``MRTData`` (``n_participants``, ``exclusions``,
            ``level_values`` ...); ``to_memory()`` loads it all.

        Raises
        ------
        MissingColumnError, MissingValueError, ProbabilityError, TreatmentError, DataError
            As in memory, the message starting with the partition (``partition file ...``).

        Examples
        --------
        >>> import tempfile
        >>> import hte_mrt as hm
        >>> frame = hm.MRTSimulation(n_participants=40, n_decisions=20).simulate(seed=1)
        >>> folder = tempfile.mkdtemp()
        >>> for k in range(4):  # four files of ten whole participants each
        ...     part = frame[frame["id"] // 10 == k]
        ...     part.to_parquet(f"{folder}/part-{k}.parquet")
        >>> big = hm.MRTData.from_parquet(folder, id="id", time="t", treatment="A",
        ...                               outcome="y", prob=0.5, availability="avail",
        ...                               client="sync")
        >>> big
        <LargeMRTData: 40 participants, 800 rows, 4 partitions, binary treatment 'A', outcome 'y'>
        >>> fit = hm.wcls(big, "~ S", "~ S")
        >>> small = hm.wcls(big.to_memory(), "~ S", "~ S")
        >>> bool(abs(fit.params - small.params).max() < 1e-12)
        True
        """
        from hte_mrt.data.large import open_trial

        return open_trial(
            path, kind="parquet", id=id, time=time, treatment=treatment, outcome=outcome,
            prob=prob, levels=levels, availability=availability, cluster=cluster,
            missing=missing, client=client, shuffle_dir=shuffle_dir,
        )  # fmt: skip

    @classmethod
    def from_dask(
        cls,
        ddf: Any,
        *,
        id: str,
        time: str,
        treatment: str,
        outcome: str,
        prob: ProbSpec | None = None,
        levels: Mapping[object, ProbSpec] | None = None,
        availability: str | None = None,
        cluster: str | None = None,
        missing: Literal["error", "drop"] = "error",
        client: Any = None,
        shuffle_dir: str | os.PathLike | None = None,
    ) -> LargeMRTData:
        r"""A trial held as a ``dask.dataframe.DataFrame``, for the estimators on Dask.

        As :meth:`from_parquet`, with the DataFrame's partitions as the partitions (errors
        name ``partition k of the dask DataFrame``). A DataFrame whose partitions split
        participants is shuffled by participant once, into Parquet files in ``shuffle_dir``
        (default: a temporary folder).

        Parameters
        ----------
        ddf : dask.dataframe.DataFrame
            Long data, one row per participant and decision point.
        id, time, treatment, outcome, prob, levels, availability, cluster, missing
            As for :class:`MRTData`.
        client, shuffle_dir
            As for :meth:`from_parquet`.

        Returns
        -------
        LargeMRTData

        Examples
        --------
        >>> import dask.dataframe as dd
        >>> import hte_mrt as hm
        >>> frame = hm.MRTSimulation(n_participants=30, n_decisions=20).simulate(seed=2)
        >>> ddf = dd.from_pandas(frame, npartitions=3, sort=False)  # rows in participant order
        >>> big = hm.MRTData.from_dask(ddf, id="id", time="t", treatment="A", outcome="y",
        ...                            prob=0.5, availability="avail", client="sync")
        >>> big.n_participants, big.n_partitions
        (30, 3)
        """
        from hte_mrt.data.large import open_trial

        return open_trial(
            ddf, kind="dask", id=id, time=time, treatment=treatment, outcome=outcome,
            prob=prob, levels=levels, availability=availability, cluster=cluster,
            missing=missing, client=client, shuffle_dir=shuffle_dir,
        )  # fmt: skip

    # ------------------------------------------------------------------ validation steps
    @staticmethod
    def _prob_specs(
        prob: ProbSpec | None, levels: Mapping[object, ProbSpec] | None
    ) -> dict[object, ProbSpec]:
        """``{level: probability spec}``: ``{1: prob}`` for a binary treatment, else ``levels``."""
        if levels is None and prob is None:
            raise DataError(
                "Give the randomization probability: prob=<constant or column> for a binary "
                "treatment, or levels={level: probability, ...} for a categorical one."
            )
        if levels is not None and prob is not None:
            raise DataError(
                "Give either prob= (binary treatment) or levels= (categorical), not both."
            )
        if levels is None:
            if isinstance(prob, bool | np.bool_) or not isinstance(
                prob, str | int | float | np.number
            ):
                raise ProbabilityError(
                    f"prob= must be a number in (0, 1) such as 0.6, or the name of a probability "
                    f"column; got {prob!r}."
                )
            return {1: prob}  # type: ignore[dict-item]
        if not isinstance(levels, Mapping):
            raise DataError(
                f"levels= must be a dict {{level: probability}} with the reference level first, "
                f"e.g. {{'none': 0.4, 'walk': 0.3, 'sed': 0.3}}; got {type(levels).__name__}."
            )
        specs = dict(levels)
        if len(specs) < 2:
            raise DataError("levels= needs at least two treatment levels (reference first).")
        return specs

    def _require_role_columns(self, frame: pd.DataFrame, prob_specs: dict) -> None:
        """Every role column, and every probability column, is in the frame."""
        r = self.roles
        role_cols = {"id": r.id, "time": r.time, "treatment": r.treatment, "outcome": r.outcome}
        if r.availability is not None:
            role_cols["availability"] = r.availability
        if r.cluster is not None:
            role_cols["cluster"] = r.cluster
        prob_cols = {
            spec: ("prob" if lev == 1 and len(prob_specs) == 1 else f"levels[{lev!r}]")
            for lev, spec in prob_specs.items()
            if isinstance(spec, str)
        }
        seen: dict[str, str] = {}
        for role, col in [*role_cols.items(), *((r, c) for c, r in prob_cols.items())]:
            if col in seen:
                raise DataError(
                    f"Column '{col}' is given for two roles, {seen[col]}= and {role}=: "
                    "each role needs its own column. Pass the right column name to one of them.",
                    column=col,
                )
            seen[col] = role
        for role, col in role_cols.items():
            self._require(frame, col, role)
        for lev, spec in prob_specs.items():
            if isinstance(spec, str):
                if spec not in frame.columns:
                    try:
                        as_number = float(spec)
                    except ValueError:
                        as_number = None
                    if as_number is not None:
                        arg = "prob" if lev == 1 and len(prob_specs) == 1 else f"levels[{lev!r}]"
                        raise MissingColumnError(
                            f"{arg}={spec!r} is a string, so it is read as a column name, and "
                            f"there is no column '{spec}' in the data. For a constant "
                            f"probability pass the number: {arg}={as_number:g}.",
                            column=spec,
                        )
                self._require(frame, spec, f"randomization probability of level {lev!r}")

    def _sorted_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy sorted by (id, time), with ``_row`` the input position; ids and decision points
        complete, numeric and unique."""
        id, time = self.roles.id, self.roles.time
        df = frame.copy()
        df["_row"] = np.arange(len(frame))  # position in the user's frame, for reports
        for role, col in (("id", id), ("time", time)):
            bad = df[col].isna().to_numpy()
            if bad.any():
                raise MissingValueError(
                    f"Column '{col}' ({role}) has {bad.sum()} missing value(s), first at row(s) "
                    f"{list(df.loc[bad, '_row'].head(5))} of the input. Every row needs a "
                    f"{role}: fill or remove those rows.",
                    column=col,
                    n_rows=int(bad.sum()),
                    examples=list(df.loc[bad, "_row"].head(5)),
                )
        if not pd.api.types.is_numeric_dtype(df[time]) or pd.api.types.is_bool_dtype(df[time]):
            raise DataError(
                f"Column '{time}' (decision point) must be numeric (an index or a time), got "
                f"dtype {df[time].dtype}. Convert it (pd.to_numeric), or give the decision index "
                "column as time=.",
                column=time,
            )
        bad = ~np.isfinite(df[time].to_numpy(dtype=float))
        if bad.any():
            ex = first_ids(df, bad, [id, time])
            raise DataError(
                f"Column '{time}' (decision point) has {bad.sum()} infinite value(s), e.g. "
                f"{fmt_ids(ex, [id, time])}. Every decision point needs a finite time: fix or "
                "remove those rows.",
                column=time,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        df = df.sort_values([id, time], kind="stable").reset_index(drop=True)
        dup = df.duplicated([id, time], keep=False).to_numpy()
        if dup.any():
            ex = first_ids(df, dup, [id, time])
            raise DuplicateRowError(
                f"Columns '{id}', '{time}': {dup.sum()} rows share a (participant, decision point) "
                f"with another row, e.g. {fmt_ids(ex, [id, time])}. Keep one row per decision "
                "point (deduplicate, or fix the decision index).",
                column=time,
                n_rows=int(dup.sum()),
                examples=ex,
            )
        return df

    def _availability(self, df: pd.DataFrame, key: list[str]) -> np.ndarray:
        """Availability I_it as a boolean array (all True without an availability column)."""
        availability = self.roles.availability
        if availability is None:
            return np.ones(len(df), dtype=bool)
        a = df[availability]
        bad = a.isna().to_numpy()
        if bad.any():
            ex = first_ids(df, bad, key)
            raise MissingValueError(
                f"Column '{availability}' (availability) has {bad.sum()} missing value(s), "
                f"e.g. {fmt_ids(ex, key)}. Record availability as 0/1 for every decision "
                "point.",
                column=availability,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        av = pd.to_numeric(a, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isin(av, (0.0, 1.0))
        if bad.any():
            ex = first_ids(df, bad, key)
            raise DataError(
                f"Column '{availability}' (availability) must be 0/1; {bad.sum()} rows are "
                "not, "
                f"e.g. {fmt_ids(ex, key)}. Recode it as 0/1 (1 = available, randomized).",
                column=availability,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        return av == 1.0

    def _treatment_index(
        self,
        df: pd.DataFrame,
        level_values: list[object],
        avail: np.ndarray,
        key: list[str],
        categorical: bool,
    ) -> np.ndarray:
        """The treatment as level positions (0 = reference); unavailable rows never treated."""
        treatment, availability = self.roles.treatment, self.roles.availability
        a_raw = df[treatment]
        nan_a = a_raw.isna().to_numpy()
        bad = nan_a & avail
        if bad.any():
            ex = first_ids(df, bad, key)
            raise MissingValueError(
                f"Column '{treatment}' (treatment) is missing on {bad.sum()} available decision "
                f"point(s), e.g. {fmt_ids(ex, key)}. Record the randomized treatment, or mark "
                "those decision points unavailable.",
                column=treatment,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        a_idx = np.full(len(df), -1, dtype=np.int64)
        for k, lev in enumerate(level_values):
            if not categorical:
                match = pd.to_numeric(a_raw, errors="coerce").to_numpy(dtype=float) == float(k)
            else:
                match = (a_raw == lev).to_numpy(dtype=bool, na_value=False)
            a_idx[match] = k
        a_idx[nan_a & ~avail] = 0  # unavailable and unrecorded: not randomized, no treatment
        bad = a_idx < 0
        if bad.any():
            ex = first_ids(df, bad, [*key, treatment])
            allowed = "0/1" if not categorical else ", ".join(map(repr, level_values))
            raise TreatmentError(
                f"Column '{treatment}' (treatment) has {bad.sum()} value(s) not among the levels "
                f"({allowed}), e.g. {fmt_ids(ex, [*key, treatment])}. Recode, or list every level "
                "in levels=.",
                column=treatment,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        bad = (a_idx != 0) & ~avail
        if bad.any():
            ex = first_ids(df, bad, key)
            raise TreatmentError(
                f"Column '{treatment}' (treatment): {bad.sum()} decision point(s) received "
                f"treatment level {level_values[1]!r}/... while unavailable "
                f"('{availability}' = 0), e.g. {fmt_ids(ex, key)}. Unavailable decision points are "
                "not randomized: fix the availability or treatment record, or exclude those rows "
                "before analysis (and report them).",
                column=treatment,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        return a_idx

    def _probabilities(
        self,
        df: pd.DataFrame,
        prob_specs: dict[object, ProbSpec],
        level_values: list[object],
        avail: np.ndarray,
        key: list[str],
        categorical: bool,
    ) -> np.ndarray:
        """P(A = level | H), one column per level; the levels' probabilities sum to 1."""
        probs = np.empty((len(df), len(level_values)))
        if not categorical:
            p1 = self._prob_column(df, prob_specs[1], 1, avail, key)
            probs[:, 1] = p1
            probs[:, 0] = 1.0 - p1
            return probs
        for k, lev in enumerate(level_values):
            probs[:, k] = self._prob_column(df, prob_specs[lev], lev, avail, key)
        total = probs[avail].sum(axis=1)
        bad_sum = np.abs(total - 1.0) > PROB_TOL
        if bad_sum.any():
            bad = np.zeros(len(df), bool)
            bad[np.flatnonzero(avail)[bad_sum]] = True
            ex = first_ids(df, bad, key)
            cols = [s for s in prob_specs.values() if isinstance(s, str)]
            raise ProbabilityError(
                "Randomization probabilities of the levels "
                f"({', '.join(map(repr, cols)) or 'constants'}) "
                f"do not sum to 1 on {bad_sum.sum()} available row(s), e.g. "
                f"{fmt_ids(ex, key)} (sum {total[bad_sum][0]:.4g}). Give one probability per "
                "level, the reference level included.",
                column=cols[0] if cols else None,
                n_rows=int(bad_sum.sum()),
                examples=ex,
            )
        return probs

    def _drop_missing_outcomes(
        self,
        df: pd.DataFrame,
        avail: np.ndarray,
        a_idx: np.ndarray,
        probs: np.ndarray,
        y: np.ndarray,
        position: np.ndarray,
        key: list[str],
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A missing outcome on an available row raises (``missing="error"``) or removes the
        row and records it in :attr:`exclusions` (``missing="drop"``)."""
        outcome = self.roles.outcome
        bad = np.isnan(y) & avail
        if not bad.any():
            return df, avail, a_idx, probs, y, position
        ex = first_ids(df, bad, key)
        if self.missing == "error":
            raise MissingValueError(
                f"Column '{outcome}' (outcome) is missing on {bad.sum()} available decision "
                f"point(s), e.g. {fmt_ids(ex, key)}. Impute it, or pass missing='drop' to "
                "exclude those rows (they are then listed in .exclusions).",
                column=outcome,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        self._exclude(df, bad, f"outcome '{outcome}' missing on an available decision point")
        keep = ~bad
        if not (keep & avail).any():
            raise MissingValueError(
                f"Column '{outcome}' (outcome) is missing on every available decision point, so "
                "missing='drop' would leave nothing to analyse. Check that outcome= names the "
                "right column.",
                column=outcome,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        df = df[keep].reset_index(drop=True)
        return df, avail[keep], a_idx[keep], probs[keep], y[keep], position[keep]

    def _check_finite_outcome(self, df: pd.DataFrame, y: np.ndarray, key: list[str]) -> None:
        """An infinite outcome (e.g. log(0) = -inf) makes every estimate NaN: refuse it."""
        outcome = self.roles.outcome
        bad = np.isinf(y)
        if bad.any():
            ex = first_ids(df, bad, [*key, outcome])
            raise DataError(
                f"Column '{outcome}' (outcome) has {bad.sum()} infinite value(s), e.g. "
                f"{fmt_ids(ex, [*key, outcome])}. An infinite outcome (log(0) = -inf, a division "
                "by 0) makes every estimate NaN: transform without infinities (e.g. "
                "log(x + 0.5)), or set those values to NaN and pass missing='drop'.",
                column=outcome,
                n_rows=int(bad.sum()),
                examples=ex,
            )

    def _warn_never_available(self) -> None:
        """Participants without a single available decision point: named, with ids."""
        avail_any = np.zeros(self.n_participants, dtype=bool)
        np.logical_or.at(avail_any, self.id_codes, self.available)
        if avail_any.all():
            return
        never = list(self.id_values[~avail_any])
        col = self.roles.availability
        n = len(never)
        msg = (
            f"Column '{col}' (availability): {n} of {self.n_participants} participant(s) are "
            f"never available, e.g. {self.roles.id}={never[:5]}. They contribute no decision "
            "point to any excursion effect: WCLS and the Bayesian model leave them out of n, "
            "EMEE (as MRTAnalysis) still counts them in n and its degrees of freedom. Check the "
            "availability record, or remove them before analysis and report it."
        )
        if avail_any.any():
            warnings.warn(msg, DegenerateDataWarning, stacklevel=3)
        else:
            warnings.warn(
                f"Column '{col}' (availability) is 0 on every row: no decision point was "
                "randomized, so no excursion effect can be estimated. Check that "
                "availability= names the right column and how it is coded (1 = available).",
                DegenerateDataWarning,
                stacklevel=3,
            )

    def _check_clusters(self, df: pd.DataFrame, key: list[str]) -> None:
        """The cluster column is complete and constant within participant."""
        cluster, id = self.roles.cluster, self.roles.id
        if cluster is None:
            return
        if df[cluster].isna().any():
            bad = df[cluster].isna().to_numpy()
            ex = first_ids(df, bad, key)
            raise MissingValueError(
                f"Column '{cluster}' (cluster) has {bad.sum()} missing value(s), e.g. "
                f"{fmt_ids(ex, key)}. Fill it (one cluster per participant) or remove those "
                "rows.",
                column=cluster,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        n_cl_per_id = df.groupby(id)[cluster].nunique()
        if (n_cl_per_id > 1).any():
            ex = list(n_cl_per_id[n_cl_per_id > 1].index[:5])
            raise DataError(
                f"Column '{cluster}' (cluster) varies within participant for {len(ex)}+ "
                f"participant(s), e.g. {id}={ex}. Each participant belongs to one cluster.",
                column=cluster,
                examples=ex,
            )

    # ------------------------------------------------------------------ helpers
    _require = staticmethod(require_column)

    @staticmethod
    def _prob_column(
        df: pd.DataFrame, spec: ProbSpec, level: object, avail: np.ndarray, key: list[str]
    ) -> np.ndarray:
        if isinstance(spec, str):
            p = pd.to_numeric(df[spec], errors="coerce").to_numpy(dtype=float)
            col = spec
            bad = np.isnan(p) & df[spec].notna().to_numpy() & avail
            if bad.any():
                ex = first_ids(df, bad, [*key, spec])
                raise ProbabilityError(
                    f"Randomization probability (column '{spec}', level {level!r}) must be "
                    f"numeric; {bad.sum()} available row(s) are not, e.g. "
                    f"{fmt_ids(ex, [*key, spec])}. Convert it (pd.to_numeric) or give a constant.",
                    column=spec,
                    n_rows=int(bad.sum()),
                    examples=ex,
                )
        else:
            try:
                p = np.full(len(df), float(spec))
            except (TypeError, ValueError):
                raise ProbabilityError(
                    f"Randomization probability of level {level!r} must be a number in (0, 1) or "
                    f"a column name, got {spec!r}."
                ) from None
            col = None
        arg = "prob" if level == 1 else f"levels[{level!r}]"
        where = f"column '{col}'" if col else f"{arg}={spec!r}"
        bad = np.isnan(p) & avail
        if bad.any():
            ex = first_ids(df, bad, key)
            raise MissingValueError(
                f"Randomization probability ({where}, level {level!r}) is missing on {bad.sum()} "
                f"available row(s), e.g. {fmt_ids(ex, key)}. Every randomized decision needs its "
                "probability.",
                column=col,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        bad = avail & ((p <= 0) | (p >= 1))
        if bad.any():
            ex = first_ids(df, bad, key)
            raise ProbabilityError(
                f"Randomization probability ({where}, level {level!r}) must lie strictly in (0, 1) "
                f"on available rows; {bad.sum()} row(s) do not, e.g. {fmt_ids(ex, key)} "
                f"(value {p[bad][0]:g}). A probability of 0 or 1 means the decision was not "
                "randomized: mark it unavailable.",
                column=col,
                n_rows=int(bad.sum()),
                examples=ex,
            )
        return np.where(avail, p, np.nan_to_num(p, nan=0.5))

    def _exclude(self, df: pd.DataFrame, mask: np.ndarray, reason: str) -> None:
        self._exclusions.append(excluded_rows(df, mask, [self.roles.id, self.roles.time], reason))

    # ------------------------------------------------------------------ public API
    @property
    def exclusions(self) -> pd.DataFrame:
        """Every input row removed during validation, with the reason (never silent)."""
        return exclusions_table(self._exclusions, [self.roles.id, self.roles.time])

    @property
    def n_participants(self) -> int:
        return len(self.id_values)

    @property
    def is_binary(self) -> bool:
        """True for a 0/1 treatment given with ``prob=``."""
        return self.level_values == [0, 1]

    @property
    def treatment_labels(self) -> list[str]:
        """Level names; for binary treatment ``["0", "1"]``."""
        return [str(v) for v in self.level_values]

    def column(self, name: str) -> pd.Series:
        """A column of the (sorted, validated) frame."""
        if name not in self.frame.columns:
            self._require(self.frame, name, "requested column")
        return self.frame[name]

    def describe(self) -> TrialSummary:
        """Trial summary: participants, decision points, availability, randomization check."""
        r = self.roles
        df = self.frame
        per = df.groupby(r.id, sort=False).size()
        rows = []
        av = self.available
        for k, lev in enumerate(self.level_values):
            if self.is_binary and k == 0:
                continue
            obs = float(np.mean(self.a_index[av] == k)) if av.any() else np.nan
            stated = float(np.mean(self.probs[av, k])) if av.any() else np.nan
            n = int(av.sum())
            rows.append(
                {
                    "level": str(lev),
                    "n_available": n,
                    "observed": round(obs, 4),
                    "stated": round(stated, 4),
                    "difference_se": round((obs - stated) / np.sqrt(stated * (1 - stated) / n), 2)
                    if n
                    else np.nan,
                }
            )
        return TrialSummary(
            n_participants=self.n_participants,
            n_clusters=int(df[r.cluster].nunique()) if r.cluster else None,
            n_rows=len(df),
            decision_points=(float(df[r.time].min()), float(df[r.time].max())),
            decisions_per_participant=per,
            availability_rate=float(av.mean()),
            randomization=pd.DataFrame(rows),
            exclusions=self.exclusions,
        )

    def __repr__(self) -> str:
        r = self.roles
        kind = "binary" if self.is_binary else f"{len(self.level_values)}-level"
        return (
            f"<MRTData: {self.n_participants} participants, {len(self.frame)} rows, {kind} "
            f"treatment '{r.treatment}', outcome '{r.outcome}'>"
        )
