"""WCLS and EMEE against MRTAnalysis 0.3.1 output and the published HeartSteps V1 analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte_mrt import wcls
from hte_mrt.data.datasets import heartsteps as hs_data
from hte_mrt.data.datasets import load_heartsteps
from hte_mrt.estimators.emee import emee
from tests.conftest import shared_csv


def test_wcls_matches_mrtanalysis_md_corrected(mimic):
    # MRTAnalysis::wcls(data_mimicHeartSteps, ..., numerator_prob = 0.5), summary()
    fit = wcls(mimic, "~ 1", "~ logstep_pre30min", numerator=0.5)
    row = fit.table().iloc[0]
    ref = {
        "estimate": 0.1574473195,
        "se": 0.06221929607,
        "lcl": 0.03100249667,
        "ucl": 0.2838921423,
        "p": 0.0161861221,
    }
    for k, v in ref.items():
        assert row[k] == pytest.approx(v, rel=1e-8), k
    assert row["df"] == 34
    assert fit.n == 37 and fit.small_sample


def test_wcls_plain_sandwich_matches_mrtanalysis(mimic):
    fit = wcls(mimic, "~ 1", "~ logstep_pre30min", numerator=0.5, small_sample=False)
    assert fit.bse.iloc[0] == pytest.approx(0.06051676393, rel=1e-8)
    assert fit.params.iloc[0] == pytest.approx(0.1574473195, rel=1e-8)


def test_emee_matches_mrtanalysis(binary):
    fit = emee(binary, "~ 1", "~ time_var1 + time_var2", numerator=0.5)
    row = fit.table().iloc[0]
    assert row["estimate"] == pytest.approx(0.3405625707, rel=1e-7)
    assert row["se"] == pytest.approx(0.05001931531, rel=1e-7)
    assert row["t"] == pytest.approx(6.808621202, rel=1e-7)
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
    # Qian et al. 2022 (Psychol Methods): 0.13120, 95% CI (-0.00576, 0.26815), SE 0.06739, p 0.0599
    row = wcls(heartsteps, "~ 1", "~ jbsteps30pre_log").table().iloc[0]
    assert row["estimate"] == pytest.approx(0.13120, abs=5e-6)
    assert row["se"] == pytest.approx(0.06739, abs=5e-6)
    assert row["lcl"] == pytest.approx(-0.00576, abs=5e-6)
    assert row["ucl"] == pytest.approx(0.26815, abs=5e-6)
    assert row["p"] == pytest.approx(0.0599, abs=5e-5)


def test_heartsteps_day_moderated(heartsteps):
    # Published: 0.5074 - 0.0185 day (moderator main effect added to the controls automatically)
    fit = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log")
    assert list(fit.names_control) == ["Intercept", "jbsteps30pre_log", "study_day_nogap"]
    assert fit.params["Intercept"] == pytest.approx(0.5074, abs=5e-5)
    assert fit.params["study_day_nogap"] == pytest.approx(-0.0185, abs=5e-5)
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
    ci80 = fit.conf_int(0.8).iloc[0]
    assert ci80["ucl"] - row["estimate"] == pytest.approx(stats.t.ppf(0.9, 34) * row["se"])


def test_joint_test_hotelling_calibration(heartsteps):
    fit = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log")
    jt = fit.joint_test()
    b, V = fit.params.to_numpy(), fit.cov.to_numpy()
    t2 = b @ np.linalg.solve(V, b)
    assert jt.t2 == pytest.approx(t2)
    assert (jt.df1, jt.df2) == (2, fit.df - 1)
    assert jt.f == pytest.approx(t2 * (fit.df - 1) / (2 * fit.df))


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
