#!/bin/sh
# tests/emuhost/inner-numa.sh - runs INSIDE the emulated host (busybox sh),
# which has two NUMA nodes (docs/numa.md, issue 13).
#
# Under samepaged, with memload guests that verify their own memory:
#  - placement: a VM defined with <numatune><memory mode='strict'
#    nodeset='1'/> has >= 99 % of its resident guest pages on node 1, as
#    the kernel says (move_pages in query mode, through `samepage numatune
#    --json`, and the VM process's /proc/PID/numa_maps);
#  - migration: `samepage numatune --nodeset 0 --live` moves it to node 0
#    while it runs, then back to node 1: >= 99 % on the target each time,
#    the guest verifies on, zero integrity errors;
#  - shared frames: two VMs sharing pages on node 0 (the periodic
#    re-homing pass puts the frames on node 0 too), one moved to node 1:
#    its private pages move (what stays on node 0 is at most the pages it
#    maps from shared frames), the frames stay shared (pages_sharing keeps
#    its level), zero integrity errors; then the other one moves too: now
#    all sharers want node 1, so samepaged moves the shared frames there
#    (shm_numa_frames_rehomed), and the first VM has (almost) nothing left
#    on node 0, sharing still at its level;
#  - a node set naming a node the host lacks is refused, nothing changes;
#  - merge_across_nodes=0 (set with Debian's virsh node-memory-tune once
#    nothing is shared): two VMs with the same contents, one per node, share
#    nothing across nodes - each keeps >= 99 % of its pages on its own node
#    as the kernel says, so none maps the other node's frames - while each
#    node shares its own duplicates (shm_node<N>_pages_sharing, which add
#    up to shm_pages_sharing); changing the knob back while pages are
#    shared is refused as KSM refuses it (EBUSY); then m1 is moved live
#    to node 0: its pages leave node 1's frames (split, private copies on
#    node 0), node 1 shares nothing any more, and node 0's index merges
#    them with m0's (the same contents, now on one node).
# The guest of the first VM does not share (<nosharepages/>), so every one
# of its resident pages is private and must follow the policy.  Prints TAP.
. "$(dirname "$0")/tap.sh" # /sptest/tap.sh, shipped by run-in-emuhost.sh
echo "1..19"
S=/tmp/spd
mkdir -p $S
samepaged -d $S/state -s $S/sock --runtime-dir $S/run >$S/daemon.log 2>&1 &
SPD=$!
i=0
while [ ! -S $S/sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
C="--connect $S/sock"
TAP_DIAG="/tmp/out"

# vm_xml NAME MIB ARGS DOMAIN NODESET [BACKING]
vm_xml() {
    cat <<XML
<domain type='kvm'>
  <name>$1</name>
  <memory unit='MiB'>$2</memory>
  <vcpu>1</vcpu>
  $6
  <numatune><memory mode='strict' nodeset='$5'/></numatune>
  <os><type>hvm</type></os>
  <metadata>
    <sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1">
      <sp:payload>memload</sp:payload>
      <sp:args>$3</sp:args>
      <sp:domain>$4</sp:domain>
    </sp:samepage>
  </metadata>
</domain>
XML
}
# jnum KEY FILE: the first number after "KEY" in JSON
jnum() { grep -o "\"$1\" *: *[0-9]*" "$2" | head -n1 | sed 's/.*: *//'; }
vstat() { samepage stats "$1" --json $C >/tmp/st.json 2>/dev/null; jnum "$2" /tmp/st.json; }
rounds() { vstat "$1" samepage.guest.rounds; }
errors() { vstat "$1" samepage.guest.integrity_errors; }
wait_rounds() { # NAME N [S]: up to S (300) seconds for N verify rounds
    i=0
    while below "$(rounds "$1")" "$2" && [ $i -lt "${3:-300}" ]; do sleep 1; i=$((i + 1)); done
    [ "$(rounds "$1")" -ge "$2" ] 2>/dev/null
}
# node_pages NAME: "N0 N1" resident guest pages per node (move_pages, via samepaged)
node_pages() {
    samepage numatune "$1" --json $C >/tmp/nt.json 2>&1
    tr -d ' \n' </tmp/nt.json | sed -n 's/.*"numa_pages":\[\([0-9,]*\)\].*/\1/p' | awk -F, '{ print $1 + 0, $2 + 0 }'
}
# pct_on NODE "N0 N1": per cent of the pages on NODE (integer, rounded down)
pct_on() { echo "$2" | awk -v n="$1" '{ t = $1 + $2; print t ? int(100 * (n == 0 ? $1 : $2) / t) : 0 }'; }
vm_pid() { # the VM process (the image has no pgrep)
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <$p/cmdline; } 2>/dev/null | grep -q "listen=$S/run/vms/$1.sock" && echo ${p#/proc/}
    done
}
# maps_on NODE PID: per cent of the largest mapping's pages (guest RAM) on NODE, from numa_maps
maps_on() {
    awk -v want="N$1" '{ t = 0; w = 0
        for (i = 3; i <= NF; i++) if ($i ~ /^N[0-9]+=/) { split($i, a, "="); t += a[2]; if (a[1] == want) w += a[2] }
        if (t > bt) { bt = t; bw = w } } END { print bt ? int(100 * bw / bt) : 0 }' /proc/$2/numa_maps
}
move() { # NAME NODES: samepage numatune --live; prints its seconds
    samepage numatune "$1" --nodeset "$2" --live $C >/tmp/out 2>&1 || return 1
    sed -n "s/.*NUMA policy set (\([0-9.]*\) s).*/\1/p" /tmp/out
}

