#!/bin/sh
# run-suspend.sh - `samepage run`: SIGUSR1 suspends every running VM (their
# vCPUs park, their status says "paused") while the sharing engine goes on
# merging their memory; SIGUSR2 resumes them, and the guests verify on
# with no integrity error.  Two memload VMs of one seed and a slow engine
# (so it is still merging when they are suspended).  Prints TAP.  The
# waits go by the clock, not by their steps (each reads the status with
# python3, seconds apiece in a loaded emulated host), and the run's own
# bound is far beyond them: the test ends it (SIGTERM).
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..4"
VMS="--vm name=a,mem=64M,payload=memload,args=rounds=0,seed=5,rate=50
     --vm name=b,mem=64M,payload=memload,args=rounds=0,seed=5,rate=50"
# last JSON status line of VM $1: field $2
vfield() {
    grep "^{\"vm\":\"$1\"" "$T/out" | tail -n1 |
        /usr/bin/python3 -c "import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])" "$2"
}
efield() {
    grep '^{"engine"' "$T/out" | tail -n1 |
        /usr/bin/python3 -c "import json, sys; print(json.loads(sys.stdin.read())['engine'][sys.argv[1]])" "$1"
}
"$SP" run -q --json --status 1 --timeout $((300 * SLOW)) --pages-to-scan 200 --sleep-millisecs 20 $VMS \
    >"$T/out" 2>"$T/err" &
pid=$!
wait_filled "$T/out" 2 $pid $((60 * SLOW))
sleep 2
kill -USR1 $pid
sleep $((2 * SLOW)) # both status lines after the pause
ra=$(vfield a rounds) rb=$(vfield b rounds) s0=$(efield saved_bytes) p0=$(efield pages_scanned)
sa=$(vfield a state) sb=$(vfield b state)
if grep -q '^samepage: suspended 2 VMs (SIGUSR1)$' "$T/out" && [ "$sa" = paused ] && [ "$sb" = paused ]; then
    ok "SIGUSR1: 'suspended 2 VMs', both VMs' status says paused"
else
    notok "SIGUSR1: 'suspended 2 VMs', both VMs' status says paused (a: $sa, b: $sb)"
fi
# The engine goes on: it merges more of the paused guests (emulated, where
# the saving may not move in that time, it scans on at least).
went_on() {
    if [ "$SLOW" = 1 ]; then
        [ "${s1:-0}" -gt "${s0:-0}" ]
    else
        [ "${p1:-0}" -gt "${p0:-0}" ] && [ "${s1:-0}" -ge "${s0:-1}" ]
    fi
}
# at least 4 s, and until the engine went on (up to 20 s: whether merges are
# still pending then depends on where its passes fall)
t0=$(date +%s) waited=0
while :; do
    sleep 1
    waited=$(($(date +%s) - t0))
    ra2=$(vfield a rounds) rb2=$(vfield b rounds) s1=$(efield saved_bytes) p1=$(efield pages_scanned)
    [ "$ra" = "$ra2" ] && [ "$rb" = "$rb2" ] || break
    [ $waited -ge $((4 * SLOW)) ] && went_on && break
    [ $waited -ge $((20 * SLOW)) ] && break
done
if [ -n "$ra" ] && [ "$ra" = "$ra2" ] && [ "$rb" = "$rb2" ] && went_on; then
    ok "suspended: no guest round for $waited s (a $ra, b $rb) while the engine went on (pages_scanned $p0 -> $p1, saved_bytes $s0 -> $s1)"
else
    notok "suspended: no guest round for $waited s (a $ra -> $ra2, b $rb -> $rb2) while the engine went on (pages_scanned $p0 -> $p1, saved_bytes $s0 -> $s1)"
fi
kill -USR2 $pid
# until both guests finished a round more (a round takes seconds inside
# the emulated host; up to a minute there for the first after the fill)
t0=$(date +%s)
while { below "$(vfield a rounds)" $((${ra:-0} + 1)) || below "$(vfield b rounds)" $((${rb:-0} + 1)); } &&
    [ $(($(date +%s) - t0)) -lt $((30 * SLOW)) ]; do sleep 1; done
ra3=$(vfield a rounds) rb3=$(vfield b rounds) sa=$(vfield a state)
if grep -q '^samepage: resumed 2 VMs (SIGUSR2)$' "$T/out" && [ "$sa" = running ] &&
    [ "${ra3:-0}" -gt "${ra:-0}" ] && [ "${rb3:-0}" -gt "${rb:-0}" ]; then
    ok "SIGUSR2: 'resumed 2 VMs', running again (rounds a $ra -> $ra3, b $rb -> $rb3)"
else
    notok "SIGUSR2: 'resumed 2 VMs', running again (state $sa, rounds a $ra -> $ra3, b $rb -> $rb3)"
fi
kill -TERM $pid
wait $pid
rc=$?
ea=$(vfield a integrity_errors) eb=$(vfield b integrity_errors)
if [ $rc = 0 ] && [ "$ea" = 0 ] && [ "$eb" = 0 ]; then
    ok "stopped cleanly (exit 0), no integrity error in either guest"
else
    notok "stopped cleanly (exit $rc), integrity errors a $ea b $eb"
fi
[ $fails = 0 ]
