"""Bad inputs to analysis plans and to the ``hte-mrt`` command line: a catalogue.

Every plan case writes a bad plan to ``tmp_path`` and checks that ``validate`` (``hte-mrt
validate``) raises the expected exception before anything runs, that the error names the key
and its line (the line holds the key, or the table it is missing from) and that the message
says what to do. Every CLI case checks the exit code (0 ok, 2 usage, 3 data / model / design,
4 invalid plan, 5 power not reachable), one ``error: ...`` on stderr, and no traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hte_mrt.cli import main
from hte_mrt.errors import DataError, PlanError
from hte_mrt.reports.plans import load_plan
from hte_mrt.reports.run import run_plan, validate
from tests.plan_helpers import BASE_MRT

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

MRT = (
    BASE_MRT
    + """
[[estimands]]
name = "by_day"
moderators = "~ study_day_nogap"
controls = "~ jbsteps30pre_log"
curve = { variable = "study_day_nogap", from = 0, to = 41, points = 5 }
lincombs = { "day 41" = { Intercept = 1, study_day_nogap = 41 } }

[model]
family = "gaussian"
random_slope = true

[sampler]
draws = 1000
tune = 1000
chains = 4

[crosscheck]
threshold = 1.0

[robustness]
randomization_test = { resamples = 500 }
prior_sensitivity = { scales = [0.5, 2.0] }

[report]
out = "reports/t"
"""
)

CRT = """
[plan]
name = "c"
design = "crt"
seed = 1

[data]
dataset = "tassh"
cluster = "Site_Number"
arm = "Trt_or_Ctrl"
outcome = "sbp_change_12m"
individual = ["age", "female", "sbp_baseline"]
cluster_covariates = ["urban"]
missing = "indicator"
dropna_outcome = true

[[estimands]]
name = "cate"
type = "cate"
subgroups = ["female", "urban"]
bands = { age = [0, 50, 60, 70, 120] }
blp = ["age", "female"]
calibration_splits = 2

[learners.bamm]
draws = 1000
shrinkage = "horseshoe"
smooth_tau = false

[learners.linear]
n_boot = 200
"""

SIZE = """
[plan]
name = "size"
design = "samplesize"
seed = 1

[design]
days = 42
per_day = 5
prob = 0.4
availability = { shape = "quadratic", initial = 0.7, mean = 0.5, turn_day = 42 }
effect = 0.1
power = 0.8
power_table = [30, 40]
"""

#: the distal kinds (checked by the schema only: validate(check_data=False))
DISTAL = (
    BASE_MRT
    + """
[[estimands]]
name = "distal"
type = "distal"
moderators = "~ study_day_nogap"
controls = "~ jbsteps30pre_log"
learner = "rf"
cross_fit = 5
curve = { variable = "study_day_nogap", from = 0, to = 41, points = 5 }
data = { outcome = "steps_total" }

[[estimands]]
name = "mediation"
type = "mediation"
mediator = "jbsteps30_log"
moderators = "~ 1"
controls = "~ study_day_nogap"
learner = "glm"
data = { outcome = "steps_total" }

