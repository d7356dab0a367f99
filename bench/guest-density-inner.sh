#!/bin/sh
# bench/guest-density-inner.sh - runs INSIDE the emulated host (busybox sh)
# for bench/guest-density: the same two identical Linux guests (Debian's
# kernel and the busybox initramfs, MIB MiB and 1 vCPU each, one sharing
# domain) under `samepage run`, once with samepage's engine and once with
# `--engine=ksm` and the emulated host's KSM, both at pages_to_scan 8192
# and sleep 20 ms, from the start.  Once both guests printed
# SP-GUEST-BOOTED, `samepage run` gets SIGUSR1 (every vCPU parks) and the
# engine converges on the idle guests.  Sampled every second from the
# start, the same way for both (one line of sysfs or of samepage's status;
# /proc/PID/task/*/schedstat of the samepage process tree's threads that
# are not vCPUs, and of ksmd): the saving (samepage: pages_sharing +
# zero_pages; KSM: pages_sharing, zero pages included since use_zero_pages
# is 0) and the engines' CPU and run-queue wait.  Converged: no growth
# above 0.5 % in the last 30 s after the boot, or MAXS seconds.  At the
# end the kernel's view: the summed Pss of the samepage process tree.
# NUMAB, if given, is written to kernel.numa_balancing first (with it on,
# this kernel's KSM merges almost nothing: docs/emuhost.md).
# Prints "RESULT key=value ..." and "SAMPLE engine t saving run wait" lines.
# (emuhost-init runs this without arguments: run-in-emuhost.sh leaves them
# in /sptest/args: MIB MAXS [NUMAB])
set -- $(cat /sptest/args 2>/dev/null) "$@"
MIB=${1:-256}
MAXS=${2:-300}
K=$SP_IMAGES/vmlinuz
I=$SP_IMAGES/linux-guest-initrd.gz
CMD="console=ttyS0 quiet panic=-1 sp.hold=3600"
T=/tmp/gd
mkdir -p $T
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }'; }
field() { echo "$2" | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'; }
ksm() { cat /sys/kernel/mm/ksm/$1; }
children() {
    for st in /proc/[0-9]*/stat; do
        awk -v p="$1" '$4 == p { print $1 }' "$st" 2>/dev/null
    done
}
KSMD=$(for c in /proc/[0-9]*/comm; do [ "$(cat $c 2>/dev/null)" = ksmd ] && basename "$(dirname $c)"; done | head -n 1)
# run and run-queue wait (ns) summed over the threads of PIDs that are not
# vCPUs (named NAME/vcpuN): the engine's side, "RUN WAIT"
sched() {
    for p in "$@"; do
        for t in /proc/$p/task/*; do
            case "$(cat $t/comm 2>/dev/null)" in */vcpu*) ;; *) cat $t/schedstat 2>/dev/null ;; esac
        done
    done | awk '{ r += $1; w += $2 } END { printf "%.0f %.0f\n", r, w }'
}
saving() {
    if [ "$1" = samepage ]; then
        l=$(grep '^\[engine\]' "$out" | tail -n 1)
        a=$(field sharing "$l") z=$(field zero "$l")
        echo $((${a:-0} + ${z:-0}))
    else
        ksm pages_sharing
    fi
}
booted() { grep -q '^\[l1\] SP-GUEST-BOOTED' "$out" && grep -q '^\[l2\] SP-GUEST-BOOTED' "$out"; }

