"""External references for BayesMRT: an exact conjugate posterior, an independent Gibbs sampler.

1. Conjugate case. With every variance known (priors ``{"dist": "fixed"}``) and normal priors
   on the coefficients, the posterior of the coefficients is normal in closed form: generalized
   least squares with the participant covariance V_i = sigma^2 I + Z_i D Z_i' (Z_i = [1, A~_i],
   D = diag(sd_b^2, sd_u^2)) plus the prior precision. BayesMRT's draws (collapsed likelihood,
   numba kernel, nutpie) must reproduce its mean and sd to Monte Carlo error; the same check
   run against two wrong posteriors (prior ignored; random effects ignored) must fail.
2. Agreement with an independent implementation of the same model and priors: a blocked Gibbs
   sampler in NumPy below (coefficients and random effects drawn jointly given the variances,
   each variance exactly given the rest), which shares no code with the package beyond the
   design matrices.

Where the package puts the coefficient prior: BayesMRT samples the controls and the effect
terms with their columns centred (within the control block and within the effect block), so
the priors of ``intercept`` and of the ``Intercept`` effect term are priors of the centred
intercepts (the outcome / the effect at the average covariates, as in brms); the other
coefficients are unchanged by centring. The reference below builds that map from the design
itself (``_centring``), not from the package's ``theta_map``.

Tolerances. For a posterior mean the Monte Carlo standard error is MCSE = sd / sqrt(ESS)
(ArviZ's ``mcse``, per quantity; for a posterior sd its own MCSE, ~ sd / sqrt(2 ESS) for a
normal posterior). A difference from an exact value is accepted within Z = 4 MCSE (two-sided
P(|N(0,1)| > 4) = 6e-5, so < 1e-3 over the ~10 quantities of a test); a difference between two
samplers within Z * sqrt(MCSE_1^2 + MCSE_2^2). A wrong reference must miss by more than
WRONG = 10 MCSE on at least one quantity (a margin that keeps this test of the test far from
the acceptance region).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import arviz as az
import numpy as np
import pytest

import hte_mrt as hm
from hte_mrt.errors import ConvergenceWarning
from hte_mrt.estimators.bayes import model as bayes_model
from hte_mrt.estimators.bayes.model import BayesMRT

Z = 4.0
WRONG = 10.0


# ------------------------------------------------------------------------------ helpers
def _centring(design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Xc, T, at): the design with the control and effect columns centred, the map theta = T r
    from centred to data-scale coefficients (X theta = Xc r), and the centred treatment."""
    G, F, X = design.G, design.F, design.X
    q, p = G.shape[1], F.shape[1]
    j0 = design.f_names.index("Intercept")
    at = X[:, q + j0]
    mg = np.where(np.array(design.g_names) == "Intercept", 0.0, G.mean(axis=0))
    mf = np.where(np.array(design.f_names) == "Intercept", 0.0, F.mean(axis=0))
    Xc = np.column_stack([G - mg, at[:, None] * (F - mf)])
    T = np.eye(q + p)
    T[design.g_names.index("Intercept"), :q] -= mg
    T[q + j0, q:] -= mf
    np.testing.assert_allclose(Xc, X @ T, atol=1e-10)  # the map is right: X T r = Xc r
    return Xc, T, at


def _prior_vectors(pri: dict, design) -> tuple[np.ndarray, np.ndarray]:
    """Prior mean and sd of the centred coefficients (controls, then effect terms)."""
    mu, sd = [], []
    for n in design.g_names:
        key = "intercept" if n == "Intercept" else "alpha"
        mu.append(pri[key]["mu"])
        sd.append(pri[key]["sigma"])
    k = len(design.f_names)
    return np.r_[mu, [pri["beta"]["mu"]] * k], np.r_[sd, [pri["beta"]["sigma"]] * k]


def _conjugate(design, pri, sigma, sd_b, sd_u, *, use_prior=True, use_re=True):
    """Exact posterior mean and covariance of theta = (alpha, beta) given the variances."""
    Xc, T, at = _centring(design)
    m, s = _prior_vectors(pri, design)
    d = Xc.shape[1]
    P = np.diag(1 / s**2) if use_prior else np.zeros((d, d))
    h = m / s**2 if use_prior else np.zeros(d)
    for g in range(design.n_groups):
        rows = design.group == g
        Zi = np.column_stack([np.ones(rows.sum()), at[rows]])
        V = sigma**2 * np.eye(rows.sum())
        if use_re:
            V = V + Zi @ np.diag([sd_b**2, sd_u**2]) @ Zi.T
        Vi_X = np.linalg.solve(V, Xc[rows])
        P += Xc[rows].T @ Vi_X
        h += Vi_X.T @ design.y[rows]
    cov_r = np.linalg.inv(P)
    return T @ cov_r @ h, T @ cov_r @ T.T


