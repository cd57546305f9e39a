"""Distal (DCEE) and mediated (NDEE / NIEE) excursion effects against R MRTAnalysis 0.3.1.

References: the numbers of issue 20 (MRTAnalysis 0.3.1 on its data_distal_continuous and
data_time_varying_mediator_distal_outcome, printed to 10 significant digits: rel = 1e-7 is well
within that precision) and the vignettes' printed output (``mrt-distal-causal-effect`` and
``mrt-mediated-causal-effect-on-distal-outcome``, MRTAnalysis 0.3.1; tolerance half a unit of
the last printed digit). Reference data are read from ../shared/data (GPL; never shipped).
Every comparison with R passes ``small_sample=False`` (MRTAnalysis' plain sandwich); the
default ``"auto"`` adds the Mancl-DeRouen correction with 50 participants or fewer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt.results.distal import DistalBootstrapResult, DistalResult
from tests.accuracy import assert_agrees_with_reference, assert_matches_reference
from tests.conftest import shared_csv

#: issue 20: dcee(moderator_formula = ~1, control_formula = ~X + Z, control_reg_method = "lm")
R_DCEE = {
    "estimate": 0.4041360462,
    "se": 0.5848014138,
    "lcl": -0.7710663936,
    "ucl": 1.579338486,
    "p": 0.4927855113,
}
#: issue 20: mcee(time_varying_effect_form = ~1, control_formula_with_mediator = ~dp + M + X,
#: control_reg_method = "glm") on the full data set
R_NDEE = {
    "estimate": 0.1979866988,
    "se": 0.1018322845,
    "lcl": -0.006760831853,
    "ucl": 0.4027342294,
    "p": 0.05773949681,
}
R_NIEE = {
    "estimate": 0.04807046463,
    "se": 0.03781923478,
    "lcl": -0.02797020333,
    "ucl": 0.1241111326,
    "p": 0.2098331718,
}


def _data_distal(frame: pd.DataFrame | None = None) -> hm.MRTData:
    d = shared_csv("MRTAnalysis_data_distal_continuous.csv") if frame is None else frame
    return hm.MRTData(
        d, id="userid", time="dp", treatment="A", outcome="Y", prob="prob_A", availability="avail"
    )


def _data_mediator(frame: pd.DataFrame) -> hm.MRTData:
    return hm.MRTData(
        frame, id="id", time="dp", treatment="A", outcome="Y", prob="p_A", availability="I"
    )


@pytest.fixture(scope="module")
def distal():
    return _data_distal()


@pytest.fixture(scope="module")
def med_frame():
    return shared_csv("MRTAnalysis_data_time_varying_mediator_distal_outcome.csv")


@pytest.fixture(scope="module")
def mediator(med_frame):
    return _data_mediator(med_frame)


@pytest.fixture(scope="module")
def vignette(med_frame):
    """The mediation vignette's data: decision point 10 of id 1 and 9-10 of id 2 removed
    (unequal numbers of decision points)."""
    m = med_frame
    drop = ((m.id == 1) & (m.dp == 10)) | ((m.id == 2) & m.dp.isin([9, 10]))
    return m[~drop].reset_index(drop=True)


def _printed(got: float, printed: str, what: str) -> None:
    """``got`` agrees with a number printed as ``printed`` to half a unit of its last digit."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    tol = 0.5 * 10.0**-decimals * (1 + 1e-9)
    assert abs(got - float(printed)) <= tol, f"{what}: {got!r} vs printed {printed}"


def _row(tab: pd.DataFrame, term: str) -> pd.Series:
    return tab.set_index("term").loc[term]


# ----------------------------------------------------------------------------- R references
def test_dcee_matches_mrtanalysis(distal):
    fit = hm.dcee(distal, "~ 1", "~ X + Z", learner="lm", small_sample=False)
    row = _row(fit.table(), "Intercept")
    assert_matches_reference(row, R_DCEE, rel=1e-7)
    assert int(row["df"]) == 49 and row["effect"] == "distal"


def test_mcee_matches_mrtanalysis(mediator):
    fit = hm.mcee(mediator, "M", "~ 1", "~ dp + M + X", learner="glm", small_sample=False)
    tab = fit.table()
    assert_matches_reference(_row(tab, "direct:Intercept"), R_NDEE, rel=1e-7)
    assert_matches_reference(_row(tab, "indirect:Intercept"), R_NIEE, rel=1e-7)
    assert tab["df"].tolist() == [48, 48]
    assert tab["effect"].tolist() == ["direct", "indirect"]


