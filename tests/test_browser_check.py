"""Self-contained HTML reports checked in a real headless browser (Debian's chromium).

Needs chromium + chromedriver (``make test`` runs tools/ensure_browser.sh first) and selenium;
the tests that open a page carry ``requires_browser`` (tests/conftest.py): skipped without a
browser, failed under ``HTE_MRT_REQUIRE_BROWSER=1`` (CI). Screenshots go to pytest's tmp_path:
tests write nothing into the source tree.
"""

from __future__ import annotations

import base64
import io

import pytest

from hte_mrt.reports.browser import check_html

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60">'
    '<rect width="120" height="60" fill="#4c72b0"/>'
    '<text x="10" y="35" fill="white" font-size="16">SVG ok</text></svg>'
)


def _png_data_uri() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
    ax.plot([0, 1, 2, 3], [0.1, 0.4, 0.2, 0.5], marker="o")
    ax.set_title("Effect curve")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<link rel="icon" href="data:,"></head>'  # no favicon request (it would 404 on file://)
        f"<body>{body}</body></html>\n"
    )


@pytest.mark.requires_browser
def test_self_contained_report_renders(tmp_path):
    svg_uri = "data:image/svg+xml;base64," + base64.b64encode(SVG.encode()).decode("ascii")
    body = (
        "<h1>Browser check</h1>"
        "<table><tr><th>term</th><th>estimate</th></tr>"
        "<tr><td>Intercept</td><td>0.13</td></tr></table>"
        f'<img alt="matplotlib figure" src="{_png_data_uri()}">'
        f'<img alt="svg figure" src="{svg_uri}">'
    )
    html = tmp_path / "report.html"
    html.write_text(_page("Browser check", body), encoding="utf-8")

    res = check_html(html, screenshot=tmp_path / "shot.png")

    assert res.console_errors == []
    assert res.images_total == 2
    assert res.images_broken == []
    assert res.ok
    assert res.title == "Browser check"
    assert res.browser_version
    assert res.screenshot is not None and res.screenshot.is_file()
    data = res.screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1024


@pytest.mark.requires_browser
def test_broken_image_and_console_error_are_reported(tmp_path):
    body = (
        "<h1>Broken</h1>"
        '<img alt="broken" src="data:image/png;base64,AAAA">'
        '<script>console.error("boom")</script>'
    )
    html = tmp_path / "broken.html"
    html.write_text(_page("Broken", body), encoding="utf-8")

    res = check_html(html)

    assert res.images_total == 1
    assert len(res.images_broken) == 1
    assert res.images_broken[0].startswith("data:image/png;base64,AAAA")
    assert any("boom" in msg for msg in res.console_errors), res.console_errors
    assert not res.ok
    assert res.screenshot is None


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        check_html(tmp_path / "nope.html")


def test_missing_browser_skips_with_the_reason(monkeypatch):
    """Without chromium the helper gives a reason that says what to install."""
    import tests.conftest as cf
    from hte_mrt.reports import browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    cf.browser_missing_reason.cache_clear()
    try:
        reason = cf.browser_missing_reason()
        assert reason is not None and "chromium" in reason and "apt-get install" in reason
        monkeypatch.delenv("HTE_MRT_REQUIRE_BROWSER", raising=False)
        with pytest.raises(pytest.skip.Exception, match="needs a headless browser"):
            cf._need_browser()
        monkeypatch.setenv("HTE_MRT_REQUIRE_BROWSER", "1")
        with pytest.raises(pytest.fail.Exception, match="HTE_MRT_REQUIRE_BROWSER=1"):
            cf._need_browser()
    finally:
        cf.browser_missing_reason.cache_clear()
