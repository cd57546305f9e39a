"""Command-line interface: ``hte-mrt <command>``.

Exit codes scripts can rely on: 0 ok, 2 usage error (argparse), 3 data / model / design error,
4 invalid analysis plan (``run`` / ``validate``), 5 power not reachable (``samplesize``).
"""

from __future__ import annotations

import argparse
import sys

from hte_mrt.errors import HteMrtError, PlanError


def _cmd_demo(args: argparse.Namespace) -> int:
    from hte_mrt.reports.demo import run_demo

    run_demo(args.out, n_resamples=args.resamples, seed=args.seed)
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from hte_mrt.data.datasets import DATASETS

    for name, desc in DATASETS.items():
        print(f"{name:12s} {desc}")
    return 0


def _cmd_wcls(args: argparse.Namespace) -> int:
    import pandas as pd

    from hte_mrt.data import MRTData
    from hte_mrt.data.datasets import load_dataset as load
    from hte_mrt.estimators.wcls import wcls

    frame = load(args.data) if not args.data.endswith(".csv") else pd.read_csv(args.data)
    try:
        prob: float | str = float(args.prob)
    except ValueError:
        prob = args.prob
    data = MRTData(
        frame,
        id=args.id,
        time=args.time,
        treatment=args.treatment,
        outcome=args.outcome,
        prob=prob,
        availability=args.availability,
        missing=args.missing,
    )
    num = None
    if args.numerator is not None:
        try:
            num = float(args.numerator)
        except ValueError:
            num = args.numerator
    fit = wcls(
        data,
        args.moderators,
        args.controls,
        numerator=num,
        lag=args.lag,
        conf_level=args.conf_level,
    )
    print(fit.summary())
    if args.output:
        fit.table().to_csv(args.output, index=False)
        print(f"Wrote {args.output}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from hte_mrt.reports.run import run_plan

    quick = True if args.quick else None  # None: HTE_MRT_QUICK decides
    res = run_plan(args.plan, args.out, quick=quick, progress=not args.no_progress)
    _print_headline(res)
    print(f"Report: {res.files['html']}")
    print(f"        {res.files['md']}, {res.files['tex']}, {res.out / 'figures'}/")
    print(
        f"        {res.files['metadata']} (plan sha256 {res.plan.sha256[:12]}..., seed "
        f"{res.plan.seed})"
    )
    return 0


def _print_headline(res) -> None:
    """The run's headline estimates, as a table, above the list of files written."""
    if res.quick:
        print("QUICK RUN: few draws and resamples; not for publication.")
    head = res.headline()
    print(f"\n{res.plan.title}: headline estimates")
    print(head.to_string(index=False))
    print()


def _cmd_validate(args: argparse.Namespace) -> int:
    from hte_mrt.reports.run import validate

    plan = validate(args.plan, check_data=not args.no_data)
    print(
        f"OK: {plan.name} ({plan.kind} plan, {len(plan.estimands)} estimand(s), seed "
        f"{plan.seed}, sha256 {plan.sha256[:12]}...)"
    )
    return 0


def _design_kwargs(args: argparse.Namespace) -> dict:
    from hte_mrt.design import Curve

    def curve(shape: str, initial, mean, turn, name: str):
        if shape == "constant":
            return Curve.constant(mean)
        if shape == "linear":
            return Curve.linear(initial=initial, mean=mean)
        if turn is None:
            raise SystemExit(f"--{name}-turn-day is needed for a quadratic {name} curve")
        return Curve.quadratic(initial=initial, mean=mean, turn_day=turn)

    return {
        "days": args.days,
        "per_day": args.per_day,
        "prob": args.prob,
        "availability": curve(
            args.availability_shape,
            args.availability_initial,
            args.availability_mean,
            args.availability_turn_day,
            "availability",
        ),
        "effect": curve(
            args.effect_shape, args.effect_initial, args.effect_mean, args.effect_turn_day, "effect"
        ),
        "q": args.q,
        "alpha": args.alpha,
    }


def _cmd_samplesize(args: argparse.Namespace) -> int:
    from hte_mrt.design import PowerNotReachableError, mrt_sample_size, power_table

    kw = _design_kwargs(args)
    try:
        res = mrt_sample_size(**kw, power=args.power)
    except PowerNotReachableError as e:
        print(f"not reachable: {e}", file=sys.stderr)
        return 5
    print(res)
    if args.table:
        lo, hi = args.table
        print(f"\nPower at N = {lo}..{hi}")
        print(power_table(range(lo, hi + 1), **kw).to_string(index=False))
    return 0


def _cmd_power(args: argparse.Namespace) -> int:
    from hte_mrt.design import mrt_power

    print(mrt_power(args.n, **_design_kwargs(args)))
    return 0


def _design_args(sp: argparse.ArgumentParser) -> None:
    g = sp.add_argument_group("design (the MRT-SS calculator's fields)")
    g.add_argument("--days", type=int, required=True, help="duration of the study in days")
    g.add_argument("--per-day", type=int, required=True, help="decision points per day")
    g.add_argument("--prob", type=float, required=True, help="randomization probability")
    for name in ("availability", "effect"):
        g.add_argument(
            f"--{name}-shape",
            choices=["constant", "linear", "quadratic"],
            default="constant",
            help=f"shape of the {name} curve over days",
        )
        g.add_argument(
            f"--{name}-initial",
            type=float,
            default=0.0,
            help=f"{name} on day 1 (linear / quadratic)",
        )
        g.add_argument(
            f"--{name}-mean",
            type=float,
            required=True,
            help=f"average {name} over the study"
            + (" (standardized: effect / residual sd)" if name == "effect" else ""),
        )
        g.add_argument(
            f"--{name}-turn-day",
            type=int,
            default=None,
            help=f"day of the {name} curve's maximum or minimum (quadratic)",
        )
    g.add_argument("--q", type=int, default=3, help="number of control variables (default 3)")
    g.add_argument("--alpha", type=float, default=0.05, help="type I error rate")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hte-mrt",
        description=(
            "Treatment-effect heterogeneity in micro-randomized and cluster-randomized trials."
        ),
    )
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="WCLS analyses of the bundled HeartSteps V1 data")
    d.add_argument("--out", default="reports/demo", help="output folder (default reports/demo)")
    d.add_argument("--resamples", type=int, default=5000, help="randomization-test redraws")
    d.add_argument("--seed", type=int, default=2026)
    d.set_defaults(func=_cmd_demo)

    ds = sub.add_parser("datasets", help="list bundled datasets")
    ds.set_defaults(func=_cmd_datasets)

    w = sub.add_parser("wcls", help="fit a WCLS causal excursion effect")
    w.add_argument("--data", required=True, help="bundled dataset name or path to a CSV file")
    w.add_argument("--id", required=True, help="participant id column")
    w.add_argument("--time", required=True, help="decision point column")
    w.add_argument("--treatment", required=True, help="binary treatment column")
    w.add_argument("--outcome", required=True, help="proximal outcome column")
    w.add_argument("--prob", required=True, help="randomization probability: number or column")
    w.add_argument("--availability", default=None, help="availability column (default: all)")
    w.add_argument("--moderators", default="~ 1", help="moderator formula, e.g. '~ day'")
    w.add_argument("--controls", default="~ 1", help="control formula")
    w.add_argument("--numerator", default=None, help="numerator probability (number or column)")
    w.add_argument("--lag", type=int, default=0)
    w.add_argument("--conf-level", type=float, default=0.95)
    w.add_argument("--missing", choices=["error", "drop"], default="error")
    w.add_argument("--output", default=None, help="write the table to this CSV")
    w.set_defaults(func=_cmd_wcls)

    r = sub.add_parser("run", help="run an analysis plan (models/*.toml) and write its report")
    r.add_argument("plan", help="path to a plan file, e.g. models/heartsteps_v1_primary.toml")
    r.add_argument(
        "--out", default=None, help="report folder (default: the plan's, or reports/<plan name>)"
    )
    r.add_argument(
        "--quick",
        action="store_true",
        help="few draws / resamples (a smoke run; also HTE_MRT_QUICK=1): the report is marked "
        "QUICK RUN and goes to its own folder (<report folder>-quick)",
    )
    r.add_argument(
        "--no-progress", action="store_true", help="hide the progress bars (plan steps, samplers)"
    )
    r.set_defaults(func=_cmd_run)

    v = sub.add_parser("validate", help="check a plan file (keys, columns, priors) without running")
    v.add_argument("plan")
    v.add_argument("--no-data", action="store_true", help="skip loading the data")
    v.set_defaults(func=_cmd_validate)

    ss = sub.add_parser("samplesize", help="MRT sample size (Liao et al. 2016, as MRT-SS)")
    _design_args(ss)
    ss.add_argument("--power", type=float, default=0.8, help="target power (default 0.8)")
    ss.add_argument(
        "--table",
        type=int,
        nargs=2,
        metavar=("N_MIN", "N_MAX"),
        default=None,
        help="also print power at N = N_MIN..N_MAX",
    )
    ss.set_defaults(func=_cmd_samplesize)

    pw = sub.add_parser("power", help="power of an MRT with N participants")
    pw.add_argument("--n", type=int, required=True, help="number of participants")
    _design_args(pw)
    pw.set_defaults(func=_cmd_power)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PlanError as e:
        print(f"invalid plan: {e}", file=sys.stderr)
        return 4
    except HteMrtError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
