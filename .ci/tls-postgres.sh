#!/usr/bin/env bash
# A secure stand-in for CockroachDB in CI: a second PostgreSQL cluster on port
# 26257 that accepts only TLS connections authenticated by a client certificate
# from `npm run certs`, and runs every transaction SERIALIZABLE (CockroachDB's
# only isolation level). Idempotent: a second run reuses the cluster and the
# certificates, re-checks the settings and restarts nothing that is healthy.
#
# Progress goes to stderr; stdout is only `export` lines, so CI can do
#   eval "$(bash .ci/tls-postgres.sh)"
# Needs: root (it acts as the OS user postgres), PostgreSQL server binaries,
# openssl, and the project's node_modules (npm ci) for `npm run certs`.
set -euo pipefail

PORT="${TLS_PG_PORT:-26257}"
BASE="${TLS_PG_BASE:-/var/lib/postgresql/auth-tls-$PORT}"
DATA="$BASE/data"
RUN="$BASE/run"
LOG="$BASE/postgres.log"
CERTS="${TLS_PG_CERTS:-/var/lib/auth-tls-certs-$PORT}"

say() { printf 'tls-postgres: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
as_pg() { su postgres -s /bin/sh -c "$*"; }

cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || die "run as root (initdb and pg_ctl run as the OS user postgres via su)"
id postgres >/dev/null 2>&1 || die "no OS user postgres: install PostgreSQL (apt-get install postgresql)"
command -v openssl >/dev/null || die "openssl not found"

# The newest installed server version (15 on this machine kind).
PGBIN="${TLS_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$PGBIN/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"

# 1. Certificates: reused while they verify against their CA and stay valid a week more.
certs_ok() {
  [ -s "$CERTS/ca.crt" ] && [ -s "$CERTS/node.key" ] && [ -s "$CERTS/client.app.key" ] && [ -s "$CERTS/client.root.key" ] &&
    openssl verify -CAfile "$CERTS/ca.crt" "$CERTS/node.crt" "$CERTS/client.app.crt" "$CERTS/client.root.crt" >/dev/null 2>&1 &&
    openssl x509 -checkend 604800 -noout -in "$CERTS/node.crt" >/dev/null &&
    openssl x509 -checkend 604800 -noout -in "$CERTS/client.app.crt" >/dev/null
}
if certs_ok; then
  say "reusing certificates in $CERTS"
else
  say "generating certificates in $CERTS"
  [ -d node_modules ] || die "node_modules missing: run npm ci first"
  npm run --silent certs -- --out "$CERTS" --force >&2
fi

# 2. The cluster's own folder, owned by postgres; the server gets copies of its files.
install -d -o postgres -g postgres -m 0700 "$BASE" "$RUN"
if [ ! -s "$DATA/PG_VERSION" ]; then
  say "initdb $DATA ($PGBIN)"
  rm -rf "$DATA"
  as_pg "'$PGBIN/initdb' -D '$DATA' -U postgres --auth-local=peer --auth-host=reject --encoding=UTF8 --locale=C.UTF-8" >/dev/null
fi

changed=0
put() { # put SOURCE NAME MODE: copy into the data folder when it differs
  if ! cmp -s "$1" "$DATA/$2"; then
    install -o postgres -g postgres -m "$3" "$1" "$DATA/$2"
    changed=1
  fi
}
put "$CERTS/node.crt" server.crt 0644
put "$CERTS/node.key" server.key 0600
put "$CERTS/ca.crt" ca.crt 0644

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<EOF
# Written by .ci/tls-postgres.sh on every run; edit the script, not this file.
port = $PORT
listen_addresses = '127.0.0.1,::1'
unix_socket_directories = '$RUN'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
ssl_min_protocol_version = 'TLSv1.2'
default_transaction_isolation = 'serializable'
log_connections = on
# A throwaway CI database: durability is traded for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
put "$tmp" auth-tls.conf 0644
grep -qxF "include 'auth-tls.conf'" "$DATA/postgresql.conf" ||
  { echo "include 'auth-tls.conf'" >>"$DATA/postgresql.conf"; changed=1; }

cat >"$tmp" <<'EOF'
# Written by .ci/tls-postgres.sh. The socket serves this script's administration
# only; over TCP, TLS with a client certificate (CN = role name) is the only way in.
local   all  postgres                peer
hostssl all  all       127.0.0.1/32  cert
hostssl all  all       ::1/128       cert
EOF
put "$tmp" pg_hba.conf 0600

# 3. Start, or reload what changed (certificates and pg_hba are re-read on SIGHUP).
if as_pg "'$PGBIN/pg_ctl' -D '$DATA' status" >/dev/null 2>&1; then
  if [ "$changed" = 1 ]; then
    # port, listen and socket settings need a restart; a reload is enough for the rest,
    # but a restart is cheap here and always right.
    say "configuration changed: restarting"
    as_pg "'$PGBIN/pg_ctl' -D '$DATA' -l '$LOG' -w -t 60 -m fast restart" >/dev/null
  else
    say "already running on port $PORT"
  fi
else
  say "starting on port $PORT (log: $LOG)"
  as_pg "'$PGBIN/pg_ctl' -D '$DATA' -l '$LOG' -w -t 60 start" >/dev/null || { tail -n 20 "$LOG" >&2; die "start failed"; }
fi

# 4. Roles whose names are the client certificates' CNs.
as_pg "'$PGBIN/psql' -X -q -h '$RUN' -p $PORT -U postgres -d postgres -v ON_ERROR_STOP=1" <<'SQL' >/dev/null
SELECT 'CREATE ROLE app' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') \gexec
SELECT 'CREATE ROLE root' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'root') \gexec
ALTER ROLE app LOGIN CREATEDB NOSUPERUSER PASSWORD NULL;
ALTER ROLE root LOGIN SUPERUSER PASSWORD NULL;
SQL

# 5. Prove it the way a client will connect: verify-full with the app certificate.
iso="$(psql -X -At "host=localhost port=$PORT dbname=postgres user=app sslmode=verify-full sslrootcert=$CERTS/ca.crt sslcert=$CERTS/client.app.crt sslkey=$CERTS/client.app.key" -c 'SHOW default_transaction_isolation')" ||
  die "verify-full connection as app failed (see $LOG)"
[ "$iso" = serializable ] || die "default_transaction_isolation is '$iso', expected serializable"
say "ready: TLS + client-certificate auth only, default_transaction_isolation=$iso"

# The certificate paths ride in the URL too (libpq's sslrootcert/sslcert/sslkey,
# read by src/db/connect.ts), so a database URL handed on to a child process
# (DATABASE_URL of a spawned server) still connects.
URL="postgresql://app@localhost:$PORT/postgres?sslmode=verify-full&sslrootcert=$CERTS/ca.crt&sslcert=$CERTS/client.app.crt&sslkey=$CERTS/client.app.key"
cat <<EOF
export TEST_TLS_DATABASE_URL='$URL'
export TEST_DATABASE_URL='$URL'
export TEST_DATABASE_CA='$CERTS/ca.crt'
export TEST_DATABASE_CERT='$CERTS/client.app.crt'
export TEST_DATABASE_KEY='$CERTS/client.app.key'
EOF