def test_dcee_moderated_matches_the_vignette(distal):
    """Vignette: dcee(moderator_formula = ~Z, control_formula = ~Z + X, "lm") and
    summary(lincomb = c(1, 1)), df 48."""
    fit = hm.dcee(distal, "~ Z", "~ Z + X", small_sample=False)
    tab = fit.table()
    for term, est, lcl, ucl, se in [
        ("Intercept", "-0.0968", "-1.4528", "1.2592", "0.6744"),
        ("Z", "1.2100", "-0.9299", "3.3500", "1.0643"),
    ]:
        r = _row(tab, term)
        for key, val in (("estimate", est), ("lcl", lcl), ("ucl", ucl), ("se", se)):
            _printed(r[key], val, f"{term} {key}")
        assert r["df"] == 48
    lc = fit.lincomb([1, 1]).iloc[0]
    for key, val in (
        ("estimate", "1.113"),
        ("lcl", "-0.719"),
        ("ucl", "2.946"),
        ("se", "0.911"),
        ("t", "1.222"),
    ):
        _printed(lc[key], val, f"lincomb {key}")


def test_mcee_matches_the_vignette(vignette):
    """Vignette section 5.1 / 6: constant effects on the data with unequal T_i."""
    fit = hm.mcee(_data_mediator(vignette), "M", "~ 1", "~ dp + M + X", small_sample=False)
    d, i = _row(fit.table(), "direct:Intercept"), _row(fit.table(), "indirect:Intercept")
    for key, val in (
        ("estimate", "0.180"),
        ("lcl", "-0.021"),
        ("ucl", "0.381"),
        ("se", "0.100"),
        ("t", "1.801"),
        ("p", "0.078"),
    ):
        _printed(d[key], val, f"NDEE {key}")
    for key, val in (
        ("estimate", "0.0421"),
        ("lcl", "-0.0334"),
        ("ucl", "0.1176"),
        ("se", "0.0376"),
        ("t", "1.1200"),
        ("p", "0.27"),
    ):
        _printed(i[key], val, f"NIEE {key}")
    # $mcee_fit: alpha_se 0.09999, beta_hat 0.04206, beta_se 0.03756; varcov 9.998e-03,
    # -4.016e-05, 1.411e-03 (4 significant digits)
    _printed(d["se"], "0.09999", "alpha_se")
    _printed(i["estimate"], "0.04206", "beta_hat")
    _printed(i["se"], "0.03756", "beta_se")
    np.testing.assert_allclose(
        fit.cov_theta.ravel(), [9.998e-03, -4.016e-05, -4.016e-05, 1.411e-03], rtol=5e-4
    )
    # summary(fit1, lincomb_joint = c(1, -1))
    lc = fit.lincomb({"direct:Intercept": 1, "indirect:Intercept": -1}).iloc[0]
    for key, val in (
        ("estimate", "0.1380"),
        ("lcl", "-0.0775"),
        ("ucl", "0.3535"),
        ("se", "0.1072"),
        ("t", "1.2873"),
    ):
        _printed(lc[key], val, f"joint lincomb {key}")