def _mcmc_summary(draws: np.ndarray) -> dict[str, float]:
    """mean, sd and their MCSEs of draws shaped (chain, draw)."""
    return {
        "mean": float(draws.mean()),
        "sd": float(draws.std(ddof=1)),
        "mcse_mean": float(az.mcse(draws, method="mean")),
        "mcse_sd": float(az.mcse(draws, method="sd")),
    }


def _theta_draws(res) -> tuple[list[str], np.ndarray]:
    """Names and draws (chain, draw, term) of alpha then beta."""
    post = res.posterior
    names = [f"alpha:{t}" for t in post["control_term"].values]
    names += [f"beta:{t}" for t in post["term"].values]
    return names, np.concatenate([post["alpha"].values, post["beta"].values], axis=-1)


# ------------------------------------------------------------------------------ 1. conjugate
KNOWN = dict(sigma=1.0, sd_b=0.6, sd_u=0.5)
CONJ_PRIORS = {
    "intercept": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
    "alpha": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    # informative (prior sd ~ the data's standard error) with a non-zero mean, so that a
    # posterior that ignores the prior is detectably wrong
    "beta": {"dist": "normal", "mu": 0.3, "sigma": 0.15},
    **{k: {"dist": "fixed", "value": v} for k, v in KNOWN.items()},
}


@pytest.fixture(scope="module")
def conjugate_fit():
    sim = hm.MRTSimulation(
        n_participants=20, n_decisions=20, sd_participant=0.6, sd_slope=0.5, endogenous=False
    )
    data = sim.mrt_data(seed=4)
    model = BayesMRT(
        "~ S", "~ S", random_slope=True, priors=CONJ_PRIORS,
        draws=2000, tune=1000, chains=4, progress=False, seed=7,
    )  # fmt: skip
    return model.fit(data)


def test_conjugate_posterior_is_exact(conjugate_fit):
    res = conjugate_fit
    names, th = _theta_draws(res)
    mean, cov = _conjugate(res.design, CONJ_PRIORS, **KNOWN)
    sd = np.sqrt(np.diag(cov))
    rows = []
    for k, name in enumerate(names):
        s = _mcmc_summary(th[..., k])
        rows.append(
            (name, s["mean"], mean[k], (s["mean"] - mean[k]) / s["mcse_mean"],
             s["sd"], sd[k], (s["sd"] - sd[k]) / s["mcse_sd"])
        )  # fmt: skip
    z = np.array([[r[3], r[6]] for r in rows])
    msg = "\n".join(f"{r[0]:16s} mean {r[1]:+.4f} exact {r[2]:+.4f} z {r[3]:+.2f} | "
                    f"sd {r[4]:.4f} exact {r[5]:.4f} z {r[6]:+.2f}" for r in rows)  # fmt: skip
    print(msg)
    assert np.all(np.abs(z) < Z), msg
    # the fixed variances are reported as such, with no spurious diagnostics
    tab = res.table().set_index("term")
    for k, v in KNOWN.items():
        assert tab.loc[k, "estimate"] == pytest.approx(v) and tab.loc[k, "se"] < 1e-12
    assert res.diagnostics()["messages"] == []
    assert "held fixed by the priors" in str(res.summary())


@pytest.mark.parametrize(
    "wrong", [dict(use_prior=False), dict(use_re=False), dict(sd_u=0.0), dict(sigma=1.3)]
)
def test_conjugate_check_rejects_a_wrong_posterior(conjugate_fit, wrong):
    """The check above has power: the MCMC draws are far from a wrong closed form."""
    res = conjugate_fit
    names, th = _theta_draws(res)
    kw = {**KNOWN, **wrong}
    mean, cov = _conjugate(res.design, CONJ_PRIORS, **kw)
    sd = np.sqrt(np.diag(cov))
    worst = 0.0
    for k in range(len(names)):
        s = _mcmc_summary(th[..., k])
        worst = max(
            worst,
            abs(s["mean"] - mean[k]) / s["mcse_mean"],
            abs(s["sd"] - sd[k]) / s["mcse_sd"],
        )
    print(f"wrong posterior {wrong}: worst |z| = {worst:.1f}")
    assert worst > WRONG, worst


# ------------------------------------------------------------------------------ 2. Gibbs
GIBBS_PRIORS = {
    "intercept": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
    "alpha": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
    "beta": {"dist": "normal", "mu": 0.0, "sigma": 0.5},
    "sd_b": {"dist": "halfnormal", "sigma": 0.5},
    "sd_u": {"dist": "halfnormal", "sigma": 0.5},
    "sigma": {"dist": "halfnormal", "sigma": 1.0},
}


