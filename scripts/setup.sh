#!/bin/sh
# setup.sh - install samepage's build and test dependencies (Debian 12
# packages, by name, from debian-packages.txt) and build the tree.
#
# Usage: sh scripts/setup.sh [--no-install] [configure options...]
# Must run as root for the install step (apt-get) and for running VMs.
set -eu
cd "$(dirname "$0")/.."

install=yes
if [ "${1:-}" = "--no-install" ]; then
    install=no
    shift
fi

if [ "$install" = yes ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup.sh: run as root (apt-get install), or pass --no-install" >&2
        exit 1
    fi
    pkgs=$(grep -v '^#' debian-packages.txt | tr '\n' ' ')
    missing=$(dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null \
        | awk '$NF != "installed" {print $1}'; \
        for p in $pkgs; do dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$missing" ]; then
        echo "setup.sh: installing: $(echo $missing | tr '\n' ' ')"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            $(echo "$missing" | sort -u) >/dev/null
    fi
fi

[ -x configure ] || ./autogen.sh
[ -f Makefile ] && [ config.status -nt configure ] || ./configure -q "$@"
make -j"$(nproc)" >/dev/null
echo "setup.sh: samepage built in $(pwd)"
