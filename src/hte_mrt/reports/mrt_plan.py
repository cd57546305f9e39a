"""The MRT plan runner: WCLS / EMEE and the Bayesian model per estimand, cross-checked, reported.

For each estimand of the plan: the frequentist fit (WCLS; EMEE for a Bernoulli model) and the
hierarchical Bayesian posterior (:class:`~hte_mrt.estimators.bayes.model.BayesMRT`), the
cross-check table (:func:`~hte_mrt.results.crosscheck.crosscheck`), effect curves with the WCLS
curve overlaid, participant heterogeneity (random slopes), diagnostics with plain-language
warnings, robustness checks (re-randomization test; prior sensitivity of the primary effect)
and an auto-written methods paragraph.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hte_mrt.data.schema import MRTData
from hte_mrt.errors import HteMrtWarning
from hte_mrt.reports.plans import Plan, plan_steps
from hte_mrt.reports.render import Report

ROLE_KEYS = ("id", "time", "treatment", "outcome", "prob", "availability", "cluster")
_NOT_COLUMNS = {
    "bs",
    "cr",
    "cc",
    "np",
    "I",
    "C",
    "log",
    "exp",
    "sqrt",
    "center",
    "scale",
    "poly",
    "df",
    "degree",
    "knots",
    "Intercept",
}


def formula_columns(formula: str) -> list[str]:
    """Identifiers of a formula that should be data columns (not functions or keywords)."""
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*(?!\s*[(=])", formula.split("~", 1)[-1])
    return [n for n in dict.fromkeys(names) if n not in _NOT_COLUMNS and not n.startswith("np.")]


def _missing_column(col: str, frame: pd.DataFrame, role: str | None = None) -> str:
    from hte_mrt.reports.plan_schema import suggest

    cols = list(map(str, frame.columns))
    return (
        f"column '{col}'" + (f" ({role})" if role else "") + f" is not in the data"
        f"{suggest(col, cols)}; columns: "
        + ", ".join(cols[:20])
        + (f", ... ({len(cols)} in all)" if len(cols) > 20 else "")
        + "."
    )


def check_columns(plan: Plan, frame: pd.DataFrame) -> None:
    """Every role column and formula variable named by the plan exists in the data (all
    problems in one :class:`~hte_mrt.errors.PlanError`, each with its key and line)."""
    from hte_mrt.reports.plans import plan_error

    problems: list = []
    d = plan.section("data")
    for role in ROLE_KEYS:
        col = d.get(role)
        if isinstance(col, str) and col not in frame.columns:
            if role == "prob" and _is_number(col):
                continue
            problems.append((("data", role), _missing_column(col, frame, role)))
    for i, e in enumerate(plan.estimands):
        for role, col in (e.get("data") or {}).items():
            if role in ROLE_KEYS and isinstance(col, str) and col not in frame.columns:
                if role == "prob" and _is_number(col):
                    continue
                problems.append((("estimands", i, "data", role), _missing_column(col, frame)))
        if isinstance(e.get("mediator"), str) and e["mediator"] not in frame.columns:
            problems.append(
                (("estimands", i, "mediator"), _missing_column(e["mediator"], frame, "mediator"))
            )
        if isinstance(e.get("numerator"), str) and e["numerator"] not in frame.columns:
            problems.append((("estimands", i, "numerator"), _missing_column(e["numerator"], frame)))
        for part in ("moderators", "controls"):
            for col in formula_columns(e.get(part, "~ 1")):
                if col not in frame.columns:
                    problems.append(
                        (
                            ("estimands", i, part),
                            f"'{col}' in {part} = {e[part]!r} is not a column of the data; "
                            + _missing_column(col, frame).split("; ", 1)[1],
                        )
                    )
        curve = e.get("curve")
        if curve and e.get("type") in ("distal", "mediation"):
            extra = [c for c in formula_columns(e.get("moderators", "~ 1"))
                     if c != curve["variable"]]  # fmt: skip
            if extra:
                problems.append((("estimands", i, "curve"), f"the curve varies only "
                                 f"'{curve['variable']}', but moderators = {e['moderators']!r} "
                                 f"also use {', '.join(map(repr, extra))}: remove the curve (the "
                                 "table has the coefficients) or moderate by the curve's "
                                 "variable alone."))  # fmt: skip
        if curve:
            var = curve["variable"]
            if var not in formula_columns(e.get("moderators", "~ 1")):
                problems.append((("estimands", i, "curve", "variable"), f"the curve's variable "
                                 f"'{var}' is not in moderators = {e.get('moderators', '~ 1')!r}:"
                                 " name one of the moderators."))  # fmt: skip
    if problems:
        raise plan_error(plan.text, plan.raw, problems, str(plan.path or plan.name))


def frequentist_fits(
    plan: Plan, data_for, *, quick: bool = False, dry: bool = False
) -> dict[str, Any]:
    """Each estimand's frequentist fit (WCLS; EMEE for a Bernoulli model; ``dcee``, ``mcee``
    or ``effect_size`` for the distal kinds, seeded by the plan's seed plus the estimand's
    position), seconds in all, with each ``lincombs`` entry checked against the estimand's
    effect terms (a :class:`~hte_mrt.errors.PlanError` naming every unknown term).
    ``data_for(override)`` gives the trial data with an estimand's role overrides; ``dry``
    (validation) skips the effect size's bootstrap."""
    from hte_mrt.estimators.emee import emee
    from hte_mrt.estimators.wcls import wcls
    from hte_mrt.reports.distal_plan import check_distal_outcome, fit_distal, is_distal
    from hte_mrt.reports.plan_schema import suggest
    from hte_mrt.reports.plans import plan_error

    family = plan.section("model").get("family", "gaussian")
    fits: dict[str, Any] = {}
    problems: list = []
    for i, e in enumerate(plan.estimands):
        data = data_for(e.get("data"))
        if is_distal(e):
            msg = check_distal_outcome(e, data)
            if msg:
                key = ("estimands", i, "data", "outcome") if (e.get("data") or {}).get(
                    "outcome") else ("estimands", i, "type")  # fmt: skip
                problems.append((key, msg))
                continue
            fit = fit_distal(e, data, plan.seed + i, quick=quick, dry=dry)
        else:
            fit = (emee if family == "bernoulli" else wcls)(
                data,
                e.get("moderators", "~ 1"),
                e.get("controls", "~ 1"),
                numerator=e.get("numerator"),
                lag=e.get("lag", 0),
            )
        fits[e["name"]] = fit
        if e.get("type") == "effect_size":
            continue
        terms = [str(t) for t in fit.table()["term"]]
        for name, weights in (e.get("lincombs") or {}).items():
            for term in weights:
                if term not in terms:
                    problems.append(
                        (
                            ("estimands", i, "lincombs", name, term),
                            f"'{term}' is not an effect term of this estimand"
                            f"{suggest(term, terms)}; its terms: {', '.join(terms)}.",
                        )
                    )
    if problems:
        raise plan_error(plan.text, plan.raw, problems, str(plan.path or plan.name))
    return fits


