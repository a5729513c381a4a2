#!/bin/sh
# Starts one of the app's daemons for supervisord. The container normally
# runs as uid 1000; in devenv's bind mode it runs as the host's user, which
# is root on CI machines: then PHP-FPM must be told root is fine, and Nginx's
# workers stay root too (as `nobody` they could not read a checkout that is
# private to its owner).
set -e
root=
[ "$(id -u)" = 0 ] && root=1
case "$1" in
    php-fpm)
        exec php-fpm8.2 --nodaemonize --fpm-config /etc/php/8.2/fpm/php-fpm.conf ${root:+--allow-to-run-as-root}
        ;;
    nginx)
        exec nginx -e stderr -g "daemon off;${root:+ user root;}"
        ;;
    *)
        echo "app-start: unknown daemon \`$1\`" >&2
        exit 2
        ;;
esac
