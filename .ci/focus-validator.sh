#!/usr/bin/env bash
# Makes .venv-focus: the FinOps Foundation's focus-validator 1.0.0 in a virtualenv of its own (its
# numpy<2 / pandas<3 pins clash with the project's), installed from the pinned list beside this
# script. Idempotent: when the venv already matches that list and runs, it does nothing. Prints
# nothing on success; on failure it prints what went wrong and exits non-zero.
#   PYTHON=python3.11 .ci/focus-validator.sh    # the interpreter to build the venv with (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VENV=.venv-focus
REQS=.ci/focus-validator-requirements.txt
PYTHON=${PYTHON:-python3}
STAMP=$VENV/.installed
want=$(sha256sum "$REQS" | cut -d' ' -f1)

# Runs: the console script answers, from its site-packages directory (where it reads its currency list
# relative to the working directory), and lists the FOCUS 1.0 ruleset.
works() {
    [[ -x $VENV/bin/focus-validator && -f $STAMP && "$(cat "$STAMP")" == "$want" ]] || return 1
    local site versions
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
    versions=$(cd "$site" && "$ROOT/$VENV/bin/focus-validator" --supported-versions 2>/dev/null) || return 1
    grep -qx '1.0' <<<"$versions"
}

works && exit 0

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# one && chain: inside an `if` condition, set -e would not stop at a failed step
if ! {
    rm -rf "$VENV" &&
        "$PYTHON" -m venv "$VENV" &&
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQS" &&
        echo "$want" >"$STAMP"
} >"$log" 2>&1; then
    echo "focus-validator set-up failed (see below); .venv-focus is incomplete" >&2
    cat "$log" >&2
    exit 1
fi
if ! works; then
    echo "focus-validator set-up: installed, but '$VENV/bin/focus-validator --supported-versions' does not list 1.0:" >&2
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    (cd "$site" && "$ROOT/$VENV/bin/focus-validator" --supported-versions) >&2 || true
    exit 1
fi