def dry_check(plan: Plan, frame: pd.DataFrame) -> None:
    """What a run builds before its first MCMC fit, built now: each estimand's data and its
    frequentist fit, so that data problems and unknown ``lincombs`` terms raise here."""
    built: dict[str, MRTData] = {}

    def data_for(override: dict | None) -> MRTData:
        key = json.dumps(override or {}, sort_keys=True, default=str)
        if key not in built:
            built[key] = mrt_data(plan, frame, override)
        return built[key]

    _check_family(plan, frame)
    frequentist_fits(plan, data_for, dry=True)


def _check_family(plan: Plan, frame: pd.DataFrame) -> None:
    """model.family = "bernoulli" needs a 0/1 outcome (every outcome the plan names)."""
    from hte_mrt.reports.plans import plan_error

    if plan.section("model").get("family", "gaussian") != "bernoulli":
        return
    from hte_mrt.reports.distal_plan import is_distal

    # the outcomes of the proximal estimands (the distal kinds are not fitted by EMEE)
    outcomes = [
        (e.get("data") or {}).get("outcome") or plan.section("data").get("outcome")
        for e in plan.estimands
        if not is_distal(e)
    ]
    for col in dict.fromkeys(c for c in outcomes if isinstance(c, str)):
        if col not in frame.columns:
            continue
        y = pd.to_numeric(frame[col], errors="coerce").dropna()
        if len(y) and not y.isin((0, 1)).all():
            raise plan_error(
                plan.text,
                plan.raw,
                [
                    (
                        ("model", "family"),
                        f'"bernoulli" needs a 0/1 outcome, but column {col!r} holds other '
                        f"values (e.g. {y[~y.isin((0, 1))].iloc[0]:g}); use family = "
                        '"gaussian" for a continuous outcome, or name a 0/1 outcome.',
                    )
                ],
                str(plan.path or plan.name),
            )


