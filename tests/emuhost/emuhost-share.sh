#!/bin/bash
# tests/emuhost/emuhost-share.sh - emulated-host tier: memory sharing between
# two real Linux guests, samepage's engine against the emulated host's own
# KSM, in one emulated-host boot (TAP; see tests/emuhost/inner-share.sh for
# what is measured and checked).  Fails with a TAP "Bail out!" naming the
# cause if QEMU, apt or the kernel package is missing; never hangs (the
# inner script stops samepage at its own deadlines, run-in-emuhost.sh kills
# QEMU after --timeout).
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$srcdir/tests/emuhost/run-in-emuhost.sh" --tap --timeout 660 "$srcdir/tests/emuhost/inner-share.sh" 30
