#!/usr/bin/env bash
# Entrypoint for devenv's mailhog stand-in. It is started the way the
# official mailhog/mailhog image is (no command, `MailHog`, or MailHog's
# -flags, MH_* env), and runs maildump in its place on MailHog's ports.
# maildump is exec'd (PID 1) and stops cleanly on SIGTERM.
set -euo pipefail

log() { printf 'entrypoint: %s\n' "$*" >&2; }

# Port of a MailHog "host:port" bind address, or the default.
port_of() { local v=${1:-}; [[ -n $v ]] && printf '%s' "${v##*:}" || printf '%s' "$2"; }

if [[ $# -eq 0 || $1 == MailHog || $1 == mailhog || ${1:0:1} == - ]]; then
    [[ $# -gt 0 && ${1:0:1} != - ]] && shift
    smtp_port=$(port_of "${MH_SMTP_BIND_ADDR:-}" 1025)
    http_port=$(port_of "${MH_UI_BIND_ADDR:-}" 8025)
    # MailHog flags that map onto maildump; the rest are accepted and ignored
    # (logged) so a compose file written for MailHog still starts.
    while [[ $# -gt 0 ]]; do
        arg=$1; shift
        flag=${arg%%=*}; flag=${flag#-}; flag=${flag#-}
        if [[ $arg == *=* ]]; then val=${arg#*=}
        elif [[ $# -gt 0 && ${1:0:1} != - ]]; then val=$1; shift
        else val=; fi
        case $flag in
            smtp-bind-addr) smtp_port=$(port_of "$val" "$smtp_port") ;;
            ui-bind-addr)   http_port=$(port_of "$val" "$http_port") ;;
            *) log "ignoring MailHog option -$flag${val:+ $val} (not supported by maildump)" ;;
        esac
    done
    args=(--foreground --smtp-ip 0.0.0.0 --smtp-port "$smtp_port"
          --http-ip 0.0.0.0 --http-port "$http_port")
    # MailHog keeps mail in memory by default, and so does maildump; set
    # MAILDUMP_DB (e.g. /data/maildump.sqlite) to keep it across restarts.
    if [[ -n ${MAILDUMP_DB:-} ]]; then args+=(--db "$MAILDUMP_DB"); fi
    if [[ -n ${MH_STORAGE:-} && ${MH_STORAGE} != memory ]]; then
        log "MH_STORAGE=$MH_STORAGE not supported; mail is kept in memory (set MAILDUMP_DB to persist)"
    fi
    set -- maildump "${args[@]}"
fi

exec "$@"
