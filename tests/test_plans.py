"""Analysis plans: validation errors name the key, plans rerun to the same numbers, the
HeartSteps primary report is complete and renders in a real browser, the CLI's exit codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt.cli import main
from hte_mrt.errors import PlanError
from hte_mrt.reports.plans import load_plan
from hte_mrt.reports.run import run_plan, validate
from tests.plan_helpers import BASE_MRT

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

BASE = BASE_MRT


def _plan(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "plan.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("plan", sorted(MODELS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_plans_validate(plan):
    p = validate(plan)
    assert p.name == plan.stem
    # the recorded hash is that of the plan's text (an edited plan gets another one)
    assert p.sha256 == hashlib.sha256(plan.read_text().encode()).hexdigest()


@pytest.mark.parametrize(
    "edit, key, match",
    [
        (("[plan]", "[plan]\ncolour = 'red'"), "plan.colour", "unknown key 'colour'"),
        (("dataset = \"heartsteps\"", "dataset = \"heartsteeps\""), "data.dataset",
         "unknown dataset 'heartsteeps'"),
        (("outcome = \"jbsteps30_log\"", "outcome = \"steps\""), "data.outcome",
         "column 'steps'"),
        (("moderators = \"~ 1\"", "moderators = \"~ weather\""), "estimands[marginal].moderators",
         "'weather'"),
        (("name = \"marginal\"", "name = \"marginal\"\ntype = \"cate\""),
         "estimands[marginal].type", "CRT estimand"),
        (("seed = 7", "seed = 7\n[model]\npriors = { sigma = { dist = \"halfnormal\", "
          "sigma = -1 } }"), "model.priors.sigma", "sigma"),
        (("seed = 7", "seed = -7"), "plan.seed", "non-negative"),
    ],
)  # fmt: skip
def test_validation_errors_name_the_key_and_line(tmp_path, edit, key, match):
    text = BASE.replace(*edit)
    assert text != BASE
    with pytest.raises(PlanError, match=match) as ei:
        validate(_plan(tmp_path, text))
    assert ei.value.key == key
    assert ei.value.line is not None
    line = text.splitlines()[ei.value.line - 1]
    parts = [p.split("[")[0] for p in key.split(".")]
    assert any(p and p in line for p in parts), (line, key)
    assert str(ei.value).startswith(key)


def test_invalid_toml_reports_the_line(tmp_path):
    with pytest.raises(PlanError, match="not valid TOML") as ei:
        load_plan(_plan(tmp_path, BASE + "\nbroken = = 1\n"))
    assert ei.value.line == BASE.count("\n") + 2


def test_same_plan_same_numbers(tmp_path, monkeypatch):
    """Bitwise-identical WCLS and identical seeded draws on a rerun; the data read once per run."""
    import hte_mrt.reports.run as run_mod

    reads = []
    real = run_mod.load_frame
    monkeypatch.setattr(run_mod, "load_frame", lambda plan: reads.append(1) or real(plan))
    p = _plan(tmp_path, BASE)
    a = run_plan(p, tmp_path / "a", quick=True, progress=False)
    assert len(reads) == 1
    b = run_plan(p, tmp_path / "b", quick=True, progress=False)
    ta, tb = a.tables["effects_marginal"], b.tables["effects_marginal"]
    assert ta["estimate"].to_numpy().tobytes() == tb["estimate"].to_numpy().tobytes()
    pd.testing.assert_frame_equal(ta, tb)
    from hte_mrt.results.bayes import BayesResult

    da = BayesResult.from_netcdf(tmp_path / "a" / "posterior.nc").posterior["beta"].values
    db = BayesResult.from_netcdf(tmp_path / "b" / "posterior.nc").posterior["beta"].values
    np.testing.assert_array_equal(da, db)
    ma = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert ma["plan_sha256"] == hashlib.sha256(p.read_text().encode()).hexdigest()
    # the data hash is that of the analysed rows: recomputed here from the bundled data set
    expected = hashlib.sha256(
        hm.load_dataset("heartsteps").to_csv(index=False).encode()
    ).hexdigest()
    assert ma["data_sha256"] == expected
    assert ma["seed"] == 7 and "pymc" in ma["versions"]


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    out = tmp_path_factory.mktemp("primary")
    return run_plan(MODELS / "heartsteps_v1_primary.toml", out, quick=True, progress=False)


def test_primary_report_is_complete(primary):
    out = primary.out
    for f in ("report.html", "report.md", "tables.tex", "posterior.nc", "posterior.json",
              "metadata.json"):  # fmt: skip
        assert (out / f).is_file(), f
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"curve_by_day.png", "curve_by_day.svg", "participants.png"} <= figs
    tab = primary.tables["effects_marginal"]
    # the published WCLS estimate, reproduced inside the report, and the posterior agrees
    rows = tab.set_index(["estimator", "term"])
    assert rows.loc[("WCLS", "Intercept"), "estimate"] == pytest.approx(0.13120, abs=5e-5)
    assert abs(rows.loc[("BayesMRT", "Intercept"), "difference_in_se"]) < 1
    tex = (out / "tables.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex
    md = (out / "report.md").read_text()
    for section in ("## Trial", "## Causal excursion effects", "## Participant heterogeneity",
                    "## Diagnostics", "## Robustness", "## Methods"):  # fmt: skip
        assert section in md
    assert "prior_sensitivity" in primary.tables and "randomization_test" in primary.tables
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html  # self-contained


@pytest.mark.requires_browser
def test_primary_report_renders_in_a_browser(primary):
    from hte_mrt.reports.browser import check_html

    shot = primary.out / "screenshot.png"
    res = check_html(primary.out / "report.html", screenshot=shot)
    assert res.console_errors == []
    assert res.images_total >= 2 and res.images_broken == []
    assert shot.stat().st_size > 10_000  # in the run's tmp folder: nothing into the source tree


@pytest.fixture(scope="module")
def crt_run(tmp_path_factory):
    """The shipped TASSH plan with two of its learners, run quick."""
    tmp_path = tmp_path_factory.mktemp("crt")
    text = (MODELS / "tassh_cate.toml").read_text()
    text = text[: text.index("[learners.")] + "[learners.bamm]\n\n[learners.linear]\nn_boot = 20\n"
    return run_plan(_plan(tmp_path, text), tmp_path / "out", quick=True, progress=False)


def test_crt_plan_report(crt_run):
    """The shipped TASSH plan, run end to end with two of its learners (quick draws): report,
    tables, figures, and a saved posterior whose numbers are the report's."""
    from hte_mrt.results.cate import CATEResult

    r = crt_run
    out = r.out
    for f in ("report.html", "report.md", "tables.tex", "posterior.nc", "posterior.json",
              "metadata.json", "ate.csv", "importance.csv", "blp_cate.csv"):  # fmt: skip
        assert (out / f).is_file(), f
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"cate_hist.png", "subgroup_female_plot.png", "band_age_plot.svg"} <= figs
    md = (out / "report.md").read_text()
    for section in ("## Trial", "## Average treatment effects", "## Moderator importance",
                    "## Diagnostics", "## Methods"):  # fmt: skip
        assert section in md
    # the saved posterior is the primary learner's, with its (quick) settings
    res = CATEResult.from_netcdf(out / "posterior.nc")
    assert res.learner == "bamm" and res.meta["params"]["draws"] == 200
    assert len(res) == 641  # patients with an observed 12-month change
    ate = r.tables["ate"].set_index(["learner", "average"])
    for kind in ("individual", "cluster"):
        a = res.ate(kind)
        assert a["estimate"] == pytest.approx(ate.loc[("bamm", kind), "estimate"], abs=1e-12)
        assert a["lcl"] == pytest.approx(ate.loc[("bamm", kind), "lcl"], abs=1e-12)
    sub = r.tables["subgroup_cate_female"]
    np.testing.assert_allclose(sub["estimate"], res.subgroups("female")["estimate"], atol=1e-12)
    diff = r.tables["contrast_cate_female"]["estimate"].iloc[0]
    assert diff == pytest.approx(sub["estimate"].iloc[1] - sub["estimate"].iloc[0], abs=1e-12)
    assert set(r.tables["importance"]["covariate"]) >= {"age", "female", "urban"}
    cal = r.tables["calibration_cate"].set_index("term")
    assert (cal["splits"] == 2).all()  # quick: at most 2 splits
    # the report names the primary learner and why, and sets its ATE beside the published one
    assert "## Learners" in md and "the package default" in md
    ref = r.tables["reference_ate_cate"].set_index("analysis")
    pub = ref.loc["Ogedegbe et al. 2018, adjusted analysis"]
    assert (pub["estimate"], pub["lcl"], pub["ucl"]) == (-3.6, -6.1, -0.5)
    mine = ref.iloc[0]
    assert mine["estimate"] == pytest.approx(ate.loc[("bamm", "individual"), "estimate"])
    assert "Why the two can differ" in md


