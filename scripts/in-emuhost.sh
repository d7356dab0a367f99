#!/bin/bash
# scripts/in-emuhost.sh - run a command on this machine's own files, but under
# the emulated host's kernel, whose /dev/kvm is real KVM (AMD SVM, emulated by
# QEMU TCG).  For machines that have no /dev/kvm of their own.
#
# Usage: in-emuhost.sh [--mem MB] [--timeout S] [--builddir DIR] [--images DIR]
#                      [--] COMMAND [ARGS...]
#
# QEMU boots the emulated host (scripts/guest-images.sh: Debian's kernel, two
# NUMA nodes, 2 vCPUs) with this machine's root file system shared over 9p
# (-virtfs, read-write, as root).  The emulated host mounts it, gives it
# fresh /proc, /sys (with cgroup2), /dev, /run and /tmp of its own, loopback
# up and this machine's host name, and runs
# COMMAND chrooted there, in the current directory, with this environment's
# PATH (less pyenv's shims), HOME, LANG, CI and SAMEPAGE_* variables plus
# SAMEPAGE_IN_EMUHOST=1.
# So everything installed here (Debian's virsh, python3-libvirt, ...) and the
# build tree are used as they are, and what COMMAND writes lands here.
# COMMAND's output is printed here as it comes (and every 20 s the emulated
# host's process list is written to .in-emuhost/run.*/ps); the exit status is
# COMMAND's, 124 if --timeout ran out, 123 if the emulated host froze or
# reset on its own (below), or
# 125 if the emulated host could not run it (QEMU missing, image build
# failed, 9p mount failed: a one-line reason on stderr).
#
# A frozen emulated host: its process list not written for --freeze
# seconds (no process there gets to run; seen about once an hour under
# load).  Then where its CPUs are (QEMU's monitor, scripts/emuhost-cpus.py:
# RIP with the kernel's symbol, or a nested guest's) goes to stderr and
# .in-emuhost/frozen.N, QEMU is killed and the status is 123: the caller
# may start it again for what did not finish (.ci/run does).  Seen once
# from inside (2026-12-03): both CPUs halted in the idle loop, and the
# kernel's "rcu_preempt kthread timer wakeup didn't happen for 5251
# jiffies ... Possible timer handling issue on cpu=0": timer interrupts
# that never came.  So the kernel runs with lapic=notscdeadline (the local
# APIC's one-shot count instead of TCG's TSC-deadline timer); whether
# that was the cause is not established.  Another kind, both CPUs taking
# int3 forever where KVM's first and last VM patch the scheduler's code,
# is avoided: emuhost-init holds one KVM VM open for the whole run
# (docs/emuhost.md).
#
# Cost: the emulated host runs everything several times slower than this
# machine (TCG), and /dev/kvm there uses shadow paging (docs/emuhost.md).
# Nothing else may write the tree meanwhile.
#
#   --mem MB       emulated host RAM (default: half of this machine's, at
#                  most 16384; split over its two nodes)
#   --timeout S    kill QEMU after S seconds (default 5400)
#   --freeze S     call the emulated host frozen after S seconds without
#                  progress (default 300; 0: never)
#   --builddir D   where samepage was built (default: top_builddir or .)
#   --images D     image cache (default: SAMEPAGE_IMAGES or D/images)
set -uo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=${top_builddir:-$PWD}
images=${SAMEPAGE_IMAGES:-}
mem=
tmo=5400
freeze=300

usage() { sed -n '2,/^set -uo/p' "$0" | sed 's/^# \{0,1\}//;$d'; }
fail() {
    echo "in-emuhost: error: $*" >&2
    exit 125
}

while [ $# -gt 0 ]; do
    case "$1" in
    --mem) mem=$2; shift 2 ;;
    --timeout) tmo=$2; shift 2 ;;
    --freeze) freeze=$2; shift 2 ;;
    --builddir) builddir=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) fail "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$mem$tmo$freeze" in *[!0-9]*) fail "--mem, --timeout and --freeze take whole numbers" ;; esac
if [ -z "$mem" ]; then
    mem=$(awk '/^MemTotal:/ { m = int($2 / 2048); print (m > 16384 ? 16384 : m) }' /proc/meminfo)
fi
[ "$mem" -ge 1024 ] || fail "--mem $mem: at least 1024 MB"
. "$srcdir/tests/emuhost/emuhost-lib.sh"
emuhost_images

# The run directory must be on a disk the emulated host sees through 9p.
# The emulated host has a /tmp of its own; a tree in this machine's /tmp
# (a CI checkout there) stays in sight: the top directory under /tmp that
# holds the run directory is moved over into it (tests/emuhost/emuhost-init).
mkdir -p "$builddir/.in-emuhost" || fail "cannot create $builddir/.in-emuhost"
run=$(mktemp -d "$(cd "$builddir" && pwd)/.in-emuhost/run.XXXXXX") || fail "mktemp failed"
case "$run" in *[[:space:]]*) fail "the build directory's path has a space: $run" ;; esac
# QEMU's monitor socket (a Unix socket path has at most 107 bytes)
monitor=$(mktemp -u /tmp/sp-emuhost-monitor.XXXXXX)
qpid=
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
    rm -rf "$run" "$monitor"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
{
    echo "cd $(printf %q "$PWD") || exit 125"
    export -p | grep -E '^(declare -x|export) (HOME|LANG|LC_ALL|CI|SAMEPAGE_[A-Z_]*|top_builddir)='
    # PATH without pyenv's shims: each is a bash script that costs seconds
    # there, and a test's python3 is Debian's (/usr/bin/python3) anyway.
    echo "export PATH=$(printf %q "$(echo "$PATH" | tr ':' '\n' | grep -v '/\.pyenv/' | paste -sd:)")"
    echo "export SAMEPAGE_IN_EMUHOST=1"
    printf 'exec'
    printf ' %q' "$@"
    echo
} > "$run/run.sh"
: > "$run/out"
hostname > "$run/hostname" 2>/dev/null

