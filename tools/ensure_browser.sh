#!/usr/bin/env bash
# Make sure a headless browser for the report checks is present: Debian's chromium + chromedriver.
# Idempotent: exits 0 at once when both are already on PATH. Otherwise installs them with apt-get
# when running as root on a Debian-like system, else explains what to install and exits 1.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
have_browser() { { have chromium || have chromium-browser; } && have chromedriver; }

if have_browser; then
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && have apt-get; then
    echo "ensure_browser: installing chromium and chromium-driver with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    if have_browser; then
        exit 0
    fi
    echo "ensure_browser: apt-get finished but chromium/chromedriver are still not on PATH" >&2
    exit 1
fi

cat >&2 <<'MSG'
ensure_browser: chromium and chromedriver are needed for the report browser checks.
Install them, e.g. on Debian/Ubuntu (as root):
    apt-get install chromium chromium-driver
or put a chromium (or chromium-browser) binary and a matching chromedriver on PATH.
MSG
exit 1
