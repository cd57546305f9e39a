"""Sample size and power for MRTs (hte_mrt.design).

References reproduced:
* MRT-SS / MRTSampleSize ``calculateSampleSize`` example (Liao et al. 2016): N = 46;
* MRTSampleSizeBinary's testthat values for ``mrt_binary_ss`` (Cohn, Qian & Murphy 2023);
* the binary power checked against a Monte Carlo simulation of the trial (EMEE2 + sandwich).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hte_mrt.design import (
    Curve,
    DesignWarning,
    PowerNotReachableError,
    binary_power,
    binary_sample_size,
    continuous_design,
    minimum_detectable_effect,
    mrt_power,
    mrt_sample_size,
    plot_power_curve,
    power_table,
)
from hte_mrt.errors import DesignError
from tests.accuracy import MRT_SS_EXAMPLE, assert_matches_reference

REF = dict(
    days=42,
    per_day=5,
    prob=0.4,
    availability=Curve.quadratic(initial=0.7, mean=0.5, turn_day=42),
    effect=Curve.quadratic(initial=0, mean=0.1, turn_day=28),
    q=3,
)


# ------------------------------------------------------------------ continuous: MRT-SS reference
def test_reference_mrt_ss_example():
    # MRT-SS prints the powers to 6 decimals: abs = 1e-6; N exactly
    res = mrt_sample_size(**REF, alpha=0.05, power=0.8)
    check_mrt_ss_example(res)
    assert (res.p, res.q) == (3, 3)
    assert res.note is None
    assert mrt_power(46, **REF).power == pytest.approx(0.803257, abs=1e-6)
    assert mrt_power(45, **REF).power == pytest.approx(0.792521, abs=1e-6)
    s = res.table()
    assert isinstance(s, pd.DataFrame) and s.loc[0, "n"] == 46
    assert "N = 46" in str(res) and "0.803257" in str(res.summary())


def check_mrt_ss_example(res) -> None:
    """The accuracy check against MRT-SS's example (also run on null calculators)."""
    assert res.n == MRT_SS_EXAMPLE["n"], f"N = {res.n}, MRT-SS: {MRT_SS_EXAMPLE['n']}"
    got = {"power_at_n": res.power_at_n, "power_at_n_minus_1": res.power_at_n_minus_1}
    ref = {k: MRT_SS_EXAMPLE[k] for k in got}
    assert_matches_reference(got, ref, abs=1e-6)


def test_power_table_monotone():
    tab = power_table(range(20, 101), **REF)
    assert list(tab["n"]) == list(range(20, 101))
    assert np.all(np.diff(tab["power"]) > 0)
    assert tab.set_index("n").loc[46, "power"] == pytest.approx(0.803257, abs=1e-6)
    assert set(tab.columns) >= {"n", "power", "noncentrality", "df1", "df2", "critical_value"}


def test_probability_forms_agree():
    """A constant probability given as a number, per day or per decision point is the same."""
    base = continuous_design(**REF).delta
    per_day = continuous_design(**{**REF, "prob": np.full(42, 0.4)}).delta
    per_dp = continuous_design(**{**REF, "prob": np.full(210, 0.4)}).delta
    zmat = continuous_design(
        **{**REF, "z": np.column_stack([np.ones(42), np.arange(42), np.arange(42) ** 2])}
    ).delta
    assert per_day == pytest.approx(base, rel=1e-12)
    assert per_dp == pytest.approx(base, rel=1e-12)
    assert zmat == pytest.approx(base, rel=1e-10)


