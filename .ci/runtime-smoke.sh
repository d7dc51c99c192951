#!/usr/bin/env bash
# Smoke test of the Bun and Deno entries, through the very scripts users run
# (`npm run start:bun`, `npm run start:deno`). For each runtime: print its
# version, start the service on a spare port with a temporary DATA_DIR, then
# register -> login -> GET /users/me (200 with the permissions list) -> /metrics
# on METRICS_PORT only -> SIGTERM,
# expecting a clean exit 0 after "stopped". Embedded mode (PGlite, in-process
# store) always; PostgreSQL + Redis too when 127.0.0.1:5432 and :6379 answer
# (RUNTIME_SMOKE_SERVICES=0 skips them, =1 makes their absence a failure).
# Any failure prints the service's output and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL_BASE="${RUNTIME_SMOKE_PG:-postgresql://postgres@127.0.0.1:5432}"
REDIS_URL_SMOKE="${RUNTIME_SMOKE_REDIS:-redis://127.0.0.1:6379}"
START_TIMEOUT=60 # seconds to answer /healthz (Deno's first start compiles the TypeScript)
STOP_TIMEOUT=20  # seconds from SIGTERM to exit

say() { printf '%s\n' "$*"; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/runtime-smoke.XXXXXX")"
NPM_PID=""
DBS=()
cleanup() {
  if [ -n "$NPM_PID" ] && kill -0 "$NPM_PID" 2>/dev/null; then
    local child
    for child in $(pgrep -P "$NPM_PID" 2>/dev/null); do kill -KILL "$child" 2>/dev/null || true; done
    kill -KILL "$NPM_PID" 2>/dev/null || true
  fi
  local db
  for db in "${DBS[@]}"; do PGOPTIONS=--client-min-messages=warning psql -q "$PG_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  say "runtime-smoke: FAIL: $*" >&2
  if [ -s "$WORK/service.log" ]; then
    say "---- service output ----" >&2
    tail -n 40 "$WORK/service.log" >&2
    say "------------------------" >&2
  fi
  exit 1
}

# The binary the start script runs: the platform package's (install scripts not
# run), else the one npm put on PATH (install scripts ran and moved it there).
runtime_bin() {
  local found
  case "$1" in
    bun) found="$(ls node_modules/@oven/bun-*/bin/bun 2>/dev/null | head -n 1)" ;;
    deno) found="$(ls node_modules/@deno/*/deno 2>/dev/null | head -n 1)" ;;
  esac
  if [ -n "$found" ]; then echo "$found"; else echo "node_modules/.bin/$1"; fi
}

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# json FILE EXPR: evaluate a JavaScript expression over the parsed body `b`.
json() {
  node -e "const b=JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')); const v=($2); process.stdout.write(typeof v==='string'?v:JSON.stringify(v))" "$1"
}

# call METHOD PATH [BODY] [TOKEN]: body to $WORK/body, prints the status code.
call() {
  local args=(-sS -m 20 -o "$WORK/body" -w '%{http_code}' -X "$1" "http://127.0.0.1:$PORT$2")
  [ -n "${3:-}" ] && args+=(-H 'content-type: application/json' --data "$3")
  [ -n "${4:-}" ] && args+=(-H "authorization: Bearer $4")
  curl "${args[@]}" || echo "000"
}

expect_status() { # expect_status WANT GOT WHAT
  [ "$2" = "$1" ] || fail "$3: expected $1, got $2: $(head -c 300 "$WORK/body" 2>/dev/null)"
}

# What a new user may do (the `guest` and `user` rows of the permission table).
USER_PERMISSIONS='["auth:refresh","auth:register","posts:create","posts:delete:own","posts:read","profile:read","profile:update"]'

