r"""Reference predictors on the CRT study's own trials (issue 4), run by hand, not by pytest.

    python tests/validation/crt_study_references.py  # in and out: benchmarks/results/crt_study

Rebuilds every replicate's trial and new clusters from the study's seed
(:func:`hte_mrt.studies.replicate_trial`; the true ATEs must equal ``raw.csv.gz``'s to 1e-12, or
the script stops) and scores two predictors that need no fitting, on the same individuals as the
learners:

* ``zero``: :math:`\hat\tau \equiv 0` (no effect anywhere), PEHE
  :math:`\sqrt{\overline{\tau^2}}`;
* ``ate_oracle``: :math:`\hat\tau \equiv \bar\tau`, the true sample ATE, PEHE
  :math:`\mathrm{sd}(\tau)`: what a learner that knows the ATE and ignores heterogeneity gets.

It writes ``references.csv.gz`` (one row per scenario x replicate x sample) and
``references.md``: the learners' PEHE beside the references, each learner's mean ATE against the
truth (a learner whose ATE is pulled toward 0 gains PEHE when the effect is small against its
noise), and the PEHE ratio of the study's target recomputed among learners whose mean ATE bias is
within 3 MCSE of 0; and, when the pymc-bart side study (``crt_study_pymc_bart``) is present,
the same bias and PEHE figures for its learners on the replicates it has.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hte_mrt.studies import oat_scenarios, replicate_trial

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "benchmarks" / "results" / "crt_study"
BAYESIAN = ("bamm",)


def references(study: Path) -> pd.DataFrame:
    settings = json.loads((study / "settings.json").read_text())
    scen = oat_scenarios()
    if set(settings["scenarios"]) != set(scen):
        raise SystemExit("settings.json lists other scenarios than oat_scenarios(): stop.")
    for name, text in settings["scenarios"].items():
        if repr(scen[name]) != text:
            raise SystemExit(f"scenario {name}: {scen[name]!r} differs from the study's {text}.")
    seeds = np.random.SeedSequence(int(settings["seed"])).spawn(int(settings["reps"]))
    rows = []
    for name, sim in scen.items():
        for r in range(int(settings["reps"])):
            frame, new, _ = replicate_trial(sim, seeds[r], 50, 20)
            for sample, f in (("in_sample", frame), ("new_clusters", new)):
                tau = sim.true_tau(f)
                rows.append({
                    "scenario": name, "rep": r, "sample": sample, "true_ate_ind": tau.mean(),
                    "pehe_zero": float(np.sqrt(np.mean(tau**2))),
                    "pehe_ate_oracle": float(np.std(tau)),
                })  # fmt: skip
    return pd.DataFrame(rows)


def check_same_trials(ref: pd.DataFrame, raw: pd.DataFrame, complete: bool = True) -> None:
    """Stop unless every (scenario, replicate, sample) of ``raw`` is in ``ref`` with the same
    true ATE (to 1e-12) and, with ``complete``, ``raw`` has every one of ``ref``'s."""
    keys = ["scenario", "rep", "sample"]
    truth = raw.groupby(keys)["true_ate_ind"].first().rename("raw").to_frame()
    both = truth.join(ref.set_index(keys)["true_ate_ind"].rename("ref"))
    gap = (both["ref"] - both["raw"]).abs()
    if both["ref"].isna().any() or gap.max() > 1e-12:
        raise SystemExit(f"the rebuilt trials differ from the study's (max gap {gap.max():.2e}).")
    if complete and len(both) != len(ref):
        raise SystemExit(f"the study has {len(both)} of the {len(ref)} replicate samples.")


