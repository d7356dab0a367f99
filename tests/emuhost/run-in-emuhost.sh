#!/bin/bash
# tests/emuhost/run-in-emuhost.sh - run a test script inside the emulated host.
#
# Boots Debian's kernel with the emulated-host initramfs (scripts/guest-images.sh)
# under QEMU TCG with AMD SVM and two NUMA nodes (host-facts.md), runs SCRIPT
# there as /sptest/run.sh (with ARGS), and re-emits its output on stdout.
#
# How the script gets in: a small gzip'd cpio holding /sptest/run.sh (and
# /sptest/args, and the TAP helpers /sptest/tap.sh) is appended to the cached initramfs; Linux unpacks
# concatenated archives in order.  How results come back: the serial console
# (see tests/emuhost/emuhost-init for the SPTEST* marker lines).  This
# script prints the test's lines without their "SPTEST| " prefix, plus
# "# emuhost: ..." diagnostics, and exits with the test's exit status.
#
# Never hangs: QEMU runs under `timeout` (--timeout, default 600 s); a
# minute before that the emulated host prints its hang report (task states
# and kernel stacks, see emuhost-init) and kills samepage there; a
# timeout, a kernel panic (panic=-1 with -no-reboot ends QEMU) or a missing
# result marker is a clear message and a non-zero status.  With --tap, an
# infrastructure failure is also printed as a TAP "Bail out!" line so the TAP
# driver reports it.
#
# A frozen emulated host (docs/emuhost.md: timer interrupts that stop
# coming under TCG, about once an hour of CI load) is not a failure of the
# test: emuhost-init writes a heartbeat line (SPTEST-ALIVE) to the console
# every 20 s, and when the console has not grown for --freeze seconds
# (default 300; 0: never) QEMU is killed and the emulated host booted once
# more, in the time --timeout leaves, for the whole test again (the test
# scripts start from nothing).  The frozen boot's last lines are printed as
# "# emuhost:" comments.  A second freeze is a failure, named so.
#
# Usage: run-in-emuhost.sh [--timeout S] [--images DIR] [--builddir DIR]
#                          [--mem MB] [--tap] [--log FILE] [--virsh] [--file F]...
#                          [--freeze S]
#                          [--kvm-amd PARAMS] SCRIPT [ARGS...]
# --virsh: Debian's virsh (this machine's /usr/bin/virsh, from the libvirt-clients
# package) and its shared libraries go in too, for tests of libvirt's own
# client inside the emulated host (about 20 MB more to unpack at boot).
# --file F: F goes in too, as /sptest/<its name> (a benchmark's tool).
# --kvm-amd: kvm-amd module parameters, ':'-separated (default "npt=0",
# see tests/emuhost/emuhost-init for why).
set -uo pipefail

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${top_builddir:-$PWD}
images=${SAMEPAGE_IMAGES:-}
tmo=600
freeze=300
mem=2048
tap=0
log=
kvm_amd=
virsh=0
files=()

usage() { sed -n '2,/^set -uo/p' "$0" | sed 's/^# \{0,1\}//;$d'; }
fail() {
    echo "# emuhost: error: $*" >&2
    [ "$tap" = 1 ] && echo "Bail out! emulated host: $*"
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --timeout) tmo=$2; shift 2 ;;
    --freeze) freeze=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --builddir) builddir=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --tap) tap=1; shift ;;
    --log) log=$2; shift 2 ;;
    --kvm-amd) kvm_amd=$2; shift 2 ;;
    --virsh) virsh=1; shift ;;
    --file) files+=("$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) fail "unknown option $1" ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$tmo$freeze" in *[!0-9]* | "") fail "--timeout and --freeze take whole numbers of seconds" ;; esac
script=$1; shift
[ -f "$script" ] || fail "no test script '$script'"

. "$srcdir/tests/emuhost/emuhost-lib.sh"
emuhost_images

