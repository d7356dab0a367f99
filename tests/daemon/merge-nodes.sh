#!/bin/sh
# merge-nodes.sh - KSM's merge_across_nodes under samepaged, as an operator
# meets it with Debian's virsh and python3-libvirt (docs/numa.md): while
# pages are shared `virsh node-memory-tune --shm-merge-across-nodes 0` is
# refused with KSM's meaning (EBUSY) and nothing changes; run=2 (shm_run,
# an API parameter) unmerges everything, after which the change is
# accepted; with 0 and run=1 sharing comes back to its level on this
# single-node host (with several nodes both VMs are bound to node 0), all
# of it node 0's own (shm_node0_pages_sharing); a read-only connection
# cannot set shm_run; the guests verify every byte throughout.  Two
# nodes: tests/emuhost/inner-numa.sh.  TAP.
set -u
. "$(dirname "$0")/common.sh"
echo "1..7"
spd_start || { echo "Bail out! samepaged did not start"; exit 1; }
set_run() { # N: shm_run through python3-libvirt (virsh has no option for it)
    /usr/bin/python3 - "$1" "$URI" <<'PY'
import sys, libvirt
c = libvirt.open(sys.argv[2])
c.setMemoryParameters({"shm_run": int(sys.argv[1])}, 0)
PY
}
# On a host with several nodes (the emulated host has two) both VMs'
# memory is bound to node 0, so that with merge_across_nodes=0 all their
# sharing is still node 0's (at 143127f there, unbound, sharing came back
# to 3,812 of 4,940 only: the VMs' pages were on both nodes).
nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
for vm in a b; do
    vm_xml "$vm" seed=3,rate=20,interval=100 64 tenant >"$T/$vm.xml"
    V define "$T/$vm.xml" >/dev/null 2>&1
    [ "$nodes" -gt 1 ] && V numatune "$vm" --mode strict --nodeset 0 --config >/dev/null 2>&1
    V start "$vm" >/dev/null 2>&1
done
wait_rounds a 1 && wait_rounds b 1
wait_shm pages_sharing 4000
before=$(shm pages_sharing)
check "two VMs with the same contents share (pages_sharing $before, across nodes: node 0 counts none, $(shm node0_pages_sharing))" \
    sh -c "[ '${before:-0}' -ge 4000 ] && [ '$(shm node0_pages_sharing)' = 0 ]"

V node-memory-tune --shm-merge-across-nodes 0 >"$T/out" 2>&1
rc=$?
check "virsh node-memory-tune --shm-merge-across-nodes 0 while pages are shared: refused, 'busy' ($(head -c 160 "$T/out" | tr '\n' ' ')), knob still 1" \
    sh -c "[ $rc != 0 ] && grep -qi 'busy' '$T/out' && [ '$(shm merge_across_nodes)' = 1 ]"

virsh -r -c "$ROURI" node-memory-tune --shm-merge-across-nodes 0 >"$T/out" 2>&1
rc1=$?
/usr/bin/python3 - "$ROURI" >>"$T/out" 2>&1 <<'PY'
import sys, libvirt
c = libvirt.openReadOnly(sys.argv[1])
try:
    c.setMemoryParameters({"shm_run": 2}, 0)
    print("read-only set accepted")
except libvirt.libvirtError as e:
    print("refused:", e)
PY
check "a read-only connection can set neither the knob nor shm_run" \
    sh -c "[ $rc1 != 0 ] && grep -q '^refused' '$T/out' && [ '$(shm run)' = 1 ]"

set_run 2 >"$T/out" 2>&1
rc=$?
check "python3-libvirt setMemoryParameters({'shm_run': 2}): everything unmerged (pages_shared $(wait_shm pages_shared 0 0; shm pages_shared))" \
    sh -c "[ $rc = 0 ] && [ '$(shm pages_shared)' = 0 ] && [ '$(shm pages_sharing)' = 0 ] && [ '$(shm run)' = 2 ]"

V node-memory-tune --shm-merge-across-nodes 0 >"$T/out" 2>&1
rc=$?
check "after run=2 the change is accepted (merge_across_nodes $(shm merge_across_nodes))" \
    sh -c "[ $rc = 0 ] && [ '$(shm merge_across_nodes)' = 0 ]"

set_run 1 >"$T/out" 2>&1
level=$((before * 95 / 100))
wait_shm node0_pages_sharing "$level"
# one reading for all four: the guests churn, and two readings differ
V node-memory-tune >"$T/nmt" 2>&1
after=$(awk '$1 == "shm_pages_sharing" {print $2}' "$T/nmt")
n0=$(awk '$1 == "shm_node0_pages_sharing" {print $2}' "$T/nmt")
nf=$(awk '$1 == "shm_node0_frames" {print $2}' "$T/nmt")
ns=$(awk '$1 == "shm_pages_shared" {print $2}' "$T/nmt")
check "merge_across_nodes=0, run=1: sharing back at its level on the one node ($before before, $after now), all of it node 0's ($n0); node 0 holds every frame ($nf of $ns)" \
    sh -c "[ '${after:-0}' -ge $level ] && [ '${n0:-0}' -ge $((after * 95 / 100)) ] && [ '${n0:-0}' -le '${after:-0}' ] && [ -n '$nf' ] && [ '$nf' = '$ns' ]"

r0=$(rounds a)
wait_rounds a $((r0 + 2))
check "the guests verified on throughout (a: rounds $r0 -> $(rounds a)), no integrity error" \
    sh -c "[ '$(rounds a)' -gt '${r0:-0}' ] && [ '$(errors a)' = 0 ] && [ '$(errors b)' = 0 ]"
V destroy a >/dev/null 2>&1
V destroy b >/dev/null 2>&1