def _lag_words(e: dict) -> str:
    """The estimand's lag in words (every effects table and the methods paragraph say it)."""
    lag = e.get("lag", 0)
    if lag == 0:
        return "lag 0 (the proximal outcome after each decision point)"
    return f"lag {lag} (the outcome {lag} decision point{'s' if lag > 1 else ''} after treatment)"


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def mrt_data(plan: Plan, frame: pd.DataFrame, override: dict | None = None) -> MRTData:
    d = {k: v for k, v in plan.section("data").items() if k not in ("dataset", "path")}
    d.update(override or {})
    if "levels" in d:
        d.pop("prob", None)
    if isinstance(d.get("prob"), str) and _is_number(d["prob"]):
        d["prob"] = float(d["prob"])
    return MRTData(frame, **d)


def _settings(plan: Plan, quick: bool) -> dict[str, int]:
    s = {"draws": 1000, "tune": 1000, "chains": 4, **plan.section("sampler")}
    if quick:
        s.update(draws=200, tune=300, chains=2)
    return s


@dataclass
class _MRTRun:
    """What the steps of one MRT plan run share: settings, the report being written, and one
    fit per estimand (each estimand's data and design built once)."""

    plan: Plan
    frame: pd.DataFrame
    out: Path
    meta: dict
    quick: bool
    progress: bool
    rep: Report = field(init=False)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    caught: list[str] = field(default_factory=list)
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    freq: dict[str, Any] = field(default_factory=dict)
    distal: dict[str, Any] = field(default_factory=dict)
    distal_cc: dict[str, pd.DataFrame] = field(default_factory=dict)
    _data: dict[str, MRTData] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.plan.raw["plan"]
        self.rep = Report(self.plan.title, p.get("description", ""), quick=self.quick)
        self.model_cfg = self.plan.section("model")
        self.family = self.model_cfg.get("family", "gaussian")
        self.sampler = _settings(self.plan, self.quick)
        self.cc_cfg = {"threshold": 1.0, "bootstrap": False, **self.plan.section("crosscheck")}
        from hte_mrt.reports.distal_plan import is_distal

        self.primary = next(
            (e for e in self.plan.estimands if e.get("primary")), self.plan.estimands[0]
        )
        # the Bayesian model's primary estimand (robustness, methods): the primary if it is a
        # proximal one, else the first proximal estimand (None: a plan of distal kinds only)
        proximal = [e for e in self.plan.estimands if not is_distal(e)]
        self.bayes_primary = (
            self.primary if self.primary in proximal else (proximal[0] if proximal else None)
        )
        self.est = "EMEE" if self.family == "bernoulli" else "WCLS"

    def data(self, override: dict | None = None) -> MRTData:
        """The validated data with an estimand's role overrides, built once per distinct
        override (estimands without one share the plan's data)."""
        key = json.dumps(override or {}, sort_keys=True, default=str)
        if key not in self._data:
            self._data[key] = mrt_data(self.plan, self.frame, override)
        return self._data[key]


