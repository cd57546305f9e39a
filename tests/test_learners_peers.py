"""The econml peer adapter and the learner registry."""

from __future__ import annotations

import numpy as np
import pytest

from hte_mrt.errors import DesignError
from hte_mrt.estimators.learners import LEARNERS, CRTLearner, EconMLCausalForest
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
    df, data = small_trial(seed=1)
    m = EconMLCausalForest(n_estimators=200, random_state=1).fit(data)
    res = m.cate()
    # a forest on 750 rows: the ATE within 0.3 of the truth (its sampling sd is ~0.12) and the
    # CATE ranks follow the truth (0.91 at this seed; 0.6 leaves room for other seeds)
    assert abs(res.ate()["estimate"] - df["tau"].mean()) < 0.3
    assert np.corrcoef(res.estimate, df["tau"])[0, 1] > 0.6
    new, _ = small_trial(seed=9, K=4, m=5, data=False)
    new = new.assign(cl="new_" + new["cl"])
    a = m.cate(new).estimate
    b = m.cate(new.drop(columns=["cl"])).estimate
    np.testing.assert_allclose(a, b)
    again = EconMLCausalForest(n_estimators=200, random_state=1).fit(data).cate().estimate
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
    forest = EconMLCausalForest(n_estimators=8, random_state=1).fit(data)
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
