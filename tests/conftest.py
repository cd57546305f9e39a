"""Shared fixtures. Reference data live in ../shared/data (next to the repository).

Tests that need a headless browser (chromium + chromedriver + selenium) say so with the
``requires_browser`` marker (or by taking the ``requires_browser`` fixture)::

    @pytest.mark.requires_browser
    def test_report_renders(tmp_path):
        from hte_mrt.reports.browser import check_html
        ...

Without a browser such a test is SKIPPED with the reason (what is missing and how to install
it: ``tools/ensure_browser.sh`` as root), so ``make test`` works for a user who is not root.
With ``HTE_MRT_REQUIRE_BROWSER=1`` (set by ``.ci/run``) a missing browser FAILS the test
instead: in CI the browser checks are required.
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: parameters BayesResult.diagnostics() takes its worst R-hat / ESS over
DIAGNOSED = ("alpha", "beta", "sigma", "sd_b", "sd_u", "sd_c", "rho", "smooth_sd")


def shared_csv(name: str) -> pd.DataFrame:
    path = SHARED / name
    if not path.exists():
        pytest.fail(
            f"reference data {path} missing: the repository expects ../shared/data beside it"
        )
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def mimic():
    """MRTAnalysis' data_mimicHeartSteps (GPL; read from ../shared, never shipped)."""
    from hte_mrt import MRTData

    d = shared_csv("MRTAnalysis_data_mimicHeartSteps.csv")
    return MRTData(
        d,
        id="userid",
        time="decision_point",
        treatment="intervention",
        outcome="logstep_30min",
        prob=0.6,
        availability="avail",
    )


@pytest.fixture(scope="session")
def binary():
    """MRTAnalysis' data_binary."""
    from hte_mrt import MRTData

    d = shared_csv("MRTAnalysis_data_binary.csv")
    return MRTData(
        d,
        id="userid",
        time="time",
        treatment="A",
        outcome="Y",
        prob="rand_prob",
        availability="avail",
    )


@pytest.fixture(scope="session")
def heartsteps():
    from hte_mrt.data.datasets import heartsteps

    return heartsteps()


# ------------------------------------------------------------------------- browser tests
@cache
def browser_missing_reason() -> str | None:
    """Why the headless-browser checks cannot run here, or None when they can."""
    from hte_mrt.reports.browser import INSTALL_HINT, BrowserUnavailable, find_browser

    try:
        find_browser()
    except BrowserUnavailable as e:
        return str(e)
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed: {INSTALL_HINT}"
    return None


def browser_required() -> bool:
    """``HTE_MRT_REQUIRE_BROWSER=1``: a missing browser fails browser tests (CI)."""
    return os.environ.get("HTE_MRT_REQUIRE_BROWSER", "0").strip().lower() in ("1", "true", "yes")


def _need_browser() -> None:
    reason = browser_missing_reason()
    if reason is None:
        return
    if browser_required():
        pytest.fail(f"HTE_MRT_REQUIRE_BROWSER=1 but no headless browser: {reason}", pytrace=False)
    pytest.skip(f"needs a headless browser: {reason}")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "requires_browser: needs chromium + chromedriver + selenium; skipped when missing "
        "(failed under HTE_MRT_REQUIRE_BROWSER=1)",
    )


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_browser") is not None:
        _need_browser()


@pytest.fixture
def requires_browser():
    """Skip (or, under HTE_MRT_REQUIRE_BROWSER=1, fail) the test when no browser is installed."""
    _need_browser()


