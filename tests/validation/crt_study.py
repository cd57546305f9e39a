"""The CRT learner simulation study (issue 4), run by hand, not by pytest.

    python tests/validation/crt_study.py --reps 200 --n-jobs 2            # the full study
    python tests/validation/crt_study.py --reps 200 --max-minutes 90      # a block of it
    python tests/validation/crt_study.py --reps 200 --learners bart,bcf_pymc \
        --out benchmarks/results/crt_study_pymc_bart --paired-with benchmarks/results/crt_study
    python tests/validation/crt_study.py --reps 200 --learners linear_boot \
        --out benchmarks/results/crt_study_bootstrap --paired-with benchmarks/results/crt_study

Scenarios: the base scenario (K = 32 clusters, sizes U{15..35}, ICC 0.05, linear mu,
individual tau, normal intercepts) plus one-factor-at-a-time sweeps
(:func:`hte_mrt.studies.oat_scenarios`). Learners: ours (Bayesian additive mixed model, MERF,
EM gradient boosting, the linear reference; the pymc-bart BART and multilevel BCF run apart
on the same trials) and the peers a user
would pick instead (stochtree BCF with random effects, GPBoost S-learner, econml
CausalForestDML with groups). Bayesian learners give posterior intervals; point learners are
evaluated without intervals (a cluster bootstrap per replicate would multiply the cost by B);
the bootstrap intervals' coverage is measured apart for the cheap ones (``BOOT``).

Resumable: replicates run in blocks (``--block`` per scenario, all scenarios advancing
together); after every block the tidy rows are appended to ``<out>/raw.csv.gz`` and the
summary (``table.csv``, ``summary.md``, ``pehe.png``) is rewritten from everything done so far.
A rerun skips the (scenario, replicate) pairs already in ``raw.csv.gz``; replicate r's seed
depends only on ``--seed`` and r, so blocks run in different sessions form one study.
``--max-minutes`` stops after the block that crosses the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

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
from hte_mrt.studies import StudyResult, oat_scenarios, run_study

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results"

LEARNERS = {
    "bamm": (BayesianAdditiveMixedModel, dict(draws=500, tune=500, chains=2)),
    "merf": (MixedEffectsRandomForest, dict(n_estimators=100, max_em_iter=10)),
    "merf_hgb": (MixedEffectsHistGB, dict()),
    "linear": (LinearInteraction, dict()),
    # stochtree's own defaults (what a user would run): 250 / 50 trees, 5 GFR sweeps, 100 draws
    "bcf_stochtree": (
        StochtreeBCF,
        dict(mu_trees=250, tau_trees=50, num_gfr=5, tune=0, draws=100, chains=1),
    ),
    "gpboost": (GPBoostLearner, dict()),
    "econml_cf": (EconMLCausalForest, dict(n_estimators=200)),
}
# pymc-bart learners with BAMM's budget (2 chains x 500 draws after 500 tuning): 5-15 s per
# fit, so run apart (--learners bart,bcf_pymc --out ...) on the same simulated trials (a trial's
# seed depends only on --seed and the replicate, not on the learners)
SLOW = {
    "bart": (BARTMixed, dict(draws=500, tune=500, chains=2)),
    "bcf_pymc": (BayesianCausalForestMixed, dict(draws=500, tune=500, chains=2)),
}
# point learners with their cluster-bootstrap intervals (percentile, clusters resampled within
# arm, B = 200), to measure those intervals' coverage; run apart (--learners linear_boot ...):
# with its bootstrap the OLS reference costs ~0.12 s per replicate, GPBoost ~23 s
BOOT = {
    "linear_boot": (LinearInteraction, dict(n_boot=200)),
    "gpboost_boot": (GPBoostLearner, dict(n_boot=200)),
}
# the package default since issue 19 (smooth tau, Laplace sampler), run apart on the same trials:
# --learners bamm_default --out benchmarks/results/crt_study_default --paired-with ...
DEFAULT = {"bamm_default": (BayesianAdditiveMixedModel, dict())}
BAYESIAN = ("bamm", "bart", "bcf_pymc", "bamm_default")  # ours; bcf_stochtree is the peer
PEERS = ("bcf_stochtree", "gpboost", "econml_cf")


def summarize(res: StudyResult, out: Path, settings: dict) -> str:
    """Write table.csv, pehe.png and summary.md; return the markdown."""
    res.to_csv(out / "table.csv", which="table")
    fig = res.plot("pehe")
    fig.savefig(out / "pehe.png", dpi=120)
    tab = res.table(sample="new_clusters")
    piv = tab.pivot(index="scenario", columns="learner", values="pehe")
    piv = piv.reindex(index=list(res.scenarios), columns=res.learners)
    mcse = tab.pivot(index="scenario", columns="learner", values="pehe_mcse").reindex_like(piv)
    reps = tab.pivot(index="scenario", columns="learner", values="n_reps").reindex_like(piv)
    ours_bayes = [c for c in BAYESIAN if c in piv.columns]
    lines = [
        "# CRT learner simulation study (issue 4)",
        "",
        f"Seed {res.seed}; replicates per scenario: {int(reps.min().min())}-"
        f"{int(reps.max().max())} (target {settings['reps']}); learners: "
        + ", ".join(res.learners)
        + f". Settings: `{json.dumps(settings['learners'])}`.",
        "",
        "PEHE on 50 new clusters of 20 (mean, MCSE in parentheses). `best ratio`: our best "
        "Bayesian learner / the best learner (target <= 1.05).",
        "",
        "| scenario | " + " | ".join(piv.columns) + " | best | best ratio |",
        "|---|" + "---|" * (len(piv.columns) + 2),
    ]
    for sc in piv.index:
        row = piv.loc[sc]
        best = row.idxmin()
        ratio = row[ours_bayes].min() / row.min() if ours_bayes else np.nan
        cells = [f"{row[c]:.3f} ({mcse.loc[sc, c]:.3f})" for c in piv.columns]
        lines.append(f"| {sc} | " + " | ".join(cells) + f" | {best} | {ratio:.3f} |")
    with_cov = tab.groupby("learner")["coverage_cate"].apply(lambda c: c.notna().any())
    bayes_tab = tab[tab["learner"].isin(with_cov[with_cov].index)]
    cov = bayes_tab.pivot(index="scenario", columns="learner", values="coverage_cate")
    cov_se = bayes_tab.pivot(index="scenario", columns="learner", values="coverage_cate_mcse")
    wid = bayes_tab.pivot(index="scenario", columns="learner", values="width_cate")
    cov, cov_se, wid = (d.reindex(index=list(res.scenarios)) for d in (cov, cov_se, wid))
    lines += [
        "",
        "95% interval coverage of tau(x, v) on the new clusters (MCSE), mean width "
        "(target [0.90, 0.97] for our Bayesian learners; stochtree BCF is the peer; `*_boot`: "
        "cluster-bootstrap percentile intervals):",
        "",
        "| scenario | " + " | ".join(f"{c} cov | {c} width" for c in cov.columns) + " |",
        "|---|" + "---|---|" * len(cov.columns),
    ]
    for sc in cov.index:
        cells = [
            f"{cov.loc[sc, c]:.3f} ({cov_se.loc[sc, c]:.3f}) | {wid.loc[sc, c]:.3f}"
            for c in cov.columns
        ]
        lines.append(f"| {sc} | " + " | ".join(cells) + " |")
    ate = tab.set_index(["scenario", "learner"])
    lines += ["", "ATE (individual-average) |bias| and 95% coverage, new clusters:", ""]
    lines += [
        "| scenario | " + " | ".join(res.learners) + " |",
        "|---|" + "---|" * len(res.learners),
    ]
    for sc in res.scenarios:
        cells = []
        for lname in res.learners:
            r = ate.loc[(sc, lname)]
            c = r["coverage_ate_ind"]
            cells.append(f"{r['abs_bias_ate_ind']:.3f}" + ("" if np.isnan(c) else f" / {c:.2f}"))
        lines.append(f"| {sc} | " + " | ".join(cells) + " |")
    secs = res.raw[res.raw["sample"] == "new_clusters"].groupby("learner")["fit_seconds"]
    secs = secs.mean().reindex(res.learners)
    # fit + both predictions, with a point learner's bootstrap (run lazily by cate())
    total = res.raw.groupby(["scenario", "rep", "learner"])["seconds"].max()
    total = total.groupby("learner").mean().reindex(res.learners)
    lines += ["", "Mean seconds per replicate (with the other job sharing 2 cores):", ""]
    lines += ["| learner | fit s | fit + predictions (+ bootstrap) s |", "|---|---|---|"]
    lines += [f"| {k} | {secs[k]:.2f} | {total[k]:.2f} |" for k in res.learners]
    failed = res.raw.loc[res.raw["error"].notna(), ["scenario", "rep", "learner"]]
    n_err = len(failed.drop_duplicates())  # a failed fit has a row per sample
    lines += ["", f"Failed fits: {n_err}. Wall seconds so far: {res.seconds:.0f}."]
    md = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(md)
    return md


def paired(out: Path, other: Path, scenarios: list[str]) -> str:
    """``paired.md``: this run's learners and another run's (``other/raw.csv.gz``) on the
    (scenario, replicate) pairs both have, which are the same simulated trials and new clusters
    when the seeds agree. PEHE per learner, our best Bayesian learner over the best learner, and
    the Bayesian learners' CATE coverage (MCSE in parentheses)."""
    a = pd.read_csv(out / "raw.csv.gz")
    b = pd.read_csv(other / "raw.csv.gz")
    a, b = (d[d["sample"] == "new_clusters"] for d in (a, b))
    common = set(zip(a["scenario"], a["rep"], strict=True))
    common &= set(zip(b["scenario"], b["rep"], strict=True))
    d = pd.concat([b, a], ignore_index=True)
    d = d[[k in common for k in zip(d["scenario"], d["rep"], strict=True)]]
    scen = [s for s in scenarios if s in set(d["scenario"])]
    learners = list(dict.fromkeys(d["learner"]))
    bayes = [x for x in BAYESIAN if x in learners]
    g = d.groupby(["scenario", "learner"])

    def mean_se(col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        m = g[col].mean().unstack().reindex(index=scen, columns=learners)
        se = (g[col].std() / np.sqrt(g[col].count())).unstack().reindex_like(m)
        return m, se

    pehe, pehe_se = mean_se("pehe")
    cov, cov_se = mean_se("coverage_cate")
    n = d.groupby("scenario")["rep"].nunique()
    lines = [
        f"# Paired with `{other.name}`: the same simulated trials",
        "",
        f"Replicates in both runs per scenario: {n.min()}-{n.max()}. PEHE on 50 new clusters of "
        "20 (mean, MCSE); `best Bayesian / best`: our best Bayesian learner "
        f"({', '.join(bayes)}) over the best learner (target <= 1.05).",
        "",
        "| scenario | " + " | ".join(learners) + " | best Bayesian / best |",
        "|---|" + "---|" * (len(learners) + 1),
    ]
    for s in scen:
        r = pehe.loc[s]
        who = r[bayes].idxmin()
        cells = [f"{r[x]:.3f} ({pehe_se.loc[s, x]:.3f})" for x in learners]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {r[who] / r.min():.3f} ({who}) |")
    cols = [*bayes, *(["bcf_stochtree"] if "bcf_stochtree" in learners else [])]
    cols += [x for x in learners if x in BOOT]
    lines += [
        "",
        "95% coverage of tau(x, v) on the new clusters (MCSE); target [0.90, 0.97]:",
        "",
        "| scenario | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for s in scen:
        cells = [f"{cov.loc[s, x]:.3f} ({cov_se.loc[s, x]:.3f})" for x in cols]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    secs = d.groupby("learner")["fit_seconds"].mean().reindex(learners)
    lines += ["", "Mean fit seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in secs.items())]
    md = "\n".join(lines) + "\n"
    (out / "paired.md").write_text(md)
    return md


def _result(done: pd.DataFrame, scen: dict, learners: dict, args) -> StudyResult:
    """The study so far (the scenarios present in ``done``) as a :class:`StudyResult`."""
    present = [s for s in scen if s in set(done["scenario"])]
    return StudyResult(
        raw=done[done["scenario"].isin(present)].reset_index(drop=True),
        scenarios={s: scen[s] for s in present}, learners=list(learners),
        n_reps=int(done.groupby("scenario")["rep"].nunique().max()), seed=args.seed,
        # per replicate: each learner's whole time (its rows repeat it per sample)
        seconds=float(done.groupby(["scenario", "rep", "learner"])["seconds"].max().sum()
                      / max(args.n_jobs, 1)),
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--block", type=int, default=5, help="replicates per scenario per block")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--learners", default="fast", help="fast | all | comma-separated names")
    ap.add_argument("--scenarios", default="oat", help="oat | base | comma-separated names")
    ap.add_argument("--out", default=str(OUT / "crt_study"))
    ap.add_argument("--max-minutes", type=float, default=float("inf"))
    ap.add_argument(
        "--paired-with", metavar="DIR", help="also write paired.md against DIR/raw.csv.gz"
    )
    ap.add_argument(
        "--summary-only",
        action="store_true",
        help="rewrite summary.md (and paired.md); run nothing",
    )
    args = ap.parse_args()

    pool = {**LEARNERS, **SLOW, **BOOT, **DEFAULT}
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw_path = out / "raw.csv.gz"
    if args.summary_only:  # settings.json untouched
        done = pd.read_csv(raw_path, low_memory=False)
        settings = json.loads((out / "settings.json").read_text())
        if settings.get("learner_order", list(settings["learners"])) != list(learners):
            raise SystemExit(f"{out}: pass --learners {','.join(settings['learners'])}.")
        print(summarize(_result(done, scen, learners, args), out, settings))
        if args.paired_with:
            print(paired(out, Path(args.paired_with), list(scen)))
        return
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    settings = {
        "reps": args.reps,
        "seed": args.seed,
        "learners": {k: v[1] for k, v in learners.items()},
        "learner_order": list(learners),  # a learner's seed depends on its position
        "scenarios": {k: repr(v) for k, v in scen.items()},
        "commits": [commit],
    }
    done = pd.read_csv(raw_path) if raw_path.exists() else None
    if done is not None:
        old = json.loads((out / "settings.json").read_text())
        same = old["seed"] == args.seed and old["learners"] == settings["learners"]
        same &= old.get("learner_order", list(old["learners"])) == list(learners)
        old_sc = old.get("scenarios", {})
        same &= all(old_sc.get(k, r) == r for k, r in settings["scenarios"].items())
        if not same:
            raise SystemExit(f"{out}: settings differ from the stored study; use another --out.")
        settings["scenarios"] = {**old.get("scenarios", {}), **settings["scenarios"]}
        settings["commits"] = list(dict.fromkeys([*old.get("commits", []), commit]))
    (out / "settings.json").write_text(json.dumps(settings, indent=1))
    print(f"{len(scen)} scenarios x {len(learners)} learners, target {args.reps} replicates")
    t0 = time.perf_counter()
    for start in range(0, args.reps, args.block):
        block = range(start, min(start + args.block, args.reps))
        have = set() if done is None else set(zip(done["scenario"], done["rep"], strict=True))
        groups: dict[tuple[int, ...], dict] = {}
        for name, sim in scen.items():
            todo = tuple(r for r in block if (name, r) not in have)
            if todo:
                groups.setdefault(todo, {})[name] = sim
        for todo, sc in groups.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                part = run_study(sc, learners, n_reps=args.reps, seed=args.seed,
                                 n_jobs=args.n_jobs, reps=todo)  # fmt: skip
            done = part.raw if done is None else pd.concat([done, part.raw], ignore_index=True)
            tmp = raw_path.with_suffix(".tmp.gz")  # atomic: an interrupted write loses nothing
            done.to_csv(tmp, index=False)
            os.replace(tmp, raw_path)
        if groups:
            summarize(_result(done, scen, learners, args), out, settings)
            if args.paired_with:
                paired(out, Path(args.paired_with), list(scen))
            print(f"replicates < {block.stop} done: {time.perf_counter() - t0:.0f} s", flush=True)
        if (time.perf_counter() - t0) / 60 > args.max_minutes:
            print("time limit reached; rerun to continue")
            break
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