# ------------------------------------------------------------------ curves and hand computations
def test_curve_shapes():
    lin = Curve.linear(initial=0.1, mean=0.2).daily(3)
    np.testing.assert_allclose(lin, [0.1, 0.2, 0.3])  # b0 + 2 (m - b0) j / (D - 1)
    quad = Curve.quadratic(initial=0, mean=0.1, turn_day=28).daily(42)
    assert quad[0] == pytest.approx(0.0, abs=1e-15)
    assert quad.mean() == pytest.approx(0.1, rel=1e-12)
    assert int(np.argmax(quad)) == 27  # maximum on day 28
    av = Curve.quadratic(initial=0.7, mean=0.5, turn_day=42).daily(42)
    assert av[0] == pytest.approx(0.7) and av.mean() == pytest.approx(0.5)
    assert int(np.argmin(av)) == 41  # availability: the turning point may be a minimum
    np.testing.assert_allclose(Curve.constant(0.3).daily(4), 0.3)
    assert Curve.quadratic(initial=0, mean=0.1, turn_day=28, turn="max").daily(42)[27] > 0.1


def test_constant_shape_hand_computed():
    """Z = 1, constant tau, p, beta: delta = beta^2 T tau p (1 - p)."""
    kw = dict(days=10, per_day=5, prob=0.5, availability=1.0, effect=Curve.constant(0.5), q=3)
    d = continuous_design(**kw)
    assert d.p == 1
    assert d.delta == pytest.approx(0.5**2 * 50 * 1.0 * 0.25, rel=1e-12)
    n = 7
    df2 = n - 1 - 3
    hand = stats.ncf.sf(stats.f.ppf(0.95, 1, df2), 1, df2, n * 3.125)
    assert mrt_power(n, **kw).power == pytest.approx(hand, abs=1e-12)
    # below 10: exact N, a note and a DesignWarning (MRT-SS reports only "<= 10")
    with pytest.warns(DesignWarning, match=r"N = 7 is below 10.*unreliable.*simulat"):
        res = mrt_sample_size(**kw)
    assert res.n == 7 and "below 10" in res.note
    assert res.power_at_n >= 0.8 > res.power_at_n_minus_1


def _liao_sample_size(days, per_day, prob, tau, beta, p, q=3, power=0.8, alpha=0.05):
    """Independent reimplementation of Liao et al. (2016), eq. for the sample size, as MRT-SS
    evaluates it: Z_t = (1, j, ..., j^{p-1}) in the 0-based day j, M = sum_t tau_t p_t (1 - p_t)
    Z_t Z_t', d = (sum_t tau_t Z_t Z_t')^{-1} sum_t tau_t Z_t beta_t, lambda = N d' M d,
    power(N) = 1 - F_{p, N-q-p; lambda}(F^{-1}_{p, N-q-p}(1 - alpha)), N = the smallest N >= 10
    (MRT-SS starts its search at 10) with power(N) >= the target."""
    j = np.repeat(np.arange(days, dtype=float), per_day)
    Z = np.column_stack([j**k for k in range(p)])
    M = (Z * (tau * prob * (1 - prob))[:, None]).T @ Z
    d = np.linalg.solve((Z * tau[:, None]).T @ Z, (Z * tau[:, None]).T @ beta)
    for n in range(10, 10_000):
        df2 = n - q - p
        if stats.ncf.sf(stats.f.ppf(1 - alpha, p, df2), p, df2, n * d @ M @ d) >= power:
            return n
    raise AssertionError("not reached")


def _quadratic_by_hand(days, initial, mean, turn_day):
    """initial + b j + c j^2 with b = -2 (turn_day - 1) c and the average over days = mean."""
    j = np.arange(days, dtype=float)
    c = (mean - initial) / np.mean(j**2 - 2 * (turn_day - 1) * j)
    return initial - 2 * (turn_day - 1) * c * j + c * j**2