# --- placement ---
vm_xml p 128 seed=11,rate=50,interval=100 p 1 '<memoryBacking><nosharepages/></memoryBacking>' >$S/p.xml
samepage define $S/p.xml $C >/tmp/out 2>&1 && samepage start p $C >>/tmp/out 2>&1
wait_rounds p 1
pid=$(vm_pid p)
np=$(node_pages p)
check "placement: strict:1 puts $(pct_on 1 "$np") % of the resident guest pages on node 1 (pages per node: $np; numa_maps of guest RAM: $(maps_on 1 "$pid") %)" \
    eval '[ "$(pct_on 1 "$np")" -ge 99 ] && [ "$(maps_on 1 "$pid")" -ge 99 ] && [ $(echo $np | awk "{print \$1 + \$2}") -ge 4096 ]'

# --- migration, while the guest verifies ---
r0=$(rounds p)
s1=$(move p 0)
rc=$?
np=$(node_pages p)
check "migration 1 -> 0 (samepage numatune --nodeset 0 --live, ${s1:-?} s): $(pct_on 0 "$np") % on node 0 ($np), numa_maps $(maps_on 0 "$pid") %" \
    eval '[ $rc = 0 ] && [ "$(pct_on 0 "$np")" -ge 99 ] && [ "$(maps_on 0 "$pid")" -ge 99 ]'
s2=$(move p 1)
rc=$?
np=$(node_pages p)
mig=$(grep -o '"pages_migrated" *: *[0-9]*' /tmp/nt.json | sed 's/.*: *//')
total=$(echo $np | awk '{print $1 + $2}')
check "migration 0 -> 1 (${s2:-?} s): $(pct_on 1 "$np") % on node 1 ($np); pages_migrated $mig after two moves of $total pages" \
    eval '[ $rc = 0 ] && [ "$(pct_on 1 "$np")" -ge 99 ] && [ "${mig:-0}" -ge $((total * 2 * 99 / 100)) ]'
wait_rounds p $((r0 + 2))
r1=$(rounds p)
check "the guest verified on through both moves (rounds $r0 -> $r1), no integrity error" \
    eval '[ "${r1:-0}" -gt "${r0:-0}" ] && [ "$(errors p)" = 0 ]'
echo "# numa-move: 128 MiB VM, $total resident pages: 1->0 ${s1:-?} s, 0->1 ${s2:-?} s (TCG: placement and throughput only)"

samepage numatune p --nodeset 2 --live $C >/tmp/out 2>&1
rc=$?
check "a node the host lacks is refused naming it; the VM stays on node 1" \
    eval '[ $rc != 0 ] && grep -q "no NUMA node 2" /tmp/out && [ "$(pct_on 1 "$(node_pages p)")" -ge 99 ]'
samepage destroy p $C >/dev/null 2>&1

# --- shared frames ---
for v in s1 s2; do
    vm_xml $v 64 seed=7,rate=5,interval=200 shared 0 >$S/$v.xml
    samepage define $S/$v.xml $C >/tmp/out 2>&1 && samepage start $v $C >>/tmp/out 2>&1
done
wait_rounds s1 1 && wait_rounds s2 1
sharing() { samepage stats --json $C >/tmp/all.json 2>/dev/null; jnum shm_pages_sharing /tmp/all.json; }
i=0
while below "$(sharing)" 4000 && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
before=$(sharing)
check "two VMs on node 0 share pages (pages_sharing $before)" eval '[ "${before:-0}" -ge 4000 ]'
# frames are made where samepaged's engine thread runs; the periodic
# re-homing pass (every 30 s) puts them where their sharers are and
# counts the frames per node; wait for both (the pages may already be on
# node 0 before that pass has run once, its counts are 0 / 0 until then)
frames_counted() {
    samepage stats --json $C >/tmp/all.json 2>/dev/null
    f0=$(jnum shm_node0_frames /tmp/all.json) f1=$(jnum shm_node1_frames /tmp/all.json)
    [ "${f0:-0}" -ge 1000 ]
}
i=0
while { [ "$(pct_on 0 "$(node_pages s1)")" -lt 99 ] || ! frames_counted; } && [ $i -lt 80 ]; do sleep 1; i=$((i + 1)); done
np=$(node_pages s1)
frames_counted
check "merge_across_nodes=1: the shared frames sit on their sharers' node: s1 has $(pct_on 0 "$np") % of its pages on node 0 ($np) after $i s; frames per node (kernel, last re-homing pass) $f0 / $f1" \
    eval '[ "$(pct_on 0 "$np")" -ge 99 ] && [ "${f0:-0}" -ge 1000 ] && [ "${f1:-1}" -le $((f0 / 100)) ]'
