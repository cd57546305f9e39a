"""Command-line interface: ``hte-mrt <command>``. Exit codes: 0 ok, 2 usage, 3 data/model error."""

from __future__ import annotations

import argparse
import sys

from hte_mrt.errors import HteMrtError


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
    from hte_mrt.data.datasets import load
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HteMrtError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
