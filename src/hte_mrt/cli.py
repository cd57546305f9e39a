"""Command-line interface: ``hte-mrt <command>``.

Commands: ``run`` and ``validate`` (analysis plans, ``models/*.toml``), ``wcls`` (one causal
excursion effect from a CSV or a bundled dataset), ``dcee`` and ``mcee`` (distal and mediated
excursion effects), ``effect-size`` (standardized proximal effect over time), ``samplesize``
and ``power`` (MRT design), ``datasets`` and ``demo``.

Exit codes scripts can rely on:

* 0: ok;
* 2: usage error (a missing or malformed argument; argparse prints the usage);
* 3: data, model or design error (a file that is not there, a column the data lack, ...);
* 4: invalid analysis plan (``run`` / ``validate``);
* 5: power not reachable (``samplesize``).

A user error prints one line ``error: ...`` on stderr (an invalid plan: one line per problem)
and never a traceback; an unexpected internal error (a bug) still shows its traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from hte_mrt.errors import DataError, HteMrtError, PlanError

EXIT_OK, EXIT_USAGE, EXIT_DATA, EXIT_PLAN, EXIT_POWER = 0, 2, 3, 4, 5


class UsageError(HteMrtError):
    """Arguments that parse but do not fit together (exit code 2)."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from hte_mrt.reports.demo import run_demo

    run_demo(args.out, n_resamples=args.resamples, seed=args.seed)
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from hte_mrt.data.datasets import DATASETS

    for name, desc in DATASETS.items():
        print(f"{name:12s} {desc}")
    return 0


def _load_frame(data: str):
    """``--data``: a CSV file (any case of ``.csv``, or any existing file) or a bundled
    dataset's name."""
    from pathlib import Path

    from hte_mrt.data.datasets import DATASETS, load_dataset
    from hte_mrt.reports.plan_schema import suggest
    from hte_mrt.reports.run import read_csv

    path = Path(data)
    if path.suffix.lower() == ".csv" or path.is_file() or "/" in data or "\\" in data:
        return read_csv(path, what="--data")
    if data not in DATASETS:
        raise DataError(
            f"--data {data!r} is neither a CSV file nor a bundled dataset{suggest(data, DATASETS)};"
            f" bundled datasets: {', '.join(DATASETS)} (hte-mrt datasets), or give a path to a "
            ".csv file."
        )
    return load_dataset(data)


def _trial(args: argparse.Namespace):
    """The trial of ``wcls`` / ``dcee`` / ``mcee`` / ``effect-size`` from its arguments."""
    from hte_mrt.data import MRTData

    frame = _load_frame(args.data)
    try:
        prob: float | str = float(args.prob)
    except ValueError:
        prob = args.prob
    return MRTData(
        frame,
        id=args.id,
        time=args.time,
        treatment=args.treatment,
        outcome=args.outcome,
        prob=prob,
        availability=args.availability,
        missing=args.missing,
    )


def _print_fit(fit, args: argparse.Namespace) -> int:
    print(fit.summary())
    if args.output:
        _write_csv(fit.table(conf_level=args.conf_level), args.output)
        print(f"Wrote {args.output}")
    return 0


def _fit_distal(fn: Callable[..., Any], args: argparse.Namespace, *columns: str) -> int:
    """``dcee`` / ``mcee`` (``fn``) with the arguments of :func:`_distal_args`; ``columns``
    come between the trial and the moderators (mcee's mediator)."""
    fit = fn(
        _trial(args),
        *columns,
        args.moderators,
        args.controls,
        learner=args.learner,
        cross_fit=args.cross_fit or False,
        seed=args.seed,
        conf_level=args.conf_level,
    )
    return _print_fit(fit, args)


def _cmd_dcee(args: argparse.Namespace) -> int:
    from hte_mrt.estimators.distal import dcee

    return _fit_distal(dcee, args)


def _cmd_mcee(args: argparse.Namespace) -> int:
    from hte_mrt.estimators.distal import mcee

    return _fit_distal(mcee, args, args.mediator)


