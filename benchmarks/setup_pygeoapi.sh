#!/usr/bin/env bash
# Idempotent setup for benchmarks/pygeoapi_compare.py:
#   1. Debian packages: PostgreSQL + PostGIS, ogr2ogr (gdal-bin), wrk.
#   2. A separate venv at benchmarks/.venv-pygeoapi with pinned pygeoapi,
#      gunicorn and the PostgreSQL provider's dependencies
#      (psycopg2-binary, SQLAlchemy, GeoAlchemy2), see requirements-pygeoapi.txt.
#
# pygeoapi 0.24.0 requires Python >= 3.12; Debian 12 ships 3.11, so the
# interpreter is taken from $PYGEOAPI_PYTHON, then python3.12/python3.13 on
# PATH, then pyenv-installed versions.
#
# Usage: bash benchmarks/setup_pygeoapi.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-pygeoapi"
REQS="$HERE/requirements-pygeoapi.txt"
PG_MAJOR="${PG_MAJOR:-15}"
APT_PACKAGES=(
    "postgresql-$PG_MAJOR"
    "postgresql-$PG_MAJOR-postgis-3"
    "postgresql-$PG_MAJOR-postgis-3-scripts"
    gdal-bin
    wrk
)

log() { printf '[setup_pygeoapi] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_apt_packages() {
    local missing=()
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "apt packages already installed"
        return
    fi
    log "installing apt packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

is_py312() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in "${PYGEOAPI_PYTHON:-}" python3.12 python3.13 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 && is_py312 "$candidate"; then
            command -v "$candidate"
            return
        fi
    done
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    # Prefer 3.12 (the version requirements-pygeoapi.txt was frozen with).
    for candidate in $(ls -d "$pyenv_root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
        if is_py312 "$candidate"; then
            echo "$candidate"
            return
        fi
    done
    return 1
}

create_venv() {
    if [ -x "$VENV/bin/python" ] && is_py312 "$VENV/bin/python"; then
        log "venv exists: $VENV"
    else
        local python
        if ! python="$(find_python)"; then
            log "ERROR: pygeoapi 0.24.0 needs Python >= 3.12 and none was found."
            log "Set PYGEOAPI_PYTHON=/path/to/python3.12 (e.g. from pyenv) and re-run."
            exit 1
        fi
        log "creating venv with $python"
        rm -rf "$VENV"
        "$python" -m venv "$VENV"
    fi
    log "installing pinned packages from $(basename "$REQS")"
    "$VENV/bin/pip" install -q -r "$REQS"
    "$VENV/bin/pygeoapi" --version
}

install_apt_packages
create_venv
log "done"
