"""Pilot of BAMM variants on the CRT study's own trials, paired with its default BAMM (issue 4).

    python tests/validation/crt_bamm_pilot.py --reps 20 --variants bamm_smooth_tau
    python tests/validation/crt_bamm_pilot.py --reps 20 --variants bamm_global_scale_0.01

Not part of the study: it informs whether a model change is worth a full rerun. Each variant
(the study's BAMM settings from its ``settings.json``, with the variant's overrides) runs on
replicates 0..reps-1 of the chosen scenarios with the study's seed, so the
trials are identical to the study's; the default BAMM's rows are read from the study's
``raw.csv.gz``. Differences variant - default are paired by replicate, with their MCSE
(sd of the per-replicate difference / sqrt(reps)). Writes ``<out>/raw-<variants>.csv.gz`` and
``<out>/summary-<variants>.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from hte_mrt.estimators.learners import BayesianAdditiveMixedModel
from hte_mrt.studies import oat_scenarios, run_study

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "benchmarks" / "results" / "crt_study"
# overrides of the study's BAMM settings
VARIANTS = {
    "bamm_smooth_tau": dict(smooth_tau=True),
    # the horseshoe's global scale fixed well below "auto" (about 0.05 at K=32, 0.07 at K=16)
    "bamm_global_scale_0.01": dict(global_scale=0.01),
    "bamm_global_scale_0.02": dict(global_scale=0.02),
    # a point mass on "no heterogeneity" with prior probability 0.5
    "bamm_prob_homogeneous_0.5": dict(prob_homogeneous=0.5),
    # sceptical priors on the ATE (tau0 ~ N(0, s0^2), outcome sds; default s0 = 1)
    "bamm_ate_prior_sd_0.25": dict(ate_prior_sd=0.25),
    "bamm_ate_prior_sd_0.1": dict(ate_prior_sd=0.1),
}
METRICS = ("pehe", "coverage_cate", "width_cate", "coverage_ate_ind", "fit_seconds")


def paired(pilot: pd.DataFrame, study: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and variant: default and variant means, paired difference and its MCSE."""
    key = ["scenario", "rep"]
    base = study[study.learner == "bamm"].set_index(key)
    rows = []
    for (scen, name), g in pilot.groupby(["scenario", "learner"], sort=False):
        g = g.set_index(key)
        b = base.loc[g.index]
        if not np.allclose(g["true_ate_ind"], b["true_ate_ind"]):  # same simulated trials
            raise SystemExit(f"{scen}: the pilot's trials differ from the study's")
        for m in METRICS:
            d = g[m] - b[m]
            rows.append(
                dict(
                    scenario=scen,
                    variant=name,
                    metric=m,
                    reps=len(d),
                    default=b[m].mean(),
                    variant_mean=g[m].mean(),
                    diff=d.mean(),
                    mcse=d.std(ddof=1) / np.sqrt(len(d)),
                )
            )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--scenarios", default="base,K=16,tau=homogeneous,tau=nonlinear")
    ap.add_argument("--variants", default="bamm_smooth_tau", help=", ".join(VARIANTS))
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "crt_bamm_pilot")
    args = ap.parse_args()
    settings = json.loads((STUDY / "settings.json").read_text())
    study = pd.read_csv(STUDY / "raw.csv.gz", dtype={"error": str})
    study = study[(study["sample"] == "new_clusters") & (study.rep < args.reps)]
    scen = oat_scenarios()
    names, chosen = args.scenarios.split(","), args.variants.split(",")
    for asked, known in ((names, scen), (chosen, VARIANTS)):
        if set(asked) - set(known):
            raise SystemExit(
                f"unknown {sorted(set(asked) - set(known))}; known: {', '.join(known)}"
            )
    bamm = settings["learners"]["bamm"]
    variants = {v: (BayesianAdditiveMixedModel, {**bamm, **VARIANTS[v]}) for v in chosen}
    tag = "+".join(variants)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # this process only: joblib workers still warn
        res = run_study(
            {s: scen[s] for s in names},
            variants,
            n_reps=int(settings["reps"]),
            seed=int(settings["seed"]),
            n_jobs=args.n_jobs,
            reps=range(args.reps),
        )
    raw = res.raw
    args.out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(args.out / f"raw-{tag}.csv.gz", index=False)
    tab = paired(raw[raw["sample"] == "new_clusters"], study)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"# BAMM variants paired with the study's BAMM (reps 0-{args.reps - 1}, new clusters)",
        "",
        f"Commit {commit}; variants: "
        + "; ".join(f"{k}: {v[1]}" for k, v in variants.items())
        + ".",
        "",
        "| scenario | variant | metric | default | variant | diff | MCSE |",
        "|---" * 7 + "|",
    ]
    for r in tab.itertuples():
        lines.append(
            f"| {r.scenario} | {r.variant} | {r.metric} | {r.default:.3f} | "
            f"{r.variant_mean:.3f} | {r.diff:+.3f} | {r.mcse:.3f} |"
        )
    n_err = int(raw["error"].notna().sum()) if "error" in raw else 0
    lines += ["", f"Failed fits: {n_err}."]
    (args.out / f"summary-{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
