#!/bin/sh
# Recreates Laravel's storage tree, which may be an empty volume (emptyDir,
# tmpfs) or a bind mount, then runs the given command.
set -e
# In bind mode the container runs as the host's user, who may have no home
# here (no passwd entry): tools that keep caches in $HOME get /tmp instead.
[ -w "${HOME:-/}" ] || export HOME=/tmp
cd /var/www/html
for dir in storage/app/public storage/framework/cache/data storage/framework/sessions \
           storage/framework/views storage/framework/testing storage/logs bootstrap/cache; do
    mkdir -p "$dir" 2>/dev/null || echo "app-entrypoint: cannot create $dir (is it writable?)" >&2
done
exec "$@"
