#!/bin/sh
# numatune.sh - a VM's NUMA memory policy through libvirt and the CLI on
# this (single-node) host (docs/numa.md): `virsh numatune` shows it,
# `--nodeset 0 --live` moves the running VM (the kernel's numa_maps of its
# process shows guest RAM under the new policy), per-node resident pages
# come from the kernel (domstats samepage.numa.node<N>.pages, samepage
# numatune --json), python3-libvirt gets and sets it, --config keeps it in
# the definition, a clone inherits its source's policy (its process's
# numa_maps and virsh numatune), a read-only connection cannot set it, a node the host
# lacks and an unknown mode are refused with one line and nothing changes,
# and the guest verifies every byte all along.  Moves between two nodes run
# in the emulated host (tests/emuhost/inner-numa.sh).  TAP.
set -u
. "$(dirname "$0")/common.sh"
S() { "$B/samepage" "$@" --connect "$SOCK"; }
echo "1..15"
spd_start || { echo "Bail out! samepaged did not start"; exit 1; }
vm_xml n1 seed=5,rate=300,interval=100 64 >"$T/n1.xml"
V define "$T/n1.xml" >"$T/out" 2>&1 && V start n1 >>"$T/out" 2>&1
check "a memload VM runs" wait_rounds n1 1
pid=$(vm_pid n1)
# the policy of guest RAM in the kernel's numa_maps: the largest mapping
# of the VM process (64 MiB of guest RAM; merged pages are mappings of
# their own and show the policy the range had when they were mapped)
ram_policy() { # [PID]: the policy of most resident pages among mappings with one set
    # (only guest RAM gets one; the engine splits it into many mappings, so
    # the largest single mapping can be another - ASan's, in that build)
    awk '{ n = 0; for (i = 3; i <= NF; i++) if ($i ~ /^N[0-9]+=/) { split($i, a, "="); n += a[2] }
           if ($2 != "default") pages[$2] += n }
         END { pol = "default"; for (p in pages) if (pages[p] > best) { best = pages[p]; pol = p } print pol }' \
        "/proc/${1:-$pid}/numa_maps"
}

V numatune n1 >"$T/out" 2>&1
check "virsh numatune: no node set yet (mode strict, nodeset empty, as libvirt shows none)" \
    sh -c "grep -q 'numa_mode *: strict' '$T/out' && grep -Eq 'numa_nodeset *: *$' '$T/out' && [ '$(ram_policy)' = default ]"

r0=$(rounds n1)
V numatune n1 --nodeset 0 --live >"$T/out" 2>&1
rc=$?
V numatune n1 >>"$T/out" 2>&1
check "virsh numatune --nodeset 0 --live: set, shown, and guest RAM is bound to node 0 in numa_maps ($(ram_policy))" \
    sh -c "[ $rc = 0 ] && grep -q 'numa_nodeset *: 0' '$T/out' && [ '$(ram_policy)' = bind:0 ]"

p0=$(stat_of n1 samepage.numa.node0.pages)
kern=$(awk '{ for (i = 3; i <= NF; i++) if ($i ~ /^N0=/) { split($i, a, "="); n += a[2] } } END { print n + 0 }' "/proc/$pid/numa_maps")
check "domstats samepage.numa.node0.pages ($p0) counts resident guest pages (process total on node 0: $kern)" \
    sh -c "[ '${p0:-0}' -gt 4000 ] && [ '${p0:-0}' -le 16384 ] && [ '${p0:-0}' -le '$kern' ]"

# Nodes 0..nodes-1 (this host has one; the emulated host, where
# scripts/in-emuhost.sh runs the suite on a machine without /dev/kvm, two).
nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
[ "$nodes" -ge 1 ] || nodes=1
V numatune n1 --nodeset "$nodes" --live >"$T/out" 2>&1
rc=$?
check "a node the host lacks ($nodes) is refused naming it, nothing changes" \
    sh -c "[ $rc != 0 ] && grep -q 'no NUMA node $nodes' '$T/out' && [ \$(grep -c . '$T/out') -le 3 ] && [ '$(ram_policy)' = bind:0 ]"

S numatune n1 --mode sideways --nodeset 0 >"$T/out" 2>&1
rc=$?
check "samepage numatune: an unknown mode is refused with one line" \
    sh -c "[ $rc = 1 ] && grep -q \"unknown NUMA mode 'sideways'\" '$T/out' && [ \$(wc -l <'$T/out') = 1 ]"

S numatune n1 --mode interleave --nodeset 0 --live >"$T/out" 2>&1
rc=$?
check "samepage numatune --mode interleave --nodeset 0 --live: moved ($(head -1 "$T/out")), numa_maps says interleave:0" \
    sh -c "[ $rc = 0 ] && [ '$(ram_policy)' = interleave:0 ]"