[[estimands]]
name = "size"
type = "effect_size"
controls = "~ jbsteps30pre_log"
span = 0.25
n_boot = 200
"""
)

BASES = {"mrt": MRT, "crt": CRT, "size": SIZE, "distal": DISTAL}


def _edit(base: str, *pairs: tuple[str, str]) -> str:
    text = BASES[base]
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


# (id, base, edits, key, regexes the message must match: the problem and what to do)
PLAN_CASES = [
    # wrong types: strings where booleans / numbers belong, fractions where integers belong
    ("random_slope_string", "mrt", [("random_slope = true", 'random_slope = "no"')],
     "model.random_slope", [r"true or false", r"got 'no'", r"write false without quotes"]),
    ("lag_fraction", "mrt", [('name = "marginal"', 'name = "marginal"\nlag = 1.5')],
     "estimands[marginal].lag", [r"non-negative integer", r"1\.5", r"fraction is not allowed"]),
    ("threshold_string", "mrt", [("threshold = 1.0", 'threshold = "one"')],
     "crosscheck.threshold", [r"must be a number > 0", r"'one'"]),
    ("draws_quoted", "mrt", [("draws = 1000", 'draws = "1000"')],
     "sampler.draws", [r"positive integer", r"write 1000 without quotes"]),
    ("bootstrap_string", "mrt", [("threshold = 1.0", 'threshold = 1.0\nbootstrap = "yes"')],
     "crosscheck.bootstrap", [r"true or false", r"write true without quotes"]),
    ("primary_number", "mrt", [('name = "marginal"', 'name = "marginal"\nprimary = 1')],
     "estimands[marginal].primary", [r"true or false"]),
    ("seed_quoted", "mrt", [("seed = 7", 'seed = "7"')],
     "plan.seed", [r"non-negative integer", r"write 7 without quotes"]),
    # out-of-range values
    ("seed_negative", "mrt", [("seed = 7", "seed = -1")], "plan.seed", [r"non-negative"]),
    ("chains_zero", "mrt", [("chains = 4", "chains = 0")], "sampler.chains",
     [r"positive integer", r"got 0"]),
    ("target_accept_above_one", "mrt", [("chains = 4", "chains = 4\ntarget_accept = 1.5")],
     "sampler.target_accept", [r"> 0 and < 1"]),
    ("prob_above_one", "mrt", [('prob = "rand_prob"', "prob = 1.5")], "data.prob",
     [r"must be a number > 0 and < 1, got 1\.5"]),
    ("prob_quoted_number", "mrt", [('prob = "rand_prob"', 'prob = "0.6"')], "data.prob",
     [r"quoted number '0\.6'", r"write 0\.6 without quotes"]),
    ("estimand_prob_quoted_number", "mrt",
     [('name = "marginal"', 'name = "marginal"\ndata = { prob = "0.6" }')],
     "estimands[marginal].data.prob", [r"quoted number '0\.6'", r"write 0\.6 without quotes"]),
    ("resamples_zero", "mrt", [("resamples = 500", "resamples = 0")],
     "robustness.randomization_test.resamples", [r"positive integer"]),
    ("prior_scale_negative", "mrt", [("scales = [0.5, 2.0]", "scales = [-0.5, 2.0]")],
     "robustness.prior_sensitivity.scales[1]", [r"number > 0"]),
    ("curve_points_string", "mrt", [("points = 5", 'points = "5"')],
     "estimands[by_day].curve.points", [r"integer >= 2", r"write 5 without quotes"]),
    ("curve_backwards", "mrt", [("from = 0, to = 41", "from = 41, to = 0")],
     "estimands[by_day].curve.to", [r"larger than from = 41"]),
    ("lincomb_string", "mrt", [("study_day_nogap = 41 }", 'study_day_nogap = "41" }')],
     "estimands[by_day].lincombs.day 41.study_day_nogap", [r"must be a number"]),
    # unknown keys, sections, kinds: the allowed ones and the closest
    ("unknown_sampler_key", "mrt", [("draws = 1000", "draw = 1000")], "sampler.draw",
     [r"unknown key 'draw'", r"did you mean 'draws'", r"allowed here: draws, tune, chains"]),
    ("unknown_section", "mrt", [("[crosscheck]", "[crosscheks]")], "crosscheks",
     [r"unknown section \[crosscheks\]", r"did you mean 'crosscheck'", r"sections: plan"]),
    ("crt_section_in_mrt", "mrt", [("[report]", "[learners.bamm]\n\n[report]")], "learners",
     [r"belongs to a CRT plan", r"sections: plan"]),
    ("report_formats", "mrt", [('out = "reports/t"', 'out = "reports/t"\nformats = ["html"]')],
     "report.formats", [r"unknown key 'formats'", r"allowed here: out"]),
    ("estimand_type_typo", "mrt", [('name = "marginal"', 'name = "marginal"\ntype = "margnal"')],
     "estimands[marginal].type", [r"one of \"marginal\"", r"did you mean 'marginal'"]),
    ("crt_estimand_in_mrt", "mrt", [('name = "marginal"', 'name = "marginal"\ntype = "cate"')],
     "estimands[marginal].type", [r"a CRT estimand", r"an MRT plan", r"use type = 'marginal'"]),
    ("plan_kind_typo", "mrt", [('design = "mrt"', 'design = "mtr"')], "plan.design",
     [r'one of "mrt", "crt", "samplesize"', r"did you mean 'mrt'"]),
    ("family_unknown", "mrt", [('family = "gaussian"', 'family = "poisson"')], "model.family",
     [r'one of "gaussian", "bernoulli"']),
    ("missing_policy_unknown", "mrt", [('availability = "avail"', 'availability = "avail"\n'
                                        'missing = "ignore"')],
     "data.missing", [r'one of "error", "drop"']),
    # missing required keys, contradictions
    ("missing_outcome", "mrt", [('outcome = "jbsteps30_log"\n', "")], "data",
     [r"needs 'outcome'", r"add outcome = "]),
    ("missing_plan_name", "mrt", [('name = "t"\n', "")], "plan",
     [r"needs 'name'", r"add name = \"primary\""]),
    ("missing_prob", "mrt", [('prob = "rand_prob"\n', "")], "data",
     [r"needs 'prob'", r"or 'levels'"]),
    ("dataset_and_path", "mrt", [('dataset = "heartsteps"', 'dataset = "heartsteps"\n'
                                  'path = "x.csv"')],
     "data", [r"exactly one of 'dataset'", r"or 'path'"]),
    ("unknown_dataset", "mrt", [('dataset = "heartsteps"', 'dataset = "heartstep"')],
     "data.dataset", [r"did you mean 'heartsteps'", r"bundled: heartsteps, tassh"]),
    ("duplicate_estimand", "mrt", [('name = "by_day"', 'name = "marginal"')],
     "estimands[marginal].name", [r"used twice", r"its own name"]),
    ("lagged_without_lag", "mrt", [('name = "marginal"', 'name = "marginal"\ntype = "lagged"')],
     "estimands[marginal].lag", [r"lag >= 1", r"add lag = 1"]),
    ("lag_in_a_marginal_estimand", "mrt", [('name = "marginal"', 'name = "marginal"\n'
                                          'type = "marginal"\nlag = 1')],
     "estimands[marginal].lag", [r"type = \"lagged\""]),
    ("marginal_with_moderator", "mrt", [('name = "by_day"', 'name = "by_day"\ntype = "marginal"')],
     "estimands[by_day].moderators", [r'moderators = "~ 1"', r'type = "moderated"']),
    ("correlated_without_slope", "mrt", [("random_slope = true", "correlated = true")],
     "model.correlated", [r"needs random_slope = true"]),
    # bad formulas
    ("formula_without_tilde", "mrt", [('moderators = "~ 1"', 'moderators = "1"')],
     "estimands[marginal].moderators", [r"one-sided formula", r"starting with '~'"]),
    ("formula_unbalanced", "mrt", [('controls = "~ jbsteps30pre_log"', 'controls = "~ log(x"')],
     "estimands[marginal].controls", [r"unbalanced parentheses", r"close every"]),
    ("formula_syntax", "mrt", [('controls = "~ jbsteps30pre_log"', 'controls = "~ a b"')],
     "estimands[marginal].controls", [r"not a valid formula", r"e\.g\. \"~ day"]),
    # bad priors
    ("prior_unknown_dist", "mrt", [("random_slope = true", 'random_slope = true\npriors = { '
                                    'beta = { dist = "nomal", mu = 0, sigma = 1 } }')],
     "model.priors.beta", [r"unknown distribution 'nomal'", r"use one of normal"]),
    ("prior_unknown_key", "mrt", [("random_slope = true", 'random_slope = true\npriors = { '
                                   'slope = { dist = "normal", mu = 0, sigma = 1 } }')],
     "model.priors.slope", [r"Unknown prior key 'slope'", r"known keys: intercept"]),
    ("prior_negative_scale", "mrt", [("random_slope = true", 'random_slope = true\npriors = { '
                                      'sigma = { dist = "halfnormal", sigma = -1 } }')],
     "model.priors.sigma", [r"'sigma' must be positive"]),
    # CRT plans: learners and their parameters (checked against the constructor)
    ("learner_n_boot_quoted", "crt", [("n_boot = 200", 'n_boot = "200"')],
     "learners.linear.n_boot", [r"non-negative integer", r"write 200 without quotes"]),
    ("learner_unknown", "crt", [("[learners.bamm]", "[learners.bam]")], "learners.bam",
     [r"unknown learner 'bam'", r"did you mean 'bamm'", r"learners: bamm"]),
    ("learner_param_typo", "crt", [("draws = 1000", "drws = 1000")], "learners.bamm.drws",
     [r"unknown key 'drws'", r"did you mean 'draws'", r"allowed here: smooth"]),
    ("learner_param_bool", "crt", [("smooth_tau = false", 'smooth_tau = "no"')],
     "learners.bamm.smooth_tau", [r"true or false", r"write false without quotes"]),
    ("learner_param_choice", "crt", [('shrinkage = "horseshoe"', 'shrinkage = "horshoe"')],
     "learners.bamm.shrinkage", [r'one of "horseshoe", "global"', r"did you mean 'horseshoe'"]),
    ("learner_draws_zero", "crt", [("draws = 1000", "draws = 0")], "learners.bamm.draws",
     [r"positive integer"]),
    # no [learners] tables at all runs the default learner; an empty [learners] table is an error
    ("empty_learners", "crt", [("[learners.bamm]\ndraws = 1000\nshrinkage = \"horseshoe\"\n"
                                "smooth_tau = false\n\n[learners.linear]\nn_boot = 200\n",
                                "[learners]\n")],
     "learners", [r"needs at least one learner", r"add a \[learners.bamm\] table"]),
    ("subgroups_string", "crt", [('subgroups = ["female", "urban"]', 'subgroups = "female"')],
     "estimands[cate].subgroups", [r"a list", r'write \["female"\]']),
    ("bands_not_increasing", "crt", [("age = [0, 50, 60, 70, 120]", "age = [0, 60, 50]")],
     "estimands[cate].bands.age", [r"strictly increasing"]),
    ("calibration_splits_fraction", "crt",
     [("calibration_splits = 2", "calibration_splits = 1.5")],
     "estimands[cate].calibration_splits", [r"non-negative integer"]),
    ("crt_missing_policy", "crt", [('missing = "indicator"', 'missing = "impute"')],
     "data.missing", [r'one of "error", "drop", "indicator"']),
    ("mrt_estimand_in_crt", "crt", [('type = "cate"', 'type = "marginal"')],
     "estimands[cate].type", [r"an MRT estimand", r"a CRT plan", r"use type = 'cate'"]),
    # the distal kinds: each with its own keys (learner, cross_fit, mediator, span, n_boot)
    ("distal_learner_unknown", "distal", [('learner = "rf"', 'learner = "forest"')],
     "estimands[distal].learner", [r'one of "lm", "glm", "gam", "rf", "gb"']),
    ("distal_cross_fit_one", "distal", [("cross_fit = 5", "cross_fit = 1")],
     "estimands[distal].cross_fit", [r"integer >= 2", r"got 1"]),
    ("distal_cross_fit_bool", "distal", [("cross_fit = 5", "cross_fit = true")],
     "estimands[distal].cross_fit", [r"integer >= 2", r"got True"]),
    ("distal_cross_fit_quoted", "distal", [("cross_fit = 5", 'cross_fit = "5"')],
     "estimands[distal].cross_fit", [r"write 5 without quotes"]),
    ("distal_lag_key", "distal", [('learner = "rf"', 'learner = "rf"\nlag = 1')],
     "estimands[distal].lag", [r"unknown key 'lag' in a \"distal\" estimand",
                               r"allowed here: name, label, type, moderators"]),
    ("distal_learner_typo_key", "distal", [('learner = "rf"', 'lerner = "rf"')],
     "estimands[distal].lerner", [r"did you mean 'learner'"]),
    ("distal_curve_without_moderator", "distal",
     [('moderators = "~ study_day_nogap"\ncontrols = "~ jbsteps30pre_log"\nlearner',
       'moderators = "~ 1"\ncontrols = "~ jbsteps30pre_log"\nlearner')],
     "estimands[distal].curve", [r"a curve needs a moderator"]),
    ("distal_outcome_override_number", "distal",
     [('learner = "rf"\ncross_fit = 5\ncurve = { variable = "study_day_nogap", from = 0, '
       'to = 41, points = 5 }\ndata = { outcome = "steps_total" }',
       'learner = "rf"\ncross_fit = 5\ncurve = { variable = "study_day_nogap", from = 0, '
       'to = 41, points = 5 }\ndata = { outcome = 3 }')],
     "estimands[distal].data.outcome", [r"must be a text in quotes"]),
    ("mediation_missing_mediator", "distal", [('mediator = "jbsteps30_log"\n', "")],
     "estimands[mediation]", [r"a \"mediation\" estimand needs 'mediator'",
                              r'add mediator = "m"']),
    ("mediation_mediator_is_outcome", "distal",
     [('mediator = "jbsteps30_log"', 'mediator = "steps_total"')],
     "estimands[mediation].mediator", [r"also the estimand's outcome",
                                       r'data = \{ outcome = "<distal column>" \}']),
    ("mediation_learner_dict", "distal", [('learner = "glm"', 'learner = { q = "rf" }')],
     "estimands[mediation].learner", [r'must be one of "lm", "glm"', r"got \{'q': 'rf'\}"]),
    ("effect_size_span_zero", "distal", [("span = 0.25", "span = 0")],
     "estimands[size].span", [r"a number > 0 and <= 1", r"got 0"]),
    ("effect_size_n_boot_negative", "distal", [("n_boot = 200", "n_boot = -1")],
     "estimands[size].n_boot", [r"non-negative integer"]),
    ("effect_size_moderators", "distal", [("span = 0.25", 'span = 0.25\nmoderators = "~ day"')],
     "estimands[size].moderators", [r"unknown key 'moderators' in an \"effect_size\" estimand",
                                    r"allowed here: name, label, type, controls, smooth"]),
    ("effect_size_smooth_string", "distal", [("span = 0.25", 'span = 0.25\nsmooth = "yes"')],
     "estimands[size].smooth", [r"true or false", r"write true without quotes"]),
    ("distal_type_typo", "distal", [('name = "marginal"', 'name = "marginal"\ntype = "distl"')],
     "estimands[marginal].type", [r"did you mean 'distal'"]),
    # sample-size plans
    ("design_key_typo", "size", [("per_day = 5", "per_dya = 5")], "design.per_dya",
     [r"unknown key 'per_dya'", r"did you mean 'per_day'", r"allowed here: days, per_day"]),
    ("power_percent", "size", [("power = 0.8", "power = 80")], "design.power",
     [r"> 0 and < 1", r"got 80"]),
    ("days_zero", "size", [("days = 42", "days = 0")], "design.days", [r"positive integer"]),
    ("curve_shape_typo", "size", [('shape = "quadratic"', 'shape = "quadratc"')],
     "design.availability.shape", [r"did you mean 'quadratic'"]),
    ("curve_missing_turn_day", "size", [(", turn_day = 42", "")], "design.availability",
     [r"needs 'turn_day'", r"add turn_day = "]),
    ("curve_arg_typo", "size", [("turn_day = 42", "turnday = 42")],
     "design.availability.turnday", [r"did you mean 'turn_day'", r"allowed here: shape"]),
    ("power_table_reversed", "size", [("power_table = [30, 40]", "power_table = [40, 30]")],
     "design.power_table", [r"N_MIN <= N_MAX"]),
    ("power_table_below_p_plus_q", "size", [("power_table = [30, 40]", "power_table = [2, 100]")],
     "design.power_table", [r"N_MIN = 2 is too small", r"N > p \+ q = 1 \+ 3",
                            r"give N_MIN >= 5"]),
    ("effect_zero", "size", [("effect = 0.1", "effect = 0.0")], "design.effect",
     [r"is zero", r"give the smallest effect worth detecting"]),
    ("q_negative", "size", [("effect = 0.1", "effect = 0.1\nq = -1")], "design.q",
     [r"non-negative integer"]),
]  # fmt: skip


def _write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _check_key_and_line(err: PlanError, text: str, key: str) -> None:
    assert err.key == key, (err.key, str(err))
    # a missing table has no line (an estimand missing a key: the estimand's line)
    if f"[{key}" not in text and "." not in key and not key.startswith("estimands["):
        assert err.line is None
        return
    assert err.line is not None, str(err)
    line = text.splitlines()[err.line - 1]
    parts = [p for p in re.split(r"[.\[\]]", key) if p]
    assert any(p in line for p in parts), (line, key)


@pytest.mark.parametrize(
    "base, edits, key, patterns",
    [pytest.param(*c[1:], id=c[0]) for c in PLAN_CASES],
)
def test_bad_plan(tmp_path, base, edits, key, patterns):
    text = _edit(base, *edits)
    with pytest.raises(PlanError) as ei:
        validate(_write(tmp_path, text), check_data=False)
    err = ei.value
    assert len(err.problems) == 1, str(err)  # one mistake, one problem (no follow-on errors)
    _check_key_and_line(err, text, key)
    msg = str(err)
    assert msg.startswith(f"{key} (line {err.line}): " if err.line else f"{key}: "), msg
    for pat in patterns:
        assert re.search(pat, msg), (pat, msg)


def test_every_problem_is_reported_at_once(tmp_path):
    """The issue's failures together: each with its key and its own line, in one PlanError."""
    text = _edit(
        "mrt",
        ("seed = 7", 'seed = "7"'),
        ('name = "marginal"', 'name = "marginal"\nlag = 1.5'),
        ("random_slope = true", 'random_slope = "no"'),
        ("threshold = 1.0", 'threshold = "one"'),
        ("draws = 1000", "draw = 1000"),
    )
    with pytest.raises(PlanError, match=r"^5 problems in the plan") as ei:
        validate(_write(tmp_path, text), check_data=False)
    keys = [k for k, _, _ in ei.value.problems]
    assert keys == [  # in the file's order
        "plan.seed",
        "estimands[marginal].lag",
        "model.random_slope",
        "sampler.draw",
        "crosscheck.threshold",
    ]
    lines = text.splitlines()
    for k, line, _ in ei.value.problems:
        assert k.split(".")[-1].split("[")[0] in lines[line - 1] or k.endswith(".lag")
    assert "lag = 1.5" in lines[ei.value.problems[1][1] - 1]  # the line of *this* estimand
    for k, line, _ in ei.value.problems:
        assert f"  {k} (line {line}): " in str(ei.value)


