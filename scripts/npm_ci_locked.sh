#!/usr/bin/env bash
# Install the npm packages of one folder exactly as pinned in its package-lock.json, from the npm registry.
# Idempotent: does nothing when <folder>/node_modules already matches the lock file (a stamp of its hash).
# Usage: scripts/npm_ci_locked.sh FOLDER FILE_THAT_MUST_EXIST   (the second path is relative to FOLDER/node_modules)
set -euo pipefail
cd "$(dirname "$0")/.."
folder="$1"
must="$folder/node_modules/$2"

STAMP="$folder/node_modules/.installed-lock.sha256"
want="$(sha256sum "$folder/package-lock.json" "$folder/package.json" | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -f "$must" ]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null
fi

npm ci --prefix "$folder" --no-audit --no-fund --loglevel=error >/dev/null
echo "$want" > "$STAMP"
