"""The additive mixed model's collapsed likelihood (learners/_bamm_op.py) against dense algebra.

Exact identities, so tolerances are floating-point ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from hte_mrt.estimators.learners._bamm_op import (
    CollapsedAMMLogp,
    SufficientStats,
    draw_coefficients,
    mixture_value_and_grad,
    value_and_grad,
)


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    K, P = 7, 6
    cl = np.repeat(np.arange(K), rng.integers(2, 7, K))
    n = len(cl)
    X = rng.standard_normal((n, P))
    y = rng.standard_normal(n)
    Z = (cl[:, None] == np.arange(K)).astype(float)
    return X, y, cl, Z, SufficientStats.from_data(X, y, cl)


def _dense_cov(X, Z, sigma, sd_b, s):
    return X @ np.diag(s**2) @ X.T + sigma**2 * np.eye(len(X)) + sd_b**2 * Z @ Z.T


def test_value_equals_dense_normal(toy):
    X, y, _, Z, st = toy
    for sigma, sd_b, s in [(0.8, 0.5, np.linspace(0.1, 1.5, 6)), (1.3, 1e-3, np.full(6, 2.0))]:
        lp = value_and_grad(st, sigma, sd_b, s)[0]
        ref = multivariate_normal(np.zeros(len(y)), _dense_cov(X, Z, sigma, sd_b, s)).logpdf(y)
        assert lp == pytest.approx(ref, rel=1e-10)


def test_gradient_equals_finite_differences(toy):
    *_, st = toy
    sigma, sd_b, s = 0.7, 0.4, np.array([0.2, 0.9, 1.4, 0.05, 0.6, 1.1])
    _, g_sig, g_sb, g_s = value_and_grad(st, sigma, sd_b, s)
    f = lambda a, b, c: value_and_grad(st, a, b, c)[0]  # noqa: E731
    h = 1e-6
    assert g_sig == pytest.approx(
        (f(sigma + h, sd_b, s) - f(sigma - h, sd_b, s)) / (2 * h), rel=1e-6
    )
    assert g_sb == pytest.approx(
        (f(sigma, sd_b + h, s) - f(sigma, sd_b - h, s)) / (2 * h), rel=1e-6
    )
    num = [(f(sigma, sd_b, s + h * e) - f(sigma, sd_b, s - h * e)) / (2 * h) for e in np.eye(6)]
    np.testing.assert_allclose(g_s, num, rtol=1e-6, atol=1e-8)


def test_gradient_at_tiny_scales(toy):
    """The horseshoe pushes noise scales towards 0. There the kernel's s_k^2 Q_kk = 1 - (A^-1)_kk
    keeps the gradient in log s_k (s_k ds_k, what NUTS uses) exact to absolute rounding error;
    reference: ds_k = -s_k (Q_kk - q_k^2) with Q = X'V^-1 X, q = X'V^-1 y from the dense V."""
    X, y, _, Z, st = toy
    sigma, sd_b = 0.7, 0.4
    s = np.array([1e-7, 0.9, 1e-4, 0.05, 1e-9, 1e-2])
    Vi = np.linalg.inv(_dense_cov(X, Z, sigma, sd_b, s))
    Q, q = X.T @ Vi @ X, X.T @ Vi @ y
    ref = -s * (np.diag(Q) - q**2)
    g_s = value_and_grad(st, sigma, sd_b, s)[3]
    np.testing.assert_allclose(s * g_s, s * ref, rtol=1e-8, atol=1e-14)
    # the small-but-not-tiny scales are checked in relative terms
    np.testing.assert_allclose(g_s[[1, 2, 3, 5]], ref[[1, 2, 3, 5]], rtol=1e-6)


def test_invalid_input_gives_minus_infinity(toy):
    *_, st = toy
    s = np.full(6, 0.5)
    cases = [(0.7, 0.4, np.full(6, b)) for b in (np.inf, np.nan, 1e200)]
    cases += [(0.0, 0.4, s), (1e-170, 0.4, s), (np.nan, 0.4, s), (0.7, np.inf, s)]
    for sigma, sd_b, sc in cases:
        lp, g_sig, _, g_s = value_and_grad(st, sigma, sd_b, sc)
        assert lp == -np.inf and np.isnan(g_sig) and np.isnan(g_s).all(), (sigma, sd_b, sc[0])


def test_coefficient_draws_follow_the_dense_conditional(toy):
    X, y, _, Z, st = toy
    sigma, sd_b, s = 0.9, 0.6, np.linspace(0.3, 1.2, 6)
    Sigma = sigma**2 * np.eye(len(y)) + sd_b**2 * Z @ Z.T
    prec = np.diag(1 / s**2) + X.T @ np.linalg.solve(Sigma, X)
    mean = np.linalg.solve(prec, X.T @ np.linalg.solve(Sigma, y))
    m = 20000
    draws = draw_coefficients(
        st, np.full(m, sigma), np.full(m, sd_b), np.tile(s, (m, 1)), np.random.default_rng(1)
    )
    cov = np.linalg.inv(prec)
    se = np.sqrt(np.diag(cov) / m)
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * se)  # Monte Carlo: 4 MC SEs
    # MC sd of a covariance entry <= sqrt(2 / m) max|cov| = 0.01 max|cov|: 4 MC sds
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.04 * np.abs(cov).max())


def test_op_gradient_through_pytensor(toy):
    import pytensor
    import pytensor.tensor as pt

    *_, st = toy
    sig, sb, s = pt.dscalar(), pt.dscalar(), pt.dvector()
    lp = CollapsedAMMLogp(st)(sig, sb, s)[0]
    f = pytensor.function([sig, sb, s], [lp, *pytensor.grad(lp, [sig, sb, s])], mode="FAST_COMPILE")
    vals = (0.7, 0.4, np.linspace(0.2, 1.0, 6))
    out = f(*vals)
    ref = value_and_grad(st, *vals)
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_mixture_equals_dense_two_component_normal(toy):
    """prob_homogeneous: w0 N(y; 0, V(s0)) + w1 N(y; 0, V(s)), s0 = s with the null block at 0;
    gradient by finite differences; r0 the first component's posterior probability; the Op's
    mixture mode returns the same."""
    import pytensor
    import pytensor.tensor as pt

    X, y, _, Z, st = toy
    sigma, sd_b, s = 0.7, 0.4, np.array([0.3, 0.9, 1.4, 0.05, 0.6, 1.1])
    null, w0 = np.array([3, 4, 5]), 0.3
    s0 = s.copy()
    s0[null] = 0.0
    d0, d1 = (multivariate_normal(np.zeros(len(y)), _dense_cov(X, Z, sigma, sd_b, v)).logpdf(y)
              for v in (s0, s))  # fmt: skip
    ref = np.logaddexp(np.log(w0) + d0, np.log1p(-w0) + d1)
    lp, g_sig, g_sb, g_s, r0 = mixture_value_and_grad(
        st, sigma, sd_b, s, null, np.log(w0), np.log1p(-w0)
    )
    assert lp == pytest.approx(ref, rel=1e-10)
    assert r0 == pytest.approx(np.exp(np.log(w0) + d0 - ref), rel=1e-8)

    def f(a, b, c):
        return mixture_value_and_grad(st, a, b, c, null, np.log(w0), np.log1p(-w0))[0]

    h = 1e-6
    assert g_sig == pytest.approx((f(sigma + h, sd_b, s) - f(sigma - h, sd_b, s)) / (2 * h),
                                  rel=1e-6)  # fmt: skip
    assert g_sb == pytest.approx((f(sigma, sd_b + h, s) - f(sigma, sd_b - h, s)) / (2 * h),
                                 rel=1e-6)  # fmt: skip
    num = [(f(sigma, sd_b, s + h * e) - f(sigma, sd_b, s - h * e)) / (2 * h) for e in np.eye(6)]
    np.testing.assert_allclose(g_s, num, rtol=1e-6, atol=1e-8)
    # through the Op; prob_null = 0 is the plain likelihood
    sig, sb, sv = pt.dscalar(), pt.dscalar(), pt.dvector()
    for op, want in ((CollapsedAMMLogp(st, null, w0), lp), (CollapsedAMMLogp(st, null, 0.0), d1)):
        fn = pytensor.function([sig, sb, sv], op(sig, sb, sv)[0], mode="FAST_COMPILE")
        assert float(fn(sigma, sd_b, s)) == pytest.approx(want, rel=1e-10)
