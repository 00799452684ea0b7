#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, including the live-server and ogrinfo tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-tools
exec .venv/bin/python -m pytest "$@"
