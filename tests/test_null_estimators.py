"""Tests of the tests: the accuracy checks of the suite have power.

For each estimator family, the SAME check functions that the accuracy tests use (in
tests/accuracy.py or in the test module itself) are run on three stand-ins:

* the real estimator (or an oracle where the real one is too slow): the check passes;
* a null estimator (tau = 0, beta = 0: the estimator finds no effect): the check FAILS;
* a sign-flipped estimator (-tau, -beta): the check FAILS.

A check that passed the null or the flipped estimator could not catch a broken estimator.
Stand-ins transform a real result's numbers (estimates, draws, intervals); nothing here fits an
MCMC model, so each test takes a few seconds at most. Exceptions, stated where they occur: a
sample-size calculator and a joint (Hotelling) test depend on the effect only through its
square, so a sign flip is not an error there (that invariance is asserted instead).

``pytest -s tests/test_null_estimators.py`` prints the first line of each failure: which check
caught which stand-in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests import accuracy as acc

HOW = ["null", "flipped"]


def fails(check, *args, **kwargs) -> str:
    """Run an accuracy check that must fail; return (and print, for ``pytest -s``) its message."""
    with pytest.raises(AssertionError) as err:
        check(*args, **kwargs)
    msg = str(err.value).splitlines()[0] if str(err.value) else "(assertion)"
    print(f"\n  fails as it should: {msg}")
    return msg


def distort(x, how: str):
    """The null (0) or sign-flipped (-x) version of an estimate or of draws."""
    x = np.asarray(x, float)
    return np.zeros_like(x) if how == "null" else -x


def distort_row(row: pd.Series, how: str) -> pd.Series:
    """A table row of an estimator that returns 0 (or -estimate): the interval moves with the
    estimate (same width), t and estimate follow."""
    out = row.copy()
    est = float(row["estimate"])
    new = float(distort(est, how))
    out["estimate"] = new
    if "lcl" in row and "ucl" in row:
        lo, hi = float(row["lcl"]), float(row["ucl"])
        out["lcl"], out["ucl"] = (lo - est, hi - est) if how == "null" else (-hi, -lo)
    if "t" in row:
        out["t"] = float(distort(row["t"], how))
    return out


# --------------------------------------------------------------------------- WCLS
@pytest.mark.parametrize("how", HOW)
def test_wcls_reference_checks_fail_for_null_and_flipped(mimic, heartsteps, how):
    from hte_mrt import wcls

    row = wcls(mimic, "~ 1", "~ logstep_pre30min", numerator=0.5).table().iloc[0]
    acc.assert_matches_reference(row, acc.MRTANALYSIS_WCLS, rel=1e-8)  # the real one passes
    fails(acc.assert_matches_reference, distort_row(row, how), acc.MRTANALYSIS_WCLS, rel=1e-8)
    hs = wcls(heartsteps, "~ 1", "~ jbsteps30pre_log").table().iloc[0]
    acc.assert_matches_reference(hs, acc.HEARTSTEPS_PUBLISHED, abs=5e-6)
    fails(acc.assert_matches_reference, distort_row(hs, how), acc.HEARTSTEPS_PUBLISHED, abs=5e-6)
    day = wcls(heartsteps, "~ study_day_nogap", "~ jbsteps30pre_log").params
    acc.assert_matches_reference(day, acc.HEARTSTEPS_DAY_PUBLISHED, abs=5e-5)
    bad = pd.Series(distort(day, how), index=day.index)
    fails(acc.assert_matches_reference, bad, acc.HEARTSTEPS_DAY_PUBLISHED, abs=5e-5)


@pytest.fixture(scope="module")
def wcls_study_small():
    """20 replicates of the WCLS simulation study's trial (the study itself runs 1000)."""
    from hte_mrt import wcls
    from hte_mrt.data.simulate import MODERATORS
    from tests.test_wcls_simulation import STUDY

    truth = STUDY.true_beta()
    terms = list(truth)
    beta = np.array([truth[k] for k in terms])
    est, se, lcl, ucl = ([] for _ in range(4))
    for data in STUDY.replicates(20, seed=20240607):
        tab = wcls(data, MODERATORS, MODERATORS, numerator=0.4).table().set_index("term")
        tab = tab.loc[terms]
        est.append(tab["estimate"].to_numpy())
        se.append(tab["se"].to_numpy())
        lcl.append(tab["lcl"].to_numpy())
        ucl.append(tab["ucl"].to_numpy())
    return beta, *map(np.array, (est, se, lcl, ucl))


