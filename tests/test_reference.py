"""WCLS and EMEE against MRTAnalysis 0.3.1 output and the published HeartSteps V1 analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte_mrt import wcls
from hte_mrt.data.datasets import heartsteps as hs_data
from hte_mrt.data.datasets import load_heartsteps
from hte_mrt.estimators.emee import emee
from tests.accuracy import (
    HEARTSTEPS_DAY_PUBLISHED,
    HEARTSTEPS_PUBLISHED,
    HEARTSTEPS_PUBLISHED_P,
    MRTANALYSIS_EMEE,
    MRTANALYSIS_WCLS,
    MRTANALYSIS_WCLS_PLAIN,
    assert_matches_reference,
    assert_power_at_least,
    assert_rate,
)
from tests.conftest import shared_csv


def test_wcls_matches_mrtanalysis_md_corrected(mimic):
    # MRTAnalysis::wcls(data_mimicHeartSteps, ..., numerator_prob = 0.5), summary(); printed to
    # 10 significant digits: rel = 1e-8
    fit = wcls(mimic, "~ 1", "~ logstep_pre30min", numerator=0.5)
    row = fit.table().iloc[0]
    assert_matches_reference(row, MRTANALYSIS_WCLS, rel=1e-8)
    assert row["df"] == 34
    assert fit.n == 37 and fit.small_sample


def test_wcls_plain_sandwich_matches_mrtanalysis(mimic):
    fit = wcls(mimic, "~ 1", "~ logstep_pre30min", numerator=0.5, small_sample=False)
    got = {"estimate": fit.params.iloc[0], "se": fit.bse.iloc[0]}
    assert_matches_reference(got, MRTANALYSIS_WCLS_PLAIN, rel=1e-8)


def test_emee_matches_mrtanalysis(binary):
    fit = emee(binary, "~ 1", "~ time_var1 + time_var2", numerator=0.5)
    row = fit.table().iloc[0]
    assert_matches_reference(row, MRTANALYSIS_EMEE, rel=1e-7)
    assert row["df"] == 96


def test_emee_solves_estimating_equation_and_md_formula(binary):
    """Cross-check the O(n d^3) Mancl-DeRouen identity against the literal T_i x T_i solve."""
    from hte_mrt.estimators.emee import _pieces

    fit = emee(binary, "~ time_var1", "~ time_var1 + time_var2", numerator=0.5)
    d = fit.design
    D, r, dr, dD_r = _pieces(d, fit.theta, "emee")
    assert np.max(np.abs(D.T @ r)) / d.n_participants_total < 1e-12
    J = dD_r + D.T @ dr
    meat = np.zeros_like(J)
    for g in range(d.n_groups):
        m = d.group == g
        H = dr[m] @ np.linalg.solve(J, D[m].T)
        e = D[m].T @ np.linalg.solve(np.eye(m.sum()) - H, r[m])
        meat += np.outer(e, e)
    Jinv = np.linalg.inv(J)
    np.testing.assert_allclose(Jinv @ meat @ Jinv.T, fit.cov_theta, rtol=1e-9, atol=1e-14)


def test_wcls_md_identity_matches_literal_hat_matrix(heartsteps):
    fit = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log")
    d = fit.design
    X, W, y = d.X, d.W, d.y
    B = X.T @ (X * W[:, None])
    res = y - X @ fit.theta
    meat = np.zeros_like(B)
    for g in range(d.n_groups):
        m = d.group == g
        H = X[m] @ np.linalg.solve(B, (X[m] * W[m, None]).T)
        e = (X[m] * W[m, None]).T @ np.linalg.solve(np.eye(m.sum()) - H, res[m])
        meat += np.outer(e, e)
    Binv = np.linalg.inv(B)
    np.testing.assert_allclose(Binv @ meat @ Binv, fit.cov_theta, rtol=1e-9)


def test_heartsteps_primary_analysis_matches_publication(heartsteps):
    # Qian et al. 2022 (Psychol Methods): 0.13120, 95% CI (-0.00576, 0.26815), SE 0.06739, p 0.0599;
    # half a unit of the last printed digit
    row = wcls(heartsteps, "~ 1", "~ jbsteps30pre_log").table().iloc[0]
    assert_matches_reference(row, HEARTSTEPS_PUBLISHED, abs=5e-6)
    assert_matches_reference(row, {"p": HEARTSTEPS_PUBLISHED_P}, abs=5e-5)


def test_heartsteps_day_moderated(heartsteps):
    # Published: 0.5074 - 0.0185 day (moderator main effect added to the controls automatically)
    fit = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log")
    assert list(fit.names_control) == ["Intercept", "jbsteps30pre_log", "study_day_nogap"]
    assert_matches_reference(fit.params, HEARTSTEPS_DAY_PUBLISHED, abs=5e-5)
    # effect at day 20 as a scalar t combination, equal to the effect curve at day 20
    lc = fit.lincomb({"Intercept": 1, "study_day_nogap": 20}).iloc[0]
    curve = fit.effect_curve(pd.DataFrame({"study_day_nogap": [20.0]})).iloc[0]
    assert lc["estimate"] == pytest.approx(curve["estimate"], rel=1e-12)
    assert lc["se"] == pytest.approx(curve["se"], rel=1e-12)
    c = np.array([1.0, 20.0])
    assert lc["se"] == pytest.approx(np.sqrt(c @ fit.cov.to_numpy() @ c), rel=1e-12)


def test_conf_level_is_honoured(heartsteps):
    fit = wcls(heartsteps, "~ 1", "~ jbsteps30pre_log", conf_level=0.9)
    from scipy import stats

    row = fit.table().iloc[0]
    crit = stats.t.ppf(0.95, 34)
    assert row["ucl"] - row["estimate"] == pytest.approx(crit * row["se"], rel=1e-12)
    ci80 = fit.conf_int(0.2).iloc[0]  # statsmodels' alpha: 0.2 gives an 80% interval
    assert ci80["ucl"] - row["estimate"] == pytest.approx(stats.t.ppf(0.9, 34) * row["se"])


def test_conf_int_has_statsmodels_meaning(heartsteps):
    """conf_int(alpha=0.05) is a 95% interval (it used to be a 5% one), conf_int(0.95) a 5% one."""
    from hte_mrt.errors import DesignError

    fit = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log")
    t95 = fit.table(0.95).set_index("term")
    pd.testing.assert_frame_equal(fit.conf_int(0.05), t95[["lcl", "ucl"]], rtol=1e-14)
    pd.testing.assert_frame_equal(fit.conf_int(), t95[["lcl", "ucl"]], rtol=1e-14)
    t5 = fit.table(0.05).set_index("term")
    pd.testing.assert_frame_equal(fit.conf_int(0.95), t5[["lcl", "ucl"]], rtol=1e-14)
    assert (fit.conf_int(0.95)["ucl"] - fit.conf_int(0.95)["lcl"] < 0.2 * fit.bse).all()
    for bad in (0, 1, 1.5, -0.1, "0.05", True):
        with pytest.raises(DesignError, match="alpha"):
            fit.conf_int(bad)
    for bad in (0, 1, 95, "x"):
        with pytest.raises(DesignError, match="conf_level"):
            fit.table(bad)


def test_result_contract_summary_paper_and_repr(heartsteps):
    from hte_mrt._contract import Result, Summary

    fit = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log", lag=1)
    assert isinstance(fit, Result)
    assert list(fit.table().columns) == ["term", "estimate", "se", "lcl", "ucl", "t", "df", "p"]
    s = fit.summary(conf_level=0.9)
    assert isinstance(s, Summary)
    assert s.title == "WCLS: causal excursion effect (additive scale)"
    assert s.info["participants"] == 37 and s.info["df"] == fit.df == 32 and s.info["lag"] == 1
    assert "Mancl-DeRouen" in s.info["variance"]
    assert s.info["rows excluded"] == len(fit.design.exclusions) > 0
    pd.testing.assert_frame_equal(s.table, fit.table(0.9))
    assert "<table" in fit._repr_html_() and "WCLS" in str(s)
    paper = fit.table(style="paper")
    assert "Estimate (95% CI)" in paper.columns and not paper.isna().any().any()
    assert repr(fit).startswith("<ExcursionResult: WCLS")
    # lincomb, effect_curve and control_fit keep conf_level
    lc = fit.lincomb({"Intercept": 1}, conf_level=0.8).iloc[0]
    row = fit.table(0.8).iloc[0]
    assert (lc["lcl"], lc["ucl"]) == pytest.approx((row["lcl"], row["ucl"]), rel=1e-12)
    cur = fit.effect_curve(pd.DataFrame({"study_day_nogap": [0.0]}), conf_level=0.8).iloc[0]
    assert cur["lcl"] == pytest.approx(row["lcl"], rel=1e-12)
    assert fit.control_fit(0.8)["ucl"].iloc[0] < fit.control_fit(0.99)["ucl"].iloc[0]


def test_netcdf_round_trip(heartsteps, tmp_path):
    from hte_mrt.errors import DataError, DesignError
    from hte_mrt.results.frequentist import ExcursionResult

    fit = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log", conf_level=0.9, lag=1)
    path = fit.to_netcdf(tmp_path / "fit.nc")
    back = ExcursionResult.from_netcdf(path)
    pd.testing.assert_series_equal(back.params, fit.params)
    pd.testing.assert_frame_equal(back.cov, fit.cov)
    pd.testing.assert_frame_equal(back.table(), fit.table())
    pd.testing.assert_frame_equal(back.control_fit(), fit.control_fit())
    assert (back.df, back.n, back.method, back.scale, back.conf_level) == (
        fit.df,
        fit.n,
        "WCLS",
        "difference",
        0.9,
    )
    assert back.names_effect == fit.names_effect and back.names_control == fit.names_control
    assert back.estimand == fit.estimand and back.small_sample
    assert str(back.summary()).splitlines()[:2] == str(fit.summary()).splitlines()[:2]
    grid = pd.DataFrame({"study_day_nogap": [0.0, 20.0]})
    with pytest.raises(DesignError, match=r"from_netcdf\(path, data="):
        back.effect_curve(grid)
    with_data = ExcursionResult.from_netcdf(path, data=heartsteps)
    pd.testing.assert_frame_equal(with_data.effect_curve(grid), fit.effect_curve(grid))
    # an EMEE fit keeps its scale; a foreign file is refused
    assert (tmp_path / "fit.json").exists()
    jt = fit.joint_test()
    jt.to_netcdf(tmp_path / "jt.nc")
    with pytest.raises(DataError, match="ExcursionResult"):
        ExcursionResult.from_netcdf(tmp_path / "jt.nc")


def test_emee_netcdf_round_trip(binary, tmp_path):
    from hte_mrt.results.frequentist import ExcursionResult

    fit = emee(binary, "~ time_var1", "~ time_var1 + time_var2", numerator=0.5)
    back = ExcursionResult.from_netcdf(fit.to_netcdf(tmp_path / "e.nc"), data=binary)
    assert back.method == "EMEE" and back.scale == "log_rr"
    pd.testing.assert_frame_equal(back.table(), fit.table())
    grid = pd.DataFrame({"time_var1": [0.5]})
    pd.testing.assert_frame_equal(back.effect_curve(grid), fit.effect_curve(grid))


def test_joint_test_table_contract(heartsteps):
    fit = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log")
    jt = fit.joint_test()
    assert (jt.df1, jt.df2) == (2, fit.df - 1)
    tab = jt.table()
    assert list(tab.columns) == ["term", "t2", "f", "df1", "df2", "p"] and len(tab) == 1
    assert tab["term"].iloc[0] == "Intercept = 0; study_day_nogap = 0"
    assert tab["p"].iloc[0] == pytest.approx(jt.p) and "Hotelling" in jt.summary().title


# The joint test against its definition of correctness rather than its formula: MRTAnalysis has
# no joint test, so the reference is the trial itself. Simulated MRTs (hte_mrt.data.simulate,
# 40 participants x 20 decisions, endogenous S, participant effects) with the effect
# beta0 + beta1 t/T tested by H0: beta0 = beta1 = 0.
JOINT_N_NULL = 400  # rejection rate's MC sd at 0.05: sqrt(0.05 * 0.95 / 400) = 0.011
JOINT_N_ALT = 100
#: beta0 = -beta1 = 0.6: power 0.92 in these 100 trials (MC sd 0.027); checked >= 0.8, more
#: than 4 MC sds below (a test with no power, rate ~0.05, fails by far)
JOINT_ALT_BETA = (0.6, -0.6, 0.0)
JOINT_MIN_POWER = 0.8


def joint_test_pvalues(beta, n_reps: int, seed: int) -> np.ndarray:
    """p-values of WCLS's Hotelling joint test in ``n_reps`` simulated trials."""
    from hte_mrt.data.simulate import MRTSimulation

    sim = MRTSimulation(n_participants=40, n_decisions=20, prob=0.5, beta=beta)
    return np.array(
        [
            wcls(d, "~ tfrac", "~ tfrac + S", numerator=0.5).joint_test().p
            for d in sim.replicates(n_reps, seed=seed)
        ]
    )