def test_line_of_a_key_in_the_second_estimand(tmp_path):
    """A key of the second [[estimands]] is reported at its own line, not the first one's."""
    text = _edit("mrt", ('moderators = "~ study_day_nogap"', 'moderators = "study_day_nogap"'))
    with pytest.raises(PlanError) as ei:
        validate(_write(tmp_path, text), check_data=False)
    assert ei.value.key == "estimands[by_day].moderators"
    assert text.splitlines()[ei.value.line - 1] == 'moderators = "study_day_nogap"'


def test_invalid_toml(tmp_path):
    text = MRT + "\nbroken = = 1\n"
    with pytest.raises(PlanError, match=r"not valid TOML.*fix the syntax") as ei:
        load_plan(_write(tmp_path, text))
    assert ei.value.line == text.count("\n")


def test_missing_plan_file(tmp_path):
    with pytest.raises(PlanError, match=r"plan file '.*nothere\.toml' not found.*give the path"):
        validate(tmp_path / "nothere.toml")


# ----------------------------------------------------------------------------- data files
@pytest.fixture(scope="module")
def heartsteps_csv(tmp_path_factory) -> Path:
    from hte_mrt.data.datasets import load_dataset

    folder = tmp_path_factory.mktemp("csv")
    df = load_dataset("heartsteps")
    df = df[df["user"].isin(sorted(df["user"].unique())[:12])]
    df.to_csv(folder / "hs.CSV", index=False)  # upper-case extension on purpose
    return folder / "hs.CSV"


