#!/usr/bin/env bash
# Lykta's two commands. Sets up everything on a fresh Debian bookworm (as root) and then runs:
#   ./run.sh demo [lykta demo options]   the local demo on an embedded stack
#   ./run.sh test [pytest options]       the whole test suite
#   ./run.sh bench [NAME] | lint         benchmarks (the overload soak is bench ingest), ruff + mypy
#   ./run.sh soak [pytest options]       whole demo nights (winter, both DST nights) at 300x
#   ./run.sh lock [uv lock options]      re-resolve uv.lock after editing pyproject.toml
#                                        (e.g. --upgrade-package NAME to move one package)
#   ./run.sh upgrade                     move every package to its newest allowed release, test
# Every install is exactly uv.lock. Second runs are fast: nothing is reinstalled unless
# pyproject.toml or uv.lock changed.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(mosquitto influxdb socat)

ensure_apt() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "run.sh: installing ${missing[*]} ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the packaged services from starting system-wide: Lykta runs its own.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
}

# The lock (uv.lock) holds every version; pyproject.toml holds only the ranges. Installs go
# through uv so that what is in .venv is exactly what the lock says (uv sync removes the rest).
# uv itself is locked too (dev extra); only its very first copy comes from pip.
export UV_PYTHON_DOWNLOADS=never        # the machine's python3, never a downloaded one
export UV_NO_PROGRESS=1
VENV_EXTRAS=${LYKTA_EXTRAS:-dev}        # extras installed into .venv (dev pulls in every role)

locked_version() {  # locked_version NAME -> the version uv.lock pins for NAME
    python3 -c 'import sys, tomllib
pkgs = tomllib.load(open("uv.lock", "rb"))["package"]
print(next(p["version"] for p in pkgs if p["name"] == sys.argv[1]))' "$1"
}

ensure_uv() {
    if [ ! -x .venv/bin/uv ]; then
        # A venv without uv predates the lock (or is broken): build it afresh.
        echo "run.sh: creating .venv with uv $(locked_version uv) ..." >&2
        rm -rf .venv
        python3 -m venv .venv
        .venv/bin/python -m pip install -q "uv==$(locked_version uv)"
    fi
}

ensure_venv() {
    local stamp=.venv/.lykta-installed
    local want
    want=$(cat pyproject.toml uv.lock <(echo "$VENV_EXTRAS") | sha256sum | cut -d' ' -f1)
    if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    ensure_uv
    echo "run.sh: installing the locked versions into .venv ..." >&2
    local extras=()
    for e in $VENV_EXTRAS; do extras+=(--extra "$e"); done
    # --locked: refuse when pyproject.toml and uv.lock disagree (run ./run.sh lock).
    .venv/bin/uv sync --locked --quiet --python .venv/bin/python "${extras[@]}"
    echo "$want" > "$stamp"
}

check_lock() {
    # Fails when a range in pyproject.toml no longer matches uv.lock; offline and ~0.1 s.
    .venv/bin/uv lock --check --offline --quiet \
        || { echo "run.sh: uv.lock is out of date with pyproject.toml: run ./run.sh lock" >&2; exit 1; }
}

typecheck() {
    .venv/bin/mypy --no-error-summary || { echo "run.sh: mypy found type errors (above)" >&2; exit 1; }
}

relock() {  # relock [uv lock options]: resolve again, then install what it chose
    ensure_uv
    .venv/bin/uv lock "$@"
    ensure_venv
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)  ensure_apt; ensure_venv; exec .venv/bin/lykta demo "$@" ;;
    test)  ensure_apt; ensure_venv; check_lock
           .venv/bin/ruff check .
           typecheck
           # the slowest tests are listed at the end: the suite must stay well under 15 min
           exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=12 "$@" ;;
    bench) ensure_apt; ensure_venv; exec .venv/bin/python -m bench "$@" ;;
    soak)  ensure_apt; ensure_venv
           LYKTA_SOAK=1 exec .venv/bin/python -m pytest -q -rP -p no:cacheprovider --timeout=900 \
               tests/system/test_whole_night.py "$@" ;;
    lint)  ensure_venv; check_lock; .venv/bin/ruff check .; typecheck ;;
    lock)  relock "$@" ;;
    upgrade)
           relock --upgrade "$@"
           git --no-pager diff --stat -- uv.lock || true
           ensure_apt; exec "$0" test ;;
    *) echo "usage: ./run.sh demo|test|bench|soak|lint|lock|upgrade [args]" >&2; exit 2 ;;
esac
