"""Check a self-contained HTML report in a real headless browser (Debian's chromium).

``check_html(path)`` opens the file in headless chromium through selenium + chromedriver and
returns a :class:`BrowserCheck`: the console errors (level SEVERE: ``console.error`` calls,
uncaught exceptions, failed loads), the images that did not render (``complete`` and
``naturalWidth > 0``), the page title and, when asked, a full-page PNG screenshot.

Console messages come from chromedriver's log API: the ``goog:loggingPrefs`` capability
``{"browser": "ALL"}`` and ``driver.get_log("browser")``.

Needs the ``chromium`` (or ``chromium-browser``) and ``chromedriver`` binaries on PATH
(Debian/Ubuntu: ``apt-get install chromium chromium-driver``; ``tools/ensure_browser.sh`` does
that) and the ``selenium`` package (the ``test`` extra). selenium is imported lazily, and the
binaries are passed explicitly, so Selenium Manager never tries to download a driver.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BrowserCheck", "BrowserUnavailable", "check_html", "find_browser"]

INSTALL_HINT = (
    "install Debian's chromium and its driver (as root: "
    "`apt-get install chromium chromium-driver`, or run tools/ensure_browser.sh) "
    "and selenium (`pip install 'hte_mrt[test]'`)"
)
MAX_SCREENSHOT_HEIGHT = 8000  # px; longer pages are cut, not scaled
WIDTH = 1200

_IMAGES_JS = """return Array.from(document.images)
    .map(i => [i.src.slice(0, 40), i.complete, i.naturalWidth]);"""
_ALL_LOADED_JS = """return document.readyState === 'complete'
    && Array.from(document.images).every(i => i.complete);"""


class BrowserUnavailable(RuntimeError):
    """chromium, chromedriver or selenium is missing; the message says how to install them."""


@dataclass
class BrowserCheck:
    """What the browser saw. ``ok`` is True when there is no console error and no broken image."""

    console_errors: list[str] = field(default_factory=list)
    images_total: int = 0
    images_broken: list[str] = field(default_factory=list)  # first 40 chars of each src
    title: str = ""
    screenshot: Path | None = None
    browser_version: str = ""

    @property
    def ok(self) -> bool:
        return not self.console_errors and not self.images_broken


def find_browser() -> tuple[str, str]:
    """Paths of (chromium, chromedriver); raises :class:`BrowserUnavailable` when missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None]
    if missing:
        raise BrowserUnavailable(f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}")
    return chromium, driver  # type: ignore[return-value]


def check_html(
    path: str | Path, screenshot: str | Path | None = None, timeout: float = 60
) -> BrowserCheck:
    """Load ``path`` in headless chromium; report console errors and broken images.

    ``screenshot``: where to save a full-page PNG (height capped at 8000 px), or None.
    ``timeout``: seconds allowed for the page (and its images) to load.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no HTML file at {path}")
    chromium, driver_path = find_browser()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as exc:
        raise BrowserUnavailable(f"selenium is not installed: {INSTALL_HINT}") from exc

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # needed as root and in most containers
        "--disable-gpu",
        "--disable-dev-shm-usage",  # small /dev/shm in containers crashes the renderer
        "--allow-file-access-from-files",
        "--hide-scrollbars",
        f"--window-size={WIDTH},800",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(timeout)
        driver.get(path.as_uri())
        WebDriverWait(driver, timeout).until(lambda d: d.execute_script(_ALL_LOADED_JS))
        images = driver.execute_script(_IMAGES_JS)
        result = BrowserCheck(
            console_errors=[
                e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"
            ],
            images_total=len(images),
            images_broken=[src for src, complete, width in images if not complete or width <= 0],
            title=driver.title,
            browser_version=str(driver.capabilities.get("browserVersion", "")),
        )
        if screenshot is not None:
            result.screenshot = _full_page_screenshot(driver, Path(screenshot))
        return result
    finally:
        driver.quit()


def _full_page_screenshot(driver, out: Path) -> Path:
    """Grow the window so the viewport holds the whole document, then save a PNG."""
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);"
    )
    # window chrome (outer - inner) is ~0 in headless mode but not guaranteed
    extra = driver.execute_script("return window.outerHeight - window.innerHeight;") or 0
    driver.set_window_size(WIDTH, min(int(height) + max(int(extra), 0), MAX_SCREENSHOT_HEIGHT))
    out.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(out)):
        raise RuntimeError(f"chromium could not save a screenshot to {out}")
    return out
