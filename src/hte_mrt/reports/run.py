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
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

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
class RunResult:
    """Where a plan's report went and its headline numbers."""

    plan: Plan
    out: Path
    files: dict[str, Path]
    tables: dict[str, pd.DataFrame]
    metadata: dict[str, Any]

    def __repr__(self) -> str:
        return f"<RunResult {self.plan.name}: {self.out}>"


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
    return pd.read_csv(p)


def validate(plan_or_path: Plan | str | Path, *, check_data: bool = True) -> Plan:
    """Load and validate a plan; with ``check_data`` also check that the data have every column
    the plan names (roles and formula variables), raising :class:`PlanError` with the key."""
    plan = plan_or_path if isinstance(plan_or_path, Plan) else load_plan(plan_or_path)
    if check_data:
        _checked_frame(plan)
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


def run_plan(
    plan_or_path: Plan | str | Path,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    progress: bool = True,
) -> RunResult:
    """Run a plan; ``quick=True`` uses few draws / resamples (for tests and smoke runs)."""
    plan = plan_or_path if isinstance(plan_or_path, Plan) else load_plan(plan_or_path)
    frame = _checked_frame(plan)  # read once: validated here, analysed below
    out = Path(out or plan.section("report").get("out", f"reports/{plan.name}"))
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


__all__ = ["HteMrtError", "PlanError", "RunResult", "run_plan", "validate", "versions"]