def _cmd_effect_size(args: argparse.Namespace) -> int:
    from hte_mrt.estimators.effect_size import effect_size

    fit = effect_size(
        _trial(args),
        args.controls,
        smooth=not args.no_smooth,
        span=args.span,
        n_boot=args.n_boot,
        seed=args.seed,
        conf_level=args.conf_level,
        progress=not args.no_progress,
    )
    print(fit.summary())
    print(fit.table().to_string(index=False))
    if args.output:
        _write_csv(fit.table(), args.output)
        print(f"Wrote {args.output}")
    if args.figure:
        try:
            fit.plot().savefig(args.figure, bbox_inches="tight")
        except OSError as e:
            raise DataError(
                f"--figure: cannot write {args.figure!r} ({e.strerror or e}); give a path in a "
                "folder that exists and that you can write to."
            ) from None
        except ValueError as e:  # an unknown image format
            raise UsageError(f"--figure {args.figure!r}: {e}; end the name with .png, .svg or "
                             ".pdf.") from None  # fmt: skip
        print(f"Wrote {args.figure}")
    return 0


def _cmd_wcls(args: argparse.Namespace) -> int:
    from hte_mrt.estimators.wcls import wcls

    data = _trial(args)
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
        _write_csv(fit.table(), args.output)
        print(f"Wrote {args.output}")
    return 0


def _write_csv(table, path: str) -> None:
    try:
        table.to_csv(path, index=False)
    except OSError as e:
        raise DataError(
            f"--output: cannot write {path!r} ({e.strerror or e}); give a path in a folder "
            "that exists and that you can write to."
        ) from None


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
        given = [f"--{name}-initial"] if initial is not None else []
        given += [f"--{name}-turn-day"] if turn is not None else []
        if shape == "constant" and given:
            raise UsageError(
                f"{' and '.join(given)} need(s) --{name}-shape linear or quadratic (a constant "
                f"{name} curve has only --{name}-mean): add --{name}-shape, or drop "
                f"{' and '.join(given)}."
            )
        if shape == "linear" and turn is not None:
            raise UsageError(
                f"--{name}-turn-day needs --{name}-shape quadratic (a linear curve has no turning "
                f"day): use --{name}-shape quadratic, or drop --{name}-turn-day."
            )
        initial = 0.0 if initial is None else initial
        if shape == "constant":
            return Curve.constant(mean)
        if shape == "linear":
            return Curve.linear(initial=initial, mean=mean)
        if turn is None:
            raise UsageError(
                f"--{name}-turn-day is needed for a quadratic {name} curve: add "
                f"--{name}-turn-day DAY (the day of the curve's maximum or minimum)."
            )
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

    if args.table and args.table[0] > args.table[1]:
        raise UsageError(
            f"--table {args.table[0]} {args.table[1]}: give N_MIN <= N_MAX, e.g. --table "
            f"{args.table[1]} {args.table[0]}."
        )
    kw = _design_kwargs(args)
    try:
        res = mrt_sample_size(**kw, power=args.power)
    except PowerNotReachableError as e:
        _error(f"power not reachable: {e}")
        return EXIT_POWER
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


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum`` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _number(text: str) -> float:
    """An argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _design_args(sp: argparse.ArgumentParser) -> None:
    g = sp.add_argument_group("design (the fields of the MRT-SS calculator)")
    g.add_argument(
        "--days", type=_int_at_least(1), required=True, help="duration of the study in days"
    )
    g.add_argument(
        "--per-day", type=_int_at_least(1), required=True, help="decision points per day"
    )
    g.add_argument(
        "--prob", type=_number, required=True, help="randomization probability, in (0, 1)"
    )
    for name in ("availability", "effect"):
        g.add_argument(
            f"--{name}-shape",
            choices=["constant", "linear", "quadratic"],
            default="constant",
            help=f"shape of the {name} curve over days (default: constant)",
        )
        g.add_argument(
            f"--{name}-initial",
            type=_number,
            default=None,
            help=f"{name} on day 1 (linear and quadratic curves; default: 0)",
        )
        g.add_argument(
            f"--{name}-mean",
            type=_number,
            required=True,
            help=f"average {name} over the study"
            + (" (standardized: effect / residual sd)" if name == "effect" else ", in (0, 1]"),
        )
        g.add_argument(
            f"--{name}-turn-day",
            type=_int_at_least(1),
            default=None,
            metavar="DAY",
            help=f"day of the {name} curve's maximum or minimum (quadratic curves)",
        )
    g.add_argument(
        "--q", type=_int_at_least(0), default=3, help="number of control variables (default: 3)"
    )
    g.add_argument("--alpha", type=_number, default=0.05, help="type I error rate (default: 0.05)")


def _role_args(sp: argparse.ArgumentParser, outcome_help: str) -> None:
    """The trial's data and column roles (``--data`` to ``--availability``)."""
    sp.add_argument(
        "--data", required=True, metavar="CSV|NAME",
        help="a CSV file (.csv in any case) or a bundled dataset's name (hte-mrt datasets)",
    )  # fmt: skip
    sp.add_argument("--id", required=True, metavar="COLUMN", help="participant id column")
    sp.add_argument("--time", required=True, metavar="COLUMN", help="decision point column")
    sp.add_argument("--treatment", required=True, metavar="COLUMN", help="binary treatment column")
    sp.add_argument("--outcome", required=True, metavar="COLUMN", help=outcome_help)
    sp.add_argument(
        "--prob", required=True, help="randomization probability: a number in (0, 1) or a column"
    )
    sp.add_argument(
        "--availability", default=None, metavar="COLUMN",
        help="availability column (default: always available)",
    )  # fmt: skip


