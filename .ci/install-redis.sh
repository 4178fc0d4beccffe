#!/usr/bin/env bash
# Installs Debian's redis-server for the Celery topology tests (tests/e2e/test_celery_topology.py runs
# a real Redis broker on loopback, as docker-compose.yaml's `redis` service). Idempotent and quiet:
# does nothing when /usr/bin/redis-server exists, else installs the Debian package redis-server with
# apt-get, non-interactively, without recommended extras. The package's own system service is neither
# needed nor wanted: the tests start redis-server themselves, on 127.0.0.1 and a port of their own,
# with a config file of their own; the service is disabled and stopped when the package started it.
# Prints apt's output only on failure. Needs root, or passwordless sudo.
set -euo pipefail

REDIS=/usr/bin/redis-server

if [ -x "$REDIS" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-redis: $REDIS is missing and apt-get is not available (not a Debian-like system);" \
         "install Redis so that $REDIS runs (or set RAFAY_REDIS_SERVER to a redis-server binary)" >&2
    exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "install-redis: $REDIS is missing; installing it needs root (or passwordless sudo):" \
             "run 'sudo $0'" >&2
        exit 1
    fi
fi

log=$(mktemp "${TMPDIR:-/tmp}/install-redis.XXXXXX.log")
trap 'rm -f "$log"' EXIT
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300)

echo "install-redis: installing Debian's redis-server (one-off)..." >&2
# policy-rc.d: without systemd (containers, CI) the package's init script would start a server on
# port 6379; exit code 101 tells invoke-rc.d not to start any service during the install.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    "${as_root[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    own_policy=1
fi
status=0
{ "${apt[@]}" update && "${apt[@]}" install --no-install-recommends redis-server; } >"$log" 2>&1 || status=$?
if [ "$own_policy" -eq 1 ]; then
    "${as_root[@]}" rm -f "$policy"
fi
if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    echo "install-redis: apt-get failed (output above)" >&2
    exit 1
fi
# Where systemd runs, the package enabled and started redis-server.service: the tests do not use it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${as_root[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

if ! "$REDIS" --version >/dev/null 2>&1; then
    echo "install-redis: installed, but '$REDIS --version' fails:" >&2
    "$REDIS" --version >&2 || true
    exit 1
fi
echo "install-redis: $("$REDIS" --version 2>/dev/null)" >&2
