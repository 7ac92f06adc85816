#!/usr/bin/env bash
# Bring up what the test suite needs besides Python and print it as `export` lines:
# a PostgreSQL server for the store tests (MATFORGE_TEST_PG_URL) and Debian's chromium for the
# browser tests (MATFORGE_CHROMIUM).
#
#   services=$(bash scripts/test_services.sh) && eval "$services"    # what `make test` does
#
# A variable that is already set is kept as it is (nothing is installed or started for it).
# Otherwise scripts/ci_postgres.sh and scripts/ci_chromium.sh install and start what is missing;
# both are idempotent, and installing needs root. When that is impossible this script exits
# non-zero saying what to install or which variable to set, rather than letting the PostgreSQL
# tests skip silently and the browser tests fail. Progress goes to stderr; stdout carries
# nothing but the export lines.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test_services: $*" >&2; }

if [ -z "${MATFORGE_TEST_PG_URL:-}" ]; then
    if ! MATFORGE_TEST_PG_URL=$(bash scripts/ci_postgres.sh); then
        log "no PostgreSQL server for the store tests."
        log "  run 'make test' as root (it installs and starts the Debian package postgresql),"
        log "  or set MATFORGE_TEST_PG_URL=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
        log "  (a role that may create schemas in that database)"
        exit 1
    fi
fi

if [ -z "${MATFORGE_CHROMIUM:-}" ]; then
    if ! MATFORGE_CHROMIUM=$(bash scripts/ci_chromium.sh); then
        log "no Chromium for the browser tests."
        log "  run 'make test' as root (it installs the Debian package chromium),"
        log "  or 'apt-get install -y chromium', or set MATFORGE_CHROMIUM=/path/to/chromium"
        exit 1
    fi
fi

log "PostgreSQL for tests: $MATFORGE_TEST_PG_URL"
log "Chromium for tests: $MATFORGE_CHROMIUM"
# Single-quoted for any POSIX shell (make runs recipes with /bin/sh).
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
echo "export MATFORGE_TEST_PG_URL=$(quote "$MATFORGE_TEST_PG_URL")"
echo "export MATFORGE_CHROMIUM=$(quote "$MATFORGE_CHROMIUM")"
