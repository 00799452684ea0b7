#!/usr/bin/env bash
# Install the web map assets (Leaflet and plugins) from the npm registry into static/node_modules, exactly as
# pinned in static/package-lock.json. Idempotent: does nothing when node_modules already matches the lock file.
# Nothing is downloaded at run time: the app serves these files itself (/static/vendor/...) or inlines them.
set -euo pipefail
exec bash "$(dirname "$0")/npm_ci_locked.sh" static leaflet/dist/leaflet.js