work=$(mktemp -d "${TMPDIR:-/tmp}/emuhost.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/sptest"
cp "$script" "$work/root/sptest/run.sh"
cp "$srcdir/tests/tap.sh" "$work/root/sptest/tap.sh" # the TAP helpers the script may source
printf '%s\n' "$@" > "$work/root/sptest/args"
for f in "${files[@]+"${files[@]}"}"; do cp "$f" "$work/root/sptest/" || fail "cannot ship $f"; done
(cd "$work/root" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) | gzip -n > "$work/test.cpio.gz" ||
    fail "packing the test script failed"
extra=
if [ "$virsh" = 1 ]; then
    command -v virsh >/dev/null || fail "virsh not found: install the Debian package libvirt-clients"
    mkdir -p "$work/vroot/usr/bin"
    cp "$(command -v virsh)" "$work/vroot/usr/bin/virsh"
    for lib in $(ldd "$(command -v virsh)" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
        mkdir -p "$work/vroot$(dirname "$lib")"
        cp -L "$lib" "$work/vroot$lib" || fail "cannot copy $lib (for virsh)"
    done
    (cd "$work/vroot" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) | gzip -1 -n > "$work/virsh.cpio.gz" ||
        fail "packing virsh failed"
    extra=$work/virsh.cpio.gz
fi
cat "$hostrd" ${extra:+"$extra"} "$work/test.cpio.gz" > "$work/initrd.gz" || fail "cannot write $work/initrd.gz"

# boot TMO: one boot of the emulated host, for at most TMO seconds.  Sets
# qrc (QEMU's status under `timeout`) and frozen (1 when the console did
# not grow for $freeze seconds and QEMU was killed for it).  The hang report
# (emuhost-init) comes a minute before the kill, counted in guest uptime
# (the boot takes a few seconds of it).
console=${log:-$work/console.log}
boot() {
    local tmo=$1 watchdog=$(($1 > 120 ? $1 - 60 : 0)) qpid size last now grown
    emuhost_machine_args "$mem"
    timeout -k 10 "$tmo" qemu-system-x86_64 "${qemu_machine[@]}" \
        -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
        -append "console=ttyS0 quiet lapic=notscdeadline panic=-1 oops=panic sptest.watchdog=$watchdog${kvm_amd:+ sptest.kvm_amd=$kvm_amd}" \
        < /dev/null > "$console" 2>&1 &
    qpid=$!
    frozen=0
    last=0
    grown=$(date +%s)
    while kill -0 $qpid 2>/dev/null; do
        sleep 2
        size=$(stat -c %s "$console" 2>/dev/null || echo 0)
        now=$(date +%s)
        if [ "$size" != "$last" ]; then
            last=$size
            grown=$now
        elif [ "$freeze" -gt 0 ] && [ $((now - grown)) -ge "$freeze" ] &&
            ! grep -q '^SPTEST-RESULT' "$console"; then # (a result: QEMU ends by itself)
            frozen=1
            pkill -KILL -P $qpid qemu-system 2>/dev/null || kill $qpid 2>/dev/null
            break
        fi
    done
    wait $qpid 2>/dev/null # (no "Killed" job notice for a frozen one)
    qrc=$?
}
# clean: the console without CRs and the terminal escapes SeaBIOS and the
# kernel emit.
clean() { tr -d '\r' < "$console" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g'; }

t0=$(date +%s%N)
elapsed() { echo $((($(date +%s%N) - t0) / 1000000000)); }
boot "$tmo"
if [ "$frozen" = 1 ]; then
    left=$((tmo - $(elapsed)))
    echo "# emuhost: the emulated host froze: its console (heartbeat every 20 s) did not grow for $freeze s; QEMU killed after $(elapsed) s; its last lines:"
    clean | grep -v '^SPTEST-ALIVE' | tail -n 12 | sed 's/^/# emuhost:   /'
    if [ $left -lt 120 ]; then
        fail "the emulated host froze (no console output for $freeze s) and $left s are too few to boot it again"
    fi
    echo "# emuhost: booted again for the whole test, in the $left s left"
    boot "$left"
    [ "$frozen" = 1 ] && fail "the emulated host froze twice (no console output for $freeze s, each time)"
fi
wall=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
clean > "$work/console.txt"
booted=$(sed -n 's/^SPTEST-BOOTED //p' "$work/console.txt" | head -n1)
mods=$(sed -n 's/^SPTEST-MODULES //p' "$work/console.txt" | head -n1)
result=$(sed -n 's/^SPTEST-RESULT \([0-9]*\)$/\1/p' "$work/console.txt" | tail -n1)

sed -n 's/^SPTEST| //p' "$work/console.txt"
echo "# emuhost: init reached at ${booted:-?} s of guest uptime; qemu wall time $wall s; modules: ${mods:-?}"

if [ -z "$result" ]; then
    echo "# emuhost: last console lines:" >&2
    grep -v '^SPTEST' "$work/console.txt" | tail -n 15 | sed 's/^/#   /' >&2
    if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
        fail "timed out after $tmo s (qemu killed) without a result"
    fi
    fail "no SPTEST-RESULT on the console (qemu exit status $qrc): the emulated host crashed or the test died"
fi
exit "$result"
