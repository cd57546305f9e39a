"""Run an analysis plan (``models/*.toml``) and write its report folder.

``run_plan(plan) -> reports/<plan name>/`` with ``report.html`` (self-contained),
``report.md``, ``tables.tex`` (booktabs), ``figures/*.png|svg``, ``posterior*.nc`` (+ JSON
sidecars) and ``metadata.json`` (plan and data SHA-256, package versions, seed, the plan text).
Same plan + same data -> same numbers: WCLS is deterministic, and every sampler is seeded from
the plan's seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from hte_mrt._contract import Result
from hte_mrt._util import json_default
from hte_mrt.errors import HteMrtError, PlanError
from hte_mrt.reports.plans import Plan, load_plan

PACKAGES = (
    "hte_mrt",
    "numpy",
    "pandas",
    "scipy",
    "xarray",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "formulaic",
    "scikit-learn",
    "pymc-bart",
    "stochtree",
    "gpboost",
    "econml",
    "matplotlib",
)


@dataclass
class RunResult(Result):
    """Where a plan's report went and its headline numbers."""

    plan: Plan
    out: Path
    files: dict[str, Path]
    tables: dict[str, pd.DataFrame]
    metadata: dict[str, Any]

    @property
    def quick(self) -> bool:
        """True for a quick (smoke) run: its numbers are not for publication."""
        return bool(self.metadata.get("quick"))

    def _headline_tidy(self) -> pd.DataFrame:
        if self.plan.kind == "mrt":
            tab = self.tables[f"effects_{self.metadata['primary']}"]
            drop = ("difference", "ratio", "flag")  # the cross-check's comparison columns
            return tab[[c for c in tab.columns if not any(d in c for d in drop)]]
        if self.plan.kind == "crt":
            tab = self.tables["ate"]
            return tab[[c for c in tab.columns if c != "fit_seconds"]]
        return self.tables["samplesize"]

    def headline(self) -> pd.DataFrame:
        """The headline estimates as a table for reading: the primary estimand's effects (MRT
        plan), the average treatment effects (CRT plan) or the sample size (sample-size plan)."""
        from hte_mrt.reports.render import paper_frame

        return paper_frame(self._headline_tidy())

    # the results contract: the headline estimates are the run's table (at the plan's level)
    _kind = "analysis plan run"

    def _table(self, conf_level: float) -> pd.DataFrame:
        if abs(conf_level - 0.95) > 1e-12:
            from hte_mrt.errors import DesignError

            raise DesignError(
                f"RunResult: the report's tables are at the plan's 95% level, not {conf_level:g}; "
                "refit the estimand (e.g. hm.wcls(...).table(conf_level=...)) for another level."
            )
        return self._headline_tidy().reset_index(drop=True)

    @property
    def _default_conf_level(self) -> float:
        return 0.95

    def _summary_parts(self) -> tuple[str, dict, list[str]]:
        title = f"Plan {self.plan.name!r}" + (" (QUICK RUN: not for publication)" if self.quick
                                               else "")  # fmt: skip
        return title, {"report": str(self.out), "files": len(self.files)}, []

    def to_xarray(self):
        """The headline table as an xarray Dataset (dimension ``row``)."""
        import xarray as xr

        tab = self._headline_tidy().reset_index(drop=True)
        ds = xr.Dataset.from_dataframe(tab.rename_axis("row"))
        ds.attrs["plan"] = self.plan.name
        return ds

    def __repr__(self) -> str:
        return f"<RunResult {self.plan.name}{' (quick)' if self.quick else ''}: {self.out}>"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def frame_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of a data frame's CSV serialization (columns, values; index excluded)."""
    return hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()


def load_frame(plan: Plan) -> pd.DataFrame:
    d = plan.section("data")
    if "dataset" in d:
        from hte_mrt.data.datasets import load_dataset as load

        return load(d["dataset"])
    base = plan.path.parent if plan.path else Path.cwd()
    p = base / d["path"] if (base / d["path"]).exists() else Path(d["path"])
    return read_csv(p, what=f"the plan's data (data.path = {d['path']!r})")


def read_csv(path: str | Path, *, what: str = "the data") -> pd.DataFrame:
    """A CSV file as a DataFrame; a missing, empty or unreadable file is a
    :class:`~hte_mrt.errors.DataError` naming the file and what to do."""
    from hte_mrt.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{what}: file {str(path)!r} not found"
            + (" (it is a folder)" if path.is_dir() else "")
            + "; check the path (relative paths start from the current folder)."
        )
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what}: {str(path)!r} is empty; give a CSV with a header row.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"{what}: {str(path)!r} cannot be read as CSV ({first}); save it as comma-separated "
            "UTF-8 text with one header row."
        ) from None
    return frame


