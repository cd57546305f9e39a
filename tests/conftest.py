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

import os
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