def run_mrt(
    plan: Plan, frame: pd.DataFrame, out: Path, meta: dict, *, quick: bool, progress: bool
) -> tuple[Report, dict[str, pd.DataFrame], dict[str, Path]]:
    """Run an MRT plan: its steps in order (one progress bar over them), then the report."""
    from hte_mrt.reports.distal_plan import distal_section, is_distal

    run = _MRTRun(plan, frame, out, meta, quick, progress)
    steps: list[tuple[str, Any]] = [
        ("trial summary", _trial_section),
        ("frequentist fits", _frequentist_step),  # every estimand checked before any MCMC
    ]
    steps += [
        (f"fit '{e['name']}'", partial(_fit_estimand, k=k, e=e))
        for k, e in enumerate(plan.estimands)
        if not is_distal(e)
    ]
    steps += [
        ("effects", _effects_section),
        ("distal effects", distal_section),
        ("heterogeneity", _heterogeneity_section),
        ("diagnostics", _diagnostics_section),
        ("robustness", _robustness_section),
        ("methods", _methods_section),
    ]
    for _, step in plan_steps(steps, progress=progress, desc=plan.name):
        step(run)
    meta["warnings"] = run.caught
    return run.rep, run.tables, run.files


def _trial_section(run: _MRTRun) -> None:
    """Participants, decision points, availability, the randomization check, exclusions."""
    rep, p = run.rep, run.plan.raw["plan"]
    summ = run.data().describe()
    rep.section("Trial")
    if p.get("citation"):
        rep.p(f"Data: {p['citation']}")
    rep.p(
        f"{summ.n_participants} participants, {summ.n_rows} decision points "
        f"({summ.decision_points[0]:g} to {summ.decision_points[1]:g}); availability rate "
        f"{summ.availability_rate:.3f}."
        + (f" {summ.n_clusters} clusters." if summ.n_clusters else "")
    )
    rep.table(
        summ.randomization,
        "Randomization on available decision points: observed vs stated treatment probability",
        "randomization",
    )
    if len(summ.exclusions):
        rep.table(summ.exclusions.head(50), f"Excluded rows ({len(summ.exclusions)})")


def _frequentist_step(run: _MRTRun) -> None:
    """WCLS / EMEE for every proximal estimand and the distal kinds' fits (seconds), before the
    first posterior is sampled; the distal fits' Bayesian-bootstrap cross-check if asked."""
    from hte_mrt.reports.distal_plan import crosscheck_table, is_distal

    fits = frequentist_fits(run.plan, run.data, quick=run.quick)
    for k, e in enumerate(run.plan.estimands):
        if not is_distal(e):
            run.freq[e["name"]] = fits[e["name"]]
            continue
        run.distal[e["name"]] = fits[e["name"]]
        if run.cc_cfg["bootstrap"] and e["type"] != "effect_size":
            run.distal_cc[e["name"]] = crosscheck_table(
                fits[e["name"]], run.plan.seed + k, quick=run.quick,
                threshold=float(run.cc_cfg["threshold"]),
            )  # fmt: skip


def _fit_estimand(run: _MRTRun, k: int, e: dict) -> None:
    """One estimand: the Bayesian posterior and its cross-check with the frequentist fit."""
    from hte_mrt.estimators.bayes.model import BayesMRT
    from hte_mrt.results.crosscheck import crosscheck

    plan, model_cfg, sampler = run.plan, run.model_cfg, run.sampler
    data = run.data(e.get("data"))
    kw = dict(numerator=e.get("numerator"), lag=e.get("lag", 0))
    mods, ctrl = e.get("moderators", "~ 1"), e.get("controls", "~ 1")
    freq = run.freq[e["name"]]
    model = BayesMRT(
        moderators=mods,
        controls=ctrl,
        family=run.family,
        random_slope=model_cfg.get("random_slope", False),
        correlated=model_cfg.get("correlated", False),
        cluster_intercept=model_cfg.get("cluster_intercept"),
        numerator=kw["numerator"],
        lag=kw["lag"],
        priors=model_cfg.get("priors"),
        method=model_cfg.get("method", "collapsed"),
        draws=sampler["draws"],
        tune=sampler["tune"],
        chains=sampler["chains"],
        seed=plan.seed + k,
        progress=run.progress,
        target_accept=sampler.get("target_accept"),
    )
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always", HteMrtWarning)
        post = model.fit(data)
    run.caught += [f"{e['name']}: {x.message}" for x in w if issubclass(x.category, HteMrtWarning)]
    boot = None
    if run.cc_cfg["bootstrap"] and getattr(freq, "scale", "difference") != "difference":
        # the Bayesian bootstrap is of WCLS (additive scale): not the EMEE estimand
        run.caught.append(
            f"{e['name']}: crosscheck.bootstrap skipped: the Bayesian bootstrap estimates the "
            "additive effect, this estimand is on the log relative-risk scale."
        )
    elif run.cc_cfg["bootstrap"]:
        from hte_mrt.estimators.bootstrap import bayesian_bootstrap

        # the posterior's design (WCLS's rows and terms), reused rather than rebuilt
        boot = bayesian_bootstrap(
            post.design, seed=plan.seed + k, n_boot=500 if run.quick else 4000, progress=False
        )
    cc = crosscheck(
        freq,
        post,
        *([boot] if boot is not None else []),
        lincombs=e.get("lincombs"),
        threshold=float(run.cc_cfg["threshold"]),
    )
    run.fits[e["name"]] = {
        "e": e,
        "data": data,
        "freq": freq,
        "post": post,
        "cc": cc,
        "model": model,
        "seed": plan.seed + k,
    }
    name = "posterior.nc" if e is run.primary else f"posterior_{e['name']}.nc"
    run.files[name] = post.to_netcdf(run.out / name)


