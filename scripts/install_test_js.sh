#!/usr/bin/env bash
# Install the test-only JavaScript (gcoord, an independent GCJ-02/BD-09 implementation used as the truth by the
# geocoding tests) from the npm registry into tests/js/node_modules, exactly as pinned in tests/js/package-lock.json.
# Idempotent: does nothing when node_modules already matches the lock file.
set -euo pipefail
exec bash "$(dirname "$0")/npm_ci_locked.sh" tests/js gcoord/package.json