def _trial_args(sp: argparse.ArgumentParser, outcome_help: str) -> None:
    """The trial's arguments (data and column roles), as ``wcls`` has them."""
    _role_args(sp, outcome_help)
    sp.add_argument(
        "--missing", choices=["error", "drop"], default="error",
        help="rows with missing values: stop with an error (default) or drop them",
    )  # fmt: skip
    sp.add_argument(
        "--conf-level", type=_number, default=0.95, help="interval level (default: 0.95)"
    )
    sp.add_argument(
        "--output", default=None, metavar="CSV", help="also write the table to this CSV file"
    )


def _distal_args(sp: argparse.ArgumentParser, learner: str, moderators_help: str) -> None:
    """``dcee`` / ``mcee``: effect and nuisance models, cross-fitting, seed."""
    sp.add_argument("--moderators", default="~ 1", metavar="FORMULA", help=moderators_help)
    sp.add_argument(
        "--controls", default="~ 1", metavar="FORMULA",
        help="covariates of the nuisance models, e.g. '~ dp + X' (default: '~ 1')",
    )  # fmt: skip
    sp.add_argument(
        "--learner", choices=["lm", "glm", "gam", "rf", "gb"], default=learner,
        help=f"nuisance learner (default: {learner}); gam takes s(x) terms in --controls",
    )  # fmt: skip
    sp.add_argument(
        "--cross-fit", type=_int_at_least(2), default=None, metavar="K",
        help="cross-fit the nuisance models over K participant folds (default: no cross-fitting)",
    )  # fmt: skip
    sp.add_argument(
        "--seed", type=_int_at_least(0), default=None,
        help="random seed of the folds and the random learners",
    )  # fmt: skip


EPILOG = (
    "exit codes: 0 ok, 2 usage error, 3 data / model / design error, 4 invalid analysis plan, "
    "5 power not reachable. A user error prints one line 'error: ...' on stderr."
)


