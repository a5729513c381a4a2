#!/usr/bin/env bash
# Host-side step before building this image: fetch moto's wheels into
# $DEVENV_PREPARED/wheels, a folder in devenv's cache that devenv adds to
# the build context (./wheels when run by hand; PyPI is reachable from the host only). Idempotent and fast when
# done. moto[s3] plus flask/flask-cors is what `moto[server]` needs for S3;
# the full [server] extra adds every other AWS service's dependencies
# (cfn-lint, docker, graphql, ...), tens of MB this image does not use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../base/fetch-wheels.sh" "${DEVENV_PREPARED:-$here}/wheels" 'moto[s3]==5.2.5' 'flask>=3,<4' 'flask-cors>=4,<7'
