#!/bin/sh
# memtune.sh - a per-VM memory limit through libvirt (docs/swap.md): a
# domain defined with <memtune><hard_limit> runs under it in a samepaged
# started with --swap; `virsh memtune` shows it; `virsh memtune
# --hard-limit --live` lowers it on the running VM and eviction follows
# (samepage.swap.* in domstats); --config keeps it in the definition; a
# read-only connection cannot change it; limits samepage cannot keep are
# refused with one line.  The guest verifies every byte all along.  TAP.
set -u
. "$(dirname "$0")/common.sh"
echo "1..10"
spd_start --swap --swap-cache 8M || { echo "Bail out! samepaged did not start"; exit 1; }

# 128 MiB guest, 96 MiB limit in its definition
vm_xml m1 seed=3,rate=500,interval=100 128 >"$T/m1.xml"
sed -i 's#<vcpu>#<memtune><hard_limit unit="MiB">96</hard_limit></memtune>\n  <vcpu>#' "$T/m1.xml"
V define "$T/m1.xml" >"$T/out" 2>&1 && V start m1 >>"$T/out" 2>&1
check "a domain with <memtune><hard_limit> 96 MiB starts under samepaged --swap" wait_rounds m1 1

V memtune m1 >"$T/out" 2>&1
check "virsh memtune shows the hard limit (98304 KiB) and no soft or swap limit" \
    sh -c "grep -q 'hard_limit *: 98304' '$T/out' && grep -q 'soft_limit *: unlimited' '$T/out'"
check "domstats: samepage.swap.mem_limit = 96 MiB" sh -c "[ '$(stat_of m1 samepage.swap.mem_limit)' = 100663296 ]"

# The guest touches ~110 MiB: under 96 MiB pages must leave.
i=0
while below "$(stat_of m1 samepage.swap.outs)" 1000 && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
outs1=$(stat_of m1 samepage.swap.outs)
check "pages leave under the definition's limit (swap outs ${outs1:-?})" sh -c "[ '${outs1:-0}' -ge 1000 ]"

# Lower it live to 48 MiB: eviction follows, the charge comes down.
V memtune m1 --hard-limit 49152 --live >"$T/out" 2>&1
check "virsh memtune --hard-limit 49152 --live succeeds" [ $? = 0 ]
# (the sample that ends the wait is the one checked: the guest keeps
# faulting pages back, so a second read may be above it again)
i=0
ch=$(stat_of m1 samepage.swap.charged_bytes)
while [ "${ch:-999999999}" -gt $((52 * 1048576)) ] 2>/dev/null && [ $i -lt 60 ]; do
    sleep 1
    i=$((i + 1))
    ch=$(stat_of m1 samepage.swap.charged_bytes)
done
outs2=$(stat_of m1 samepage.swap.outs)
check "eviction follows the live limit: mem_limit $(stat_of m1 samepage.swap.mem_limit), charged ${ch:-?} bytes after $i s, swap outs $outs1 -> ${outs2:-?}" \
    sh -c "[ '$(stat_of m1 samepage.swap.mem_limit)' = 50331648 ] && [ '${ch:-999999999}' -le $((52 * 1048576)) ] && [ '${outs2:-0}' -gt '$outs1' ]"

R memtune m1 --hard-limit 65536 --live >"$T/out" 2>&1
rc=$?
check "a read-only connection cannot change it" sh -c "[ $rc != 0 ] && grep -qi 'read.only\|denied' '$T/out' && [ '$(stat_of m1 samepage.swap.mem_limit)' = 50331648 ]"

V memtune m1 --hard-limit 1024 --live >"$T/out" 2>&1
rc1=$?
V memtune m1 --soft-limit 65536 --live >>"$T/out" 2>&1
rc2=$?
check "a limit below 16 MiB and a soft limit are refused with a message" \
    sh -c "[ $rc1 != 0 ] && [ $rc2 != 0 ] && grep -q '16 MiB' '$T/out' && grep -q 'soft_limit' '$T/out'"

V memtune m1 --hard-limit 131072 --config >"$T/out" 2>&1 && V dumpxml --inactive m1 >>"$T/out" 2>&1
check "--config keeps the new limit in the definition" grep -q "<hard_limit unit='KiB'>131072</hard_limit>" "$T/out"

# Back to 96 MiB live: the guest, slowed down under 48 MiB, goes on.
V memtune m1 --hard-limit 98304 --live >"$T/out" 2>&1
r0=$(rounds m1)
wait_rounds m1 $((r0 + 1)) 600
r1=$(rounds m1)
check "raised again live, the guest verifies on (rounds $r0 -> $r1), no integrity error" \
    sh -c "[ '${r1:-0}' -gt '${r0:-0}' ] && [ '$(errors m1)' = 0 ]"
# The test's status: a destroy that fails says why (CI's sanitizer pass
# once saw it fail, with nothing to show; not seen again in 8 runs).
V destroy m1 >"$T/out" 2>&1 || {
    echo "# virsh destroy m1 failed:"
    sed 's/^/#   /' "$T/out"
    V domstate --reason m1 2>&1 | sed 's/^/#   domstate: /'
    tail -20 "$T/daemon.log" | sed 's/^/#   daemon: /'
    exit 1
}