def _effects_section(run: _MRTRun) -> None:
    """Per estimand: the cross-check table (with Pr(effect > 0)) and the effect curve."""
    from hte_mrt.reports.distal_plan import curve_grid

    rep, est = run.rep, run.est
    if not run.fits:
        return
    rep.section("Causal excursion effects")
    scale = "log relative risk" if run.family == "bernoulli" else "outcome scale"
    rep.p(
        f"Each row compares the posterior of the hierarchical Bayesian model with the {est} "
        f"estimate of the same estimand ({scale}). 'flag' marks a difference larger than "
        f"{run.cc_cfg['threshold']:g} {est} standard error(s): the two analyses disagree and the "
        "random-effects model's assumptions (e.g. exogenous time-varying moderators) deserve a "
        "look."
    )
    for name, f in run.fits.items():
        e = f["e"]
        cc = f["cc"].table()
        run.tables[f"effects_{name}"] = cc
        label = e.get("label", name) + (" (primary)" if e is run.primary else "")
        rep.table(cc, f"{label}: {e.get('moderators', '~ 1')}, {_lag_words(e)}", f"effects_{name}")
        curve = e.get("curve")
        if curve:
            grid = curve_grid(curve)
            ax = f["post"].plot_effect_curve(grid, x=curve["variable"], wcls=f["freq"])
            rep.figure(
                ax.figure,
                f"{label}: posterior mean and 95% band with the {est} "
                "estimate (dashed) and its 95% CI (dotted)",
                f"curve_{name}",
            )
        elif cc["term"].nunique() > 1:  # e.g. effects by a categorical moderator
            ax = f["cc"].plot()
            rep.figure(
                ax.figure,
                f"{label}: estimates and 95% intervals of each analysis"
                + (" (* flagged: the analyses disagree)" if f["cc"].flagged else ""),
                f"forest_{name}",
            )


def _heterogeneity_section(run: _MRTRun) -> None:
    """Random treatment-effect slopes: sd_u and the participants' effects (primary estimand)."""
    if not run.model_cfg.get("random_slope"):
        return
    rep = run.rep
    rep.section("Participant heterogeneity")
    if run.bayes_primary is None:
        return
    f = run.fits[run.bayes_primary["name"]]
    pe = f["post"].participant_effects()
    sd_u = f["post"].posterior["sd_u"].values.ravel()
    rep.p(
        f"Between-participant sd of the excursion effect (sd_u): posterior mean "
        f"{sd_u.mean():.3g}, 95% interval [{np.quantile(sd_u, 0.025):.3g}, "
        f"{np.quantile(sd_u, 0.975):.3g}]."
    )
    run.tables["participant_effects"] = pe
    ax = f["post"].plot_participants()
    rep.figure(
        ax.figure,
        "Participants' average excursion effects (posterior mean, 95% interval)",
        "participants",
    )


