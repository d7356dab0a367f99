#!/bin/bash
# tests/emuhost/emuhost-basic.sh - emulated-host tier, basic checks (TAP).
#
# Boots the emulated host (QEMU TCG, SVM, 2 NUMA nodes) once and runs
# tests/emuhost/inner-basic.sh there: /dev/kvm from kvm-amd, two NUMA nodes,
# `samepage run` of the hello payload.  Fails with a TAP "Bail out!" naming
# the cause if QEMU, apt or the kernel package is missing, never hangs.
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$srcdir/tests/emuhost/run-in-emuhost.sh" --tap --timeout 600 "$srcdir/tests/emuhost/inner-basic.sh"
