"""The sample-size plan runner: the MRT-SS calculation, a power table and the power curve."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hte_mrt.errors import PlanError
from hte_mrt.reports.plans import Plan, _line
from hte_mrt.reports.render import Report

SHAPES = ("constant", "linear", "quadratic")


def curve_from(spec, key: str, plan: Plan):
    """A :class:`~hte_mrt.design.Curve` (or number / list) from a plan entry."""
    from hte_mrt.design import Curve

    if isinstance(spec, int | float | list):
        return spec
    if not isinstance(spec, dict) or spec.get("shape") not in SHAPES:
        raise PlanError(
            f"give a number, a list or a table with shape = {' | '.join(SHAPES)}.",
            key=key,
            line=_line(plan.text, key.split(".")[-1]),
        )
    args = {k: v for k, v in spec.items() if k != "shape"}
    try:
        return getattr(Curve, spec["shape"])(**args)
    except TypeError as e:
        raise PlanError(
            f"bad curve arguments ({e}).", key=key, line=_line(plan.text, key.split(".")[-1])
        ) from e


def build_design(plan: Plan):
    """The plan's design (a :class:`~hte_mrt.design.ContinuousDesign`), ``alpha``, the target
    power and the power table's range ``(n_min, n_max)``."""
    from hte_mrt.design import continuous_design

    d = dict(plan.raw["design"])
    design = continuous_design(
        days=d["days"],
        per_day=d["per_day"],
        prob=curve_from(d["prob"], "design.prob", plan),
        availability=curve_from(d["availability"], "design.availability", plan),
        effect=curve_from(d["effect"], "design.effect", plan),
        q=d.get("q", 3),
    )
    return design, d.get("alpha", 0.05), d.get("power", 0.8), d.get("power_table", [20, 100])


def run_samplesize(plan: Plan, out: Path, meta: dict):
    from hte_mrt.design import plot_power_curve

    design, alpha, target, ns = build_design(plan)
    # the design is built once; the sample size, the table and the curve all ask it
    res = design.sample_size(power=target, alpha=alpha)
    tab = design.power_table(range(int(ns[0]), int(ns[1]) + 1), alpha)
    rep = Report(plan.title, plan.raw["plan"].get("description", ""))
    rep.section("Sample size")
    summary = res.summary()
    rep.p(summary.title)
    rep.p(f"Design: {design.describe()}.")
    for note in summary.notes:
        rep.p(f"Note: {note}")
    rep.table(res.table(), "Sample size (Liao et al. 2016, as MRT-SS)", "samplesize")
    rep.table(tab, f"Power at N = {ns[0]}..{ns[1]}", "power_table")
    rep.figure(plot_power_curve(res), "Power against the number of participants", "power_curve")
    return rep, {"samplesize": res.table(), "power_table": pd.DataFrame(tab)}, {}