def test_mcee_time_varying_matches_the_vignette(vignette):
    """Vignette 5.2 (time_varying_effect_form = ~dp, df 46) with its linear combinations; the
    same numbers from per-nuisance formulas (mcee_general, 7.1) and from user-supplied nuisance
    values (mcee_userfit_nuisance, 7.2)."""
    data = _data_mediator(vignette)
    fit = hm.mcee(data, "M", "~ dp", "~ dp + M + X", small_sample=False)
    tab = fit.table()
    want = {
        "direct:Intercept": ("0.75643", "0.17719", "1.33568", "0.28777", "2.62863"),
        "direct:dp": ("-0.10528", "-0.20272", "-0.00784", "0.04841", "-2.17487"),
        "indirect:Intercept": ("0.07360", "-0.11968", "0.26688", "0.09602", "0.76653"),
        "indirect:dp": ("-0.00576", "-0.03888", "0.02736", "0.01645", "-0.35011"),
    }
    for term, vals in want.items():
        r = _row(tab, term)
        for key, val in zip(("estimate", "lcl", "ucl", "se", "t"), vals, strict=True):
            _printed(r[key], val, f"{term} {key}")
        assert r["df"] == 46
    lc = fit.lincomb([[1, 9, 0, 0], [0, 0, 1, 9], [1, 9, -1, -9]])
    for k, (est, se) in enumerate([("-0.191", "0.194"), ("0.0218", "0.0705"), ("-0.213", "0.218")]):
        _printed(lc["estimate"].iloc[k], est, f"lincomb {k} estimate")
        _printed(lc["se"].iloc[k], se, f"lincomb {k} se")
    general = hm.mcee(
        data,
        "M",
        "~ dp",
        {"q": "~ dp + X + M", "eta": "~ dp + X", "mu": "~ dp + X + M", "nu": "~ dp + X"},
        small_sample=False,
    )
    np.testing.assert_allclose(general.theta, fit.theta, rtol=1e-10)
    np.testing.assert_allclose(general.cov_theta, fit.cov_theta, rtol=1e-10)
    # user-supplied nuisance values (positional, one per input row) reproduce the fit
    known = fit.nuisance_values.sort_index()[
        ["p1", "q1", "eta1", "eta0", "mu1", "mu0", "nu1", "nu0"]
    ]
    user = hm.mcee(data, "M", "~ dp", nuisance=known.reset_index(drop=True), small_sample=False)
    np.testing.assert_allclose(user.theta, fit.theta, rtol=1e-12)
    np.testing.assert_allclose(user.cov_theta, fit.cov_theta, rtol=1e-12)
    assert "known" in user.summary().notes[-1].lower()


def test_mcee_specific_decision_points_match_the_vignette(vignette):
    """Vignette 5.4: specific_dp_only = c(1, 2) is a 0/1 row weight."""
    frame = vignette.assign(w=vignette["dp"].isin([1, 2]).astype(float))
    fit = hm.mcee(
        _data_mediator(frame), "M", "~ 1", "~ dp + M + X", row_weights="w", small_sample=False
    )
    d, i = _row(fit.table(), "direct:Intercept"), _row(fit.table(), "indirect:Intercept")
    for key, val in (("estimate", "0.712"), ("lcl", "0.119"), ("ucl", "1.305"), ("se", "0.295")):
        _printed(d[key], val, f"NDEE {key}")
    for key, val in (("estimate", "0.0478"), ("se", "0.1244"), ("t", "0.3847")):
        _printed(i[key], val, f"NIEE {key}")


def test_dcee_gam_matches_the_vignette(distal):
    """Vignette: control_formula = ~ s(X) + Z, control_reg_method = "gam" printed the lm numbers
    (mgcv's smooth of X is linear here); our P-spline smooth with GCV finds the same to the
    printed 4 decimals. The Z estimate lies on a rounding boundary (lm: 1.2100495), so it is
    checked to one unit of the last printed digit."""
    tab = hm.dcee(distal, "~ Z", "~ s(X) + Z", learner="gam", small_sample=False).table()
    for term, est, se in [("Intercept", "-0.0968", "0.6744"), ("Z", "1.2100", "1.0643")]:
        _printed(_row(tab, term)["se"], se, f"{term} se")
        if term == "Z":
            assert abs(_row(tab, term)["estimate"] - float(est)) < 1e-4
        else:
            _printed(_row(tab, term)["estimate"], est, f"{term} estimate")


def test_mcee_gam_is_close_to_the_vignette(vignette):
    """Vignette 5.3: control_formula_with_mediator = ~ s(dp) + s(M) + s(X), "gam". MRTAnalysis
    drops only a term labelled exactly "M" from the eta / nu (and p) formulas, so s(M) stayed in
    all five; we drop every term that uses the mediator (and warn when a formula given per
    nuisance keeps it). With R's formulas spelled out, our smoother (cubic P-splines, GCV; mgcv
    uses thin-plate splines) gives nuisance fits that differ a little; the estimator is
    first-order insensitive to nuisance errors, so the estimates agree to a small fraction of
    R's SE: within 0.25 SE (observed: 0.12 at most), SEs within 10%."""
    f = "~ s(dp) + s(M) + s(X)"
    with pytest.warns(hm.HteMrtWarning, match=r"mediator 'M' is in the formula of eta, nu"):
        fit = hm.mcee(
            _data_mediator(vignette),
            "M",
            "~ dp",
            dict.fromkeys(["q", "eta", "mu", "nu"], f),
            learner="gam",
            small_sample=False,
        )
    tab = fit.table().set_index("term")
    r_gam = {
        "direct:Intercept": (0.7679, 0.2861),
        "direct:dp": (-0.1165, 0.0483),
        "indirect:Intercept": (-0.0305, 0.0954),
        "indirect:dp": (-0.0034, 0.0158),
    }
    for term, (est, se) in r_gam.items():
        assert abs(tab.loc[term, "estimate"] - est) < 0.25 * se, term
        assert abs(tab.loc[term, "se"] / se - 1) < 0.1, term
    # the one-formula call drops s(M) where the mediator must not enter
    ours = hm.mcee(_data_mediator(vignette), "M", "~ dp", f, learner="gam")
    assert ours.info["controls"] == f
    assert not np.allclose(ours.theta, fit.theta)


