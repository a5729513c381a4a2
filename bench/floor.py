"""The Engine API's own floor for bench/up.sh's first stack (not a test).

The fewest engine calls that bring PostgreSQL + Redis + web up with the same
order as `depends_on = ready` (web starts once db and cache answer), made
straight on the socket with nothing in between: the network, then three
creates at once; db and cache each start as soon as they are made and are
probed every 5 ms from the host (PostgreSQL's startup packet, Redis's PING);
web starts once both answer and is probed on HTTP. No tool that keeps that
order does much better on this engine.

    python3 bench/floor.py up PG_IMAGE REDIS_IMAGE WEB_IMAGE   # prints ms
    python3 bench/floor.py down [-v]                           # -v: data too
"""

import http.client
import json
import socket
import struct
import sys
import threading
import time

PROJECT = "benchupfloor"
NETWORK = f"{PROJECT}_default"
SOCKET = "/var/run/docker.sock"


class Engine(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("engine")

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCKET)


def api(method, path, body=None, ok=(200, 201, 204, 304)):
    conn = Engine()
    data = json.dumps(body) if body is not None else None
    conn.request(method, path, data, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    if resp.status not in ok:
        raise SystemExit(f"{method} {path}: {resp.status} {text[:200]!r}")
    return json.loads(text) if text else None


def together(*calls):
    """Runs the calls at once, as a client with a connection pool would."""
    threads = [threading.Thread(target=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def create(name, image, env=(), port=None, binds=()):
    body = {
        "Image": image,
        "Env": list(env),
        "HostConfig": {"NetworkMode": NETWORK, "Binds": list(binds)},
        "NetworkingConfig": {"EndpointsConfig": {NETWORK: {"Aliases": [name]}}},
    }
    if port:
        body["ExposedPorts"] = {f"{port[1]}/tcp": {}}
        body["HostConfig"]["PortBindings"] = {f"{port[1]}/tcp": [{"HostPort": str(port[0])}]}
    api("POST", f"/containers/create?name={PROJECT}-{name}", body)


def start(name):
    api("POST", f"/containers/{PROJECT}-{name}/start")
    info = api("GET", f"/containers/{PROJECT}-{name}/json")
    return info["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


def poll(check):
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.005)


def pg_ready(ip):
    """PostgreSQL accepts a session: its first answer to a startup packet is
    an authentication request ('R'), not an error ('E': starting up)."""
    with socket.create_connection((ip, 5432), timeout=1) as s:
        params = b"user\0app\0database\0app\0\0"
        s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        return s.recv(1)[:1] == b"R"


def redis_ready(ip):
    with socket.create_connection((ip, 6379), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def http_ready(ip):
    conn = http.client.HTTPConnection(ip, 8080, timeout=1)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    finally:
        conn.close()


def up(pg_image, redis_image, web_image):
    t0 = time.monotonic()
    api("POST", "/networks/create", {"Name": NETWORK, "CheckDuplicate": True})
    pg_env = ["POSTGRES_USER=app", "POSTGRES_PASSWORD=secret", "POSTGRES_DB=app"]
    ready = {"db": threading.Event(), "cache": threading.Event()}

    def db():
        create("db", pg_image, pg_env, (55432, 5432), [f"{PROJECT}_pgdata:/var/lib/postgresql/data"])
        ip = start("db")
        poll(lambda: pg_ready(ip))
        ready["db"].set()

    def cache():
        create("cache", redis_image)
        ip = start("cache")
        poll(lambda: redis_ready(ip))
        ready["cache"].set()

    def web():
        create("web", web_image, port=(58080, 8080))
        ready["db"].wait()
        ready["cache"].wait()
        ip = start("web")
        poll(lambda: http_ready(ip))

    together(db, cache, web)
    print(f"{(time.monotonic() - t0) * 1000:.0f}")


def down(data):
    for name in ("web", "cache", "db"):
        api("DELETE", f"/containers/{PROJECT}-{name}?force=true&v=true", ok=(204, 404))
    api("DELETE", f"/networks/{NETWORK}", ok=(204, 404))
    if data:
        api("DELETE", f"/volumes/{PROJECT}_pgdata", ok=(204, 404))


if __name__ == "__main__":
    if sys.argv[1] == "up":
        up(*sys.argv[2:5])
    else:
        down(sys.argv[2:] == ["-v"])