# ------------------------------------------------------------------ convergence assertions
def rhat_limit(min_ess: float, chains: int, n_params: int, alpha: float = 1e-4) -> float:
    """Largest max-R-hat a CONVERGED run reaches with probability ``alpha`` (family-wise).

    Derivation (split R-hat, Vehtari et al. 2021, as ArviZ computes it): each of the ``chains``
    chains is split in two, giving M = 2 chains sequences of n draws, and

        R^2 = ((n - 1)/n W + B/n) / W,

    with W the mean within-sequence variance (~ sigma^2) and B/n the variance of the M sequence
    means. When the chains have converged each sequence mean is sigma^2 / s-noisy, s = ESS / M
    the effective draws per sequence, so B/n ~ sigma^2/s chi2_{M-1}/(M-1) and

        R^2 <= 1 + chi2_{M-1}/((M - 1) s)      (dropping the -1/n term: conservative).

    The worst R-hat of a run is a maximum over ``n_params`` scalar parameters, each with a bulk
    (rank-normalized) and a folded (tail) R-hat: a Bonferroni split of ``alpha`` over those
    2 n_params statistics gives the quantile q. ``min_ess`` is the run's smallest ESS, so
    s = min_ess / M bounds every parameter's noise from above. Example: 2 chains, 5 parameters,
    ESS 340 (the binary model with 2 x 600 draws): q = chi2_3(1 - 1e-5) = 25.9, s = 85,
    limit 1.050; the 1.01 rule of thumb assumes ESS > 400 per parameter and 4 chains, and
    converged runs of that binary model exceeded it for 2 of 9 seeds (seed 1: 1.012, seed 9:
    1.014; ESS 308-374, no divergences).
    """
    from scipy.stats import chi2

    m = 2 * chains
    q = chi2.ppf(1.0 - alpha / (2 * n_params), m - 1)
    s = max(min_ess, 1.0) / m
    return math.sqrt(1.0 + q / ((m - 1) * s))


def assert_converged(
    result,
    *,
    ess_fraction: float = 0.1,
    max_divergences: int = 0,
    alpha: float = 1e-4,
) -> dict:
    """Assert that an MCMC result converged, with limits sized so that a converged run fails
    with probability <= ``alpha`` (:func:`rhat_limit`) while a run that has not converged
    fails. ``result``: a BayesResult. Three checks:

    * bulk and tail ESS >= ``ess_fraction`` x draws: a converged NUTS run of these models has
      ESS / draws of 0.3-1 (ESS estimates are within ~20% at these sizes), a stuck or too
      short run far less;
    * max R-hat <= :func:`rhat_limit` at the run's own ESS;
    * divergences <= ``max_divergences`` (0 by default: the models tested are reparameterized
      or collapsed, so a divergence is a geometry problem, not sampling noise).
    """
    d = result.diagnostics()
    post = result.posterior
    n_params = sum(int(post[v].size // (post.sizes["chain"] * post.sizes["draw"]))
                   for v in DIAGNOSED if v in post)  # fmt: skip
    ess = min(d["min_ess_bulk"], d["min_ess_tail"])
    floor = ess_fraction * d["total_draws"]
    limit = rhat_limit(ess, d["chains"], n_params, alpha)
    assert ess >= floor, f"ESS {ess:.0f} < {floor:.0f} ({ess_fraction:.0%} of the draws): {d}"
    assert d["max_r_hat"] <= limit, f"R-hat {d['max_r_hat']:.4f} > {limit:.4f}: {d}"
    assert d["divergences"] <= max_divergences, f"{d['divergences']} divergences: {d}"
    return {**d, "rhat_limit": limit, "n_params": n_params}


# ------------------------------------------------------------------ run header
def pytest_report_header(config):
    """Versions and thread pools that seeded MCMC draws depend on (bit-identical draws need the
    same library builds; thread counts and load do not matter, tests/test_reproducibility.py)."""
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("numpy", "pymc", "pytensor", "nutpie", "numba"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg} -")
    try:
        from threadpoolctl import threadpool_info

        pools = ", ".join(f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info())
    except Exception:  # pragma: no cover - threadpoolctl missing or failing
        pools = "?"
    return [f"sampler stack: {', '.join(parts)}; cpus {os.cpu_count()}; thread pools {pools}"]
