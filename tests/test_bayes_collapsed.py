"""Collapsed hierarchical Gaussian MRT model: exactness of the marginal likelihood, its gradient,
the random-effect conditionals, and agreement with the row-level model's posterior."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

pytensor = pytest.importorskip("pytensor")
pm = pytest.importorskip("pymc")
az = pytest.importorskip("arviz")
pt = pytensor.tensor

from hte_mrt.errors import DataError  # noqa: E402
from hte_mrt.estimators.bayes import (  # noqa: E402
    add_log_likelihood,
    collapsed_stats,
    draw_random_effects,
    pointwise_loglik,
)
from hte_mrt.estimators.bayes.collapsed import (  # noqa: E402
    _build_collapsed_model,
    collapsed_data,
    collapsed_logp,
    draw_cluster_effects,
    draw_unit_effects,
    packed_data,
    posterior_params,
    subset_stats,
)
from hte_mrt.estimators.bayes.rowlevel import _build_rowlevel_model  # noqa: E402

# ---------------------------------------------------------------------------------- helpers


def _toy(seed=0, N=9, K=3, d=4, Tmax=8):
    """Unbalanced toy data with shuffled rows, T_i from 1 to Tmax-1."""
    rng = np.random.default_rng(seed)
    T = rng.integers(1, Tmax, N)
    g = np.repeat(np.arange(N) * 10 + 3, T)  # non-contiguous labels
    n = len(g)
    perm = rng.permutation(n)
    g = g[perm]
    At = rng.integers(0, 2, n) - rng.choice([0.4, 0.6], n)
    X = np.column_stack([np.ones(n), rng.normal(size=n), At, At * rng.normal(size=n)])[:, :d]
    y = 2.0 * rng.normal(size=n) + 1.0
    cl = rng.integers(0, K, N)
    cl[:K] = np.arange(K)
    return X, At, y, g, cl


def _dense_mvn(X, At, y, g, cl, theta, sd, sd_b, sd_u, rho, sd_c):
    """Exact log densities with the full covariance: per participant (no c) and per cluster."""
    labels = np.unique(g)
    D = np.array([[sd_b**2, rho * sd_b * sd_u], [rho * sd_b * sd_u, sd_u**2]])
    per_unit = []
    for lab in labels:
        r = np.flatnonzero(g == lab)
        Z = np.column_stack([np.ones(len(r)), At[r]])
        V = sd**2 * np.eye(len(r)) + Z @ D @ Z.T
        per_unit.append(st.multivariate_normal(X[r] @ theta, V).logpdf(y[r]))
    per_cluster = []
    for k in range(cl.max() + 1):
        rows = np.flatnonzero(np.isin(g, labels[cl == k]))
        V = sd**2 * np.eye(len(rows)) + sd_c**2
        for lab in labels[cl == k]:
            r = np.flatnonzero(g[rows] == lab)
            Z = np.column_stack([np.ones(len(r)), At[rows][r]])
            V[np.ix_(r, r)] += Z @ D @ Z.T
        per_cluster.append(st.multivariate_normal(X[rows] @ theta, V).logpdf(y[rows]))
    return np.array(per_unit), np.array(per_cluster)


def _random_params(rng, d, *, singular=False):
    theta = rng.normal(size=d)
    sd, sd_b, sd_u = rng.uniform(0.3, 2.0, 3)
    rho, sd_c = rng.uniform(-0.9, 0.9), rng.uniform(0.1, 2.0)
    if singular:
        sd_u, rho = 0.0, 0.0
    return theta, sd, sd_b, sd_u, rho, sd_c


@pytest.fixture(scope="module")
def toy():
    X, At, y, g, cl = _toy()
    return X, At, y, g, cl, collapsed_stats(X, At, y, g, cl)


@pytest.fixture(scope="module")
def logp_fns(toy):
    """Compiled graph and kernel (Op) log-densities with gradients, all four model variants."""
    from hte_mrt.estimators.bayes._op import collapsed_logp_op

    *_, stats = toy
    data = collapsed_data(stats, shared=False)
    packed = pt.constant(packed_data(stats))
    th = pt.vector("theta")
    sd, sb, su, rho, sc = (pt.scalar(nm) for nm in ("sd", "sd_b", "sd_u", "rho", "sd_c"))
    fns = {}
    for corr in (False, True):
        for clus in (False, True):
            args = [th, sd, sb, su] + ([rho] if corr else []) + ([sc] if clus else [])
            r, c = (rho if corr else None), (sc if clus else None)
            for impl, lp in (
                ("graph", collapsed_logp(data, th, sd, sb, su, r, c)),
                ("kernel", collapsed_logp_op(packed, th, sd, sb, su, r, c)),
            ):
                # python linker: no C compilation of data-specific kernels (tiny data here)
                fns[impl, corr, clus] = pytensor.function(
                    args, [lp, *pytensor.grad(lp, args)], mode="FAST_COMPILE"
                )
    return fns


# ---------------------------------------------------------------------------- exactness (a)


@pytest.mark.parametrize("singular", [False, True])
def test_loglik_equals_dense_mvn(toy, logp_fns, singular):
    X, At, y, g, cl, stats = toy
    rng = np.random.default_rng(1 + singular)
    for _ in range(3):
        theta, sd, sd_b, sd_u, rho, sd_c = _random_params(rng, X.shape[1], singular=singular)
        for corr in (False, True):
            r = rho if corr else 0.0
            unit, clus = _dense_mvn(X, At, y, g, cl, theta, sd, sd_b, sd_u, r, sd_c)
            params = {"theta": theta[None], "sd": sd, "sd_b": sd_b, "sd_u": sd_u, "rho": r}
            np.testing.assert_allclose(pointwise_loglik(stats, params)[0], unit, rtol=0, atol=1e-8)
            pc = pointwise_loglik(stats, {**params, "sd_c": sd_c})[0]
            np.testing.assert_allclose(pc, clus, rtol=0, atol=1e-8)
            args = [theta, sd, sd_b, sd_u] + ([r] if corr else [])
            for impl in ("graph", "kernel"):
                lp0 = logp_fns[impl, corr, False](*args)[0]
                lp1 = logp_fns[impl, corr, True](*args, sd_c)[0]
                assert abs(lp0 - unit.sum()) < 1e-8, (impl, corr)
                assert abs(lp1 - clus.sum()) < 1e-8, (impl, corr)


def test_kernel_gradient_equals_autodiff(toy, logp_fns):
    *_, stats = toy
    rng = np.random.default_rng(3)
    for corr in (False, True):
        for clus in (False, True):
            for _ in range(3):
                theta, sd, sd_b, sd_u, rho, sd_c = _random_params(rng, stats.d)
                args = [theta, sd, sd_b, sd_u] + ([rho] if corr else []) + ([sd_c] if clus else [])
                a = logp_fns["graph", corr, clus](*args)
                b = logp_fns["kernel", corr, clus](*args)
                for x, z in zip(a, b, strict=True):
                    np.testing.assert_allclose(z, x, rtol=1e-9, atol=1e-9)


def test_kernel_numba_mode_equals_perform(toy, logp_fns):
    """The Op's numba dispatch (what nutpie and the default pymc mode run) equals its perform."""
    from hte_mrt.estimators.bayes._op import collapsed_logp_op

    *_, stats = toy
    th = pt.vector("theta")
    sd, sb, su, rho, sc = (pt.scalar(nm) for nm in ("sd", "sd_b", "sd_u", "rho", "sd_c"))
    args = [th, sd, sb, su, rho, sc]
    lp = collapsed_logp_op(pytensor.shared(packed_data(stats)), th, sd, sb, su, rho, sc)
    f = pytensor.function(args, [lp, *pytensor.grad(lp, args)], mode="NUMBA")
    vals = _random_params(np.random.default_rng(8), stats.d)
    for x, z in zip(f(*vals), logp_fns["graph", True, True](*vals), strict=True):
        np.testing.assert_allclose(x, z, rtol=1e-9, atol=1e-9)


