"""Point S-learners with a cluster random intercept: MERF, mixed-effects boosting, GPBoost.

Simulated CRT: 30 clusters x 25 individuals, 15 clusters per arm, x1 ~ N(0, 1),
x2 ~ Bernoulli(0.5), cluster covariate v1 ~ Bernoulli(0.5), sigma_b^2 = 1/9 (ICC 0.1),
noise sd 1, tau = 1 + 0.5 x1 - 0.4 v1 (true sample ATE 0.742 on data seed 0).

Accuracy tolerances (tests/accuracy.py). The sampling sd of a 30-cluster trial's ATE estimate
is about 0.15 (the SE of the correctly specified linear mixed model: 0.11-0.20 on data seeds
0-9), so the ATE is checked within 3 sd = 0.45 of the truth; that window is narrower than the
truth (0.742), so a learner that returns tau = 0 (error 0.74) or -tau (error 1.48) fails
(tests/test_null_estimators.py). On data seeds 0-9 the largest |ATE error| was 0.33 (MERF),
0.30 (mixed boosting), 0.30 (GPBoost, 300 rounds). (With tau's intercept 0.5, as before, the
truth 0.242 lay inside the old +-0.35 window, and GPBoost with 100 rounds returned 0.09:
boosting that stops early shrinks the arm contrast towards 0, here by 60%.) The correlation of
estimated and true tau was at least 0.60 on those seeds, hence > 0.5; a constant CATE has no
correlation and a sign-flipped one a negative one. MERF's sigma_b^2 lay between 0.016 and 0.19
(truth 0.111; its sampling sd with 30 clusters is about 0.05), hence within 0.1 on the seed
used here; each EM pass changes MERF's log-likelihood by less than 0.6% (it is not monotone:
the forest is refitted), hence 1%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte_mrt.data.crt import CRTData
from hte_mrt.errors import DesignError
from hte_mrt.estimators.learners.mixed_trees import (
    GPBoostLearner,
    MixedEffectsHistGB,
    MixedEffectsRandomForest,
)
from tests.accuracy import (
    assert_covers,
    assert_recovers,
    assert_same_sign_and_significant,
    assert_tracks,
)

SIGMA_B2 = 1.0 / 9.0  # ICC = 0.1 with noise variance 1
TAU0 = 1.0  # tau's intercept


def simulate(seed: int, n_clusters: int = 30, size: int = 25, first_id: int = 0):
    """A CRT frame and the true tau of each row."""
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(n_clusters), size)
    arm = np.zeros(n_clusters, int)
    arm[rng.permutation(n_clusters)[: n_clusters // 2]] = 1
    v1 = rng.binomial(1, 0.5, n_clusters)
    x1 = rng.normal(size=n_clusters * size)
    x2 = rng.binomial(1, 0.5, n_clusters * size)
    tau = TAU0 + 0.5 * x1 - 0.4 * v1[cl]
    mu = 1.0 + 0.5 * x1 + 0.3 * x2 - 0.3 * v1[cl]
    b = rng.normal(0.0, np.sqrt(SIGMA_B2), n_clusters)
    y = mu + arm[cl] * tau + b[cl] + rng.normal(size=n_clusters * size)
    frame = pd.DataFrame(
        {"site": cl + first_id, "trt": arm[cl], "y": y, "x1": x1, "x2": x2, "v1": v1[cl]}
    )
    return frame, tau


def crt(frame: pd.DataFrame) -> CRTData:
    return CRTData(
        frame, cluster="site", arm="trt", outcome="y", individual=["x1", "x2"],
        cluster_covariates=["v1"],
    )  # fmt: skip


# full-size settings (accuracy) and small ones (bootstrap, reproducibility)
FULL = {
    "merf": lambda: MixedEffectsRandomForest(n_estimators=100, max_em_iter=10, seed=1),
    "merf_hgb": lambda: MixedEffectsHistGB(n_estimators=100, max_em_iter=4, seed=1),
    "gpboost": lambda: GPBoostLearner(n_estimators=300, seed=1),  # its default
}
SMALL = {
    "merf": lambda: MixedEffectsRandomForest(n_estimators=50, max_em_iter=2, seed=2),
    "merf_hgb": lambda: MixedEffectsHistGB(n_estimators=50, max_em_iter=2, seed=2),
    "gpboost": lambda: GPBoostLearner(n_estimators=300, seed=2),  # 50 rounds: ATE shrunk 85%
}
NAMES = list(FULL)
ATE_TOL = 3 * 0.15  # 3 sampling sds of a 30-cluster trial's ATE (module docstring)
CORR_MIN = 0.5


@pytest.fixture(scope="module")
def trial():
    frame, tau = simulate(0)
    return crt(frame), tau


@pytest.fixture(scope="module")
def fitted(trial):
    data, _ = trial
    return {name: make().fit(data) for name, make in FULL.items()}


@pytest.mark.parametrize("name", NAMES)
def test_ate_and_correlation(trial, fitted, name):
    _, tau = trial
    learner = fitted[name]
    assert learner.name == name
    res = learner.cate(interval=False)
    assert res.estimate.shape == tau.shape and res.draws is None
    check_point_learner(res, tau, name)


def check_point_learner(res, tau, name: str = "learner") -> None:
    """The accuracy checks of this file (see the module docstring for the tolerances)."""
    assert_recovers(res.ate()["estimate"], tau.mean(), ATE_TOL, f"{name} ATE")
    assert_tracks(res.estimate, tau, CORR_MIN, f"{name} CATE")


def test_merf_variance_components_and_trace(fitted):
    m = fitted["merf"]
    assert abs(m.sigma_b2_ - SIGMA_B2) < 0.1
    # out-of-bag residuals carry the forest's own error: sigma^2 a little above 1
    assert 0.8 < m.sigma2_ < 1.4
    assert m.cluster_effects_.shape == (30,)
    trace = m.loglik_trace_
    assert len(trace) == m.n_iter_ and 1 <= m.n_iter_ <= 10
    assert m.converged_ or m.n_iter_ == 10
    assert np.all(np.diff(trace) > -0.01 * np.abs(trace[1:])), trace
    assert trace[-1] > trace[0] - 0.01 * abs(trace[0])


@pytest.mark.parametrize("name", ["merf_hgb", "gpboost"])
def test_boosting_variance_components(fitted, name):
    m = fitted[name]
    assert 0.0 < m.sigma_b2_ < 0.4 and 0.5 < m.sigma2_ < 1.4


@pytest.mark.parametrize("name", NAMES)
def test_new_clusters_predict_with_b_zero(trial, fitted, name):
    data, _ = trial
    learner = fitted[name]
    new, _ = simulate(99, n_clusters=6, size=10, first_id=1000)  # cluster ids never seen
    est = learner.cate(new, interval=False).estimate
    assert est.shape == (60,) and np.isfinite(est).all()
    dropped = learner.cate(new.drop(columns=["site", "y", "trt"]), interval=False)
    np.testing.assert_array_equal(dropped.estimate, est)
    assert (dropped.cluster == "new").all()
    # training rows relabelled as new clusters: same CATE (b_j never enters a prediction)
    relabelled = data.frame.assign(site=data.frame["site"] + 5000)
    np.testing.assert_array_equal(
        learner.cate(relabelled, interval=False).estimate, learner.cate(interval=False).estimate
    )
    mu0 = learner.predict_outcome(new, arm=0)
    np.testing.assert_allclose(learner.predict_outcome(new, arm=1) - mu0, est, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_cluster_bootstrap(trial, name):
    data, _ = trial
    learner = SMALL[name]().fit(data)
    learner.n_boot = 20
    res = learner.cate()
    assert res.interval == "bootstrap" and res.draws.shape == (20, data.n_individuals)
    ate = learner.ate()
    # the bootstrap SE estimates the ATE's sampling sd (~0.15, module docstring); with B = 20
    # its relative Monte Carlo sd is 1 / sqrt(2 (B - 1)) = 0.16, so it lies in [0.5, 2] x 0.15
    # (3 such sds below; above, room for the small learners' extra variance). A degenerate
    # bootstrap (identical replicates, se 0) fails, and so does an interval not built from
    # the replicates: its ends are the 2.5% and 97.5% quantiles of the replicate ATEs.
    assert 0.075 < ate["se"] < 0.3, ate
    # the truth (0.742, 5 sampling sds from 0) is covered and 0 is not
    _, tau = trial
    assert_covers(ate["lcl"], ate["ucl"], tau.mean(), f"{name} bootstrap ATE interval")
    assert_same_sign_and_significant(ate["lcl"], ate["ucl"], +1, f"{name} bootstrap ATE")
    boot_ate = res.draws.mean(axis=1)
    np.testing.assert_allclose(
        [ate["lcl"], ate["ucl"]], np.quantile(boot_ate, [0.025, 0.975]), rtol=1e-10
    )
    # replicates are fitted once, then reused for new rows
    assert learner.cate(data.frame.head(7)).draws.shape == (20, 7)
    # each resample has its own seed: two joblib workers give the same replicates (to rounding)
    par = SMALL[name]().fit(data).set_params(n_boot=20, n_jobs=2)
    np.testing.assert_allclose(par.cate().draws, res.draws, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_and_outcome_consistent(trial, name):
    data, _ = trial
    a = SMALL[name]().fit(data).cate(interval=False).estimate
    b_learner = SMALL[name]().fit(data)
    np.testing.assert_array_equal(b_learner.cate(interval=False).estimate, a)
    diff = b_learner.predict_outcome(arm=1) - b_learner.predict_outcome(arm=0)
    np.testing.assert_allclose(diff, a, atol=1e-10)
    other = SMALL[name]().set_params(seed=123).fit(data).cate(interval=False).estimate
    if name == "merf":  # the boosters use no subsampling: their fits do not depend on the seed
        assert not np.array_equal(other, a)
    clone = b_learner.clone()
    assert clone.get_params() == b_learner.get_params() and not hasattr(clone, "data_")


@pytest.mark.parametrize(
    ("learner", "match"),
    [
        (MixedEffectsRandomForest(max_em_iter=0), "max_em_iter must be an integer >= 1, got 0"),
        (MixedEffectsRandomForest(max_features=2.5), "max_features"),
        (MixedEffectsRandomForest(n_estimators=10), "oob=True needs n_estimators >= 20"),
        (MixedEffectsRandomForest(tol=-1.0), "tol must be a number > 0"),
        (MixedEffectsHistGB(max_em_iter=0), "max_em_iter must be an integer >= 1"),
        (MixedEffectsHistGB(learning_rate=0), "learning_rate"),
        (GPBoostLearner(n_estimators=0), "n_estimators must be an integer >= 1"),
        (GPBoostLearner(n_boot=-1), "n_boot"),
        (GPBoostLearner(n_jobs=0), "n_jobs"),
    ],
)
def test_bad_parameters(trial, learner, match):
    data, _ = trial
    with pytest.raises(DesignError, match=match):
        learner.fit(data)


def test_resample_clusters_within_arm():
    """One cluster-bootstrap resample: whole clusters, drawn with replacement within arm (each
    arm keeps its number of clusters, also with unequal arms), each copy a new cluster code.
    Over 2,000 resamples every cluster is drawn once per resample on average: its count per
    resample is Binomial(n_arm, 1 / n_arm), variance at most 0.89, so the sd of the mean is
    0.021; tolerance 0.1."""
    from hte_mrt.estimators.learners.base import resample_clusters

    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 6, size=14)
    cluster_arm = np.r_[np.ones(5, int), np.zeros(9, int)]
    cluster = rng.permutation(np.repeat(np.arange(14), sizes))  # rows in any order
    counts = np.zeros(14)
    for _ in range(2000):
        rows, codes = resample_clusters(cluster, cluster_arm, rng)
        picked = pd.Series(cluster[rows]).groupby(codes).agg(["nunique", "first", "size"])
        assert (picked["nunique"] == 1).all()  # a new code never mixes clusters
        assert (picked["size"].to_numpy() == sizes[picked["first"]]).all()  # whole clusters
        assert np.bincount(cluster_arm[picked["first"]], minlength=2).tolist() == [9, 5]
        counts += np.bincount(picked["first"], minlength=14)
    np.testing.assert_allclose(counts / 2000, 1.0, atol=0.1)
