"""The documentation site (``docs/``) builds with warnings as errors and renders in a browser.

The site is built once per test session, the way ``make docs`` builds it (Sphinx, ``-W
--keep-going``) but into ``docs/_build/test-html`` with ``HTE_MRT_QUICK=1`` (small draws) and
``HTE_MRT_DOCS_EXECUTE=force``: every notebook of ``notebooks/`` and every page with code cells
is executed afresh against this checkout's ``src/``. This is the only place where the notebooks
run in the tests (``tests/test_notebooks.py`` checks their jupytext pairing and cleanliness).

The browser test opens the landing page, one API page and one executed notebook page in headless
chromium (``hte_mrt.reports.browser.check_html``), asserts no console errors and that every image
renders, and writes full-page screenshots to ``docs/_build/test-html/_screenshots/``. It skips,
saying why, when chromium / chromedriver / selenium are missing (``make test`` installs them as
root through ``tools/ensure_browser.sh``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hte_mrt as hm

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OUT = DOCS / "_build" / "test-html"
SCREENSHOTS = OUT / "_screenshots"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
PAGES = {
    "landing": "index.html",
    "api": "api/generated/hte_mrt.wcls.html",
    "notebook": "examples/01_heartsteps_primary.html",
}
BUILD_TIMEOUT = 1800  # seconds; the quick build takes 3 to 4 minutes on 2 busy cores


@pytest.fixture(scope="module")
def site() -> dict:
    """Build the site once (quick mode, notebooks executed); return the build's log and time."""
    try:
        import myst_nb  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"the docs extra is not installed ({exc}): pip install -e '.[docs]'")
    env = dict(os.environ)
    env.update(
        HTE_MRT_QUICK="1",
        HTE_MRT_DOCS_EXECUTE="force",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])]),
    )
    env.pop("MPLBACKEND", None)
    warning_file = OUT.parent / "test-warnings.log"
    warning_file.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
        "-E", "-a",  # read and write every page afresh: every notebook is executed again
        "-w", str(warning_file),  # Sphinx's own warnings and errors, without the kernels' stderr
        "-d", str(OUT.parent / "test-doctrees"), str(DOCS), str(OUT),
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT
    )
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"sphinx-build -W failed after {seconds:.0f} s:\n{log[-6000:]}"
    print(f"docs built in {seconds:.0f} s")
    warnings = warning_file.read_text() if warning_file.exists() else ""
    return {"log": log, "warnings": warnings, "seconds": seconds}


def test_site_builds_without_warnings(site):
    # Sphinx's warning file, not the build's stderr: the notebook kernels inherit that stderr, and
    # ipykernel / tornado log there (the TCP notice at start, now and then an "Uncaught exception
    # in ZMQStream callback" while a finished kernel shuts down). A kernel that fails a cell fails
    # the build itself (nb_execution_raise_on_error), so nothing is lost by leaving them out.
    warnings = [line for line in site["warnings"].splitlines() if line.strip()]
    assert not warnings, "\n".join(warnings)
    kernel_noise = [
        line for line in site["log"].splitlines() if re.search(r"\bWARNING\b|\bERROR\b", line)
    ]
    print(f"{len(kernel_noise)} kernel log lines left out of the check", *kernel_noise, sep="\n")
    for page in ["index.html", "getting-started.html", "estimands.html", "from-mrtanalysis.html"]:
        assert (OUT / page).is_file(), page


def test_every_public_name_has_an_api_page(site):
    public = [n for n in hm.__all__ if not n.startswith("_")]
    missing = [n for n in public if not (OUT / "api" / "generated" / f"hte_mrt.{n}.html").is_file()]
    assert not missing, f"no API page for {missing}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_page_is_executed(site, name):
    """Each worked example ran: it has outputs and no error output."""
    html = (OUT / "examples" / f"{name}.html").read_text()
    assert "cell_output" in html, f"{name}: no cell outputs on the page"
    assert "Traceback" not in html, f"{name}: an error output on the page"
    if name != "03_tassh_cate":  # every other example draws figures
        assert re.search(r'<img[^>]+src="\.\./_images/', html), f"{name}: no figure"


def test_pages_render_in_browser(site, requires_browser):
    from hte_mrt.reports.browser import check_html

    problems = {}
    for label, page in PAGES.items():
        shot = SCREENSHOTS / f"{label}.png"
        check = check_html(OUT / page, screenshot=shot)
        assert check.screenshot is not None and shot.stat().st_size > 10_000, label
        if not check.ok:
            problems[label] = (check.console_errors, check.images_broken)
        if label == "notebook":
            assert check.images_total >= 2, f"{page}: {check.images_total} images"
    assert not problems, problems


def test_docs_code_uses_the_public_surface():
    """Code on the pages uses `import hte_mrt as hm` and hm.<name> only (no module paths)."""
    fence = re.compile(r"```(?:python|\{code-cell\}[^\n]*)\n(.*?)```", re.S)
    internal = re.compile(r"^\s*(from\s+hte_mrt\b|import\s+hte_mrt\.)|\bhte_mrt\.\w", re.M)
    offenders = {}
    for page in sorted(DOCS.rglob("*.md")):
        if "_build" in page.parts or "examples" in page.parts:
            continue
        bad = [b for b in fence.findall(page.read_text()) if internal.search(b)]
        if bad:
            offenders[str(page.relative_to(DOCS))] = bad
    assert not offenders, offenders
