"""crosscheck and ExcursionEffect.fit: any two results of one estimand, one estimand several
estimators. (The BayesResult cross-checks live in tests/test_bayes_model.py.)"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt._contract import Result, Summary
from hte_mrt.errors import DesignError
from hte_mrt.results.crosscheck import CrossCheck
from tests.accuracy import assert_agrees_with_reference

CONTROL = "~ jbsteps30pre_log"
DAY20 = {"day 20": {"Intercept": 1, "study_day_nogap": 20}}


@pytest.fixture(scope="module")
def day_effect():
    return hm.ExcursionEffect("~ study_day_nogap", CONTROL)


@pytest.fixture(scope="module")
def day_fit(heartsteps, day_effect):
    return day_effect.fit(heartsteps)


@pytest.fixture(scope="module")
def day_boot(heartsteps, day_effect):
    return day_effect.fit(
        heartsteps, estimator="bayesian_bootstrap", n_boot=1000, seed=4, progress=False
    )


# ------------------------------------------------------------------ ExcursionEffect.fit
def test_estimand_fit_equals_short_forms(heartsteps, binary, day_effect, day_fit):
    short = hm.wcls(heartsteps, "~ study_day_nogap", CONTROL)
    np.testing.assert_allclose(day_fit.theta, short.theta, rtol=1e-12, atol=0)
    np.testing.assert_allclose(day_fit.cov_theta, short.cov_theta, rtol=1e-12, atol=0)
    pd.testing.assert_frame_equal(day_fit.table(), short.table(), rtol=1e-12)
    assert day_fit.estimand == day_effect
    # options pass through
    plain = day_effect.fit(heartsteps, "wcls", small_sample=False, conf_level=0.9)
    ref = hm.wcls(heartsteps, "~ study_day_nogap", CONTROL, small_sample=False, conf_level=0.9)
    pd.testing.assert_frame_equal(plain.table(), ref.table(), rtol=1e-12)
    e = hm.ExcursionEffect("~ time_var1", "~ time_var1 + time_var2", numerator=0.5)
    for variant in ("emee", "emee2"):
        a = e.fit(binary, estimator=variant)
        b = hm.emee(
            binary, "~ time_var1", "~ time_var1 + time_var2", numerator=0.5, variant=variant
        )
        np.testing.assert_allclose(a.theta, b.theta, rtol=1e-12, atol=0)
        np.testing.assert_allclose(a.cov_theta, b.cov_theta, rtol=1e-12, atol=0)
        assert a.method == variant.upper()


def test_estimand_fit_with_an_estimator_object(heartsteps, day_effect):
    class Recorder:
        def fit(self, data, estimand=None, **options):
            self.got = (data, estimand, options)
            return "fitted"

    rec = Recorder()
    assert day_effect.fit(heartsteps, estimator=rec, extra=1) == "fitted"
    assert rec.got == (heartsteps, day_effect, {"extra": 1})


def test_estimand_fit_bad_estimator(heartsteps, day_effect):
    with pytest.raises(DesignError, match="'emee', 'emee2', 'wcls'"):
        day_effect.fit(heartsteps, estimator="ols")
    with pytest.raises(DesignError, match="fit\\(data, estimand"):
        day_effect.fit(heartsteps, estimator=42)


# ------------------------------------------------------------------ crosscheck
def test_wcls_vs_bootstrap_per_term_and_lincomb(day_fit, day_boot):
    cc = hm.crosscheck(day_fit, day_boot, lincombs=DAY20)
    assert isinstance(cc, CrossCheck) and isinstance(cc, Result)
    tab = cc.table()
    assert list(tab.columns) == [
        *["term", "estimator", "estimate", "se", "lcl", "ucl", "pr_positive"],
        *["difference", "difference_in_se", "se_ratio", "flag"],
    ]
    assert list(tab["term"]) == ["Intercept"] * 2 + ["study_day_nogap"] * 2 + ["day 20"] * 2
    assert list(tab["estimator"]) == ["WCLS", "Bayesian bootstrap"] * 3
    assert cc.reference == "WCLS" and cc.flagged == []
    w, bb = cc.rows("WCLS"), cc.rows("Bayesian bootstrap")
    # per-term rows are the results' own tables
    pd.testing.assert_frame_equal(
        w.loc[["Intercept", "study_day_nogap"], ["estimate", "se", "lcl", "ucl"]],
        day_fit.table().set_index("term")[["estimate", "se", "lcl", "ucl"]],
    )
    bt = day_boot.table().set_index("term")
    np.testing.assert_allclose(
        bb.loc["Intercept", ["estimate", "se"]], bt.loc["Intercept", ["estimate", "se"]]
    )
    # the combination: WCLS by its t inference, the bootstrap draw by draw
    lc = day_fit.lincomb({"Intercept": 1, "study_day_nogap": 20}).iloc[0]
    assert w.loc["day 20", "estimate"] == pytest.approx(lc["estimate"], rel=1e-12)
    assert w.loc["day 20", "se"] == pytest.approx(lc["se"], rel=1e-12)
    d = day_boot.effect_draws().to_numpy() @ np.array([1.0, 20.0])
    assert bb.loc["day 20", "estimate"] == pytest.approx(d.mean(), rel=1e-12)
    assert bb.loc["day 20", "lcl"] == pytest.approx(np.quantile(d, 0.025), rel=1e-12)
    z = (d.mean() - lc["estimate"]) / lc["se"]
    assert bb.loc["day 20", "difference_in_se"] == pytest.approx(z, rel=1e-10)
    assert bb.loc["day 20", "se_ratio"] == pytest.approx(d.std(ddof=1) / lc["se"], rel=1e-10)
    # the bootstrap agrees with WCLS to a fraction of a WCLS SE: both solve the same
    # estimating equation (the bootstrap with random weights), so the bootstrap mean differs
    # from WCLS by resampling noise, sd SE / sqrt(1000) = 0.03 SE, plus an O(1/n) bias: 0.2 SE
    # is ~6 resampling sds, and below |estimate| / SE for every term (so 0 or -estimate fail)
    check_bootstrap_agrees_with_wcls(cc)
    assert np.isnan(w["difference_in_se"]).all() and not w["flag"].any()


def check_bootstrap_agrees_with_wcls(cc) -> None:
    """Bayesian bootstrap vs WCLS: estimates within 0.2 WCLS SE, SEs within 20%."""
    assert_agrees_with_reference(cc, "Bayesian bootstrap", 0.2)
    bb = cc.rows("Bayesian bootstrap")
    assert bb["se_ratio"].between(0.8, 1.2).all(), bb["se_ratio"]


def test_contract_paper_summary_levels_and_saving(day_fit, day_boot, tmp_path):
    cc = hm.crosscheck(day_fit, day_boot, lincombs=DAY20)
    s = cc.summary()
    assert isinstance(s, Summary) and s.title == "Cross-check: WCLS vs Bayesian bootstrap"
    assert s.info["flagged"] == "none" and "<table" in cc._repr_html_()
    paper = cc.table(style="paper")
    assert list(paper.columns) == [
        "Term",
        "WCLS (95% CI)",
        "Bayesian bootstrap (95% CI)",
        "Bayesian bootstrap - WCLS (SEs)",
        "Flag",
    ]
    assert len(paper) == 3 and not paper.isna().any().any()
    t80 = cc.table(0.8)
    assert (t80["ucl"] - t80["lcl"] < cc.table()["ucl"] - cc.table()["lcl"]).all()
    pd.testing.assert_frame_equal(
        cc.conf_int(0.2).reset_index(drop=True), t80[["lcl", "ucl"]].reset_index(drop=True)
    )
    ds = cc.to_xarray()
    assert dict(ds.sizes) == {"term": 3, "estimator": 2}
    cc.to_netcdf(tmp_path / "cc.nc")
    assert (tmp_path / "cc.json").exists()


def test_two_excursion_results_and_the_flag(heartsteps, day_fit):
    plain = hm.wcls(heartsteps, "~ study_day_nogap", CONTROL, small_sample=False)
    cc = hm.crosscheck(day_fit, plain)
    assert cc.labels == ["WCLS", "WCLS (2)"]
    other = cc.rows("WCLS (2)")
    np.testing.assert_allclose(other["difference"], 0, atol=1e-12)
    np.testing.assert_allclose(other["se_ratio"], plain.bse / day_fit.bse, rtol=1e-12)
    # shift the day slope by 1.5 SEs: flagged at threshold 1, not at threshold 2
    q = len(day_fit.names_control)
    theta = day_fit.theta.copy()
    theta[q + 1] += 1.5 * day_fit.bse["study_day_nogap"]
    shifted = dataclasses.replace(day_fit, theta=theta)
    cc = hm.crosscheck(day_fit, shifted, labels=["observed", "shifted"])
    assert cc.flagged == ["study_day_nogap"]
    assert cc.rows("shifted").loc["study_day_nogap", "difference_in_se"] == pytest.approx(1.5)
    assert "study_day_nogap" in " ".join(cc.summary().notes)
    assert hm.crosscheck(day_fit, shifted, threshold=2).flagged == []
    # the reference can be chosen
    cc = hm.crosscheck(day_fit, shifted, reference=1)
    assert cc.reference == "WCLS (2)"
    assert cc.rows("WCLS").loc["study_day_nogap", "difference_in_se"] == pytest.approx(-1.5)


def test_wcls_vs_emee_refuses_different_scales(binary):
    kw = dict(numerator=0.5)
    w = hm.wcls(binary, "~ 1", "~ time_var1 + time_var2", **kw)
    e = hm.emee(binary, "~ 1", "~ time_var1 + time_var2", **kw)
    with pytest.raises(DesignError, match=r"effect scale.*additive.*log relative risk"):
        hm.crosscheck(w, e)


def test_draws_as_a_dataarray(day_fit, day_boot):
    cc = hm.crosscheck(day_fit, day_boot.effect_draws(), labels=["WCLS", "draws"])
    a = cc.rows("draws")
    b = hm.crosscheck(day_fit, day_boot).rows("Bayesian bootstrap")
    pd.testing.assert_frame_equal(a, b)


def test_bad_input(heartsteps, day_fit, day_boot):
    marginal = hm.wcls(heartsteps, "~ 1", CONTROL)
    with pytest.raises(DesignError, match="lacks effect term"):
        hm.crosscheck(day_fit, marginal)
    with pytest.raises(DesignError, match="table"):
        hm.crosscheck(day_fit, "not a result")
    with pytest.raises(DesignError, match="threshold"):
        hm.crosscheck(day_fit, day_boot, threshold=0)
    with pytest.raises(DesignError, match="reference"):
        hm.crosscheck(day_fit, day_boot, reference="Bayes")
    with pytest.raises(DesignError, match="labels"):
        hm.crosscheck(day_fit, day_boot, labels=["a"])
    with pytest.raises(DesignError, match="Unknown effect term"):
        hm.crosscheck(day_fit, day_boot, lincombs={"x": {"day": 1}})
    with pytest.raises(DesignError, match="conf_level"):
        hm.crosscheck(day_fit, day_boot, conf_level=95)


def test_bootstrap_result_contract(heartsteps, day_boot, tmp_path):
    from hte_mrt.results.bootstrap import BootstrapResult

    assert isinstance(day_boot, Result) and day_boot.n_boot == 1000
    tab = day_boot.table()
    assert list(tab.columns) == ["term", "estimate", "se", "lcl", "ucl", "pr_positive"]
    d = day_boot.effect_draws()
    assert d.dims == ("draw", "term") and tab["estimate"].iloc[0] == pytest.approx(
        float(d.sel(term="Intercept").mean())
    )
    assert isinstance(day_boot.summary(), Summary) and "1000" in str(day_boot.summary())
    back = BootstrapResult.from_netcdf(day_boot.to_netcdf(tmp_path / "b.nc"))
    pd.testing.assert_frame_equal(back.table(), tab)
    # seeded, all terms, n_boot validated
    kw = dict(n_boot=50, seed=9, progress=False)
    a = hm.bayesian_bootstrap(heartsteps, "~ 1", CONTROL, which="all", **kw)
    b = hm.bayesian_bootstrap(heartsteps, "~ 1", CONTROL, which="all", **kw)
    np.testing.assert_array_equal(a.draws.to_numpy(), b.draws.to_numpy())
    assert a.names_effect == ["Intercept"] and len(a.table()) == 3
    with pytest.raises(DesignError, match="n_boot"):
        hm.bayesian_bootstrap(heartsteps, n_boot=0)