@pytest.mark.requires_browser
def test_crt_plan_report_renders_in_a_browser(crt_run):
    """No console errors, every figure loads."""
    from hte_mrt.reports.browser import check_html

    res_html = check_html(crt_run.out / "report.html")
    assert res_html.console_errors == [] and res_html.images_broken == []
    assert res_html.images_total >= 5  # CATE histogram, 2 subgroup and 2 band forest plots


def test_samplesize_plan_and_cli(tmp_path, capsys):
    r = run_plan(MODELS / "samplesize_reference.toml", tmp_path / "ss", progress=False)
    s = r.tables["samplesize"].iloc[0]
    assert s["n"] == 46 and s["power_at_n"] == pytest.approx(0.803257, abs=1e-6)
    assert len(r.tables["power_table"]) == 81
    args = ["samplesize", "--days", "42", "--per-day", "5", "--prob", "0.4",
            "--availability-shape", "quadratic", "--availability-initial", "0.7",
            "--availability-mean", "0.5", "--availability-turn-day", "42",
            "--effect-shape", "quadratic", "--effect-initial", "0", "--effect-mean", "0.1",
            "--effect-turn-day", "28", "--table", "20", "100"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "N = 46" in out and "0.803257" in out
    assert out.count("\n") > 80  # the power table N = 20..100
    bad = [a if a != "0.4" else "1.4" for a in args]
    assert main(bad) == 3
    assert "prob" in capsys.readouterr().err


def test_cli_validate_exit_codes(tmp_path, capsys):
    assert main(["validate", str(MODELS / "heartsteps_v1_primary.toml")]) == 0
    assert (
        main(["validate", str(_plan(tmp_path, BASE.replace("seed = 7", "seed = 7\nx = 1")))]) == 4
    )
    assert "unknown key 'x'" in capsys.readouterr().err


def test_crt_plan_calibration_splits_is_validated(tmp_path):
    text = (MODELS / "tassh_cate.toml").read_text()
    bad = text.replace("calibration_splits = 10", "calibration_splits = -1")
    with pytest.raises(PlanError, match=r"calibration_splits \(line \d+\): must be a non-negative"):
        load_plan(_plan(tmp_path, bad))


SIZE_PLAN = """
[plan]
name = "size"
title = "Sample size"
design = "samplesize"
seed = 1

[design]
days = 42
per_day = 5
prob = 0.4
availability = 0.5
effect = 0.1
power_table = [30, 40]

[report]
out = "reports/size"
"""


def test_quick_run_is_marked_and_never_overwrites_a_final_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HTE_MRT_QUICK", raising=False)
    plan = _plan(tmp_path, SIZE_PLAN)
    q = run_plan(plan, quick=True, progress=False)
    assert q.out == Path("reports/size-quick") and q.quick
    assert json.loads((q.out / "metadata.json").read_text())["quick"] is True
    for name in ("report.html", "report.md", "tables.tex"):
        head = (q.out / name).read_text()[:1500]
        assert "QUICK RUN" in head, name
    assert "[QUICK RUN]" in (q.out / "tables.tex").read_text().split("\\caption")[1]
    final = run_plan(plan, progress=False)
    assert final.out == Path("reports/size") and not final.quick
    assert "QUICK RUN" not in (final.out / "report.html").read_text()
    with pytest.raises(PlanError, match="final"):
        run_plan(plan, "reports/size", quick=True, progress=False)
    # HTE_MRT_QUICK=1 means quick; the CLI prints the headline estimates
    monkeypatch.setenv("HTE_MRT_QUICK", "1")
    assert main(["run", str(plan), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "QUICK RUN" in out and "headline estimates" in out and "reports/size-quick" in out


def test_report_tables_fit_the_page(tmp_path):
    """A 13-column table is split into parts, headers are human, no None / nan cells, and
    estimate + interval columns become one "(95% CI)" cell."""
    from hte_mrt.reports.render import Report

    wide = pd.DataFrame(
        {
            "term": ["Intercept", "day"],
            "wcls_estimate": [0.131, -0.02],
            "wcls_se": [0.067, 0.006],
            "wcls_lcl": [-0.006, -0.03],
            "wcls_ucl": [0.268, -0.008],
            "posterior_mean": [0.136, -0.018],
            "posterior_sd": [0.08, 0.006],
            "posterior_lcl": [-0.01, -0.03],
            "posterior_ucl": [0.28, -0.007],
            "difference_in_wcls_se": [0.06, 0.1],
            "sd_ratio": [1.19, 0.98],
            "flag": [False, True],
            "pr_gt_0": [0.968, None],
            "note": [None, "x"],
            "a": [1.0, 2.0],
            "b": [1.0, 2.0],
            "c": [1.0, 2.0],
        }
    )
    rep = Report("t")
    rep.section("s")
    rep.table(wide, "wide")
    rep.write(tmp_path)
    html = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    tex = (tmp_path / "tables.tex").read_text()
    for text in (html, md, tex):
        assert "part 1 of 2" in text and "part 2 of 2" in text
        assert "None" not in text and "nan" not in text.lower().replace("nanmean", "")
        assert "WCLS (95" in text and "wcls_estimate" not in text
    assert "0.131 (-0.006, 0.268)" in html
    heads = [line for line in md.splitlines() if line.startswith("| Term")]
    assert len(heads) == 2 and all(h.count("|") - 1 <= 8 for h in heads)


def test_plan_builds_each_estimands_data_and_model_once(tmp_path, monkeypatch):
    """Estimands without a data override share one MRTData; the prior-sensitivity step reuses
    the primary fit's design instead of rebuilding the model (one build per fit)."""
    import hte_mrt.reports.mrt_plan as mp
    from hte_mrt.estimators.bayes.model import BayesMRT

    data_calls, builds = [], []
    real_data, real_build = mp.mrt_data, BayesMRT._build  # fit() and build() both call _build
    monkeypatch.setattr(mp, "mrt_data", lambda *a, **k: data_calls.append(1) or real_data(*a, **k))
    monkeypatch.setattr(
        BayesMRT, "_build", lambda self, data: builds.append(1) or real_build(self, data)
    )
    text = BASE + (
        '\n[[estimands]]\nname = "by_day"\nmoderators = "~ study_day_nogap"\n'
        'controls = "~ jbsteps30pre_log"\n\n[robustness]\nprior_sensitivity = { scales = [2.0] }\n'
    )
    r = run_plan(_plan(tmp_path, text), tmp_path / "out", quick=True, progress=False)
    assert len(data_calls) == 1
    assert len(builds) == 3  # two estimands + one refit at prior scale 2
    ps = r.tables["prior_sensitivity"]
    assert list(ps["prior_scale"]) == [1.0, 2.0]