def test_mrt_ss_second_example():
    """MRTSampleSize's second documented example (man/calculateSampleSize.Rd): 28 days x 5,
    probability 0.7, 0.6, 0.5, 0.4 for 35 decision points each, quadratic effect (0 on day 1,
    mean 0.1, maximum on day 28) and quadratic availability (0.7 on day 1, mean 0.5) whose
    turning day, 42, lies after the trial's last day. The package documents the call but not
    its N, so the reference is the independent reimplementation above (Liao et al. 2016's
    formula with MRT-SS's raw polynomial basis and its search from N = 10): both give 66."""
    prob = np.repeat([0.7, 0.6, 0.5, 0.4], 35)
    tau = Curve.quadratic(initial=0.7, mean=0.5, turn_day=42)
    effect = Curve.quadratic(initial=0, mean=0.1, turn_day=28)
    res = mrt_sample_size(days=28, per_day=5, prob=prob, availability=tau, effect=effect)
    tau_t = np.repeat(_quadratic_by_hand(28, 0.7, 0.5, 42), 5)
    beta_t = np.repeat(_quadratic_by_hand(28, 0.0, 0.1, 28), 5)
    np.testing.assert_allclose(res.design.availability, tau_t, rtol=1e-12)
    np.testing.assert_allclose(res.design.effect, beta_t, atol=1e-14)
    assert np.all(np.diff(tau_t[::5]) < 0)  # monotone over the trial: vertex after day 28
    assert res.n == _liao_sample_size(28, 5, prob, tau_t, beta_t, p=3) == 66
    assert res.power_at_n >= 0.8 > res.power_at_n_minus_1
    assert res.note is None


def test_linear_shape_hand_computed():
    """3 days x 2, effect 0.1, 0.2, 0.3 by day: d = (0.1, 0.1), M = tau p(1-p) K [[3,3],[3,5]]."""
    kw = dict(
        days=3, per_day=2, prob=0.4, availability=0.5, effect=Curve.linear(initial=0.1, mean=0.2)
    )
    d = continuous_design(**kw)
    assert d.p == 2
    np.testing.assert_allclose(d.d, [0.1, 0.1], atol=1e-14)
    w = 0.5 * 0.4 * 0.6 * 2
    np.testing.assert_allclose(d.M, w * np.array([[3.0, 3.0], [3.0, 5.0]]), rtol=1e-12)
    assert d.delta == pytest.approx(w * 0.14, rel=1e-12)
    # linear availability: from initial to 2 mean - initial, checked per decision point
    d2 = continuous_design(**{**kw, "availability": Curve.linear(initial=0.8, mean=0.6)})
    np.testing.assert_allclose(d2.availability, np.repeat([0.8, 0.6, 0.4], 2))


def test_average_effect_only():
    """z = 'constant' tests the (availability-weighted) average effect: p = 1, more power."""
    quad = mrt_power(46, **REF)
    avg = mrt_power(46, **{**REF, "z": "constant"})
    ones = mrt_power(46, **{**REF, "z": np.ones(210)})
    assert avg.p == 1 and quad.p == 3
    assert avg.power == pytest.approx(ones.power, abs=1e-12)
    # one numerator df instead of three: a larger power at the same N, despite a smaller
    # noncentrality (the projection loses the curvature of the effect)
    assert avg.power > quad.power
    assert avg.noncentrality < quad.noncentrality
    tau = continuous_design(**REF).availability
    beta = continuous_design(**REF).effect
    d = continuous_design(**{**REF, "z": "constant"}).d
    assert d[0] == pytest.approx(np.sum(tau * beta) / np.sum(tau), rel=1e-12)
    res = mrt_sample_size(**{**REF, "z": "constant"})
    assert res.n < 46 and "span of z" in res.note


def test_mde_inverts_power():
    m = minimum_detectable_effect(60, **REF, power=0.8)
    assert m.power == pytest.approx(0.8, abs=1e-6)
    check = mrt_power(60, **{**REF, "effect": REF["effect"].scaled(m.scale)})
    assert check.power == pytest.approx(0.8, abs=1e-6)
    assert m.mde == pytest.approx(0.1 * m.scale, rel=1e-12) and m.mde < 0.1
    # at N = 46 the reference effect gives power 0.803257, so its MDE at that power is 0.1
    m46 = minimum_detectable_effect(46, **REF, power=0.8032570095444)
    assert m46.mde == pytest.approx(0.1, rel=1e-6)
    assert isinstance(m.table(), pd.DataFrame) and m.table().loc[0, "mde"] == m.mde