smoke() { # smoke RUNTIME MODE
  local rt="$1" mode="$2" t0=$SECONDS
  PORT="$(free_port)"
  local metrics_port
  metrics_port="$(free_port)"
  local data="$WORK/data-$rt-$mode"
  mkdir -p "$data"
  local env=(PORT="$PORT" METRICS_PORT="$metrics_port" HOST=127.0.0.1 DATA_DIR="$data" LOG_LEVEL=info NO_COLOR=1 DENO_NO_UPDATE_CHECK=1)
  local want_db=pglite want_store=memory
  if [ "$mode" = services ]; then
    local db="runtime_smoke_${rt}_$$"
    PGOPTIONS=--client-min-messages=warning psql -q "$PG_URL_BASE/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || fail "could not create database $db"
    DBS+=("$db")
    env+=(DATABASE_URL="$PG_URL_BASE/$db" REDIS_URL="$REDIS_URL_SMOKE")
    want_db=postgres want_store=redis
  fi

  : >"$WORK/service.log"
  env "${env[@]}" npm run --silent "start:$rt" >"$WORK/service.log" 2>&1 &
  NPM_PID=$!
  local waited=0
  until curl -s -m 1 -o /dev/null "http://127.0.0.1:$PORT/healthz"; do
    kill -0 "$NPM_PID" 2>/dev/null || fail "$rt/$mode: the service exited before answering /healthz"
    [ "$waited" -lt $((START_TIMEOUT * 4)) ] || fail "$rt/$mode: no answer on /healthz within ${START_TIMEOUT}s"
    sleep 0.25
    waited=$((waited + 1))
  done
  local started=$((SECONDS - t0))

  # The listening line names the runtime that serves, and the backends in use.
  local line
  line="$(grep -m 1 '"auth-system listening"' "$WORK/service.log" || true)"
  [ -n "$line" ] || fail "$rt/$mode: no 'auth-system listening' log line"
  printf '%s' "$line" >"$WORK/line"
  local serving
  serving="$(json "$WORK/line" "b.runtime + ' database=' + b.database + ' store=' + b.store")" || fail "$rt/$mode: unreadable log line: $line"
  case "$serving" in
    "$rt "*" database=$want_db store=$want_store") ;;
    *) fail "$rt/$mode: served by '$serving', expected $rt with database=$want_db store=$want_store" ;;
  esac

  # Every backend answers (a Redis that is down would only degrade, so /readyz is asked).
  expect_status 200 "$(call GET /readyz)" "$rt/$mode GET /readyz"

  local email="smoke-$rt-$mode-$$@example.test" password="smoke-passphrase-$RANDOM-$RANDOM"
  expect_status 201 "$(call POST /auth/register "{\"email\":\"$email\",\"password\":\"$password\",\"name\":\"Smoke\"}")" "$rt/$mode register"
  expect_status 200 "$(call POST /auth/login "{\"email\":\"$email\",\"password\":\"$password\"}")" "$rt/$mode login"
  local token
  token="$(json "$WORK/body" "b.accessToken")" || fail "$rt/$mode login: not JSON: $(head -c 300 "$WORK/body")"
  [ -n "$token" ] || fail "$rt/$mode login: no accessToken"
  expect_status 200 "$(call GET /users/me '' "$token")" "$rt/$mode GET /users/me"
  local me
  me="$(json "$WORK/body" "b.email + ' ' + JSON.stringify(b.permissions)")" || fail "$rt/$mode GET /users/me: not JSON: $(head -c 300 "$WORK/body")"
  [ "$me" = "$email $USER_PERMISSIONS" ] || fail "$rt/$mode GET /users/me: got $me, expected $email $USER_PERMISSIONS"
  expect_status 401 "$(call POST /auth/login "{\"email\":\"$email\",\"password\":\"not-the-passphrase\"}")" "$rt/$mode login with a wrong password"
  # The hosted pages and their script (bundled from source on this runtime).
  expect_status 200 "$(call GET /login)" "$rt/$mode GET /login"
  expect_status 200 "$(call GET /assets/app.js)" "$rt/$mode GET /assets/app.js"
  grep -q 'createClient\|mfaToken' "$WORK/body" || fail "$rt/$mode GET /assets/app.js: not the pages' bundle"

  # METRICS_PORT: /metrics on its own listener only; the main port answers 404 there.
  expect_status 404 "$(call GET /metrics)" "$rt/$mode GET /metrics on the main port"
  local metrics_status
  metrics_status="$(curl -sS -m 20 -o "$WORK/body" -w '%{http_code}' "http://127.0.0.1:$metrics_port/metrics" || echo 000)"
  expect_status 200 "$metrics_status" "$rt/$mode GET /metrics on METRICS_PORT"
  grep -q '^http_requests_total{route="/users/me"' "$WORK/body" || fail "$rt/$mode GET /metrics on METRICS_PORT: no http_requests_total for /users/me"

  # SIGTERM to the runtime itself (npm exec'd it), then a clean exit.
  local pid
  pid="$(pgrep -P "$NPM_PID" | head -n 1 || true)"
  [ -n "$pid" ] || fail "$rt/$mode: cannot find the runtime process under npm ($NPM_PID)"
  kill -TERM "$pid"
  waited=0
  while kill -0 "$NPM_PID" 2>/dev/null; do
    [ "$waited" -lt $((STOP_TIMEOUT * 4)) ] || fail "$rt/$mode: still running ${STOP_TIMEOUT}s after SIGTERM"
    sleep 0.25
    waited=$((waited + 1))
  done
  local code=0
  wait "$NPM_PID" || code=$?
  NPM_PID=""
  [ "$code" = 0 ] || fail "$rt/$mode: exit code $code after SIGTERM"
  grep -q '"msg":"stopped"' "$WORK/service.log" || fail "$rt/$mode: exited without logging 'stopped' (no graceful shutdown)"
  ! kill -0 "$pid" 2>/dev/null || fail "$rt/$mode: the runtime process $pid outlived npm"
  ! curl -s -m 2 -o /dev/null "http://127.0.0.1:$metrics_port/metrics" || fail "$rt/$mode: the metrics listener still answers after the exit"

  say "  ok  $rt/$mode: $serving; ready in ${started}s; readyz 200, register 201, login 200, /users/me 200 $USER_PERMISSIONS, wrong password 401, /login and its script 200, /metrics 404 here and 200 on METRICS_PORT; SIGTERM -> exit 0 in $((SECONDS - t0 - started))s"
}

modes=(embedded)
case "${RUNTIME_SMOKE_SERVICES:-auto}" in
  0) ;;
  1) modes+=(services) ;;
  *)
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
      modes+=(services)
    else
      say "runtime-smoke: PostgreSQL or Redis not answering on 127.0.0.1; embedded mode only"
    fi
    ;;
esac

for rt in bun deno; do
  bin="$(runtime_bin "$rt")"
  version="$("$bin" --version 2>&1 | head -n 1)" || fail "$rt: '$bin --version' failed: $version"
  say "== $rt: $version ($bin)"
  for mode in "${modes[@]}"; do smoke "$rt" "$mode"; done
done
say "runtime-smoke: Bun and Deno passed (${SECONDS}s)"
