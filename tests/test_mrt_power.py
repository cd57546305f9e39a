"""Simulation-based MRT power against the analytic calculator (Liao et al. 2016)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hte_mrt.design import Curve
from hte_mrt.errors import DesignError
from hte_mrt.studies import mrt_power as mp
from hte_mrt.studies.mrt_power import heterogeneity_power, simulated_power
from tests.accuracy import assert_power_matches, assert_rate, assert_unbiased

# MRT-SS's reference design: N = 46 for 80% power (analytic power 0.8033 at N = 46)
REF = {
    "days": 42,
    "per_day": 5,
    "prob": 0.4,
    "availability": Curve.quadratic(initial=0.7, mean=0.5, turn_day=42),
    "effect": Curve.quadratic(initial=0, mean=0.1, turn_day=28, turn="max"),
}
# a constant effect at a smaller N (analytic N = 33 for 80%)
CONST = {"days": 30, "per_day": 5, "prob": 0.5, "availability": 0.7, "effect": 0.1}


@pytest.mark.parametrize(
    ("design", "n", "analytic"), [(REF, 46, 0.8033), (CONST, 33, 0.8118)], ids=["ref", "const"]
)
def test_matches_analytic_under_working_assumptions(design, n, analytic):
    res = simulated_power(n, n_reps=1000, seed=2024, **design)
    assert res.analytic_power == pytest.approx(analytic, abs=5e-5)
    assert res.mc_se <= 0.02
    # the simulated power within 3 Monte Carlo SEs (<= 0.02 each) of MRT-SS's analytic power;
    # a simulation that never rejects (power 0) or always does (1) is > 9 MC SEs away
    assert_power_matches(res.power, res.analytic_power, res.mc_se, what=str(res))
    # the Wilson score interval, by its textbook formula (Wilson 1927)
    k, z = res.n_rejected, stats.norm.ppf(0.975)
    centre = (k + z**2 / 2) / (1000 + z**2)
    half = z * math.sqrt(k * (1000 - k) / 1000 + z**2 / 4) / (1000 + z**2)
    assert (res.lcl, res.ucl) == pytest.approx((centre - half, centre + half), rel=1e-10)
    assert res.n_failed == 0
    # the estimates are unbiased for the (projected) effect coefficients
    # the replicates' mean within 4 MC SEs of each coefficient (windows of 0.0026 and 6e-5
    # for the REF design's day and day^2 terms, 0.008 for CONST's 0.1: all below the truth)
    est = res.mean_estimates()
    beta = res.replicates[[f"beta[{t}]" for t in est["term"]]]
    assert_unbiased(beta, est["true"], n_mcse=4, what="simulated_power beta")
    assert isinstance(res.table(), pd.DataFrame) and "simulated power" in str(res)


@pytest.mark.parametrize(("design", "z"), [(REF, "quadratic"), (CONST, None)], ids=["p3", "p1"])
def test_type_one_error(design, z):
    n_reps, alpha = 2000, 0.05
    res = simulated_power(46, n_reps=n_reps, seed=1, z=z, **{**design, "effect": 0.0})
    assert res.analytic_power == pytest.approx(alpha)
    # within 3 MC sds, sqrt(alpha (1 - alpha) / n_reps) = 0.0049, of alpha, on both sides
    assert_rate(res.replicates["reject"], alpha, what=f"type I error ({res})")


def test_effect_heterogeneity_lowers_power():
    """sd_slope = 1.5 x the average effect: the formula ignores the between-person variance.

    The simulation follows the formula corrected for the random slope (heterogeneity_power).
    """
    base = simulated_power(46, n_reps=1000, seed=11, **REF)
    het = simulated_power(46, n_reps=1000, seed=11, sd_slope=0.15, **REF)
    drop = het.analytic_power - het.power
    assert drop > 4 * het.mc_se, str(het)  # ~0.17, i.e. > 10 MC SE
    assert base.power - het.power > 4 * het.mc_se
    adjusted = heterogeneity_power(het.design, 46, 0.15)
    assert adjusted == pytest.approx(0.631, abs=0.005)
    assert abs(het.power - adjusted) <= 3 * het.mc_se
    assert heterogeneity_power(het.design, 46, 0.0) == pytest.approx(het.analytic_power)


def test_other_options():
    small = {"days": 14, "per_day": 5, "prob": 0.5, "availability": 0.8, "effect": 0.2}
    plain = simulated_power(20, n_reps=300, seed=3, **small)
    fb = simulated_power(20, n_reps=300, seed=3, availability_feedback=0.4, **small)
    # availability drops by 0.4 after a treated decision (P(treated) = 0.4): ~0.8 - 0.4 * 0.35
    assert plain.availability_realized == pytest.approx(0.8, abs=0.01)
    assert fb.availability_realized < 0.7
    assert fb.power < plain.power
    ar = simulated_power(20, n_reps=300, seed=3, rho=0.7, sd_cluster=0.5, cluster_size=4, **small)
    assert ar.n_failed == 0 and 0 < ar.power < 1
    # the docstring's claims: AR(1) errors cost (almost) nothing; a cluster intercept acts as a
    # larger residual sd, i.e. the formula's power with the effect / sqrt(1 + sd_c^2 (1 - 1/K))
    base = simulated_power(20, n_reps=800, seed=5, **small)
    rho = simulated_power(20, n_reps=800, seed=5, rho=0.6, **small)
    se = np.hypot(base.mc_se, rho.mc_se)
    assert abs(rho.power - base.power) < 4 * se
    cl = simulated_power(20, n_reps=800, seed=5, sd_cluster=1.0, cluster_size=4, **small)
    shrunk = {**small, "effect": 0.2 / np.sqrt(1 + 1.0 * (1 - 1 / 5))}
    expected = simulated_power(20, n_reps=800, seed=6, **shrunk).power
    assert cl.power < base.power - 4 * se
    assert abs(cl.power - expected) < 4 * np.hypot(cl.mc_se, 0.018)
    with pytest.raises(DesignError, match="rho"):
        simulated_power(20, rho=1.0, **small)
    with pytest.raises(DesignError, match="p \\+ q"):
        simulated_power(4, **small)
    with pytest.raises(DesignError, match="sd_slope"):
        simulated_power(20, sd_slope=-1, **small)


def _refit_with_wcls(res, n, days, per_day, prob, opts, seed, r):
    """Replicate r of ``simulated_power(..., seed=seed)`` as an MRTData, refitted with hm.wcls."""
    from hte_mrt import MRTData
    from hte_mrt.estimators.wcls import wcls

    d = res.design
    T = days * per_day
    Q, R = np.linalg.qr(d.z)
    spec = mp._Spec(
        n,
        d.prob,
        d.availability,
        d.effect,
        mp._control_basis(days, per_day, 3),
        Q * math.sqrt(T),
        np.linalg.inv(R) * math.sqrt(T),
        0.05,
        opts.get("rho", 0.0),
        opts.get("sd_slope", 0.0),
        opts.get("availability_feedback", 0.0),
        opts.get("sd_cluster", 0.0),
        10,
        True,
    )
    sim = mp._generate(spec, np.random.SeedSequence(seed).spawn(r + 1)[r:])
    j = np.tile(np.repeat(np.arange(float(days)), per_day), n)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), T),
            "t": np.tile(np.arange(T), n),
            "j": j,
            "j2": j**2,
            "a": sim["treatment"][0].ravel().astype(int),
            "avail": sim["available"][0].ravel().astype(int),
            "y": sim["y"][0].ravel(),
        }
    )
    data = MRTData(
        frame, id="id", time="t", treatment="a", outcome="y", prob=prob, availability="avail"
    )
    return wcls(data, moderators="~ j + j2", controls="~ j + j2", small_sample=True)


def test_batched_fit_equals_wcls():
    """One simulated replicate refitted with hte_mrt.wcls gives the same estimates, and the
    simulation's F and p are those of the user's test, ``wcls(...).joint_test()``."""
    opts = {"rho": 0.5, "sd_slope": 0.1, "availability_feedback": 0.2, "sd_cluster": 0.5}
    n = 20
    res = simulated_power(n, n_reps=2, seed=5, progress=False, **REF, **opts)
    fit = _refit_with_wcls(res, n, 42, 5, 0.4, opts, seed=5, r=1)
    jt = fit.joint_test()
    assert res.replicates["F"].iloc[1] == pytest.approx(jt.f, rel=1e-8)
    assert res.replicates["p"].iloc[1] == pytest.approx(jt.p, rel=1e-7)
    est = res.replicates[["beta[1]", "beta[day]", "beta[day^2]"]].iloc[1].to_numpy()
    np.testing.assert_allclose(est, fit.params.to_numpy(), rtol=1e-7, atol=1e-12)


def test_rejections_are_those_of_joint_test():
    """simulated_power's reject column equals ``wcls(...).joint_test().p < alpha`` trial by
    trial: a small design (N = 12, p = 3 effect terms, q = 3) where MRT-SS's calibration
    F(p, N - q - p) and joint_test's F(p, df - p + 1), df = N - p - q, differ most, at an
    effect where about half the trials reject. The replicates below include trials between the
    two critical values (checked), so the old calibration would fail this test."""
    from scipy import stats

    n, days, per_day, prob = 12, 10, 5, 0.5
    design = {"days": days, "per_day": per_day, "prob": prob, "availability": 0.8}
    design["effect"] = Curve.linear(initial=0.15, mean=0.25)
    R = 16
    res = simulated_power(n, n_reps=R, seed=11, progress=False, z="quadratic", **design)
    reps = res.replicates
    p, q = 3, 3
    between = 0
    for r in range(R):
        jt = _refit_with_wcls(res, n, days, per_day, prob, {}, seed=11, r=r).joint_test()
        assert reps["F"].iloc[r] == pytest.approx(jt.f, rel=1e-7)
        assert bool(reps["reject"].iloc[r]) == (jt.p < 0.05)
        # MRT-SS's calibration of the same T^2
        old_p = stats.f.sf(jt.t2 * (n - p - q) / (p * (n - q - 1)), p, n - p - q)
        between += (old_p < 0.05) != (jt.p < 0.05)
    assert 0 < reps["reject"].sum() < R
    assert between > 0


def test_backends_identical():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    small = {"days": 10, "per_day": 3, "prob": 0.5, "availability": 0.8, "effect": 0.2}
    kw = {"n_reps": 600, "seed": 99, "sd_slope": 0.1, "rho": 0.3}  # 3 batches of <= 256
    serial = simulated_power(20, n_jobs=1, **small, **kw)
    parallel = simulated_power(20, n_jobs=2, **small, **kw)
    with (
        LocalCluster(processes=False, n_workers=1, threads_per_worker=1) as cluster,
        Client(cluster) as client,
    ):
        viadask = simulated_power(20, client=client, **small, **kw)
    assert viadask.backend == "dask" and serial.backend == "joblib"
    for other in (parallel, viadask):
        pd.testing.assert_frame_equal(serial.replicates, other.replicates, check_exact=True)
        assert other.power == serial.power
    # the same replicates whatever n_reps: a prefix of the seed sequence
    fewer = simulated_power(20, n_jobs=1, **small, **{**kw, "n_reps": 300})
    pd.testing.assert_frame_equal(fewer.replicates, serial.replicates.iloc[:300])


def test_result_contract_and_progress(capsys):
    """Wilson interval as lcl / ucl at any conf_level; summary() is a Summary; progress bar."""
    from hte_mrt._contract import Summary

    small = {"days": 10, "per_day": 3, "prob": 0.5, "availability": 0.8, "effect": 0.2}
    res = simulated_power(20, n_reps=50, seed=4, progress=True, **small)
    assert "simulating trials" in capsys.readouterr().err
    tab = res.table()
    assert list(tab.columns[:5]) == ["n", "estimate", "se", "lcl", "ucl"]
    assert (tab.loc[0, "lcl"], tab.loc[0, "ucl"]) == pytest.approx((res.lcl, res.ucl))
    wide, narrow = res.table(0.99).iloc[0], res.table(0.8).iloc[0]
    assert wide["lcl"] < tab.loc[0, "lcl"] < narrow["lcl"] <= res.power
    assert res.conf_int(0.2).iloc[0].tolist() == pytest.approx([narrow["lcl"], narrow["ucl"]])
    assert isinstance(res.summary(), Summary) and "simulated power" in str(res.summary())
    assert "Estimate (95% CI)" in res.table(style="paper").columns
    assert len(repr(res)) < 300
    quiet = simulated_power(20, n_reps=50, seed=4, progress=False, **small)
    assert "simulating" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(quiet.replicates, res.replicates)
