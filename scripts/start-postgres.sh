#!/usr/bin/env bash
# Install (if missing) and start a local PostgreSQL for the test suite, create the test database
# and print its SQLAlchemy URL on stdout (everything else goes to stderr).
#
#   export AIEXPORT_TEST_PG_URL="$(scripts/start-postgres.sh)"
#
# No `commit_delay`/`commit_siblings` here: ledger writers commit asynchronously under their lock
# and then wait for the flush in a barrier transaction of their own, outside it, so concurrent
# writers already share flushes the way PostgreSQL groups any concurrent commits (see
# src/aiexport/ledger/_db.py); the benchmark's raw-INSERT floor runs on the same server settings.
#
# Idempotent: a second run finds the server up and the database present, and only prints the URL.
# Works as root on a fresh Debian machine (apt) and on a machine where PostgreSQL is installed.
set -euo pipefail

PORT="${AIEXPORT_PG_PORT:-5432}"
DB="${AIEXPORT_PG_DB:-aiexport_test}"
PASSWORD="${AIEXPORT_PG_PASSWORD:-postgres}"
URL="postgresql+psycopg://postgres:${PASSWORD}@127.0.0.1:${PORT}/${DB}"

log() { echo "start-postgres: $*" >&2; }

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    log "installing PostgreSQL with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; }

if ! ready; then
    if command -v pg_lsclusters >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        VERSION="$(basename "$(dirname "$BIN")")"
        if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$VERSION/main"; then
            pg_createcluster "$VERSION" main -p "$PORT" >&2
        fi
        log "starting cluster $VERSION/main"
        pg_ctlcluster "$VERSION" main start >&2 || true
    else
        DATA="${AIEXPORT_PG_DATA:-${TMPDIR:-/tmp}/aiexport-pg}"
        if [ ! -s "$DATA/PG_VERSION" ]; then
            mkdir -p "$DATA"
            [ "$(id -u)" = 0 ] && chown postgres "$DATA"
            as_postgres "$BIN/initdb" -D "$DATA" -U postgres -A trust >&2
        fi
        log "starting server in $DATA"
        as_postgres "$BIN/pg_ctl" -D "$DATA" -o "-p $PORT -c listen_addresses=127.0.0.1" \
            -l "$DATA/server.log" -w start >&2
    fi
    for _ in $(seq 1 60); do ready && break; sleep 0.5; done
    ready || { log "server did not come up on port $PORT"; exit 1; }
fi

psql_pg() { as_postgres psql -h 127.0.0.1 -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

if [ "$(id -u)" = 0 ]; then
    # Local socket with peer auth always works for the postgres OS user; set the password there.
    runuser -u postgres -- psql -p "$PORT" -X -q -v ON_ERROR_STOP=1 \
        -c "ALTER USER postgres PASSWORD '${PASSWORD}'" >&2
    if ! runuser -u postgres -- psql -p "$PORT" -X -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '${DB}'" | grep -q 1; then
        runuser -u postgres -- createdb -p "$PORT" "$DB" >&2
    fi
else
    export PGPASSWORD="$PASSWORD"
    if ! psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname = '${DB}'" | grep -q 1; then
        psql_pg -c "CREATE DATABASE \"${DB}\"" >&2
    fi
fi

echo "$URL"