def test_joint_test_size_and_power_in_simulation():
    """Size: the rejection rate at alpha = 0.05 under H0 within 3 Monte Carlo sds (0.033) of
    0.05, on both sides (a test that never rejects fails too); 0.044 in 500 such trials.
    Power: at least 0.8 under beta0 = -beta1 = 0.6."""
    p0 = joint_test_pvalues((0.0, 0.0, 0.0), JOINT_N_NULL, seed=1)
    assert_rate(p0 < 0.05, 0.05, what="joint test size")
    p1 = joint_test_pvalues(JOINT_ALT_BETA, JOINT_N_ALT, seed=3)
    assert_power_at_least(p1 < 0.05, JOINT_MIN_POWER, what="joint test power")


def test_categorical_treatment_walking_vs_sedentary():
    fit = wcls(hs_data(categorical=True), "~ 1", "~ jbsteps30pre_log")
    assert list(fit.params.index) == ["walking:Intercept", "sedentary:Intercept"]
    assert fit.df == 37 - 4
    # Same point estimates as an unweighted least-squares fit of the centred design
    df = load_heartsteps()
    df = df[df.avail == 1]
    X = np.column_stack(
        [
            np.ones(len(df)),
            df.jbsteps30pre_log,
            (df.arm == "walking") - 0.3,
            (df.arm == "sedentary") - 0.3,
        ]
    )
    theta = np.linalg.lstsq(X, df.jbsteps30_log.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(fit.params.to_numpy(), theta[2:], rtol=1e-10)
    # Walking vs anti-sedentary contrast
    lc = fit.lincomb({"walking:Intercept": 1, "sedentary:Intercept": -1}).iloc[0]
    assert lc["estimate"] == pytest.approx(theta[2] - theta[3], rel=1e-10)


def test_lagged_effect_reports_lost_rows(heartsteps):
    fit = wcls(heartsteps, "~ 1", "~ jbsteps30pre_log", lag=1)
    ex = fit.design.exclusions
    assert len(ex) > 0 and ex["reason"].str.contains("lag 1").all()
    # every excluded row is an available decision whose next decision point is absent
    df = heartsteps.frame
    keys = set(zip(df.user, df.decision_index_nogap, strict=True))
    for u, t in zip(ex.user, ex.decision_index_nogap, strict=True):
        assert (u, t + 1) not in keys
    assert fit.design.y.size + len(ex) == int(heartsteps.available.sum())


def test_wcls_general_weights_match_direct_wls():
    """A non-constant numerator gives weights (pt/p)^A ((1-pt)/(1-p))^(1-A): check directly."""
    d = shared_csv("MRTAnalysis_data_binary.csv")
    from hte_mrt import MRTData

    m = MRTData(d, id="userid", time="time", treatment="Y", outcome="time_var1", prob="rand_prob")
    fit = wcls(m, "~ 1", "~ 1", numerator=0.5)
    a, p = d.Y.to_numpy(), d.rand_prob.to_numpy()
    w = np.where(a == 1, 0.5 / p, 0.5 / (1 - p))
    X = np.column_stack([np.ones(len(d)), a - 0.5])
    theta = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * d.time_var1.to_numpy()))
    np.testing.assert_allclose(fit.theta, theta, rtol=1e-12)