def test_known_nuisance_values(distal, med_frame):
    """nuisance= takes numbers (MRTAnalysis' set_to_zero is {"mu0": 0, "mu1": 0}: the IPW
    estimator, checked by hand), columns, arrays in input order and a fit's nuisance_values."""
    fit = hm.dcee(distal, "~ 1", nuisance={"mu0": 0.0, "mu1": 0})
    f = distal.frame
    a, p, av = f["A"].to_numpy(), f["prob_A"].to_numpy(), f["avail"].to_numpy()
    pa = np.where(a == 1, p, 1 - p)
    ipw = np.sum(av * (2 * a - 1) / np.where(av == 1, pa, 1.0) * f["Y"]) / len(f)
    np.testing.assert_allclose(fit.theta[0], ipw, rtol=1e-12)
    ref = hm.mcee(_data_mediator(med_frame), "M", "~ 1", "~ dp + M + X")
    again = hm.mcee(_data_mediator(med_frame), "M", "~ 1", nuisance=ref.nuisance_values)
    np.testing.assert_allclose(again.theta, ref.theta, rtol=1e-12)
    shuffled = med_frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled["eta1_col"] = 0.5
    data = _data_mediator(shuffled)
    ref = hm.mcee(data, "M", "~ 1", "~ dp + M + X", nuisance={"eta1": "eta1_col"})
    by_array = hm.mcee(data, "M", "~ 1", "~ dp + M + X", nuisance={"eta1": np.full(500, 0.5)})
    np.testing.assert_allclose(by_array.theta, ref.theta, rtol=1e-12)


def test_row_weights_follow_the_input_rows(med_frame):
    """Weights given as an array follow the input frame's rows, whatever its order."""
    shuffled = med_frame.sample(frac=1.0, random_state=2).reset_index(drop=True)
    w = np.where(shuffled["dp"] <= 3, 1.0, 0.2)
    data = _data_mediator(shuffled.assign(w=w))
    by_col = hm.mcee(data, "M", "~ 1", "~ dp + M + X", row_weights="w")
    by_arr = hm.mcee(data, "M", "~ 1", "~ dp + M + X", row_weights=w)
    np.testing.assert_allclose(by_arr.theta, by_col.theta, rtol=1e-12)


def test_dcee_constant_weights_change_nothing(distal):
    """MRTAnalysis' weighting_function = 1/T: a constant omega cancels in the estimate and
    the sandwich (its bread scales by omega, its meat by omega^2)."""
    a = hm.dcee(distal, "~ Z", "~ X + Z")
    b = hm.dcee(distal, "~ Z", "~ X + Z", row_weights=np.full(len(distal.frame), 7.0))
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-12)
    np.testing.assert_allclose(b.cov_theta, a.cov_theta, rtol=1e-12)


def test_row_order_does_not_matter(med_frame, mediator):
    shuffled = med_frame.sample(frac=1.0, random_state=3)
    a = hm.mcee(mediator, "M", "~ dp", "~ dp + M + X")
    b = hm.mcee(_data_mediator(shuffled), "M", "~ dp", "~ dp + M + X")
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-9)
    np.testing.assert_allclose(b.cov_theta, a.cov_theta, rtol=1e-8)


