"""Benchmark: the full BayesMRT pipeline (collapsed model, nutpie) vs bambi, and at scale.

Run ``python benchmarks/bayes_mrt.py [--quick] [--skip-6m]`` from the repository root.
Every contender runs in its own fresh Python process (``--worker``), so each timed pipeline pays
its own numba / pytensor compilation exactly as a user's script does, and peak memory
(``ru_maxrss``) is isolated per contender. 4 chains x 1000 draws, tune 1000, fixed seeds.

What is timed ("pipeline", wall clock, compilation included; imports reported separately)
-----------------------------------------------------------------------------------------
ours   ``MRTData(frame, ...)`` + ``BayesMRT(moderators, controls, sampler="nutpie").fit(data)``
       (design, sufficient statistics, PyMC model, nutpie compilation, sampling, random-effect
       draws, convergence check). The time split comes from timers wrapped (in the worker only)
       around build_design, collapsed_stats / packed_data, BayesMRT.build, nutpie's
       ``_make_functions`` (pytensor graph -> numba), ``numba.cfunc`` (logp / expand),
       ``nutpie.sample``, ``pymc.sample``, ``posterior_result`` and ``warn_if_unreliable``.
bambi  available rows + centred treatment ``At = A - prob`` (pandas) + ``bmb.Model(...)`` +
       ``.fit()`` with bambi's default sampler (PyMC NUTS, ``cores`` default) and with
       ``inference_method="nutpie"``.

Sections
--------
1. 60 participants x 112 decisions, 6 clusters (participant + cluster random intercepts),
   moderators = controls = ``"~ tfrac + S"``; bambi formula
   ``y ~ tfrac + S + At + At:tfrac + At:S + (1|id) + (1|cluster)``. Reports wall time, min bulk
   ESS over the three effect coefficients, ESS/s (min ESS / pipeline wall time), max R-hat,
   divergences, the ours/bambi ESS/s ratio and the agreement of the posterior means.
   Targets: ours < 10 s; ESS/s >= 10 x bambi's (both bambi samplers).
   Extra rows (no target): a second fit in the same process (warm numba state) and a first fit
   with empty numba / pytensor caches (the first run after installing).
2. 2,000 x 300 (600k rows), participant random intercept only. Targets: < 30 s,
   bulk ESS >= 1000 for every beta, R-hat <= 1.01 (alpha, beta, sigma, sd_b).
3. 20,000 x 300 (6M rows; ``--skip-6m`` skips). The data are simulated (MRTSimulation) in one
   process and saved as .npy columns; a second process loads them (timed apart: a user loads
   data) and runs the pipeline. Targets: < 90 s, peak RSS < 8 GB (``ru_maxrss`` of that process,
   which includes the loaded data and the imported libraries).

The frame handed to MRTData / bambi holds only the columns a user would load:
id, cluster, t, tfrac, A, prob, avail, S, y. Writes ``benchmarks/out/bayes_mrt.json`` and
``benchmarks/out/bayes_mrt.png``. ``--profile JOB`` runs one job under cProfile instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
HERE = Path(__file__).resolve()

DRAWS = TUNE = 1000
CHAINS = 4
FIT_SEED = 2026
MODERATORS = CONTROLS = "~ tfrac + S"
BAMBI_FORMULA = "y ~ tfrac + S + At + At:tfrac + At:S + (1|id) + (1|cluster)"
BAMBI_EFFECTS = ["At", "At:tfrac", "At:S"]
USER_COLUMNS = ["id", "cluster", "t", "tfrac", "A", "prob", "avail", "S", "y"]

SIZES = {
    "s1": dict(n=60, T=112, K=6, sd_cluster=0.3, seed=11),
    "s2": dict(n=2000, T=300, K=1, sd_cluster=0.0, seed=12),
    "s3": dict(n=20000, T=300, K=1, sd_cluster=0.0, seed=13),
}
QUICK_SIZES = {
    "s1": SIZES["s1"],
    "s2": dict(n=500, T=300, K=1, sd_cluster=0.0, seed=12),
    "s3": dict(n=2000, T=300, K=1, sd_cluster=0.0, seed=13),
}
TARGET_S1_S = 10.0
TARGET_S1_RATIO = 10.0
TARGET_S2_S = 30.0
TARGET_S2_ESS = 1000.0
TARGET_RHAT = 1.01
TARGET_S3_S = 90.0
TARGET_S3_GB = 8.0
AGREE_SD = 0.1

GROUPS = [  # (label, phases whose *self* time it sums): the groups add up to the pipeline time
    ("MRTData", ["MRTData"]),
    ("design", ["build_design"]),
    ("suff.stats", ["collapsed_stats", "packed_data"]),
    ("PyMC model", ["BayesMRT.build"]),
    ("pt->numba", ["nutpie.compile_pymc_model", "nutpie _make_functions"]),
    ("cfunc compile", ["numba.cfunc logp", "numba.cfunc expand"]),
    ("sampling", ["nutpie.sample"]),
    ("from_fit", ["posterior_result"]),
    ("other", ["warn_if_unreliable", "pymc.sample", "fit"]),
]
GROUP_HELP = (
    "MRTData = MRTData(frame, ...); design = build_design; suff.stats = collapsed_stats + "
    "packed_data; PyMC model = rest of BayesMRT.build (priors, graph); pt->numba = nutpie's "
    "compile_pymc_model except the cfuncs (graph rewrites, pytensor functions in NUMBA mode); "
    "cfunc compile = numba.cfunc of "
    "nutpie's logp and expand functions (not cacheable: dynamic globals); sampling = "
    "nutpie.sample; from_fit = estimators.bayes.posterior.posterior_result (exact random-effect "
    "draws, participant "
    "effects); other = pm.sample glue (step assignment, idata conversion) + convergence check"
)


# ------------------------------------------------------------------------ timers and memory
def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class Phases:
    """Nested wall-clock timers with *self* times, and a thread polling RSS per phase."""

    def __init__(self, poll_s: float = 0.01) -> None:
        self.self_s: dict[str, float] = defaultdict(float)
        self.incl_s: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.rss_peak: dict[str, int] = defaultdict(int)
        self.stack: list[list] = []  # [name, child seconds]
        self._patches: list[tuple[Any, str, Any]] = []
        self.missing: list[str] = []
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            name = self.stack[-1][0] if self.stack else "(outside)"
            r = rss_bytes()
            if r > self.rss_peak[name]:
                self.rss_peak[name] = r
            self._stop.wait(self._poll_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.restore()

    @contextmanager
    def __call__(self, name: str):
        frame = [name, 0.0]
        self.stack.append(frame)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.stack.pop()
            self.self_s[name] += dt - frame[1]
            self.incl_s[name] += dt
            self.calls[name] += 1
            if self.stack:
                self.stack[-1][1] += dt

    def wrap(self, obj: Any, attr: str, name: str) -> None:
        original = getattr(obj, attr, None)
        if original is None:  # the package moved on: time what remains, say what is not split
            self.missing.append(name)
            return

        def timed(*args, **kwargs):
            with self(name):
                return original(*args, **kwargs)

        self._patches.append((obj, attr, original))
        setattr(obj, attr, timed)

    def wrap_cfunc(self) -> None:
        """nutpie compiles the logp and the expand function with ``numba.cfunc(sig)(fn)``."""
        import numba

        original = numba.cfunc
        count = [0]

        def cfunc(*args, **kwargs):
            dec = original(*args, **kwargs)

            def compile_(fn):
                count[0] += 1
                name = "numba.cfunc logp" if count[0] % 2 == 1 else "numba.cfunc expand"
                with self(name):
                    return dec(fn)

            return compile_

        self._patches.append((numba, "cfunc", original))
        numba.cfunc = cfunc

    def restore(self) -> None:
        for obj, attr, original in reversed(self._patches):
            setattr(obj, attr, original)
        self._patches.clear()

    def reset(self) -> None:
        for d in (self.self_s, self.incl_s, self.calls, self.rss_peak):
            d.clear()

    def report(self) -> dict[str, Any]:
        return {
            "self_s": dict(self.self_s),
            "inclusive_s": dict(self.incl_s),
            "calls": dict(self.calls),
            "rss_peak_gb": {k: v / 1e9 for k, v in self.rss_peak.items()},
            "not_instrumented": list(self.missing),
        }


def instrument_ours(ph: Phases) -> None:
    import nutpie
    import nutpie.compile_pymc
    import pymc

    import hte_mrt.estimators.bayes._nutpie as cnut
    import hte_mrt.estimators.bayes.collapsed as col
    import hte_mrt.estimators.bayes.model as mdl
    import hte_mrt.estimators.bayes.posterior as bpost
    from hte_mrt.results.bayes import BayesResult

    ph.wrap(mdl, "build_design", "build_design")
    ph.wrap(col, "collapsed_stats", "collapsed_stats")
    ph.wrap(col, "packed_data", "packed_data")
    ph.wrap(mdl.BayesMRT, "_build", "BayesMRT.build")
    ph.wrap(cnut, "compile_c", "compile_c (PyTensor C backend)")
    ph.wrap(nutpie, "compile_pymc_model", "nutpie.compile_pymc_model")
    ph.wrap(nutpie.compile_pymc, "_make_functions", "nutpie _make_functions")
    ph.wrap_cfunc()
    ph.wrap(nutpie, "sample", "nutpie.sample")
    ph.wrap(pymc, "sample", "pymc.sample")
    ph.wrap(BayesResult, "warn_if_unreliable", "warn_if_unreliable")
    ph.wrap(bpost, "posterior_result", "posterior_result")


# -------------------------------------------------------------------------------- data
def simulate_frame(size: dict):
    from hte_mrt.data.simulate import MRTSimulation

    sim = MRTSimulation(
        n_participants=size["n"],
        n_decisions=size["T"],
        sd_participant=0.5,
        sd_cluster=size["sd_cluster"],
        n_clusters=size["K"],
    )
    return sim.simulate(size["seed"])[USER_COLUMNS]


def make_mrtdata(df, clusters: bool):
    from hte_mrt import MRTData

    return MRTData(
        df,
        id="id",
        time="t",
        treatment="A",
        outcome="y",
        prob="prob",
        availability="avail",
        cluster="cluster" if clusters else None,
    )


def effect_stats(da) -> dict[str, Any]:
    """mean, sd, bulk ESS, R-hat of a (chain, draw, term) DataArray or a dict of (chain, draw)."""
    import arviz as az
    import numpy as np
    import xarray as xr

    ds = da.to_dataset(name="v") if isinstance(da, xr.DataArray) else da
    ess = az.ess(ds, method="bulk")
    rhat = az.rhat(ds)
    out = {"terms": [], "mean": [], "sd": [], "ess_bulk": [], "r_hat": []}
    for v in ds.data_vars:
        x = ds[v].values
        x = x.reshape(x.shape[0] * x.shape[1], -1)
        terms = [str(t) for t in ds[v]["term"].values] if "term" in ds[v].dims else [str(v)]
        out["terms"] += terms
        out["mean"] += x.mean(axis=0).tolist()
        out["sd"] += x.std(axis=0, ddof=1).tolist()
        out["ess_bulk"] += np.atleast_1d(ess[v].values).tolist()
        out["r_hat"] += np.atleast_1d(rhat[v].values).tolist()
    return out


def sampling_seconds(post, ph: Phases) -> float:
    """Time inside nutpie.sample (our timer) or else the sampler's own ``sampling_time``."""
    if "nutpie.sample" in ph.incl_s:
        return ph.incl_s["nutpie.sample"]
    return float(post.attrs.get("sampling_time", "nan"))


