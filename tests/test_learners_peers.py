"""The econml peer adapter and the learner registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte_mrt.errors import DesignError
from hte_mrt.estimators.learners import LEARNERS, CRTLearner, EconMLCausalForest
from tests.accuracy import assert_recovers, assert_tracks
from tests.crt_helpers import small_trial


def test_registry_names_and_contract():
    assert set(LEARNERS) >= {"bamm", "bart", "bcf_pymc", "bcf_stochtree", "merf", "merf_hgb",
                             "gpboost", "linear", "econml_cf"}  # fmt: skip
    for name, cls in LEARNERS.items():
        assert issubclass(cls, CRTLearner) and cls.name == name
        m = cls()  # parameters only: no work, no fitted attributes
        assert not hasattr(m, "data_")
        assert m.clone().get_params() == m.get_params()


def test_econml_forest_recovers_heterogeneity_and_predicts_new_clusters():
    df, data = small_trial(seed=1, tau0=1.0)
    m = EconMLCausalForest(n_estimators=200, seed=1).fit(data)
    res = m.cate()
    # a forest on 750 rows of 30 clusters: the ATE (truth ~0.8, estimate 0.67) within 3
    # sampling sds (~0.15) = 0.45 of the truth, a window that excludes 0 and -truth; the CATE
    # ranks follow the truth (0.92 at this seed; 0.6 leaves room for other seeds)
    assert_recovers(res.ate()["estimate"], df["tau"].mean(), 0.45, "econml_cf ATE")
    assert_tracks(res.estimate, df["tau"], 0.6, "econml_cf CATE")
    new, _ = small_trial(seed=9, K=4, m=5, data=False)
    new = new.assign(cl="new_" + new["cl"])
    a = m.cate(new).estimate
    b = m.cate(new.drop(columns=["cl"])).estimate
    np.testing.assert_allclose(a, b)
    again = EconMLCausalForest(n_estimators=200, seed=1).fit(data).cate().estimate
    np.testing.assert_array_equal(res.estimate, again)
    with pytest.raises(DesignError, match="multiple of 4"):
        EconMLCausalForest(n_estimators=10).fit(data)


def test_result_and_contract_edge_cases():
    from hte_mrt.errors import EstimationError
    from hte_mrt.estimators.learners import LinearInteraction

    df, data = small_trial(seed=2)
    m = LinearInteraction().fit(data)
    # subgroups by a Series follows row order even when the frame's index is not 0..n-1
    new = df.iloc[100:300]
    res = m.cate(new)
    by = new["x1"] > 0
    sub = res.subgroups(by).set_index("x1")
    assert sub["n"].sum() == len(new)
    np.testing.assert_allclose(sub.loc[True, "estimate"], res.estimate[by.to_numpy()].mean())
    with pytest.raises(DesignError, match="no group"):
        res.subgroups("x1", bins=[0, 1])  # negative x1 fall outside the bins
    # no cluster column: the cluster average is undefined, not silently the individual one
    with pytest.raises(DesignError, match="cluster column"):
        m.cate(new.drop(columns=["cl"])).ate("cluster")
    # a failed refit leaves the learner unfitted, not paired with the new data
    with pytest.raises(DesignError):
        m.set_params(nonsense=1)
    forest = EconMLCausalForest(n_estimators=8, seed=1).fit(data)
    forest.set_params(n_estimators=10)
    with pytest.raises(DesignError, match="multiple of 4"):
        forest.fit(data)
    with pytest.raises(EstimationError, match="not fitted"):
        forest.cate()
    # a rank-deficient design is refused, not solved by minimum norm
    X = np.ones((10, 2))
    with pytest.raises(EstimationError, match="rank"):
        LinearInteraction()._fit(X, np.r_[np.zeros(5), np.ones(5)], np.arange(10.0),
                                 np.repeat([0, 1], 5), None)  # fmt: skip


def test_moderator_importance_matches_its_linear_expectation(monkeypatch):
    """tau = 0.5 + 0.5 x1 - 0.4 v1 (x2, x3 no moderators). The linear learner's CATE is
    tau0 + f_c(w_c) + (the rest) for each covariate c (f_c linear, or a level effect for the
    categorical x3), so over permutations E[I_c^2] = 2 var(f_c) m / (m - 1), with m the units
    permuted: rows, or the 30 equal-sized clusters for v1. With 100 permutations the Monte Carlo
    sd of I_c^2 is 0.3-0.4% of its value for the row-level covariates and 1.4% for v1 (sd over
    20 seeds): tolerances 2% and 6%, at least 4 sd. OLS does not shrink, so the
    noise covariates' fitted coefficients are not 0 and only x1 (effect 0.5 per sd) is sure to
    rank first."""
    from hte_mrt.estimators.learners import LinearInteraction

    df, data = small_trial(seed=3)
    m = LinearInteraction().fit(data)
    imp = m.moderator_importance(n_repeats=100, seed=0).set_index("covariate")
    assert imp.index[0] == "x1" and list(imp["rank"]) == [1, 2, 3, 4]
    assert imp.loc["v1", "level"] == "cluster" and imp.loc["x1", "level"] == "individual"
    p = m.n_features_
    g = dict(zip(m.feature_names_, m.coef_[p + 2 :], strict=True))
    n = len(df)
    f = {
        "x1": g["x1"] * df["x1"].to_numpy(),
        "x2": g["x2"] * df["x2"].to_numpy(),
        "x3": df["x3"].map({"a": 0.0, "b": g["x3[b]"], "c": g["x3[c]"]}).to_numpy(),
    }
    for c, fc in f.items():
        want = 2 * fc.var() * n / (n - 1)
        assert imp.loc[c, "importance"] ** 2 == pytest.approx(want, rel=0.02), c
    v = g["v1"] * df.groupby("cl")["v1"].first().to_numpy()
    K = len(v)
    assert imp.loc["v1", "importance"] ** 2 == pytest.approx(2 * v.var() * K / (K - 1), rel=0.06)
    # a cluster covariate is permuted across clusters: constant within each cluster
    seen = []
    real = m._tau
    monkeypatch.setattr(m, "_tau", lambda W: seen.append(W.copy()) or real(W))
    m.moderator_importance(columns=["v1"], n_repeats=3, seed=1)
    col = m.feature_names_.index("v1")
    codes = pd.factorize(df["cl"])[0]
    assert len(seen) == 4
    for W in seen[1:]:
        assert (pd.Series(W[:, col]).groupby(codes).nunique() == 1).all()
        assert not np.array_equal(W[:, col], seen[0][:, col])
    monkeypatch.undo()
    # seeded: the same permutations
    again = m.moderator_importance(n_repeats=100, seed=0).set_index("covariate")
    pd.testing.assert_frame_equal(again, imp)
    with pytest.raises(DesignError, match="not a covariate"):
        m.moderator_importance(columns=["y"])
    with pytest.raises(DesignError, match="n_repeats"):
        m.moderator_importance(n_repeats=0)


def test_moderator_importance_moves_a_missing_indicator_with_its_covariate():
    """Under missing="indicator" the fitted rows hold the filled x1 and x1_missing; permuting
    x1 must carry its indicator, so the fitted rows and the raw rows (NaN in x1) give the same
    importance for the same permutations."""
    from hte_mrt.data.crt import CRTData
    from hte_mrt.estimators.learners import LinearInteraction

    df, _ = small_trial(seed=3)
    rng = np.random.default_rng(0)
    miss = rng.random(len(df)) < 0.3
    df = df.assign(x1=df["x1"].mask(miss), y=df["y"] + 1.5 * df["arm"] * miss)
    data = CRTData(df, cluster="cl", arm="arm", outcome="y", individual=["x1", "x2", "x3"],
                   cluster_covariates=["v1"], missing="indicator")  # fmt: skip
    m = LinearInteraction().fit(data)
    assert "x1_missing" in data.frame.columns
    a = m.moderator_importance(seed=0)
    b = m.moderator_importance(df, seed=0)
    pd.testing.assert_frame_equal(a, b)
    # the indicator carries a 1.5 effect on 30% of rows: x1 is the leading moderator
    assert a["covariate"].iloc[0] == "x1"
