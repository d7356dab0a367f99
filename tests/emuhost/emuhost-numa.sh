#!/bin/bash
# tests/emuhost/emuhost-numa.sh - emulated-host tier: NUMA placement and
# live migration of guest memory between the emulated host's two nodes,
# under samepaged, with memload guests verifying their memory (TAP; see
# tests/emuhost/inner-numa.sh for what is checked).  Fails with a TAP
# "Bail out!" naming the cause if QEMU, apt or the kernel package is
# missing; never hangs (run-in-emuhost.sh kills QEMU after --timeout).
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$srcdir/tests/emuhost/run-in-emuhost.sh" --tap --timeout 1200 --virsh "$srcdir/tests/emuhost/inner-numa.sh"
