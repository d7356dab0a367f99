#!/bin/sh
# swap-overcommit.sh - 4 VMs of 256 MiB (1 GiB of guest RAM) under
# `samepage run --mem-limit 512M` for 3 minutes, their guests rewriting
# pages all along and verifying every byte each round: what the processes
# occupy (the sum of Pss_Anon and Pss_Shmem of `samepage run` and its VM
# processes, sampled every 5 s from smaps_rollup) stays under the limit
# plus a stated slack once the guests have filled their RAM (a late
# balancer may put one sample in ten over it, never above twice the slack), pages really go out and come back (thousands), and
# no guest ever finds a wrong byte.  docs/swap.md.  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..6"

LIMIT_MIB=512
# Slack: beyond guest RAM the processes hold memory of their own, which is
# not guest RAM and not charged: the supervisor ~13 MiB (the engine's
# tables, GLib), each VM process ~5 MiB (the agent's page table of 13
# bytes per guest page, its eviction buffer of 2 MiB, stacks), and an
# eviction's blob (2 MiB) while it is in flight: ~35 MiB here.  The rest
# is the balancer's lag: it looks every 100 ms while the guests refault
# thousands of pages a second, and a swap-in at the limit waits for it at
# most 50 ms; with another test on the same 2 cores (make -j2 check) it
# runs late.  The swap store's memory (its 64 MiB compressed tier) is
# charged inside the limit.
SLACK_MIB=96
SECS=${SWAP_OVERCOMMIT_SECS:-180}
MEM_MIB=256
if [ "$SLOW" != 1 ]; then
    # Inside the emulated host a guest under a limit did not finish one
    # round of 256 MiB in 180 s: half the RAM and half the limit (the same
    # overcommit), for 300 s.
    MEM_MIB=128
    LIMIT_MIB=256
    SECS=${SWAP_OVERCOMMIT_SECS:-300}
fi

VM="mem=${MEM_MIB}M,vcpus=1,domain=oc,payload=memload,args=seed=5,rate=2000,interval=200"
"$SP" run --json --status 5 --timeout "$SECS" --mem-limit ${LIMIT_MIB}M \
    --vm name=o1,$VM --vm name=o2,$VM --vm name=o3,$VM --vm name=o4,$VM >"$T/run.json" 2>"$T/err" &
pid=$!