run_engine() { # ENGINE
    e=$1
    out=$T/$e.out
    echo 8192 >/sys/kernel/mm/ksm/pages_to_scan
    echo 20 >/sys/kernel/mm/ksm/sleep_millisecs
    echo 0 >/sys/kernel/mm/ksm/use_zero_pages
    if [ $e = ksm ]; then
        echo 1 >/sys/kernel/mm/ksm/run
        args=--engine=ksm
    else
        echo 2 >/sys/kernel/mm/ksm/run
        args="--pages-to-scan=8192 --sleep-millisecs=20"
    fi
    set -- $(sched $KSMD)
    k_r0=$1 k_w0=$2
    t0=$(up)
    samepage run --status=1 $args \
        --vm "name=l1,mem=${MIB}M,vcpus=1,domain=lx,kernel=$K,initrd=$I,cmdline=$CMD" \
        --vm "name=l2,mem=${MIB}M,vcpus=1,domain=lx,kernel=$K,initrd=$I,cmdline=$CMD" \
        >"$out" 2>&1 &
    pid=$!
    : >$T/$e.samples
    t_boot= s_boot= n=0 nb=0
    while kill -0 $pid 2>/dev/null; do
        sleep 1
        set -- $(sched $pid $(children $pid) $KSMD)
        echo "$(since $t0) $(saving $e) $(($1 - k_r0)) $(($2 - k_w0))" >>$T/$e.samples
        n=$((n + 1))
        if [ -z "$t_boot" ]; then
            if booted; then
                t_boot=$(since $t0) s_boot=$(saving $e)
                kill -USR1 $pid # every vCPU parks; the engine goes on
            elif [ $n -ge 900 ]; then
                break
            fi
            continue
        fi
        nb=$((nb + 1))
        [ $nb -ge "$MAXS" ] && break
        # converged: the last 30 samples grew by at most 0.5 %
        [ $nb -ge 30 ] && tail -n 31 $T/$e.samples |
            awk 'NR == 1 { a = $2 } END { exit !($2 <= a * 1.005) }' && break
    done
    if [ -z "$t_boot" ]; then
        echo "# $e: the guests did not both boot within 900 s; last lines:"
        tail -n 5 "$out" | sed 's/^/#   /'
        kill $pid 2>/dev/null
        wait $pid
        return 1
    fi
    grep -q '^samepage: suspended 2 VMs' "$out" || echo "# $e: the VMs were not suspended: $(grep '^samepage:' "$out" | tail -n 2)"
    pss=0
    for p in $pid $(children $pid); do
        pss=$((pss + $(awk '$1 == "Pss:" { s += $2 } END { print s + 0 }' /proc/$p/smaps_rollup 2>/dev/null)))
        # where it is (kB): the process, then its Pss by kind and its heap
        awk -v e=$e -v c="$(cat /proc/$p/comm)" '
            /^(Rss|Pss|Pss_Anon|Pss_File|Pss_Shmem):/ { v[$1] = $2 }
            END { printf "PSS %s %s rss=%d pss=%d anon=%d file=%d shmem=%d", e, c, v["Rss:"], v["Pss:"],
                         v["Pss_Anon:"], v["Pss_File:"], v["Pss_Shmem:"] }' /proc/$p/smaps_rollup
        awk '/^[0-9a-f]+-[0-9a-f]+ / { h = ($6 == "[heap]"); a = (NF == 5) }
             h && $1 == "Pss:" { hp += $2 } a && $1 == "Pss:" { ap += $2 }
             END { printf " heap=%d anon_mappings=%d\n", hp, ap }' /proc/$p/smaps
    done
    ksm_line="$(ksm pages_shared) $(ksm pages_sharing) $(ksm pages_unshared) $(ksm pages_volatile) $(ksm full_scans)"
    kill -TERM $pid
    wait $pid
    awk -v e=$e -v tb="$t_boot" -v sb="$s_boot" -v pss="$pss" '
        { t[NR] = $1; s[NR] = $2; r[NR] = $3; w[NR] = $4 }
        END {
            f = s[NR]; for (i = 1; i <= NR && s[i] < 0.99 * f; i++) ;
            fmt = "RESULT engine=%s boot_s=%s saving_at_boot=%d final=%d t99=%s run99_ms=%.0f wait99_ms=%.0f"
            fmt = fmt " t_end=%s run_ms=%.0f wait_ms=%.0f pss_kb=%d\n"
            printf fmt, e, tb, sb, f, t[i], r[i] / 1e6, w[i] / 1e6, t[NR], r[NR] / 1e6, w[NR] / 1e6, pss
        }' $T/$e.samples
    echo "RESULT engine=$e ksm_counters=$(echo $ksm_line | tr ' ' ',')"
    sed 's/^/SAMPLE '$e' /' $T/$e.samples
    return 0
}

echo "1..2"
if [ -n "${3:-}" ]; then echo "$3" >/proc/sys/kernel/numa_balancing; fi
echo "# kernel.numa_balancing $(cat /proc/sys/kernel/numa_balancing 2>/dev/null || echo absent)"
echo "# guest-density: 2 Linux guests x $MIB MiB, each engine until converged (at most $MAXS s after both booted)"
if run_engine samepage; then echo "ok 1 - samepage's engine"; else echo "not ok 1 - samepage's engine"; fi
if run_engine ksm; then echo "ok 2 - the emulated host's KSM"; else echo "not ok 2 - the emulated host's KSM"; fi
echo 2 >/sys/kernel/mm/ksm/run
