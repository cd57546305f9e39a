"""Trials larger than memory: partitioned Parquet (or a ``dask.dataframe``) with MRT column roles.

:class:`LargeMRTData` holds no rows. It holds the partitions (Parquet files or the partitions of
a dask DataFrame), the column roles and what a first pass over the partitions found: every
partition validated as an in-memory :class:`~hte_mrt.data.schema.MRTData` (the same named errors,
with the partition's file in the message), the exclusions, the participants, and the levels of
every text / categorical column, fixed so that every partition encodes a moderator alike.

Partitions must hold whole participants (every estimator sums per-participant pieces). Data
partitioned by participant are used as they are; otherwise they are shuffled by participant
once, into Parquet files in a temporary folder (a :class:`~hte_mrt.errors.PartitionWarning`
says so).

The map-reduce itself (a function applied to every partition, as an in-memory ``MRTData`` of
whole participants, on a ``distributed`` cluster) is :meth:`LargeMRTData.map`; the estimators
(:mod:`hte_mrt.estimators.large`) reduce what it returns.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from hte_mrt.data.checks import exclusions_table
from hte_mrt.data.schema import MRTData, ProbSpec, Roles, TrialSummary
from hte_mrt.errors import (
    DataError,
    DegenerateDataWarning,
    HteMrtError,
    MissingColumnError,
    PartitionWarning,
)


@dataclass(frozen=True)
class _Spec:
    """What a partition needs to become an ``MRTData`` (small, sent to every task)."""

    roles: Roles
    prob: ProbSpec | None
    levels: Mapping[object, ProbSpec] | None
    missing: str
    categories: Mapping[str, list] = field(default_factory=dict)

    def mrt_data(self, frame: pd.DataFrame) -> MRTData:
        """``frame`` as an :class:`MRTData` with these roles and probabilities."""
        r = self.roles
        return MRTData(
            frame,
            id=r.id,
            time=r.time,
            treatment=r.treatment,
            outcome=r.outcome,
            prob=self.prob,
            levels=self.levels,
            availability=r.availability,
            cluster=r.cluster,
            missing=self.missing,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Partition:
    """One partition: its source (a Parquet file, or a dask partition), a name for messages and
    the number of rows before it (so ``exclusions.row`` counts rows over all partitions)."""

    source: Any
    name: str
    row_offset: int = 0


def _frame(source: Any) -> pd.DataFrame:
    if isinstance(source, str | os.PathLike):
        return pd.read_parquet(source)
    if isinstance(source, pd.DataFrame):
        return source
    return source.compute(scheduler="sync")


def renamed(error: HteMrtError, name: str) -> HteMrtError:
    """The same error (class, column, ids) with the partition named in its message."""
    new = copy.copy(error)
    msg = str(error.args[0]) if error.args else str(error)
    new.args = (f"{name}: {msg}", *error.args[1:])
    return new


def partition_data(
    frame: pd.DataFrame, part: Partition, spec: _Spec, categories: Mapping[str, list] | None = None
) -> MRTData:
    """A partition as validated in-memory :class:`MRTData` (levels fixed, never-available
    participants not warned about here: the trial-wide check does that)."""
    cats = spec.categories if categories is None else categories
    if cats:
        frame = frame.copy()
        for col, levels in cats.items():
            if col in frame.columns:
                frame[col] = pd.Categorical(frame[col], categories=levels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)
            data = spec.mrt_data(frame)
    except HteMrtError as e:
        raise renamed(e, part.name) from None
    if part.row_offset:
        data.frame["_row"] += part.row_offset
        for ex in data._exclusions:
            ex["row"] += part.row_offset
    return data


def run_on_partition(
    part: Partition,
    spec: _Spec,
    fn: Callable[..., Any],
    args: tuple,
    categories: Mapping[str, list] | None,
    frame: pd.DataFrame | None = None,
) -> Any:
    """``fn(MRTData of the partition, *args)``; errors name the partition. An empty partition
    (common after filtering a dask DataFrame) gives None: the first pass drops it."""
    frame = _frame(part.source) if frame is None else frame
    if len(frame) == 0:
        return None
    data = partition_data(frame, part, spec, categories)
    try:
        return fn(data, *args)
    except HteMrtError as e:
        raise renamed(e, part.name) from None


def used_scan(part: MRTData, used: np.ndarray, lost: Any, cat_cols: list[str]) -> dict:
    """What the trial-wide checks of an analysis need from a partition's analysed rows
    ``used`` (available, with an outcome at the lag): counts, treatment levels seen,
    probability ranges, the first row's probabilities, participants without analysed rows,
    the text values present."""
    df = part.frame
    out: dict[str, Any] = {
        "n_avail": int(part.available.sum()),
        "n_used": int(used.sum()),
        "max_decision": int(part.decision_index.max()),
        "lost": lost,
    }
    if not used.any():
        out["without"] = list(part.id_values)
        return out
    probs = part.probs[used]
    out["seen"] = np.unique(part.a_index[used])
    out["p_min"], out["p_max"] = probs.min(axis=0), probs.max(axis=0)
    first = int(np.flatnonzero(used)[0])
    out["first"] = (df[part.roles.id].iloc[first], part.probs[first])
    has = np.zeros(part.n_participants, dtype=bool)
    has[part.id_codes[used]] = True
    out["without"] = list(part.id_values[~has])
    out["n_groups"] = int(has.sum())
    out["cats"] = {c: set(pd.unique(df.loc[used, c].dropna())) for c in cat_cols if c in df}
    return out


def _scan(data: MRTData, spec: _Spec) -> dict:
    """First pass: what the trial-wide checks and the level encoding need from a partition."""
    r = spec.roles
    df = data.frame
    roles = {r.id, r.time, r.treatment, r.outcome, r.availability, r.cluster, "_row"}
    roles |= set(data.prob_columns)
    cats = {}
    for col in df.columns:
        if col in roles:
            continue
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats[col] = list(s.cat.categories)
        elif pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            cats[col] = list(pd.unique(s.dropna()))
    avail_any = np.zeros(data.n_participants, dtype=bool)
    np.logical_or.at(avail_any, data.id_codes, data.available)
    av = data.available
    return {
        "per": df.groupby(r.id, sort=False).size(),
        "n_available": int(av.sum()),
        "a_counts": np.bincount(data.a_index[av], minlength=len(data.level_values)),
        "p_sums": data.probs[av].sum(axis=0),
        "ids": data.id_values.to_numpy(),
        "avail_any": avail_any,
        "n_rows": len(df),
        "exclusions": data.exclusions,
        "categories": cats,
        "max_decision": int(data.decision_index.max()) if len(df) else -1,
        "clusters": pd.unique(df[r.cluster]) if r.cluster else None,
        "time_range": (float(df[r.time].min()), float(df[r.time].max())),
        "level_values": data.level_values,
        "prob_columns": data.prob_columns,
        "columns": [c for c in df.columns if c != "_row"],
        # the analysed rows of a lag-0 analysis are the available ones: scanned now, so that
        # an estimator at lag 0 needs no pass of its own for the trial-wide checks
        "lag0": used_scan(data, data.available, None, list(cats)),
    }


def _sorted_levels(values: list) -> list:
    try:
        return sorted(set(values))
    except TypeError:  # mixed types: order of first appearance
        return list(dict.fromkeys(values))


# ---------------------------------------------------------------------------- the scheduler
_LOCAL_CLIENT: Any = None


def default_client() -> Any:
    """The running ``distributed`` client, else a ``LocalCluster`` started once per process
    (one single-threaded worker per core, at most 4)."""
    global _LOCAL_CLIENT
    from distributed import Client, LocalCluster, get_client

    try:
        return get_client()
    except ValueError:
        pass
    if _LOCAL_CLIENT is None or _LOCAL_CLIENT.status in ("closed", "closing"):
        n = max(1, min(4, os.cpu_count() or 1))
        _LOCAL_CLIENT = Client(LocalCluster(n_workers=n, threads_per_worker=1))
    return _LOCAL_CLIENT


class Runner:
    """Maps functions over partitions: on a ``distributed`` client, or here in order ("sync").

    ``map`` returns handles (futures on the cluster: large per-partition results stay on the
    workers), ``gather`` brings them here, ``reduce`` maps and sums small results."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def sync(self) -> bool:
        return self.client == "sync"

    def map(self, fn: Callable[..., Any], items: Sequence[Any], *args: Any) -> list:
        if self.sync:
            return [fn(item, *args) for item in items]
        import dask

        client = default_client() if self.client is None else self.client
        tasks = [dask.delayed(fn, pure=False)(item, *args) for item in items]
        return client.compute(tasks)

    def gather(self, handles: list) -> list:
        if self.sync:
            return list(handles)
        client = default_client() if self.client is None else self.client
        try:
            return client.gather(handles)
        except BaseException:
            client.cancel(handles)  # the other partitions' tasks: no longer needed
            raise

    def release(self, handles: list) -> None:
        if not self.sync:
            for h in handles:
                h.release()


