"""MRT plans with the distal kinds: ``type = "distal"`` (dcee), ``"mediation"`` (mcee) and
``"effect_size"``: validated, seeded, quick mode, reported (tables, figures, methods), the
numbers those of the estimators (and so of R MRTAnalysis on its reference data), and the report
renders in a browser. Reference data from ../shared/data (GPL; never shipped)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt.errors import PlanError
from hte_mrt.reports.run import run_plan, validate
from tests.conftest import SHARED
from tests.test_distal import R_DCEE, R_NDEE, R_NIEE

MEDIATION_CSV = SHARED / "MRTAnalysis_data_time_varying_mediator_distal_outcome.csv"
DISTAL_CSV = SHARED / "MRTAnalysis_data_distal_continuous.csv"

#: a mixed plan: a proximal estimand (WCLS + the Bayesian model) on the mediator M as the
#: proximal outcome, the distal and mediated effects on Y, and the standardized effect of M
MIXED = f"""
[plan]
name = "mixed"
design = "mrt"
seed = 11

[data]
path = "{MEDIATION_CSV}"
id = "id"
time = "dp"
treatment = "A"
outcome = "M"
prob = "p_A"
availability = "I"

[[estimands]]
name = "proximal"
moderators = "~ 1"
controls = "~ X"
numerator = 0.5

[[estimands]]
name = "distal_by_dp"
label = "Distal effect by decision point"
type = "distal"
moderators = "~ dp"
controls = "~ X"
learner = "lm"
data = {{ outcome = "Y" }}
lincombs = {{ "dp 10" = {{ Intercept = 1, dp = 10 }} }}

[[estimands]]
name = "mediation"
type = "mediation"
small_sample = false
mediator = "M"
moderators = "~ 1"
controls = "~ dp + X"
learner = "glm"
primary = true
data = {{ outcome = "Y" }}

[[estimands]]
name = "size"
type = "effect_size"
controls = "~ X"
span = 0.5
n_boot = 1000

[sampler]
draws = 200
tune = 200
chains = 2

[crosscheck]
bootstrap = true

[robustness]
randomization_test = {{ resamples = 1000 }}
"""

#: distal kinds only (no Bayesian fit): MRTAnalysis' dcee reference call and a cross-fitted forest
DISTAL_ONLY = f"""
[plan]
name = "distal_only"
design = "mrt"
seed = 3

[data]
path = "{DISTAL_CSV}"
id = "userid"
time = "dp"
treatment = "A"
outcome = "Y"
prob = "prob_A"
availability = "avail"

[[estimands]]
name = "dcee"
type = "distal"
controls = "~ X + Z"
small_sample = false
primary = true