def _csv_plan(csv: Path) -> str:
    return _edit("mrt", ('dataset = "heartsteps"', f'path = "{csv.name}"'))


def test_plan_data_file_missing(tmp_path):
    text = _edit("mrt", ('dataset = "heartsteps"', 'path = "missing.csv"'))
    with pytest.raises(PlanError, match=r"file 'missing\.csv' not found.*relative to the plan"):
        validate(_write(tmp_path, text))


@pytest.mark.parametrize(
    "edit, key, pattern",
    [
        (('outcome = "jbsteps30_log"', 'outcome = "steps"'), "data.outcome",
         r"column 'steps' \(outcome\) is not in the data.*columns: user"),
        (('id = "user"', 'id = "usr"'), "data.id", r"did you mean 'user'"),
        (('controls = "~ jbsteps30pre_log"', 'controls = "~ weather"'),
         "estimands[marginal].controls", r"'weather' in controls .* not a column.*columns:"),
        (('variable = "study_day_nogap"', 'variable = "decision_index"'),
         "estimands[by_day].curve.variable", r"not in moderators.*name one of the moderators"),
    ],
)  # fmt: skip
def test_plan_names_a_column_the_data_lack(tmp_path, heartsteps_csv, edit, key, pattern):
    (tmp_path / heartsteps_csv.name).write_bytes(heartsteps_csv.read_bytes())
    text = _csv_plan(heartsteps_csv).replace(*edit)
    p = _write(tmp_path, text)
    validate(p, check_data=False)  # the keys are fine: only the data lack the column
    with pytest.raises(PlanError, match=pattern) as ei:
        validate(p)
    _check_key_and_line(ei.value, text, key)