def _scale_given(ss: float, n: int, prior_sd: float, rng: np.random.Generator) -> float:
    """Exact draw of a standard deviation s given n normal deviations with sum of squares ss
    under a HalfNormal(prior_sd) prior: the density of tau = s^2 is
    InvGamma((n - 1) / 2, ss / 2)(tau) * exp(-tau / (2 prior_sd^2)); rejection sampling from the
    inverse gamma, accepting with probability exp(-tau / (2 prior_sd^2)) <= 1."""
    while True:
        tau = (ss / 2.0) / rng.gamma((n - 1) / 2.0)
        if rng.random() < np.exp(-tau / (2.0 * prior_sd**2)):
            return float(np.sqrt(tau))


def gibbs(design, pri, *, iters: int, burn: int, chains: int, seed: int) -> dict[str, np.ndarray]:
    """Blocked Gibbs sampler of the Gaussian model with random intercepts and slopes.

    Block 1: (r, b, u) | sigma, sd_b, sd_u is Gaussian (r the centred coefficients with their
    normal prior, b_i ~ N(0, sd_b^2), u_i ~ N(0, sd_u^2)): one joint draw via the Cholesky
    factor of its precision. Block 2: sigma | residuals, sd_b | b, sd_u | u, each exact
    (:func:`_scale_given`). Returns draws (chain, draw) of theta = T r, the scales, b, u.
    """
    Xc, T, at = _centring(design)
    m, s = _prior_vectors(pri, design)
    y, g, N = design.y, design.group, design.n_groups
    n, d = Xc.shape
    E = np.zeros((n, N))
    E[np.arange(n), g] = 1.0
    W = np.column_stack([Xc, E, E * at[:, None]])
    WtW, Wty = W.T @ W, W.T @ y
    prior_prec_r, prior_h = 1 / s**2, m / s**2
    ss = np.random.SeedSequence(seed).spawn(chains)
    out = {k: np.empty((chains, iters)) for k in ("sigma", "sd_b", "sd_u")}
    out["theta"] = np.empty((chains, iters, d))
    out["b"] = np.empty((chains, iters, N))
    out["u"] = np.empty((chains, iters, N))
    for c in range(chains):
        rng = np.random.default_rng(ss[c])
        sigma, sd_b, sd_u = 1.0, 0.5, 0.5
        for it in range(burn + iters):
            prec = WtW / sigma**2
            prec[np.diag_indices(d)] += prior_prec_r
            idx = np.arange(d, d + N)
            prec[idx, idx] += 1 / sd_b**2
            prec[idx + N, idx + N] += 1 / sd_u**2
            h = Wty / sigma**2
            h[:d] += prior_h
            L = np.linalg.cholesky(prec)
            mean = np.linalg.solve(L.T, np.linalg.solve(L, h))
            x = mean + np.linalg.solve(L.T, rng.standard_normal(d + 2 * N))
            r, b, u = x[:d], x[d : d + N], x[d + N :]
            resid = y - W @ x
            sigma = _scale_given(resid @ resid, n, pri["sigma"]["sigma"], rng)
            sd_b = _scale_given(b @ b, N, pri["sd_b"]["sigma"], rng)
            sd_u = _scale_given(u @ u, N, pri["sd_u"]["sigma"], rng)
            if it >= burn:
                k = it - burn
                out["theta"][c, k] = T @ r
                out["b"][c, k], out["u"][c, k] = b, u
                out["sigma"][c, k], out["sd_b"][c, k], out["sd_u"][c, k] = sigma, sd_b, sd_u
    return out


def test_posterior_agrees_with_an_independent_gibbs_sampler():
    sim = hm.MRTSimulation(
        n_participants=24, n_decisions=25, sd_participant=0.6, sd_slope=0.5, endogenous=False
    )
    data = sim.mrt_data(seed=8)
    res = BayesMRT(
        "~ S", "~ S", random_slope=True, priors=GIBBS_PRIORS,
        draws=2000, tune=1000, chains=4, progress=False, seed=3,
    ).fit(data)  # fmt: skip
    ref = gibbs(res.design, GIBBS_PRIORS, iters=4000, burn=500, chains=2, seed=5)
    names, th = _theta_draws(res)
    post = res.posterior
    pairs = [(n, th[..., k], ref["theta"][..., k]) for k, n in enumerate(names)]
    pairs += [(v, post[v].values, ref[v]) for v in ("sigma", "sd_b", "sd_u")]
    pairs += [(f"{v}[0]", post[v].values[..., 0], ref[v][..., 0]) for v in ("b", "u")]
    lines, bad = [], []
    for name, a, b in pairs:
        sa, sb = _mcmc_summary(a), _mcmc_summary(b)
        zm = (sa["mean"] - sb["mean"]) / np.hypot(sa["mcse_mean"], sb["mcse_mean"])
        zs = (sa["sd"] - sb["sd"]) / np.hypot(sa["mcse_sd"], sb["mcse_sd"])
        lines.append(
            f"{name:16s} mean {sa['mean']:+.4f} gibbs {sb['mean']:+.4f} z {zm:+.2f} | "
            f"sd {sa['sd']:.4f} gibbs {sb['sd']:.4f} z {zs:+.2f}"
        )
        if abs(zm) >= Z or abs(zs) >= Z:
            bad.append(name)
    print("\n".join(lines))
    assert not bad, "\n".join(lines)