[[estimands]]
name = "dcee_rf"
type = "distal"
controls = "~ X + Z"
learner = "rf"
cross_fit = 5
"""


def _plan(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    return run_plan(_plan(tmp, MIXED), tmp / "out", quick=True, progress=False)


def test_mixed_plan_matches_the_estimators_and_r(mixed):
    """The report's tables are the estimators' results with the plan's settings and seed; the
    mediation estimand is MRTAnalysis' reference call (the mediator added to q and mu by
    mcee: the same columns as R's ~ dp + M + X), so its numbers are R's to 1e-7 relative
    (R printed 10 significant digits)."""
    tab = mixed.tables["effects_mediation"].set_index("term")
    for term, ref in (("direct:Intercept", R_NDEE), ("indirect:Intercept", R_NIEE)):
        for col, v in ref.items():
            assert tab.loc[term, col] == pytest.approx(v, rel=1e-7), (term, col)
    assert (tab["df"] == 48).all()
    # the headline is the primary (mediation) estimand's table
    head = mixed.table()
    assert list(head["term"]) == ["direct:Intercept", "indirect:Intercept"]
    frame = pd.read_csv(MEDIATION_CSV)
    y = hm.MRTData(frame, id="id", time="dp", treatment="A", outcome="Y", prob="p_A",
                   availability="I")  # fmt: skip
    direct = hm.dcee(y, "~ dp", "~ X", learner="lm", seed=11 + 1).table()  # "auto" as the plan
    pd.testing.assert_frame_equal(mixed.tables["effects_distal_by_dp"], direct)
    lc = mixed.tables["lincomb_distal_by_dp_dp 10"].iloc[0]
    assert lc["estimate"] == pytest.approx(
        direct["estimate"].iloc[0] + 10 * direct["estimate"].iloc[1], rel=1e-12
    )
    m = hm.MRTData(frame, id="id", time="dp", treatment="A", outcome="M", prob="p_A",
                   availability="I")  # fmt: skip
    # quick: at most 100 bootstrap replicates; seed = plan seed + position
    size = hm.effect_size(m, "~ X", span=0.5, n_boot=100, seed=11 + 3, progress=False)
    pd.testing.assert_frame_equal(mixed.tables["effects_size"], size.table())
    # the proximal estimand still gets WCLS and the Bayesian model
    cc = mixed.tables["effects_proximal"]
    assert {"WCLS", "BayesMRT"} <= set(cc["estimator"])


def test_mixed_plan_report(mixed):
    out = mixed.out
    md = (out / "report.md").read_text()
    for section in ("## Causal excursion effects", "## Distal, mediated and standardized effects",
                    "## Diagnostics", "## Methods"):  # fmt: skip
        assert section in md
    for cite in ("Qian 2025, Biometrics 81(4)", "arXiv:2506.20027", "Luers et al. 2019",
                 "sandwich", "48 degrees of freedom", "generalized linear"):  # fmt: skip
        assert cite in md, cite
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"curve_distal_by_dp.png", "mediation_mediation.png", "effect_size_size.png"} <= figs
    # the Bayesian-bootstrap cross-check of each distal fit (500 draws in a quick run)
    cc = mixed.tables["crosscheck_mediation"]
    assert set(cc["estimator"]) >= {"MCEE"} and len(cc) >= 4
    # saved results restore to the report's numbers
    from hte_mrt.results.distal import DistalResult
    from hte_mrt.results.effect_size import EffectSizeResult

    back = DistalResult.from_netcdf(out / "distal.nc")  # the primary estimand
    want = mixed.tables["effects_mediation"]["estimate"]
    np.testing.assert_allclose(back.table()["estimate"], want, rtol=1e-12)
    es = EffectSizeResult.from_netcdf(out / "distal_size.nc")
    np.testing.assert_allclose(es.table()["estimate"], mixed.tables["effects_size"]["estimate"])
    # the Bayesian model's paragraph and the re-randomization test are of the proximal
    # estimand (the plan's primary is a distal kind)
    assert "The 'proximal' estimand's effect model was ~ 1" in md
    assert "Re-randomization test of the primary estimand" in md
    assert mixed.tables["randomization_test"]["term"].tolist() == ["Intercept"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["primary"] == "mediation" and meta["quick"] is True


@pytest.mark.requires_browser
def test_mixed_plan_report_renders_in_a_browser(mixed):
    from hte_mrt.reports.browser import check_html

    res = check_html(mixed.out / "report.html")
    assert res.console_errors == [] and res.images_broken == []
    assert res.images_total >= 3


def test_distal_only_plan(tmp_path):
    """No proximal estimand: no Bayesian fit, no diagnostics; dcee is R's reference call; the
    cross-fitted forest honours quick mode (2 folds) and the seed (a rerun is identical)."""
    p = _plan(tmp_path, DISTAL_ONLY)
    a = run_plan(p, tmp_path / "a", quick=True, progress=False)
    row = a.tables["effects_dcee"].iloc[0]
    for col, v in R_DCEE.items():
        assert row[col] == pytest.approx(v, rel=1e-7), col
    assert row["df"] == 49
    md = (a.out / "report.md").read_text()
    assert "## Diagnostics" not in md and "## Causal excursion effects" not in md
    assert "cross-fitted over 2 participant folds" in md and "random forests" in md
    b = run_plan(p, tmp_path / "b", quick=True, progress=False)
    pd.testing.assert_frame_equal(a.tables["effects_dcee_rf"], b.tables["effects_dcee_rf"])
    assert not list(a.out.glob("posterior*.nc"))


def test_distal_estimand_without_a_distal_outcome_names_the_fix(tmp_path):
    """The plan's proximal outcome varies within participant: the distal estimand's error
    names it and says to add data = { outcome = ... }."""
    text = MIXED.replace('learner = "lm"\ndata = { outcome = "Y" }', 'learner = "lm"')
    with pytest.raises(PlanError, match=r"estimands\[distal_by_dp\]\.type.*'M' varies within "
                       r"participant id=1.*data = \{ outcome ="):  # fmt: skip
        validate(_plan(tmp_path, text))


def test_distal_kinds_validate_and_shipped_syntax(tmp_path):
    """validate() (the CLI's hte-mrt validate) runs the distal fits without the bootstrap."""
    plan = validate(_plan(tmp_path, MIXED))
    assert [e.get("type") for e in plan.estimands] == [None, "distal", "mediation", "effect_size"]


@pytest.mark.parametrize(
    "old, new, key, pattern",
    [
        ('mediator = "M"', 'mediator = "MM"', "estimands[mediation].mediator",
         r"column 'MM' \(mediator\) is not in the data \(did you mean 'M'\?\)"),
        ('controls = "~ dp + X"', 'controls = "~ dp + X2"', "estimands[mediation].controls",
         r"'X2' in controls .* not a column"),
        ('data = { outcome = "Y" }\nlincombs', 'data = { outcome = "YY" }\nlincombs',
         "estimands[distal_by_dp].data.outcome", r"column 'YY' is not in the data"),
        ('moderators = "~ dp"\ncontrols = "~ X"\nlearner = "lm"',
         'moderators = "~ dp + X"\ncontrols = "~ X"\nlearner = "lm"\n'
         'curve = { variable = "dp", from = 1, to = 10 }',
         "estimands[distal_by_dp].curve", r"varies only 'dp'.*also use 'X'.*remove the curve"),
        ('lincombs = { "dp 10" = { Intercept = 1, dp = 10 } }',
         'lincombs = { "dp 10" = { Intercept = 1, day = 10 } }',
         "estimands[distal_by_dp].lincombs.dp 10.day", r"'day' is not an effect term.*dp"),
    ],
)  # fmt: skip
def test_distal_plan_names_a_column_the_data_lack(tmp_path, old, new, key, pattern):
    assert old in MIXED
    p = _plan(tmp_path, MIXED.replace(old, new))
    validate(p, check_data=False)  # the keys are fine: only the data lack the column
    with pytest.raises(PlanError, match=pattern) as ei:
        validate(p)
    assert ei.value.key == key
