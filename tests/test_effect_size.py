"""The standardized proximal effect over time (Luers et al. 2019; MRTAnalysis 0.4).

R is not available here, so the pieces are checked against independent references: the
LOESS smoother against statsmodels' lowess without robustness iterations (Cleveland's
algorithm, which R's ``loess(surface="direct", degree=1)`` computes; 1e-10 absolute), the
per-decision-point effect and pooled sd against their textbook formulas, and the whole estimate
against the known standardized effect of a simulated trial.
"""

import numpy as np
import pandas as pd
import pytest

import hte_mrt as hm
from hte_mrt.estimators.effect_size import effect_size, loess, loess_matrix
from hte_mrt.results.effect_size import EffectSizeResult, boot_percentile


def test_loess_is_clevelands_local_linear_smoother():
    from statsmodels.nonparametric.smoothers_lowess import lowess

    rng = np.random.default_rng(0)
    for n, span in ((40, 0.25), (57, 0.3), (30, 0.5)):
        x = np.arange(1.0, n + 1)
        y = np.sin(x / 5) + rng.normal(size=n)
        ref = lowess(y, x, frac=span, it=0, return_sorted=False)
        np.testing.assert_allclose(loess(x, y, span, 1), ref, atol=1e-10)
        # the smoother matrix the bootstrap uses is the same linear map
        np.testing.assert_allclose(loess_matrix(x, span, 1) @ y, ref, atol=1e-10)
    # a local linear smoother reproduces a line exactly; a missing value is left out of the fit
    x = np.arange(1.0, 31)
    y = 2 - 0.1 * x
    y_nan = y.copy()
    y_nan[4] = np.nan
    np.testing.assert_allclose(loess(x, y_nan, 0.25, 1), y, atol=1e-12)


def test_unsmoothed_effect_and_scale_are_the_textbook_ones():
    sim = hm.MRTSimulation(n_participants=60, n_decisions=6, endogenous=False)
    data = sim.mrt_data(seed=3)
    res = effect_size(data, smooth=False, n_boot=0, progress=False)
    df = data.frame
    for k, (_, g) in enumerate(df[df.avail == 1].groupby("t")):
        y1, y0 = g.loc[g.A == 1, "y"], g.loc[g.A == 0, "y"]
        sp = np.sqrt(((len(y1) - 1) * y1.var() + (len(y0) - 1) * y0.var()) / (len(g) - 2))
        assert res.raw_effect[k] == pytest.approx(y1.mean() - y0.mean(), abs=1e-12)
        assert res.scale[k] == pytest.approx(sp, abs=1e-12)
        assert res.estimate[k] == pytest.approx((y1.mean() - y0.mean()) / sp, abs=1e-12)


def _true_d(sim: hm.MRTSimulation) -> np.ndarray:
    """d(t) of MRTSimulation(endogenous=False, sd_slope=0): beta(t) = b0 + b1 t/T (S has mean 0
    and is independent of I_t), sigma^2 = p V1 + (1 - p) V0 with
    V_a = sd_participant^2 + sd_error^2 + Var(0.5 tanh(S) + a b2 S), S ~ N(0, sd_s^2/(1-rho^2))
    (Gauss-Hermite, exact to 1e-12); the pooled variance's weights n_a/(n_0+n_1-2) -> p, 1-p."""
    b0, b1, b2 = sim.beta
    xs, ws = np.polynomial.hermite_e.hermegauss(80)
    ws = ws / ws.sum()
    s = xs * sim.sd_s / np.sqrt(1 - sim.s_ar**2)

    def var(f):
        return np.sum(ws * f**2) - np.sum(ws * f) ** 2

    base = sim.sd_participant**2 + sim.sd_error**2
    v1, v0 = base + var(0.5 * np.tanh(s) + b2 * s), base + var(0.5 * np.tanh(s))
    sigma = np.sqrt(sim.prob * v1 + (1 - sim.prob) * v0)
    t = np.arange(sim.n_decisions)
    return (b0 + b1 * t / sim.n_decisions) / sigma


def test_recovers_the_standardized_effect_of_a_simulated_trial():
    """5000 participants, 20 decision points: the estimate's SE is ~0.03 per decision point
    (sigma * sqrt(4 / (0.8 n)) / sigma) and ~0.01 for the average over t. Tolerances: 0.04 on
    the average (4 SEs) and 0.12 pointwise (4 SEs); dividing by the wrong scale (the raw effect
    itself, or the sd of all rows) would be off by > 0.08 on the average."""
    sim = hm.MRTSimulation(n_participants=5000, n_decisions=20, endogenous=False,
                           sd_participant=1.0, beta=(0.4, -0.3, 0.15))  # fmt: skip
    res = effect_size(sim.mrt_data(seed=11), n_boot=0, progress=False)
    truth = _true_d(sim)
    assert abs(res.estimate.mean() - truth.mean()) < 0.04
    assert np.max(np.abs(res.estimate - truth)) < 0.12
    assert abs(res.raw_effect.mean() - truth.mean()) > 0.08  # the standardization matters
    slope = np.polyfit(np.arange(20), res.estimate, 1)[0]
    assert slope == pytest.approx(np.polyfit(np.arange(20), truth, 1)[0], abs=0.004)


