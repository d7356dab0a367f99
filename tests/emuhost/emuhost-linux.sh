#!/bin/bash
# tests/emuhost/emuhost-linux.sh - emulated-host tier: two real Linux guests
# booted by samepage (TAP).  Boots the emulated host once and runs
# tests/emuhost/inner-linux.sh there.  Fails with a TAP "Bail out!" naming
# the cause if QEMU, apt or the kernel package is missing; never hangs.
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$srcdir/tests/emuhost/run-in-emuhost.sh" --tap --virsh --timeout 1100 "$srcdir/tests/emuhost/inner-linux.sh"