def validate(plan_or_path: Plan | str | Path, *, check_data: bool = True) -> Plan:
    """Load and validate a plan without running it (``hm.validate_plan``, ``hte-mrt validate``).

    Parameters
    ----------
    plan_or_path : Plan, str or Path
        A plan (:func:`~hte_mrt.reports.plans.load_plan`) or the path of a plan file.
    check_data : bool, default True
        Also load the plan's data, check that every column it names (roles and formula
        variables) exists, and build what a run builds before its first MCMC fit (the trial
        data; for an MRT plan each estimand's WCLS / EMEE fit, whose terms ``lincombs`` must
        name). Takes seconds.

    Returns
    -------
    Plan
        The validated plan.

    Raises
    ------
    PlanError
        Every problem of the plan at once (types and ranges of every key, unknown keys with the
        closest allowed one, missing keys, formulas, priors, learners' parameters; with
        ``check_data``, columns missing from the data), each with its key and line; ``.key``
        and ``.line`` name the first, ``.problems`` lists ``(key, line, message)``.
    DataError
        The plan's data file cannot be read as CSV, or the data fail the trial's checks
        (probabilities, treatment values, missing values, ...).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import hte_mrt as hm
    >>> text = '''
    ... [plan]
    ... name = "primary"
    ... design = "mrt"
    ... seed = 7
    ... [data]
    ... dataset = "heartsteps"
    ... id = "user"
    ... time = "decision_index_nogap"
    ... treatment = "send"
    ... outcome = "jbsteps30_log"
    ... prob = "rand_prob"
    ... availability = "avail"
    ... [[estimands]]
    ... name = "by_day"
    ... moderators = "~ study_day_nogap"
    ... controls = "~ jbsteps30pre_log"
    ... '''
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "primary.toml"
    >>> _ = path.write_text(text)
    >>> hm.validate_plan(path).name
    'primary'
    >>> _ = path.write_text(text.replace("~ study_day_nogap", "~ weather"))
    >>> hm.validate_plan(path)
    Traceback (most recent call last):
    ...
    hte_mrt.errors.PlanError: estimands[by_day].moderators (line ...): 'weather' ... column ...
    """
    plan = plan_or_path if isinstance(plan_or_path, Plan) else load_plan(plan_or_path)
    if check_data and plan.kind != "samplesize":
        frame = _checked_frame(plan)
        if plan.kind == "mrt":
            from hte_mrt.reports.mrt_plan import dry_check
        else:
            from hte_mrt.reports.crt_plan import dry_check
        dry_check(plan, frame)
    return plan


def _checked_frame(plan: Plan) -> pd.DataFrame | None:
    """The plan's data, read once, after checking every column it names (None: no data)."""
    if plan.kind == "samplesize":
        return None
    frame = load_frame(plan)
    if plan.kind == "mrt":
        from hte_mrt.reports.mrt_plan import check_columns
    else:
        from hte_mrt.reports.crt_plan import check_columns
    check_columns(plan, frame)
    return frame


def quick_from_env() -> bool:
    """True when the environment asks for quick runs (``HTE_MRT_QUICK=1``)."""
    return os.environ.get("HTE_MRT_QUICK", "0").strip().lower() in ("1", "true", "yes")


def report_folder(plan: Plan, out: str | Path | None, quick: bool) -> Path:
    """Where a run writes: ``out`` if given, else the plan's ``[report] out`` (default
    ``reports/<plan name>``), with ``-quick`` appended for a quick run so that it never
    overwrites a final report. A quick run into a folder holding a final report is refused."""
    if out is None:
        base = Path(plan.section("report").get("out", f"reports/{plan.name}"))
        folder = base.with_name(base.name + "-quick") if quick else base
    else:
        folder = Path(out)
    meta = folder / "metadata.json"
    if quick and meta.is_file():
        try:
            final = json.loads(meta.read_text()).get("quick") is False
        except (OSError, ValueError):
            final = False
        if final:
            raise PlanError(
                f"{folder} holds a final (non-quick) report; a quick run would overwrite it. "
                "Give another folder (--out) or leave --out out (quick runs then go to "
                f"'<report folder>-quick').",
                key="report.out",
            )
    return folder