def test_kernel_gradient_finite_differences(toy, logp_fns):
    *_, stats = toy
    rng = np.random.default_rng(4)
    theta, sd, sd_b, sd_u, rho, sd_c = _random_params(rng, stats.d)
    f = logp_fns["kernel", True, True]
    flat = np.r_[theta, sd, sd_b, sd_u, rho, sd_c]

    def val(v):
        return f(v[: stats.d], *v[stats.d :])[0]

    out = f(theta, sd, sd_b, sd_u, rho, sd_c)
    grad = np.r_[out[1], out[2:]]
    h = 1e-6
    fd = np.array([(val(flat + h * e) - val(flat - h * e)) / (2 * h) for e in np.eye(len(flat))])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)


def test_stats_invariant_to_row_order_and_many_draws(toy):
    X, At, y, g, cl, stats = toy
    rng = np.random.default_rng(5)
    p = rng.permutation(len(y))
    stats2 = collapsed_stats(X[p], At[p], y[p], g[p], cl)
    S = 7
    params = {
        "theta": rng.normal(size=(S, stats.d)),
        "sd": rng.uniform(0.5, 2, S),
        "sd_b": rng.uniform(0.5, 2, S),
        "sd_u": rng.uniform(0.5, 2, S),
        "sd_c": rng.uniform(0.5, 2, S),
    }
    a = pointwise_loglik(stats, params)
    b = pointwise_loglik(stats2, params)
    assert a.shape == (S, stats.n_clusters)
    np.testing.assert_allclose(a, b, atol=1e-9)
    single = np.array(
        [pointwise_loglik(stats, {k: v[s : s + 1] for k, v in params.items()})[0] for s in range(S)]
    )
    np.testing.assert_allclose(a, single, atol=1e-9)