# Under ASan (the sanitizer pass of .ci/run, SP_SANITIZERS=yes) the
# processes also hold the sanitizer's shadow memory and its allocator's
# quarantine and redzones, ~100 MiB per process here: the sum then leaves
# out ASan's fixed ranges (the shadow below 0x10007fff8000 and the
# allocator's heap at 0x600000000000-0x640000000000), which leaves out
# the programs' heaps too but keeps guest RAM, the pools and the store
# (per mapping, smaps has only Pss: files' mappings are left out).
pss_kib() { # the sum over samepage run and its children
    sum=0
    for p in $pid $(pgrep -P $pid); do
        if [ "${SP_SANITIZERS:-no}" = yes ]; then
            v=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {
                        a = substr($1, 1, index($1, "-") - 1)
                        skip = length(a) < 12 || (length(a) == 12 && (a < "10007fff8000" ||
                               (a >= "600000000000" && a < "640000000000"))) ||
                               ($6 != "" && $6 !~ /^\/memfd:|^\[/)
                        next }
                     /^Pss:/ { if (!skip) s += $2 }
                     END {print s + 0}' /proc/$p/smaps 2>/dev/null)
        else
            v=$(awk '/^Pss_Anon:|^Pss_Shmem:/ {s += $2} END {print s + 0}' /proc/$p/smaps_rollup 2>/dev/null)
        fi
        sum=$((sum + ${v:-0}))
    done
    echo $sum
}

max=0 samples=0 over=0
# The guests first fill their RAM: first touches of fresh pages do not go
# through swap, so nothing throttles them, and the balancer evicts behind
# them (docs/swap.md).  Sampling starts once every guest has filled its
# memory (memload's phase 2 on its status line) and the balancer has had
# 10 s to catch up.
wait_filled "$T/run.json" 4 $pid
i=$filled_after
echo "# guests filled after ${i} s"
# The threads the vCPUs wait on for a swap-in run above them (docs/swap.md,
# "How pages come back"): each VM process's sp-swap and samepage run's
# sp-swap-in, at nice -5.
nices=$(for p in $pid $(pgrep -P $pid); do
    for t in /proc/$p/task/*; do
        c=$(cat $t/comm 2>/dev/null)
        case "$c" in sp-swap | sp-swap-in) echo "$c:$(awk '{print $19}' $t/stat 2>/dev/null)" ;; esac
    done
done | LC_ALL=C sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
sleep 10
start=$(date +%s)
# until 5 s before the timeout: while the VMs run, not while they stop
while kill -0 $pid 2>/dev/null && [ $(($(date +%s) - start)) -lt $((SECS - 5 - i - 10)) ]; do
    k=$(pss_kib)
    if [ "$k" -gt 0 ]; then
        samples=$((samples + 1))
        [ "$k" -gt "$max" ] && max=$k
        [ "$k" -gt $(((LIMIT_MIB + SLACK_MIB) * 1024)) ] && over=$((over + 1)) && echo "# $(date +%T) Pss $((k / 1024)) MiB"
    fi
    sleep 5
done
wait $pid
rc=$?
cp "$T/run.json" "$T/out"

# the last {"engine": ...} and {"swap": ...} lines
val() { grep "^{\"$1\"" "$T/run.json" | tail -1 | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
outs=$(val swap swap_outs) ins=$(val swap swap_ins) copies=$(val swap swapin_copies)
sharing=$(val engine pages_sharing)
errors=$(grep '"vm"' "$T/run.json" | tail -4 | sed -n 's/.*"integrity_errors":\([0-9]*\).*/\1/p' | paste -sd+ | bc)
rounds=$(grep '"vm"' "$T/run.json" | tail -4 | sed -n 's/.*"rounds":\([0-9]*\).*/\1/p' | paste -sd' ')

check "run ends after ${SECS} s with status 0 (rc $rc)" [ "$rc" = 0 ]
# A sample over the slack is the balancer running late on a busy host (CI
# measured one or two of ~30 samples at 616-665 MiB with another test on
# the other core): at most one sample in ten may be over, and none over
# the limit plus twice the slack; a sustained excess fails.
check "Pss of samepage run and its VM processes stays under ${LIMIT_MIB} MiB + ${SLACK_MIB} MiB ($samples samples, at most $((max / 1024)) MiB, $over over; at most one in ten may be, none above $((LIMIT_MIB + 2 * SLACK_MIB)) MiB)" \
    sh -c "[ $samples -ge $(((SECS - 80) / 6 / SLOW)) ] && [ $over -le $((samples / 10)) ] && [ $max -le $(((LIMIT_MIB + 2 * SLACK_MIB) * 1024)) ]"
check "pages go out and come back (swap outs ${outs:-?}, ins ${ins:-?})" \
    sh -c "[ '${outs:-0}' -ge 5000 ] && [ '${ins:-0}' -ge 5000 ]"
check "the VMs still share (pages_sharing ${sharing:-?}), no sharer got a private copy (swapin_copies ${copies:-?})" \
    sh -c "[ '${sharing:-0}' -gt 10000 ] && [ '${copies:-1}' = 0 ]"
check "swap-in threads run at nice -5 ($nices)" [ "$nices" = "sp-swap-in:-5 x1, sp-swap:-5 x4" ]
check "every guest verified every byte (rounds $rounds; integrity errors ${errors:-?})" \
    sh -c "[ '${errors:-1}' = 0 ] && [ \$(echo '$rounds' | wc -w) = 4 ] && ! echo ' $rounds ' | grep -q ' 0 '"
echo "# Pss at most $((max / 1024)) MiB; swap outs $outs, ins $ins; rounds $rounds"
