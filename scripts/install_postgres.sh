#!/usr/bin/env bash
# Debian's PostgreSQL 15 and PostGIS 3 for the storage tests. The tests never use the Debian default cluster: each
# test process runs initdb into a temporary directory and starts its own server (tests/pg_support.py), so this script
# only installs the binaries and never starts, stops or configures a cluster.
# Idempotent: installs only what is missing.
set -euo pipefail

missing=()
for pkg in postgresql-15 postgresql-15-postgis-3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# What tests/pg_support.py needs; fail here rather than in the middle of a test run.
for f in /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl /usr/lib/postgresql/15/bin/postgres \
         /usr/share/postgresql/15/extension/postgis.control; do
  [ -e "$f" ] || { echo "install_postgres.sh: $f is missing after installing postgresql-15 and postgresql-15-postgis-3" >&2; exit 1; }
done
