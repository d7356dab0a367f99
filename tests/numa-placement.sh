#!/bin/sh
# numa-placement.sh - numa=MODE:NODES of a VM spec on this host (one node
# natively; the emulated host has two): a VM with numa=strict:0 runs with
# its guest RAM bound to node 0 and >= 99 % of its resident pages there,
# interleave:0 likewise, as the kernel reports them (/proc/PID/numa_maps of
# the VM process, not samepage's counters); a node the host lacks, an
# unknown mode and a malformed set are one-line errors and nothing starts.
# cpuset=CPUS pins every thread of the VM process (the kernel's
# Cpus_allowed_list of each), and a CPU the host lacks is refused.
# docs/numa.md.  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..10"

nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)
[ "$nodes" -ge 1 ] || { echo "Bail out! no /sys/devices/system/node/node* on this host"; exit 1; }
last=$((nodes - 1))

# run_placed MODE: a memload VM with numa=MODE:$last for 8 s; the VM
# process's numa_maps line of its guest RAM (the largest anonymous
# mapping) is left in $T/maps.
# (Emulated, the VM may not have filled its RAM after 5 s: it is read again
# each second until it shows, for at most 5 x SLOW s more.)
run_placed() {
    "$SP" run --timeout $((8 * SLOW)) --vm "name=p1,mem=64M,share=no,numa=$1:$last,payload=memload,args=seed=3,rate=100" \
        >"$T/out" 2>"$T/err" &
    pid=$!
    sleep 5
    : >"$T/maps"
    end=$(($(date +%s) + 5 * SLOW))
    while ! grep -q 'anon=' "$T/maps" && [ "$(date +%s)" -le $end ]; do
        vmp=$(pgrep -P $pid samepage-vm | head -1)
        [ -n "$vmp" ] && awk '/anon=/ { for (i = 1; i <= NF; i++) if ($i ~ /^anon=/) { split($i, a, "="); if (a[2] > best) { best = a[2]; line = $0 } } }
                              END { print line }' /proc/$vmp/numa_maps >"$T/maps"
        grep -q 'anon=' "$T/maps" || sleep 1
    done
    wait $pid
}

# pages of the lines on node N against all their pages (N<k>=count fields)
on_node_pct() {
    awk -v n="N$1" '{ for (i = 1; i <= NF; i++) if ($i ~ /^N[0-9]+=/) { split($i, a, "="); t += a[2]; if (a[1] == n) o += a[2] } }
                    END { print (t ? int(100 * o / t) : 0) }' "$T/maps"
}

run_placed strict
rc=$?
pct=$(on_node_pct $last)
check "numa=strict:$last: the run ends 0 (rc $rc), guest RAM bound to node $last ($(cut -c1-60 "$T/maps")), $pct % of its pages there" \
    sh -c "[ $rc = 0 ] && grep -q ' bind:$last ' '$T/maps' && [ $pct -ge 99 ]"

run_placed interleave
rc=$?
pct=$(on_node_pct $last)
check "numa=interleave:$last: the run ends 0 (rc $rc), guest RAM interleaved over node $last ($(cut -c1-60 "$T/maps")), $pct % there" \
    sh -c "[ $rc = 0 ] && grep -q ' interleave:$last ' '$T/maps' && [ $pct -ge 99 ]"

run_placed preferred
rc=$?
check "numa=preferred:$last: the run ends 0 (rc $rc), guest RAM prefers node $last" \
    sh -c "[ $rc = 0 ] && grep -q ' prefer[a-z]*:$last ' '$T/maps'"

# Swapped out and back in: under --mem-limit of half its RAM, a
# numa=strict VM's pages come back through its own swap thread
# (UFFDIO_COPY into guest RAM), which allocates under the guest RAM's bind
# policy, so they land on node $last like the rest.  numa_maps is read once
# the VM has brought back at least 4,000 pages (about half of what it
# may keep resident), and every anonymous mapping is summed: guest RAM is
# split into many (missing-fault registration, pages moved into place),
# and the process's own few are small beside it.  File mappings are left
# out: merged stretches map the pools' frames, which are samepaged's
# (this kernel prints the task's policy, bind:N, for those too).
"$SP" run --json --status 2 --timeout $((25 * SLOW)) --mem-limit 32M --swap-cache 0 \
    --vm "name=s1,mem=64M,vcpus=1,numa=strict:$last,payload=memload,args=seed=3,rate=500,interval=100" \
    >"$T/out" 2>"$T/err" &
