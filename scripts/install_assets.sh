#!/usr/bin/env bash
# Install the web map assets (Leaflet and plugins) from the npm registry into static/node_modules, exactly as
# pinned in static/package-lock.json. Idempotent: does nothing when node_modules already matches the lock file.
# Nothing is downloaded at run time: the app serves these files itself (/static/vendor/...) or inlines them.
set -euo pipefail
cd "$(dirname "$0")/.."

STAMP=static/node_modules/.installed-lock.sha256
want="$(sha256sum static/package-lock.json static/package.json | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && [ -f static/node_modules/leaflet/dist/leaflet.js ]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null
fi

npm ci --prefix static --no-audit --no-fund --loglevel=error >/dev/null
echo "$want" > "$STAMP"