def test_plot_power_curve():
    import matplotlib.pyplot as plt

    res = mrt_sample_size(**REF)
    fig = plot_power_curve(res)
    assert fig.axes and fig.axes[0].get_xlabel().startswith("number of participants")
    plt.close(fig)
    fig = plot_power_curve(power_table(range(20, 101), **REF))
    plt.close(fig)


# ------------------------------------------------------------------ invalid inputs
def test_invalid_prob():
    with pytest.raises(DesignError, match=r"^prob .*\(0, 1\)"):
        mrt_power(50, **{**REF, "prob": 1.0})
    with pytest.raises(DesignError, match="prob"):
        mrt_power(50, **{**REF, "prob": np.r_[np.full(41, 0.4), -0.1]})


def test_invalid_availability():
    with pytest.raises(DesignError, match=r"^availability .*\[0, 1\].*day 34"):
        mrt_power(50, **{**REF, "availability": Curve.linear(initial=0.2, mean=0.7)})
    with pytest.raises(DesignError, match="availability"):
        mrt_power(50, **{**REF, "availability": 1.2})


def test_quadratic_impossible():
    # a maximum on day 28 of 42 requires initial <= mean
    with pytest.raises(DesignError, match=r"effect: .*initial <= mean"):
        mrt_power(
            50, **{**REF, "effect": Curve.quadratic(initial=0.2, mean=0.1, turn_day=28, turn="max")}
        )
    with pytest.raises(DesignError, match="initial"):  # 1 day: initial must equal mean
        Curve.quadratic(initial=0, mean=0.1, turn_day=1).daily(1, name="effect")


def test_p_plus_q_too_large():
    with pytest.raises(DesignError, match=r"p \+ q too large for N"):
        mrt_power(6, **REF)
    with pytest.raises(DesignError, match=r"p \+ q too large for N"):
        power_table(range(5, 20), **REF)


def test_unreachable_power():
    with pytest.raises(PowerNotReachableError, match="not reachable below n_max = 30") as e:
        mrt_sample_size(**REF, n_max=30)
    assert e.value.power_at_n_max < 0.8 and e.value.n_max == 30
    with pytest.raises(PowerNotReachableError, match="zero"):
        mrt_sample_size(**{**REF, "effect": 0.0}, n_max=1000)


def test_other_invalid_inputs():
    with pytest.raises(DesignError, match="z"):  # a vector effect needs an explicit model
        mrt_power(50, **{**REF, "effect": np.full(42, 0.1)})
    with pytest.raises(DesignError, match="effect has 7 values"):
        mrt_power(50, **{**REF, "effect": np.full(7, 0.1), "z": "constant"})
    with pytest.raises(DesignError, match="power"):
        mrt_sample_size(**REF, power=1.2)
    with pytest.raises(DesignError, match="alpha"):
        mrt_sample_size(**REF, alpha=0)


# ------------------------------------------------------------------ binary outcome
T10 = 10
TT = np.arange(1, T10 + 1)
G2 = np.column_stack([np.ones(T10), TT])
G3 = np.column_stack([np.ones(T10), TT, TT**2])


