"""Prototype benchmark: collapsed vs row-level hierarchical Gaussian MRT model (nutpie).

    python benchmarks/bayes_prototype.py [--big] [--no-row] [--clusters K] [--sampler nutpie]

Simulates N participants x T decisions, fits the collapsed model (random effects integrated out)
and the row-level reference model, and reports total wall time (model build + compile +
sampling), ESS/s, minimum bulk ESS and maximum R-hat over the fixed effects and variance
parameters. ``--big`` adds the 2,000 x 300 design (collapsed only unless --big-row).
"""

from __future__ import annotations

import argparse
import time

import arviz as az
import numpy as np

from hte_mrt.estimators.bayes import collapsed_stats
from hte_mrt.estimators.bayes.collapsed import _build_collapsed_model as build_collapsed_model
from hte_mrt.estimators.bayes.rowlevel import _build_rowlevel_model as build_rowlevel_model


def simulate(N: int, T: int, *, K: int = 0, seed: int = 1, avail: float = 0.8):
    """Heterogeneous-effect MRT: g = [1, x, t/T], f = [1, x], At = A - p, p in {0.4, 0.6}."""
    rng = np.random.default_rng(seed)
    gid = np.repeat(np.arange(N), T)
    tt = np.tile(np.arange(T), N) / T
    x = rng.normal(size=N * T)
    p = np.where(rng.random(N * T) < 0.5, 0.4, 0.6)
    A = (rng.random(N * T) < p).astype(float)
    At = A - p
    alpha = np.array([0.5, 0.3, -0.2])
    beta = np.array([0.3, 0.1])
    sd_b, sd_u, sd_c, sd = 0.8, 0.3, 0.5, 1.0
    b = rng.normal(0, sd_b, N)
    u = rng.normal(0, sd_u, N)
    cl = rng.integers(0, K, N) if K else None
    X = np.column_stack([np.ones(N * T), x, tt, At, At * x])
    y = X @ np.r_[alpha, beta] + b[gid] + At * u[gid] + rng.normal(0, sd, N * T)
    if K:
        y += rng.normal(0, sd_c, K)[cl][gid]
    keep = rng.random(N * T) < avail
    names = ["a_int", "a_x", "a_t", "b_int", "b_x"]
    return X[keep], At[keep], y[keep], gid[keep], cl, names


def fit(model, *, draws, tune, chains, seed, sampler="nutpie"):
    import pymc as pm

    with model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            nuts_sampler=sampler,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )


def report(label, dt, wall, var_names):
    summ = az.summary(dt, var_names=var_names, kind="diagnostics")
    ess = summ["ess_bulk"].astype(float)
    rhat = summ["r_hat"].astype(float)
    beta_rows = [r for r in summ.index if r.startswith("theta[b_")]
    div = int(np.asarray(dt["sample_stats"]["diverging"]).sum())
    print(
        f"{label:28s} wall {wall:7.2f}s  min ESS_bulk {ess.min():7.0f} ({ess.idxmin()})"
        f" (beta {ess[beta_rows].min():6.0f})  min ESS/s {ess.min() / wall:7.1f}"
        f"  max R-hat {rhat.max():.4f}  divergences {div}"
    )
    return summ


def run(
    N, T, *, K, row, draws, tune, chains, seed, sampler, impl="kernel", correlated=False,
    row_centered=False,
):  # fmt: skip
    X, At, y, g, cl, names = simulate(N, T, K=K, seed=seed)
    print(f"\n== {N} participants x {T} decisions ({len(y)} available rows), clusters={K} ==")
    var = (
        ["theta", "sd", "sd_b", "sd_u"] + (["sd_c"] if K else []) + (["rho"] if correlated else [])
    )
    t0 = time.perf_counter()
    stats = collapsed_stats(X, At, y, g, cl, coef_names=names)
    t_stats = time.perf_counter() - t0
    model = build_collapsed_model(stats, impl=impl, correlated=correlated)
    dt = fit(model, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler)
    wall_c = time.perf_counter() - t0
    print(f"  (sufficient statistics {t_stats:.3f}s)")
    sc = report(f"collapsed/{impl} [{sampler}]", dt, wall_c, var)
    if row:
        t0 = time.perf_counter()
        model = build_rowlevel_model(
            X, At, y, g, cl, coef_names=names, correlated=correlated, centered=row_centered
        )
        dt_r = fit(model, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler)
        wall_r = time.perf_counter() - t0
        label = "row-level/" + ("centred" if row_centered else "non-centred")
        sr = report(f"{label} [{sampler}]", dt_r, wall_r, var)
        s_c = az.summary(dt, var_names=var, kind="stats")
        s_r = az.summary(dt_r, var_names=var, kind="stats")
        diff = (s_c["mean"].astype(float) - s_r["mean"].astype(float)).abs()
        print("  |mean_c - mean_r| / sd_r, max:", float((diff / s_r["sd"].astype(float)).max()))
        del sr
    return sc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", action="store_true", help="also 2000 x 300")
    ap.add_argument("--big-row", action="store_true", help="also the row-level model on 2000x300")
    ap.add_argument("--no-row", action="store_true")
    ap.add_argument("--clusters", type=int, default=0)
    ap.add_argument("--sampler", default="nutpie")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--impl", default="kernel", choices=["kernel", "graph"])
    ap.add_argument("--correlated", action="store_true")
    ap.add_argument("--row-centered", action="store_true")
    a = ap.parse_args()
    kw = dict(
        draws=a.draws, tune=a.tune, chains=a.chains, seed=a.seed, sampler=a.sampler,
        impl=a.impl, correlated=a.correlated, row_centered=a.row_centered,
    )  # fmt: skip
    run(60, 112, K=a.clusters, row=not a.no_row, **kw)
    if a.big:
        run(2000, 300, K=a.clusters, row=a.big_row, **kw)


if __name__ == "__main__":
    main()
