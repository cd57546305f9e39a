#!/usr/bin/env bash
# Make sure a headless browser for the report checks is present: Debian's chromium + chromedriver.
#
# Idempotent: exits 0 at once when both are already on PATH. Otherwise, as root on a Debian-like
# system, installs them with apt-get. When it cannot (not root, no apt-get, the install failed) it
# explains what to install and:
#   * exits 0 by default: the browser tests are then SKIPPED with that reason (tests/conftest.py,
#     the `requires_browser` marker), so `make test` works for a user who is not root;
#   * exits 1 when HTE_MRT_REQUIRE_BROWSER=1 (set by .ci/run): in CI the browser is required.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
have_browser() { { have chromium || have chromium-browser; } && have chromedriver; }
required() { [[ "${HTE_MRT_REQUIRE_BROWSER:-0}" =~ ^(1|true|yes)$ ]]; }

if have_browser; then
    exit 0
fi

why=""
if [[ "$(id -u)" -ne 0 ]]; then
    why="not running as root, so chromium cannot be installed here"
elif ! have apt-get; then
    why="apt-get is not available (not a Debian-like system)"
else
    echo "ensure_browser: installing chromium and chromium-driver with apt-get" >&2
    if apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
        && have_browser; then
        exit 0
    fi
    why="apt-get could not install chromium and chromium-driver (offline? other package names?)"
fi

cat >&2 <<MSG
ensure_browser: no headless browser: ${why}.
chromium and chromedriver are needed for the report browser checks. Install them, e.g. on
Debian/Ubuntu (as root):
    apt-get install chromium chromium-driver
or put a chromium (or chromium-browser) binary and a matching chromedriver on PATH.
MSG
if required; then
    echo "ensure_browser: HTE_MRT_REQUIRE_BROWSER=1: the browser tests are required; stopping." >&2
    exit 1
fi
echo "ensure_browser: the browser tests will be skipped (set HTE_MRT_REQUIRE_BROWSER=1 to require them)." >&2
exit 0