def run_plan(
    plan_or_path: Plan | str | Path,
    out: str | Path | None = None,
    *,
    quick: bool | None = None,
    progress: bool = True,
) -> RunResult:
    """Run an analysis plan and write its report folder.

    Parameters
    ----------
    plan_or_path : Plan, str or Path
        A plan (:func:`load_plan`) or the path of a plan file (``models/*.toml``).
    out : str or Path, optional
        The report folder. Default: the plan's ``[report] out``, else ``reports/<plan name>``;
        a quick run goes to that folder's name with ``-quick`` appended.
    quick : bool, optional
        Few draws and resamples (a smoke run). Every output then carries a "QUICK RUN" banner
        and ``metadata.json`` has ``"quick": true``. Default: the ``HTE_MRT_QUICK`` environment
        variable (``1`` means quick), else False.
    progress : bool, default True
        A progress bar over the plan's steps (and the samplers' own bars).

    Returns
    -------
    RunResult
        ``out`` (the folder), ``files`` (what was written), ``tables`` (the tidy tables, also
        saved as CSV), ``metadata`` and :meth:`RunResult.headline`.

    Raises
    ------
    PlanError
        The plan is invalid, names a column the data lack, or a quick run would overwrite a
        final report.

    Examples
    --------
    A sample-size plan (no data, fast); an MRT or CRT plan runs the same way, ``quick=True``
    for a smoke run:

    >>> import pathlib, tempfile
    >>> import hte_mrt as hm
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "size.toml").write_text('''
    ... [plan]
    ... name = "size"
    ... design = "samplesize"
    ... seed = 1
    ... [design]
    ... days = 42
    ... per_day = 5
    ... prob = 0.4
    ... availability = 0.5
    ... effect = 0.1
    ... power_table = [30, 40]
    ... ''')
    >>> res = hm.run_plan(folder / "size.toml", folder / "report", quick=True, progress=False)
    >>> sorted(p.name for p in res.out.glob("report.*"))
    ['report.html', 'report.md']
    >>> res.metadata["quick"], "QUICK RUN" in (res.out / "report.md").read_text()
    (True, True)
    >>> int(res.tables["samplesize"]["n"].iloc[0])
    34
    """
    plan = plan_or_path if isinstance(plan_or_path, Plan) else load_plan(plan_or_path)
    quick = quick_from_env() if quick is None else bool(quick)
    frame = _checked_frame(plan)  # read once: validated here, analysed below
    out = report_folder(plan, out, quick)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    meta: dict[str, Any] = {
        "plan": plan.name,
        "plan_file": str(plan.path) if plan.path else None,
        "plan_sha256": plan.sha256,
        "seed": plan.seed,
        "versions": versions(),
        "quick": quick,
    }
    if quick:
        meta["quick_note"] = "quick run: few draws and resamples; not for publication"
    if plan.estimands:
        meta["primary"] = next((e for e in plan.estimands if e.get("primary")), plan.estimands[0])[
            "name"
        ]
    if plan.kind == "mrt":
        from hte_mrt.reports.mrt_plan import run_mrt

        meta["data_sha256"] = frame_sha256(frame)
        report, tables, extra = run_mrt(plan, frame, out, meta, quick=quick, progress=progress)
    elif plan.kind == "crt":
        from hte_mrt.reports.crt_plan import run_crt

        meta["data_sha256"] = frame_sha256(frame)
        report, tables, extra = run_crt(plan, frame, out, meta, quick=quick, progress=progress)
    else:
        from hte_mrt.reports.design_plan import run_samplesize

        meta["data_sha256"] = None
        report, tables, extra = run_samplesize(plan, out, meta)
    report.quick = quick  # the banner in every output
    files = report.write(out)
    files.update(extra)
    for name, df in tables.items():
        df.to_csv(out / f"{name}.csv", index=False)
        files[f"{name}.csv"] = out / f"{name}.csv"
    meta["seconds"] = round(time.perf_counter() - t0, 2)
    # what this run wrote (not whatever else the folder holds)
    meta["files"] = sorted(
        {str(p.relative_to(out)) for p in files.values()}
        | {str(p.relative_to(out)) for p in (out / "figures").glob("*")}
        | {"metadata.json"}
    )
    meta["plan_text"] = plan.text
    (out / "metadata.json").write_text(json.dumps(meta, indent=2, default=json_default))
    files["metadata"] = out / "metadata.json"
    return RunResult(plan, out, files, tables, meta)


__all__ = [
    "HteMrtError",
    "PlanError",
    "RunResult",
    "quick_from_env",
    "report_folder",
    "run_plan",
    "validate",
    "versions",
]
