#!/usr/bin/env bash
# The Debian tools the test suite drives besides devenv itself (the remote
# engine tests' TLS proxy and sshd, certificates; headless Chromium and its
# WebDriver for `devenv ui`'s page tests), installed once where
# missing. Run as root (CI does, from .ci/run); idempotent and quick when all
# is there. No package's service is started: sshd is run by the tests
# themselves on a free port.
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v stunnel >/dev/null || need+=(stunnel4)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
# The HTTPS router tests (issue 28): requests through it with --cacert/--resolve.
command -v curl >/dev/null || need+=(curl)
command -v docker >/dev/null || { echo "the tests need the docker CLI (Debian: docker.io or docker-ce-cli)" >&2; exit 1; }
[ ${#need[@]} -eq 0 ] && exit 0
policy=/usr/sbin/policy-rc.d
made=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made=1
fi
trap '[ -n "$made" ] && rm -f "$policy"' EXIT
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}"
