#!/usr/bin/env bash
# Lykta's two commands. Sets up everything on a fresh Debian bookworm (as root) and then runs:
#   ./run.sh demo [lykta demo options]   the local demo on an embedded stack
#   ./run.sh test [pytest options]       the whole test suite
#   ./run.sh bench [NAME] | lint         benchmarks (the overload soak is bench ingest), ruff
# Second runs are fast: nothing is reinstalled unless pyproject.toml changed.
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

ensure_venv() {
    local stamp=.venv/.lykta-installed
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    echo "run.sh: preparing the virtualenv in .venv ..." >&2
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$want" > "$stamp"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)  ensure_apt; ensure_venv; exec .venv/bin/lykta demo "$@" ;;
    test)  ensure_apt; ensure_venv
           .venv/bin/ruff check .
           exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@" ;;
    bench) ensure_apt; ensure_venv; exec .venv/bin/python -m bench "$@" ;;
    lint)  ensure_venv; exec .venv/bin/ruff check . ;;
    *) echo "usage: ./run.sh demo|test|bench|lint [args]" >&2; exit 2 ;;
esac