def _call_partition(item: Any, spec: _Spec, fn: Callable, args: tuple, cats: Any) -> Any:
    part, frame = item if isinstance(item, tuple) else (item, None)
    if frame is not None and not isinstance(frame, pd.DataFrame):
        frame = _frame(frame)
    return run_on_partition(part, spec, fn, args, cats, frame)


# ---------------------------------------------------------------------------- the data class
class LargeMRTData:
    """A micro-randomized trial kept in partitions: built by :meth:`MRTData.from_parquet
    <hte_mrt.MRTData.from_parquet>` or :meth:`MRTData.from_dask <hte_mrt.MRTData.from_dask>`.

    Attributes mirror :class:`~hte_mrt.data.schema.MRTData` where they are trial-wide:
    ``roles``, ``level_values``, ``is_binary``, ``treatment_labels``, ``prob_columns``,
    ``n_participants``, ``n_rows``, ``id_values``, ``exclusions``, ``categories`` (the fixed
    levels of every text column), ``partitions``.
    """

    def __init__(
        self,
        partitions: list[Partition],
        spec: _Spec,
        *,
        client: Any = None,
        ddf_parts: list | None = None,
        shuffled_from: str | None = None,
    ) -> None:
        self.partitions = partitions
        self._spec = spec
        self.roles = spec.roles
        self.missing = spec.missing
        self.client = client
        self._runner = Runner(client)
        self._ddf_parts = ddf_parts
        self.shuffled_from = shuffled_from
        self._scans: dict = {}
        self._first_pass()

    # ------------------------------------------------------------------ passes
    def _items(self) -> list:
        if self._ddf_parts is None:
            return list(self.partitions)
        return list(zip(self.partitions, self._ddf_parts, strict=True))

    def map(
        self,
        fn: Callable[..., Any],
        *args: Any,
        categories: Mapping[str, list] | None = None,
        keep: bool = False,
    ) -> list:
        """``fn(part, *args)`` for every partition ``part`` (an in-memory ``MRTData`` of whole
        participants, its text columns encoded with the trial's levels), in partition order.

        On a cluster the functions run on the workers; with ``keep=True`` the results stay
        there (handles for :meth:`map_handles`), else they are gathered here."""
        cats = self._spec.categories if categories is None else categories
        handles = self._runner.map(_call_partition, self._items(), self._spec, fn, args, cats)
        if keep:
            return handles
        out = self._runner.gather(handles)
        return out

    def map_handles(
        self, fn: Callable[..., Any], handles: list, *args: Any, keep: bool = False
    ) -> list:
        """``fn(result, *args)`` for every kept per-partition result (an item may also be a
        tuple of a kept result and per-partition arguments), gathered here unless ``keep``."""
        out = self._runner.map(fn, handles, *args)
        return out if keep else self._runner.gather(out)

    def release(self, handles: list) -> None:
        """Free kept per-partition results on the cluster."""
        self._runner.release(handles)

    def _first_pass(self) -> None:
        spec = self._spec
        scans = self.map(_scan, spec, categories={})
        keep = [k for k, sc in enumerate(scans) if sc is not None]
        if not keep:
            raise DataError(
                "Every partition is empty: the trial has no rows. Check the path (or the filter "
                "that produced the dask DataFrame)."
            )
        if len(keep) < len(scans):  # empty partitions are left out of every later pass
            self.partitions = [self.partitions[k] for k in keep]
            if self._ddf_parts is not None:
                self._ddf_parts = [self._ddf_parts[k] for k in keep]
            scans = [scans[k] for k in keep]
        r = spec.roles
        ids = [s["ids"] for s in scans]
        all_ids = np.concatenate(ids) if ids else np.array([])
        if len(pd.unique(all_ids)) < len(all_ids):
            raise _SplitParticipants()
        self._scan_parts = scans
        self.n_rows = int(sum(s["n_rows"] for s in scans))
        self.level_values = scans[0]["level_values"]
        self.prob_columns = scans[0]["prob_columns"]
        self.columns = scans[0]["columns"]
        order = np.argsort(all_ids, kind="stable")
        self.id_values = pd.Index(all_ids[order], name=r.id)
        avail_any = np.concatenate([s["avail_any"] for s in scans])[order]
        self.n_decisions = 1 + max(s["max_decision"] for s in scans)
        self.time_range = (
            min(s["time_range"][0] for s in scans),
            max(s["time_range"][1] for s in scans),
        )
        self._exclusions = [s["exclusions"] for s in scans if len(s["exclusions"])]
        cats: dict[str, list] = {}
        for s in scans:
            for col, vals in s["categories"].items():
                cats.setdefault(col, []).extend(vals)
        self.categories = {c: _sorted_levels(v) for c, v in cats.items()}
        self._spec = spec = _Spec(spec.roles, spec.prob, spec.levels, spec.missing, self.categories)
        self.clusters = (
            _sorted_levels([c for s in scans for c in s["clusters"]]) if r.cluster else None
        )
        self._lag_scans = {0: [s.pop("lag0") for s in scans]}
        per = pd.concat([s.pop("per") for s in scans])
        self._per = per.sort_index(kind="stable")
        self._randomization = (
            sum(s.pop("n_available") for s in scans),
            sum(s.pop("a_counts") for s in scans),
            sum(s.pop("p_sums") for s in scans),
        )
        for s in scans:
            del s["exclusions"]
        self._warn_never_available(avail_any)

    def _warn_never_available(self, avail_any: np.ndarray) -> None:
        if avail_any.all():
            return
        never = list(self.id_values[~avail_any])
        col = self.roles.availability
        if avail_any.any():
            warnings.warn(
                f"Column '{col}' (availability): {len(never)} of {self.n_participants} "
                f"participant(s) are never available, e.g. {self.roles.id}={never[:5]}. They "
                "contribute no decision point to any excursion effect: WCLS and the Bayesian "
                "model leave them out of n, EMEE (as MRTAnalysis) still counts them in n and its "
                "degrees of freedom. Check the availability record, or remove them before "
                "analysis and report it.",
                DegenerateDataWarning,
                stacklevel=4,
            )
        else:
            warnings.warn(
                f"Column '{col}' (availability) is 0 on every row: no decision point was "
                "randomized, so no excursion effect can be estimated. Check that "
                "availability= names the right column and how it is coded (1 = available).",
                DegenerateDataWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------------ public API
    @property
    def n_participants(self) -> int:
        return len(self.id_values)

    @property
    def n_partitions(self) -> int:
        return len(self.partitions)

    @property
    def is_binary(self) -> bool:
        return self.level_values == [0, 1]

    @property
    def treatment_labels(self) -> list[str]:
        return [str(v) for v in self.level_values]

    @property
    def exclusions(self) -> pd.DataFrame:
        """Every input row removed during validation, with the reason; ``row`` counts rows
        over the partitions in order."""
        return exclusions_table(self._exclusions, [self.roles.id, self.roles.time])

    def describe(self) -> TrialSummary:
        """Trial summary as :meth:`MRTData.describe <hte_mrt.MRTData.describe>` gives it,
        from the first pass (no pass over the data)."""
        n_av, counts, p_sums = self._randomization
        rows = []
        for k, lev in enumerate(self.level_values):
            if self.is_binary and k == 0:
                continue
            obs = counts[k] / n_av if n_av else np.nan
            stated = p_sums[k] / n_av if n_av else np.nan
            rows.append(
                {
                    "level": str(lev),
                    "n_available": int(n_av),
                    "observed": round(float(obs), 4),
                    "stated": round(float(stated), 4),
                    "difference_se": round(
                        float((obs - stated) / np.sqrt(stated * (1 - stated) / n_av)), 2
                    )
                    if n_av
                    else np.nan,
                }
            )
        return TrialSummary(
            n_participants=self.n_participants,
            n_clusters=len(self.clusters) if self.clusters is not None else None,
            n_rows=self.n_rows,
            decision_points=self.time_range,
            decisions_per_participant=self._per,
            availability_rate=n_av / self.n_rows,
            randomization=pd.DataFrame(rows),
            exclusions=self.exclusions,
        )

    def to_memory(self) -> MRTData:
        """All partitions as one in-memory :class:`~hte_mrt.data.schema.MRTData` (small trials,
        checks)."""
        frames = [_frame(p.source if self._ddf_parts is None else d)
                  for p, d in zip(self.partitions, self._ddf_parts or self.partitions,
                                  strict=True)]  # fmt: skip
        return self._spec.mrt_data(pd.concat(frames, ignore_index=True))

    def __repr__(self) -> str:
        r = self.roles
        kind = "binary" if self.is_binary else f"{len(self.level_values)}-level"
        return (
            f"<LargeMRTData: {self.n_participants} participants, {self.n_rows} rows, "
            f"{self.n_partitions} partition{'s' if self.n_partitions != 1 else ''}, {kind} "
            f"treatment '{r.treatment}', outcome '{r.outcome}'>"
        )


class _SplitParticipants(Exception):
    """Internal: a participant's rows lie in more than one partition."""


# ---------------------------------------------------------------------------- constructors
def _parquet_files(path: str | os.PathLike) -> list[str]:
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if not p.is_dir():
        raise DataError(
            f"No Parquet file or folder at '{path}': give a .parquet file or a folder of them "
            "(e.g. written by DataFrame.to_parquet or dask's to_parquet)."
        )
    files = sorted(str(f) for f in p.rglob("*.parquet") if f.is_file())
    if not files:
        raise DataError(
            f"The folder '{path}' holds no .parquet file: give the folder the trial was written "
            "to (one or more part files named *.parquet)."
        )
    return files


def _check_columns(files: list[str], needed: list[str]) -> None:
    """Every role column in every file (read from the Parquet footers only)."""
    import pyarrow.parquet as pq

    for f in files:
        names = set(pq.read_schema(f).names)
        for col in needed:
            if col not in names:
                raise MissingColumnError(
                    f"partition file {f}: column '{col}' is not in this partition (the other "
                    "columns are " + ", ".join(sorted(names)[:20]) + "). Every partition needs "
                    "every role column: rewrite the partition with the column.",
                    column=col,
                )


def _role_columns(
    roles: Roles, prob: ProbSpec | None, levels: Mapping[object, ProbSpec] | None
) -> list[str]:
    cols = [roles.id, roles.time, roles.treatment, roles.outcome]
    cols += [c for c in (roles.availability, roles.cluster) if c is not None]
    specs = [prob] if levels is None else list(levels.values())
    cols += [s for s in specs if isinstance(s, str)]
    return [c for c in cols if isinstance(c, str)]


def _shuffle_to_files(ddf: Any, id: str, folder: str | None, n_parts: int) -> list[str]:
    out = folder or tempfile.mkdtemp(prefix="hte_mrt_shuffled_")
    ddf.shuffle(on=id, npartitions=max(1, n_parts)).to_parquet(out, write_index=False)
    return _parquet_files(out)


def open_trial(
    source: Any,
    *,
    kind: Literal["parquet", "dask"],
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
    """:meth:`MRTData.from_parquet` / :meth:`MRTData.from_dask` (see there)."""
    for role, col in (("id", id), ("time", time), ("treatment", treatment),
                      ("outcome", outcome), ("availability", availability),
                      ("cluster", cluster)):  # fmt: skip
        if col is not None and not isinstance(col, str):
            raise DataError(
                f"{role}= must be the name of a column (a string), got {col!r}; e.g. "
                f"{role}={str(col)!r} if that is the column's name."
            )
    if not (client is None or client == "sync" or hasattr(client, "compute")):
        raise DataError(
            f"client= must be a distributed.Client, 'sync' (run here, partition by partition) "
            f"or None (the running client, else a LocalCluster), got {type(client).__name__}."
        )
    if not isinstance(missing, str) or missing not in ("error", "drop"):
        raise DataError(
            f"missing must be 'error' (a missing outcome raises) or 'drop' (such rows are "
            f"removed and listed in .exclusions), got {missing!r}."
        )
    MRTData._prob_specs(prob, levels)  # the same argument errors as in memory
    roles = Roles(id, time, treatment, outcome, availability, cluster)
    spec = _Spec(roles, prob, dict(levels) if levels is not None else None, missing)
    needed = _role_columns(roles, prob, levels)
    ddf_parts = None
    if kind == "parquet":
        files = _parquet_files(source)
        _check_columns(files, needed)
        parts = _offsets([f"partition file {f}" for f in files], files, None)
    else:
        absent = [c for c in needed if c not in source.columns]
        if absent:
            from hte_mrt.data.checks import require_column

            require_column(source._meta, absent[0], "role column of the dask DataFrame")
        ddf_parts = source.to_delayed()
        parts = _offsets(
            [f"partition {k} of the dask DataFrame" for k in range(len(ddf_parts))],
            list(range(len(ddf_parts))),
            ddf_parts,
            client,
        )
    try:
        return LargeMRTData(parts, spec, client=client, ddf_parts=ddf_parts)
    except _SplitParticipants:
        pass
    import dask.dataframe as dd

    ddf = dd.read_parquet(files) if kind == "parquet" else source
    where = str(source) if kind == "parquet" else "the dask DataFrame"
    warnings.warn(
        f"The partitions of {where} split participants (column '{id}') over several "
        "partitions; every estimator sums per-participant pieces, so the data are shuffled by "
        f"participant once, into {shuffle_dir or 'a temporary folder'}. Write the trial "
        f"partitioned by participant (e.g. ddf.shuffle(on='{id}').to_parquet(...)) to skip this.",
        PartitionWarning,
        stacklevel=3,
    )
    shuffled = _shuffle_to_files(
        ddf, id, None if shuffle_dir is None else str(shuffle_dir), len(parts)
    )
    names = [f"partition file {f} (shuffled by '{id}' from {where})" for f in shuffled]
    return LargeMRTData(_offsets(names, shuffled, None), spec, client=client, shuffled_from=where)


def _n_rows(source: Any) -> int:
    if isinstance(source, str):
        import pyarrow.parquet as pq

        return pq.ParquetFile(source).metadata.num_rows
    return len(source)


def _len(source: Any) -> int:
    return len(_frame(source))


def _offsets(names: list[str], sources: list, ddf_parts: list | None, client: Any = None):
    """Partitions with the number of rows before each (file footers, or one cheap pass)."""
    if ddf_parts is None:
        counts = [_n_rows(s) for s in sources]
    else:
        runner = Runner(client)
        counts = runner.gather(runner.map(_len, ddf_parts))
    offsets = np.r_[0, np.cumsum(counts)[:-1]].astype(int)
    return [
        Partition(src, name, int(off))
        for src, name, off in zip(sources, names, offsets, strict=True)
    ]
