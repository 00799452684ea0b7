#!/usr/bin/env bash
# Install the test-only JavaScript from the npm registry into tests/js/node_modules, exactly as pinned in
# tests/js/package-lock.json:
#   gcoord      an independent GCJ-02/BD-09 implementation used as the truth by the geocoding tests;
#   axe-core    the accessibility checker tests inject into pages (tests/browser_support.axe_violations);
#   lighthouse  scores pages in Debian's Chromium (tests/test_lighthouse.py, benchmarks/bench_lighthouse.py); it
#               drives /usr/bin/chromium through CHROME_PATH and downloads no browser of its own.
# Idempotent: does nothing when node_modules already matches the lock file and every package is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# One file of each package (relative to tests/js/node_modules) that must exist after the install.
required=(gcoord/package.json axe-core/axe.min.js lighthouse/cli/index.js)

missing() {
  local f
  for f in "${required[@]}"; do [ -f "tests/js/node_modules/$f" ] || echo "$f"; done
}

# A package removed by hand leaves the lock-file stamp in place: drop it so that npm ci runs again.
if [ -n "$(missing)" ]; then
  rm -f tests/js/node_modules/.installed-lock.sha256
fi
bash scripts/npm_ci_locked.sh tests/js "${required[0]}"

gone="$(missing)"
if [ -n "$gone" ]; then
  echo "install_test_js.sh: npm ci left these out of tests/js/node_modules: $gone" >&2
  exit 1
fi