# ----------------------------------------------------------------------------- other learners
@pytest.mark.parametrize("learner", ["gam", "rf", "gb", "ridge"])
def test_dcee_other_learners_are_sane(distal, learner):
    """Every learner estimates the same DCEE (consistent whatever the nuisance model: the
    probabilities are known), so it lies within 2 lm standard errors of the lm estimate (two
    estimates of one quantity from the same data differ by far less than 2 SE), with an SE
    within a factor 1.5 of lm's (the nuisance model only changes efficiency)."""
    from sklearn.linear_model import Ridge

    spec = Ridge(alpha=1.0) if learner == "ridge" else learner
    controls = "~ s(X) + Z" if learner == "gam" else "~ X + Z"
    ref = _row(hm.dcee(distal, "~ 1", "~ X + Z").table(), "Intercept")
    got = _row(hm.dcee(distal, "~ 1", controls, learner=spec, seed=1).table(), "Intercept")
    assert abs(got["estimate"] - ref["estimate"]) < 2 * ref["se"]
    assert 1 / 1.5 < got["se"] / ref["se"] < 1.5


@pytest.mark.parametrize("learner", ["gam", "rf", "gb", "mixed"])
def test_mcee_other_learners_are_sane(mediator, learner):
    """As for DCEE, with 3 glm standard errors (random forests on 500 rows are noisy nuisance
    models for the cross-world nu) and SE within a factor 3."""
    from sklearn.linear_model import LogisticRegression

    controls = "~ s(dp) + s(M) + s(X)" if learner == "gam" else "~ dp + M + X"
    spec = {"q": LogisticRegression(), "mu": "gb", "nu": "rf"} if learner == "mixed" else learner
    ref = hm.mcee(mediator, "M", "~ 1", "~ dp + M + X").table().set_index("term")
    got = hm.mcee(mediator, "M", "~ 1", controls, learner=spec, seed=1).table().set_index("term")
    for term in ref.index:
        assert np.isfinite(got.loc[term, "estimate"])
        assert abs(got.loc[term, "estimate"] - ref.loc[term, "estimate"]) < 3 * ref.loc[term, "se"]
        assert 1 / 3 < got.loc[term, "se"] / ref.loc[term, "se"] < 3


def test_mcee_fitted_treatment_model(mediator, med_frame):
    """learner naming "p" fits the treatment probability (mcee_general with config_p a model):
    a logistic regression of A on the controls without the mediator, on the available rows
    (checked against scikit-learn's unpenalized fit, which converges to the same MLE to ~1e-6);
    unavailable rows get p1 = 1."""
    from sklearn.linear_model import LogisticRegression

    ref = hm.mcee(mediator, "M", "~ 1", "~ dp + M + X")
    fit = hm.mcee(mediator, "M", "~ 1", "~ dp + M + X", learner={"p": "glm"})
    assert fit.info["p"] == "fitted" and ref.info["p"] == "known"
    avail = med_frame["I"] == 1
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
    lr.fit(med_frame.loc[avail, ["dp", "X"]], med_frame.loc[avail, "A"])
    want = np.where(avail, lr.predict_proba(med_frame[["dp", "X"]])[:, 1], 1.0)
    got = fit.nuisance_values.sort_index()["p1"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert not np.allclose(fit.theta, ref.theta)


def test_cross_fitting_is_seeded(distal, mediator):
    a = hm.dcee(distal, "~ 1", "~ X + Z", learner="gb", cross_fit=5, seed=11)
    b = hm.dcee(distal, "~ 1", "~ X + Z", learner="gb", cross_fit=5, seed=11)
    c = hm.dcee(distal, "~ 1", "~ X + Z", learner="gb", cross_fit=5, seed=12)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.cov_theta, b.cov_theta)
    assert a.theta[0] != c.theta[0]
    assert a.info["cross_fit"] == 5
    r1, r2 = (hm.dcee(distal, "~ 1", "~ X + Z", learner="rf", seed=5) for _ in range(2))
    np.testing.assert_array_equal(r1.theta, r2.theta)  # the forest is seeded too
    # lm cross-fitted: the same estimand, close to the full-data fit (well within one SE)
    full = hm.dcee(distal, "~ 1", "~ X + Z")
    cf = hm.dcee(distal, "~ 1", "~ X + Z", cross_fit=10, seed=1)
    assert abs(cf.theta[0] - full.theta[0]) < 0.25 * np.sqrt(full.cov_theta[0, 0])
    m1 = hm.mcee(mediator, "M", "~ 1", "~ dp + M + X", cross_fit=5, seed=3)
    m2 = hm.mcee(mediator, "M", "~ 1", "~ dp + M + X", cross_fit=5, seed=3)
    np.testing.assert_array_equal(m1.theta, m2.theta)