@pytest.mark.parametrize(
    ("f", "g", "beta", "null_coef", "expected"),
    [
        (G2, G2, [0.15, -0.01], [-0.2, -0.1], 274.0055127),
        (G3, G3, [0.15, -0.01, -0.1], [-0.2, -0.1, 0.01], 32.003286527546599),
        (G2, G3, [0.15, -0.01], [-0.2, -0.1, 0.01], 184.43823325060882),
    ],
)
def test_binary_reference_values(f, g, beta, null_coef, expected):
    """MRTSampleSizeBinary's testthat values (R's uniroot stops at ~1e-4 in N)."""
    kw = dict(prob=0.4, availability=0.8, f=f, g=g, beta=beta, null_coef=null_coef)
    res = binary_sample_size(**kw, alpha=0.05, power=0.8)
    assert res.n_exact == pytest.approx(expected, abs=1e-4)
    assert res.n == int(np.ceil(expected))
    assert binary_power(res.n_exact, **kw).power == pytest.approx(0.8, abs=1e-9)


def test_binary_invalid_inputs():
    f = np.column_stack([np.ones(20), np.arange(20)])
    with pytest.raises(DesignError, match=r"treated success probability.*decision point 5"):
        binary_power(
            50, prob=0.4, availability=0.8, beta=[0.1, 0.05], null_coef=[-0.3, 0], f=f, g=f
        )
    with pytest.raises(DesignError, match=r"null success probability.*decision point 1"):
        binary_power(50, prob=0.4, availability=0.8, beta=0.1, null_coef=0.1, decisions=20)
    with pytest.raises(DesignError, match="prob"):
        binary_power(50, prob=0.0, availability=0.8, beta=0.1, null_coef=-1, decisions=20)
    with pytest.raises(DesignError, match=r"p \+ q too large for N"):
        binary_power(2, prob=0.4, availability=0.8, beta=0.1, null_coef=-1, decisions=20)
    with pytest.warns(DesignWarning, match="span of g"):
        binary_power(50, prob=0.4, availability=0.8, beta=[0.1, 0.0], null_coef=-1.2, f=f)


def _simulate_emee2(n_trials, n, T, prob, avail, mu0, rr, rng):
    """Simulate n_trials binary MRTs; EMEE2 (f = g = 1) with the sandwich variance, vectorized.

    With a constant p and f = g = 1 the EMEE2 equations
        sum I (e^{-(A-p) b} Y - e^a) = 0,  sum I (A-p)(e^{-(A-p) b} Y - e^a) = 0
    have the closed-form root b = log(mean Y | A=1, I=1) - log(mean Y | A=0, I=1).
    """
    shape = (n_trials, n, T)
    avail_ = rng.random(shape) < avail
    a = (rng.random(shape) < prob) & avail_
    y = (rng.random(shape) < mu0 * np.where(a, rr, 1.0)) & avail_
    avail_, a, y = avail_.astype(float), a.astype(float), y.astype(float)
    n1, n0 = a.sum((1, 2)), (avail_ - a).sum((1, 2))
    s1, s0 = (y * a).sum((1, 2)), (y * (avail_ - a)).sum((1, 2))
    b = np.log((s1 / n1) / (s0 / n0))
    c = (a - prob) * avail_
    e = np.exp(-c * b[:, None, None]) * y
    ea = (e * avail_).sum((1, 2)) / avail_.sum((1, 2))
    r = avail_ * (e - ea[:, None, None])
    u = np.stack([r.sum(2), (c * r).sum(2)], -1)  # per participant estimating functions
    meat = np.einsum("rni,rnj->rij", u, u)
    bread = np.empty((n_trials, 2, 2))
    bread[:, 0, 0] = -(avail_ * ea[:, None, None]).sum((1, 2))
    bread[:, 0, 1] = -(c * e).sum((1, 2))
    bread[:, 1, 0] = -(c * ea[:, None, None]).sum((1, 2))
    bread[:, 1, 1] = -(c * c * e).sum((1, 2))
    inv = np.linalg.inv(bread)
    cov = inv @ meat @ np.transpose(inv, (0, 2, 1))
    return b, np.sqrt(cov[:, 1, 1]), (avail_, a, y)


