"""Re-randomization test: vectorized refits equal direct WCLS refits; seeded; valid schemes."""

from __future__ import annotations

import numpy as np
import pytest

from hte_mrt.data.datasets import heartsteps as hs_data
from hte_mrt.errors import DesignError
from hte_mrt.estimands.excursion import ExcursionEffect, build_design
from hte_mrt.estimators import randomization as R
from hte_mrt.estimators.wcls import fit_design
from tests.accuracy import assert_within_se


def _direct_refits(data, est, seed, n, scheme):
    """Refit WCLS one redraw at a time with the same random stream as the vectorized test."""
    design = build_design(data, est)
    rng = np.random.default_rng(seed)
    levels = R._draw(rng, design, n, scheme, R.group_starts(design.group))
    out = []
    for lev in levels:
        design.a_index = lev
        out.append(fit_design(design).table()["t"].to_numpy())
    return np.array(out)


@pytest.mark.parametrize(
    ("categorical", "moderators", "numerator"),
    [(False, "~ study_day_nogap", None), (False, "~ 1", 0.5), (True, "~ 1", None)],
)
def test_vectorized_refits_equal_direct_refits(categorical, moderators, numerator):
    data = hs_data(categorical=categorical)
    est = ExcursionEffect(moderators, "~ jbsteps30pre_log", numerator=numerator)
    res = R.randomization_test(
        data,
        moderators,
        "~ jbsteps30pre_log",
        numerator=numerator,
        n_resamples=7,
        seed=11,
        progress=False,
    )
    direct = _direct_refits(data, est, 11, 7, "redraw")
    np.testing.assert_allclose(res.t_null, direct, rtol=1e-9)


def test_seeded_and_p_value_definition(heartsteps):
    a = R.randomization_test(
        heartsteps, "~ 1", "~ jbsteps30pre_log", n_resamples=300, seed=3, progress=False
    )
    b = R.randomization_test(
        heartsteps, "~ 1", "~ jbsteps30pre_log", n_resamples=300, seed=3, progress=False
    )
    np.testing.assert_array_equal(a.t_null, b.t_null)
    tab = a.table().iloc[0]
    exceed = np.sum(np.abs(a.t_null[:, 0]) >= abs(tab["t"]))
    assert tab["p_randomization"] == pytest.approx((1 + exceed) / 301)
    # redraws follow the design: mean |t| under re-randomization is O(1), centred near 0
    assert abs(a.t_null.mean()) < 0.2 and 0.7 < a.t_null.std() < 1.3


def test_permutation_keeps_each_participants_treatment_count(heartsteps):
    design = build_design(heartsteps, ExcursionEffect("~ 1", "~ jbsteps30pre_log"))
    starts = R.group_starts(design.group)
    lev = R._draw(np.random.default_rng(0), design, 4, "permute", starts)
    for g in range(design.n_groups):
        m = design.group == g
        assert np.all(lev[:, m].sum(axis=1) == design.a_index[m].sum())
    assert not np.array_equal(lev[0], design.a_index)


def test_redraw_frequencies_match_stated_probabilities():
    data = hs_data(categorical=True)
    design = build_design(data, ExcursionEffect("~ 1", "~ 1"))
    lev = R._draw(np.random.default_rng(1), design, 200, "redraw", R.group_starts(design.group))
    freq = np.bincount(lev.ravel(), minlength=3) / lev.size
    se = np.sqrt(0.3 * 0.7 / lev.size)
    np.testing.assert_allclose(freq, [0.4, 0.3, 0.3], atol=4 * se)


def test_bad_arguments(heartsteps):
    with pytest.raises(DesignError, match="scheme"):
        R.randomization_test(heartsteps, n_resamples=5, scheme="shuffle", progress=False)
    with pytest.raises(DesignError, match="n_resamples"):
        R.randomization_test(heartsteps, n_resamples=0, progress=False)


def test_result_contract_and_estimand(heartsteps, tmp_path):
    from hte_mrt._contract import Result, Summary

    est = ExcursionEffect("~ 1", "~ jbsteps30pre_log")
    res = R.randomization_test(
        heartsteps, estimand=est, n_resamples=50, seed=2, conf_level=0.9, progress=False
    )
    assert isinstance(res, Result) and isinstance(res.summary(), Summary)
    tab = res.table()
    assert list(tab.columns) == [
        *["term", "estimate", "se", "lcl", "ucl", "t", "df", "p"],
        *["p_randomization", "share_significant"],
    ]
    # the observed columns are the WCLS fit's at the requested level
    w = R.fit_design(build_design(heartsteps, est), conf_level=0.9).table()
    np.testing.assert_allclose(tab[w.columns[1:]].to_numpy(float), w[w.columns[1:]].to_numpy(float))
    assert res.conf_int(0.05)["lcl"].iloc[0] < tab["lcl"].iloc[0]  # 95% is wider than 90%
    assert "Re-randomization" in str(res.summary()) and "<table" in res._repr_html_()
    ds = res.to_xarray()
    assert ds["t_null"].shape == (50, 1)
    res.to_netcdf(tmp_path / "rt.nc")


# ------------------------------------------------------------------ accuracy in simulation
#: a simulated MRT (30 participants x 40 decisions) with a marginal effect of 0.5: the WCLS SE
#: is ~0.075, so the effect is ~7 SEs from 0
RT_SIM = {"n_participants": 30, "n_decisions": 40, "beta": (0.5, 0.0, 0.0)}
RT_TRUTH = {"Intercept": 0.5}
RT_RESAMPLES = 199


def check_randomization_test(res, truth: dict, n_resamples: int) -> None:
    """The observed estimate within 3 SEs (~0.22, below the truth 0.5) of the true effect, and
    the re-randomization p-value at its floor: an effect ~7 SEs from 0 lies beyond every
    redraw's |t| (redraw t statistics are ~N(0, 1): P(|t*| > 7) ~ 1e-12), so p = 1 / (R + 1);
    at most one exceedance is allowed, p <= 2 / (R + 1) = 0.01."""
    tab = res.table().set_index("term")
    for term, beta in truth.items():
        row = tab.loc[term]
        assert_within_se(row["estimate"], beta, row["se"], 3, f"randomization test {term}")
        assert row["p_randomization"] <= 2 / (n_resamples + 1), row


def test_randomization_test_detects_a_simulated_effect():
    from hte_mrt.data.simulate import MRTSimulation

    data = MRTSimulation(**RT_SIM).mrt_data(7)
    res = R.randomization_test(data, "~ 1", "~ S", n_resamples=RT_RESAMPLES, seed=1, progress=False)
    check_randomization_test(res, RT_TRUTH, RT_RESAMPLES)