r0=$(rounds s1)
sm=$(move s1 1)
rc=$?
np=$(node_pages s1)
merged=$(vstat s1 samepage.dedup.pages_merged)
after=$(sharing)
n0=$(echo $np | cut -d' ' -f1) n1=$(echo $np | cut -d' ' -f2)
check "s1 moved to node 1 (${sm:-?} s): its private pages moved ($n1 on node 1), what stays on node 0 ($n0) is at most the pages it maps from shared frames ($merged) plus 1 %" \
    eval '[ $rc = 0 ] && [ "$n1" -ge 500 ] && [ "$n0" -le $(( ${merged:-0} + (n0 + n1) / 100 )) ]'
check "the frames stay shared: pages_sharing $before -> $after (at least 95 %)" \
    eval '[ -n "$after" ] && [ "${after:-0}" -ge $(( ${before:-1} * 95 / 100 )) ]'
s2s=$(move s2 1)
rc=$?
np=$(node_pages s1)
n0=$(echo $np | cut -d' ' -f1) n1=$(echo $np | cut -d' ' -f2)
samepage stats --json $C >/tmp/all.json 2>/dev/null
rehomed=$(jnum shm_numa_frames_rehomed /tmp/all.json)
misplaced=$(jnum shm_numa_frames_misplaced /tmp/all.json)
after2=$(jnum shm_pages_sharing /tmp/all.json)
check "s2 moved to node 1 too (${s2s:-?} s): the shared frames follow their sharers ($rehomed re-homed, $misplaced misplaced), s1 keeps $n0 of $((n0 + n1)) pages on node 0 (at most 1 %)" \
    eval '[ $rc = 0 ] && [ "$n0" -le $(((n0 + n1) / 100)) ]'
if [ "$n0" -gt $(((n0 + n1) / 100)) ]; then # where s1's node-0 pages are: its mappings by kind
    awk '{ n = 0; for (i = 3; i <= NF; i++) if ($i ~ /^N0=/) { split($i, a, "="); n = a[2] }
           k = "anon"; for (i = 3; i <= NF; i++) if ($i ~ /^file=/) k = $i
           s[k] += n; m[k]++ } END { for (k in s) print "#   s1 node-0 pages in " k ": " s[k] " (" m[k] " mappings)" }' /proc/$(vm_pid s1)/numa_maps
    grep -h 'numa-rehome\|numa' $S/daemon.log | tail -n 5 | sed 's/^/#   log: /'
fi
check "... and they are still shared: pages_sharing $before -> $after2 (at least 95 %)" \
    eval '[ -n "$after2" ] && [ "$after2" -ge $(( ${before:-1} * 95 / 100 )) ]'
wait_rounds s1 $((r0 + 1))
check "both guests verify on (s1 rounds $r0 -> $(rounds s1)), no integrity error" \
    eval '[ "$(rounds s1)" -gt "${r0:-0}" ] && [ "$(errors s1)" = 0 ] && [ "$(errors s2)" = 0 ]'
samepage destroy s1 $C >/dev/null 2>&1
samepage destroy s2 $C >/dev/null 2>&1

