"""Benchmark: distal and mediated excursion effects (``hm.dcee``, ``hm.mcee``) on MRTAnalysis'
reference data, the calls of the R reference tests (tests/test_distal.py).

Run ``python benchmarks/distal.py [--quick]`` from the repository root (the reference data are
read from ``../shared/data``, as the tests read them).

Measured
--------
1. ``dcee(data, "~ 1", "~ X + Z", learner="lm")`` on ``MRTAnalysis_data_distal_continuous.csv``
   (50 participants, 1,500 decision points): the whole call on a validated ``MRTData``
   (nuisance fits, stage 2, sandwich); median of >= 30 repeats after a warm-up. Target < 20 ms.
2. The same with cross-fitted random-forest nuisance (``learner="rf", cross_fit=5, seed=1``:
   10 forests of the package's "rf" learner, 200 trees each, leaves >= 5 rows, one thread);
   median of >= 3 repeats. Target < 3 s.
3. ``mcee(data, "M", "~ 1", "~ dp + M + X", learner="glm")`` on
   ``MRTAnalysis_data_time_varying_mediator_distal_outcome.csv`` (50 participants, 500 decision
   points): logistic p / q by R's IRLS, least-squares eta / mu / nu; median of >= 30 repeats.
   Target < 50 ms.

Each timed estimate is checked against the R reference numbers (issue 20) to 1e-7 relative
(the forest: finite). BLAS limited to 1 thread for the linear fits when threadpoolctl is
installed (small problems: multithreaded BLAS only adds overhead). Prints the figures and
PASS/FAIL per target (no asserts); writes ``benchmarks/out/distal.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import hte_mrt
import hte_mrt as hm

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional
    threadpool_limits = None

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out"

#: issue 20 (MRTAnalysis 0.3.1): estimates the timed calls must reproduce
R_DCEE = 0.4041360462
R_NDEE, R_NIEE = 0.1979866988, 0.04807046463
TARGETS = {"dcee_lm": 0.020, "dcee_rf_cf5": 3.0, "mcee_glm": 0.050}


def timeit(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": repeats,
    }


def blas_threads(n: int):
    return nullcontext() if threadpool_limits is None else threadpool_limits(limits=n)


def machine_info() -> dict[str, Any]:
    import sklearn

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "os_cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "hte_mrt": hte_mrt.__version__,
        # other processes' load: timings on a shared machine are inflated by about load / cores
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def load() -> tuple[hm.MRTData, hm.MRTData]:
    for name in (
        "MRTAnalysis_data_distal_continuous.csv",
        "MRTAnalysis_data_time_varying_mediator_distal_outcome.csv",
    ):
        if not (SHARED / name).is_file():
            sys.exit(f"reference data {SHARED / name} missing: expected ../shared/data")
    d = pd.read_csv(SHARED / "MRTAnalysis_data_distal_continuous.csv")
    distal = hm.MRTData(
        d, id="userid", time="dp", treatment="A", outcome="Y", prob="prob_A", availability="avail"
    )
    m = pd.read_csv(SHARED / "MRTAnalysis_data_time_varying_mediator_distal_outcome.csv")
    med = hm.MRTData(
        m, id="id", time="dp", treatment="A", outcome="Y", prob="p_A", availability="I"
    )
    return distal, med


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats (a smoke run)")
    args = ap.parse_args(argv)
    fast_reps, rf_reps = (5, 1) if args.quick else (30, 3)
    distal, med = load()

    def dcee_lm():
        return hm.dcee(distal, "~ 1", "~ X + Z", learner="lm")

    def dcee_rf():
        return hm.dcee(distal, "~ 1", "~ X + Z", learner="rf", cross_fit=5, seed=1)

    def mcee_glm():
        return hm.mcee(med, "M", "~ 1", "~ dp + M + X", learner="glm")

    checks = {}
    est = float(dcee_lm().theta[0])
    checks["dcee_lm"] = {"estimate": est, "r": R_DCEE, "ok": abs(est / R_DCEE - 1) < 1e-7}
    rf = float(dcee_rf().theta[0])
    checks["dcee_rf_cf5"] = {"estimate": rf, "ok": bool(np.isfinite(rf))}
    th = mcee_glm().theta
    checks["mcee_glm"] = {
        "ndee": float(th[0]),
        "niee": float(th[1]),
        "ok": abs(th[0] / R_NDEE - 1) < 1e-7 and abs(th[1] / R_NIEE - 1) < 1e-7,
    }

    timings = {}
    with blas_threads(1):
        timings["dcee_lm"] = timeit(dcee_lm, fast_reps)
        timings["mcee_glm"] = timeit(mcee_glm, fast_reps)
    timings["dcee_rf_cf5"] = timeit(dcee_rf, rf_reps, warmup=0)

    labels = {
        "dcee_lm": 'dcee "~ 1", controls "~ X + Z", lm (50 x 30 rows)',
        "dcee_rf_cf5": "dcee, random forest, cross_fit = 5 (10 forests)",
        "mcee_glm": 'mcee "~ 1", controls "~ dp + M + X", glm (50 x 10 rows)',
    }
    busy = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"hte_mrt {hte_mrt.__version__}, {os.cpu_count()} CPUs{busy}\n")
    print(f"{'call':58s} {'median':>10s} {'target':>9s}  result  matches R")
    result: dict[str, Any] = {"machine": machine_info(), "quick": args.quick, "results": {}}
    for k, label in labels.items():
        med_s = timings[k]["median_s"]
        ok = med_s < TARGETS[k]
        unit = (lambda s: f"{1e3 * s:8.2f} ms") if TARGETS[k] < 1 else (lambda s: f"{s:8.3f} s ")
        print(
            f"{label:58s} {unit(med_s):>10s} {unit(TARGETS[k]):>9s}  "
            f"{'PASS' if ok else 'FAIL':6s}  {'yes' if checks[k]['ok'] else 'NO'}"
        )
        result["results"][k] = {
            "label": label,
            **timings[k],
            "target_s": TARGETS[k],
            "pass": ok,
            "check": checks[k],
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "distal.json").write_text(json.dumps(result, indent=2, default=float))
    print(f"\nWrote {OUT / 'distal.json'}")
    return result


if __name__ == "__main__":
    main()