def test_bootstrap_intervals_cover_and_are_seeded(tmp_path):
    sim = hm.MRTSimulation(n_participants=40, n_decisions=20, endogenous=False)
    data = sim.mrt_data(seed=1)
    a = effect_size(data, n_boot=100, seed=5, progress=False)
    b = effect_size(data, n_boot=100, seed=5, progress=False)
    np.testing.assert_array_equal(a.boot, b.boot)
    tab = a.table()
    assert list(tab.columns) == ["t", "estimate", "se", "lcl", "ucl", "raw_effect", "scale"]
    assert (tab.lcl <= tab.ucl).all() and (tab.se > 0).all()
    # the 80% interval lies inside the 95% one
    narrow = a.table(conf_level=0.8)
    assert (narrow.lcl >= tab.lcl - 1e-12).all() and (narrow.ucl <= tab.ucl + 1e-12).all()
    # percentile intervals as R's boot.ci(type="perc"): order statistics of the replicates
    np.testing.assert_allclose(tab.lcl, boot_percentile(a.boot, 0.025))
    path = a.to_netcdf(tmp_path / "es.nc")
    back = EffectSizeResult.from_netcdf(path)
    pd.testing.assert_frame_equal(back.table(), tab)
    assert "Standardized proximal effect" in str(a.summary())
    import matplotlib.pyplot as plt

    fig = a.plot(truth=np.zeros(20))
    assert len(fig.axes[0].lines) >= 2
    plt.close(fig)


def test_controls_adjust_the_effect():
    """With a covariate the effect is the WLS coefficient of A (statsmodels' WLS as reference)."""
    import statsmodels.api as sm

    sim = hm.MRTSimulation(n_participants=80, n_decisions=4, endogenous=False)
    data = sim.mrt_data(seed=2)
    res = effect_size(data, controls="~ S", smooth=False, n_boot=0, progress=False)
    df = data.frame
    for k, (_, g) in enumerate(df[df.avail == 1].groupby("t")):
        w = np.where(g.A == 1, 1 / g.prob, 1 / (1 - g.prob))
        fit = sm.WLS(g.y, sm.add_constant(np.column_stack([g.A, g.S])), weights=w).fit()
        assert res.raw_effect[k] == pytest.approx(fit.params.iloc[1], abs=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(span=0.01), hm.DesignError, "span"),
        (dict(degree=3), hm.DesignError, "degree"),
        (dict(n_boot=-1), hm.DesignError, "n_boot"),
        (dict(conf_level=95), hm.DesignError, "conf_level"),
        (dict(controls="S"), hm.HteMrtError, "controls"),
        (dict(controls="~ nope"), hm.HteMrtError, "controls"),
    ],
)
def test_bad_arguments_are_named(kwargs, exc, match):
    data = hm.MRTSimulation(n_participants=20, n_decisions=10).mrt_data(seed=1)
    with pytest.raises(exc, match=match):
        effect_size(data, **{"n_boot": 0, "progress": False, **kwargs})


def test_a_decision_point_without_treated_rows_is_named():
    df = hm.MRTSimulation(n_participants=20, n_decisions=10).simulate(seed=1)
    df.loc[df.t == 3, "A"] = 0
    data = hm.MRTData(df, id="id", time="t", treatment="A", outcome="y", prob=0.5,
                      availability="avail")  # fmt: skip
    with pytest.raises(hm.DataError, match=r"\[3\].*'t'"):
        effect_size(data, n_boot=0, progress=False)


def test_boot_percentile_is_rs_norm_inter():
    """R's boot:::norm.inter: with R = 999 and alpha = 0.025 the rank (R + 1) alpha = 25 is an
    integer, so the bound is the 25th order statistic; with R = 1000 the rank 25.025 lies
    between the 25th and 26th, interpolated on the normal scale (by hand below); ranks outside
    1..R give the extreme order statistics."""
    from scipy.stats import norm

    x = np.arange(1.0, 1000.0)  # 999 replicates 1..999 (shuffled: order must not matter)
    rng = np.random.default_rng(1)
    assert boot_percentile(rng.permutation(x)[:, None], 0.025)[0] == 25.0
    y = np.arange(1.0, 1001.0)
    z, z25, z26 = norm.ppf(0.025), norm.ppf(25 / 1001), norm.ppf(26 / 1001)
    want = 25 + (z - z25) / (z26 - z25)
    assert boot_percentile(y[:, None], 0.025)[0] == pytest.approx(want, abs=1e-12)
    assert 25 < want < 26
    assert boot_percentile(np.arange(1.0, 11.0)[:, None], 0.025)[0] == 1.0  # rank 0.275
    assert boot_percentile(np.array([[1.0], [np.nan], [3.0]]), 0.99)[0] == 3.0
