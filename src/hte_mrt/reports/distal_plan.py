"""The distal kinds of an MRT plan: ``type = "distal"`` (:func:`hm.dcee <hte_mrt.dcee>`),
``type = "mediation"`` (:func:`hm.mcee <hte_mrt.mcee>`) and ``type = "effect_size"``
(:func:`hm.effect_size <hte_mrt.effect_size>`).

Each is fitted once per run (seeded by the plan's seed plus the estimand's position, as the
Bayesian fits), saved as NetCDF + JSON, and reported in its own section: the result's table, a
figure (the effect curve when the moderators are a function of the decision point or the
estimand gives a ``curve``; direct / indirect / total for mediation; the standardized effect
over decision points with its bootstrap band) and a methods paragraph. A quick run uses at
most 2 cross-fitting folds, at most 100 bootstrap replicates for the effect size and 500 for
the Bayesian-bootstrap cross-check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hte_mrt.data.schema import MRTData
from hte_mrt.reports.plan_schema import MRT_DISTAL_TYPES

#: learners in words (the methods paragraph)
LEARNER_WORDS = {
    "lm": "linear regression",
    "glm": "generalized linear models (logistic for binary targets, least squares otherwise)",
    "gam": "generalized additive models (penalized cubic regression splines, GCV)",
    "rf": "random forests",
    "gb": "gradient boosting",
}
QUICK_FOLDS, QUICK_EFFECT_SIZE_BOOT, QUICK_CROSSCHECK_BOOT = 2, 100, 500

CITATIONS = {
    "distal": "Qian 2025, Biometrics 81(4), doi:10.1093/biomtc/ujaf134",
    "mediation": 'Qian et al. 2025, "Dynamic causal mediation analysis for intensive '
    'longitudinal data", arXiv:2506.20027',
    "effect_size": "Luers et al. 2019",
}


def is_distal(e: dict) -> bool:
    """True for the estimand kinds fitted here (not WCLS / EMEE and the Bayesian model)."""
    return e.get("type") in MRT_DISTAL_TYPES


def folds(e: dict, quick: bool) -> int | bool:
    """The estimand's cross-fitting folds (False: none), at most 2 in a quick run."""
    k = e.get("cross_fit")
    if not k:
        return False
    return min(int(k), QUICK_FOLDS) if quick else int(k)


def fit_distal(e: dict, data: MRTData, seed: int, *, quick: bool, dry: bool = False) -> Any:
    """One distal-kind estimand's fit. ``dry`` (plan validation): the effect size without its
    bootstrap, cross-fitting with the quick run's folds."""
    if e["type"] == "effect_size":
        from hte_mrt.estimators.effect_size import effect_size

        n_boot = int(e.get("n_boot", 1000))
        if dry:
            n_boot = 0
        elif quick:
            n_boot = min(n_boot, QUICK_EFFECT_SIZE_BOOT)
        return effect_size(
            data,
            e.get("controls", "~ 1"),
            smooth=e.get("smooth", True),
            span=float(e.get("span", 0.25)),
            n_boot=n_boot,
            seed=seed,
            progress=False,
        )
    from hte_mrt.estimators.distal import dcee, mcee

    kw = dict(cross_fit=folds(e, quick or dry), seed=seed,  # validation: the quick folds
              small_sample=e.get("small_sample", "auto"))  # fmt: skip
    if e["type"] == "distal":
        return dcee(
            data,
            e.get("moderators", "~ 1"),
            e.get("controls", "~ 1"),
            learner=e.get("learner", "lm"),
            **kw,
        )
    return mcee(
        data,
        e["mediator"],
        e.get("moderators", "~ 1"),
        e.get("controls", "~ 1"),
        learner=e.get("learner", "glm"),
        **kw,
    )


def check_distal_outcome(e: dict, data: MRTData) -> str | None:
    """A plan-level message when a distal / mediation estimand's outcome varies within a
    participant (the plan's proximal outcome used by mistake), else None."""
    if e.get("type") not in ("distal", "mediation"):
        return None
    col, idc = data.roles.outcome, data.roles.id
    y = data.frame[col]
    n = y.groupby(data.frame[idc], sort=False).nunique()
    if (n > 1).any():
        who = n.index[np.flatnonzero(n.to_numpy() > 1)[0]]
        who = who.item() if hasattr(who, "item") else who  # 1, not np.int64(1)
        return (
            f"the outcome {col!r} varies within participant {idc}={who!r}, but a "
            f'"{e["type"]}" estimand needs the distal outcome (one value per participant, '
            'repeated on their rows): add data = { outcome = "<distal outcome column>" } to '
            "this estimand."
        )
    return None


