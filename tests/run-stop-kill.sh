#!/bin/sh
# run-stop-kill.sh - `samepage run` ends even when a VM process cannot stop:
# its guest gets 10 s after Ctrl-C/SIGTERM, then its process is killed
# ("STOPPED: the VM process was killed: ..."; exit status 1); a second
# signal kills at once; the status lines go on meanwhile.  The VM that
# could not stop is a VM process held with SIGSTOP (found by its --name in
# ps); the other VM stops as usual and verifies on with no integrity
# error.  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..7"
VMS="--vm name=held,mem=64M,payload=memload,args=rounds=0,rate=50
     --vm name=free,mem=64M,payload=memload,args=rounds=0,rate=50"
vm_proc() { pgrep -P "$1" -f -- "samepage-vm --name=$2 "; }

# run_held SIGNALS...: start both VMs, wait until they verify, hold the
# VM process of `held` with SIGSTOP, send SIGNALS to `samepage run` and
# wait for its end; sets rc, took (seconds from the last signal to the
# end) and vmp (the held process).  Each signal but the last is followed
# by a wait, at most 6 s, until the run said it stops and the free VM's
# line says stopped: a second signal kills every VM process still there,
# the free VM's too if it had not stopped yet.
run_held() {
    : >"$T/out" # (emptied here: the run's own redirection may come after wait_filled looks)
    "$SP" run -q --json --status 1 --timeout $((300 * SLOW)) $VMS >"$T/out" 2>"$T/err" &
    pid=$!
    wait_filled "$T/out" 2 $pid $((60 * SLOW))
    vmp=$(vm_proc $pid held)
    [ -n "$vmp" ] && kill -STOP "$vmp"
    left=$#
    for sig in "$@"; do
        t0=$(date +%s)
        kill -"$sig" $pid
        left=$((left - 1))
        [ $left = 0 ] && break
        while [ $(($(date +%s) - t0)) -lt 6 ] &&
            ! { grep -q '^samepage: stopping all VMs$' "$T/out" &&
                grep '^{"vm":"free"' "$T/out" | tail -n1 | grep -q '"state":"stopped"'; }; do
            sleep 0.2
        done
    done
    sleep 1
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt $((60 * SLOW)) ]; do
        sleep 1
        i=$((i + 1))
    done
    took=$(($(date +%s) - t0))
    if kill -0 $pid 2>/dev/null; then
        notok "samepage run still runs $took s after the signal (killed now)"
        kill -KILL $pid "$vmp" 2>/dev/null
    fi
    wait $pid
    rc=$?
}
# the last JSON status line of VM $1: field $2
vfield() {
    grep "^{\"vm\":\"$1\"" "$T/out" | tail -n1 |
        /usr/bin/python3 -c "import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])" "$2"
}

run_held TERM
check "one SIGTERM: samepage run ends 10-$((10 + 10 * SLOW)) s later with status 1 (took $took s, status $rc, held process ${vmp:-not found})" \
    eval '[ -n "$vmp" ] && [ $rc = 1 ] && [ $took -ge 9 ] && [ $took -le $((10 + 10 * SLOW)) ]'
check "... the held VM's line says its process was killed, the run says why" eval \
    'grep -q "^\[held\] STOPPED: the VM process was killed: its guest did not stop within 10 s$" "$T/out" &&
     grep -q "^samepage: killing 1 VM process: its guest did not stop within 10 s$" "$T/out"'
# the status lines go on meanwhile: the engine's wait for the held process
# holds no reader of figures up (its figures are the last read)
lines=$(awk '/^samepage: stopping all VMs$/ {on = 1} /^samepage: killing / {on = 0} on && /^\{"engine"/ {n++} END {print n + 0}' "$T/out")
check "... meanwhile the status lines went on, one a second ($lines engine lines in the 10 s)" [ "$lines" -ge $((6 / SLOW + 2)) ]
check "... the other VM stopped by itself with no integrity error, the held process is gone" eval \
    '[ "$(vfield free state)" = stopped ] && [ "$(vfield free integrity_errors)" = 0 ] &&
     ! grep -q "^\[free\] STOPPED" "$T/out" && ! kill -0 "$vmp" 2>/dev/null'

run_held TERM TERM
check "two SIGTERMs: samepage run ends at the second (took $took s after it, status $rc)" \
    eval '[ -n "$vmp" ] && [ $rc = 1 ] && [ $took -le $((6 * SLOW)) ]'
check "... the held VM's line and the run say the second signal killed it" eval \
    'grep -q "^\[held\] STOPPED: the VM process was killed: a second stop signal$" "$T/out" &&
     grep -q "^samepage: killing \(1 VM process\|2 VM processes\): a second stop signal$" "$T/out" &&
     ! kill -0 "$vmp" 2>/dev/null'

# Nothing held: one SIGTERM is a clean stop, nothing is killed, status 0.
: >"$T/out"
"$SP" run -q --json --status 1 --timeout $((300 * SLOW)) $VMS >"$T/out" 2>"$T/err" &
pid=$!
wait_filled "$T/out" 2 $pid $((60 * SLOW))
kill -TERM $pid
wait $pid
rc=$?
check "nothing held: one SIGTERM stops both, status 0, nothing killed (status $rc)" eval \
    '[ $rc = 0 ] && ! grep -q "killed\|killing" "$T/out" && [ "$(vfield held state)" = stopped ]'
[ $fails = 0 ]
