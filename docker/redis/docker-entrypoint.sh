#!/usr/bin/env bash
# Entrypoint for devenv's redis stand-in. Accepts what the official image
# accepts: no arguments, `redis-server --opt val ...`, `--opt val ...`, or
# `redis-server /path/to/redis.conf ...`, and runs the server as PID 1
# (exec) so `docker stop` reaches it directly.
set -euo pipefail

# `docker run IMAGE --appendonly yes` means "redis-server --appendonly yes";
# a bare config file path likewise.
if [[ $# -eq 0 || ${1:0:1} == - || $1 == *.conf ]]; then
    set -- redis-server "$@"
fi

if [[ $1 == redis-server ]]; then
    shift
    if [[ $# -gt 0 && ${1:0:1} != - ]]; then
        # The user brought a config file: it is in charge, as with the
        # official image; only force the foreground, which docker needs.
        set -- redis-server "$@" --daemonize no
    else
        # No config file: start from the official image's defaults; the
        # command-line options come after them and so take precedence.
        set -- redis-server /etc/redis/devenv-defaults.conf "$@"
    fi
    # Root: hand /data to redis if needed (fresh bind mount), drop privileges
    # with setpriv (util-linux, essential) instead of installing gosu.
    if [[ $(id -u) -eq 0 ]]; then
        if [[ $(stat -c %U /data) != redis ]]; then
            chown -R redis:redis /data
        fi
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi

exec "$@"
