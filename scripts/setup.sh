#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system packages the tests need, a virtualenv, the project.
# Usage: scripts/setup.sh [--with-test-tools]
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Pango (WeasyPrint draws the reports' PDF with it) and a Chinese font for the PDF's text
apt_install libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-microhei
if [ "${1:-}" = "--with-test-tools" ]; then
  apt_install poppler-utils   # pdfinfo, pdftotext, pdffonts: the report tests read the PDFs with them
  apt_install gdal-bin   # ogrinfo: the real OGC API - Features client the tests drive
  bash scripts/install_browser.sh   # Debian's Chromium (+ a Chinese font) for the browser tests
  bash scripts/install_test_js.sh   # gcoord (npm): an independent GCJ-02/BD-09 implementation the geocoding tests check against
  bash scripts/install_postgres.sh   # Debian's PostgreSQL 15 + PostGIS 3: the storage tests start their own clusters
fi
bash scripts/install_assets.sh   # Leaflet and plugins from the npm registry into static/node_modules

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--with-test-tools" ]; then
  .venv/bin/python -m pip install -q -e '.[dev]'
else
  .venv/bin/python -m pip install -q -e .
fi
