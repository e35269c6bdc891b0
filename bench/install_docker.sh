#!/usr/bin/env bash
# Install Debian's docker.io for the benchmark's comparison, without starting it:
# the bench runs its own private dockerd (no bridge, no iptables). On a host
# with an init system, installing docker.io would start the system's docker
# service (and its docker0 bridge), so a policy-rc.d that forbids starting
# services is in place during the install, unless the host already has one.
set -euo pipefail

if dpkg -s docker.io >/dev/null 2>&1; then
    exit 0
fi
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# kran bench: do not start services while docker.io installs\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
echo "installing docker.io (for make bench only; its service is not started)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
