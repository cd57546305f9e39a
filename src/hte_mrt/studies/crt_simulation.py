r"""Simulation harness: CATE learners on simulated cluster-randomized trials.

:func:`run_study` crosses scenarios (:class:`~hte_mrt.data.simulate_crt.CRTSimulation`) with
learners (factories of unfitted :class:`~hte_mrt.estimators.learners.base.CRTLearner`) over
``n_reps`` seeded replicates. Each replicate simulates one trial, fits every learner (an error is
recorded in the ``error`` column, never raised) and evaluates it on the training individuals
(``sample="in_sample"``) and on fresh clusters from the same model (``sample="new_clusters"``,
by default 50 clusters of 20).

Metrics (per scenario x learner x replicate x sample; :data:`METRICS`), with :math:`\tau` the
true CATE and :math:`\hat\tau` the estimate over the :math:`n` evaluated individuals:

* ``pehe`` :math:`\sqrt{n^{-1}\sum (\hat\tau_{ij} - \tau_{ij})^2}`;
* ``bias_ate_ind`` / ``bias_ate_cl``: estimated minus true individual-average /
  cluster-average ATE of the evaluated individuals (the sample averages of the true
  :math:`\tau`);
* ``coverage_cate``: share of individuals whose interval for :math:`\tau(x, v)` covers the truth,
  ``width_cate`` the mean interval width;
* ``coverage_ate_ind`` / ``coverage_ate_cl`` (0/1) and ``width_ate_ind`` / ``width_ate_cl``: the
  two ATE intervals;
* ``spearman``: rank correlation of :math:`\hat\tau` and :math:`\tau` (NaN when either is
  constant, e.g. a homogeneous effect);
* ``fit_seconds``: ``learner.fit_seconds_`` (the full-data fit only); ``seconds`` (not a
  metric) the learner's whole wall time in the replicate, bootstrap and predictions included.

Interval metrics are NaN when the learner gives no intervals (a point learner without
``n_boot``, or ``interval=False``); intervals are at 95%.

Seeds: replicate r uses the r-th child of ``SeedSequence(seed).spawn(n_reps)`` in every
scenario (common random numbers across scenarios), split into the trial, the new clusters and
one seed per learner (set as ``seed`` when the learner has that parameter and it is None;
the learners' own progress bars are turned off: the study has one). Results therefore do not
depend on the backend (joblib or dask) or on ``n_jobs``, except for the timing columns.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from hte_mrt._contract import Result, paper_table
from hte_mrt._util import tqdm
from hte_mrt.data.simulate_crt import (
    ICC_LEVELS,
    INTERCEPT_LEVELS,
    K_LEVELS,
    MU_LEVELS,
    SIZES_LEVELS,
    SLOPE_LEVELS,
    TAU_LEVELS,
    CRTSimulation,
)
from hte_mrt.data.simulate_crt_random import RandomCRTDesign
from hte_mrt.design.common import check_bool, check_n_jobs, check_seed
from hte_mrt.errors import DesignError, HteMrtError
from hte_mrt.estimators.learners.base import CRTLearner

LearnerSpec = Callable[[], Any] | tuple[type, Mapping[str, Any]] | Any
"""A top-level callable returning an unfitted learner, a ``(class, params)`` pair, or an
unfitted learner instance (cloned for every replicate)."""

METRICS = (
    "pehe",
    "bias_ate_ind",
    "bias_ate_cl",
    "coverage_cate",
    "width_cate",
    "coverage_ate_ind",
    "width_ate_ind",
    "coverage_ate_cl",
    "width_ate_cl",
    "spearman",
    "fit_seconds",
)
BIAS_METRICS = ("bias_ate_ind", "bias_ate_cl")
TIMING = ("fit_seconds", "seconds")
"""Columns of :attr:`StudyResult.raw` that depend on the machine (all others are reproducible)."""
SAMPLES = ("in_sample", "new_clusters")
KEYS = ("scenario", "learner", "rep", "sample")


# ---------------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------------
def oat_scenarios(base: CRTSimulation | None = None) -> dict[str, CRTSimulation]:
    """The base scenario plus one-factor-at-a-time sweeps over every other level.

    Names: ``"base"``, then ``"K=16"``, ``"sizes=variable"``, ``"icc=0.2"``, ``"mu=nonlinear"``,
    ``"tau=homogeneous"``, ``"intercept=t3"``, ``"random_slope=True"``, ... (levels equal to the
    base's are skipped). ``base`` defaults to ``CRTSimulation()``.
    """
    base = CRTSimulation() if base is None else base
    if not isinstance(base, CRTSimulation):
        raise DesignError(f"oat_scenarios: base must be a CRTSimulation, got {type(base)!r}.")
    sweeps = [
        ("n_clusters", "K", K_LEVELS),
        ("sizes", "sizes", SIZES_LEVELS),
        ("icc", "icc", ICC_LEVELS),
        ("mu", "mu", MU_LEVELS),
        ("tau", "tau", TAU_LEVELS),
        ("intercept", "intercept", INTERCEPT_LEVELS),
        ("random_slope", "random_slope", SLOPE_LEVELS),
    ]
    out = {"base": base}
    for field, short, levels in sweeps:
        current = getattr(base, field)
        for level in levels:
            same = np.isclose(float(level), float(current)) if field == "icc" else level == current
            if same:
                continue
            name = f"{short}={level:g}" if field == "icc" else f"{short}={level}"
            out[name] = dataclasses.replace(base, **{field: level})
    return out


# ---------------------------------------------------------------------------------------------
# one replicate
# ---------------------------------------------------------------------------------------------
def make_learner(spec: LearnerSpec):
    """An unfitted learner from a factory, a ``(class, params)`` pair or an instance."""
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], type) or not isinstance(spec[1], Mapping):
            raise DesignError(
                "a learner given as a tuple must be (class, dict of parameters); pass e.g. "
                "(hm.LinearInteraction, {'n_boot': 200})."
            )
        return spec[0](**dict(spec[1]))
    if isinstance(spec, type):
        return spec()
    if hasattr(spec, "fit") and hasattr(spec, "clone"):
        return spec.clone()
    if callable(spec):
        return spec()
    raise DesignError(
        f"a learner must be a factory (callable), a (class, params) pair or a learner, got "
        f"{type(spec).__name__}; pass e.g. hm.LinearInteraction()."
    )


def _seed_learner(learner, ss: np.random.SeedSequence) -> None:
    names = learner._param_names() if hasattr(learner, "_param_names") else []
    if "seed" in names and getattr(learner, "seed", None) is None:
        learner.set_params(seed=int(ss.generate_state(1, dtype=np.uint32)[0]))
    if "progress" in names:  # the study shows one bar; the learners' own would interleave
        learner.set_params(progress=False)


def _cluster_mean(values: np.ndarray, cluster: np.ndarray) -> float:
    codes, _ = pd.factorize(pd.Series(np.asarray(cluster)))
    sums = np.bincount(codes, weights=values)
    return float(np.mean(sums / np.bincount(codes)))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) <= 1e-12 * max(1.0, np.abs(a).max()) or np.ptp(b) <= 1e-12 * max(
        1.0, np.abs(b).max()
    ):
        return float("nan")
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def _interval(s: pd.Series, truth: float) -> tuple[float, float]:
    if "lcl" not in s.index:
        return float("nan"), float("nan")
    lo, hi = float(s["lcl"]), float(s["ucl"])
    return float(lo <= truth <= hi), hi - lo


def evaluate_cate(result, tau: np.ndarray) -> dict[str, float]:
    """Metrics of a :class:`~hte_mrt.results.cate.CATEResult` against the true CATE ``tau``
    (aligned with its rows); see the module docstring."""
    est = np.asarray(result.estimate, dtype=float)
    tau = np.asarray(tau, dtype=float)
    if est.shape != tau.shape:
        raise DesignError(f"evaluate_cate: {est.shape[0]} estimates for {tau.shape[0]} truths.")
    true_ind, true_cl = float(tau.mean()), _cluster_mean(tau, result.cluster)
    a_ind, a_cl = result.ate("individual"), result.ate("cluster")
    cov_i, wid_i = _interval(a_ind, true_ind)
    cov_c, wid_c = _interval(a_cl, true_cl)
    if result.draws is not None:
        tab = result.table()
        lo, hi = tab["lcl"].to_numpy(), tab["ucl"].to_numpy()
        cov_cate, wid_cate = float(np.mean((lo <= tau) & (tau <= hi))), float(np.mean(hi - lo))
    else:
        cov_cate = wid_cate = float("nan")
    return {
        "n_individuals": len(est),
        "n_clusters": int(pd.Series(np.asarray(result.cluster)).nunique()),
        "ate_ind": float(a_ind["estimate"]),
        "ate_cl": float(a_cl["estimate"]),
        "true_ate_ind": true_ind,
        "true_ate_cl": true_cl,
        "pehe": float(np.sqrt(np.mean((est - tau) ** 2))),
        "bias_ate_ind": float(a_ind["estimate"]) - true_ind,
        "bias_ate_cl": float(a_cl["estimate"]) - true_cl,
        "coverage_cate": cov_cate,
        "width_cate": wid_cate,
        "coverage_ate_ind": cov_i,
        "width_ate_ind": wid_i,
        "coverage_ate_cl": cov_c,
        "width_ate_cl": wid_c,
        "spearman": _spearman(est, tau),
    }


def _error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" [{Path(last[0].filename).name}:{last[0].lineno}]" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


@dataclass(frozen=True)
class _Task:
    """One scenario x replicate (picklable: sent to joblib / dask workers)."""

    scenario: str
    sim: CRTSimulation
    learners: tuple[tuple[str, Any], ...]
    rep: int
    seed: np.random.SeedSequence
    interval: bool
    n_new: int
    new_size: int


def replicate_trial(
    sim: CRTSimulation, seed: np.random.SeedSequence, n_new: int = 50, new_size: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame | None, np.random.SeedSequence]:
    """The simulated trial, the new clusters (None when ``n_new`` is 0) and the learners' seed
    of one replicate, exactly as :func:`run_study` makes them from the replicate's seed
    (``SeedSequence(seed).spawn(n_reps)[r]``); ``seed`` itself is not advanced."""
    # a fresh copy: spawn() advances a SeedSequence, and in-process backends (dask threads,
    # joblib with n_jobs=1) would otherwise share one object between scenarios
    ss = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    s_data, s_new, s_learn = ss.spawn(3)
    frame = sim.simulate(s_data)
    new = sim.new_clusters(s_new, n_new, new_size) if n_new else None
    return frame, new, s_learn


def _run_task(task: _Task) -> list[dict]:
    """Simulate one trial and evaluate every learner on it (never raises for a learner)."""
    sim = task.sim
    frame, new, s_learn = replicate_trial(sim, task.seed, task.n_new, task.new_size)
    data = sim.to_crt_data(frame)
    samples: list[tuple[str, pd.DataFrame | None]] = [("in_sample", None)]
    if new is not None:
        samples.append(("new_clusters", new))
    rows: list[dict] = []
    for (lname, spec), ls in zip(task.learners, s_learn.spawn(len(task.learners)), strict=True):
        key = {"scenario": task.scenario, "learner": lname, "rep": task.rep}
        t0 = time.perf_counter()
        try:
            learner = make_learner(spec)
            _seed_learner(learner, ls)
            learner.fit(data)
            fit_err = None
        except Exception as exc:  # a failing learner is recorded, never fatal
            learner, fit_err = None, _error(exc)
        fit_s = float(getattr(learner, "fit_seconds_", np.nan)) if learner is not None else np.nan
        for sample, new in samples:
            row = {**key, "sample": sample, "error": fit_err}
            if fit_err is None:
                try:
                    res = learner.cate(new, interval=task.interval)
                    row |= evaluate_cate(res, sim.true_tau(res.frame))
                except Exception as exc:
                    row["error"] = _error(exc)
            row["fit_seconds"] = fit_s
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# the study
# ---------------------------------------------------------------------------------------------
def run_study(
    scenarios: Mapping[str, CRTSimulation] | Sequence[CRTSimulation],
    learners: Mapping[str, LearnerSpec],
    n_reps: int,
    seed: int | None = None,
    *,
    n_jobs: int | None = None,
    client=None,
    interval: bool = True,
    new_clusters: int = 50,
    new_cluster_size: int = 20,
    progress: bool = True,
    reps: Sequence[int] | None = None,
) -> StudyResult:
    """Run every learner on ``n_reps`` simulated trials of every scenario.

    Parameters
    ----------
    scenarios
        ``{name: CRTSimulation}``, or a list (named by :meth:`CRTSimulation.label`); randomly
        drawn designs (:class:`~hte_mrt.data.simulate_crt_random.RandomCRTDesign`) work alike.
    learners
        ``{name: spec}``; ``spec`` is a top-level callable returning an unfitted learner, a
        ``(class, params)`` pair, or an unfitted learner (cloned). With ``n_jobs > 1`` or a
        ``client`` they are pickled: no lambdas or locally defined functions.
    n_reps, seed
        Replicates per scenario; ``SeedSequence(seed).spawn(n_reps)`` seeds them (pass an int
        for a reproducible study).
    n_jobs
        joblib workers (scenario x replicate tasks in parallel); ignored with ``client``.
    client
        A ``dask.distributed.Client``: tasks are sent with ``client.map`` and collected with
        ``client.gather``. Results equal joblib's (apart from the timing columns).
    interval
        Ask learners for intervals (``cate(interval=...)``); False gives NaN interval metrics.
    new_clusters, new_cluster_size
        Fresh clusters per replicate for the out-of-sample evaluation (0: skip it).
    progress
        Show a progress bar over the scenario x replicate tasks (tqdm).
    reps
        Run only these replicate indices (in ``range(n_reps)``); default all. Replicate r's
        seed depends only on ``seed`` and r, so a long study can run in blocks (e.g. across
        sessions) and the blocks' ``raw`` tables concatenated (:meth:`StudyResult.concat`).

    Returns
    -------
    StudyResult
        ``raw`` (one row per scenario x learner x replicate x sample) and ``table()`` (means
        and Monte Carlo SEs of the metrics).

    Examples
    --------
    >>> import hte_mrt as hm
    >>> from hte_mrt.studies.crt_simulation import run_study
    >>> study = run_study({"small": hm.CRTSimulation(n_clusters=16)},
    ...                   {"linear": hm.LinearInteraction(n_boot=20)}, n_reps=2, seed=1,
    ...                   progress=False)
    >>> study  # doctest: +ELLIPSIS
    <StudyResult: CATE learners on simulated CRTs, 1 scenario(s) x 1 learner(s) x 2 ...>
    >>> study.table()[["scenario", "learner", "sample", "n_reps"]]
      scenario learner        sample  n_reps
    0    small  linear     in_sample       2
    1    small  linear  new_clusters       2
    """
    if isinstance(scenarios, Mapping):
        scen = dict(scenarios)
    elif isinstance(scenarios, Sequence) and not isinstance(scenarios, str):
        scen = {}
        for s in scenarios:
            name = s.label() if isinstance(s, CRTSimulation | RandomCRTDesign) else repr(s)
            if name in scen:
                raise DesignError(f"run_study: scenario {name} is listed twice.")
            scen[name] = s
    else:
        raise DesignError(
            "run_study: scenarios must be a dict {name: CRTSimulation} or a list; pass e.g. "
            "{'base': hm.CRTSimulation()}."
        )
    if not scen:
        raise DesignError("run_study: no scenarios; pass at least one hm.CRTSimulation.")
    for name, s in scen.items():
        if not isinstance(s, CRTSimulation | RandomCRTDesign):
            raise DesignError(
                f"run_study: scenario {name!r} is a {type(s).__name__}, not a CRTSimulation; "
                "pass hm.CRTSimulation(...) (or RandomCRTDesign) objects."
            )
    if not isinstance(learners, Mapping) or not learners:
        raise DesignError(
            "run_study: learners must be a non-empty dict {name: factory}; pass e.g. "
            "{'linear': hm.LinearInteraction(n_boot=200)}."
        )
    for lname, spec in learners.items():  # every learner is built and checked before any run
        try:
            model = make_learner(spec)
        except HteMrtError as exc:
            raise DesignError(f"run_study: learner {lname!r}: {exc}") from exc
        except TypeError as exc:  # e.g. a parameter the learner does not have
            raise DesignError(
                f"run_study: learner {lname!r} cannot be built ({exc}); pass the learner's own "
                "parameter names (see its get_params())."
            ) from exc
        if not isinstance(model, CRTLearner):
            raise DesignError(
                f"run_study: learner {lname!r} gives a {type(model).__name__}, not a CRT "
                "learner; pass e.g. hm.LinearInteraction() or a factory returning one."
            )
        try:
            model._check_shared_params()
            if hasattr(model, "_check_params"):
                model._check_params()
        except HteMrtError as exc:
            raise DesignError(f"run_study: learner {lname!r}: {exc}") from exc
    for name, v, lo, eg in (("n_reps", n_reps, 1, 200), ("new_clusters", new_clusters, 0, 50),
                            ("new_cluster_size", new_cluster_size, 1, 20)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise DesignError(
                f"run_study: {name} must be a whole number >= {lo}, got {v!r}; pass e.g. "
                f"{name}={eg}."
            )
    check_seed(seed)
    check_n_jobs(n_jobs)
    check_bool(interval, "interval")
    check_bool(progress, "progress")

    rep_idx = list(range(int(n_reps))) if reps is None else [int(r) for r in reps]
    if (
        not rep_idx
        or len(set(rep_idx)) != len(rep_idx)
        or not all(0 <= r < int(n_reps) for r in rep_idx)
    ):
        raise DesignError(
            f"run_study: reps must be distinct indices in range(n_reps={n_reps}), got {reps!r}; "
            "pass e.g. reps=range(0, 10)."
        )
    learner_items = tuple((str(k), v) for k, v in learners.items())
    root = np.random.SeedSequence(seed)
    seed = seed if seed is not None else root.entropy  # recorded: a None seed is reproducible
    rep_seeds = root.spawn(int(n_reps))
    n_new, new_size = int(new_clusters), int(new_cluster_size)
    tasks = [
        _Task(name, sim, learner_items, r, rep_seeds[r], bool(interval), n_new, new_size)
        for name, sim in scen.items()
        for r in rep_idx
    ]
    t0 = time.perf_counter()
    bar = tqdm(total=len(tasks), disable=not progress, desc="run_study", unit="replicate")
    if client is not None:
        from distributed import as_completed

        futures = client.map(_run_task, tasks, pure=False)
        if progress:
            for _ in as_completed(futures):
                bar.update()
        results = client.gather(futures)
        backend = "dask"
    else:
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_run_task)(t) for t in tasks)
        results = []
        for res in gen:
            results.append(res)
            bar.update()
        backend = "joblib"
    bar.close()
    raw = pd.DataFrame([row for rows in results for row in rows])
    raw = _tidy(raw, list(scen), [k for k, _ in learner_items])
    return StudyResult(
        raw=raw,
        scenarios=scen,
        learners=[k for k, _ in learner_items],
        n_reps=len(rep_idx),
        seed=seed,
        seconds=time.perf_counter() - t0,
        backend=backend,
    )


def _tidy(raw: pd.DataFrame, scenarios: list[str], learners: list[str]) -> pd.DataFrame:
    cols = [*KEYS, "n_individuals", "n_clusters", "ate_ind", "ate_cl", "true_ate_ind",
            "true_ate_cl", *[m for m in METRICS if m != "fit_seconds"], "fit_seconds",
            "seconds", "error"]  # fmt: skip
    for c in cols:
        if c not in raw.columns:
            raw[c] = np.nan
    raw = raw[cols].copy()
    order = {
        "scenario": {s: i for i, s in enumerate(scenarios)},
        "learner": {s: i for i, s in enumerate(learners)},
        "sample": {s: i for i, s in enumerate(SAMPLES)},
    }
    sort_key = [raw[k].map(order[k]) if k in order else raw[k] for k in KEYS]
    idx = np.lexsort([np.asarray(k) for k in reversed(sort_key)])
    raw = raw.iloc[idx].reset_index(drop=True)
    for c in ("n_individuals", "n_clusters"):
        raw[c] = raw[c].astype("Int64")
    raw["error"] = raw["error"].astype(object).where(raw["error"].notna(), None)
    return raw


@dataclass(repr=False)
class StudyResult(Result):
    """The output of :func:`run_study`.

    ``raw``: the tidy table, one row per scenario x learner x replicate x sample, with the
    metrics of :data:`METRICS`, the estimated and true ATEs, timings and ``error`` (None when
    the learner ran; else the exception, with NaN metrics). ``table()``: the Monte Carlo
    summary; ``summary()``: the same with the study's size and seed.

    Examples
    --------
    >>> import hte_mrt as hm
    >>> from hte_mrt.studies.crt_simulation import run_study
    >>> study = run_study({"small": hm.CRTSimulation(n_clusters=16)},
    ...                   {"linear": hm.LinearInteraction()}, n_reps=2, seed=1, progress=False)
    >>> study.summary().info["replicates"]
    2
    """

    _kind: ClassVar[str] = "CATE learners on simulated CRTs"

    raw: pd.DataFrame
    scenarios: dict[str, CRTSimulation]
    learners: list[str]
    n_reps: int
    seed: int | None = None
    seconds: float = float("nan")
    backend: str = "joblib"

    @classmethod
    def concat(cls, parts: Sequence[StudyResult]) -> StudyResult:
        """Combine blocks of one study (same seed; e.g. ``run_study(..., reps=...)`` runs).
        A (scenario, learner, replicate, sample) present in two blocks is an error."""
        parts = list(parts)
        if not parts:
            raise DesignError("StudyResult.concat: nothing to combine.")
        seeds = {p.seed for p in parts}
        if len(seeds) > 1:
            raise DesignError(f"StudyResult.concat: blocks come from different seeds {seeds}.")
        if any(p.learners != parts[0].learners for p in parts):
            raise DesignError(
                "StudyResult.concat: blocks have different learner lists (a learner's seed "
                "depends on its position): " + "; ".join(", ".join(p.learners) for p in parts)
            )
        for p in parts:
            for name, sim in p.scenarios.items():
                first = next(q.scenarios[name] for q in parts if name in q.scenarios)
                if sim != first:
                    raise DesignError(
                        f"StudyResult.concat: scenario {name!r} differs between blocks."
                    )
        raw = pd.concat([p.raw for p in parts], ignore_index=True)
        dup = raw.duplicated(list(KEYS))
        if dup.any():
            first = raw.loc[dup, list(KEYS)].iloc[0].to_dict()
            raise DesignError(
                f"StudyResult.concat: {int(dup.sum())} duplicated rows, e.g. {first}."
            )
        scen = {k: v for p in parts for k, v in p.scenarios.items()}
        learners = list(dict.fromkeys(lname for p in parts for lname in p.learners))
        return cls(
            raw=_tidy(raw, list(scen), learners), scenarios=scen, learners=learners,
            n_reps=int(raw.groupby(["scenario"])["rep"].nunique().max()), seed=parts[0].seed,
            seconds=float(sum(p.seconds for p in parts)), backend=parts[0].backend,
        )  # fmt: skip

    def errors(self) -> pd.DataFrame:
        """The rows in which a learner failed, with the error message."""
        return self.raw.loc[self.raw["error"].notna(), [*KEYS, "error"]].reset_index(drop=True)

    def table(
        self, conf_level: float | None = None, style: str = "tidy", sample: str | None = None
    ) -> pd.DataFrame:
        """Monte Carlo summary per scenario x learner x sample (``sample``: only
        ``"in_sample"`` or ``"new_clusters"``; ``style="paper"``: human headers, significant
        digits; ``conf_level`` is unused: the metrics' intervals are fixed at 95%).

        For every metric m: ``m`` (mean over the replicates where it is defined) and ``m_mcse``
        (Monte Carlo standard error sd / sqrt(n), n those replicates; n = n_reps when nothing
        failed). For the ATE biases also ``abs_m`` = |mean bias| (its MCSE ``abs_m_mcse`` that
        of the mean bias) and ``mean_abs_m`` = mean |bias| with ``mean_abs_m_mcse``. ``n_reps``
        counts the replicates, ``n_failed`` those with an error.
        """
        if style not in ("tidy", "paper"):
            raise DesignError(f"style must be 'tidy' or 'paper', got {style!r}.")
        tab = self._metrics(sample)
        return paper_table(tab) if style == "paper" else tab

    def _table(self, conf_level: float) -> pd.DataFrame:
        return self._metrics(None)

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        n_err = int(self.raw["error"].notna().sum())
        info = {"scenarios": len(self.scenarios), "learners": len(self.learners),
                "replicates": self.n_reps, "seed": self.seed, "failed rows": n_err,
                "seconds": round(float(self.seconds), 1), "backend": self.backend}  # fmt: skip
        notes = ["Each metric m has its Monte Carlo standard error in m_mcse."]
        if n_err:
            notes.append(f"{n_err} row(s) failed: see errors().")
        return "Simulation study: " + self._kind, info, notes

    def _metrics(self, sample: str | None) -> pd.DataFrame:
        raw = self.raw if sample is None else self.raw[self.raw["sample"] == sample]
        if sample is not None and raw.empty:
            raise DesignError(f"table: no rows for sample {sample!r} (samples: {SAMPLES}).")
        df = raw.copy()
        for m in BIAS_METRICS:
            df[f"mean_abs_{m}"] = df[m].abs()
        keys = ["scenario", "learner", "sample"]
        g = df.groupby(keys, sort=False)
        out = g.size().rename("n_reps").to_frame()
        out["n_failed"] = g["error"].agg(lambda s: int(s.notna().sum()))

        def mean_mcse(col: str) -> tuple[pd.Series, pd.Series]:
            st = g[col].agg(["mean", "std", "count"])
            return st["mean"], st["std"] / np.sqrt(st["count"].where(st["count"] > 0))

        for m in METRICS:
            out[m], out[f"{m}_mcse"] = mean_mcse(m)
            if m in BIAS_METRICS:
                out[f"abs_{m}"], out[f"abs_{m}_mcse"] = out[m].abs(), out[f"{m}_mcse"]
                out[f"mean_abs_{m}"], out[f"mean_abs_{m}_mcse"] = mean_mcse(f"mean_abs_{m}")
        front = ["n_reps", "n_failed"]
        cols = front + [c for c in out.columns if c not in front]
        return out[cols].reset_index()

    def plot(self, metric: str = "pehe", sample: str | None = None):
        """Mean of ``metric`` with +-1 MCSE error bars: scenarios on the x axis, one marker
        series per learner, one panel per sample. Returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        tab = self._metrics(None)
        if metric not in tab.columns or f"{metric}_mcse" not in tab.columns:
            options = [c[:-5] for c in tab.columns if c.endswith("_mcse")]
            raise DesignError(f"plot: unknown metric {metric!r}; choose from {options}.")
        samples = [s for s in SAMPLES if s in set(tab["sample"])]
        if sample is not None:
            if sample not in samples:
                raise DesignError(f"plot: no rows for sample {sample!r}.")
            samples = [sample]
        scen = list(self.scenarios)
        n_l = max(len(self.learners), 1)
        fig, axes = plt.subplots(
            1, len(samples), figsize=(max(4.0, 0.6 * len(scen) + 2) * len(samples), 4.0),
            squeeze=False, sharey=True,
        )  # fmt: skip
        x = np.arange(len(scen), dtype=float)
        for ax, smp in zip(axes[0], samples, strict=True):
            sub = tab[tab["sample"] == smp]
            for k, lname in enumerate(self.learners):
                d = sub[sub["learner"] == lname].set_index("scenario").reindex(scen)
                off = (k - (n_l - 1) / 2) * 0.8 / n_l
                ax.errorbar(
                    x + off, d[metric], yerr=d[f"{metric}_mcse"], fmt="o", capsize=3, label=lname
                )
            ax.set_xticks(x, scen, rotation=45, ha="right")
            ax.set_xlim(-0.5, len(scen) - 0.5)
            ax.set_title(smp.replace("_", " "))
            ax.grid(axis="y", alpha=0.3)
            if metric.startswith("coverage"):
                ax.axhline(0.95, color="grey", lw=0.8, ls="--")
            elif metric.startswith("bias"):
                ax.axhline(0.0, color="grey", lw=0.8, ls="--")
        axes[0][0].set_ylabel(f"{metric} (mean ± MCSE, {self.n_reps} reps)")
        axes[0][-1].legend(title="learner", fontsize="small")
        fig.tight_layout()
        return fig

    def to_csv(self, path, *, which: str = "raw") -> Path:
        """Write ``raw`` (default) or ``table()`` (``which="table"``) as CSV; returns the path."""
        if which not in ("raw", "table"):
            raise DesignError(f"to_csv: which must be 'raw' or 'table', got {which!r}.")
        path = Path(path)
        (self.raw if which == "raw" else self._metrics(None)).to_csv(path, index=False)
        return path

    def _repr_extra(self) -> str:
        n_err = int(self.raw["error"].notna().sum())
        return (
            f"{len(self.scenarios)} scenario(s) x {len(self.learners)} learner(s) "
            f"x {self.n_reps} replicate(s), {len(self.raw)} rows, {n_err} failed"
        )


__all__ = [
    "METRICS",
    "TIMING",
    "StudyResult",
    "evaluate_cate",
    "make_learner",
    "oat_scenarios",
    "run_study",
]