pid=$!
ins=0
: >"$T/maps"
end=$(($(date +%s) + 22 * SLOW))
while kill -0 $pid 2>/dev/null && [ "$(date +%s)" -le $end ]; do
    sleep 1
    ins=$(grep '^{"vm"' "$T/out" | tail -1 | sed -n 's/.*"swap_ins":\([0-9]*\).*/\1/p')
    [ "${ins:-0}" -ge 4000 ] || continue
    vmp=$(pgrep -P $pid samepage-vm | head -1)
    [ -n "$vmp" ] && grep " bind:$last .*anon=" /proc/$vmp/numa_maps | grep -v ' file=\| heap \| stack' >"$T/maps"
    break
done
wait $pid
rc=$?
pct=$(on_node_pct $last)
resident=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^N[0-9]+=/) { split($i, a, "="); t += a[2] } } END { print t + 0 }' "$T/maps")
check "numa=strict:$last under --mem-limit 32M: the run ends 0 (rc $rc); after ${ins:-?} swap-ins, $pct % of guest RAM's $resident resident pages are on node $last" \
    sh -c "[ $rc = 0 ] && [ '${ins:-0}' -ge 4000 ] && [ $pct -ge 99 ] && [ $resident -ge 1000 ]"

# refused_with SPEC-PART TEXT: one line on stderr containing TEXT, exit 2, no VM started
refused_with() {
    "$SP" run --timeout 5 --vm "name=bad,mem=64M,$1,payload=memload" >"$T/out" 2>"$T/err"
    rc=$?
    [ "$rc" = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -qF "$2" "$T/err" && ! grep -q '"vm"' "$T/out"
}
check "numa=strict:$nodes (a node this host lacks): refused naming node $nodes" \
    refused_with "numa=strict:$nodes" "no NUMA node $nodes"
check "numa=sideways:0: refused naming the mode" refused_with "numa=sideways:0" "unknown NUMA mode 'sideways'"
check "numa=strict:0-x: refused, a malformed node set" refused_with "numa=strict:0-x" "invalid CPU or node set '0-x'"
check "numa=strict (no nodes): refused, MODE:NODES expected" refused_with "numa=strict" "expected MODE:NODES"

# cpuset=: every thread of the VM process runs on the last CPU only
cpu=$(($(nproc) - 1))
"$SP" run --timeout "$([ -n "${SAMEPAGE_IN_EMUHOST:-}" ] && echo 15 || echo 6)" --vm "name=c1,mem=64M,vcpus=2,cpuset=$cpu,payload=memload,args=seed=3,rate=100" \
    >"$T/out" 2>"$T/err" &
pid=$!
# Until the VM process has its vCPU threads (a second here; more under
# emulation, scripts/in-emuhost.sh), at most 12 s.
nthreads=0
for _ in $(seq 60); do
    sleep 0.2
    vmp=$(pgrep -P $pid samepage-vm | head -1)
    [ -n "$vmp" ] && grep -q 'phase 2' "$T/out" 2>/dev/null || continue
    nthreads=$(ls /proc/$vmp/task 2>/dev/null | wc -l)
    [ "$nthreads" -ge 3 ] && break
done
allowed=$(cat /proc/$vmp/task/*/status 2>/dev/null | awk '/^Cpus_allowed_list/ {print $2}' | sort -u | tr '\n' ' ')
wait $pid
rc=$?
check "cpuset=$cpu: the run ends 0 (rc $rc), all $nthreads threads of the VM process may run on CPU $cpu only ($allowed)" \
    sh -c "[ $rc = 0 ] && [ '$allowed' = '$cpu ' ] && [ $nthreads -ge 3 ]"
check "cpuset=64 (a CPU this host lacks): refused naming CPU 64" refused_with "cpuset=64" "no CPU 64"