def test_cross_fitted_predictions_are_out_of_fold(distal):
    """With as many folds as participants, every participant's mu is predicted by a model fitted
    without them: known values equal to those predictions reproduce the estimate."""
    n = distal.n_participants
    fit = hm.dcee(distal, "~ 1", "~ X + Z", cross_fit=n, seed=1)
    full = hm.dcee(distal, "~ 1", "~ X + Z")
    assert not np.allclose(fit.nuisance_values["mu1"], full.nuisance_values["mu1"])
    again = hm.dcee(
        distal, "~ 1", "~ X + Z", nuisance=fit.nuisance_values.sort_index().reset_index(drop=True)
    )
    np.testing.assert_allclose(again.theta, fit.theta, rtol=1e-12)


# ----------------------------------------------------------------------------- small sample
def _brute_force_cov(F, W, D, ids, small_sample):
    """Stage-2 sandwich written out per participant: the k equations stacked as one weighted
    least-squares problem with design blockdiag(F, ..., F), participant i's T_i x T_i (times k)
    hat matrix H_ii = X_i (X'WX)^-1 X_i' W_i formed directly, residuals (I - H_ii)^-1 r_i."""
    k = D.shape[1]
    X = np.kron(np.eye(k), F)  # rows: equation-major
    w = np.tile(W, k)
    y = D.T.ravel()
    g = np.tile(ids, k)
    B = X.T @ (w[:, None] * X)
    Binv = np.linalg.inv(B)
    theta = Binv @ X.T @ (w * y)
    meat = np.zeros_like(B)
    for i in np.unique(ids):
        rows = g == i
        Xi, wi, ri = X[rows], w[rows], y[rows] - X[rows] @ theta
        if small_sample:
            H = Xi @ Binv @ Xi.T * wi[None, :]
            ri = np.linalg.solve(np.eye(len(ri)) - H, ri)
        si = Xi.T @ (wi * ri)
        meat += np.outer(si, si)
    return theta, Binv @ meat @ Binv


def test_small_sample_equals_brute_force_hat_matrices(med_frame):
    """small_sample=True is the Mancl-DeRouen sandwich (nuisance fits held fixed) computed with
    each participant's hat matrix formed and inverted directly (the estimator uses the exact
    O(n p^3) push-through identity instead); small_sample=False the plain sandwich. Agreement
    to 1e-9 relative: the two are algebraically equal, only rounding differs (condition numbers
    of the T_i x T_i solves ~1e1)."""
    raw = shared_csv("MRTAnalysis_data_distal_continuous.csv")
    small = _data_distal(raw[raw["userid"].isin(raw["userid"].unique()[:15])])
    for ss in (True, False):
        fit = hm.dcee(small, "~ Z", "~ X + Z", small_sample=ss)
        f = small.frame
        nv = fit.nuisance_values.loc[f["_row"]].to_numpy()
        a, p1, av, y = (f[c].to_numpy(float) for c in ("A", "prob_A", "avail", "Y"))
        pa = np.where(a == 1, p1, 1 - p1)
        d = np.where(
            av == 1,
            (2 * a - 1) / np.where(av == 1, pa, 1) * (y - (1 - p1) * nv[:, 1] - p1 * nv[:, 0]),
            0,
        )
        F = np.column_stack([np.ones(len(f)), f["Z"].to_numpy(float)])
        W = np.full(len(f), small.n_participants / len(f))
        theta, cov = _brute_force_cov(F, W, d[:, None], f["userid"].to_numpy(), ss)
        np.testing.assert_allclose(fit.theta, theta, rtol=1e-9)
        np.testing.assert_allclose(fit.cov_theta, cov, rtol=1e-9)
        assert fit.small_sample is ss
    # mediation: two stacked equations; unequal T_i (first 12 participants, rows dropped) and
    # unequal row weights (omega = dp)
    m = med_frame[med_frame["id"] <= 12]
    m = m[~((m["id"] == 1) & (m["dp"] > 6)) & ~((m["id"] == 2) & (m["dp"] == 3))]
    data = _data_mediator(m.reset_index(drop=True))
    for ss in (True, False):
        fit = hm.mcee(data, "M", "~ dp", "~ dp + M + X", small_sample=ss, row_weights="dp")
        f = data.frame
        v = fit.nuisance_values.loc[f["_row"]]
        a, av, y = (f[c].to_numpy(float) for c in ("A", "I", "Y"))
        on = av == 1
        p1 = np.where(on, f["p_A"], 1.0)
        p0 = np.where(on, 1 - p1, 1.0)
        q1 = v["q1"].to_numpy()
        q0 = np.where(on, 1 - q1, 1.0)
        i1, i0 = ((a == 1) | ~on).astype(float), (a == 0).astype(float)
        phi11 = i1 / p1 * y - (i1 - p1) / p1 * v["eta1"].to_numpy()
        phi00 = i0 / p0 * y - (i0 - p0) / p0 * v["eta0"].to_numpy()
        mu1, nu1 = v["mu1"].to_numpy(), v["nu1"].to_numpy()
        phi10 = i1 * q0 * (y - mu1) / (p0 * q1) + i0 * (mu1 - nu1) / p0 + nu1
        D = np.column_stack([phi10 - phi00, phi11 - phi10])
        F = np.column_stack([np.ones(len(f)), f["dp"].to_numpy(float)])
        theta, cov = _brute_force_cov(F, f["dp"].to_numpy(float), D, f["id"].to_numpy(), ss)
        np.testing.assert_allclose(fit.theta, theta, rtol=1e-9)
        np.testing.assert_allclose(fit.cov_theta, cov, rtol=1e-9, atol=1e-15)


