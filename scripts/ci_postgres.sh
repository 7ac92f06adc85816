#!/usr/bin/env bash
# Start a local PostgreSQL server for the store tests and print its SQLAlchemy URL.
#
#   export MATFORGE_TEST_PG_URL=$(bash scripts/ci_postgres.sh)
#
# Idempotent: installs the Debian package `postgresql` only when it is missing, creates a
# cluster only when there is none, starts it only when nothing answers on the port, and
# creates the role and database only when they do not exist. Needs root on Debian/Ubuntu.
# Progress goes to stderr; stdout carries nothing but the URL.
set -euo pipefail

PORT=${MATFORGE_PG_PORT:-5432}
ROLE=matforge
PASSWORD=matforge
DB=matforge_test

cd /  # the postgres user may not be able to read the caller's directory

log() { echo "ci_postgres: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (installs packages and runs commands as the postgres user)"
    exit 1
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n 1)

# The package creates a `main` cluster unless told not to; create one when it did not.
if ! pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
    log "creating cluster $VERSION/main on port $PORT"
    pg_createcluster "$VERSION" main --port "$PORT" >&2
fi

if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    log "starting cluster $VERSION/main"
    # Without systemd (containers, CI) pg_ctlcluster runs pg_ctl itself.
    pg_ctlcluster "$VERSION" main start >&2 || true
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p "$PORT" && break
        sleep 0.5
    done
    if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
        log "server did not start; last log lines:"
        tail -n 20 "/var/log/postgresql/postgresql-$VERSION-main.log" >&2 || true
        exit 1
    fi
fi

psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -X -q -p $PORT $*" >&2; }

psql_admin "-d postgres" <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
    END IF;
END
\$\$;
SQL

if ! su postgres -c "psql -X -tA -p $PORT -d postgres -c \"SELECT 1 FROM pg_database WHERE datname = '$DB'\"" | grep -q 1; then
    log "creating database $DB"
    su postgres -c "createdb -p $PORT -O $ROLE $DB" >&2
fi

URL="postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
# Prove the URL works (password authentication over TCP) before handing it out.
if ! PGPASSWORD=$PASSWORD psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DB" -c "SELECT 1" >/dev/null; then
    log "cannot log in as $ROLE over TCP; check pg_hba.conf"
    exit 1
fi
echo "$URL"
