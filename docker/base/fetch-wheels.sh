#!/usr/bin/env bash
# fetch-wheels.sh DEST_DIR REQUIREMENT...
#
# Downloads Python wheels for REQUIREMENTs (and their dependencies) into
# DEST_DIR, on the host. Used by docker/*/prepare.sh: build containers
# cannot use PyPI here (the host's pip holds the CA and proxy settings), so
# the Dockerfiles install from these files offline.
# Idempotent: does nothing when DEST_DIR already holds a complete download
# for the same requirement list, so a warm run costs milliseconds.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 DEST_DIR REQUIREMENT..." >&2; exit 2; }
dest=$1; shift
requirements=("$@")

# The wheels must fit the image's interpreter and libc (Debian bookworm:
# CPython 3.11, glibc 2.36, x86_64), not the host's.
platform_args=(--only-binary=:all: --implementation cp --python-version 3.11
               --platform manylinux2014_x86_64)

stamp=$dest/.complete
if [[ -f $stamp && $(<"$stamp") == "${requirements[*]}" ]]; then
    echo "fetch-wheels: wheels already present in $dest" >&2
    exit 0
fi

command -v python3 >/dev/null || { echo "fetch-wheels: error: python3 not found on the host" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || { echo "fetch-wheels: error: pip not available (python3 -m pip)" >&2; exit 1; }

echo "fetch-wheels: downloading ${requirements[*]} into $dest" >&2
# Download into a scratch dir next to DEST and swap it in, so an interrupted
# run never leaves a half-filled directory that looks complete.
parent=$(dirname "$dest")
tmp=$(mktemp -d "$parent/.wheels.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! python3 -m pip download --quiet --disable-pip-version-check "${platform_args[@]}" \
        -d "$tmp" "${requirements[@]}"; then
    echo "fetch-wheels: error: pip download failed (is PyPI reachable from this host?)" >&2
    exit 1
fi
printf '%s' "${requirements[*]}" >"$tmp/.complete"
chmod 755 "$tmp"
rm -rf "$dest"
mv "$tmp" "$dest"
echo "fetch-wheels: done ($(find "$dest" -name '*.whl' | wc -l) wheels)" >&2
