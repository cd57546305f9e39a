"""CRT learners at their defaults, ours and the peers, fitted to the same simulated trials.

    python benchmarks/crt_learners.py            # 3 trials of the base scenario (a few minutes)
    python benchmarks/crt_learners.py --quick    # 1 trial, no pymc-bart learners

What a user gets without tuning: our learners at their defaults, the peers at their own
packages' defaults, on the base scenario of the issue-4 study (K = 32 clusters of U{15..35},
ICC 0.05, linear mu, individual tau; :class:`hte_mrt.data.simulate_crt.CRTSimulation`).
Replicates run one after the other in this process (``run_study(n_jobs=1)``), so learners do
not compete with each other for the cores.

Printed per learner: median full-data fit seconds, its ratio to the fastest peer (stochtree
BCF), PEHE on 50 new clusters of 20 and the 95% CATE coverage (Bayesian learners). Outputs:
``benchmarks/out/crt_learners.json`` and ``crt_learners.png`` (fit seconds, log scale).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from hte_mrt.data.simulate_crt import CRTSimulation
from hte_mrt.estimators.learners import (
    BARTMixed,
    BayesianAdditiveMixedModel,
    BayesianCausalForestMixed,
    EconMLCausalForest,
    GPBoostLearner,
    LinearInteraction,
    MixedEffectsHistGB,
    MixedEffectsRandomForest,
    StochtreeBCF,
)
from hte_mrt.studies import run_study

OUT = Path(__file__).resolve().parent / "out"
OURS = {
    "bamm": BayesianAdditiveMixedModel,
    "bart": BARTMixed,
    "bcf_pymc": BayesianCausalForestMixed,
    "merf": MixedEffectsRandomForest,
    "merf_hgb": MixedEffectsHistGB,
    "linear": LinearInteraction,
}
# peers as their own packages run them: stochtree's BCFModel.sample defaults (250 / 50 trees,
# 5 GFR sweeps, no burn-in, 100 draws, 1 chain), not our wrapper's heavier defaults
PEERS = {
    "bcf_stochtree": (
        StochtreeBCF,
        dict(mu_trees=250, tau_trees=50, num_gfr=5, tune=0, draws=100, chains=1),
    ),
    "gpboost": GPBoostLearner,
    "econml_cf": EconMLCausalForest,
}


def tassh_timing(reps: int) -> dict:
    """Fit seconds at TASSH's size (641 patients, 32 centres): the package default
    (``hm.cate``'s learner) and stochtree BCF at its package defaults, on the TASSH data,
    alternating in one process after one warm-up fit each (numba / stochtree loading); medians.
    Target (issue 19): the default no slower than BCF."""
    import time

    from hte_mrt.data.tassh import tassh
    from hte_mrt.estimators.learners import DEFAULT_LEARNER, LEARNERS

    data = tassh()
    make = {
        f"default ({DEFAULT_LEARNER})": lambda s: LEARNERS[DEFAULT_LEARNER](seed=s, progress=False),
        "bcf_stochtree": lambda s: PEERS["bcf_stochtree"][0](**PEERS["bcf_stochtree"][1], seed=s),
    }
    times: dict[str, list[float]] = {k: [] for k in make}
    for r in range(reps + 1):
        for name, f in make.items():
            t0 = time.perf_counter()
            f(r).fit(data)
            if r:  # r = 0: warm-up
                times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    names = list(med)
    ratio = med[names[0]] / med[names[1]]
    n, k = data.n_individuals, data.n_clusters
    print(f"TASSH ({n} individuals, {k} clusters), median of {reps}:")
    for k in names:
        print(f"  {k:<20}{med[k]:8.2f} s")
    print(f"  default / BCF = {ratio:.2f} ({'PASS' if ratio <= 1 else 'FAIL'}: target <= 1)")
    return {"seconds_median": med, "ratio_default_to_bcf": ratio, "reps": reps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 trial, no pymc-bart learners")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--tassh-only", action="store_true", help="only the TASSH timing section")
    ap.add_argument("--tassh-reps", type=int, default=7)
    args = ap.parse_args(argv)
    tassh = tassh_timing(args.tassh_reps)
    if args.tassh_only:
        return 0
    learners = {**OURS, **PEERS}
    reps = 1 if args.quick else args.reps
    if args.quick:
        learners = {k: v for k, v in learners.items() if k not in ("bart", "bcf_pymc")}
    res = run_study({"base": CRTSimulation()}, learners, reps, seed=args.seed, n_jobs=1)
    raw = res.raw[res.raw["sample"] == "new_clusters"]
    if raw["error"].notna().any():
        print(raw.loc[raw["error"].notna(), ["learner", "rep", "error"]].to_string())
    g = raw.groupby("learner", sort=False)
    fit = g["fit_seconds"].median()
    ref = float(fit["bcf_stochtree"])
    rows = {
        name: {
            "fit_seconds_median": float(fit[name]),
            "ratio_to_stochtree": float(fit[name]) / ref,
            "pehe_mean": float(g["pehe"].mean()[name]),
            "coverage_cate_mean": float(g["coverage_cate"].mean()[name]),
            "role": "peer" if name in PEERS else "ours",
        }
        for name in learners
    }
    print(f"{'learner':<15}{'role':<6}{'fit s':>9}{'x stochtree':>13}{'PEHE':>8}{'coverage':>10}")
    for name, r in rows.items():
        cov = r["coverage_cate_mean"]
        print(
            f"{name:<15}{r['role']:<6}{r['fit_seconds_median']:9.2f}"
            f"{r['ratio_to_stochtree']:13.2f}{r['pehe_mean']:8.3f}"
            f"{'' if np.isnan(cov) else f'{cov:.3f}':>10}"
        )
    OUT.mkdir(exist_ok=True)
    info = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "reps": reps,
        "seed": args.seed,
        "scenario": repr(CRTSimulation()),
        "learners": rows,
        "tassh": tassh,
    }
    (OUT / "crt_learners.json").write_text(json.dumps(info, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(rows)
    ax.barh(
        names,
        [rows[n]["fit_seconds_median"] for n in names],
        color=["tab:orange" if rows[n]["role"] == "peer" else "tab:blue" for n in names],
    )
    ax.set_xscale("log")
    ax.set_xlabel("median fit seconds (log scale); orange = peer")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(OUT / "crt_learners.png", dpi=120)
    print(f"wrote {OUT / 'crt_learners.json'} and crt_learners.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
