"""Scaling of the estimators on partitioned Parquet trials (Dask), from 1e5 to 1e8 rows.

    python benchmarks/scale.py                      # 1e6 and 1e7 rows (the issue's targets)
    python benchmarks/scale.py --sizes 1e5 1e6      # smaller sizes
    python benchmarks/scale.py --huge               # adds 1e8 rows (200,000 x 500; ~4 GB)
    python benchmarks/scale.py --workers 2 --folder /scratch/trials

Each trial is written by :func:`write_trial` as Parquet files of whole participants (one file
per block of participants, generated block by block: memory stays bounded whatever the size),
with ``n_moderators`` moderators, clusters, a continuous and a binary outcome. Each estimator
then runs in a fresh Python process (so peak memories are its own) on a
``distributed.LocalCluster`` of ``--workers`` single-threaded worker processes:

* ``wcls``   ``hm.wcls(trial, "~ x1", "~ x1 + x2")``
* ``emee``   ``hm.emee`` of the binary outcome (same formulas)
* ``randomization``  ``hm.randomization_test`` with ``--n-resamples`` redraws
* ``bayes``  ``hm.BayesMRT`` (random intercept + slope, cluster intercept), ``--draws`` /
  ``--tune`` per chain, 4 chains; its min ESS and max R-hat are recorded
* ``wcls_memory`` / ``bayes_memory``: the in-memory path on the same rows (``--memory-max``
  rows at most), for comparison

Recorded per run: seconds, the driver's and each worker's peak resident memory (ru_maxrss),
and their sum ("all"). Outputs in ``benchmarks/results/scale/``: ``runs.jsonl`` (one line per
run, appended), ``table.md``, ``scale.png`` (log-log time and memory against rows) and the
fitted slopes of log(seconds) on log(rows) per estimator (1 = linear cost), in ``table.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "scale"
SIZES = {  # rows -> (participants, decision points), as in issue 21
    1e5: (1_000, 100),
    3e5: (2_000, 150),
    1e6: (5_000, 200),
    6e6: (20_000, 300),  # the in-memory target of issue 21
    1e7: (50_000, 200),
    1e8: (200_000, 500),
}
ESTIMATORS = ("wcls", "emee", "randomization", "bayes", "wcls_memory", "bayes_memory")


# ------------------------------------------------------------------------------ the generator
def write_trial(
    folder: str | os.PathLike,
    n_participants: int,
    n_decisions: int,
    *,
    n_moderators: int = 3,
    n_clusters: int = 50,
    rows_per_file: int = 250_000,
    seed: int = 1,
) -> Path:
    """Write a simulated MRT as Parquet files of whole participants, block by block.

    Outcome y = b_i + c_k + x'gamma + A (0.2 + 0.1 x1 + u_i) + e with b_i ~ N(0, 0.5^2),
    c_k ~ N(0, 0.3^2), u_i ~ N(0, 0.1^2); availability 0.8, P(A = 1) = 0.5; the binary
    outcome yb = 1[y > 0]. Memory: one block of ``rows_per_file`` rows at a time.
    """
    import pandas as pd

    folder = Path(folder)
    done = folder / "_complete.json"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    per_file = max(1, rows_per_file // n_decisions)
    ss = np.random.SeedSequence(seed)
    c_eff = np.random.default_rng(ss.spawn(1)[0]).normal(0, 0.3, n_clusters)
    blocks = range(0, n_participants, per_file)
    for k, (p0, child) in enumerate(zip(blocks, ss.spawn(len(blocks)), strict=True)):
        rng = np.random.default_rng(child)
        n = min(per_file, n_participants - p0)
        rows = n * n_decisions
        ids = np.repeat(np.arange(p0, p0 + n), n_decisions)
        cl = ids % n_clusters
        x = rng.normal(size=(rows, n_moderators))
        avail = (rng.random(rows) < 0.8).astype(np.int8)
        a = ((rng.random(rows) < 0.5) & (avail == 1)).astype(np.int8)
        b = np.repeat(rng.normal(0, 0.5, n), n_decisions)
        u = np.repeat(rng.normal(0, 0.1, n), n_decisions)
        y = b + c_eff[cl] + 0.3 * x[:, 0] + a * (0.2 + 0.1 * x[:, 0] + u) + rng.normal(size=rows)
        frame = pd.DataFrame(
            {
                "id": ids,
                "t": np.tile(np.arange(n_decisions), n),
                "cluster": cl,
                "avail": avail,
                "A": a,
                "y": y,
                "yb": (y > 0).astype(np.int8),
                **{f"x{j + 1}": x[:, j] for j in range(n_moderators)},
            }
        )
        frame.to_parquet(folder / f"part-{k:05d}.parquet", index=False)
        del frame, x
    done.write_text(json.dumps({"n_participants": n_participants, "n_decisions": n_decisions}))
    return folder


# ------------------------------------------------------------------------------ one run
def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _bayes(args: argparse.Namespace):
    import hte_mrt as hm

    return hm.BayesMRT(
        "~ x1", "~ x1 + x2", random_slope=True, draws=args.draws, tune=args.tune, chains=4,
        seed=1, progress=False,
    )  # fmt: skip


def run_one(folder: str, estimator: str, args: argparse.Namespace) -> dict:
    """One estimator on one trial, in this (fresh) process."""
    import warnings

    from distributed import Client, LocalCluster

    import hte_mrt as hm

    warnings.simplefilter("ignore")
    roles = dict(id="id", time="t", treatment="A", prob=0.5, availability="avail")
    out: dict = {"estimator": estimator}
    if estimator.endswith("_memory"):
        import pandas as pd

        frame = pd.read_parquet(folder)
        data = hm.MRTData(frame, outcome="y", cluster="cluster", **roles)
        del frame
        t0 = time.perf_counter()
        if estimator == "wcls_memory":
            hm.wcls(data, "~ x1", "~ x1 + x2")
        else:
            fit = _bayes(args).fit(data)
            tab = fit.table()
            out["min_ess"] = float(tab["ess_bulk"].min())
            out["max_rhat"] = float(tab["r_hat"].max())
        out["seconds"] = time.perf_counter() - t0
        out["driver_mb"] = _maxrss_mb()
        out["workers_mb"] = []
        out["all_mb"] = out["driver_mb"]
        return out
    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, dashboard_address=":0",
        memory_limit=args.worker_memory,
    )  # fmt: skip
    client = Client(cluster)
    outcome = "yb" if estimator == "emee" else "y"
    t0 = time.perf_counter()
    data = hm.MRTData.from_parquet(
        folder, outcome=outcome, cluster="cluster", client=client, **roles
    )
    out["open_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if estimator == "wcls":
        hm.wcls(data, "~ x1", "~ x1 + x2")
    elif estimator == "emee":
        hm.emee(data, "~ x1", "~ x1 + x2")
    elif estimator == "randomization":
        hm.randomization_test(
            data, "~ x1", "~ x1 + x2", n_resamples=args.n_resamples, seed=1, progress=False
        )
    elif estimator == "bayes":
        fit = _bayes(args).fit(data)
        tab = fit.table()
        out["min_ess"] = float(tab["ess_bulk"].min())
        out["max_rhat"] = float(tab["r_hat"].max())
    else:
        raise SystemExit(f"unknown estimator {estimator!r}")
    out["seconds"] = time.perf_counter() - t0
    workers = client.run(_maxrss_mb)
    out["driver_mb"] = _maxrss_mb()
    out["workers_mb"] = sorted(workers.values())
    out["all_mb"] = out["driver_mb"] + sum(workers.values())
    client.close()
    cluster.close()
    return out


# ------------------------------------------------------------------------------ report
def report(runs: list[dict]) -> str:
    import pandas as pd

    df = pd.DataFrame(runs)
    df = df.sort_values(["estimator", "rows"]).drop_duplicates(["estimator", "rows"], keep="last")
    lines = ["| estimator | rows | participants | seconds | worker peak MB (max) | all MB |"
             " min ESS | max R-hat |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for _, r in df.iterrows():
        wmax = max(r["workers_mb"]) if len(r["workers_mb"]) else float("nan")
        ess = "" if pd.isna(r.get("min_ess")) else f"{r['min_ess']:.0f}"
        rh = "" if pd.isna(r.get("max_rhat")) else f"{r['max_rhat']:.3f}"
        lines.append(
            f"| {r['estimator']} | {r['rows']:.0e} | {r['participants']} | {r['seconds']:.1f} "
            f"| {wmax:.0f} | {r['all_mb']:.0f} | {ess} | {rh} |"
        )
    lines += [
        "",
        "Seconds exclude opening the trial (the first pass); memory is the peak resident size "
        "(ru_maxrss) of the driver plus every worker process, each run in a fresh process. A "
        "fixed cost per call (scheduling, the workers' first imports: about a second) dominates "
        "below ~1e6 rows, so the slopes mean something only over large sizes.",
        "",
        "Fitted slope of log(seconds) on log(rows) (1 = linear):",
        "",
    ]
    for est, g in df.groupby("estimator"):
        if g["rows"].nunique() >= 2:
            slope = np.polyfit(np.log(g["rows"]), np.log(g["seconds"]), 1)[0]
            sizes = ", ".join(f"{x:.0e}" for x in sorted(g["rows"].unique()))
            lines.append(f"* {est}: {slope:.2f} (rows {sizes})")
    return "\n".join(lines)


def figure(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(runs).drop_duplicates(["estimator", "rows"], keep="last")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for est, g in df.sort_values("rows").groupby("estimator"):
        axes[0].loglog(g["rows"], g["seconds"], "o-", label=est)
        axes[1].loglog(g["rows"], g["all_mb"], "o-", label=est)
    axes[0].set(xlabel="rows", ylabel="seconds", title="Time")
    axes[1].set(xlabel="rows", ylabel="peak MB (driver + workers)", title="Memory")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="*", type=float, default=[1e6, 1e7])
    ap.add_argument("--huge", action="store_true", help="add 1e8 rows (200,000 x 500)")
    ap.add_argument("--estimators", nargs="*", default=list(ESTIMATORS))
    ap.add_argument("--folder", default=os.environ.get("HTE_MRT_SCALE_DIR", "/tmp/hte_mrt_scale"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-memory", default="4GB")
    ap.add_argument("--n-resamples", type=int, default=100)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--memory-max", type=float, default=1e7, help="largest in-memory run")
    ap.add_argument("--one", nargs=2, metavar=("FOLDER", "ESTIMATOR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args)))
        return
    sizes = sorted(set(args.sizes) | ({1e8} if args.huge else set()))
    OUT.mkdir(parents=True, exist_ok=True)
    runs_path = OUT / "runs.jsonl"
    for rows in sizes:
        n, T = SIZES.get(rows, (int(rows // 200), 200))
        folder = Path(args.folder) / f"trial_{n}x{T}"
        t0 = time.perf_counter()
        write_trial(folder, n, T)
        print(f"{n} x {T} = {n * T:.0e} rows in {folder} ({time.perf_counter() - t0:.0f} s)")
        for est in args.estimators:
            if est.endswith("_memory") and n * T > args.memory_max:
                continue
            cmd = [sys.executable, __file__, "--one", str(folder), est,
                   "--workers", str(args.workers), "--worker-memory", args.worker_memory,
                   "--n-resamples", str(args.n_resamples), "--draws", str(args.draws),
                   "--tune", str(args.tune)]  # fmt: skip
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(f"  {est}: failed\n{res.stderr[-2000:]}")
                continue
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            rec |= {"rows": n * T, "participants": n, "decisions": T, "workers": args.workers,
                    "machine": platform.node(), "cpus": os.cpu_count()}  # fmt: skip
            print(f"  {est}: {rec['seconds']:.1f} s, all {rec['all_mb']:.0f} MB")
            with runs_path.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
    runs = [json.loads(line) for line in runs_path.read_text().splitlines() if line.strip()]
    text = report(runs)
    (OUT / "table.md").write_text(
        "# Scaling on partitioned Parquet (benchmarks/scale.py)\n\n" + text + "\n"
    )
    figure(runs, OUT / "scale.png")
    if args.estimators:  # a run (not only a report of earlier runs)
        (OUT / "settings.json").write_text(json.dumps(vars(args), indent=2, default=str))
    print(text)


if __name__ == "__main__":
    main()
