#!/usr/bin/env bash
# Benchmark (not a test): devenv vs Debian's docker-compose on the same
# PostgreSQL + Redis + web stack, run side by side. Prints medians and ratios
# for a warm `up -d` to all ready, a no-op second `up -d`, and `ps`.
#   bench/up.sh [RUNS]        (default 7; needs Docker, installs docker-compose if missing)
set -euo pipefail
runs=${1:-7}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'cd "$work/devenv" && "$devenv" --progress quiet down -v >/dev/null 2>&1 || true;
      cd "$work/compose" && docker-compose down -v >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

command -v docker-compose >/dev/null || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }
(cd "$repo" && cargo build --release --locked -q)
devenv=$repo/target/release/devenv

mkdir -p "$work/devenv" "$work/compose"
cat > "$work/devenv/dev.toml" <<TOML
[project]
name = "benchdevenv"

[services.db]
use = "postgres"
ports = ["25432:5432"]

[services.cache]
use = "redis"
ports = []

[services.web]
build = { context = "$repo/tests/fixtures/web" }
image = "devenv-e2e-web:latest"
ports = ["28080:8080"]
depends_on = { db = "ready", cache = "ready" }
ready = { http = { port = 8080, path = "/health" } }
TOML

cd "$work/devenv"
"$devenv" --progress quiet up -d >/dev/null   # builds or pulls whatever is missing
# Compose runs exactly the images devenv resolved (official or local stand-ins).
img() { docker inspect -f '{{.Config.Image}}' "benchdevenv-$1-1"; }
pg_image=$(img db); redis_image=$(img cache)
"$devenv" --progress quiet down >/dev/null

cat > "$work/compose/docker-compose.yml" <<YAML
version: "2.4"
services:
  db:
    image: $pg_image
    environment: { POSTGRES_USER: app, POSTGRES_PASSWORD: secret, POSTGRES_DB: app }
    ports: ["35432:5432"]
    volumes: ["pgdata:/var/lib/postgresql/data"]
    healthcheck: { test: ["CMD", "pg_isready", "-U", "app", "-d", "app", "-h", "127.0.0.1"], interval: 1s, timeout: 1s, retries: 60 }
  cache:
    image: $redis_image
    healthcheck: { test: ["CMD", "redis-cli", "ping"], interval: 1s, timeout: 1s, retries: 60 }
  web:
    image: devenv-e2e-web:latest
    ports: ["38080:8080"]
    depends_on: { db: { condition: service_healthy }, cache: { condition: service_healthy } }
    healthcheck: { test: ["CMD", "busybox", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"], interval: 1s, timeout: 1s, retries: 60 }
volumes: { pgdata: {} }
YAML

now() { date +%s.%N; }
# compose 1.29 has no `up --wait`: poll health until every container is healthy.
compose_up_wait() {
  docker-compose -p benchcompose up -d >/dev/null 2>&1
  for _ in $(seq 1 600); do
    local ok=1
    for c in $(docker-compose -p benchcompose ps -q); do
      [ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" = healthy ] || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.05
  done
  echo "compose stack never got healthy" >&2; return 1
}

declare -A t
measure() { # name command...
  local name=$1; shift
  local s; s=$(now); "$@" >/dev/null 2>&1; t[$name]+="$(echo "$(now) - $s" | bc) "
}

cd "$work/compose"; docker-compose -p benchcompose up -d >/dev/null 2>&1; docker-compose -p benchcompose down >/dev/null 2>&1
for i in $(seq 1 "$runs"); do
  cd "$work/devenv"
  measure devenv_up "$devenv" --progress quiet up -d
  measure devenv_noop "$devenv" --progress quiet up -d
  measure devenv_ps "$devenv" ps
  "$devenv" --progress quiet down >/dev/null
  cd "$work/compose"
  measure compose_up compose_up_wait
  measure compose_noop docker-compose -p benchcompose up -d
  measure compose_ps docker-compose -p benchcompose ps
  docker-compose -p benchcompose down >/dev/null 2>&1
  echo "run $i/$runs done" >&2
done

python3 - "${t[devenv_up]}" "${t[compose_up]}" "${t[devenv_noop]}" "${t[compose_noop]}" "${t[devenv_ps]}" "${t[compose_ps]}" <<'PY'
import statistics, sys
v = [list(map(float, a.split())) for a in sys.argv[1:]]
rows = [("warm up -d to all ready", v[0], v[1]), ("no-op up -d", v[2], v[3]), ("ps", v[4], v[5])]
print(f"{'measure':28} {'devenv (median)':>16} {'compose (median)':>17} {'ratio':>7}")
for name, d, c in rows:
    md, mc = statistics.median(d), statistics.median(c)
    print(f"{name:28} {md*1000:13.0f} ms {mc*1000:14.0f} ms {md/mc:7.2f}")
print(f"({len(v[0])} runs each, side by side on one machine)")
PY
