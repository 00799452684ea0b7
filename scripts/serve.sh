#!/usr/bin/env bash
# Set up (if needed) and run the production server with the bundled data on http://127.0.0.1:8000.
# Extra arguments go to `geoserver serve` (e.g. --host 0.0.0.0 --port 8080 --workers 4).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/geoserver serve "$@"