def _diagnostics_section(run: _MRTRun) -> None:
    """Sampler diagnostics per estimand and the convergence warnings in plain language."""
    rep = run.rep
    if not run.fits:
        return
    rep.section("Diagnostics")
    rows = []
    for name, f in run.fits.items():
        d = f["post"].diagnostics()
        rows.append(
            {
                "estimand": name,
                "chains": d["chains"],
                "draws per chain": d["total_draws"] // max(1, d["chains"]),
                "divergences": d["divergences"],
                "max_r_hat": d["max_r_hat"],
                "min_ess_bulk": d["min_ess_bulk"],
                "min_ess_tail": d["min_ess_tail"],
                "min_bfmi": min(d["bfmi"]) if d["bfmi"] else np.nan,
            }
        )
    run.tables["diagnostics"] = pd.DataFrame(rows)
    rep.table(
        run.tables["diagnostics"],
        "Sampler diagnostics (R-hat <= 1.01, ESS >= 400 and no divergences are the usual bars)",
        "diagnostics",
    )
    if run.caught:
        for m in run.caught:
            rep.p("Warning: " + m)
    else:
        rep.p(
            "No convergence warnings: every R-hat <= 1.01, effective sample sizes adequate, "
            "no divergent transitions."
        )


def _robustness_section(run: _MRTRun) -> None:
    """The re-randomization test and the prior sensitivity of the primary estimand."""
    rob = run.plan.section("robustness")
    # each check: true (defaults), a table of settings, or false / absent (not run)
    rt_cfg, ps = rob.get("randomization_test"), rob.get("prior_sensitivity")
    rt_cfg = {} if rt_cfg is True else rt_cfg
    ps = {} if ps is True else ps
    if (rt_cfg in (None, False) and ps in (None, False)) or run.bayes_primary is None:
        return
    rep, e = run.rep, run.bayes_primary
    f = run.fits[e["name"]]
    rep.section("Robustness")
    if rt_cfg not in (None, False):
        from hte_mrt.estimators.randomization import randomization_test

        n = 200 if run.quick else int(rt_cfg.get("resamples", 5000))
        rt = randomization_test(
            f["data"],
            e.get("moderators", "~ 1"),
            e.get("controls", "~ 1"),
            numerator=e.get("numerator"),
            lag=e.get("lag", 0),
            n_resamples=n,
            seed=run.plan.seed,
            progress=False,
        )
        run.tables["randomization_test"] = rt.table()
        rep.table(
            rt.table(),
            f"Re-randomization test of the primary estimand ({_lag_words(e)}; {n} redraws of "
            "the treatment from the stated probabilities)",
            "randomization_test",
        )
    if ps not in (None, False):
        ps_warn: list[str] = []
        run.tables["prior_sensitivity"] = _prior_sensitivity(
            f, ps.get("scales", [0.5, 2.0]), run.sampler, run.progress, ps_warn
        )
        rep.table(
            run.tables["prior_sensitivity"],
            "Prior sensitivity of the primary estimand: "
            "the effect prior's sd multiplied by each scale",
            "prior_sensitivity",
        )
        for m in ps_warn:
            rep.p("Warning: " + m)
        run.caught += ps_warn


def _methods_section(run: _MRTRun) -> None:
    """The methods paragraph and the reproducibility block."""
    from hte_mrt.reports.distal_plan import methods as distal_methods

    plan, meta, rep = run.plan, run.meta, run.rep
    rep.section("Methods")
    if run.bayes_primary is not None:
        rep.p(
            _methods(
                plan, run.fits, run.bayes_primary, run.sampler, meta, run.family,
                run.bayes_primary is run.primary,
            )
        )  # fmt: skip
    for text in distal_methods(run):
        rep.p(text)
    rep.section("Reproducibility")
    rep.pre(
        f"plan {plan.path or plan.name}  sha256 {plan.sha256}\n"
        f"data sha256 {meta['data_sha256']}\nseed {plan.seed}\n"
        + "\n".join(f"{k} {v}" for k, v in meta["versions"].items())
    )