def test_bad_inputs_raise(toy):
    X, At, y, g, cl, _ = toy
    with pytest.raises(DataError):
        collapsed_stats(X, At[:-1], y, g)
    with pytest.raises(DataError):
        collapsed_stats(X, At, y, g, cl[:-1])
    y2 = y.copy()
    y2[0] = np.nan
    with pytest.raises(DataError):
        collapsed_stats(X, At, y2, g)


# ------------------------------------------------------------- random-effect conditionals


def _dense_conditional(toy, seed: int, S: int = 40_000):
    """Random parameters, their S-fold tiled draws, and the dense Gaussian conditional of
    gamma = (c_1..c_K, b_1, u_1, ..., b_N, u_N) given y: mean, covariance, N."""
    X, At, y, g, cl, stats = toy
    theta, sd, sd_b, sd_u, rho, sd_c = _random_params(np.random.default_rng(seed), stats.d)
    labels, gi = np.unique(g, return_inverse=True)
    N, K, n = len(labels), cl.max() + 1, len(y)
    W = np.zeros((n, K + 2 * N))
    W[np.arange(n), cl[gi]] = 1.0
    W[np.arange(n), K + 2 * gi] = 1.0
    W[np.arange(n), K + 2 * gi + 1] = At
    D = np.array([[sd_b**2, rho * sd_b * sd_u], [rho * sd_b * sd_u, sd_u**2]])
    prior_prec = np.zeros((K + 2 * N,) * 2)
    prior_prec[:K, :K] = np.eye(K) / sd_c**2
    for i in range(N):
        prior_prec[K + 2 * i : K + 2 * i + 2, K + 2 * i : K + 2 * i + 2] = np.linalg.inv(D)
    C = np.linalg.inv(prior_prec + W.T @ W / sd**2)
    mean = C @ W.T @ (y - X @ theta) / sd**2
    params = {
        "theta": np.tile(theta, (S, 1)),
        "sd": np.full(S, sd),
        "sd_b": np.full(S, sd_b),
        "sd_u": np.full(S, sd_u),
        "rho": np.full(S, rho),
        "sd_c": np.full(S, sd_c),
    }
    return params, mean, C, N


def _assert_matches(draws, mean, C):
    S = len(draws)
    se = np.sqrt(np.diag(C) / S)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * se)
    scale = np.sqrt(np.outer(np.diag(C), np.diag(C)))
    assert np.max(np.abs(np.cov(draws, rowvar=False) - C) / scale) < 0.04
    return scale