# freeze_watch: in the background, kills QEMU when the emulated host's
# process list (written every 20 s) has not changed for $freeze seconds,
# or was never written $freeze seconds after QEMU started (seen on
# 2026-12-06: both CPUs in soft lockups from the kernel's first seconds,
# which waited for --timeout before), after writing where its CPUs were
# to $run/frozen.
freeze_watch() {
    local m now smap when
    while sleep 20; do
        kill -0 "$qpid" 2>/dev/null || return 0
        if m=$(stat -c %Y "$run/ps" 2>/dev/null); then
            when="its process list was last written at $(date -d @"$m" +%T) (every 20 s)"
        else
            m=$t0
            when="its process list was never written (it froze while booting)"
        fi
        now=$(date +%s)
        [ $((now - m)) -ge "$freeze" ] || continue
        smap=$run/kallsyms # (emuhost-init writes it at start)
        {
            echo "no progress for $((now - m)) s: $when;"
            echo "QEMU's CPU time: $(ps -o times= -p "$(pgrep -P "$qpid" qemu-system 2>/dev/null | head -n1)" 2>/dev/null) s; where its CPUs are:"
            /usr/bin/python3 "$srcdir/scripts/emuhost-cpus.py" "$monitor" "$smap" 3 2
            echo "its last process list (.in-emuhost/run.*/ps):"
            sed 's/^/  /' "$run/ps" 2>/dev/null
        } > "$run/frozen" 2>&1
        kill "$qpid" 2>/dev/null
        return 0
    done
}

t0=$(date +%s)
emuhost_machine_args "$mem"
# (a monitor socket instead of none: where the CPUs are when it freezes)
for i in "${!qemu_machine[@]}"; do
    [ "${qemu_machine[$i]}" = -monitor ] && qemu_machine[$((i + 1))]=unix:$monitor,server=on,wait=off
done
timeout -k 10 "$tmo" qemu-system-x86_64 "${qemu_machine[@]}" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,multidevs=remap,id=hostroot \
    -kernel "$vmlinuz" -initrd "$hostrd" \
    -append "console=ttyS0 quiet nokaslr lapic=notscdeadline panic=-1 oops=panic sptest.hostrun=$run" \
    < /dev/null > "$run/console" 2>&1 &
qpid=$!
tail -n +1 -f --pid="$qpid" "$run/out" &
wpid=
if [ "$freeze" -gt 0 ]; then
    freeze_watch &
    wpid=$!
fi
wait "$qpid"
qrc=$?
qpid=
[ -n "$wpid" ] && kill "$wpid" 2>/dev/null
wait
rc=$(cat "$run/rc" 2>/dev/null)
if [ -z "$rc" ] && [ -f "$run/frozen" ]; then
    n=1
    while [ -e "$builddir/.in-emuhost/frozen.$n" ]; do n=$((n + 1)); done
    cp "$run/frozen" "$builddir/.in-emuhost/frozen.$n"
    tr -d '\r' < "$run/console" > "$builddir/.in-emuhost/frozen.$n.console"
    echo "in-emuhost: error: the emulated host froze, QEMU killed after $(($(date +%s) - t0)) s (.in-emuhost/frozen.$n, its console frozen.$n.console):" >&2
    sed 's/^/  /' "$run/frozen" | head -n 60 >&2
    echo "in-emuhost: its last console lines:" >&2
    tr -d '\r' < "$run/console" | grep -v '^SPTEST' | tail -n 15 | sed 's/^/  /' >&2
    exit 123
fi
if [ -z "$rc" ]; then
    echo "in-emuhost: last console lines:" >&2
    tr -d '\r' < "$run/console" | grep -v '^SPTEST\|^STALL' | tail -n 15 | sed 's/^/  /' >&2
    # what emuhost-init saw blocked when its ps loop stopped (the last dump)
    if grep -q '^STALL: at' "$run/console"; then
        echo "in-emuhost: tasks blocked in the emulated host (its last dump):" >&2
        tr -d '\r' < "$run/console" | awk '/^STALL: at/ {n = 0; delete l} /^STALL/ {l[n++] = $0} END {for (i = 0; i < n && i < 200; i++) print "  " l[i]}' >&2
    fi
    if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
        echo "in-emuhost: error: timed out after $tmo s (qemu killed)" >&2
        exit 124
    fi
    if [ "$qrc" = 0 ]; then
        # It reset on its own (panic=-1, oops=panic, or a triple fault under
        # TCG: QEMU ends with 0 under -no-reboot): like a freeze, the caller
        # may start it again.  Seen once, 13 minutes into a run, with
        # nothing on its console.
        n=1
        while [ -e "$builddir/.in-emuhost/ended.$n.console" ]; do n=$((n + 1)); done
        tr -d '\r' < "$run/console" > "$builddir/.in-emuhost/ended.$n.console"
        echo "in-emuhost: error: the emulated host reset on its own after $(($(date +%s) - t0)) s, without the command's status (its console: .in-emuhost/ended.$n.console)" >&2
        exit 123
    fi
    fail "the emulated host ended without the command's status (qemu exit status $qrc)"
fi
echo "in-emuhost: '$*' exited with status $rc after $(($(date +%s) - t0)) s in the emulated host" >&2
exit "$rc"