def build_parser() -> argparse.ArgumentParser:
    """The ``hte-mrt`` argument parser (one subcommand per task)."""
    p = argparse.ArgumentParser(
        prog="hte-mrt",
        description=(
            "Treatment-effect heterogeneity in micro-randomized and cluster-randomized trials: "
            "run pre-specified analysis plans, fit causal excursion effects, size an MRT."
        ),
        epilog=EPILOG,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help, description=description, epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip

    r = add(
        "run",
        "run an analysis plan (models/*.toml) and write its report",
        "Run an analysis plan and write its report folder (report.html, report.md, tables.tex, "
        "figures/,\nposteriors, metadata.json); the headline estimates are printed at the end.\n"
        "The plan is validated first: an invalid plan exits with 4 before anything runs.\n\n"
        "estimand kinds of an MRT plan ([[estimands]] type = ...):\n"
        "  marginal, moderated, time_varying, lagged   proximal effects: WCLS (EMEE) and the\n"
        "                                              Bayesian model, cross-checked\n"
        "  distal       distal causal excursion effect (dcee; keys moderators, controls,\n"
        '               learner, cross_fit; the distal outcome as data = { outcome = "Y" })\n'
        "  mediation    natural direct and indirect effects through a mediator (mcee; keys\n"
        "               mediator, moderators, controls, learner, cross_fit, data)\n"
        "  effect_size  standardized proximal effect over decision points (keys controls,\n"
        "               smooth, span, n_boot)\n\n"
        "example: hte-mrt run models/heartsteps_v1_primary.toml --quick",
    )
    r.add_argument("plan", help="the plan file, e.g. models/heartsteps_v1_primary.toml")
    r.add_argument(
        "--out",
        default=None,
        metavar="FOLDER",
        help="report folder (default: the plan's [report] out, else reports/<plan name>)",
    )
    r.add_argument(
        "--quick",
        action="store_true",
        help="few draws and resamples, a smoke run (also HTE_MRT_QUICK=1): the report is marked "
        "QUICK RUN and goes to its own folder (<report folder>-quick)",
    )
    r.add_argument(
        "--no-progress", action="store_true", help="hide the progress bars (plan steps, samplers)"
    )
    r.set_defaults(func=_cmd_run)

    v = add(
        "validate",
        "check a plan file (keys, types, ranges, columns, priors, learners) without running it",
        "Check an analysis plan without running it: every key's type and range, unknown keys,\n"
        "formulas, priors, learners' parameters and (unless --no-data) the columns it names.\n"
        "Every problem is listed with its key and line; exit code 4 if there is any.\n\n"
        "example: hte-mrt validate models/tassh_cate.toml",
    )
    v.add_argument("plan", help="the plan file, e.g. models/tassh_cate.toml")
    v.add_argument(
        "--no-data", action="store_true", help="do not load the data (skip the column check)"
    )
    v.set_defaults(func=_cmd_validate)

    w = add(
        "wcls",
        "fit a causal excursion effect by WCLS (a CSV file or a bundled dataset)",
        "Fit a causal excursion effect by weighted and centred least squares (WCLS) and print\n"
        "its table.\n\n"
        "example: hte-mrt wcls --data heartsteps --id user --time decision_index_nogap \\\n"
        "  --treatment send --outcome jbsteps30_log --prob rand_prob --availability avail \\\n"
        "  --moderators '~ study_day_nogap' --controls '~ jbsteps30pre_log'",
    )
    _role_args(w, "proximal outcome column")
    w.add_argument(
        "--moderators", default="~ 1", metavar="FORMULA",
        help="effect moderators, e.g. '~ day' (default: '~ 1', the marginal effect)",
    )  # fmt: skip
    w.add_argument(
        "--controls", default="~ 1", metavar="FORMULA",
        help="control variables, e.g. '~ steps_pre' (default: '~ 1')",
    )  # fmt: skip
    w.add_argument(
        "--numerator", default=None,
        help="numerator probability of the weights: a number or a column (default: --prob's "
        "marginal mean)",
    )  # fmt: skip
    w.add_argument(
        "--lag", type=_int_at_least(0), default=0,
        help="outcome lag in decision points (default: 0, the proximal outcome)",
    )  # fmt: skip
    w.add_argument(
        "--conf-level", type=_number, default=0.95, help="interval level (default: 0.95)"
    )
    w.add_argument(
        "--missing", choices=["error", "drop"], default="error",
        help="rows with missing values: stop with an error (default) or drop them",
    )  # fmt: skip
    w.add_argument(
        "--output", default=None, metavar="CSV", help="also write the table to this CSV file"
    )
    w.set_defaults(func=_cmd_wcls)

    dc = add(
        "dcee",
        "fit a distal causal excursion effect (Qian 2025; MRTAnalysis dcee)",
        "The effect of the treatment at a decision point on a distal outcome (one value per\n"
        "participant, repeated on their rows), other treatments following the randomization\n"
        "policy: two-stage estimator with nuisance outcome models, sandwich variance, t on\n"
        "n - p df (Qian 2025, Biometrics; MRTAnalysis dcee).\n\n"
        "example: hte-mrt dcee --data trial.csv --id userid --time dp --treatment A \\\n"
        "  --outcome Y --prob prob_A --availability avail --controls '~ X + Z'",
    )
    _trial_args(dc, "distal outcome column (constant within participant)")
    _distal_args(dc, "lm", "effect moderators, e.g. '~ dp' (default: '~ 1', the marginal effect)")
    dc.set_defaults(func=_cmd_dcee)

    mc = add(
        "mcee",
        "fit natural direct and indirect excursion effects on a distal outcome (MRTAnalysis mcee)",
        "The effect of the treatment at a decision point on a distal outcome split into a part\n"
        "through a time-varying mediator (indirect, NIEE) and the rest (direct, NDEE); multiply\n"
        "robust estimating equations, sandwich variance, t on n - 2p df (Qian et al. 2025,\n"
        "arXiv:2506.20027; MRTAnalysis mcee). The mediator is added to the nuisance models that\n"
        "must condition on it (q, mu) and removed from the others.\n\n"
        "example: hte-mrt mcee --data trial.csv --id id --time dp --treatment A --outcome Y \\\n"
        "  --prob p_A --availability I --mediator M --controls '~ dp + X'",
    )
    _trial_args(mc, "distal outcome column (constant within participant)")
    mc.add_argument(
        "--mediator", required=True, metavar="COLUMN",
        help="mediator column, measured after each decision (often the proximal outcome)",
    )  # fmt: skip
    _distal_args(mc, "glm", "moderators of the direct and indirect effects, e.g. '~ dp' "
                 "(default: '~ 1')")  # fmt: skip
    mc.set_defaults(func=_cmd_mcee)

    es = add(
        "effect-size",
        "standardized proximal effect over decision points (Luers et al. 2019)",
        "The standardized causal excursion effect at each decision point (the IPW effect divided\n"
        "by the outcome's pooled sd, both LOESS-smoothed) with participant-bootstrap percentile\n"
        "intervals (Luers et al. 2019; MRTAnalysis calculate_mrt_effect_size).\n\n"
        "example: hte-mrt effect-size --data heartsteps --id user --time decision_index_nogap \\\n"
        "  --treatment send --outcome jbsteps30_log --prob rand_prob --availability avail \\\n"
        "  --n-boot 200 --figure effect_size.png",
    )
    _trial_args(es, "proximal outcome column")
    es.add_argument(
        "--controls", default="~ 1", metavar="FORMULA",
        help="covariates adjusting the effect at each decision point (default: '~ 1')",
    )  # fmt: skip
    es.add_argument(
        "--no-smooth", action="store_true",
        help="do not smooth effect and sd over decision points (default: LOESS)",
    )  # fmt: skip
    es.add_argument(
        "--span", type=_number, default=0.25, help="LOESS span, in (0, 1] (default: 0.25)"
    )
    es.add_argument(
        "--n-boot", type=_int_at_least(0), default=1000,
        help="participant-bootstrap replicates (default: 1000; 0 for none)",
    )  # fmt: skip
    es.add_argument(
        "--seed", type=_int_at_least(0), default=None, help="random seed of the bootstrap"
    )
    es.add_argument(
        "--figure", default=None, metavar="PNG|SVG|PDF",
        help="also draw the effect over decision points with its band to this file",
    )  # fmt: skip
    es.add_argument("--no-progress", action="store_true", help="hide the bootstrap progress bar")
    es.set_defaults(func=_cmd_effect_size)

    ss = add(
        "samplesize",
        "MRT sample size (Liao et al. 2016, as MRT-SS computes it)",
        "The number of participants an MRT needs for a target power (Liao et al. 2016, as the\n"
        "MRT-SS calculator); exit code 5 if no N reaches it.\n\n"
        "example: hte-mrt samplesize --days 42 --per-day 5 --prob 0.4 \\\n"
        "  --availability-mean 0.5 --effect-mean 0.1",
    )
    _design_args(ss)
    ss.add_argument("--power", type=_number, default=0.8, help="target power (default: 0.8)")
    ss.add_argument(
        "--table",
        type=_int_at_least(1),
        nargs=2,
        metavar=("N_MIN", "N_MAX"),
        default=None,
        help="also print the power at N = N_MIN..N_MAX",
    )
    ss.set_defaults(func=_cmd_samplesize)

    pw = add(
        "power",
        "power of an MRT with N participants",
        "The power of an MRT with N participants (Liao et al. 2016).\n\n"
        "example: hte-mrt power --n 40 --days 42 --per-day 5 --prob 0.4 \\\n"
        "  --availability-mean 0.5 --effect-mean 0.1",
    )
    pw.add_argument("--n", type=_int_at_least(1), required=True, help="number of participants")
    _design_args(pw)
    pw.set_defaults(func=_cmd_power)

    ds = add("datasets", "list the bundled datasets", "List the bundled datasets.")
    ds.set_defaults(func=_cmd_datasets)

    d = add(
        "demo",
        "WCLS analyses of the bundled HeartSteps V1 data (make demo)",
        "Three WCLS analyses of the bundled HeartSteps V1 data with a re-randomization test,\n"
        "printed and written to --out (CSV and Markdown).",
    )
    d.add_argument(
        "--out", default="reports/demo", metavar="FOLDER",
        help="output folder (default: reports/demo)",
    )  # fmt: skip
    d.add_argument(
        "--resamples", type=_int_at_least(1), default=5000,
        help="re-randomization test redraws (default: 5000)",
    )  # fmt: skip
    d.add_argument(
        "--seed", type=_int_at_least(0), default=2026, help="random seed (default: 2026)"
    )
    d.set_defaults(func=_cmd_demo)
    return p


_ANSI = re.compile(r"\x1b\[[0-9;]*m|[\u29da\u29db]")  # terminal colours, formulaic's markers


def _error(message: str, *, one_line: bool = True) -> None:
    """``error: ...`` on stderr: one line (an invalid plan: one more line per problem)."""
    text = _ANSI.sub("", message)
    if one_line:
        text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    print(f"error: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``hte-mrt`` with ``argv`` (default: the command line); returns the exit code.

    User errors (every :class:`~hte_mrt.errors.HteMrtError`, a file that cannot be read or
    written) print ``error: ...`` on stderr and return 3 (data / model / design), 4 (invalid
    plan), 5 (power not reachable) or 2 (usage); argparse's own usage errors exit with 2.
    """
    from hte_mrt.design import PowerNotReachableError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        _error(str(e))
        return EXIT_USAGE
    except PlanError as e:
        _error(f"invalid plan: {e}", one_line=False)
        return EXIT_PLAN
    except PowerNotReachableError as e:  # `run` of a sample-size plan, like `samplesize`
        _error(f"power not reachable: {e}")
        return EXIT_POWER
    except HteMrtError as e:
        _error(str(e))
        return EXIT_DATA
    except OSError as e:
        if e.filename is None:
            raise  # not about a file the user named: a bug
        _error(f"cannot use {str(e.filename)!r}: {e.strerror or e}; check the path and its "
               "permissions.")  # fmt: skip
        return EXIT_DATA
    except KeyboardInterrupt:
        _error("interrupted.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