@pytest.mark.parametrize("how", HOW)
def test_wcls_simulation_check_fails_for_null_and_flipped(wcls_study_small, how):
    from tests.test_wcls_simulation import check_wcls_study

    beta, est, se, lcl, ucl = wcls_study_small
    acc.assert_unbiased(est, beta, n_mcse=3, what="WCLS (20 replicates)")  # real: unbiased
    # null: the same sampling noise around beta = 0; flipped: every estimate negated
    bad = est - beta if how == "null" else -est
    blo, bhi = (lcl - beta, ucl - beta) if how == "null" else (-ucl, -lcl)
    cover = (blo <= beta) & (beta <= bhi)
    fails(check_wcls_study, bad, se, cover, beta)


# --------------------------------------------------------------------------- EMEE
@pytest.mark.parametrize("how", HOW)
def test_emee_reference_check_fails_for_null_and_flipped(binary, how):
    from hte_mrt.estimators.emee import emee

    row = emee(binary, "~ 1", "~ time_var1 + time_var2", numerator=0.5).table().iloc[0]
    acc.assert_matches_reference(row, acc.MRTANALYSIS_EMEE, rel=1e-7)
    fails(acc.assert_matches_reference, distort_row(row, how), acc.MRTANALYSIS_EMEE, rel=1e-7)


# --------------------------------------------------------------------------- randomization test
@pytest.mark.parametrize("how", HOW)
def test_randomization_check_fails_for_null_and_flipped(monkeypatch, how):
    from hte_mrt.data.simulate import MRTSimulation
    from hte_mrt.estimators import randomization as R
    from tests.test_randomization import (
        RT_RESAMPLES,
        RT_SIM,
        RT_TRUTH,
        check_randomization_test,
    )

    data = MRTSimulation(**RT_SIM).mrt_data(7)
    res = R.randomization_test(data, "~ 1", "~ S", n_resamples=RT_RESAMPLES, seed=1, progress=False)
    check_randomization_test(res, RT_TRUTH, RT_RESAMPLES)
    real = res.table()
    bad = pd.DataFrame([distort_row(r, how) for _, r in real.iterrows()])
    if how == "null":  # t = 0: every redraw is at least as extreme
        bad["p_randomization"] = 1.0
    monkeypatch.setattr(type(res), "table", lambda self, *a, **k: bad)
    fails(check_randomization_test, res, RT_TRUTH, RT_RESAMPLES)


# --------------------------------------------------------------------------- Bayesian bootstrap
@pytest.fixture(scope="module")
def day_fits(heartsteps):
    import hte_mrt as hm

    est = hm.ExcursionEffect("~ study_day_nogap", "~ jbsteps30pre_log")
    w = est.fit(heartsteps)
    boot = est.fit(heartsteps, estimator="bayesian_bootstrap", n_boot=1000, seed=4, progress=False)
    return w, boot


@pytest.mark.parametrize("how", HOW)
def test_bootstrap_check_fails_for_null_and_flipped(day_fits, how):
    import hte_mrt as hm
    from tests.test_crosscheck import check_bootstrap_agrees_with_wcls

    w, boot = day_fits
    check_bootstrap_agrees_with_wcls(hm.crosscheck(w, boot))
    d = boot.draws
    # null: the same spread around 0; flipped: every draw negated
    vals = d.values - d.values.mean(axis=0) if how == "null" else -d.values
    bad = dataclasses.replace(boot, draws=d.copy(data=vals))
    fails(check_bootstrap_agrees_with_wcls, hm.crosscheck(w, bad))


