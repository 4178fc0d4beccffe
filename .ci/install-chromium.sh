#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/test_documents.py renders an HTML invoice
# in real headless Chromium). Idempotent and quiet: does nothing when /usr/bin/chromium exists, else
# installs the Debian packages chromium, fonts-liberation and fonts-droid-fallback (Latin and CJK
# fonts, so that screenshots of invoices are readable) with apt-get, non-interactively, without
# recommended extras. Prints apt's output only on failure. Needs root, or passwordless sudo.
# chromium-driver is not needed: the tests drive the browser with --dump-dom and --screenshot.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: $CHROMIUM is missing and apt-get is not available (not a Debian-like system);" \
         "install Chromium so that $CHROMIUM runs" >&2
    exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "install-chromium: $CHROMIUM is missing; installing it needs root (or passwordless sudo):" \
             "run 'sudo $0'" >&2
        exit 1
    fi
fi

log=$(mktemp "${TMPDIR:-/tmp}/install-chromium.XXXXXX.log")
trap 'rm -f "$log"' EXIT
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300)

echo "install-chromium: installing Debian's chromium (one-off, takes a minute)..." >&2
packages=(chromium fonts-liberation fonts-droid-fallback)
if ! { "${apt[@]}" update && "${apt[@]}" install --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-chromium: apt-get failed (output above)" >&2
    exit 1
fi

if ! "$CHROMIUM" --version >/dev/null 2>&1; then
    echo "install-chromium: installed, but '$CHROMIUM --version' fails:" >&2
    "$CHROMIUM" --version >&2 || true
    exit 1
fi
echo "install-chromium: $("$CHROMIUM" --version 2>/dev/null)" >&2
