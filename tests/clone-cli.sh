#!/bin/sh
# clone-cli.sh - `samepage run --clone`: bad input is one line on stderr and
# exit status 2 before any VM starts; a clone of a crashed VM is a one-line
# error and exit status 1 while the other VMs run on; a family of clones and
# a chain (clone of a clone) verify with no integrity error.  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..9"
VM="--vm name=t,mem=64M,vcpus=2,payload=memload,args=rounds=0,rate=300,interval=200"

expect_error() {
    desc=$1 pat=$2
    shift 2
    timeout 20 "$SP" run $VM "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q -- "$pat" "$T/err" &&
        ! grep -q '^\[t\]' "$T/out"; then
        ok "$desc"
    else
        echo "# rc=$rc, wanted /$pat/"
        notok "$desc"
    fi
}
expect_error "unknown source" "no VM named 'x'" --clone x,count=2
expect_error "count 0" "count must be 1..64" --clone t,count=0
expect_error "count above the maximum" "count must be 1..64" --clone t,count=65
expect_error "count missing" "count=N" --clone t
expect_error "bad after" "after must be" --clone t,count=1,after=x

# (the run's bound scaled: a crash that comes after it would end the run
# with the clone still waiting for c's phase 1)
timeout $((30 * SLOW)) "$SP" run -q --status 0 --timeout $((3 * SLOW)) --vm name=c,mem=16M,payload=crash $VM \
    --clone c,count=2 >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" = 1 ] && [ "$(grep -c 'clone c:' "$T/out")" = 1 ] && grep -q "is crashed" "$T/out" &&
    grep -q '^\[status\] t  *stopped' "$T/out" && ! grep -q 'c-c1' "$T/out"; then
    ok "clone of a crashed VM: one error, no child, the other VM runs on"
else
    echo "# rc=$rc"
    notok "clone of a crashed VM: one error, no child, the other VM runs on"
fi

timeout $((60 * SLOW)) "$SP" run -q --status 0 --timeout $((7 * SLOW)) $VM --clone t,count=3 \
    --clone t-c2,count=1,after=3 >"$T/out" 2>"$T/err"
rc=$?
stopped=$(grep -c '^\[status\] .* stopped .* integrity-errors 0 ' "$T/out")
if [ "$rc" = 0 ] && [ "$stopped" = 5 ] && grep -q '^\[status\] t-c2-c4 ' "$T/out"; then
    ok "3 clones and a clone of a clone run and verify"
else
    echo "# rc=$rc, $stopped VMs stopped without integrity errors (want 5)"
    notok "3 clones and a clone of a clone run and verify"
fi
if grep -q '^\[status\] t-c1 .* round [1-9]' "$T/out"; then
    ok "children report verify rounds"
else
    notok "children report verify rounds"
fi
if grep -q '^\[t\] cloned into 3 (t-c1..t-c3): paused' "$T/out"; then
    ok "the clone is announced with its pause time"
else
    notok "the clone is announced with its pause time"
fi
[ "$fails" = 0 ]
