"""The randomized CRT benchmark: CATE learners on randomly drawn trial designs (issue 19).

    python benchmarks/crt_random.py                   # 100 designs x 2 trials, resumable
    python benchmarks/crt_random.py --designs 10 --reps 1 --out /tmp/crt_random   # smoke run

Designs are drawn by :func:`hte_mrt.data.simulate_crt_random.random_designs` (seed 2026; see
:class:`~hte_mrt.data.simulate_crt_random.RandomCRTDesign` for what is random). Each design's
trials are simulated and every learner is fitted to the same trials and evaluated on 50 new
clusters of 20 (:func:`hte_mrt.studies.crt_simulation.run_study`, joblib). Learners: the package
default (``hm.cate``'s: :class:`BayesianAdditiveMixedModel` at its defaults) and the peers at
their own packages' defaults: stochtree BCF (250 / 50 trees, 5 GFR sweeps, 100 draws, 1 chain),
GPBoost and econml's causal forest.

Resumable: each design's raw rows go to ``<out>/raw/<design>.csv.gz`` when it finishes; designs
already there are skipped. The summary (``summary.md``, ``designs.csv``, ``per_design.csv``,
``figures.png``) is rebuilt from all raw files at the end (``--summary-only`` to rebuild only).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hte_mrt.data.simulate_crt_random import random_designs
from hte_mrt.estimators.learners import (
    BayesianAdditiveMixedModel,
    EconMLCausalForest,
    GPBoostLearner,
    StochtreeBCF,
)
from hte_mrt.studies import run_study

OUT = Path(__file__).resolve().parent / "results" / "crt_random"
DEFAULT = "bamm"
LEARNERS = {
    "bamm": (BayesianAdditiveMixedModel, {}),
    "bcf_stochtree": (
        StochtreeBCF,
        dict(mu_trees=250, tau_trees=50, num_gfr=5, tune=0, draws=100, chains=1),
    ),
    "gpboost": (GPBoostLearner, {}),
    "econml_cf": (EconMLCausalForest, {}),
}
PEERS = ("bcf_stochtree", "gpboost", "econml_cf")


def run(designs: dict, reps: int, seed: int, out: Path, n_jobs: int) -> None:
    raw_dir = out / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    todo = [k for k in designs if not (raw_dir / f"{k}.csv.gz").exists()]
    print(f"{len(designs) - len(todo)} designs done, {len(todo)} to run", flush=True)
    for i in range(0, len(todo), max(n_jobs, 1) * 2):
        block = {k: designs[k] for k in todo[i : i + max(n_jobs, 1) * 2]}
        t0 = time.perf_counter()
        res = run_study(block, LEARNERS, reps, seed=seed, n_jobs=n_jobs, progress=False)
        for k in block:
            res.raw[res.raw["scenario"] == k].to_csv(raw_dir / f"{k}.csv.gz", index=False)
        print(f"  {', '.join(block)}: {time.perf_counter() - t0:.0f} s", flush=True)


def summarize(designs: dict, out: Path) -> str:
    files = sorted((out / "raw").glob("*.csv.gz"))
    raw = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    raw = raw[raw["sample"] == "new_clusters"]
    n_err = int(raw["error"].notna().sum())
    g = raw.groupby(["scenario", "learner"])
    per = g.agg(
        pehe=("pehe", "mean"), coverage=("coverage_cate", "mean"), width=("width_cate", "mean"),
        ate_bias=("bias_ate_ind", "mean"), ate_cov=("coverage_ate_ind", "mean"),
        ate_width=("width_ate_ind", "mean"), fit_s=("fit_seconds", "median"),
        reps=("rep", "nunique"),
    ).reset_index()  # fmt: skip
    per.to_csv(out / "per_design.csv", index=False)
    wide = per.pivot(index="scenario", columns="learner", values="pehe")
    d = pd.DataFrame([designs[k].factors() | {"label": designs[k].label()} for k in wide.index],
                     index=wide.index)  # fmt: skip
    d.drop(columns=["mu_terms", "tau_terms"]).to_csv(out / "designs.csv")
    lines = [
        "# Randomized CRT benchmark (issue 19)",
        "",
        f"{len(wide)} designs drawn by `random_designs(100, seed=2026)`; "
        f"{int(per['reps'].max())} trial(s) per design, each learner evaluated on 50 new "
        f"clusters of 20. Default learner: `{DEFAULT}` (`hm.cate`'s default). Failed fits: "
        f"{n_err}.",
        "",
        "## PEHE of the default relative to each peer (per design: mean PEHE over the trials)",
        "",
        "| peer | designs | default <= peer | median ratio | 10% / 90% quantile of ratio |",
        "|---|---|---|---|---|",
    ]
    ratios = {}
    for peer in PEERS:
        r = (wide[DEFAULT] / wide[peer]).dropna()
        ratios[peer] = r
        lines.append(
            f"| {peer} | {len(r)} | {np.mean(r <= 1):.0%} | {r.median():.3f} | "
            f"{r.quantile(0.1):.3f} / {r.quantile(0.9):.3f} |"
        )
    lines += [
        "",
        "## 95% interval coverage of tau(x, v) per design (Bayesian learners)",
        "",
        "| learner | median coverage | designs >= 0.90 | mean coverage | mean width | "
        "ATE coverage (mean) | ATE mean abs bias |",
        "|---|---|---|---|---|---|---|",
    ]
    for lname in (DEFAULT, "bcf_stochtree"):
        q = per[per["learner"] == lname]
        lines.append(
            f"| {lname} | {q['coverage'].median():.3f} | {np.mean(q['coverage'] >= 0.90):.0%} | "
            f"{q['coverage'].mean():.3f} | {q['width'].mean():.3f} | {q['ate_cov'].mean():.3f} | "
            f"{q['ate_bias'].abs().mean():.3f} |"
        )
    lines += ["", "## Median fit seconds (same process, same trials)", "",
              "| learner | median fit s |", "|---|---|"]  # fmt: skip
    for lname, s in per.groupby("learner")["fit_s"].median().items():
        lines.append(f"| {lname} | {s:.2f} |")
    # where the default loses most to BCF
    r = ratios["bcf_stochtree"].sort_values(ascending=False)
    lines += ["", "## Designs where the default trails BCF most", "",
              "| design | ratio | coverage | description |", "|---|---|---|---|"]  # fmt: skip
    cov = per[per["learner"] == DEFAULT].set_index("scenario")["coverage"]
    for k in r.index[:10]:
        lines.append(f"| {k} | {r[k]:.3f} | {cov[k]:.3f} | `{designs[k].label()}` |")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    cand = _candidates(raw, out)
    if cand:
        text += "\n" + cand
    _figures(per, ratios, out)
    return text


def _candidates(raw: pd.DataFrame, out: Path) -> str:
    """``candidates.md``: the settings of the default learner that were compared on the same
    trials (``<out>/candidates/<name>.csv.gz``, new-cluster rows of ``run_study`` with only
    that learner, at learner position 0: the same seeds as the default's here)."""
    files = sorted((out / "candidates").glob("*.csv.gz"))
    if not files:
        return ""
    bcf = raw[raw["learner"] == "bcf_stochtree"].groupby("scenario")["pehe"].mean()
    lines = [
        "## Candidates for the default (same trials), against stochtree BCF",
        "",
        "| candidate | PEHE <= BCF | median PEHE ratio | median coverage | designs with "
        "coverage >= 0.90 | mean coverage | ATE coverage | median fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in files:
        d = pd.read_csv(f)
        d = d[d["sample"] == "new_clusters"]
        g = d.groupby("scenario")
        r = (g["pehe"].mean() / bcf).dropna()
        c = g["coverage_cate"].mean()
        lines.append(
            f"| {f.name.split('.csv')[0]} | {np.mean(r <= 1):.0%} | {r.median():.3f} | "
            f"{c.median():.3f} | {np.mean(c >= 0.90):.0%} | {c.mean():.3f} | "
            f"{g['coverage_ate_ind'].mean().mean():.3f} | {d['fit_seconds'].median():.2f} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "candidates.md").write_text(text)
    return text


def _figures(per: pd.DataFrame, ratios: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for peer, r in ratios.items():
        x = np.sort(np.log2(r.to_numpy()))
        ax[0].step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=peer)
    ax[0].axvline(0, color="k", lw=0.8)
    ax[0].set_xlabel("log2 PEHE ratio, default / peer")
    ax[0].set_ylabel("share of designs (ECDF)")
    ax[0].legend(fontsize=9)
    for lname in (DEFAULT, "bcf_stochtree"):
        c = np.sort(per.loc[per["learner"] == lname, "coverage"].to_numpy())
        ax[1].step(c, np.arange(1, len(c) + 1) / len(c), where="post", label=lname)
    ax[1].axvline(0.90, color="k", lw=0.8, ls="--")
    ax[1].axvline(0.95, color="k", lw=0.8)
    ax[1].set_xlabel("95% CATE interval coverage per design")
    ax[1].set_ylabel("share of designs (ECDF)")
    ax[1].legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "figures.png", dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", type=int, default=100)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--summary-only", action="store_true")
    args = ap.parse_args(argv)
    designs = random_designs(args.designs, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"designs": args.designs, "reps": args.reps, "seed": args.seed,
                "learners": {k: v[1] for k, v in LEARNERS.items()}, "default": DEFAULT,
                "python": sys.version.split()[0], "machine": platform.platform()}  # fmt: skip
    (args.out / "settings.json").write_text(json.dumps(settings, indent=1))
    if not args.summary_only:
        run(designs, args.reps, args.seed, args.out, args.n_jobs)
    print(summarize(designs, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