def test_random_effect_draws_match_dense_conditional(toy):
    """Draws of (c, b, u) | y, params match the dense Gaussian conditional (mean and cov)."""
    stats = toy[-1]
    params, mean, C, N = _dense_conditional(toy, 6)
    S = len(params["sd"])
    re = draw_random_effects(stats, params, rng=7)
    draws = np.concatenate(
        [re["c"], np.stack([re["b"], re["u"]], axis=2).reshape(S, 2 * N)], axis=1
    )
    _assert_matches(draws, mean, C)


def test_blockwise_random_effect_draws_match_dense_conditional(toy):
    """The two stages used when participant draws are summarized (c for every cluster, then
    (b, u) | c for blocks of participants via subset_stats) draw from the same conditional."""
    stats = toy[-1]
    params, mean, C, N = _dense_conditional(toy, 16)
    S = len(params["sd"])
    gen = np.random.default_rng(8)
    c = draw_cluster_effects(stats, params, gen)
    b, u = np.empty((S, N)), np.empty((S, N))
    for idx in np.array_split(np.arange(N), 3):  # blocks that cut across clusters
        out = draw_unit_effects(
            subset_stats(stats, idx), params, gen, c_units=c[:, stats.cluster[idx]]
        )
        b[:, idx], u[:, idx] = out["b"], out["u"]
    draws = np.concatenate([c, np.stack([b, u], axis=2).reshape(S, 2 * N)], axis=1)
    scale = _assert_matches(draws, mean, C)
    # a null draw (c ignored, or blocks mixed up) would miss the joint covariance
    wrong = draw_unit_effects(stats, params, gen)
    bad = np.concatenate([c, np.stack([wrong["b"], wrong["u"]], axis=2).reshape(S, 2 * N)], 1)
    assert np.max(np.abs(np.cov(bad, rowvar=False) - C) / scale) > 0.1


def test_random_effect_draws_singular_D(toy):
    """sd_u = 0: u is exactly 0 and b is still drawn (no D^-1 anywhere)."""
    *_, stats = toy
    params = {"theta": np.zeros((3, stats.d)), "sd": 1.0, "sd_b": 1.0, "sd_u": 0.0}
    re = draw_random_effects(stats, params, rng=0)
    assert np.all(re["u"] == 0.0) and np.all(np.isfinite(re["b"]))
    assert re["b"].std() > 0


# ------------------------------------------------------------ posterior agreement (b)


def _sim(N, T, seed, K=0):
    rng = np.random.default_rng(seed)
    gid = np.repeat(np.arange(N), T)
    x = rng.normal(size=N * T)
    p = 0.5
    At = (rng.random(N * T) < p) - p
    X = np.column_stack([np.ones(N * T), x, At, At * x])
    b, u = rng.normal(0, 0.7, N), rng.normal(0, 0.4, N)
    y = X @ [0.5, 0.3, 0.4, 0.1] + b[gid] + At * u[gid] + rng.normal(0, 1, N * T)
    cl = None
    if K:
        cl = np.arange(N) % K
        y += rng.normal(0, 0.5, K)[cl][gid]
    return X, At, y, gid, cl, ["a_int", "a_x", "b_int", "b_x"]


def _fit(model, *, draws, tune, chains, seed, sampler="pymc"):
    # pymc sampler: the C backend compiles these small graphs faster than numba on a cold cache
    # (~25 s vs ~50 s for both models; both ~10 s warm).
    extra = {}
    if sampler == "pymc" and pytensor.config.cxx:
        extra = {"compile_kwargs": {"mode": "CVM"}}
    with model:
        return pm.sample(
            **extra,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=1,
            nuts_sampler=sampler,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )


