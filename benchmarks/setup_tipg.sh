#!/usr/bin/env bash
# Idempotent setup for the tipg side of benchmarks/bench_replicas.py:
#   1. Debian package wrk (the load generator), if missing.
#   2. A separate venv at benchmarks/.venv-tipg (git-ignored) with tipg 1.6.1,
#      the PostGIS-native OGC API - Features server, and uvicorn to serve it.
#      Every package is pinned (the set below was frozen from a fresh install).
#
# bench_replicas.py starts tipg itself, on the benchmark's own database:
#   DATABASE_URL=postgresql://... TIPG_DB_SCHEMAS='["layers"]' \
#     benchmarks/.venv-tipg/bin/uvicorn tipg.main:app --host 127.0.0.1 --port P --workers 2
#
# tipg 1.6.1 runs on Python >= 3.9; the interpreter is $TIPG_PYTHON, else python3.
#
# Usage: bash benchmarks/setup_tipg.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-tipg"
PYTHON="${TIPG_PYTHON:-python3}"

log() { printf '[setup_tipg] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk
fi

if [ -x "$VENV/bin/python" ]; then
    log "venv exists: $VENV"
else
    log "creating venv with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$PYTHON" -m venv "$VENV"
fi

REQS="$(mktemp)"
trap 'rm -f "$REQS"' EXIT
cat >"$REQS" <<'EOF'
tipg==1.6.1
uvicorn==0.54.0
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
asyncpg==0.32.0
attrs==26.1.0
certifi==2026.10.19.post1
ciso8601==2.4.1
click==8.5.1
cql2==0.6.0
cramjam==2.11.0
fastapi==0.165.0
geojson-pydantic==2.2.0
h11==0.16.0
idna==3.20
Jinja2==3.1.6
MarkupSafe==3.0.4
morecantile==7.1.0
opentelemetry-api==1.45.2
orjson==3.13.0
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
pyproj==3.7.2
python-dotenv==1.2.4
starlette==1.10.0
starlette-cramjam==0.7.0
typing-inspection==0.4.5
typing_extensions==4.16.0
EOF
log "installing pinned packages (tipg 1.6.1, uvicorn 0.54.0)"
"$VENV/bin/pip" install -q -r "$REQS"
"$VENV/bin/python" -c 'import tipg, uvicorn; print("tipg", tipg.__version__, "uvicorn", uvicorn.__version__)'
log "done"
