"""Known truth of the distal (DCEE) and mediation (NDEE / NIEE) simulators.

The analytic truth (exact moments of a linear-Gaussian system) is compared with a brute-force
potential-outcome computation that reruns the same simulation code with one treatment (or one
mediator) set by hand, with common random numbers. Tolerance: 4 Monte Carlo standard errors
(sandwich over the simulated participants) plus 1e-3 absolute (the common random numbers make
the Monte Carlo SE tiny; 1e-3 is under 1% of every effect here); a wrong truth (the path
through the future covariate left out, or availability ignored) is off by many times that,
which the last test checks.
"""

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt.data.simulate_distal import DistalSimulation, MediationSimulation

N_MC = 20000


def _close(truth: pd.DataFrame, mc: pd.DataFrame) -> None:
    diff = np.abs(truth["estimate"].to_numpy() - mc["estimate"].to_numpy())
    tol = 4 * mc["se"].to_numpy() + 1e-3
    assert np.all(diff <= tol), pd.concat([truth, mc.add_prefix("mc_")], axis=1)


@pytest.mark.parametrize("moderators", ["~ 1", "~ S"])
def test_dcee_truth_matches_brute_force_potential_outcomes(moderators):
    sim = DistalSimulation(n_decisions=12)
    _close(sim.truth(moderators), sim.monte_carlo_truth(moderators, n_participants=N_MC, seed=3))


@pytest.mark.parametrize("effect", ["~ 1", "~ dp"])
def test_mediation_truth_matches_brute_force_potential_outcomes(effect):
    sim = MediationSimulation(n_decisions=12)
    _close(sim.truth(effect), sim.monte_carlo_truth(effect, n_participants=N_MC, seed=4))


def test_brute_force_rejects_a_wrong_truth():
    """The check has power: the effect without the path through the future covariate, or
    without the availability factor, is far outside the tolerance."""
    sim = DistalSimulation(n_decisions=12)
    mc = sim.monte_carlo_truth("~ 1", n_participants=N_MC, seed=3)
    m = sim.moments()
    g0, g1 = sim.effect
    wrong_no_future = sim.availability * np.mean(g0 + g1 * m["mean_S"])
    wrong_no_avail = sim.truth("~ 1")["estimate"].iloc[0] / sim.availability
    for wrong in (wrong_no_future, wrong_no_avail):
        assert abs(wrong - mc["estimate"].iloc[0]) > 10 * (4 * mc["se"].iloc[0] + 1e-3)
    med = MediationSimulation(n_decisions=12)
    mc = med.monte_carlo_truth("~ 1", n_participants=N_MC, seed=4).set_index("effect")
    by = med.effects_by_decision()
    direct_only = med.availability * np.mean(med.direct[0] + med.direct[1] * np.arange(12) / 12)
    assert abs(direct_only - mc.loc["NDEE", "estimate"]) > 10 * (4 * mc.loc["NDEE", "se"] + 1e-3)
    assert np.all(by["nde"].diff().dropna() < 0)  # later decisions have less future to act on


def test_simulated_trials_have_the_documented_design():
    sim = DistalSimulation(n_participants=400, n_decisions=10, prob=0.4, availability=0.7)
    df = sim.simulate(seed=1)
    assert len(df) == 4000 and df.groupby("id")["Y"].nunique().eq(1).all()
    assert df.loc[df.avail == 0, "A"].eq(0).all()
    # availability and randomization rates within 4 binomial SEs
    assert abs(df.avail.mean() - 0.7) < 4 * np.sqrt(0.7 * 0.3 / 4000)
    av = df[df.avail == 1]
    assert abs(av.A.mean() - 0.4) < 4 * np.sqrt(0.4 * 0.6 / len(av))
    # S is endogenous: treatment raises the next state by s_treatment (regression of S_{t+1})
    nxt = df.groupby("id")["S"].shift(-1)
    ok = nxt.notna()
    X = np.column_stack([np.ones(ok.sum()), df.S[ok], df.A[ok], df.Z[ok]])
    coef = np.linalg.lstsq(X, nxt[ok], rcond=None)[0]
    assert abs(coef[2] - sim.s_treatment) < 0.1  # 4 SEs: sd_s / sqrt(n q p (1 - q p)) ~ 0.025
    data = sim.mrt_data(seed=1)
    assert data.n_participants == 400 and data.roles.outcome == "Y"
    med = MediationSimulation(n_participants=30, n_decisions=8).simulate(seed=2)
    assert {"M", "X", "Z", "Y", "dp"} <= set(med.columns) and med.dp.min() == 1
    assert med.groupby("id")["Y"].nunique().eq(1).all()