# --- merge_across_nodes=0 ---
V="/usr/bin/virsh -c samepage+unix:///system?socket=$S/sock"
# shm KEY: one figure, read now; shm_snap KEY: from the last `snap` (one reading)
shm() { $V node-memory-tune >/tmp/nmt 2>&1; shm_snap "$1"; }
snap() { $V node-memory-tune >/tmp/nmt 2>&1; }
shm_snap() { awk -v k="shm_$1" '$1 == k":" || $1 == k {print $NF}' /tmp/nmt; }
i=0
while [ "$(shm pages_shared)" != 0 ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
$V node-memory-tune --shm-merge-across-nodes 0 >/tmp/out 2>&1
rc=$?
check "with nothing shared, virsh node-memory-tune --shm-merge-across-nodes 0 is accepted (now $(shm merge_across_nodes))" \
    eval '[ $rc = 0 ] && [ "$(shm merge_across_nodes)" = 0 ]'
for v in m0:0 m1:1; do
    vm_xml ${v%:*} 64 seed=7,rate=50,dup=100,pool=8,interval=200 shared ${v#*:} >$S/${v%:*}.xml
    samepage define $S/${v%:*}.xml $C >/tmp/out 2>&1 && samepage start ${v%:*} $C >>/tmp/out 2>&1
done
wait_rounds m0 1 && wait_rounds m1 1
i=0
while { [ "$(shm node0_pages_sharing)" -lt 300 ] || [ "$(shm node1_pages_sharing)" -lt 300 ]; } 2>/dev/null && [ $i -lt 120 ]; do
    sleep 1
    i=$((i + 1))
done
sleep 5
np0=$(node_pages m0)
np1=$(node_pages m1)
snap
ps0=$(shm_snap node0_pages_sharing) ps1=$(shm_snap node1_pages_sharing) ps=$(shm_snap pages_sharing)
check "merge_across_nodes=0: m0 (node 0) keeps $(pct_on 0 "$np0") % of its pages on node 0 ($np0), m1 (node 1) $(pct_on 1 "$np1") % on node 1 ($np1): neither maps the other node's frames" \
    eval '[ "$(pct_on 0 "$np0")" -ge 99 ] && [ "$(pct_on 1 "$np1")" -ge 99 ]'
check "... each node shares its own duplicates (node 0: $ps0, node 1: $ps1 pages_sharing; all: $ps)" \
    eval '[ "${ps0:-0}" -ge 300 ] && [ "${ps1:-0}" -ge 300 ] && [ $((ps0 + ps1)) = "$ps" ]'
$V node-memory-tune --shm-merge-across-nodes 1 >/tmp/out 2>&1
rc=$?
check "changing merge_across_nodes while pages are shared is refused (KSM's EBUSY), the knob stays 0, the guests verify on" \
    eval '[ $rc != 0 ] && grep -qi "busy" /tmp/out && [ "$(shm merge_across_nodes)" = 0 ] && [ "$(errors m0)" = 0 ] && [ "$(errors m1)" = 0 ]'
n0before=$(shm node0_pages_sharing)
r0=$(rounds m1)
sm=$(move m1 0)
rc=$?
np1=$(node_pages m1)
split=$(shm numa_pages_split)
check "m1 moved live to node 0 (${sm:-?} s): its pages left node 1's frames ($split split), $(pct_on 0 "$np1") % of them on node 0 ($np1), node 1 shares nothing now ($(shm node1_pages_shared) frames, $(shm node1_pages_sharing) sharing)" \
    eval '[ $rc = 0 ] && [ "${split:-0}" -ge 300 ] && [ "$(pct_on 0 "$np1")" -ge 99 ] && [ "$(shm node1_pages_sharing)" = 0 ] && [ "$(shm node1_pages_shared)" = 0 ]'
i=0
while below "$(shm node0_pages_sharing)" 4000 && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
wait_rounds m1 $((r0 + 2))
np1=$(node_pages m1)
check "... node 0's index merges them with m0's (node 0 pages_sharing $n0before -> $(shm node0_pages_sharing)), m1 still $(pct_on 0 "$np1") % on node 0, both verify on, no integrity error" \
    eval '[ "$(shm node0_pages_sharing)" -ge 4000 ] && [ "$(pct_on 0 "$np1")" -ge 99 ] && [ "$(rounds m1)" -gt "${r0:-0}" ] && [ "$(errors m0)" = 0 ] && [ "$(errors m1)" = 0 ]'
samepage destroy m0 $C >/dev/null 2>&1
samepage destroy m1 $C >/dev/null 2>&1
kill -TERM $SPD 2>/dev/null
wait $SPD

# --- samepage run --engine=ksm on a 2-node host with NUMA balancing on:
# a note names it (this kernel's KSM then merges almost nothing of unbound
# guest RAM, docs/emuhost.md); with it off, no note
nb=$(cat /proc/sys/kernel/numa_balancing)
echo 1 >/proc/sys/kernel/numa_balancing
samepage run --engine=ksm --timeout 1 --vm name=k,mem=16M,payload=memload >/tmp/k1.out 2>&1
rc1=$?
echo 0 >/proc/sys/kernel/numa_balancing
samepage run --engine=ksm --timeout 1 --vm name=k,mem=16M,payload=memload >/tmp/k0.out 2>&1
rc0=$?
echo "$nb" >/proc/sys/kernel/numa_balancing
check "--engine=ksm with kernel.numa_balancing on and 2 nodes: a note says so (exit $rc1); off: none (exit $rc0)" \
    eval '[ $rc1 = 0 ] && [ $rc0 = 0 ] && grep -q "note: kernel.numa_balancing is on with 2 NUMA nodes" /tmp/k1.out && ! grep -q numa_balancing /tmp/k0.out'
