#!/usr/bin/env bash
# Install the test-only JavaScript (gcoord, an independent GCJ-02/BD-09 implementation used as the truth in
# tests/test_geocode.py) from the npm registry into tests/js/node_modules, exactly as pinned in
# tests/js/package-lock.json. Idempotent: does nothing when node_modules already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

STAMP=tests/js/node_modules/.installed-lock.sha256
want="$(sha256sum tests/js/package-lock.json tests/js/package.json | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && [ -f tests/js/node_modules/gcoord/package.json ]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null
fi

npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null
echo "$want" > "$STAMP"