def test_seeded_trials_are_reproducible():
    sim = MediationSimulation(n_participants=10, n_decisions=5)
    pd.testing.assert_frame_equal(sim.simulate(seed=7), sim.simulate(seed=7))
    assert not sim.simulate(seed=7).equals(sim.simulate(seed=8))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: DistalSimulation(prob=1.5), "prob"),
        (lambda: DistalSimulation(effect=(1.0,)), "effect"),
        (lambda: DistalSimulation(n_participants=1), "n_participants"),
        (lambda: DistalSimulation().truth("~ S + Z"), "moderators.*monte_carlo_truth"),
        (lambda: MediationSimulation(sd_m=-1.0), "sd_m"),
        (lambda: MediationSimulation().truth("dp"), "effect.*formula"),
        (lambda: MediationSimulation().truth("~ nope"), "nope"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(hm.DesignError, match=match):
        call()


# ------------------------------------------ the truth is what R's estimating equations target
def _ols(X, y, rows):
    return X @ np.linalg.lstsq(X[rows], y[rows], rcond=None)[0]


def _theta_se(F, D, omega, ids, n):
    """R's stage 2 (dcee_helper / .mcee_core_rows): theta = (sum w f f')^-1 sum f D, sandwich."""
    bread = (F * omega[:, None]).T @ F / n
    theta = np.linalg.solve(bread, F.T @ D / n)
    U = np.zeros((n, F.shape[1]))
    np.add.at(U, ids, F * (D - omega * (F @ theta))[:, None])
    binv = np.linalg.inv(bread)
    return theta, np.sqrt(np.diag(binv @ (U.T @ U / n) @ binv.T / n))


def test_dcee_estimating_equation_targets_the_truth():
    """MRTAnalysis dcee() with lm nuisance, written out from R/dcee_helper.R (weights 1/T on
    every row, IPW residual I (-1)^(1-A) / p_A (Y - p0 mu1 - p1 mu0)), on one trial of 4000
    participants: within 4 sandwich SEs of DistalSimulation.truth (a truth that ignored the
    unavailable rows, i.e. divided by the availability, is > 20 SEs away)."""
    from formulaic import model_matrix

    sim = DistalSimulation(n_participants=4000, n_decisions=15)
    df = sim.simulate(seed=21)
    Y, A, avail, p1 = (df[c].to_numpy(float) for c in ("Y", "A", "avail", "prob"))
    X = np.asarray(model_matrix("~ S + Z", df), float)
    mu1, mu0 = _ols(X, Y, A == 1), _ols(X, Y, A == 0)
    pA = np.where(A == 1, p1, 1 - p1)
    omega = np.full(len(df), 1 / 15)
    D = omega * avail * np.where(A == 1, 1, -1) / pA * (Y - (1 - p1) * mu1 - p1 * mu0)
    F = np.asarray(model_matrix("~ S", df), float)
    theta, se = _theta_se(F, D, omega, df["id"].to_numpy(), 4000)
    truth = sim.truth("~ S")["estimate"].to_numpy()
    assert np.all(np.abs(theta - truth) < 4 * se), (theta, truth, se)
    assert abs(truth[0] / sim.availability - theta[0]) > 5 * se[0]


def test_mcee_estimating_equation_targets_the_truth():
    """MRTAnalysis mcee() with glm nuisance (q logistic, eta / mu / nu linear; p known), written
    out from R/mcee_helper_estimation.R, on one trial of 4000 participants: NDEE and NIEE
    coefficients of ``~ dp`` within 4 sandwich SEs of MediationSimulation.truth."""
    import statsmodels.api as sm
    from formulaic import model_matrix

    sim = MediationSimulation(n_participants=4000, n_decisions=12)
    df = sim.simulate(seed=22)
    Y, A, avail, p = (df[c].to_numpy(float) for c in ("Y", "A", "avail", "prob"))
    Xm = np.asarray(model_matrix("~ dp + M + X", df), float)
    Xn = np.asarray(model_matrix("~ dp + X", df), float)
    on = avail == 1
    p1, p0 = np.where(on, p, 1.0), np.where(on, 1 - p, 1.0)
    glm = sm.GLM(A[on], Xm[on], family=sm.families.Binomial()).fit()
    q1 = np.where(on, glm.predict(Xm), 1.0)
    q0 = np.where(on, 1 - q1, 1.0)
    d1, d0 = ((A == 1) | ~on).astype(float), (A == 0).astype(float)
    eta1, eta0 = _ols(Xn, Y, d1 > 0), _ols(Xn, Y, d0 > 0)
    mu1 = _ols(Xm, Y, d1 > 0)  # (mu0 enters only nu0, which phi10 does not use)
    nu1 = _ols(Xn, mu1, d0 > 0)
    phi11 = d1 / p1 * Y - (d1 - p1) / p1 * eta1
    phi00 = d0 / p0 * Y - (d0 - p0) / p0 * eta0
    phi10 = d1 * q0 * (Y - mu1) / (p0 * q1) + d0 * (mu1 - nu1) / p0 + nu1
    F = np.asarray(model_matrix("~ dp", df), float)
    ones, ids = np.ones(len(df)), df["id"].to_numpy()
    truth = sim.truth("~ dp").set_index("effect")
    for eff, D in (("NDEE", phi10 - phi00), ("NIEE", phi11 - phi10)):
        theta, se = _theta_se(F, D, ones, ids, 4000)
        want = truth.loc[eff, "estimate"].to_numpy()
        assert np.all(np.abs(theta - want) < 4 * se), (eff, theta, want, se)
