#!/bin/sh
# Gives a nameless user a passwd entry and a home, recreates Laravel's
# storage tree, which may be an empty volume (emptyDir, tmpfs) or a bind
# mount, then runs the given command.
set -e
# In bind mode the container runs as the host's uid:gid, which the image
# does not know: `whoami` fails, the prompt reads "I have no name!", and
# Composer's cache and tinker's history have no home. As Sail's WWWUSER
# does, the uid gets an entry named after the host's user (DEVENV_HOST_USER,
# set by devenv) with a home under /home. Only the dev image leaves
# /etc/passwd writable for this; `docker exec` then finds the entry too.
uid=$(id -u)
if ! getent passwd "$uid" >/dev/null 2>&1 && [ -w /etc/passwd ]; then
    gid=$(id -g)
    name=${DEVENV_HOST_USER:-dev}
    case $name in '' | -* | *[!A-Za-z0-9._-]*) name=dev ;; esac
    getent passwd "$name" >/dev/null 2>&1 && name="dev$uid"
    getent group "$gid" >/dev/null 2>&1 || echo "$name:x:$gid:" >>/etc/group
    echo "$name:x:$uid:$gid:$name:/home/$name:/bin/bash" >>/etc/passwd
fi
home=$(getent passwd "$uid" 2>/dev/null | cut -d: -f6)
[ -n "$home" ] && mkdir -p "$home" 2>/dev/null || true
if [ -n "$home" ] && [ -w "$home" ]; then
    export HOME="$home"
fi
# No entry could be made (prod image): tools that keep caches in $HOME get /tmp.
[ -w "${HOME:-/}" ] || export HOME=/tmp
cd /var/www/html
for dir in storage/app/public storage/framework/cache/data storage/framework/sessions \
           storage/framework/views storage/framework/testing storage/logs bootstrap/cache; do
    mkdir -p "$dir" 2>/dev/null || echo "app-entrypoint: cannot create $dir (is it writable?)" >&2
done
exec "$@"