def _prior_sensitivity(f, scales, sampler, progress, caught: list[str]) -> pd.DataFrame:
    """Refits of the primary estimand with the effect prior's sd times each scale (same seed
    and sampler settings); convergence warnings are appended to ``caught``."""
    from hte_mrt.estimators.bayes.model import BayesMRT
    from hte_mrt.estimators.bayes.priors import resolve_priors

    base = f["model"]
    d = f["post"].design  # the primary fit's design: the default priors without a rebuild
    beta = resolve_priors(base.priors, d.y, d.G, d.g_names, d.F, base.family)["beta"]
    rows = []
    for s in [1.0, *scales]:
        pri = dict(base.priors or {})
        sig = np.atleast_1d(np.asarray(beta["sigma"], dtype=float)) * float(s)
        pri["beta"] = {"dist": "normal", "mu": beta.get("mu", 0.0), "sigma": sig.tolist()}
        # the primary fit's sampler settings and seed: only the prior differs
        cfg = {**base.config(), "priors": pri}
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always", HteMrtWarning)
            post = f["post"] if s == 1.0 else BayesMRT.from_config(cfg).fit(f["data"])
        caught += [f"prior scale {s:g}: {x.message}" for x in w
                   if issubclass(x.category, HteMrtWarning)]  # fmt: skip
        sm = post.table()
        sm = sm[sm["term"].isin([str(t) for t in post.effect_draws()["term"].values])]
        for r in sm.to_dict("records"):
            rows.append(
                {
                    "prior_scale": s,
                    "term": r["term"],
                    "estimate": r["estimate"],
                    "se": r["se"],
                    "lcl": r["lcl"],
                    "ucl": r["ucl"],
                    "pr_positive": r["pr_positive"],
                }
            )
    return pd.DataFrame(rows)


def _methods(plan, fits, primary, sampler, meta, family, is_primary: bool = True) -> str:
    f = fits[primary["name"]]
    cfg = f["model"].config()
    v = meta["versions"]
    lik = (
        "a Bernoulli likelihood with a logit link (effects reported on the log relative-risk "
        "scale, standardized over available decision points)"
        if family == "bernoulli"
        else "a Gaussian likelihood with the random effects integrated out analytically"
    )
    re_terms = ["participant random intercepts"]
    if cfg.get("random_slope"):
        re_terms.append(
            "participant random treatment effects"
            + (" correlated with the intercepts" if cfg.get("correlated") else "")
        )
    if f["data"].roles.cluster:
        re_terms.append("cluster random intercepts")
    est = (
        "EMEE (Qian et al. 2021)"
        if family == "bernoulli"
        else (
            "weighted and centred least squares (WCLS; Boruvka et al. 2018) with the small-sample "
            "corrected sandwich variance (Mancl and DeRouen 2001)"
        )
    )
    overrides = (
        "user overrides: " + ", ".join(cfg["priors"]) if cfg.get("priors") else "no overrides"
    )
    return (
        f"Causal excursion effects (Boruvka et al. 2018; Qian et al. 2022) were estimated with a "
        f"hierarchical Bayesian model with {', '.join(re_terms)} and {lik}; the treatment "
        f"indicator was centred at its randomization probability and only available decision "
        f"points entered the likelihood. The "
        f"{'primary' if is_primary else repr(primary['name'])} estimand's effect model was "
        f"{primary.get('moderators', '~ 1')} with controls {primary.get('controls', '~ 1')}, "
        f"{_lag_words(primary)}. "
        f"Priors were weakly informative and scaled to the outcome's spread (effect terms "
        f"N(0, s_y^2 / s_j^2); variance components half-normal with scale s_y); "
        f"{overrides}. "
        f"Posteriors were sampled with the No-U-Turn sampler (nutpie {v.get('nutpie', '-')}, "
        f"PyMC {v.get('pymc', '-')}), {sampler['chains']} chains of {sampler['draws']} draws "
        f"after {sampler['tune']} tuning iterations, seed {plan.seed}; convergence was checked "
        f"by R-hat, effective sample sizes and divergences. Every posterior summary was "
        f"cross-checked against {est}. Analyses used hte_mrt {v.get('hte_mrt', '-')} "
        f"(Python {v.get('python')}) following the pre-specified plan '{plan.name}' "
        f"(SHA-256 {plan.sha256[:12]}...)."
    )
