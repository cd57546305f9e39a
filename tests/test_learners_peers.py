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