# --------------------------------------------------------------------------- BayesMRT
@pytest.mark.parametrize("how", ["oracle", *HOW])
def test_bayesmrt_check_fails_for_null_and_flipped(heartsteps, monkeypatch, how):
    """BayesMRT's accuracy check (tests/test_bayes_model.py: the posterior mean within 1 WCLS
    SE of WCLS, here as acc.assert_agrees_with_reference) on a stand-in posterior: its fit is
    monkeypatched to return normal draws with the WCLS SE, centred at the WCLS estimate
    (oracle: passes), at 0 or at minus the estimate (fail)."""
    import hte_mrt as hm
    from hte_mrt.results.bootstrap import BootstrapResult

    w = hm.wcls(heartsteps, "~ 1", "~ jbsteps30pre_log")
    b, se = float(w.params.iloc[0]), float(w.bse.iloc[0])
    centre = {"oracle": b, "null": 0.0, "flipped": -b}[how]

    def fake_fit(self, data):
        rng = np.random.default_rng(0)
        draws = xr.DataArray(
            rng.normal(centre, se, (2000, 1)), dims=("draw", "term"), coords={"term": ["Intercept"]}
        )
        return BootstrapResult(draws=draws, method="BayesMRT")

    monkeypatch.setattr(hm.BayesMRT, "fit", fake_fit)
    post = hm.BayesMRT("~ 1", "~ jbsteps30pre_log", seed=3).fit(heartsteps)
    cc = hm.crosscheck(w, post)
    if how == "oracle":
        acc.assert_agrees_with_reference(cc, "BayesMRT", 1)
    else:
        fails(acc.assert_agrees_with_reference, cc, "BayesMRT", 1)


# --------------------------------------------------------------------------- CRT learners
@pytest.fixture(scope="module")
def point_trial():
    from tests.test_learners_point import crt, simulate

    frame, tau = simulate(0)
    return crt(frame), tau


@pytest.mark.parametrize("learner", ["linear", "gpboost"])
@pytest.mark.parametrize("how", HOW)
def test_point_learner_checks_fail_for_null_and_flipped(point_trial, learner, how):
    """LinearInteraction and GPBoost (the real fits pass test_learners_point's checks); their
    CATE replaced by 0 or by its negative fails them."""
    from hte_mrt.estimators.learners import GPBoostLearner, LinearInteraction
    from tests.test_learners_point import check_point_learner

    data, tau = point_trial
    model = LinearInteraction() if learner == "linear" else GPBoostLearner(seed=1)
    res = model.fit(data).cate(interval=False)
    check_point_learner(res, tau, learner)
    bad = dataclasses.replace(res, estimate=distort(res.estimate, how))
    fails(check_point_learner, bad, tau, f"{how} {learner}")


def _posterior_standin(df: pd.DataFrame, centre: np.ndarray, n_draws: int = 1000):
    """A CATEResult shaped like BAMM's: draws = centre + a common shift (sd 0.15, the ATE's
    posterior sd) + an x1 slope error (sd 0.05) + individual noise (sd 0.05)."""
    from hte_mrt.results.cate import CATEResult

    rng = np.random.default_rng(1)
    x1 = df["x1"].to_numpy()
    draws = (
        centre[None, :]
        + rng.normal(0, 0.15, (n_draws, 1))
        + rng.normal(0, 0.05, (n_draws, 1)) * x1[None, :]
        + rng.normal(0, 0.05, (n_draws, len(df)))
    )
    return CATEResult(
        estimate=draws.mean(0),
        draws=draws,
        frame=df,
        cluster=df["cl"].to_numpy(),
        learner="bamm",
        interval="posterior",
    )


@pytest.mark.parametrize("how", ["oracle", *HOW])
def test_bamm_checks_fail_for_null_and_flipped(how):
    """test_learners_bamm's recovery checks on a stand-in posterior around the true tau
    (oracle: passes), around 0 or around -tau (fail)."""
    from tests.crt_helpers import small_trial
    from tests.test_learners_bamm import check_bamm_recovery

    df, _ = small_trial(1, tau0=1.0)
    tau = df["tau"].to_numpy()
    centre = tau if how == "oracle" else distort(tau, how)
    res = _posterior_standin(df, centre)
    if how == "oracle":
        check_bamm_recovery(res, df["tau"])
    else:
        fails(check_bamm_recovery, res, df["tau"])


