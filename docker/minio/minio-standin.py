"""devenv's offline stand-in for the minio/minio image, built on moto's S3.

Started like MinIO (`server /data --console-address :9001`, or with the
leading `minio` as Laravel Sail writes it), it serves:
  * the S3 API on --address (default :9000), with MinIO's health routes
    /minio/health/live and /minio/health/ready answering 200 once start-up
    (replay + default buckets) is done, 503 before;
  * on --console-address (default :9001) the same backend again, with `/`
    redirecting to moto's dashboard at /moto-api/.
Credentials (MINIO_ROOT_USER / MINIO_ROOT_PASSWORD) are accepted but not
checked: moto takes any access key and signature.
Buckets named in MINIO_DEFAULT_BUCKETS (comma-separated; a ":policy"
suffix as in other MinIO images is ignored) are created at start.

moto keeps objects in memory. To make a named volume at /data behave like
MinIO's, moto's request recorder appends every mutating request to
/data/.moto-recording.jsonl and the recording is replayed at start.
Set MINIO_STANDIN_PERSIST=0 to run purely in memory.
"""

import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request


def log(msg):
    print(f"minio-standin: {msg}", file=sys.stderr, flush=True)


def port_of(addr, default):
    """Port of a MinIO address like ':9000', '0.0.0.0:9000' or '9000'."""
    tail = addr.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else default


def parse_minio_args(argv):
    """Understand the parts of `minio server ...` that matter; ignore the rest."""
    s3_port, console_port, dirs = 9000, 9001, []
    args = list(argv)
    # `minio server ...` too, as Sail's compose file writes the command.
    if args and args[0] in ("minio", "/usr/bin/minio"):
        args.pop(0)
    if args and args[0] == "server":
        args.pop(0)
    while args:
        arg = args.pop(0)
        if arg.startswith("-"):
            name, eq, val = arg.lstrip("-").partition("=")
            takes_value = name in ("address", "console-address", "certs-dir", "S", "ftp", "sftp")
            if takes_value and not eq and args:
                val = args.pop(0)
            if name == "address":
                s3_port = port_of(val, s3_port)
            elif name == "console-address":
                console_port = port_of(val, console_port)
            else:
                log(f"ignoring minio option --{name}")
        else:
            dirs.append(arg)
    return s3_port, console_port, dirs


def replay(rows, base, recorder):
    """Re-send recorded requests to our own S3 port (moto's recorder format).

    Unlike moto's replay_recording, this maps multipart upload ids: the
    replayed CreateMultipartUpload gets a new random id, so later requests
    that carry the recorded id are rewritten to the new one.
    """
    import base64
    import re
    from urllib.parse import urlsplit

    import requests

    session = requests.Session()
    session.trust_env = False  # loopback: ignore proxy/CA settings from env
    was_enabled = recorder._user_enabled
    recorder._user_enabled = False  # do not record the replay itself
    ids, pending = {}, []  # recorded id -> new id; new ids not yet matched
    try:
        for row in rows:
            entry = json.loads(row)
            body = entry.get("body") or b""
            if entry.get("body_encoded"):
                body = base64.b64decode(body)
            parts = urlsplit(entry["url"])
            query = parts.query
            m = re.search(r"(?:^|&)uploadId=([^&]+)", query)
            if m:
                old = m.group(1)
                if old not in ids and pending:
                    ids[old] = pending.pop(0)
                if old in ids:
                    query = query.replace(f"uploadId={old}", f"uploadId={ids[old]}")
            url = f"{base}{parts.path}" + (f"?{query}" if query else "")
            headers = {k: v for k, v in entry.get("headers", {}).items()
                       if k.lower() not in ("transfer-encoding", "content-length")}
            resp = session.request(entry["method"], url, headers=headers, data=body)
            if entry["method"] == "POST" and re.search(r"(?:^|&)uploads(?:=|&|$)", parts.query):
                new = re.search(r"<UploadId>([^<]+)</UploadId>", resp.text)
                if new:
                    pending.append(new.group(1))
    finally:
        recorder._user_enabled = was_enabled


