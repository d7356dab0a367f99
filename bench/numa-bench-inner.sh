#!/bin/sh
# bench/numa-bench-inner.sh - runs INSIDE the emulated host (busybox sh) for
# bench/numa-bench: two memload VMs of MIB MiB with the same contents, on
# node 0, moved to node 1 one after the other, first under samepaged
# (samepage numatune --live: private pages move, then the shared frames
# follow), then under `samepage run --engine=ksm` with the emulated host's
# KSM (the kernel's migrate_pages of each VM process, numa-migrate, which
# moves KSM pages too as root).  Prints "RESULT key=value ..." lines.
# The guests time themselves (memload stall=1: a round's longest pause
# between two page checks, printed when >= 1 ms): each move reports the
# longest stall any guest printed from its start to 2 s after its end, and
# a quiet window of the same length before the moves gives the baseline
# (both engines measured the same way, from the consoles).
# (emuhost-init runs this without arguments: run-in-emuhost.sh leaves them in /sptest/args)
MIB=${1:-$(head -n 1 /sptest/args 2>/dev/null)}
MIB=${MIB:-256}
T=/tmp/nb
mkdir -p $T
jnum() { grep -o "\"$1\" *: *[0-9]*" "$2" | head -n1 | sed 's/.*: *//'; }
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }'; }
past() { awk -v a="$1" -v b="$(up)" -v s="$2" 'BEGIN { exit !(b - a > s) }'; } # T0 S: more than S s since T0
# stall marks: "FILE:LINES ..." now; longest_since MARKS: the longest stall
# (us) printed in those files since the marks (0 if none)
stall_mark() { for f in "$@"; do echo "$f:$(cat "$f" 2>/dev/null | wc -l)"; done | tr '\n' ' '; }
longest_since() {
    for m in $1; do tail -n +$((${m##*:} + 1)) "${m%:*}" 2>/dev/null; done |
        sed -n 's/.*longest stall \([0-9]*\) us.*/\1/p' | sort -n | tail -n 1 | awk '{ print $1 + 0 } END { if (!NR) print 0 }'
}
# N0 N1 of the largest mapping of a process (its guest RAM), from numa_maps
maps_nodes() {
    awk '{ a = 0; b = 0; for (i = 3; i <= NF; i++) if ($i ~ /^N[0-9]+=/) { split($i, x, "=");
               if (x[1] == "N0") a += x[2]; else if (x[1] == "N1") b += x[2] }
           if (a + b > best) { best = a + b; r0 = a; r1 = b } } END { print r0 + 0, r1 + 0 }' /proc/$1/numa_maps
}

# ---------------- samepage ----------------
S=$T/spd
samepaged -d $S/state -s $S/sock --runtime-dir $S/run >$T/daemon.log 2>&1 &
SPD=$!
i=0
while [ ! -S $S/sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
C="--connect $S/sock"
for v in a b; do
    cat >$T/$v.xml <<XML
<domain type='kvm'><name>$v</name><memory unit='MiB'>$MIB</memory><vcpu>1</vcpu>
  <numatune><memory mode='strict' nodeset='0'/></numatune><os><type>hvm</type></os>
  <metadata><sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1">
    <sp:payload>memload</sp:payload><sp:args>seed=7,rate=5,interval=200,stall=1</sp:args>
    <sp:domain>bench</sp:domain></sp:samepage></metadata></domain>
XML
    samepage define $T/$v.xml $C >/dev/null && samepage start $v $C >/dev/null
done
sharing() { samepage stats --json $C >$T/all.json 2>/dev/null; jnum shm_pages_sharing $T/all.json; }
# converged: both guests have filled their memory and verified it once
# (memload's first round: filling 1 GiB takes minutes under TCG), then
# two complete passes over all guest RAM added less than 1 % to
# pages_sharing (a window ends when full_scans has grown by 2; at most
# 900 s in all; the same rule for KSM below, with its own full_scans)
scans() { samepage stats --json $C >$T/all.json 2>/dev/null; jnum shm_full_scans $T/all.json; }
t0=$(up)
for v in a b; do
    while :; do
        samepage stats $v --json $C >$T/v.json 2>/dev/null
        [ "$(jnum samepage.guest.rounds $T/v.json)" -ge 1 ] 2>/dev/null && break
        past $t0 900 && break
        sleep 5
    done
done
echo "# samepage: both guests filled after $(since $t0) s"
prev=$(sharing)
s0=$(scans)
while :; do
    sleep 5
    past $t0 900 && break
    [ "$(scans)" -ge $((${s0:-0} + 2)) ] || continue
    cur=$(sharing)
    [ "${cur:-0}" -gt 1000 ] && [ $((cur - ${prev:-0})) -le $((cur / 100)) ] && break
    prev=$cur
    s0=$(scans)
done
echo "# samepage: converged after $(since $t0) s, pages_sharing $cur"
before=$(sharing)
CONS="$S/state/console/a.log $S/state/console/b.log"
m=$(stall_mark $CONS)
sleep 5
echo "RESULT engine=samepage baseline_stall_us=$(longest_since "$m") baseline_window_s=5"
rehomed_now() { samepage stats --json $C >$T/all.json 2>/dev/null; jnum shm_numa_frames_rehomed $T/all.json; }
for v in a b; do
    f0=$(rehomed_now)
    m=$(stall_mark $CONS)
    samepage numatune $v --nodeset 1 --live $C >$T/mv.out 2>&1
    sleep 2
    stall=$(longest_since "$m")
    secs=$(sed -n 's/.*NUMA policy set (\([0-9.]*\) s).*/\1/p' $T/mv.out)
    samepage numatune $v --json $C >$T/nt.json 2>&1
    moved=$(jnum pages_migrated $T/nt.json)
    np=$(tr -d ' \n' <$T/nt.json | sed -n 's/.*"numa_pages":\[\([0-9,]*\)\].*/\1/p' | awk -F, '{ print $1 + 0, $2 + 0 }')
    f1=$(rehomed_now)
    echo "RESULT engine=samepage vm=$v seconds=${secs:-0} pages=${moved:-0} frames=$((${f1:-0} - ${f0:-0})) nodes=$(echo $np | tr ' ' ,) stall_us=$stall"
done
samepage stats --json $C >$T/all.json 2>/dev/null
after=$(jnum shm_pages_sharing $T/all.json)
rehomed=$(jnum shm_numa_frames_rehomed $T/all.json)
errs=0
for v in a b; do
    samepage stats $v --json $C >$T/v.json 2>/dev/null
    errs=$((errs + $(jnum samepage.guest.integrity_errors $T/v.json)))
done
# the local fraction after both moves, per VM
for v in a b; do
    samepage numatune $v --json $C >$T/nt.json 2>&1
    np=$(tr -d ' \n' <$T/nt.json | sed -n 's/.*"numa_pages":\[\([0-9,]*\)\].*/\1/p' | awk -F, '{ print $1 + 0, $2 + 0 }')
    echo "RESULT engine=samepage vm=$v final_nodes=$(echo $np | tr ' ' ,)"
done
echo "RESULT engine=samepage sharing_before=$before sharing_after=$after frames_rehomed=${rehomed:-0} integrity_errors=$errs"
for v in a b; do samepage destroy $v $C >/dev/null 2>&1; done
kill -TERM $SPD; wait $SPD

# ---------------- the kernel: KSM + migrate_pages ----------------
K=/sys/kernel/mm/ksm
echo 2 >$K/run 2>/dev/null
echo 5000 >$K/pages_to_scan
echo 20 >$K/sleep_millisecs
echo 1 >$K/run
timeout 1200 samepage run --engine=ksm \
    --vm "name=a,mem=${MIB}M,numa=preferred:0,domain=bench,payload=memload,args=seed=7,rate=5,interval=200,stall=1" \
    --vm "name=b,mem=${MIB}M,numa=preferred:0,domain=bench,payload=memload,args=seed=7,rate=5,interval=200,stall=1" \
    >$T/run.out 2>&1 &
RUN=$!
sleep 5
pids=""
for p in /proc/[0-9]*; do
    tr '\0' ' ' <$p/cmdline 2>/dev/null | grep -q "samepage-vm" && pids="$pids ${p#/proc/}"
done
t0=$(up)
for v in a b; do # memload's first round done (the status lines)
    until grep -q "^\[status\] $v .* round [1-9]" $T/run.out; do
        past $t0 900 && break
        sleep 5
    done
done
echo "# kernel: both guests filled after $(since $t0) s"
prev=$(cat $K/pages_sharing)
s0=$(cat $K/full_scans)
while :; do
    sleep 5
    past $t0 900 && break
    [ "$(cat $K/full_scans)" -ge $((s0 + 2)) ] || continue
    cur=$(cat $K/pages_sharing)
    [ "$cur" -gt 1000 ] && [ $((cur - prev)) -le $((cur / 100)) ] && break
    prev=$cur
    s0=$(cat $K/full_scans)
done
echo "# kernel: KSM converged after $(since $t0) s, pages_sharing $(cat $K/pages_sharing) (VM processes:$pids)"
kbefore=$(cat $K/pages_sharing)
m=$(stall_mark $T/run.out)
sleep 5
echo "RESULT engine=kernel baseline_stall_us=$(longest_since "$m") baseline_window_s=5"
for p in $pids; do
    nb=$(maps_nodes $p)
    m=$(stall_mark $T/run.out)
    out=$(/sptest/numa-migrate $p 0 1)
    sleep 2
    stall=$(longest_since "$m")
    na=$(maps_nodes $p)
    moved=$(echo "$nb $na" | awk '{ d = $1 - $3; print (d > 0 ? d : 0) }')
    echo "RESULT engine=kernel vm=$p seconds=$(echo $out | awk '{print $2}') pages=$moved nodes=$(echo $na | tr ' ' ,) not_moved=$(echo $out | awk '{print $4}') stall_us=$stall"
done
for p in $pids; do echo "RESULT engine=kernel vm=$p final_nodes=$(maps_nodes $p | tr ' ' ,)"; done
kafter=$(cat $K/pages_sharing)
kill -INT $RUN 2>/dev/null; wait $RUN
kerr=$(grep -o "integrity-errors [0-9]*" $T/run.out | tail -n 2 | awk '{ s += $2 } END { print s + 0 }')
echo "RESULT engine=kernel sharing_before=$kbefore sharing_after=$kafter integrity_errors=$kerr"
echo 2 >$K/run
