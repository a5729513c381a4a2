#!/usr/bin/env bash
# Benchmark (not a test): one slow service (ready after 3 s) beside an
# unrelated 5-deep chain (each link ready 0.4 s after it starts, each waiting
# for the one before). Times a warm `up -d` to all ready of the whole stack,
# the chain alone and the slow service alone; with per-service scheduling
# the whole stack should take about max(chain, slow), not their sum.
#   bench/chain.sh [RUNS] [DEVENV]   (default 5 runs; the debug build unless DEVENV is given)
# Needs the `devenv-e2e-web:latest` image the end-to-end tests build.
set -euo pipefail
runs=${1:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
devenv=${2:-$repo/target/debug/devenv}
work=$(mktemp -d)
trap 'for f in full chain slow; do "$devenv" -f "$work/$f.toml" --progress quiet down -v >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT

service() { # name, command prefix, dependency
  cat <<TOML
[services.$1]
image = "devenv-e2e-web:latest"
command = ["sh", "-c", "$2exec busybox httpd -f -p 8080 -h /srv"]
ready = { http = { port = 8080, path = "/health" } }
ports = []
${3:+depends_on = { $3 = \"ready\" \}}

TOML
}
chain() { local prev=""; for i in 1 2 3 4 5; do service "c$i" "sleep 0.4; " "$prev"; prev="c$i"; done; }
head='[project]
name = "benchchain"
'
{ echo "$head"; service slow "sleep 3; " ""; chain; } > "$work/full.toml"
{ echo "$head"; chain; } > "$work/chain.toml"
{ echo "$head"; service slow "sleep 3; " ""; } > "$work/slow.toml"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_up() { # stack file → ms of one `up -d` from no containers
  "$devenv" -f "$1" --progress quiet down >/dev/null 2>&1 || true
  local s e
  s=$(date +%s%N)
  "$devenv" -f "$1" --progress quiet up -d >/dev/null
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
declare -A med
for f in slow chain full; do
  med[$f]=$(for _ in $(seq "$runs"); do time_up "$work/$f.toml"; done | median)
  "$devenv" -f "$work/$f.toml" --progress quiet down >/dev/null 2>&1 || true
done
max=$(( med[slow] > med[chain] ? med[slow] : med[chain] ))
printf '%-38s %8s\n' "stack (warm up -d to all ready)" "median"
printf '%-38s %6s ms\n' "slow service alone" "${med[slow]}" "5-deep chain alone" "${med[chain]}" "both (one stack)" "${med[full]}"
awk -v f="${med[full]}" -v m="$max" 'BEGIN { printf "%-38s %8.2f\n", "both / max(slow, chain)", f / m }'
echo "($runs runs each, $devenv)"