def main(argv):
    # `minio server ...`, as Sail writes it, is a server start too.
    if argv[:2] in (["minio", "server"], ["/usr/bin/minio", "server"]):
        argv = argv[1:]
    # Not a server start (e.g. `sh`): run it, like an ordinary entrypoint.
    if argv and argv[0] != "server" and not argv[0].startswith("-"):
        os.execvp(argv[0], argv)

    s3_port, console_port, dirs = parse_minio_args(argv)
    # `mc ready local` (the healthcheck Sail and MinIO's docs use) asks this port.
    try:
        with open("/tmp/.minio-standin-port", "w") as f:
            f.write(str(s3_port))
    except OSError as e:
        log(f"cannot note the S3 port for mc: {e}")
    data_dir = dirs[0] if dirs and not dirs[0].startswith(("http://", "https://")) else "/data"

    persist = os.environ.get("MINIO_STANDIN_PERSIST", "1") != "0"
    recording = os.path.join(data_dir, ".moto-recording.jsonl")
    if persist:
        try:
            os.makedirs(data_dir, exist_ok=True)
            with open(recording, "a"):
                pass
        except OSError as e:
            log(f"cannot write {recording} ({e}); data will not survive a restart")
            persist = False
    # moto reads these when it is imported, so set them first.
    os.environ["MOTO_PORT"] = str(s3_port)
    # MinIO reads buckets from the path unless MINIO_DOMAIN names the domain
    # for virtual-host style; moto would take any subdomain as a bucket, so
    # `https://s3.shop.localhost/` (the router's name) answered for a bucket
    # called `s3`.
    if not os.environ.get("MINIO_DOMAIN"):
        os.environ["S3_IGNORE_SUBDOMAIN_BUCKETNAME"] = "true"
    if persist:
        os.environ["MOTO_ENABLE_RECORDING"] = "1"
        os.environ["MOTO_RECORDER_FILEPATH"] = recording
    else:
        os.environ.pop("MOTO_ENABLE_RECORDING", None)

    from werkzeug.serving import make_server
    from moto.moto_api import recorder
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    moto_app = DomainDispatcherApplication(create_backend_app)
    ready = threading.Event()

    def s3_app(environ, start_response):
        # MinIO's unauthenticated health checks (devenv's readiness probe).
        if environ.get("PATH_INFO", "").startswith("/minio/health/"):
            status = "200 OK" if ready.is_set() else "503 Service Unavailable"
            start_response(status, [("Content-Length", "0")])
            return [b""]
        return moto_app(environ, start_response)

    def console_app(environ, start_response):
        if environ.get("PATH_INFO", "") in ("", "/"):
            start_response("302 Found", [("Location", "/moto-api/"), ("Content-Length", "0")])
            return [b""]
        return s3_app(environ, start_response)

    servers = [
        make_server("0.0.0.0", s3_port, s3_app, threaded=True, request_handler=MotoRequestHandler),
        make_server("0.0.0.0", console_port, console_app, threaded=True, request_handler=MotoRequestHandler),
    ]
    for srv in servers:
        # Short poll interval: shutdown() waits for it, and `docker stop` too.
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    log(f"S3 API on :{s3_port}, console (moto dashboard) on :{console_port}, data {data_dir if persist else '(memory)'}")

    # `docker stop` sends SIGTERM to PID 1 (us); Python as PID 1 would
    # otherwise ignore it and wait for the SIGKILL 10 s later.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    base = f"http://127.0.0.1:{s3_port}"
    if persist and os.path.getsize(recording) > 0:
        # Keep only requests that changed state: replaying reads is wasted
        # start-up time, and compacting stops the file growing with them.
        with open(recording) as f:
            rows = [r for r in f if json.loads(r).get("method") not in ("GET", "HEAD", "OPTIONS")]
        with open(recording, "w") as f:
            f.writelines(rows)
        log(f"replaying {len(rows)} recorded requests")
        replay(rows, base, recorder)

    # A SigV4-shaped Authorization header makes moto route the request to
    # S3 (it picks the service from the credential scope); moto does not
    # verify the signature. Going through HTTP also records the request.
    fake_auth = ("AWS4-HMAC-SHA256 Credential=minio/20240101/us-east-1/s3/aws4_request, "
                 "SignedHeaders=host, Signature=0")
    # No proxies for our own loopback port, whatever the environment says.
    local = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    wanted = (b.strip().split(":")[0] for b in os.environ.get("MINIO_DEFAULT_BUCKETS", "").split(","))
    for name in filter(None, wanted):
        try:
            # HEAD first: a bucket restored by the replay is left alone (and
            # the log does not grow by a PUT on every start).
            local.open(urllib.request.Request(f"{base}/{name}", method="HEAD",
                                              headers={"Authorization": fake_auth})).close()
            continue
        except urllib.error.HTTPError as e:
            if e.code != 404:
                log(f"could not check bucket {name}: HTTP {e.code}")
                continue
        try:
            local.open(urllib.request.Request(f"{base}/{name}", method="PUT",
                                              headers={"Authorization": fake_auth})).close()
            log(f"created bucket {name}")
        except urllib.error.HTTPError as e:
            log(f"could not create bucket {name}: HTTP {e.code}")

    if os.environ.get("MINIO_ROOT_USER") or os.environ.get("MINIO_ACCESS_KEY"):
        log("MINIO_ROOT_USER/PASSWORD accepted; moto does not check credentials")
    ready.set()
    log("ready")

    stop.wait()
    log("stopping")
    for srv in servers:
        srv.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
