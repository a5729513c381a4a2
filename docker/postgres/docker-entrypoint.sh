#!/usr/bin/env bash
# Entrypoint for devenv's offline postgres stand-in. Mirrors the official
# image's contract: initialise PGDATA on first start only (env credentials,
# /docker-entrypoint-initdb.d scripts), then exec the server in the
# foreground so it is PID 1 and receives docker's stop signal directly.
# Restarts on an existing cluster do no work beyond a couple of stat calls:
# start-up time is benchmarked.
set -euo pipefail

log() { printf 'entrypoint: %s\n' "$*" >&2; }

# `docker run IMAGE -c fsync=off` means "postgres -c fsync=off".
if [[ $# -eq 0 || ${1:0:1} == - ]]; then
    set -- postgres "$@"
fi

# Anything other than the server (psql, bash, ...) runs as given.
if [[ $1 != postgres ]]; then
    exec "$@"
fi
# `postgres --version` and friends print and exit: no initdb for them.
for arg in "$@"; do
    case $arg in
        -'?'|--help|--describe-config|-V|--version|-C) exec "$@" ;;
    esac
done

: "${PGDATA:=/var/lib/postgresql/data}"

# VAR_FILE support (secrets), as in the official image.
file_env() {
    local var=$1 file_var="${1}_FILE" def=${2:-}
    if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
        log "error: both $var and $file_var are set"; exit 1
    fi
    local val=$def
    if [[ -n ${!var:-} ]]; then val=${!var}
    elif [[ -n ${!file_var:-} ]]; then val=$(<"${!file_var}")
    fi
    export "$var"="$val"
    unset "$file_var"
}

# Root: make the data and socket dirs ours, then drop privileges. Only chown
# when the owner is wrong (a fresh bind mount), never recursively on restart.
if [[ $(id -u) -eq 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    if [[ $(stat -c %U "$PGDATA") != postgres ]]; then
        chown -R postgres:postgres "$PGDATA"
    fi
    chmod 700 "$PGDATA" 2>/dev/null || true
    if [[ $(stat -c %U /var/run/postgresql) != postgres ]]; then
        chown postgres:postgres /var/run/postgresql
    fi
    # setpriv ships with util-linux (essential), so no gosu package needed.
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# Already initialised: straight to the server (the fast path).
if [[ -s $PGDATA/PG_VERSION ]]; then
    # A volume made by the official postgres:16 image cannot be opened by
    # this PostgreSQL 15; say so plainly instead of postgres' terse error.
    data_version=$(<"$PGDATA/PG_VERSION")
    if [[ $data_version != 15 ]]; then
        log "error: $PGDATA holds a PostgreSQL $data_version cluster; this image runs PostgreSQL 15."
        log "  Use a separate volume for the offline stand-in (or dump and restore)."
        exit 1
    fi
    exec "$@"
fi

# ---- first start: initialise the cluster --------------------------------
file_env POSTGRES_USER postgres
file_env POSTGRES_PASSWORD
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

if [[ -z $POSTGRES_PASSWORD && $auth != trust ]]; then
    log "error: database is uninitialized and superuser password is not specified."
    log "  Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust to allow all"
    log "  connections without a password; not recommended)."
    exit 1
fi

log "initialising database cluster in $PGDATA"
pwfile=$(mktemp)
trap 'rm -f "$pwfile"' EXIT
printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
# --auth=trust: the default pg_hba (trust for the socket and loopback, as in
# the official image) without initdb's warning; POSTGRES_INITDB_ARGS come
# later and override it. --no-sync: the cluster is brand new and a dev
# database; skipping the fsync of every file saves seconds on first start.
# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is meant to word-split
initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --auth=trust \
    --locale=C.UTF-8 --no-sync $POSTGRES_INITDB_ARGS >/dev/null
rm -f "$pwfile"

# Listen everywhere; password auth (or trust, if asked) from any address.
# Local socket connections stay trusted, like the official image.
# Written into the config so a user's `-c listen_addresses=...` still wins.
printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
# (An "md5" line also accepts the scram verifiers PostgreSQL 15 stores.)
printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

# Temporary server on a private Unix socket only, for creating the database
# and running init scripts: nothing outside can connect half-initialised,
# and a healthcheck's `pg_isready` on the usual socket (Sail's) does not
# call the stack ready before the real server runs. The init scripts reach
# it through PGHOST.
initsock=$(mktemp -d)
pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories='$initsock' -c fsync=off" -w -s start
export PGHOST=$initsock

psql_base=(psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER")
if [[ $POSTGRES_DB != postgres ]]; then
    "${psql_base[@]}" --dbname postgres --set db="$POSTGRES_DB" -q <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') \gexec
SQL
fi

export PGUSER=$POSTGRES_USER PGDATABASE=$POSTGRES_DB
shopt -s nullglob
for f in /docker-entrypoint-initdb.d/*; do
    case $f in
        *.sh)
            # Executable scripts run; others are sourced (official behaviour).
            if [[ -x $f ]]; then
                log "running $f"; "$f"
            else
                log "sourcing $f"
                # shellcheck disable=SC1090 # user script, path known at run time
                . "$f"
            fi ;;
        *.sql)    log "running $f"; "${psql_base[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
        *.sql.gz) log "running $f"; gunzip -c "$f" | "${psql_base[@]}" --dbname "$POSTGRES_DB" ;;
        *)        log "ignoring $f" ;;
    esac
done
unset PGUSER PGDATABASE

pg_ctl -D "$PGDATA" -m fast -w -s stop
unset PGHOST
rm -rf "$initsock"
log "initialisation complete; starting server"

exec "$@"