def test_crt_columns_all_reported(tmp_path):
    text = _edit("crt", ('subgroups = ["female", "urban"]', 'subgroups = ["sex", "urbn"]'))
    with pytest.raises(PlanError, match=r"^2 problems") as ei:
        validate(_write(tmp_path, text))
    msgs = [m for _, _, m in ei.value.problems]
    assert "did you mean 'urban'" in msgs[1] and "column 'sex'" in msgs[0]


@pytest.mark.parametrize(
    "content, pattern",
    [("", r"is empty.*header row"), (b"\xff\xfe\x00bad", r"cannot be read as CSV.*UTF-8")],
)
def test_unreadable_data_file(tmp_path, content, pattern):
    csv = tmp_path / "bad.csv"
    csv.write_bytes(content if isinstance(content, bytes) else content.encode())
    text = _edit("mrt", ('dataset = "heartsteps"', 'path = "bad.csv"'))
    with pytest.raises(DataError, match=pattern):
        validate(_write(tmp_path, text))


@pytest.mark.parametrize("plan", sorted(MODELS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_plan_validates(plan):
    p = validate(plan)
    assert p.name == plan.stem


def test_a_lagged_estimand_runs_and_the_report_states_the_lag(tmp_path, heartsteps_csv):
    """lag = 1 runs as lag 1 (not truncated) and every effects table says so."""
    (tmp_path / heartsteps_csv.name).write_bytes(heartsteps_csv.read_bytes())
    text = _csv_plan(heartsteps_csv)
    text = text[: text.index("[[estimands]]")] + (
        '[[estimands]]\nname = "next"\ntype = "lagged"\nlag = 1\nmoderators = "~ 1"\n'
        'controls = "~ jbsteps30pre_log"\n\n[sampler]\ndraws = 100\ntune = 100\nchains = 1\n'
    )
    res = run_plan(_write(tmp_path, text), tmp_path / "out", quick=False, progress=False)
    md = (res.out / "report.md").read_text()
    assert "lag 1 (the outcome 1 decision point after treatment)" in md
    assert res.tables["effects_next"]["estimate"].notna().all()


# ----------------------------------------------------------------------------- the CLI
DESIGN = ["--days", "42", "--per-day", "5", "--prob", "0.4", "--availability-mean", "0.5"]
WCLS = ["--id", "user", "--time", "decision_index_nogap", "--treatment", "send", "--outcome",
        "jbsteps30_log", "--prob", "rand_prob", "--availability", "avail"]  # fmt: skip


def _mediation_trial() -> list[str]:
    """MRTAnalysis' mediation reference data (distal outcome Y) as --data and roles."""
    from tests.conftest import SHARED

    csv = SHARED / "MRTAnalysis_data_time_varying_mediator_distal_outcome.csv"
    return ["--data", str(csv), "--id", "id", "--time", "dp", "--treatment", "A", "--outcome",
            "Y", "--prob", "p_A", "--availability", "I"]  # fmt: skip


def _bad_plan(tmp_path: Path) -> Path:
    return _write(tmp_path, _edit("mrt", ("random_slope = true", 'random_slope = "no"')))


def _typo_size_plan(tmp_path: Path) -> Path:
    return _write(tmp_path, _edit("size", ("per_day = 5", "per_dya = 5")))


def _missing_data_plan(tmp_path: Path) -> Path:
    return _write(tmp_path, _edit("mrt", ('dataset = "heartsteps"', 'path = "gone.csv"')))


def _empty_csv(tmp_path: Path) -> str:
    (tmp_path / "empty.csv").write_text("")
    return str(tmp_path / "empty.csv")


def _a_file(tmp_path: Path) -> str:
    (tmp_path / "afile").write_text("x")
    return str(tmp_path / "afile")


# (id, argv builder, exit code, regexes on stderr: the argument / key and what to do)
CLI_CASES = [
    ("validate_missing_file", lambda t: ["validate", str(t / "nothere.toml")], 4,
     [r"^error: invalid plan: plan file .*not found", r"give the path of a \.toml plan"]),
    ("validate_bad_types", lambda t: ["validate", str(_bad_plan(t)), "--no-data"], 4,
     [r"^error: invalid plan: model\.random_slope \(line \d+\)", r"write false"]),
    ("validate_design_typo", lambda t: ["validate", str(_typo_size_plan(t))], 4,
     [r"design\.per_dya \(line \d+\)", r"did you mean 'per_day'"]),
    ("validate_missing_data_file", lambda t: ["validate", str(_missing_data_plan(t))], 4,
     [r"data\.path \(line \d+\): file 'gone\.csv' not found"]),
    ("run_bad_plan", lambda t: ["run", str(_bad_plan(t)), "--out", str(t / "out")], 4,
     [r"model\.random_slope", r"write false"]),
    ("run_design_typo", lambda t: ["run", str(_typo_size_plan(t)), "--out", str(t / "o")], 4,
     [r"did you mean 'per_day'"]),
    ("wcls_missing_csv", lambda t: ["wcls", "--data", str(t / "nothere.csv"), *WCLS], 3,
     [r"^error: --data: file '.*nothere\.csv' not found", r"check the path"]),
    ("wcls_missing_upper_csv", lambda t: ["wcls", "--data", str(t / "nothere.CSV"), *WCLS], 3,
     [r"--data: file '.*nothere\.CSV' not found"]),
    ("wcls_unknown_dataset", lambda t: ["wcls", "--data", "heartstep", *WCLS], 3,
     [r"--data 'heartstep' is neither", r"did you mean 'heartsteps'", r"heartsteps, tassh"]),
    ("wcls_empty_csv", lambda t: ["wcls", "--data", _empty_csv(t), *WCLS], 3,
     [r"is empty.*header row"]),
    ("wcls_missing_column", lambda t: ["wcls", "--data", "heartsteps",
                                       *[a if a != "send" else "sent" for a in WCLS]], 3,
     [r"'sent'", r"treatment"]),
    ("wcls_bad_formula_column", lambda t: ["wcls", "--data", "heartsteps", *WCLS,
                                           "--moderators", "~ weather"], 3, [r"weather"]),
    ("wcls_formula_syntax", lambda t: ["wcls", "--data", "heartsteps", *WCLS, "--moderators",
                                       "~ ("], 3,
     [r"^error: Cannot parse the moderator formula '~ \('"]),
    ("wcls_conf_level_percent", lambda t: ["wcls", "--data", "heartsteps", *WCLS,
                                           "--conf-level", "95"], 3, [r"conf_level"]),
    ("wcls_negative_lag", lambda t: ["wcls", "--data", "heartsteps", *WCLS, "--lag", "-1"], 2,
     [r"argument --lag: must be >= 0"]),
    ("wcls_output_unwritable", lambda t: ["wcls", "--data", "heartsteps", *WCLS, "--output",
                                          str(t / "no" / "dir" / "x.csv")], 3,
     [r"--output: cannot write", r"folder that exists"]),
    # dcee / mcee / effect-size: the trial arguments as wcls, their own as the estimators
    ("dcee_missing_csv", lambda t: ["dcee", "--data", str(t / "nothere.csv"), *WCLS], 3,
     [r"^error: --data: file '.*nothere\.csv' not found"]),
    ("dcee_proximal_outcome", lambda t: ["dcee", "--data", "heartsteps", *WCLS], 3,
     [r"'jbsteps30_log' \(distal outcome\) varies within participant", r"Give the distal"]),
    ("dcee_cross_fit_one", lambda t: ["dcee", "--data", "heartsteps", *WCLS, "--cross-fit", "1"],
     2, [r"argument --cross-fit: must be >= 2"]),
    ("dcee_learner_unknown", lambda t: ["dcee", "--data", "heartsteps", *WCLS, "--learner",
                                        "forest"], 2, [r"argument --learner: invalid choice"]),
    ("mcee_without_mediator", lambda t: ["mcee", "--data", "heartsteps", *WCLS], 2,
     [r"the following arguments are required: --mediator"]),
    ("mcee_mediator_absent", lambda t: ["mcee", *_mediation_trial(), "--mediator", "MM"], 3,
     [r"^error: .*'MM'", r"mediator"]),
    ("mcee_mediator_is_outcome", lambda t: ["mcee", *_mediation_trial(), "--mediator", "Y"], 3,
     [r"^error: mediator='Y' is a role column", r"give the mediator's own column"]),
    ("effect_size_negative_boot", lambda t: ["effect-size", "--data", "heartsteps", *WCLS,
                                             "--n-boot", "-1"], 2,
     [r"argument --n-boot: must be >= 0"]),
    ("effect_size_span_zero", lambda t: ["effect-size", "--data", "heartsteps", *WCLS,
                                         "--span", "0", "--no-progress"], 3, [r"span"]),
    ("samplesize_no_turn_day", lambda t: ["samplesize", *DESIGN, "--effect-mean", "0.1",
                                          "--effect-shape", "quadratic"], 2,
     [r"^error: --effect-turn-day is needed", r"add --effect-turn-day DAY"]),
    ("samplesize_bad_prob", lambda t: ["samplesize", *[a if a != "0.4" else "1.4" for a in DESIGN],
                                       "--effect-mean", "0.1"], 3,
     [r"^error: prob must lie in \(0, 1\)", r"strictly between 0 and 1"]),
    ("samplesize_unreachable", lambda t: ["samplesize", *DESIGN, "--effect-mean", "0.0001"], 5,
     [r"^error: power not reachable"]),
    ("samplesize_days_zero", lambda t: ["samplesize", *[a if a != "42" else "0" for a in DESIGN],
                                        "--effect-mean", "0.1"], 2,
     [r"argument --days: must be >= 1"]),
    ("samplesize_turn_day_constant", lambda t: ["samplesize", *DESIGN, "--effect-mean", "0.1",
                                                "--effect-turn-day", "28"], 2,
     [r"^error: --effect-turn-day need", r"--effect-shape linear or quadratic"]),
    ("samplesize_initial_constant", lambda t: ["samplesize", *DESIGN, "--effect-mean", "0.1",
                                               "--effect-initial", "0.05"], 2,
     [r"^error: --effect-initial need", r"add --effect-shape"]),
    ("samplesize_turn_day_linear", lambda t: ["samplesize", *DESIGN, "--effect-mean", "0.1",
                                              "--effect-shape", "linear", "--effect-turn-day",
                                              "28"], 2,
     [r"^error: --effect-turn-day needs --effect-shape quadratic"]),
    ("samplesize_table_reversed", lambda t: ["samplesize", *DESIGN, "--effect-mean", "0.1",
                                             "--table", "100", "20"], 2,
     [r"^error: --table 100 20: give N_MIN <= N_MAX"]),
    ("run_size_unreachable", lambda t: ["run", str(_write(t, _edit("size", (
        "effect = 0.1", "effect = 0.0001")))), "--out", str(t / "o")], 5,
     [r"^error: power not reachable"]),
    ("power_n_not_a_number", lambda t: ["power", "--n", "ten", *DESIGN, "--effect-mean", "0.1"],
     2, [r"argument --n: must be a whole number"]),
    ("power_missing_argument", lambda t: ["power", *DESIGN, "--effect-mean", "0.1"], 2,
     [r"the following arguments are required: --n"]),
    ("demo_zero_resamples", lambda t: ["demo", "--resamples", "0"], 2,
     [r"argument --resamples: must be >= 1"]),
    ("demo_out_is_a_file", lambda t: ["demo", "--out", _a_file(t), "--resamples", "10"], 3,
     [r"^error: cannot use '.*afile'", r"check the path"]),
    ("unknown_command", lambda t: ["fit"], 2, [r"invalid choice: 'fit'"]),
    ("no_command", lambda t: [], 2, [r"required: COMMAND"]),
]  # fmt: skip


# plans whose keys are fine but which do not fit their data: validate (with the data) names
# the key and says what to do
DATA_PLAN_CASES = [
    ("bernoulli_continuous_outcome", "mrt",
     [('family = "gaussian"', 'family = "bernoulli"')], "model.family",
     [r'"bernoulli" needs a 0/1 outcome', r"'jbsteps30_log'", r'use family = "gaussian"']),
    ("band_holds_no_one", "crt", [("age = [0, 50, 60, 70, 120]", "age = [200, 300]")],
     "estimands[cate].bands.age", [r"band\(s\) \(200, 300\] hold no one",
                                   r"change the edges"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "base, edits, key, patterns",
    [pytest.param(*c[1:], id=c[0]) for c in DATA_PLAN_CASES],
)
def test_bad_plan_for_its_data(tmp_path, base, edits, key, patterns):
    text = _edit(base, *edits)
    path = _write(tmp_path, text)
    validate(path, check_data=False)  # the keys are fine
    with pytest.raises(PlanError) as ei:
        validate(path)
    err = ei.value
    assert len(err.problems) == 1, str(err)
    _check_key_and_line(err, text, key)
    for pat in patterns:
        assert re.search(pat, str(err)), (pat, str(err))


@pytest.mark.parametrize("argv, code, patterns", [pytest.param(*c[1:], id=c[0]) for c in CLI_CASES])
def test_cli_user_errors(tmp_path, capsys, argv, code, patterns):
    try:
        rc = main(argv(tmp_path))
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    cap = capsys.readouterr()
    assert rc == code, cap.err
    assert "Traceback" not in cap.err + cap.out
    for pat in patterns:
        assert re.search(pat, cap.err, re.M), (pat, cap.err)
    if code in (3, 4, 5):
        assert cap.err.startswith("error: ") and cap.err.count("\nerror:") == 0
    if code in (3, 5) or (code == 2 and cap.err.startswith("error: ")):
        assert cap.err.strip().count("\n") == 0, cap.err  # one line
        assert "\x1b[" not in cap.err  # no terminal colour codes


def test_cli_reads_an_upper_case_csv(tmp_path, capsys, heartsteps_csv):
    """--data x.CSV is read as a file (not looked up as a dataset name)."""
    out = tmp_path / "table.csv"
    assert main(["wcls", "--data", str(heartsteps_csv), *WCLS, "--output", str(out)]) == 0
    assert pd.read_csv(out)["term"].tolist() == ["Intercept"]
    assert "Wrote" in capsys.readouterr().out


def test_cli_validate_lists_every_problem(tmp_path, capsys):
    text = _edit("mrt", ("seed = 7", "seed = -7"), ("chains = 4", "chains = 0"))
    assert main(["validate", str(_write(tmp_path, text)), "--no-data"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: invalid plan: 2 problems")
    assert re.search(r"^  plan\.seed \(line 5\)", err, re.M)
    assert re.search(r"^  sampler\.chains \(line \d+\)", err, re.M)


def test_cli_ok_commands(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "heartsteps" in out and "tassh" in out
    assert main(["validate", str(MODELS / "samplesize_reference.toml")]) == 0
    assert capsys.readouterr().out.startswith("OK: samplesize_reference")


@pytest.mark.parametrize(
    "command",
    ["run", "validate", "wcls", "dcee", "mcee", "effect-size", "samplesize", "power", "demo"],
)
def test_cli_help(command, capsys):
    with pytest.raises(SystemExit) as ei:
        main([command, "--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes: 0 ok, 2 usage error, 3 data" in out
    assert out.count("--") >= 1 and "usage: hte-mrt " + command in out


def test_cli_distal_commands(tmp_path, capsys):
    """dcee / mcee / effect-size print the estimator's summary and write its table and figure;
    mcee's numbers are MRTAnalysis' reference call (the mediator added to q and mu)."""
    from tests.test_distal import R_NDEE

    out = tmp_path / "mcee.csv"
    argv = ["mcee", *_mediation_trial(), "--mediator", "M", "--controls", "~ dp + X"]
    assert main([*argv, "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "natural direct" in text.lower() and "Wrote" in text
    tab = pd.read_csv(out).set_index("term")
    assert tab.loc["direct:Intercept", "estimate"] == pytest.approx(R_NDEE["estimate"], rel=1e-7)
    assert list(tab["effect"]) == ["direct", "indirect"]
    argv = ["dcee", *_mediation_trial(), "--moderators", "~ dp", "--controls", "~ X",
            "--learner", "rf", "--cross-fit", "2", "--seed", "4"]  # fmt: skip
    assert main([*argv, "--output", str(tmp_path / "a.csv")]) == 0
    assert main([*argv, "--output", str(tmp_path / "b.csv")]) == 0  # seeded: the same numbers
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))
    assert "cross-fit folds" in capsys.readouterr().out
    fig = tmp_path / "es.png"
    argv = ["effect-size", "--data", "heartsteps", *WCLS, "--n-boot", "20", "--seed", "1",
            "--no-progress", "--figure", str(fig),
            "--output", str(tmp_path / "es.csv")]  # fmt: skip
    assert main(argv) == 0
    assert fig.stat().st_size > 5000
    es = pd.read_csv(tmp_path / "es.csv")
    assert {"decision_index_nogap", "estimate", "lcl", "ucl"} <= set(es.columns)


def test_cli_run_help_lists_the_estimand_kinds(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for kind in ("marginal", "moderated", "time_varying", "lagged", "distal", "mediation",
                 "effect_size", 'data = { outcome = "Y" }'):  # fmt: skip
        assert kind in out, kind


def test_cli_as_a_process_prints_no_traceback(tmp_path):
    """The real entry point: an invalid plan and a missing data file, no traceback."""
    code = "import sys; from hte_mrt.cli import main; sys.exit(main(sys.argv[1:]))"
    env_py = [sys.executable, "-c", code]
    r = subprocess.run(
        [*env_py, "validate", str(_bad_plan(tmp_path)), "--no-data"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 4 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: invalid plan: model.random_slope (line")
    r = subprocess.run(
        [*env_py, "wcls", "--data", str(tmp_path / "x.Csv"), *WCLS],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "--data: file" in r.stderr


def test_lincomb_naming_an_unknown_term(tmp_path):
    """Found by validate (with data), not after the MCMC fits of a run."""
    text = _edit("mrt", ("study_day_nogap = 41 }", "study_day = 41 }"))
    p = _write(tmp_path, text)
    validate(p, check_data=False)
    pattern = (
        r"'study_day' is not an effect term.*did you mean 'study_day_nogap'.*"
        r"its terms: Intercept, study_day_nogap"
    )
    with pytest.raises(PlanError, match=pattern) as ei:
        validate(p)
    _check_key_and_line(ei.value, text, "estimands[by_day].lincombs.day 41.study_day")


def test_data_that_fail_the_trial_checks(tmp_path, heartsteps_csv):
    """A probability column outside (0, 1) is a data error at validate time (exit code 3)."""
    df = pd.read_csv(heartsteps_csv)
    df["rand_prob"] = 1.5
    df.to_csv(tmp_path / "hs.csv", index=False)
    text = _edit("mrt", ('dataset = "heartsteps"', 'path = "hs.csv"'))
    p = _write(tmp_path, text)
    with pytest.raises(DataError, match=r"rand_prob"):
        validate(p)
    err_code = main(["validate", str(p)])
    assert err_code == 3


@pytest.mark.parametrize("fn", ["load_plan", "validate_plan"])
def test_plan_given_as_a_number_is_a_plan_error(fn):
    """A plan that is not a path (e.g. 123) is a PlanError saying what to pass (it was a
    pathlib TypeError)."""
    import hte_mrt as hm

    with pytest.raises(hm.PlanError, match=r"path of a \.toml plan.*got int"):
        getattr(hm, fn)(123)


def test_crt_plan_without_learners_is_valid(tmp_path):
    """No [learners] tables: the plan is valid and runs the package default learner alone."""
    text = _edit(
        "crt",
        (
            '[learners.bamm]\ndraws = 1000\nshrinkage = "horseshoe"\n'
            "smooth_tau = false\n\n[learners.linear]\nn_boot = 200\n",
            "",
        ),
    )
    assert "[learners" not in text
    validate(_write(tmp_path, text), check_data=False)
