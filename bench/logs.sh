#!/usr/bin/env bash
# Benchmark (not a test): reading logs. SERVICES services (default 20) each
# print LINES lines (default 200,000); then, RUNS times (default 5), medians:
#   - `devenv logs` (everything, to /dev/null) beside SERVICES parallel
#     `docker logs` on the same containers (the docker CLI's wall time);
#   - a storm: every service prints LINES more lines at once while
#     `devenv logs -f -n 0` follows (its lines/s until the last line, and
#     its peak RSS), beside SERVICES parallel `docker logs -f --tail 0`.
#   bench/logs.sh [SERVICES] [LINES] [RUNS]     (needs Docker and bc)
#   DEVENV=target/debug/devenv bench/logs.sh    (use a given binary)
set -euo pipefail
services=${1:-20}
lines=${2:-200000}
runs=${3:-5}
source "$(dirname "$0")/lib.sh"

# Each service prints its lines, then prints them again whenever /tmp/go appears.
script="emit() { seq -f '%g a line of benchmark output from a service, about eighty bytes' 1 $lines; }; emit; while :; do if [ -f /tmp/go ]; then rm -f /tmp/go; emit; fi; sleep 0.05; done"
{
  echo "[project]"
  echo "name = \"benchlogs$$\""
  for i in $(seq 1 "$services"); do
    printf '\n[services.s%02d]\nimage = "debian:bookworm-slim"\ncommand = ["sh", "-c", %s]\n' \
      "$i" "\"$script\""
  done
} >"$work/dev.toml"
cd "$work"
"$devenv" --progress quiet up -d >/dev/null
ids=$(docker ps -q --filter "label=devenv.project=benchlogs$$")
total=$((services * lines))

# Until every container printed its lines.
for id in $ids; do
  until docker logs --tail 1 "$id" 2>/dev/null | grep -q "^$lines a line"; do sleep 0.5; done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
# Until FILE holds TOTAL lines, or has not grown for 30 s (lines lost: the
# run is then reported short rather than waited for forever). Prints the
# time the last line came and how many lines came.
until_lines() {
  local file=$1 n=0 seen=-1 since at
  since=$(now); at=$since
  while :; do
    n=$(wc -l <"$file" 2>/dev/null || echo 0)
    if [ "$n" -ne "$seen" ]; then seen=$n; at=$(now); since=$at; fi
    [ "$n" -ge "$total" ] && break
    [ "$(echo "$(now) - $since > 30" | bc)" = 1 ] && break
    sleep 0.05
  done
  echo "$at $n"
}

logs_devenv=() logs_docker=()
for _ in $(seq 1 "$runs"); do
  t0=$(now); "$devenv" logs >/dev/null; t1=$(now)
  logs_devenv+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now)
  for id in $ids; do docker logs "$id" >/dev/null 2>&1 & done
  wait
  t1=$(now)
  logs_docker+=("$(echo "$t1 - $t0" | bc)")
  echo "logs run: devenv ${logs_devenv[-1]}s, docker ${logs_docker[-1]}s" >&2
done

follow_devenv=() follow_docker=() rss=() short=()
for _ in $(seq 1 "$runs"); do
  "$devenv" logs -f -n 0 >"$work/fifo.devenv" &
  dpid=$!
  sleep 2
  t0=$(now)
  for id in $ids; do docker exec "$id" touch /tmp/go >/dev/null & done
  wait $(jobs -p | grep -v "^$dpid$") 2>/dev/null || true
  read -r t1 got < <(until_lines "$work/fifo.devenv")
  [ "$got" -ge "$total" ] || short+=("devenv: $got of $total lines")
  rss+=("$(awk '/VmHWM/ {print $2}' "/proc/$dpid/status")")
  kill "$dpid"; wait "$dpid" 2>/dev/null || true
  rm -f "$work/fifo.devenv"
  follow_devenv+=("$(echo "$t1 - $t0" | bc)")

  pids=()
  for id in $ids; do docker logs -f --tail 0 "$id" >>"$work/fifo.docker" 2>&1 & pids+=($!); done
  sleep 2
  t0=$(now)
  for id in $ids; do docker exec "$id" touch /tmp/go >/dev/null & done
  read -r t1 got < <(until_lines "$work/fifo.docker")
  [ "$got" -ge "$total" ] || short+=("docker: $got of $total lines")
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  rm -f "$work/fifo.docker"
  follow_docker+=("$(echo "$t1 - $t0" | bc)")
  echo "logs -f run: devenv ${follow_devenv[-1]}s (RSS ${rss[-1]} kB), docker ${follow_docker[-1]}s" >&2
done

d=$(printf '%s\n' "${logs_devenv[@]}" | median)
k=$(printf '%s\n' "${logs_docker[@]}" | median)
fd=$(printf '%s\n' "${follow_devenv[@]}" | median)
fk=$(printf '%s\n' "${follow_docker[@]}" | median)
r=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
echo "devenv ($build build): $services services x $lines lines, medians of $runs"
printf 'logs:     devenv %.2fs   %d x docker logs %.2fs   ratio %.2f\n' "$d" "$services" "$k" "$(echo "$d / $k" | bc -l)"
printf 'logs -f:  devenv %.2fs (%.0f lines/s)   %d x docker logs -f %.2fs (%.0f lines/s)   devenv peak RSS %d MB\n' \
  "$fd" "$(echo "$total / $fd" | bc -l)" "$services" "$fk" "$(echo "$total / $fk" | bc -l)" "$((r / 1024))"
for s in "${short[@]}"; do echo "a storm run came out short (no line for 30 s): $s"; done
