#!/usr/bin/env bash
# Make sure Debian's `chromium` is installed for the browser tests (tests/test_ui_browser.py)
# and print its path.
#
#   export MATFORGE_CHROMIUM=$(bash scripts/ci_chromium.sh)
#
# Idempotent: installs the Debian package only when no `chromium` is on PATH. Playwright's own
# browser download (`playwright install`, from a CDN) is never used. Needs root to install.
# Progress goes to stderr; stdout carries nothing but the path.
set -euo pipefail

log() { echo "ci_chromium: $*" >&2; }

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        log "chromium is missing and installing it needs root"
        exit 1
    fi
    log "installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq chromium >&2
fi

CHROMIUM=$(command -v chromium)
# Prove it starts headless before handing it out.
if ! timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1; then
    log "$CHROMIUM does not start headless"
    exit 1
fi
echo "$CHROMIUM"