# ----------------------------------------------------------------------------- report
def _label(run, e: dict) -> str:
    return e.get("label", e["name"]) + (" (primary)" if e is run.primary else "")


def curve_grid(curve: dict) -> pd.DataFrame:
    """The moderator grid of an estimand's ``curve = { variable, from, to, points }`` table
    (25 points unless given)."""
    return pd.DataFrame(
        {curve["variable"]: np.linspace(curve["from"], curve["to"], int(curve.get("points", 25)))}
    )


def _curve_table(res: Any, e: dict) -> pd.DataFrame | None:
    """The effect curve to draw, or None (a constant distal effect: the table says it all)."""
    curve = e.get("curve")
    if curve:
        return res.effect_curve(curve_grid(curve))
    time = res.info.get("time")
    mods = res._moderator_columns()
    if mods and mods <= {time}:
        return res.effect_curve()
    if e["type"] == "mediation" and not mods:
        return res.effect_curve(pd.DataFrame({time: [0.0]}))
    return None


def _curve_figure(tab: pd.DataFrame, x: str, level: float) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for k, (eff, g) in enumerate(tab.groupby("effect", sort=False)):
        xs = g[x].to_numpy(dtype=float)
        ax.fill_between(xs, g["lcl"], g["ucl"], color=f"C{k}", alpha=0.2)
        ax.plot(xs, g["estimate"], color=f"C{k}", label=f"{eff} ({100 * level:g}% CI shaded)")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(x)
    ax.set_ylabel("effect on the distal outcome")
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def _points_figure(tab: pd.DataFrame, level: float) -> Any:
    """Direct, indirect and total effect as points with intervals (constant effects)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    ys = np.arange(len(tab))[::-1]
    est = tab["estimate"].to_numpy(dtype=float)
    err = np.vstack(
        [est - tab["lcl"].to_numpy(dtype=float), tab["ucl"].to_numpy(dtype=float) - est]
    )
    ax.errorbar(est, ys, xerr=err, fmt="o", color="C0", capsize=3)
    ax.set_yticks(ys, [str(v) for v in tab["effect"]])
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(f"effect on the distal outcome ({100 * level:g}% CI)")
    fig.tight_layout()
    return fig


def distal_section(run) -> None:
    """Per distal / mediation / effect-size estimand: its table, figure and saved result."""
    ests = [e for e in run.plan.estimands if is_distal(e)]
    if not ests:
        return
    rep = run.rep
    rep.section("Distal, mediated and standardized effects")
    rep.p(
        "Effects on a distal outcome (measured once per participant) of delivering vs "
        "withholding the treatment at a decision point, other treatments following the trial's "
        "randomization policy (distal causal excursion effects); their split into a natural "
        "direct and an indirect effect through a time-varying mediator; and the standardized "
        "proximal effect over decision points. Intervals: t intervals from the "
        "participant-level sandwich variance (distal, mediation) and percentile intervals of "
        "the participant bootstrap (effect size)."
    )
    for e in ests:
        name, label = e["name"], _label(run, e)
        res = run.distal[name]
        tab = res.table()
        run.tables[f"effects_{name}"] = tab
        fname = "distal.nc" if e is run.primary else f"distal_{name}.nc"
        run.files[fname] = res.to_netcdf(run.out / fname)
        level = 0.95
        if e["type"] == "effect_size":
            n_boot = res.n_boot
            rep.table(
                tab,
                f"{label}: standardized effect of {res.settings.get('outcome', 'the outcome')} "
                f"by decision point ({n_boot} participant-bootstrap replicates)",
                f"effects_{name}",
            )
            rep.figure(
                res.plot(),
                f"{label}: standardized effect over decision points with its "
                f"{100 * level:g}% bootstrap band",
                f"effect_size_{name}",
            )
            continue
        what = (
            "distal causal excursion effect"
            if e["type"] == "distal"
            else (f"natural direct and indirect excursion effects through '{e['mediator']}'")
        )
        rep.table(
            tab,
            f"{label}: {what} on '{res.info.get('outcome')}', moderators "
            f"{res.info.get('moderators')}",
            f"effects_{name}",
        )
        for lname, weights in (e.get("lincombs") or {}).items():
            lc = res.lincomb(weights, names=[lname])
            run.tables[f"lincomb_{name}_{lname}"] = lc
            rep.table(lc, f"{label}: linear combination '{lname}'", f"lincomb_{name}_{lname}")
        cc = run.distal_cc.get(name)
        if cc is not None:
            run.tables[f"crosscheck_{name}"] = cc
            rep.table(
                cc,
                f"{label}: sandwich estimate vs the Bayesian bootstrap of its estimating "
                "equation ('flag': a difference above the threshold in sandwich SEs)",
                f"crosscheck_{name}",
            )
        curve = _curve_table(res, e)
        if curve is None:
            continue
        x = curve.columns[0]
        if curve[x].nunique() > 1:
            fig = _curve_figure(curve, x, level)
            cap = "effect curve" if e["type"] == "distal" else "direct, indirect and total effects"
            rep.figure(fig, f"{label}: {cap} over {x} with {100 * level:g}% pointwise t intervals",
                       f"curve_{name}")  # fmt: skip
        else:
            rep.figure(
                _points_figure(curve, level),
                f"{label}: direct, indirect and total (direct + indirect) excursion effects "
                f"with {100 * level:g}% t intervals",
                f"mediation_{name}",
            )


def crosscheck_table(res: Any, seed: int, *, quick: bool, threshold: float) -> pd.DataFrame:
    """The distal fit against the Bayesian bootstrap of its estimating equation."""
    from hte_mrt.results.crosscheck import crosscheck

    boot = res.bayesian_bootstrap(
        n_boot=QUICK_CROSSCHECK_BOOT if quick else 4000, seed=seed, progress=False
    )
    return crosscheck(res, boot, threshold=threshold).table()


def _learner_words(res: Any) -> str:
    lrn = res.info.get("learner")
    if isinstance(lrn, dict):
        return "; ".join(f"{k}: {LEARNER_WORDS.get(v, v)}" for k, v in lrn.items())
    return LEARNER_WORDS.get(lrn, str(lrn))


def methods(run) -> list[str]:
    """One methods paragraph per distal-kind estimand."""
    out = []
    for e in (e for e in run.plan.estimands if is_distal(e)):
        res = run.distal[e["name"]]
        label = e.get("label", e["name"])
        if e["type"] == "effect_size":
            st = res.settings
            smooth = (
                f"both smoothed over decision points by LOESS (span {st.get('span')}, degree "
                f"{st.get('degree')})"
                if st.get("smooth", True)
                else "without smoothing"
            )
            out.append(
                f"{label}: the standardized proximal effect over decision points "
                f"({CITATIONS['effect_size']}; "
                f"MRTAnalysis calculate_mrt_effect_size) is, at each decision point, the "
                f"inverse-probability-weighted effect of the treatment on "
                f"'{st.get('outcome')}' among available decision points (adjusted for "
                f"{st.get('controls', '~ 1')}) divided by the outcome's pooled within-arm "
                f"standard deviation, {smooth}; intervals are percentiles of {res.n_boot} "
                f"participant-bootstrap replicates (seed "
                f"{run.plan.seed + run.plan.estimands.index(e)})."
            )
            continue
        k = res.info.get("cross_fit") or 0
        cf = (
            f", cross-fitted over {k} participant folds (seed {res.info.get('seed')})"
            if k
            else " on all participants (no cross-fitting)"
        )
        common = (
            f"The variance is the participant-level sandwich with the nuisance fits held fixed "
            f"and inference uses t distributions on {res.df} degrees of freedom ({res.n} "
            f"participants minus the number of effect parameters), as MRTAnalysis."
        )
        if e["type"] == "distal":
            out.append(
                f"{label}: the distal causal excursion effect ({CITATIONS['distal']}) is the "
                f"effect on the distal outcome '{res.info.get('outcome')}' (measured once per "
                f"participant) of delivering vs withholding the treatment at decision point t, "
                f"earlier and later treatments following the trial's randomization policy, "
                f"modelled as {res.info.get('moderators')}. It was estimated by the two-stage "
                f"estimator of MRTAnalysis dcee: outcome models E[Y | H_t, A_t = a] with "
                f"covariates {res.info.get('controls')} fitted by {_learner_words(res)}{cf}, "
                f"then a weighted estimating equation with the known randomization "
                f"probabilities (consistent whatever the nuisance models). {common}"
            )
        else:
            out.append(
                f"{label}: the natural direct and indirect excursion effects (NDEE, NIEE; "
                f"{CITATIONS['mediation']}) split the effect of the treatment at decision "
                f"point t on the distal outcome '{res.info.get('outcome')}' into a part through "
                f"the mediator '{res.info.get('mediator')}' measured after it (indirect) and "
                f"the rest (direct), modelled as {res.info.get('moderators')}. They were "
                f"estimated by the multiply robust estimating equations of MRTAnalysis mcee: "
                f"nuisance models p (treatment; the known randomization probability), q "
                f"(treatment given the mediator), eta and mu (outcome without / with the "
                f"mediator) and nu, with covariates {res.info.get('controls')} (the mediator "
                f"only in q and mu), fitted by {_learner_words(res)}{cf}. {common}"
            )
    return out