# --------------------------------------------------------------------------- design
def test_sample_size_check_fails_for_a_null_calculator():
    """MRT-SS's example (N = 46): a calculator whose effect is 0 (power = alpha at every N)
    fails, and so does one that loses half the effect. A sign-flipped effect gives the same
    answer (power depends on the noncentrality, quadratic in the effect): no failure there,
    and none expected."""
    from types import SimpleNamespace

    from hte_mrt.design import Curve, mrt_power, mrt_sample_size
    from tests.test_samplesize import REF, check_mrt_ss_example

    check_mrt_ss_example(mrt_sample_size(**REF))

    def as_result(design):
        return SimpleNamespace(
            n=46, power_at_n=mrt_power(46, **design).power,
            power_at_n_minus_1=mrt_power(45, **design).power,
        )  # fmt: skip

    fails(check_mrt_ss_example, as_result({**REF, "effect": 0.0}))
    fails(check_mrt_ss_example, mrt_sample_size(**{**REF, "effect": REF["effect"].scaled(0.5)}))
    flipped = {**REF, "effect": Curve.quadratic(initial=0, mean=-0.1, turn_day=28)}
    check_mrt_ss_example(mrt_sample_size(**flipped))


def test_simulated_power_check_fails_for_a_null_simulation():
    """test_mrt_power's check (simulated power within 3 MC SEs of MRT-SS's 0.8033 at N = 46)
    fails for a simulation whose effect is 0 (its power is alpha)."""
    from hte_mrt.studies.mrt_power import simulated_power
    from tests.test_mrt_power import REF

    null = simulated_power(46, n_reps=200, seed=1, **{**REF, "effect": 0.0})
    fails(acc.assert_power_matches, null.power, 0.8033, null.mc_se)
    # the unbiasedness check of the replicates' coefficients, against REF's true coefficients
    real = simulated_power(46, n_reps=200, seed=1, **REF)
    est = real.mean_estimates()
    cols = [f"beta[{t}]" for t in est["term"]]
    acc.assert_unbiased(real.replicates[cols], est["true"], n_mcse=4)
    reps, true = real.replicates[cols].to_numpy(), est["true"].to_numpy()
    fails(acc.assert_unbiased, reps - true, true, n_mcse=4)  # null: same noise around 0
    fails(acc.assert_unbiased, -reps, true, n_mcse=4)  # flipped


# --------------------------------------------------------------------------- joint test
def test_joint_test_checks_fail_for_tests_that_never_or_always_reject():
    """The size and power checks of test_reference's joint-test simulation: a test that never
    rejects (p = 1: what a null estimator gives) fails both; one that always rejects fails the
    size check. (Hotelling's T^2 is invariant to the sign of beta: no flipped case.)"""
    from tests.test_reference import JOINT_MIN_POWER, JOINT_N_ALT, JOINT_N_NULL

    never, always = np.ones(JOINT_N_NULL), np.zeros(JOINT_N_NULL)
    fails(acc.assert_rate, never < 0.05, 0.05)
    fails(acc.assert_rate, always < 0.05, 0.05)
    fails(acc.assert_power_at_least, np.ones(JOINT_N_ALT) < 0.05, JOINT_MIN_POWER)
    # a calibrated test passes: uniform p-values
    p = (np.arange(JOINT_N_NULL) + 0.5) / JOINT_N_NULL
    acc.assert_rate(p < 0.05, 0.05)


# --------------------------------------------------------------------------- the guard itself
def test_a_window_wider_than_the_effect_is_refused():
    """assert_recovers refuses a tolerance as wide as the truth (the old point-learner check:
    0.35 around 0.242) even for a perfect estimate: such a check cannot fail a null estimator."""
    with pytest.raises(AssertionError, match="no effect would pass"):
        acc.assert_recovers(0.242, 0.242, 0.35)
    acc.assert_recovers(0.0, 0.0, 0.35)  # a null truth has no such constraint