def _compare(dt_c, dt_r, var, *, z=4.0, max_sd_frac=0.25):
    """Posterior means agree within z combined MC standard errors (and max_sd_frac sd)."""
    sc = az.summary(dt_c, var_names=var)
    sr = az.summary(dt_r, var_names=var)
    diff = (sc["mean"].astype(float) - sr["mean"].astype(float)).abs()
    mcse = np.hypot(sc["mcse_mean"].astype(float), sr["mcse_mean"].astype(float))
    sd_r = sr["sd"].astype(float)
    assert (diff < z * mcse).all(), (diff / mcse).to_dict()
    assert (diff < max_sd_frac * sd_r).all(), (diff / sd_r).to_dict()
    ratio = sc["sd"].astype(float) / sd_r
    assert ((ratio > 0.85) & (ratio < 1.15)).all(), ratio.to_dict()
    return diff / sd_r


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_posterior_agrees_with_rowlevel_cheap():
    X, At, y, g, _, names = _sim(12, 15, seed=3)
    stats = collapsed_stats(X, At, y, g, coef_names=names)
    kw = dict(draws=800, tune=600, chains=2, seed=11)
    dt_c = _fit(_build_collapsed_model(stats), **kw)
    dt_r = _fit(_build_rowlevel_model(X, At, y, g, coef_names=names), **kw)
    var = ["theta", "sd", "sd_b", "sd_u"]
    _compare(dt_c, dt_r, var)
    # random effects: exact conditional draws given each collapsed draw vs. sampled ones
    re = draw_random_effects(stats, posterior_params(dt_c), rng=0)
    for name in ("b", "u"):
        r = np.asarray(dt_r["posterior"][name].values).reshape(-1, stats.n_units)
        diff = np.abs(re[name].mean(axis=0) - r.mean(axis=0))
        assert np.all(diff < 0.25 * r.std(axis=0)), name
    # leave-one-participant-out LOO from the pointwise marginal log-likelihood
    add_log_likelihood(dt_c, stats)
    assert dt_c["log_likelihood"]["y"].shape == (2, 800, stats.n_units)
    loo = az.loo(dt_c)
    assert np.isfinite(loo.elpd)


@pytest.mark.slow
@pytest.mark.parametrize("correlated,K", [(False, 0), (True, 4)])
def test_posterior_agrees_with_rowlevel_strict(correlated, K):
    """Long runs: means within 0.1 posterior sd (and 4 MC standard errors)."""
    X, At, y, g, cl, names = _sim(12, 15, seed=5, K=K)
    stats = collapsed_stats(X, At, y, g, cl, coef_names=names)
    kw = dict(draws=5000, tune=1500, chains=4, seed=12, sampler="nutpie")
    dt_c = _fit(_build_collapsed_model(stats, correlated=correlated), **kw)
    model_r = _build_rowlevel_model(X, At, y, g, cl, coef_names=names, correlated=correlated)
    dt_r = _fit(model_r, **kw)
    var = (
        ["theta", "sd", "sd_b", "sd_u"] + (["sd_c"] if K else []) + (["rho"] if correlated else [])
    )
    _compare(dt_c, dt_r, var, z=4.0, max_sd_frac=0.1)


@pytest.mark.slow
def test_nutpie_same_seed_same_draws():
    X, At, y, g, _, names = _sim(20, 30, seed=1)
    stats = collapsed_stats(X, At, y, g, coef_names=names)
    kw = dict(draws=200, tune=200, chains=2, sampler="nutpie")
    a = _fit(_build_collapsed_model(stats), seed=3, **kw)["posterior"]["theta"].values
    b = _fit(_build_collapsed_model(stats), seed=3, **kw)["posterior"]["theta"].values
    c = _fit(_build_collapsed_model(stats), seed=4, **kw)["posterior"]["theta"].values
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.slow
def test_graph_impl_samples_like_kernel():
    X, At, y, g, cl, names = _sim(20, 20, seed=2, K=5)
    stats = collapsed_stats(X, At, y, g, cl, coef_names=names)
    kw = dict(draws=2000, tune=1000, chains=2, seed=5, sampler="nutpie")
    dt_k = _fit(_build_collapsed_model(stats, impl="kernel"), **kw)
    dt_g = _fit(_build_collapsed_model(stats, impl="graph"), **kw)
    _compare(dt_k, dt_g, ["theta", "sd", "sd_b", "sd_u", "sd_c"])
