#!/bin/sh
# swap-unreadable.sh - a swap store that cannot give a page back.  Two
# memload VMs under `samepage run --swap-cache 0` (every page out is in the
# swap file), u1 with mem-limit=24M, u2 without a limit, each in its own
# sharing domain (the default); once u1 has pages out, the swap file is
# truncated under samepage: a block read back now comes back short, or,
# once later evictions wrote past it, as zeros without an error (which the
# store's checksums catch), as a disk's I/O error or bad block would give
# it.  u1 must end, crashed, with a reason that says which page and why,
# when its guest touches one - never read zeros in its place (the first
# version of this test, before the checksums, saw u1's guest triple-fault
# on them), never hang asking again and again - while
# u2 verifies on with zero integrity errors and `samepage run` ends at its
# --timeout.  docs/swap.md "How pages come back".  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..3"

# (args= takes the rest of a spec: mem-limit= comes before it)
VM="mem=64M,vcpus=1,payload=memload,args=rate=200,interval=100"
"$SP" run --json --status 2 --timeout $((60 * SLOW)) --swap-cache 0 --swap-file "$T/swap" \
    --vm name=u1,mem-limit=24M,$VM,seed=1 --vm name=u2,$VM,seed=2 >"$T/out" 2>"$T/err" &
pid=$!

vmval() { grep "^{\"vm\":\"$1\"" "$T/out" | tail -1 | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
i=0
while o=$(vmval u1 swapped_pages) && [ "${o:-0}" -lt 200 ] && [ $i -lt $((40 * SLOW)) ] &&
    kill -0 $pid 2>/dev/null; do
    sleep 1
    i=$((i + 1))
done
out=$(vmval u1 swapped_pages)
size=$(stat -c %s "$T/swap" 2>/dev/null)
: >"$T/swap" # every slot in it now reads short
check "u1 has pages out in the swap file (swapped_pages ${out:-?}; the file ${size:-?} bytes, truncated to 0)" \
    sh -c "[ '${out:-0}' -ge 200 ] && [ '${size:-0}' -gt 0 ]"

wait $pid
rc=$?
why=$(grep '^\[u1\] CRASHED' "$T/out" | head -n 1)
said=$(cat "$T/out" "$T/err" | grep -c 'event=swap-in-unreadable vm=u1 ')
e1=$(vmval u1 integrity_errors)
check "u1 ends crashed when its guest touches such a page, having read nothing in its place (integrity errors ${e1:-?}; $said unreadable): $why" \
    sh -c "echo '$why' | grep -Eq 'was swapped out and its content is lost: swap slot [0-9]* cannot be read: (only 0 of its 4096 bytes are in the swap file|the swap file does not hold what was written there)' && [ $said -ge 1 ] && [ '${e1:-1}' = 0 ]"
r2=$(vmval u2 rounds)
e2=$(vmval u2 integrity_errors)
check "u2 verifies on to the end (rounds ${r2:-?}, integrity errors ${e2:-?}); samepage run ends at its timeout (rc $rc: one VM crashed)" \
    sh -c "[ $rc = 1 ] && [ '${r2:-0}' -ge 2 ] && [ '${e2:-1}' = 0 ] && ! grep -q '^\[u2\] CRASHED' '$T/out'"
