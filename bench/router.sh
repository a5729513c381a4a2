#!/usr/bin/env bash
# Benchmark (not a test): the latency a request gains through devenv's
# HTTPS router (issue 28). One web service (the e2e busybox image) is both
# published on a host port and served at https://NAME.localhost; then
# REQUESTS requests (default 2000) each way, medians and p95 in ms:
#   - the published port (busybox closes every connection: a new one each);
#   - the router over HTTP and over HTTPS, one kept-alive connection each
#     (as a browser has), the router opening a new one to the service;
#   - the router over HTTPS with a new connection (and TLS handshake) each.
# devenv is not on the request path, so any build of it will do.
#   bench/router.sh [REQUESTS]                   (needs Docker and python3)
#   DEVENV=target/debug/devenv bench/router.sh   (use a given binary)
set -euo pipefail
requests=${1:-2000}
source "$(dirname "$0")/lib.sh"
name="benchrouter$$"
mkdir -p "$work/srv"
echo ok >"$work/srv/index.html"
chmod 755 "$work" "$work/srv"
cat >"$work/dev.toml" <<EOF
[project]
name = "$name"

[services.web]
build = { context = "$repo/tests/fixtures/web" }
image = "devenv-e2e-web:latest"
volumes = ["./srv:/srv"]
ports = ["8080"]
hostname = "$name"
ready = { http = { port = 8080, path = "/index.html" } }
EOF
cd "$work"
"$devenv" --progress quiet up -d >/dev/null
json=$("$devenv" ps --json)
direct=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print([u["url"] for x in r for u in x["urls"] if u["url"].startswith("http://localhost:")][0].rsplit(":",1)[1])' "$json")
https=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); u=[u["url"] for x in r for u in x["urls"] if u["url"].startswith("https://")][0]; print(u.rsplit(":",1)[1] if u.count(":")==2 else 443)' "$json")
http=$(docker port devenv-router 80/tcp | head -1 | sed 's/.*://')
ca=$("$devenv" trust --path)

python3 - "$requests" "$direct" "$http" "$https" "$name.localhost" "$ca" <<'PY'
import http.client, ssl, socket, statistics, sys, time
n, direct, http_port, https_port, host, ca = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=ca)

class Pinned(http.client.HTTPSConnection):
    # *.localhost resolved to the loopback address, the name still checked.
    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock = self._context.wrap_socket(sock, server_hostname=host)

def timed(make, keep):
    conn, out = None, []
    for i in range(n + 50):
        if conn is None or not keep:
            conn = make()
        t = time.perf_counter()
        conn.request("GET", "/index.html", headers={"Host": host})
        r = conn.getresponse(); r.read()
        if i >= 50:  # warm-up left out
            out.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            sys.exit(f"status {r.status}")
        if r.will_close:
            conn.close(); conn = None
    return out

rows = [
    ("published port (new connection)", timed(lambda: http.client.HTTPConnection("127.0.0.1", direct), False)),
    ("router, HTTP (kept alive)", timed(lambda: http.client.HTTPConnection("127.0.0.1", http_port), True)),
    ("router, HTTPS (kept alive)", timed(lambda: Pinned(host, https_port, context=ctx), True)),
    ("router, HTTPS (new connection + TLS)", timed(lambda: Pinned(host, https_port, context=ctx), False)),
]
base = statistics.median(rows[0][1])
print(f"{n} requests each, ms            median     p95   +median vs published")
for label, xs in rows:
    xs.sort()
    med, p95 = statistics.median(xs), xs[int(len(xs) * 0.95)]
    print(f"{label:38} {med:7.3f} {p95:7.3f}   {med - base:+.3f}")
PY