def test_small_sample_correction_vanishes_as_n_grows():
    """The correction inflates participant i's residuals by about (1 - h_i)^-1, where the
    leverages h_i sum to p over participants, so SE ratio - 1 = O(p / n): at most 5 p / n here
    (observed about 1 / n to 2 / n; 5x allows for unequal leverage). When every participant has
    the same moderator rows (``~ dp`` on complete, unweighted data: C_i = B / n), the corrected
    SE is exactly n / (n - 1) times the plain one."""
    from hte_mrt.data.simulate_distal import DistalSimulation, MediationSimulation

    excess = []
    for n in (25, 400):
        data = DistalSimulation(n_participants=n, n_decisions=10).mrt_data(3)
        corr = hm.dcee(data, "~ S", "~ S + Z", small_sample=True)
        plain = hm.dcee(data, "~ S", "~ S + Z", small_sample=False)
        np.testing.assert_array_equal(corr.theta, plain.theta)
        ratio = corr.bse / plain.bse
        assert np.all(ratio > 1) and np.all(ratio - 1 < 5 * 2 / n), (n, ratio)
        excess.append(float((ratio - 1).max()))
        auto = hm.dcee(data, "~ S", "~ S + Z")  # "auto": corrected up to 50 participants
        want = corr if n <= 50 else plain
        np.testing.assert_array_equal(auto.cov_theta, want.cov_theta)
        assert auto.small_sample is (n <= 50)
    assert excess[1] < excess[0] / 4  # 16x the participants
    med = MediationSimulation(n_participants=30, n_decisions=8).mrt_data(4)
    corr = hm.mcee(med, "M", "~ dp", "~ dp + M + X", small_sample=True)
    plain = hm.mcee(med, "M", "~ dp", "~ dp + M + X", small_sample=False)
    np.testing.assert_allclose(corr.bse / plain.bse, 30 / 29, rtol=1e-10)
    assert "Mancl-DeRouen" in str(corr.summary()) and "uncorrected" in str(plain.summary())


