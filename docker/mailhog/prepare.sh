#!/usr/bin/env bash
# Host-side step before building this image: fetch maildump's wheels into
# $DEVENV_PREPARED/wheels, a folder in devenv's cache that devenv adds to
# the build context (./wheels when run by hand; PyPI is reachable from the host only). Idempotent and fast when
# done. maildump 1.0 needs the stdlib smtpd/asyncore modules, present up to
# Python 3.11 = Debian bookworm's python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../base/fetch-wheels.sh" "${DEVENV_PREPARED:-$here}/wheels" maildump==1.0
