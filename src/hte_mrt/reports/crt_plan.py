"""The CRT plan runner: CATE learners on a cluster-randomized trial, summarized for a paper.

For every learner of the plan: the individual- and cluster-average ATE with its interval
(posterior for Bayesian learners, cluster bootstrap for point learners with ``n_boot``), the
CATE's subgroup averages and bands, the best linear projection on chosen moderators and a
moderator-importance ranking (how much the CATE moves when one covariate is permuted).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from hte_mrt.data.crt import CRTData
from hte_mrt.errors import HteMrtWarning
from hte_mrt.reports.plans import Plan, plan_steps
from hte_mrt.reports.render import Report

ROLE_KEYS = ("cluster", "arm", "outcome", "baseline", "id")
QUICK = {
    "bamm": {"draws": 200, "tune": 300, "chains": 2},  # tune / chains: sampler="nutpie" only
    "bart": {"draws": 100, "tune": 100, "chains": 2},
    "bcf_pymc": {"draws": 100, "tune": 100, "chains": 2},
    "bcf_stochtree": {"tune": 50, "draws": 100},
}


def check_columns(plan: Plan, frame: pd.DataFrame) -> None:
    """Every role and covariate column named by the plan exists in the data (all problems in
    one :class:`~hte_mrt.errors.PlanError`, each with its key and line)."""
    from hte_mrt.reports.mrt_plan import _missing_column
    from hte_mrt.reports.plans import plan_error

    d = plan.section("data")
    cols = [(("data", r), d[r]) for r in ROLE_KEYS if isinstance(d.get(r), str)]
    for r in ("individual", "cluster_covariates", "categorical"):
        cols += [(("data", r), c) for c in d.get(r, [])]
    for i, e in enumerate(plan.estimands):
        cols += [(("estimands", i, "subgroups"), c) for c in e.get("subgroups", [])]
        cols += [(("estimands", i, "bands", c), c) for c in e.get("bands", {})]
        cols += [(("estimands", i, "blp"), c) for c in e.get("blp", [])]
    problems = [(path, _missing_column(col, frame)) for path, col in cols
                if col not in frame.columns]  # fmt: skip
    for i, e in enumerate(plan.estimands):
        for col, edges in (e.get("bands") or {}).items():
            if col not in frame.columns:
                continue
            x = pd.to_numeric(frame[col], errors="coerce")
            counts = pd.cut(x, bins=edges).value_counts(sort=False)
            empty = [str(iv) for iv, n in counts.items() if n == 0]
            if empty:
                problems.append((("estimands", i, "bands", col), (
                    f"band(s) {', '.join(empty)} hold no one ({col} ranges from {x.min():g} to "
                    f"{x.max():g}); change the edges {edges!r} so that every band holds "
                    "individuals."
                )))  # fmt: skip
    if problems:
        raise plan_error(plan.text, plan.raw, problems, str(plan.path or plan.name))


def dry_check(plan: Plan, frame: pd.DataFrame) -> None:
    """What a run builds before its first fit, built now: the trial data (data problems raise
    here rather than mid-run)."""
    crt_data(plan, frame)


def crt_data(plan: Plan, frame: pd.DataFrame) -> CRTData:
    d = {k: v for k, v in plan.section("data").items() if k not in ("dataset", "path")}
    return CRTData(frame, **d)


def run_crt(plan: Plan, frame: pd.DataFrame, out: Path, meta: dict, *, quick: bool, progress: bool):
    import matplotlib.pyplot as plt

    from hte_mrt.estimators.learners import LEARNERS

    p = plan.raw["plan"]
    data = crt_data(plan, frame)
    rep = Report(plan.title, p.get("description", ""))
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, Path] = {}
    caught: list[str] = []

    rep.section("Trial")
    if p.get("citation"):
        rep.p(f"Data: {p['citation']}")
    s = data.describe()
    rep.p(
        f"{s.n_individuals} individuals in {s.n_clusters} clusters; outcome ICC {s.icc:.3f} "
        f"(within arm {s.icc_within_arm:.3f})."
    )
    rep.table(s.by_arm, "Clusters, cluster sizes and outcome by arm", "by_arm")
    if len(s.exclusions):
        rep.p(
            f"{len(s.exclusions)} individuals excluded: "
            + "; ".join(f"{r} ({n})" for r, n in s.exclusions["reason"].value_counts().items())
        )
    if len(s.imputations):
        rep.table(s.imputations, "Missing covariates handled with missing indicators", "imputed")

    fitted = {}
    from hte_mrt.estimators.learners import DEFAULT_LEARNER, DEFAULT_LEARNER_WHY

    # no [learners] tables: the package default alone
    chosen = plan.raw.get("learners") or {DEFAULT_LEARNER: {}}
    learners = plan_steps(list(chosen.items()), progress=progress, desc=plan.name)
    for k, (name, params) in enumerate(learners):
        params = dict(params)
        if quick:
            params.update(QUICK.get(name, {}))
            if "n_boot" in params:
                params["n_boot"] = min(int(params["n_boot"]), 10)
        cls = LEARNERS[name]
        if "seed" in cls._param_names():
            params.setdefault("seed", plan.seed + k)
        if "progress" in cls._param_names():
            params.setdefault("progress", progress)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always", HteMrtWarning)
            learner = cls(**params).fit(data)
            res = learner.cate()
        caught += [f"{name}: {x.message}" for x in w if issubclass(x.category, HteMrtWarning)]
        fitted[name] = (learner, res)

    names = list(fitted)
    primary = names[0]
    rep.section("Learners")
    if primary == DEFAULT_LEARNER:
        why = f"The primary learner is {primary} ({type(fitted[primary][0]).__name__}), the "
        why += "package default. " + DEFAULT_LEARNER_WHY
    else:
        why = (f"The primary learner is {primary} ({type(fitted[primary][0]).__name__}), the "
               f"first in the plan; the package default would be {DEFAULT_LEARNER}.")  # fmt: skip
    rep.p(why)
    if len(names) > 1:
        rep.p("Also fitted, for comparison: " + ", ".join(names[1:]) + ".")
    rep.section("Average treatment effects")
    rows = []
    for name, (learner, res) in fitted.items():
        for kind in ("individual", "cluster"):
            a = res.ate(kind)
            rows.append(
                {
                    "learner": name,
                    "average": kind,
                    **{
                        k: a.get(k, np.nan) for k in ("estimate", "se", "lcl", "ucl", "pr_positive")
                    },
                    "interval": res.interval,
                    "fit_seconds": learner.fit_seconds_,
                }
            )
    tables["ate"] = pd.DataFrame(rows)
    rep.table(
        tables["ate"],
        "Individual- and cluster-average treatment effects by learner "
        "(95% intervals: posterior, or cluster bootstrap)",
        "ate",
    )
    for e in plan.estimands:
        ref = e.get("reference_ate")
        if not ref:
            continue
        a = fitted[primary][1].ate("individual")
        label = e.get("reference_label", "the trial's primary analysis")
        tables[f"reference_ate_{e['name']}"] = t = pd.DataFrame(
            [
                {"analysis": f"{primary} (this report), individual-average",
                 "estimate": a["estimate"], "lcl": a["lcl"], "ucl": a["ucl"]},
                {"analysis": label, "estimate": ref[0], "lcl": ref[1], "ucl": ref[2]},
            ]
        )  # fmt: skip
        rep.table(t, f"The ATE of {primary} next to the published estimate", "reference_ate")
        rep.p(
            "Why the two can differ: the published estimate is the trial's pre-specified "
            "adjusted analysis (its own model, covariates and handling of missing outcomes), "
            "whereas this ATE averages a heterogeneity model's CATEs over the individuals "
            "analysed here (complete outcomes, missing covariates as indicators). The "
            "heterogeneity model adjusts for more covariates, flexibly, and shrinks the "
            "moderators toward no effect; with few clusters the ATE's interval is wide either "
            "way, so differences well inside both intervals are expected. The published "
            "analysis remains the trial's answer about the average effect; this model's job is "
            "who benefits more or less."
        )
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, (_, res) in fitted.items():
        ax.hist(res.estimate, bins=30, alpha=0.45, label=name)
    ax.set_xlabel("estimated CATE")
    ax.set_ylabel("individuals")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    rep.figure(fig, "Distribution of the estimated CATE over the trial's individuals", "cate_hist")

    cov = [*data.roles.individual, *data.roles.cluster_covariates]
    imp = fitted[primary][0].moderator_importance(columns=cov, seed=plan.seed, progress=progress)
    tables["importance"] = imp
    for e in plan.estimands:
        res = fitted[primary][1]
        rep.section(f"Heterogeneity: {e.get('label', e['name'])} ({primary})")
        for col in e.get("subgroups", []):
            t = res.subgroups(col)
            tables[f"subgroup_{e['name']}_{col}"] = t
            rep.table(t, f"CATE by {col}", f"subgroup_{col}")
            fig = res.plot_subgroups(col).figure
            rep.figure(fig, f"CATE by {col} ({primary}; dashed: ATE)", f"subgroup_{col}_plot")
            c = res.contrasts(col)
            tables[f"contrast_{e['name']}_{col}"] = c
            rep.table(c, f"Differences of the CATE between levels of {col}, draw by draw "
                      "(not adjusted for multiplicity)", f"contrast_{col}")  # fmt: skip
        for col, bins in e.get("bands", {}).items():
            t = res.subgroups(col, bins=bins)
            t[col] = t[col].astype(str)
            tables[f"band_{e['name']}_{col}"] = t
            rep.table(t, f"CATE by {col} band", f"band_{col}")
            fig = res.plot_subgroups(col, bins=bins).figure
            rep.figure(fig, f"CATE by {col} band ({primary}; dashed: ATE)", f"band_{col}_plot")
        if e.get("blp"):
            t = res.blp(list(e["blp"]))
            tables[f"blp_{e['name']}"] = t
            rep.table(t, "Best linear projection of the CATE on the moderators", "blp")
        if e.get("calibration_splits"):
            from hte_mrt.estimators.learners.calibration import calibration_test

            splits = min(int(e["calibration_splits"]), 2) if quick else int(e["calibration_splits"])
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always", HteMrtWarning)
                cal = calibration_test(data, fitted[primary][0], n_splits=splits,
                                       seed=plan.seed, progress=progress)  # fmt: skip
            caught += [f"calibration: {x.message}" for x in w
                       if issubclass(x.category, HteMrtWarning)]  # fmt: skip
            tables[f"calibration_{e['name']}"] = cal.table()
            rep.table(
                cal.table(),
                f"Calibration test of {primary}: {splits} split(s) of the clusters into halves, "
                "learner fitted on one, best linear predictor on the other; medians over splits "
                "(slope 1: calibrated CATE, 0: no heterogeneity detected; p of the slope is "
                "one-sided, of slope <= 0)",
                "calibration",
            )
            if cal.failed:
                rep.p(f"{len(cal.failed)} split(s) could not be fitted: {cal.failed[0][1]}")
    rep.section("Moderator importance")
    rep.table(
        imp,
        f"Moderator importance ({primary}): root mean squared change of the CATE when the "
        "covariate is permuted (individual covariates across patients, cluster covariates "
        "across clusters; 10 permutations, perm_sd their sd); larger = more of the estimated "
        "heterogeneity rests on it. A ranking of the fitted surface, not a test of moderation",
        "importance",
    )

    rep.section("Diagnostics")
    if caught:
        for m in caught:
            rep.p("Warning: " + m)
    else:
        rep.p("No convergence warnings from the Bayesian learners.")
    rep.section("Methods")
    lrn = ", ".join(f"{n} ({type(fitted[n][0]).__name__})" for n in names)
    rep.p(
        "Conditional average treatment effects tau(x, v) = E[Y(1) - Y(0) | x, v], marginal over "
        "the cluster random intercept, were estimated with " + lrn + ". Intervals are posterior "
        "credible intervals (Bayesian learners) or cluster-bootstrap percentile intervals "
        "(clusters resampled within arm); bootstrap intervals reflect sampling variability, "
        "not the shrinkage of a regularized learner's estimates toward no effect. "
        f"Seed {plan.seed}; hte_mrt "
        f"{meta['versions'].get('hte_mrt', '-')}; plan '{plan.name}' (SHA-256 "
        f"{plan.sha256[:12]}...)."
    )
    res = fitted[primary][1]
    files["posterior.nc"] = res.to_netcdf(out / "posterior.nc")
    files["posterior.json"] = out / "posterior.json"
    meta["warnings"] = caught
    return rep, tables, files