def report(ref: pd.DataFrame, raw: pd.DataFrame) -> str:
    new = raw[raw["sample"] == "new_clusters"]
    rn = ref[ref["sample"] == "new_clusters"].set_index(["scenario", "rep"])
    scen = list(dict.fromkeys(ref["scenario"]))
    learners = list(dict.fromkeys(new["learner"]))
    g = new.groupby(["scenario", "learner"])
    pehe = g["pehe"].mean().unstack().reindex(index=scen, columns=learners)
    bias = g["bias_ate_ind"].mean().unstack().reindex_like(pehe)
    bias_se = (g["bias_ate_ind"].std() / np.sqrt(g["bias_ate_ind"].count())).unstack()
    bias_se = bias_se.reindex_like(pehe)
    true_ate = rn.groupby("scenario")["true_ate_ind"].mean().reindex(scen)
    zero = rn.groupby("scenario")["pehe_zero"].mean().reindex(scen)
    oracle = rn.groupby("scenario")["pehe_ate_oracle"].mean().reindex(scen)

    def paired_ratio(s: str, learner: str) -> str:
        d = new[(new["scenario"] == s) & (new["learner"] == learner)].set_index("rep")["pehe"]
        z = rn.loc[s, "pehe_zero"].reindex(d.index)
        diff = (d - z).dropna()
        se = diff.std() / np.sqrt(len(diff))
        return f"{d.mean() / z.mean():.3f} ({diff.mean():+.3f} ± {se:.3f})"

    n = new.groupby("scenario")["rep"].nunique().reindex(scen)
    lines = [
        "# Reference predictors on the study's trials",
        "",
        f"Made by `tests/validation/crt_study_references.py` from `raw.csv.gz` and `settings.json` "
        f"({n.min()}-{n.max()} replicates per scenario; the rebuilt trials' true ATEs equal the "
        "study's to 1e-12). New clusters (50 of 20) throughout.",
        "",
        "`zero`: tau_hat = 0 everywhere. `ate_oracle`: tau_hat = the true sample ATE everywhere "
        "(knows the ATE, ignores heterogeneity). Mean PEHE per scenario:",
        "",
        "| scenario | true ATE | zero | ate_oracle | " + " | ".join(learners) + " |",
        "|---|---|---|---|" + "---|" * len(learners),
    ]
    for s in scen:
        cells = " | ".join(f"{pehe.loc[s, x]:.3f}" for x in learners)
        lines.append(f"| {s} | {true_ate[s]:.3f} | {zero[s]:.3f} | {oracle[s]:.3f} | {cells} |")

    def section(intro: str, cell) -> list[str]:
        """A table with one row per scenario and one column per learner."""
        rows = [f"| {s} | " + " | ".join(cell(s, x) for x in learners) + " |" for s in scen]
        head = ["| scenario | " + " | ".join(learners) + " |", "|---|" + "---|" * len(learners)]
        return ["", intro, "", *head, *rows]

    lines += section(
        "Mean ATE bias (estimate - truth, MCSE) on the new clusters; a positive bias is an ATE "
        "pulled toward 0 (the true ATE is negative in every scenario):",
        lambda s, x: f"{bias.loc[s, x]:+.3f} ({bias_se.loc[s, x]:.3f})",
    )
    lines += section(
        "PEHE over the `zero` predictor's, paired by replicate (ratio of means; mean paired "
        "difference ± MCSE), for the learners the study's target compares against:",
        paired_ratio,
    )
    lines += [
        "",
        "The study's PEHE target (best Bayesian learner / best learner <= 1.05), over all learners "
        "and over the learners whose mean ATE bias is within 3 MCSE of 0 (`unbiased`):",
        "",
        "| scenario | best (all) | ratio (all) | best (unbiased) | ratio (unbiased) |",
        "|---|---|---|---|---|",
    ]
    for s in scen:
        r = pehe.loc[s]
        ok = [x for x in learners if abs(bias.loc[s, x]) <= 3 * bias_se.loc[s, x]]
        bay = min(BAYESIAN, key=lambda x: r[x])
        best_all, best_ok = r.idxmin(), r[ok].idxmin()
        lines.append(
            f"| {s} | {best_all} | {r[bay] / r[best_all]:.3f} | {best_ok} | "
            f"{r[bay] / r[best_ok]:.3f} |"
        )
    return "\n".join(lines) + "\n"


def side_report(ref: pd.DataFrame, side: pd.DataFrame) -> str:
    """The pymc-bart learners (run apart on the same trials): mean ATE bias and PEHE over the
    ``zero`` predictor's, on the replicates they have."""
    new = side[side["sample"] == "new_clusters"]
    rn = ref[ref["sample"] == "new_clusters"].set_index(["scenario", "rep"])
    scen = [s for s in dict.fromkeys(ref["scenario"]) if s in set(new["scenario"])]
    learners = list(dict.fromkeys(new["learner"]))
    n = new.groupby("scenario")["rep"].nunique()
    lines = [
        "",
        f"## The pymc-bart learners (`crt_study_pymc_bart`, {n.min()}-{n.max()} replicates per "
        "scenario, the same trials)",
        "",
        "Mean ATE bias (MCSE) and PEHE over the `zero` predictor's (paired ratio of means):",
        "",
        "| scenario | " + " | ".join(f"{x} bias | {x} PEHE / zero" for x in learners) + " |",
        "|---|" + "---|---|" * len(learners),
    ]
    for s in scen:
        cells = []
        for x in learners:
            d = new[(new["scenario"] == s) & (new["learner"] == x)].set_index("rep")
            b = d["bias_ate_ind"]
            z = rn.loc[s, "pehe_zero"].reindex(d.index)
            cells += [
                f"{b.mean():+.3f} ({b.std() / np.sqrt(b.count()):.3f})",
                f"{d['pehe'].mean() / z.mean():.3f}",
            ]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    raw = pd.read_csv(STUDY / "raw.csv.gz", low_memory=False)
    ref = references(STUDY)
    check_same_trials(ref, raw)
    ref.to_csv(
        STUDY / "references.csv.gz", index=False, float_format="%.10g",
        compression={"method": "gzip", "mtime": 0},  # same bytes on a rerun
    )  # fmt: skip
    md = report(ref, raw)
    side_path = STUDY.parent / "crt_study_pymc_bart" / "raw.csv.gz"
    if side_path.exists():
        side = pd.read_csv(side_path, low_memory=False)
        check_same_trials(ref, side, complete=False)
        md += side_report(ref, side)
    (STUDY / "references.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
