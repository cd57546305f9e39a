"""The JIT study's plans (``models/jit_*.toml``) and their data (``models/data/jit_*.csv``).

The notebook ``notebooks/05_jit_study.py`` runs in the docs build (``tests/test_docs.py``);
``tests/test_plans.py`` validates every shipped plan. Here: the shipped CSV files are the
simulated trial that ``tools/make_jit_data.py`` writes (so the plans analyse the notebook's
trial), and the two sample-size plans give the paper's Table 3 numbers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


def _tool():
    spec = importlib.util.spec_from_file_location(
        "make_jit_data", ROOT / "tools" / "make_jit_data.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["goal", "social"])
def test_shipped_csv_is_the_simulated_trial(name):
    """The CSV holds what the generator writes today: same columns, ids, treatments and stages;
    numbers equal to the written precision (10 significant digits: relative error <= 5e-10,
    checked with 1e-9)."""
    tool = _tool()
    fresh = tool.jit_frames()[name]
    shipped = pd.read_csv(MODELS / "data" / f"jit_{name}.csv")
    assert list(shipped.columns) == list(fresh.columns)
    assert len(shipped) == len(fresh)
    for col in fresh.columns:
        a, b = shipped[col].to_numpy(), fresh[col].to_numpy()
        if fresh[col].dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=0, err_msg=col)
        else:
            assert (a == b).all(), f"{col}: regenerate with python tools/make_jit_data.py"


def test_csv_rows_match_the_papers_design():
    goal = pd.read_csv(MODELS / "data" / "jit_goal.csv")
    social = pd.read_csv(MODELS / "data" / "jit_social.csv")
    assert (len(goal), len(social)) == (1540, 4620)  # 55 participants x 28 and x 84
    # exclusion rule: after the weekly goal is reached a decision point is unavailable
    assert (social.loc[social["goal_reached"] == 1, "avail"] == 0).all()
    assert (goal.loc[goal["goal_reached"] == 1, "avail"] == 0).all()
    assert set(goal["goal_feedback"]) == {"none", "subgoal", "overall"}


@pytest.mark.parametrize("plan, n", [("jit_design_goal", 64), ("jit_design_social", 50)])
def test_sample_size_plans_give_table_3(tmp_path, plan, n):
    res = hm.run_plan(MODELS / f"{plan}.toml", tmp_path / plan, progress=False)
    assert int(res.tables["samplesize"]["n"].iloc[0]) == n
    assert (res.out / "report.html").is_file()


def test_plans_read_the_right_data():
    """H1/H2 on the goal-feedback rows (three levels), H3/H4 on the social-feedback rows; the
    WCLS fits a validation builds exist for every estimand."""
    goal = hm.validate_plan(MODELS / "jit_h1_h2.toml")
    social = hm.validate_plan(MODELS / "jit_h3_h4.toml")
    assert goal.section("data")["path"] == "data/jit_goal.csv"
    assert set(goal.section("data")["levels"]) == {"none", "subgoal", "overall"}
    assert social.section("data")["path"] == "data/jit_social.csv"
    assert [e["name"] for e in goal.estimands] == ["h1", "h2"]
    assert [e["name"] for e in social.estimands] == ["h3", "h4"]


@pytest.mark.requires_browser
@pytest.mark.parametrize("plan", ["jit_h3_h4", "jit_h5"])
def test_study_plans_write_reports_that_render(tmp_path, plan):
    """The proximal (H3/H4: WCLS, the Bayesian model, the re-randomization test) and the
    distal (H5: DCEE and mediation) plans run in quick mode and their HTML reports render in a
    browser without console errors or broken images; the headline is the plan's primary
    estimand."""
    from hte_mrt.reports.browser import check_html

    res = hm.run_plan(MODELS / f"{plan}.toml", tmp_path / plan, quick=True, progress=False)
    head = res.table()
    assert len(head) >= 1 and head["estimate"].notna().all()
    chk = check_html(res.out / "report.html")
    assert chk.console_errors == [] and chk.images_broken == []
    # H5's report has its effect figures; H3/H4 (moderated by a categorical stage, no effect
    # curve) a forest plot of H4's effect by stage, WCLS beside the Bayesian model
    assert chk.images_total >= 1
    if plan != "jit_h5":
        assert (res.out / "figures" / "forest_h4.png").is_file()
