#!/bin/sh
# swap-full.sh - a swap file on a file system that runs out of space: 2 VMs
# of 128 MiB under `samepage run --mem-limit 48M --swap-cache 0` with their
# swap file on a 4 MiB tmpfs.  Eviction stops with one logged event
# (event=swap-full) each time, the pages that could not be stored stay in memory, the
# guests go on verifying every byte, and `samepage run` ends normally.
# docs/swap.md.  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..4"

mkdir -p "$T/small"
if ! mount -t tmpfs -o size=4M samepage-swap-full "$T/small"; then
    echo "Bail out! cannot mount a 4 MiB tmpfs on $T/small (run as root)"
    exit 1
fi
trap 'umount "$T/small" 2>/dev/null; rm -rf "$T"' EXIT

VM="mem=128M,vcpus=1,payload=memload,args=rate=500,interval=100"
timeout $((120 * SLOW)) "$SP" run --json --status 5 --timeout $((40 * SLOW)) --mem-limit 48M --swap-cache 0 \
    --swap-file "$T/small/swap" --swap-size 256M \
    --vm name=f1,$VM,seed=1 --vm name=f2,$VM,seed=2 >"$T/out" 2>"$T/err"
rc=$?

val() { grep "^{\"$1\"" "$T/out" | tail -1 | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
full=$(val swap full_events) outs=$(val swap swap_outs) slots=$(val swap slots_used)
errors=$(grep '^{"vm"' "$T/out" | tail -2 | sed -n 's/.*"integrity_errors":\([0-9]*\).*/\1/p' | paste -sd+ | bc)
rounds=$(grep '^{"vm"' "$T/out" | tail -2 | sed -n 's/.*"rounds":\([0-9]*\).*/\1/p' | paste -sd' ')
logged=$(cat "$T/out" "$T/err" | grep -c 'event=swap-full')

check "samepage run ends normally after $((40 * SLOW)) s (rc $rc)" [ "$rc" = 0 ]
check "the file system filled: evictions refused (full_events ${full:-?}; ${outs:-?} out before, ${slots:-?} slots held)" \
    sh -c "[ '${full:-0}' -gt 0 ] && [ '${outs:-0}' -gt 0 ]"
resumed=$(cat "$T/out" "$T/err" | grep -c 'event=swap-resumed')
# Once per stop, not per refused page; it resumes when pages came back.
check "eviction stopped with a logged event ($logged event=swap-full, $resumed event=swap-resumed)" \
    sh -c "[ $logged -ge 1 ] && [ $resumed -ge $((logged - 1)) ]"
check "both guests went on verifying every byte (rounds $rounds; integrity errors ${errors:-?})" \
    sh -c "[ '${errors:-1}' = 0 ] && [ \$(echo '$rounds' | wc -w) = 2 ] && ! echo ' $rounds ' | grep -q ' 0 '"