# ------------------------------------------------------------------------------ the cache
@contextmanager
def _quiet():
    """Few draws on purpose: the convergence warnings are not what is tested here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_bernoulli_refit_reuses_the_compiled_model_and_the_new_outcome():
    """A Bernoulli model refitted to a new outcome on the same design reuses the compiled
    model (SBC, simulation studies) and gives the draws a fresh compilation gives."""
    data = hm.MRTSimulation(n_participants=12, n_decisions=15).mrt_data(seed=2)
    frame = data.frame.copy()
    frame["y"] = (frame["y"] > frame["y"].quantile(0.7)).astype(float)
    frame2 = frame.assign(y=1.0 - frame["y"])
    sim = hm.MRTSimulation(n_participants=12, n_decisions=15)
    d1, d2 = sim.to_mrt_data(frame), sim.to_mrt_data(frame2)
    kw = dict(family="bernoulli", draws=100, tune=100, chains=1, progress=False, seed=1)
    bayes_model._COMPILED.clear()
    with _quiet():
        a1 = BayesMRT("~ 1", "~ S", **kw).fit(d1)
        n_cached = len(bayes_model._COMPILED)
        a2 = BayesMRT("~ 1", "~ S", **kw).fit(d2)
        assert len(bayes_model._COMPILED) == n_cached == 1  # reused, not recompiled
        again = BayesMRT("~ 1", "~ S", **kw).fit(d1)
    np.testing.assert_array_equal(a1.posterior["alpha"].values, again.posterior["alpha"].values)
    # the refit saw the flipped outcome: the intercept's sign flips
    i1 = float(a1.posterior["alpha"].sel(control_term="Intercept").mean())
    i2 = float(a2.posterior["alpha"].sel(control_term="Intercept").mean())
    assert np.sign(i1) == -np.sign(i2) and abs(i1 + i2) < 0.5 * abs(i1 - i2)
    # another design of the same shape does not reuse it
    other = hm.MRTSimulation(n_participants=12, n_decisions=15).mrt_data(seed=3)
    of = other.frame.copy()
    of["y"] = (of["y"] > of["y"].quantile(0.7)).astype(float)
    with _quiet():
        BayesMRT("~ 1", "~ S", **kw).fit(sim.to_mrt_data(of))
    assert len(bayes_model._COMPILED) == 2


# ------------------------------------------------------------------------------ fixed priors
@pytest.mark.parametrize(
    ("priors", "match"),
    [
        ({"beta": {"dist": "fixed", "value": 0.2}}, r"'beta'.*standard deviation.*'normal'"),
        ({"sigma": {"dist": "fixed", "value": 0.0}}, r"'sigma'.*'value' must be positive"),
        ({"sd_b": {"dist": "fixed", "sigma": 1.0}}, r"'sd_b'.*takes parameters \('value',\)"),
    ],
)
def test_fixed_prior_misuse_names_the_key(priors, match):
    data = hm.MRTSimulation(n_participants=6, n_decisions=8).mrt_data(seed=1)
    with pytest.raises(hm.errors.PriorError, match=match) as err:
        BayesMRT("~ 1", priors=priors).build(data)
    assert err.value.key == next(iter(priors))


# ------------------------------------------------------------------------------ SBC smoke
@pytest.mark.slow
def test_sbc_smoke():
    """20 replicates of the SBC study (tests/validation/sbc.py; the study runs >= 200): the
    machinery runs end to end and the ranks are not grossly non-uniform (KS p > 0.001)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent / "validation" / "sbc.py"
    spec = importlib.util.spec_from_file_location("sbc_study", path)
    sbc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sbc)
    sim, data = sbc.template()
    built = sbc.model_for("gaussian").build(data)
    recs = [sbc.one("gaussian", rep, sim, data, built) for rep in range(20)]
    for key in recs[0]["ranks"]:
        ranks = np.array([r["ranks"][key] for r in recs])
        assert ranks.min() >= 0 and ranks.max() <= sbc.L
        assert sbc.uniformity(ranks)[1] > 0.001, key