# ----------------------------------------------------------------------------- robust posterior
def test_bayesian_bootstrap_agrees_with_the_sandwich(distal, mediator):
    """4000 draws: the bootstrap mean's Monte Carlo error is SE / sqrt(4000) ~ 0.016 SE and the
    bootstrap SD's ~1.1%, so the 0.1 SE agreement (issue 20) and an SE ratio within 10% leave
    room for the Dirichlet weights' (n - 1) / (n + 1) variance (SE ratio ~0.98 at n = 50). The
    bootstrap reweights the plain estimating equation, so it is compared with the plain
    sandwich (small_sample=False; the corrected one is ~2% wider here)."""
    fits = (
        hm.dcee(distal, "~ 1", "~ X + Z", small_sample=False),
        hm.mcee(mediator, "M", "~ 1", "~ dp + M + X", small_sample=False),
    )
    for fit in fits:
        boot = fit.bayesian_bootstrap(n_boot=4000, seed=1, progress=False)
        assert isinstance(boot, DistalBootstrapResult)
        cc = hm.crosscheck(fit, boot)
        assert cc.reference == fit.method
        assert_agrees_with_reference(cc, cc.labels[1], k=0.1)
        ratio = cc.rows(cc.labels[1])["se"] / cc.rows(cc.reference)["se"]
        assert np.all(np.abs(ratio - 1) < 0.1), ratio
    again = fit.bayesian_bootstrap(n_boot=50, seed=2, progress=False)
    same = fit.bayesian_bootstrap(n_boot=50, seed=2, progress=False)
    np.testing.assert_array_equal(again.draws.values, same.draws.values)


# ----------------------------------------------------------------------------- results contract
def test_result_contract(mediator, tmp_path):
    fit = hm.mcee(mediator, "M", "~ dp", "~ dp + M + X", conf_level=0.9)
    tab = fit.table()
    assert tab.columns.tolist() == [
        "term",
        "effect",
        "estimate",
        "se",
        "lcl",
        "ucl",
        "t",
        "df",
        "p",
    ]
    ci = fit.conf_int(alpha=0.05)
    t95 = fit.table(0.95).set_index("term")
    np.testing.assert_allclose(ci["lcl"], t95["lcl"])
    assert ((tab["ucl"] - tab["lcl"]).to_numpy() < (t95["ucl"] - t95["lcl"]).to_numpy()).all()
    assert "MCEE" in str(fit.summary()) and repr(fit).startswith("<DistalResult")
    assert fit.table(style="paper").shape[0] == 4
    # effect curve: f(dp)'theta equals the corresponding linear combinations; total = sum
    curve = fit.effect_curve()
    assert set(curve["effect"]) == {"direct", "indirect", "total"}
    at5 = curve[curve["dp"] == 5].set_index("effect")
    lc = fit.lincomb([[1, 5, 0, 0], [0, 0, 1, 5], [1, 5, 1, 5]])
    np.testing.assert_allclose(
        at5.loc[["direct", "indirect", "total"], "estimate"], lc["estimate"], rtol=1e-12
    )
    np.testing.assert_allclose(at5.loc[["direct", "indirect", "total"], "se"], lc["se"], rtol=1e-12)
    jt = fit.joint_test()
    assert jt.df1 == 4 and jt.df2 == fit.df - 3 and 0 < jt.p < 1
    # NetCDF round trip
    path = fit.to_netcdf(tmp_path / "mcee.nc")
    back = DistalResult.from_netcdf(path)
    pd.testing.assert_frame_equal(back.table(), fit.table())
    assert fit.small_sample is True and back.small_sample is True  # "auto" at n = 50
    assert "Mancl-DeRouen" in str(back.summary())
    pd.testing.assert_frame_equal(back.effect_curve(), curve)
    with pytest.raises(hm.DesignError, match="refit"):
        back.bayesian_bootstrap(n_boot=10, progress=False)
    ds = fit.to_xarray()
    assert list(ds["effect"].values) == ["direct", "direct", "indirect", "indirect"]
    boot = fit.bayesian_bootstrap(n_boot=100, seed=1, progress=False)
    boot.to_netcdf(tmp_path / "boot.nc")
    back_boot = DistalBootstrapResult.from_netcdf(tmp_path / "boot.nc")
    pd.testing.assert_frame_equal(back_boot.table(), boot.table())
    assert "Bayesian bootstrap of MCEE" in repr(back_boot)


def test_dcee_effect_curve_needs_a_grid_for_other_moderators(distal):
    fit = hm.dcee(distal, "~ Z", "~ X + Z")
    with pytest.raises(hm.DesignError, match=r"grid="):
        fit.effect_curve()
    curve = fit.effect_curve(pd.DataFrame({"Z": [0, 1]}))
    np.testing.assert_allclose(curve["estimate"], [fit.theta[0], fit.theta.sum()], rtol=1e-12)
    by_dp = hm.dcee(distal, "~ dp", "~ X + Z").effect_curve()
    assert by_dp["dp"].tolist() == sorted(distal.frame["dp"].unique().astype(float).tolist())
