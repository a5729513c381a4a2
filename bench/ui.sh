#!/usr/bin/env bash
# Benchmark (not a test): `devenv ui` under load. SERVICES services (default
# 50); all but the last print LINES lines (default 100,000) each at once
# when told (a log storm), with one `devenv ui` serving one page stream
# (server-sent events, as a browser reads it). Measured:
#   - GET /api/state answer time, idle and during the storm (median, p95);
#   - the page's lag: a marker line echoed into the quiet service every
#     0.5 s during the storm, from `docker exec` returning to the line
#     arriving on the event stream (median, max);
#   - devenv's RSS while serving (peak, from /proc).
#   bench/ui.sh [SERVICES] [LINES]          (needs Docker and python3)
#   DEVENV=target/debug/devenv bench/ui.sh  (use a given binary)
set -euo pipefail
services=${1:-50}
lines=${2:-100000}
ui_pid=
# The page's server goes before the stack.
bench_stop_first() {
  [ -n "$ui_pid" ] && kill "$ui_pid" 2>/dev/null && wait "$ui_pid" 2>/dev/null || true
}
source "$(dirname "$0")/lib.sh"

project="benchui$$"
script="emit() { seq -f '%g a line of benchmark output from a service, about eighty bytes' 1 $lines; }; echo started; while :; do if [ -f /tmp/go ]; then rm -f /tmp/go; emit; fi; sleep 0.05; done"
{
  echo "[project]"
  echo "name = \"$project\""
  for i in $(seq 1 "$services"); do
    printf '\n[services.s%02d]\nimage = "debian:bookworm-slim"\ncommand = ["sh", "-c", %s]\n' \
      "$i" "\"$script\""
  done
} >"$work/dev.toml"
cd "$work"
"$devenv" --progress quiet up -d >/dev/null
"$devenv" ui >"$work/ui.out" 2>/dev/null &
ui_pid=$!
until grep -q token= "$work/ui.out" 2>/dev/null; do sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/ui.out" | head -1)
last=$(printf 's%02d' "$services")
quiet=$(docker ps -q --filter "label=devenv.project=$project" --filter "label=devenv.service=$last")
ids=$(docker ps -q --filter "label=devenv.project=$project" | grep -v "^$quiet$")

python3 - "$url" "$ui_pid" "$services" "$lines" "$build" "$quiet" $ids <<'PY'
import http.client, statistics, subprocess, sys, threading, time, urllib.parse

url, pid, services, lines, build, quiet, ids = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7:]
u = urllib.parse.urlparse(url)
token = urllib.parse.parse_qs(u.query)["token"][0]
headers = {"Host": u.netloc, "Cookie": f"devenv_ui_{u.port}={token}"}

def rss_kb(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1])

def state_time():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    t0 = time.monotonic()
    c.request("GET", "/api/state", headers=headers)
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
    return time.monotonic() - t0

seen = {}          # marker -> arrival time
received = [0]     # log lines received on the stream
stop = threading.Event()

def stream():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    c.request("GET", "/api/events", headers=headers)
    r = c.getresponse()
    while not stop.is_set():
        line = r.fp.readline()
        if not line:
            break
        if line.startswith(b"data: ["):
            received[0] += line.count(b'"seq":')
            if b"ui-bench-mark-" in line:
                now = time.monotonic()
                for part in line.split(b"ui-bench-mark-")[1:]:
                    seen.setdefault(part.split(b'"')[0].decode(), now)

threading.Thread(target=stream, daemon=True).start()
time.sleep(3)  # the stream's first events, and the followers are on
idle = sorted(state_time() for _ in range(20))

storm_start = time.monotonic()
procs = [subprocess.Popen(["docker", "exec", i, "touch", "/tmp/go"]) for i in ids]
for p in procs: p.wait()
busy, lags, peak = [], [], 0
n = 0
while time.monotonic() - storm_start < 20:
    busy.append(state_time())
    mark = f"{n}x"
    subprocess.run(["docker", "exec", quiet, "sh", "-c", f"echo ui-bench-mark-{mark} > /proc/1/fd/1"], check=True)
    sent = time.monotonic()
    while mark not in seen and time.monotonic() - sent < 10:
        time.sleep(0.005)
    lags.append(seen.get(mark, float("inf")) - sent)
    peak = max(peak, rss_kb("VmRSS"))
    n += 1
    time.sleep(0.5)
stop.set()
hwm = rss_kb("VmHWM")
busy.sort(); lags.sort()
p95 = lambda xs: xs[min(len(xs) - 1, int(len(xs) * 0.95))]
ms = lambda s: f"{s * 1000:.0f} ms" if s != float("inf") else "lost"
print(f"devenv ui ({build} build): {services} services, a storm of {len(ids)} x {lines} lines")
print(f"GET /api/state idle:          median {ms(statistics.median(idle))}, p95 {ms(p95(idle))}")
print(f"GET /api/state in the storm:  median {ms(statistics.median(busy))}, p95 {ms(p95(busy))}")
print(f"a printed line to the page:   median {ms(statistics.median(lags))}, max {ms(lags[-1])} ({len(lags)} markers)")
print(f"log lines streamed to the page in 20 s: {received[0]} (batched every 100 ms; the page keeps the last 5,000)")
print(f"devenv RSS: peak {hwm // 1024} MB")
PY
