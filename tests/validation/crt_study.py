"""The CRT learner simulation study (issue 4), run by hand, not by pytest.

    python tests/validation/crt_study.py --reps 200 --n-jobs 2          # the full study
    python tests/validation/crt_study.py --reps 20 --learners fast      # a reduced run

Scenarios: the base scenario (K = 32 clusters, sizes U{15..35}, ICC 0.05, linear mu,
individual tau, normal intercepts) plus one-factor-at-a-time sweeps
(:func:`hte_mrt.studies.oat_scenarios`). Learners: ours (Bayesian additive mixed model, MERF,
EM gradient boosting, the linear reference; optionally the pymc-bart BART / BCF) and the peers a
user would pick instead (stochtree BCF with random effects, GPBoost S-learner, econml
CausalForestDML with groups). Bayesian learners give posterior intervals; point learners are
evaluated without intervals (a cluster bootstrap per replicate would multiply the cost by B).

Writes ``benchmarks/out/crt_study_raw.csv``, ``crt_study_table.csv``, ``crt_study_pehe.png`` and
prints the table (means with Monte Carlo standard errors).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from hte_mrt.estimators.learners import (
    BARTMixed,
    BayesianAdditiveMixedModel,
    EconMLCausalForest,
    GPBoostLearner,
    LinearInteraction,
    MixedEffectsHistGB,
    MixedEffectsRandomForest,
    StochtreeBCF,
)
from hte_mrt.studies import oat_scenarios, run_study

OUT = Path(__file__).resolve().parents[2] / "benchmarks" / "out"

LEARNERS = {
    "bamm": (BayesianAdditiveMixedModel, dict(draws=500, tune=700, chains=2)),
    "bcf_stochtree": (StochtreeBCF, dict(num_burnin=100, num_mcmc=400)),
    "gpboost": (GPBoostLearner, dict()),
    "econml_cf": (EconMLCausalForest, dict(n_estimators=200)),
    "merf": (MixedEffectsRandomForest, dict(n_estimators=200, max_iter=10)),
    "merf_hgb": (MixedEffectsHistGB, dict()),
    "linear": (LinearInteraction, dict()),
}
SLOW = {"bart": (BARTMixed, dict())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--learners", default="fast", help="fast | all | comma-separated names")
    ap.add_argument("--scenarios", default="oat", help="oat | base | comma-separated names")
    ap.add_argument("--tag", default="crt_study")
    args = ap.parse_args()

    pool = {**LEARNERS, **SLOW}
    if args.learners == "fast":
        learners = LEARNERS
    elif args.learners == "all":
        learners = pool
    else:
        learners = {k: pool[k] for k in args.learners.split(",")}
    scen = oat_scenarios()
    if args.scenarios == "base":
        scen = {"base": scen["base"]}
    elif args.scenarios != "oat":
        scen = {k: scen[k] for k in args.scenarios.split(",")}
    print(f"{len(scen)} scenarios x {len(learners)} learners x {args.reps} replicates")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_study(scen, learners, n_reps=args.reps, seed=args.seed, n_jobs=args.n_jobs)
    wall = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    res.to_csv(OUT / f"{args.tag}_raw.csv", which="raw")
    res.to_csv(OUT / f"{args.tag}_table.csv", which="table")
    res.plot("pehe").savefig(OUT / f"{args.tag}_pehe.png", dpi=120)
    tab = res.table()
    want = ["scenario", "learner", "sample", "n_reps", "n_failed", "pehe", "pehe_mcse",
            "abs_bias_ate_ind", "coverage_cate", "coverage_cate_mcse", "coverage_ate_ind",
            "spearman", "fit_seconds"]  # fmt: skip
    cols = [c for c in want if c in tab.columns]
    with pd.option_context("display.width", 250, "display.max_rows", 500):
        print(tab[cols].round(4).to_string(index=False))
    print(f"wall time {wall:.0f} s")


if __name__ == "__main__":
    main()
