#!/usr/bin/env bash
# Host-side step before building this image: fetch maildump's wheels into
# ./wheels (PyPI is reachable from the host only). Idempotent and fast when
# done. maildump 1.0 needs the stdlib smtpd/asyncore modules, present up to
# Python 3.11 = Debian bookworm's python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../base/fetch-wheels.sh" "$here/wheels" maildump==1.0