def step_stats(idata, sampling_s: float, job: dict) -> dict[str, float]:
    """Mean leapfrog steps per draw and gradient evaluations per second of sampling.

    Tuning iterations are assumed to take as many steps as the kept draws (nutpie does not keep
    its warm-up statistics by default), so the rate is approximate.
    """
    ss = idata["sample_stats"].to_dataset()
    n = float(ss["n_steps"].mean())
    total = n * CHAINS * (job["draws"] + job["tune"])
    return {"mean_n_steps": n, "grad_evals_per_s": total / sampling_s}


def cache_env(tmp: Path) -> dict[str, str]:
    """Environment with empty numba and pytensor caches (first run after installing)."""
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = str(tmp / "numba")
    flags = env.get("PYTENSOR_FLAGS", "")
    env["PYTENSOR_FLAGS"] = ",".join(f for f in [flags, f"base_compiledir={tmp / 'pt'}"] if f)
    return env


# ------------------------------------------------------------------------------ workers
def worker_ours(job: dict) -> dict[str, Any]:
    t0 = time.perf_counter()
    import nutpie  # noqa: F401  (imported by fit anyway; timed here as part of the imports)
    import pymc  # noqa: F401

    from hte_mrt.estimators.bayes.model import BayesMRT

    import_s = time.perf_counter() - t0
    res: dict[str, Any] = {"import_s": import_s, "rss_after_import_gb": rss_bytes() / 1e9}

    size = job["size"]
    t0 = time.perf_counter()
    if job.get("npy_dir"):
        import numpy as np
        import pandas as pd

        d = Path(job["npy_dir"])
        df = pd.DataFrame({c: np.load(d / f"{c}.npy") for c in USER_COLUMNS})
        res["load_s"] = time.perf_counter() - t0
    else:
        df = simulate_frame(size)
        res["simulate_s"] = time.perf_counter() - t0
    res["rows"] = len(df)
    res["frame_gb"] = float(df.memory_usage(deep=True).sum()) / 1e9
    res["rss_before_pipeline_gb"] = rss_bytes() / 1e9
    res["maxrss_before_pipeline_gb"] = maxrss_bytes() / 1e9

    ph = Phases()
    instrument_ours(ph)
    ph.start()
    clusters = size["K"] > 1
    fit_kw = dict(
        draws=job["draws"], tune=job["tune"], chains=CHAINS, seed=FIT_SEED, sampler="nutpie",
        progress=False,
    )  # fmt: skip
    model = BayesMRT(MODERATORS, CONTROLS, **fit_kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        with ph("MRTData"):
            data = make_mrtdata(df, clusters)
        with ph("fit"):
            result = model.fit(data)
        wall = time.perf_counter() - t0
    res["pipeline_s"] = wall
    res["maxrss_gb"] = maxrss_bytes() / 1e9
    res["phases"] = ph.report()
    res["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    res["sampling_time_attr_s"] = sampling_seconds(result.posterior, ph)
    res["steps"] = step_stats(result.idata, res["sampling_time_attr_s"], job)
    res["n_available"] = int(result.meta["n_rows"])
    res["effects"] = effect_stats(result.posterior["beta"])
    diag = result.diagnostics()
    res["diagnostics"] = {k: v for k, v in diag.items() if k != "messages"}
    res["diagnostic_messages"] = diag["messages"]
    res["summary"] = result.table().to_dict(orient="list")

    if job.get("refit"):  # a second fit in the same process: numba's in-process state is warm
        ph.reset()
        t0 = time.perf_counter()
        with ph("MRTData"):
            data = make_mrtdata(df, clusters)
        with ph("fit"):
            result2 = model.fit(data)
        wall2 = time.perf_counter() - t0
        samp2 = sampling_seconds(result2.posterior, ph)
        res["refit"] = {
            "pipeline_s": wall2,
            "import_s": 0.0,
            "maxrss_gb": maxrss_bytes() / 1e9,
            "phases": ph.report(),
            "sampling_time_attr_s": samp2,
            "steps": step_stats(result2.idata, samp2, job),
            "effects": effect_stats(result2.posterior["beta"]),
            "diagnostics": result2.diagnostics(),
        }
    ph.stop()
    return res


def worker_bambi(job: dict) -> dict[str, Any]:
    t0 = time.perf_counter()
    import bambi as bmb

    import_s = time.perf_counter() - t0
    res: dict[str, Any] = {"import_s": import_s, "bambi": bmb.__version__}
    df = simulate_frame(job["size"])
    res["rows"] = len(df)
    ph = Phases()
    if job["method"] == "nutpie":
        import nutpie
        import nutpie.compile_pymc

        ph.wrap(nutpie, "compile_pymc_model", "nutpie.compile_pymc_model")
        ph.wrap(nutpie.compile_pymc, "_make_functions", "nutpie _make_functions")
        ph.wrap_cfunc()
        ph.wrap(nutpie, "sample", "nutpie.sample")
    ph.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        with ph("data: available rows + At"):
            sub = df.loc[df["avail"] == 1].copy()
            sub["At"] = sub["A"] - sub["prob"]
        with ph("bmb.Model"):
            model = bmb.Model(BAMBI_FORMULA, sub)
        with ph("fit"):
            idata = model.fit(
                draws=job["draws"],
                tune=job["tune"],
                chains=CHAINS,
                random_seed=FIT_SEED,
                inference_method=job["method"],
                progressbar=False,
            )
        wall = time.perf_counter() - t0
    ph.stop()
    res["pipeline_s"] = wall
    res["maxrss_gb"] = maxrss_bytes() / 1e9
    res["phases"] = ph.report()
    res["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    post = idata["posterior"].to_dataset()
    res["sampling_time_attr_s"] = sampling_seconds(post, ph)
    res["steps"] = step_stats(idata, res["sampling_time_attr_s"], job)
    res["n_available"] = len(sub)
    res["effects"] = effect_stats(post[BAMBI_EFFECTS])
    main = [v for v in post.data_vars if not any(d.endswith("__factor_dim") for d in post[v].dims)]
    allstats = effect_stats(post[main])
    ss = idata["sample_stats"].to_dataset()
    res["diagnostics"] = {
        "divergences": int(ss["diverging"].sum()),
        "max_r_hat": max(allstats["r_hat"]),
        "min_ess_bulk": min(allstats["ess_bulk"]),
        "parameters": main,
    }
    return res


def worker_generate(job: dict) -> dict[str, Any]:
    import numpy as np

    t0 = time.perf_counter()
    df = simulate_frame(job["size"])
    sim_s = time.perf_counter() - t0
    d = Path(job["npy_dir"])
    for c in USER_COLUMNS:
        np.save(d / f"{c}.npy", df[c].to_numpy())
    return {
        "simulate_s": sim_s,
        "write_s": time.perf_counter() - t0 - sim_s,
        "rows": len(df),
        "maxrss_gb": maxrss_bytes() / 1e9,
        "frame_gb": float(df.memory_usage(deep=True).sum()) / 1e9,
    }


def worker_imports(job: dict) -> dict[str, Any]:
    t0 = time.perf_counter()
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    t1 = time.perf_counter()
    if job["what"] == "ours":
        import nutpie  # noqa: F401
        import pymc  # noqa: F401

        import hte_mrt  # noqa: F401
        from hte_mrt import MRTData  # noqa: F401
        from hte_mrt.estimators.bayes.model import BayesMRT  # noqa: F401
    else:
        import bambi  # noqa: F401
    t2 = time.perf_counter()
    return {"numpy_pandas_s": t1 - t0, "import_s": t2 - t1}


WORKERS = {
    "ours": worker_ours,
    "bambi": worker_bambi,
    "generate": worker_generate,
    "imports": worker_imports,
}


def run_worker(job: dict, env: dict | None = None, verbose: bool = False) -> dict[str, Any]:
    """Run ``job`` in a fresh interpreter; returns its result (or an ``error`` entry)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [sys.executable, str(HERE), "--worker", json.dumps(job), "--result", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if verbose or proc.returncode:
        sys.stdout.write(proc.stdout[-4000:])
        sys.stdout.write(proc.stderr[-4000:])
    if proc.returncode:
        out.unlink(missing_ok=True)
        return {"error": f"worker exited {proc.returncode}", "stderr": proc.stderr[-4000:]}
    res = json.loads(out.read_text())
    out.unlink(missing_ok=True)
    res["process_s"] = elapsed
    return res


# ------------------------------------------------------------------------------ summary
def split(res: dict) -> dict[str, float]:
    """Pipeline time grouped as in GROUPS (self times, so the groups add up to the total)."""
    self_s = res["phases"]["self_s"]
    return {label: sum(self_s.get(p, 0.0) for p in names) for label, names in GROUPS}


def row_of(label: str, res: dict, ours: bool) -> dict[str, Any]:
    eff = res["effects"]
    ess = min(eff["ess_bulk"])
    d = res["diagnostics"]
    return {
        "contender": label,
        "ours": ours,
        "pipeline_s": res["pipeline_s"],
        "sampling_s": res["sampling_time_attr_s"],
        "import_s": res["import_s"],
        "min_ess_effects": ess,
        "ess_per_s": ess / res["pipeline_s"],
        "ess_per_s_sampling": ess / res["sampling_time_attr_s"],
        "n_steps": res["steps"]["mean_n_steps"],
        "grads_per_s": res["steps"]["grad_evals_per_s"],
        "max_r_hat_effects": max(eff["r_hat"]),
        "max_r_hat_all": d["max_r_hat"],
        "divergences": d["divergences"],
        "maxrss_gb": res["maxrss_gb"],
    }


def fmt_table(rows: list[dict], cols: list[tuple[str, str, str]]) -> str:
    heads = [h for _, h, _ in cols]

    def cell(v, f):
        if isinstance(v, float):
            return "-" if v != v else format(v, f)
        return str(v)

    cells = [[cell(r[k], f) for k, _, f in cols] for r in rows]
    w = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w[i]) if i else h.ljust(w[i]) for i, h in enumerate(heads))]
    lines.append("-" * len(lines[0]))
    for c in cells:
        lines.append("  ".join(x.rjust(w[i]) if i else x.ljust(w[i]) for i, x in enumerate(c)))
    return "\n".join(lines)


def phase_table(res: dict) -> str:
    ph = res["phases"]
    lines = [f"    {'phase (self time)':<28} {'s':>8} {'peak RSS GB':>12}"]
    order = [p for _, names in GROUPS for p in names]
    for p in order + [p for p in ph["self_s"] if p not in order]:
        if p in ph["self_s"]:
            rss = ph["rss_peak_gb"].get(p)
            rss_s = "-" if rss is None else f"{rss:.2f}"
            lines.append(f"    {p:<28} {ph['self_s'][p]:8.2f} {rss_s:>12}")
    if ph.get("not_instrumented"):
        lines.append(f"    (not found, so not split out: {', '.join(ph['not_instrumented'])})")
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    import importlib.metadata as md

    vers = {}
    for p in ("hte_mrt", "pymc", "pytensor", "nutpie", "numba", "numpy", "pandas", "arviz",
              "bambi", "formulae"):  # fmt: skip
        try:
            vers[p] = md.version(p)
        except md.PackageNotFoundError:
            vers[p] = None
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "os_cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "mem_total_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9,
        "versions": vers,
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1, 1.6, 1]})
    # (a) ESS/s, section 1
    rows = result["section1"]["rows"]
    ax = axes[0]
    names = [r["contender"] for r in rows]
    vals = [r["ess_per_s"] for r in rows]
    colors = ["tab:blue" if r["ours"] else "tab:gray" for r in rows]
    ax.barh(names[::-1], vals[::-1], color=colors[::-1])
    for y, v in enumerate(vals[::-1]):
        ax.text(v, y, f" {v:.0f}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("min bulk ESS (effects) / pipeline s (log)")
    ax.set_title("1. 60 x 112, 6 clusters: ESS per second", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    # (b) stacked time split of our runs
    ax = axes[1]
    runs = [(k, v) for k, v in result["splits"].items()]
    left = [0.0] * len(runs)
    cmap = plt.get_cmap("tab10")
    for gi, (label, _) in enumerate(GROUPS):
        w = [s.get(label, 0.0) for _, s in runs]
        ax.barh([k for k, _ in runs], w, left=left, color=cmap(gi), label=label)
        left = [a + b for a, b in zip(left, w, strict=True)]
    for y, (k, _) in enumerate(runs):
        tgt = result["split_targets"].get(k)
        if tgt:
            ax.plot([tgt, tgt], [y - 0.4, y + 0.4], color="tab:red", ls="--", lw=1.5)
        ax.text(left[y], y, f" {left[y]:.1f} s", va="center", fontsize=7)
    ax.set_xlabel("seconds (red dashes: targets)")
    ax.set_title("BayesMRT pipeline time split (compilation included)", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    ax.tick_params(axis="y", labelsize=7)
    # (c) memory
    ax = axes[2]
    mem = result.get("memory_rows", [])
    if mem:
        ax.barh([m[0] for m in mem][::-1], [m[1] for m in mem][::-1], color="tab:purple")
        ax.axvline(TARGET_S3_GB, color="tab:red", ls="--", lw=1, label=f"target {TARGET_S3_GB} GB")
        ax.legend(fontsize=7)
    ax.set_xlabel("peak RSS, GB")
    ax.set_title("3. peak RSS, 6M rows (polled per phase)", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 draws/tune, small 2/3")
    ap.add_argument("--skip-6m", action="store_true", help="skip section 3 (6 million rows)")
    ap.add_argument("--no-cold", action="store_true", help="skip the empty-cache extra row")
    ap.add_argument("--verbose", action="store_true", help="show the workers' output")
    ap.add_argument("--profile", metavar="JOB", help="cProfile one job: s1, s2 or s3, then exit")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        job = json.loads(args.worker)
        if job.get("profile"):
            import cProfile
            import pstats

            prof = cProfile.Profile()
            res = prof.runcall(WORKERS[job["kind"]], job)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(60)
        else:
            res = WORKERS[job["kind"]](job)
        Path(args.result).write_text(json.dumps(res, default=float))
        return 0

    draws = tune = 200 if args.quick else DRAWS
    sizes = QUICK_SIZES if args.quick else SIZES
    base = {"draws": draws, "tune": tune}
    tmp = Path(tempfile.mkdtemp(prefix="bayes_mrt_bench_"))
    try:
        if args.profile:
            job = {"kind": "ours", "size": sizes[args.profile], "profile": True, **base}
            if args.profile == "s3":
                job["npy_dir"] = str(tmp)
                print(run_worker({"kind": "generate", "size": sizes["s3"], "npy_dir": str(tmp)}))
            res = run_worker(job, verbose=True)
            print(json.dumps({k: res.get(k) for k in ("pipeline_s", "maxrss_gb")}))
            print(phase_table(res) if "phases" in res else res)
            return 0
        return run_all(args, sizes, base, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_all(args, sizes: dict, base: dict, tmp: Path) -> int:
    info = machine_info()
    v = info["versions"]
    print(
        f"Machine: {info['platform']}; {info['os_cpu_count']} CPUs (affinity "
        f"{info['affinity_cpus']}), {info['mem_total_gb']:.0f} GB; python {info['python']}; "
        f"pymc {v['pymc']}, pytensor {v['pytensor']}, nutpie {v['nutpie']}, numba {v['numba']}, "
        f"bambi {v['bambi']}, numpy {v['numpy']}, pandas {v['pandas']}"
    )
    print(
        f"Settings: {CHAINS} chains x {base['draws']} draws, tune {base['tune']}, seed "
        f"{FIT_SEED}; each contender in a fresh process{' [--quick]' if args.quick else ''}\n"
    )
    verbose = args.verbose
    result: dict[str, Any] = {"quick": args.quick, "machine": info, "settings": {
        "chains": CHAINS, **base, "seed": FIT_SEED, "moderators": MODERATORS,
        "controls": CONTROLS, "bambi_formula": BAMBI_FORMULA, "sizes": sizes,
    }}  # fmt: skip
    targets: list[dict[str, Any]] = []
    splits: dict[str, dict[str, float]] = {}
    split_targets: dict[str, float] = {}

    # ---------------------------------------------------------------- imports
    imp = {w: run_worker({"kind": "imports", "what": w}) for w in ("ours", "bambi")}
    result["imports"] = imp
    print(
        f"Import time (fresh process, after numpy+pandas): hte_mrt + pymc + nutpie "
        f"{imp['ours']['import_s']:.2f} s; bambi (+ pymc) {imp['bambi']['import_s']:.2f} s "
        "(not included in the pipeline times below)\n"
    )

    # ---------------------------------------------------------------- section 1
    s1 = sizes["s1"]
    print(f"[1] {s1['n']} participants x {s1['T']} decisions, {s1['K']} clusters ...", flush=True)
    ours = run_worker({"kind": "ours", "size": s1, "refit": True, **base}, verbose=verbose)
    jobs = {"ours": ours}
    for m in ("pymc", "nutpie"):
        jobs[f"bambi-{m}"] = run_worker(
            {"kind": "bambi", "size": s1, "method": m, **base}, verbose=verbose
        )
    if not args.no_cold:
        (tmp / "cold").mkdir()
        jobs["ours-cold"] = run_worker(
            {"kind": "ours", "size": s1, **base}, env=cache_env(tmp / "cold"), verbose=verbose
        )
    for k, r in jobs.items():
        if "error" in r:
            print(f"  {k}: ERROR {r['error']}\n{r['stderr']}")
    rows = [row_of("hte_mrt BayesMRT (collapsed, nutpie)", ours, True)]
    ref = rows[0]["ess_per_s"]
    labels = {
        "bambi-pymc": "bambi, default sampler (PyMC NUTS)",
        "bambi-nutpie": "bambi, inference_method='nutpie'",
    }
    for k, lab in labels.items():
        if "error" not in jobs[k]:
            rows.append(row_of(lab, jobs[k], False))
    rows.append(row_of("  extra: 2nd fit, same process", ours["refit"], True))
    if "ours-cold" in jobs and "error" not in jobs["ours-cold"]:
        rows.append(
            row_of("  extra: 1st fit, empty numba/pytensor caches", jobs["ours-cold"], True)
        )
    for r in rows:
        r["ratio_ess_per_s"] = ref / r["ess_per_s"]
    cols = [
        ("contender", "contender", ""),
        ("pipeline_s", "wall s", ".2f"),
        ("sampling_s", "sampling s", ".2f"),
        ("import_s", "import s", ".2f"),
        ("min_ess_effects", "min ESS", ".0f"),
        ("ess_per_s", "ESS/s", ".1f"),
        ("ratio_ess_per_s", "ours/this", ".1f"),
        ("max_r_hat_effects", "R-hat eff", ".4f"),
        ("max_r_hat_all", "R-hat all", ".4f"),
        ("divergences", "div", "d"),
        ("n_steps", "steps/draw", ".1f"),
        ("grads_per_s", "grad/s", ".0f"),
    ]
    print(fmt_table(rows, cols))
    print(
        "  wall s = pipeline (data prep/MRTData + model + compile + sampling + post-processing);"
        " sampling s = the sampler's own sampling_time; ESS = min bulk ESS over the 3 effect"
        " coefficients; ours/this = our ESS/s divided by this row's; R-hat all = fixed effects"
        " and variance parameters; steps/draw = mean leapfrog steps per draw; grad/s ="
        " gradient evaluations per second of sampling (all chains, tuning assumed alike)."
    )
    # agreement of the posterior means
    agree = {}
    print("\n  Posterior means of the effect coefficients (sd):")
    oe = ours["effects"]
    head = f"    {'term':<10} {'ours':>18}"
    comps = [k for k in labels if "error" not in jobs[k]]
    head += "".join(f" {k:>18} {'|diff|/sd':>9} {'MCSE':>6}" for k in comps)
    print(head)
    worst = 0.0
    mcse_max = 0.0
    for j, term in enumerate(oe["terms"]):
        line = f"    {term:<10} {oe['mean'][j]:>9.4f} ({oe['sd'][j]:.4f})"
        for k in comps:
            be = jobs[k]["effects"]
            dz = abs(oe["mean"][j] - be["mean"][j]) / be["sd"][j]
            # Monte Carlo standard error of that difference, in the same units
            mc = (
                oe["sd"][j] ** 2 / oe["ess_bulk"][j] + be["sd"][j] ** 2 / be["ess_bulk"][j]
            ) ** 0.5 / be["sd"][j]
            worst = max(worst, dz)
            mcse_max = max(mcse_max, mc)
            agree.setdefault(k, []).append({"diff_over_sd": dz, "mcse": mc})
            line += f" {be['mean'][j]:>9.4f} ({be['sd'][j]:.4f}) {dz:>9.3f} {mc:>6.3f}"
        print(line + f"   [{BAMBI_EFFECTS[j]}]")
    print(
        f"  max |mean_ours - mean_bambi| / sd_bambi = {worst:.3f} -> "
        f"{'OK' if worst <= AGREE_SD else 'DIFFERENT'} (tolerance {AGREE_SD}; MCSE = Monte "
        f"Carlo standard error of the difference from both chains' bulk ESS, max {mcse_max:.3f})"
    )
    print("\n  Time split of ours (first fit in a fresh process):")
    print(phase_table(ours))
    splits["1. 60x112 ours"] = split(ours)
    split_targets["1. 60x112 ours"] = TARGET_S1_S
    if "ours-cold" in jobs and "error" not in jobs["ours-cold"]:
        splits["1. 60x112 ours, empty caches"] = split(jobs["ours-cold"])
    targets.append({
        "target": f"1. ours pipeline < {TARGET_S1_S:g} s (compilation included)",
        "value": f"{ours['pipeline_s']:.2f} s", "pass": ours["pipeline_s"] < TARGET_S1_S,
    })  # fmt: skip
    for r in rows[1:3]:
        targets.append({
            "target": f"1. ESS/s >= {TARGET_S1_RATIO:g} x {r['contender']}",
            "value": f"{r['ratio_ess_per_s']:.1f} x",
            "pass": r["ratio_ess_per_s"] >= TARGET_S1_RATIO,
        })  # fmt: skip
    targets.append({
        "target": f"1. posterior means agree (|diff| <= {AGREE_SD} sd)",
        "value": f"{worst:.3f} sd", "pass": worst <= AGREE_SD,
    })  # fmt: skip
    result["section1"] = {"rows": rows, "jobs": jobs, "agreement_diff_over_sd": agree}

    # ---------------------------------------------------------------- section 2
    s2 = sizes["s2"]
    print(f"\n[2] {s2['n']:,} participants x {s2['T']} decisions ...", flush=True)
    r2 = run_worker({"kind": "ours", "size": s2, **base}, verbose=verbose)
    if "error" in r2:
        print(f"  ERROR {r2['error']}\n{r2['stderr']}")
    else:
        summarize_big(r2, "2")
        sp = split(r2)
        splits[f"2. {s2['n']}x{s2['T']} ours"] = sp
        split_targets[f"2. {s2['n']}x{s2['T']} ours"] = TARGET_S2_S
        ess = min(r2["effects"]["ess_bulk"])
        rh = r2["diagnostics"]["max_r_hat"]
        targets += [
            {"target": f"2. pipeline < {TARGET_S2_S:g} s", "value": f"{r2['pipeline_s']:.2f} s",
             "pass": r2["pipeline_s"] < TARGET_S2_S},
            {"target": f"2. bulk ESS >= {TARGET_S2_ESS:g} for every beta",
             "value": f"min {ess:.0f}", "pass": ess >= TARGET_S2_ESS},
            {"target": f"2. R-hat <= {TARGET_RHAT} (alpha, beta, sigma, sd_b)",
             "value": f"{rh:.4f}", "pass": rh <= TARGET_RHAT},
        ]  # fmt: skip
    result["section2"] = r2

    # ---------------------------------------------------------------- section 3
    mem_rows = []
    if not args.skip_6m:
        s3 = sizes["s3"]
        print(f"\n[3] {s3['n']:,} participants x {s3['T']} decisions ...", flush=True)
        npy = tmp / "s3"
        npy.mkdir()
        gen = run_worker({"kind": "generate", "size": s3, "npy_dir": str(npy)}, verbose=verbose)
        r3 = run_worker({"kind": "ours", "size": s3, "npy_dir": str(npy), **base}, verbose=verbose)
        result["section3"] = {"generate": gen, "fit": r3}
        if "error" in gen or "error" in r3:
            print(f"  ERROR {gen.get('error')} {r3.get('error')}\n{r3.get('stderr', '')}")
        else:
            print(
                f"  data generation (separate process, not timed in the pipeline): MRTSimulation "
                f"{gen['simulate_s']:.2f} s, peak RSS {gen['maxrss_gb']:.2f} GB, frame "
                f"{gen['frame_gb']:.2f} GB; fit process: load .npy {r3['load_s']:.2f} s"
            )
            summarize_big(r3, "3")
            sp = split(r3)
            splits[f"3. {s3['n']}x{s3['T']} ours"] = sp
            split_targets[f"3. {s3['n']}x{s3['T']} ours"] = TARGET_S3_S
            targets += [
                {"target": f"3. pipeline < {TARGET_S3_S:g} s",
                 "value": f"{r3['pipeline_s']:.2f} s", "pass": r3["pipeline_s"] < TARGET_S3_S},
                {"target": f"3. peak RSS < {TARGET_S3_GB:g} GB (ru_maxrss, fit process)",
                 "value": f"{r3['maxrss_gb']:.2f} GB", "pass": r3["maxrss_gb"] < TARGET_S3_GB},
            ]  # fmt: skip
            mem_rows = (
                [
                    ("fit process, ru_maxrss", r3["maxrss_gb"]),
                    ("after import + load", r3["maxrss_before_pipeline_gb"]),
                ]
                + [
                    (f"  polled: {k}", g)
                    for k, g in sorted(r3["phases"]["rss_peak_gb"].items(), key=lambda x: -x[1])[:6]
                ]
                + [("generation process (sim)", gen["maxrss_gb"])]
            )
    result["memory_rows"] = mem_rows
    result["splits"] = splits
    result["split_targets"] = split_targets
    result["targets"] = targets

    # ---------------------------------------------------------------- verdicts
    print("\nTime split of our pipeline (s):")
    head = f"  {'run':<30}" + "".join(f"{lab:>14}" for lab, _ in GROUPS) + f"{'total':>9}"
    print(head)
    for k, sp in splits.items():
        print(f"  {k:<30}" + "".join(f"{sp[lab]:>14.2f}" for lab, _ in GROUPS)
              + f"{sum(sp.values()):>9.2f}")  # fmt: skip
    print(textwrap.fill(GROUP_HELP, 100, initial_indent="  ", subsequent_indent="  "))
    print("\nTargets" + (" [--quick: reduced settings, not the benchmark]" if args.quick else ""))
    w = max(len(t["target"]) for t in targets)
    for t in targets:
        print(f"  {t['target']:<{w}}  {t['value']:>12}  {verdict(t['pass'])}")

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bayes_mrt.json").write_text(json.dumps(result, indent=2, default=float))
    plot(result, OUT / "bayes_mrt.png")
    print(f"\nWrote {OUT / 'bayes_mrt.json'} and {OUT / 'bayes_mrt.png'}")
    return 0


def summarize_big(r: dict, sec: str) -> None:
    eff = r["effects"]
    d = r["diagnostics"]
    print(
        f"  {r['rows']:,} rows ({r['n_available']:,} available); pipeline {r['pipeline_s']:.2f} s "
        f"(sampling {r['sampling_time_attr_s']:.2f} s), import {r['import_s']:.2f} s; peak RSS "
        f"{r['maxrss_gb']:.2f} GB (before the pipeline {r['maxrss_before_pipeline_gb']:.2f} GB)"
    )
    print(
        "  beta: " + ", ".join(
            f"{t} {m:.4f} (sd {s:.4f}, ESS {e:.0f}, R-hat {h:.4f})"
            for t, m, s, e, h in zip(eff["terms"], eff["mean"], eff["sd"], eff["ess_bulk"],
                                     eff["r_hat"], strict=True)
        )
    )  # fmt: skip
    print(
        f"  all main parameters: max R-hat {d['max_r_hat']:.4f}, min bulk ESS "
        f"{d['min_ess_bulk']:.0f}, divergences {d['divergences']}"
    )
    sp = split(r)
    print("  split: " + ", ".join(f"{k} {v:.2f} s" for k, v in sp.items()))
    print(phase_table(r))
    if r["warnings"]:
        print("  warnings: " + " | ".join(r["warnings"])[:600])


if __name__ == "__main__":
    raise SystemExit(main())
