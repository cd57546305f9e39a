"""The calibration test (repeated sample splitting) against known truth in simulation.

For each simulated trial the targets are known: the main half's individual-average ATE and
beta_2* = cov(tau, S) / var(S) over the main half's rows, with tau the true CATE and S the
learner's prediction there (0 exactly when tau is constant). The learner is the OLS reference
(fast); the simulated trials are the package's TASSH-like design (tau linear in x2, x3).

A trial whose half cannot be fitted by OLS (a cluster covariate constant within an arm of a
16-cluster half) is skipped; at most 5% are. Monte Carlo error with R = 200 trials: a rate
near 0.05 has sd 0.015 and near 0.95 the same, so "at most 0.05" is checked as
<= 0.05 + 3 sd = 0.096 and "at least 0.95" as >= 0.904; mean errors are checked within 3
Monte Carlo standard errors of 0. One split gives split inference close to its nominal level
(Mancl-DeRouen sandwich, t on K/2 - 3 df); the median over splits (Chernozhukov et al.) is
conservative by design.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte_mrt.data.crt import CRTData
from hte_mrt.data.simulate_crt import CRTSimulation
from hte_mrt.errors import DataError, DesignError, EstimationError
from hte_mrt.estimators.learners import LinearInteraction
from hte_mrt.estimators.learners.calibration import calibration_test, split_clusters
from tests.accuracy import assert_rate, assert_unbiased
from tests.crt_helpers import small_trial

R = 200
TOL_RATE = 3 * np.sqrt(0.05 * 0.95 / R)


def _study(tau: str, K: int, n_splits: int, sizes: str = "uniform") -> pd.DataFrame:
    sim = CRTSimulation(n_clusters=K, tau=tau, sizes=sizes)
    rows = []
    for r in range(R):
        data = sim.to_crt_data(sim.simulate(seed=r))
        truth = sim.true_tau(data.frame)
        try:
            c = calibration_test(data, LinearInteraction(), n_splits=n_splits, seed=r)
        except EstimationError:  # OLS on a half whose v1 is constant within an arm
            continue
        # per split: the slope's target on that split's main half
        bstar = [np.cov(truth[i], S)[0, 1] / np.var(S, ddof=1) for _, i, S in c.held_out]
        ate = [truth[i].mean() for _, i, _ in c.held_out]
        t = c.table().set_index("term")
        rows.append({
            "b2": t.loc["heterogeneity slope", "estimate"], "bstar": np.median(bstar),
            "b2_lcl": t.loc["heterogeneity slope", "lcl"],
            "b2_ucl": t.loc["heterogeneity slope", "ucl"],
            "p2": t.loc["heterogeneity slope", "p"], "ate": np.median(ate),
            "ate_lcl": t.loc["ATE", "lcl"], "ate_ucl": t.loc["ATE", "ucl"],
            "ate_hat": t.loc["ATE", "estimate"],
        })  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def homogeneous_one_split():
    return _study("homogeneous", 32, 1)


def test_no_heterogeneity_one_split_has_its_level(homogeneous_one_split):
    s = homogeneous_one_split
    assert len(s) >= 0.95 * R  # few trials lose their one split to a rank-deficient half
    err = s["b2"]  # the target is 0: tau is constant
    assert abs(err.mean()) < 3 * err.std() / np.sqrt(len(s))
    # both rates two-sided, within 3 MC sds (0.046) of nominal (0.020 and 0.959 at these
    # seeds): a test that never rejects, or an ATE interval that always covers, fails as well
    assert_rate(s["p2"] < 0.05, 0.05, what="calibration test size, one split")
    covered = (s["ate_lcl"] <= s["ate"]) & (s["ate"] <= s["ate_ucl"])
    assert_rate(covered, 0.95, what="ATE coverage, one split")
    # the ATE (truth -0.2) is unbiased: its mean error within 3 MC SEs (sd ~0.15 / sqrt(200)
    # ~ 0.01 each), a window far below |ATE|, so an estimator of 0 or +0.2 fails
    assert_unbiased(s["ate_hat"], s["ate"].mean(), n_mcse=3, what="calibration ATE")


def test_heterogeneity_slope_is_unbiased_and_covered():
    s = _study("individual", 60, 1)
    err = s["b2"] - s["bstar"]
    assert abs(err.mean()) < 3 * err.std() / np.sqrt(len(s))
    assert ((s["b2_lcl"] <= s["bstar"]) & (s["bstar"] <= s["b2_ucl"])).mean() >= 0.95 - TOL_RATE
    # the OLS CATE is noisy, so its slope is well below 1 (heterogeneity overstated)
    assert s["bstar"].mean() < 0.6


def test_unequal_cluster_sizes():
    """Highly variable sizes (5 + NegBin, CV ~0.6): still the individual-average ATE and the
    nominal level."""
    s = _study("homogeneous", 32, 1, sizes="variable")
    assert (s["p2"] < 0.05).mean() <= 0.05 + TOL_RATE
    cover = ((s["ate_lcl"] <= s["ate"]) & (s["ate"] <= s["ate_ucl"])).mean()
    assert cover >= 0.95 - TOL_RATE


def test_median_over_splits_is_conservative():
    """5 splits: the medians of 97.5% split intervals cover at least 95% (here about 100%),
    and 2 x median p rejects no more than 5% without heterogeneity; with heterogeneity the
    median slope covers the median of the splits' targets."""
    s = _study("homogeneous", 32, 5)
    assert (s["p2"] < 0.05).mean() <= 0.05
    cover = ((s["ate_lcl"] <= s["ate"]) & (s["ate"] <= s["ate_ucl"])).mean()
    assert cover >= 0.95
    h = _study("individual", 60, 5)
    assert ((h["b2_lcl"] <= h["bstar"]) & (h["bstar"] <= h["b2_ucl"])).mean() >= 0.95