# A live move gives guest RAM's anonymous mappings the policy, never the
# mappings of samepaged's pool frames (merged pages): mbind there would set
# the pool's own policy (the kernel does so for MAP_PRIVATE mappings too),
# where samepaged allocates frames for every VM.  numa_maps shows a frame
# mapping's policy as the pool's at that frame, else the process's (its
# main thread's, which a move leaves as it was: default here).
frames=$(grep -c 'samepage-frames' "/proc/$pid/numa_maps")
taken=$(grep 'samepage-frames' "/proc/$pid/numa_maps" | grep -vc '^[0-9a-f]* default ')
check "after the live moves, none of the VM's $frames mappings of pool frames took its policy ($taken did)" \
    sh -c "[ $frames -gt 0 ] && [ $taken = 0 ]"

S numatune n1 --json >"$T/json" 2>&1
check "samepage numatune --json: mode, nodeset and numa_pages from the kernel" \
    /usr/bin/python3 -c "
import json, sys
j = json.load(open('$T/json'))
assert j['numa_mode'] == 'interleave' and j['numa_nodeset'] == '0', j
assert len(j['numa_pages']) == $nodes and 4000 < j['numa_pages'][0] <= 16384, j
assert $nodes > 1 or j['pages_migrated'] == 0, j  # one node: nothing moves between nodes
"

R numatune n1 --nodeset 0 --live >"$T/out" 2>&1
rc=$?
check "a read-only connection cannot set it" sh -c "[ $rc != 0 ] && grep -qi 'read.only\|denied' '$T/out'"

/usr/bin/python3 - "$URI" >"$T/out" 2>&1 <<'PY'
import sys, libvirt
c = libvirt.open(sys.argv[1])
d = c.lookupByName("n1")
p = d.numaParameters()
assert p == {"numa_mode": libvirt.VIR_DOMAIN_NUMATUNE_MEM_INTERLEAVE, "numa_nodeset": "0"}, p
d.setNumaParameters({"numa_mode": libvirt.VIR_DOMAIN_NUMATUNE_MEM_STRICT, "numa_nodeset": "0"},
                    libvirt.VIR_DOMAIN_AFFECT_LIVE)
p = d.numaParameters()
assert p["numa_mode"] == libvirt.VIR_DOMAIN_NUMATUNE_MEM_STRICT, p
try:
    d.setNumaParameters({"numa_nodeset": "7"}, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    raise SystemExit("node 7 accepted")
except libvirt.libvirtError as e:
    assert "no NUMA node 7" in str(e), e
print("python ok", p)
PY
check "python3-libvirt: numaParameters / setNumaParameters (live), a missing node refused" grep -q "python ok" "$T/out"

V numatune n1 --mode preferred --nodeset 0 --config >"$T/out" 2>&1 && V dumpxml --inactive n1 >>"$T/out" 2>&1
check "--config keeps the policy in the definition (<numatune><memory mode='preferred' nodeset='0'/>)" \
    sh -c "grep -q \"<memory mode='preferred' nodeset='0'/>\" '$T/out' && [ '$(ram_policy)' = bind:0 ]"

r1=$(rounds n1)
wait_rounds n1 $((r1 + 2))
r2=$(rounds n1)
check "the guest verified on through every move (rounds $r0 -> $r2), no integrity error" \
    sh -c "[ '${r2:-0}' -gt '${r1:-0}' ] && [ '$(errors n1)' = 0 ]"
V node-memory-tune >"$T/out" 2>&1
# One node: nothing to move, nothing misplaced (0); on more, the figures
# are there (tests/emuhost/emuhost-numa.sh checks what they count).
want=$([ "$nodes" = 1 ] && echo 0 || echo '[0-9]+')
check "node-memory-tune: the re-homing figures ($nodes node(s): rehomed and misplaced $want)" \
    sh -c "grep -Eq '^[[:space:]]*shm_numa_frames_rehomed[[:space:]]+$want$' '$T/out' && grep -Eq '^[[:space:]]*shm_numa_frames_misplaced[[:space:]]+$want$' '$T/out'"

S clone n1 --names n1c >"$T/out" 2>&1
V numatune n1c >>"$T/out" 2>&1
cpid=$(vm_pid n1c)
check "a clone inherits its source's policy: numa_maps of its guest RAM $(ram_policy "$cpid"), virsh numatune shows nodeset 0" \
    sh -c "[ -n '$cpid' ] && [ '$(ram_policy "$cpid")' = bind:0 ] && grep -q 'numa_nodeset *: 0' '$T/out'"
V destroy n1c >/dev/null 2>&1
V destroy n1 >/dev/null 2>&1
