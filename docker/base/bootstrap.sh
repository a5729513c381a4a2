#!/usr/bin/env bash
# bootstrap.sh OUTPUT.tar
#
# Builds a minimal Debian bookworm root filesystem with debootstrap and tars
# it. devenv imports the tar as the image `debian:bookworm-slim` when no
# container registry is reachable, so the Dockerfiles under docker/ (which
# say `FROM debian:bookworm-slim`) build unchanged offline and online.
#
# The mirror is read from the host's apt configuration at run time: the host
# can reach it, and we must not bake any particular host into the repo.
#
# Environment:
#   DEVENV_BOOTSTRAP_FORCE=1   rebuild even if OUTPUT.tar already exists
set -euo pipefail

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 OUTPUT.tar"
out=$1
suite=bookworm

# Idempotent: an existing, non-empty tar is the result of an earlier run.
# Rebuilding takes ~30 s and a fresh tree would only differ in timestamps.
if [[ -s $out && ${DEVENV_BOOTSTRAP_FORCE:-0} != 1 ]]; then
    log "$out already exists; skipping (set DEVENV_BOOTSTRAP_FORCE=1 to rebuild)"
    exit 0
fi

# debootstrap needs root for chroot, mknod and file ownership.
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap needs chroot and device nodes); try: sudo $0 $out"

# --- read the host's apt sources --------------------------------------------
# Prints "URI SUITE" for each binary (deb, not deb-src) source the host uses.
# deb822 first (modern Debian), then the one-line sources.list format.
host_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        # Stanzas are separated by blank lines; fields may be in any order.
        awk '
            function flush() {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && enabled != "no") {
                    n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
                    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
                        if (u[i] != "" && s[j] != "") print u[i], s[j]
                }
                types = ""; uris = ""; suites = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:"   { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
            tolower($1) == "uris:"    { sub(/^[^:]*:[ \t]*/, ""); uris = $0 }
            tolower($1) == "suites:"  { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
            tolower($1) == "enabled:" { sub(/^[^:]*:[ \t]*/, ""); enabled = tolower($0) }
            END { flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # "deb [options] URI SUITE COMPONENTS..."; drop the optional [..] block.
        sed -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
    done
}

sources=$(host_sources | sed 's#/*  *# #' | awk '!seen[$0]++')
# The main mirror is the source that carries the release suite itself.
mirror=$(awk -v s="$suite" '$2 == s { print $1; exit }' <<<"$sources")
[[ -n $mirror ]] || die "no apt source for '$suite' found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
has_updates=$(awk -v s="$suite-updates" -v m="$mirror" '$1 == m && $2 == s { print "yes"; exit }' <<<"$sources")
security=$(awk -v s="$suite-security" '$2 == s { print $1; exit }' <<<"$sources")
log "mirror: $mirror${has_updates:+ (+$suite-updates)}${security:+; security: $security}"

# --- make sure debootstrap is there ------------------------------------------
if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 \
        || die "could not install debootstrap"
fi

# --- build the tree -----------------------------------------------------------
# Work next to the output so the final mv is atomic and a half-written tar
# never looks like a finished one.
out_dir=$(cd "$(dirname "$out")" && pwd) || die "output directory $(dirname "$out") does not exist"
tmp=$(mktemp -d "$out_dir/.bootstrap.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
root=$tmp/root

log "debootstrap --variant=minbase $suite (takes ~30 s)"
if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
    tail -n 20 "$tmp/debootstrap.log" >&2
    die "debootstrap failed (log above)"
fi

# apt sources inside the image: same mirror as the host, deb822 like the
# official image. debootstrap's one-line sources.list would duplicate it.
rm -f "$root/etc/apt/sources.list"
{
    printf 'Types: deb\nURIs: %s\nSuites: %s%s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" "$suite" "${has_updates:+ $suite-updates}"
    if [[ -n $security ]]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$security" "$suite"
    fi
} >"$root/etc/apt/sources.list.d/debian.sources"

# Keep images lean the way the official slim image does: no package caches,
# no translations, no man pages or docs installed by later apt-get calls.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
# Tell policy-rc.d-aware maintainer scripts not to start services at build.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# Strip what debootstrap left behind: package lists and caches are stale the
# moment the image exists, and docs/man pages are dead weight in a container.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
# The container runtime supplies these; host values must not leak in.
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"

log "writing $out"
tar -C "$root" -cf "$tmp/out.tar" --numeric-owner .
mv -f "$tmp/out.tar" "$out"
log "done: $out ($(du -h "$out" | cut -f1))"