class _FailsFirst(LinearInteraction):
    """Fails its first fit (as a rank-deficient half would)."""

    calls = 0

    def _fit(self, *args):
        type(self).calls += 1
        if type(self).calls == 1:
            raise EstimationError("first fit refused")
        return super()._fit(*args)


def test_constant_cate_and_failed_splits():
    _, data = small_trial(seed=3)
    # no moderators: the CATE is constant, so there is no slope (not an error)
    flat = CRTData(data.frame, cluster="cl", arm="arm", outcome="y")
    c = calibration_test(flat, LinearInteraction(), n_splits=3, seed=0)
    t = c.table().set_index("term")
    assert np.isnan(t.loc["heterogeneity slope", "estimate"])
    assert t.loc["heterogeneity slope", "p"] == 1.0 and np.isfinite(t.loc["ATE", "estimate"])
    assert "no heterogeneity detected" in str(c.summary())
    # a failed split is listed; the p rule follows n_splits, as the split intervals' level does
    c = calibration_test(data, _FailsFirst(), n_splits=2, seed=0)
    assert [f[0] for f in c.failed] == [0] and [h[0] for h in c.held_out] == [1]
    t = c.table().set_index("term")
    one = c.splits.set_index("term").loc["heterogeneity slope"]
    assert t.loc["heterogeneity slope", "p"] == pytest.approx(min(1.0, 2 * one["p"]))
    assert t.loc["heterogeneity slope", "splits"] == 1


def test_result_api_and_errors():
    df, data = small_trial(seed=3)
    c = calibration_test(data, LinearInteraction(), n_splits=4, seed=1)
    t = c.table().set_index("term")
    assert list(t.index) == ["ATE", "heterogeneity slope"] and (t["splits"] == 4).all()
    sp = c.splits[c.splits["term"] == "heterogeneity slope"]
    assert t.loc["heterogeneity slope", "estimate"] == pytest.approx(sp["estimate"].median())
    assert t.loc["heterogeneity slope", "p"] == pytest.approx(min(1, 2 * sp["p"].median()))
    # tau = 0.5 + 0.5 x1 - 0.4 v1 on 30 clusters: heterogeneity is detected
    assert t.loc["heterogeneity slope", "p"] < 0.05
    assert (
        "heterogeneity detected" in str(c.summary())
        and "CalibrationTest" in repr(c)
        and "linear" in repr(c)
    )
    again = calibration_test(data, LinearInteraction(), n_splits=4, seed=1, progress=False)
    pd.testing.assert_frame_equal(again.splits, c.splits)
    # the results contract: columns, another level from the split estimates, conf_int, Summary
    from hte_mrt._contract import Result, Summary

    assert isinstance(c, Result) and isinstance(c.summary(), Summary)
    assert list(c.table().columns[:7]) == ["term", "estimate", "se", "lcl", "ucl", "df", "p"]
    wide, narrow = c.table(conf_level=0.99), c.table(conf_level=0.5)
    assert (wide["lcl"] < t["lcl"].to_numpy()).all() and (narrow["ucl"] < t["ucl"].to_numpy()).all()
    pd.testing.assert_series_equal(wide["estimate"], c.table()["estimate"])
    ci = c.conf_int(alpha=0.01)
    np.testing.assert_allclose(ci["lcl"], wide["lcl"])
    assert "Estimate (95% CI)" in c.table(style="paper").columns
    # halves: within arm, every cluster in one half, sizes differ by at most one per arm
    half = split_clusters(data.cluster_arm, np.random.default_rng(0))
    for a in (0, 1):
        counts = np.bincount(half[data.cluster_arm == a], minlength=2)
        assert abs(counts[0] - counts[1]) <= 1
    with pytest.raises(DesignError, match="at least 4 per arm"):
        calibration_test(small_trial(seed=1, K=6, m=5)[1], LinearInteraction())
    with pytest.raises(DesignError, match="n_splits"):
        calibration_test(data, LinearInteraction(), n_splits=0)
    with pytest.raises(DataError, match="CRTData"):
        calibration_test(df, LinearInteraction())


def test_bayesian_learner_runs_through_it():
    import warnings

    from hte_mrt.errors import ConvergenceWarning
    from hte_mrt.estimators.learners import BayesianAdditiveMixedModel

    _, data = small_trial(seed=3)
    bamm = BayesianAdditiveMixedModel(draws=200, tune=200, chains=2, smooth=["x1"],
                                      seed=0)  # fmt: skip
    with warnings.catch_warnings():  # few draws: convergence warnings are expected here
        warnings.simplefilter("ignore", ConvergenceWarning)
        c = calibration_test(data, bamm, n_splits=2, seed=0)
    t = c.table().set_index("term")
    # shrunk posterior-mean CATEs are closer to calibrated than OLS: the slope sits near 1
    assert 0.3 < t.loc["heterogeneity slope", "estimate"] < 2.0
    assert t.loc["heterogeneity slope", "p"] < 0.05
