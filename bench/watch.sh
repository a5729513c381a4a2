#!/usr/bin/env bash
# Benchmark (not a test): live sync. Prints
#   - save-to-visible latency: write a file on the host, poll the container's
#     HTTP server (busybox httpd serving the synced /srv) until it serves the
#     new content; N edits (default 200), p50/p95/max;
#   - a 1,000-file burst's time until the container's tree matches the host's;
#   - the watcher's memory (VmRSS) watching the repo's examples/laravel tree.
#   bench/watch.sh [EDITS]        (needs Docker; builds the images it lacks)
set -euo pipefail
edits=${1:-200}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
watcher=
cleanup() {
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null || true
  for d in "$work/latency" "$work/laravel"; do
    [ -f "$d/dev.toml" ] && (cd "$d" && "$devenv" --progress quiet down -v >/dev/null 2>&1 || true)
  done
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo" && cargo build --release --locked -q)
devenv=$repo/target/release/devenv
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Starts `devenv watch` in $1 and waits until it watches; sets $watcher.
start_watch() {
  (cd "$1" && exec "$devenv" --progress plain watch 2>"$1/watch.log") &
  watcher=$!
  for _ in $(seq 1 600); do grep -q watching "$1/watch.log" 2>/dev/null && return 0; sleep 0.05; done
  echo "devenv watch did not start:" >&2; cat "$1/watch.log" >&2; return 1
}
stop_watch() { kill "$watcher"; wait "$watcher" 2>/dev/null || true; watcher=; }

mkdir -p "$work/latency/src"
cat > "$work/latency/dev.toml" <<TOML
[project]
name = "benchwatch"

[services.web]
build = { context = "$repo/tests/fixtures/web" }
image = "devenv-e2e-web:latest"
ports = ["127.0.0.1:$port:8080"]

[[services.web.watch]]
path = "src"
action = "sync"
target = "/srv"
TOML
echo ok > "$work/latency/src/health"
cd "$work/latency"
"$devenv" --progress quiet up -d >/dev/null
start_watch "$work/latency"

echo "save → visible over HTTP ($edits edits, one every ~100 ms; compose watch waits a 500 ms quiet period before it even starts):"
python3 - "$work/latency/src" "$port" "$edits" <<'PY'
import sys, time, urllib.request
src, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
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
    with open(f"{src}/probe.html", "wb") as f:
        f.write(body)
    while get() != body:
        if time.perf_counter() - t0 > 10:
            sys.exit(f"edit {i} never became visible")
        time.sleep(0.002)
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.1)
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"  p50 {pick(0.50):.1f} ms   p95 {pick(0.95):.1f} ms   max {lat[-1]:.1f} ms   (goal: p50 < 100 ms, p95 < 250 ms)")
PY

echo "1,000-file burst → container tree identical:"
python3 - "$work/latency/src" "$devenv" <<'PY'
import hashlib, os, subprocess, sys, time
src, devenv = sys.argv[1], sys.argv[2]
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
    out = subprocess.run([devenv, "exec", "web", "--", "sh", "-c", script], capture_output=True, text=True).stdout
    if out.split(" ")[0] == want:
        break
    if time.perf_counter() - t0 > 60:
        sys.exit("the burst never became consistent")
    time.sleep(0.01)
# Python sorts names the way LC_ALL=C sort does.
print(f"  consistent {(time.perf_counter() - t0) * 1000:.0f} ms after the first write (writing took {written * 1000:.0f} ms; includes ~50 ms per check)")
PY
grep -E "synced [0-9]+ files" "$work/latency/watch.log" | tail -3 | sed 's/^/  watch log: /'
stop_watch
"$devenv" --progress quiet down -v >/dev/null

echo "memory watching the example app (examples/laravel, sync into the web image):"
mkdir -p "$work/laravel"
cat > "$work/laravel/dev.toml" <<TOML
[project]
name = "benchwatchlaravel"

[services.web]
build = { context = "$repo/tests/fixtures/web" }
image = "devenv-e2e-web:latest"
ports = []

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