def test_binary_power_matches_simulation():
    """Empirical power of the EMEE2 t-test at the computed N vs the analytic power."""
    T, prob, avail, mu0, rr = 20, 0.4, 0.8, 0.25, 1.25
    res = binary_sample_size(
        prob=prob, availability=avail, beta=np.log(rr), null_coef=np.log(mu0), decisions=T
    )
    n = res.n
    assert 80 < n < 140  # 106
    rng = np.random.default_rng(20230501)
    R = 400
    b, se, (av, a, y) = _simulate_emee2(R, n, T, prob, avail, mu0, rr, rng)
    crit = stats.t.ppf(0.975, n - res.p - res.q)  # F(1, N - p - q) test = two-sided t
    emp = np.mean(np.abs(b / se) > crit)
    mcse = np.sqrt(res.power_at_n * (1 - res.power_at_n) / R)
    assert abs(emp - res.power_at_n) < 3 * mcse, (emp, res.power_at_n, mcse)
    # the analytic standard error sqrt(Sigma / N) matches the sandwich on average
    assert np.sqrt(res.design.sigma[0, 0] / n) == pytest.approx(np.median(se), rel=0.05)

    # the inline estimator is EMEE2: check one trial against hte_mrt.estimators.emee
    from hte_mrt.data.schema import MRTData
    from hte_mrt.estimators.emee import emee

    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), T),
            "t": np.tile(np.arange(T), n),
            "A": a[0].ravel(),
            "Y": y[0].ravel(),
            "I": av[0].ravel(),
        }
    )
    data = MRTData(
        frame, id="id", time="t", treatment="A", outcome="Y", prob=prob, availability="I"
    )
    fit = emee(data, variant="emee2", small_sample=False)
    assert fit.theta[1] == pytest.approx(b[0], abs=1e-8)
    assert np.sqrt(fit.cov_theta[1, 1]) == pytest.approx(se[0], rel=1e-6)


# ------------------------------------------------------------------ results contract
def test_results_follow_the_contract(tmp_path):
    from hte_mrt._contract import Summary

    kw = {"days": 30, "per_day": 5, "prob": 0.5, "availability": 0.7, "effect": 0.1}
    binary = {"prob": 0.4, "availability": 0.8, "beta": 0.2, "null_coef": -1.4, "decisions": 20}
    results = {
        "sample size": mrt_sample_size(**kw),
        "power": mrt_power(30, **kw),
        "mde": minimum_detectable_effect(40, **kw),
        "binary sample size": binary_sample_size(**binary),
        "binary power": binary_power(100, **binary),
    }
    for label, res in results.items():
        tab = res.table()
        assert len(tab) == 1 and "n" in tab.columns and "p" not in tab.columns, label
        s = res.summary()
        assert isinstance(s, Summary) and "<table" in s._repr_html_(), label
        paper = res.table(style="paper")
        assert not paper.isna().any().any() and "N" in paper.columns, label
        assert repr(res).startswith(f"<{type(res).__name__}:") and len(repr(res)) < 300
        res.to_netcdf(tmp_path / f"{label.replace(' ', '_')}.nc")
    assert list(results["sample size"].table().columns) == [
        "n", "n_exact", "power_at_n", "power_at_n_minus_1", "target_power", "alpha", "df1",
        "df2", "noncentrality",
    ]  # fmt: skip
    assert np.isnan(results["sample size"].table().loc[0, "n_exact"])
    assert results["binary sample size"].table().loc[0, "n_exact"] == pytest.approx(
        results["binary sample size"].n_exact
    )


def test_one_design_answers_every_question():
    """The public functions are the design's methods: the same numbers either way."""
    design = continuous_design(**REF)
    assert design.sample_size().n == 46
    assert design.power_result(46).power == pytest.approx(mrt_power(46, **REF).power, abs=0)
    pd.testing.assert_frame_equal(
        design.power_table(range(40, 50)), power_table(range(40, 50), **REF)
    )
    assert design.minimum_detectable_effect(60).mde == minimum_detectable_effect(60, **REF).mde
