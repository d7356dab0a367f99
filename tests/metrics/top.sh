#!/bin/sh
# top.sh - `samepage top` driven in tmux as a person would (send-keys,
# capture-pane): it shows every running VM and the engine line, refreshes,
# quits on q with exit status 0, and works over the read-only socket; an
# unreachable daemon, a missing terminal and a daemon lost under the view
# are one-line errors.  Then
# `samepage run --top`: the same view of its own VMs, q stops them and the
# last status lines follow.  TAP.
set -u
. "$(dirname "$0")/../daemon/common.sh"
. "$(dirname "$0")/common.sh"
echo "1..12"
command -v tmux >/dev/null || { echo "Bail out! tmux is not installed (debian-packages.txt)"; exit 1; }
SP="$B/samepage"
TS="sp-top-$$"
export TMUX_TMPDIR="$T"
trap 'tmux kill-server 2>/dev/null; cleanup' EXIT

"$SP" top -c "$T/nosock" >"$T/out" 2>"$T/err"
rc=$?
check "top with no daemon: exit status 1, one line naming the socket" \
    eval '[ $rc = 1 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q "cannot connect to samepaged at $T/nosock" "$T/err"'

spd_start || { echo "Bail out! samepaged did not start"; exit 1; }
vm_xml alpha "seed=3,rate=0" 64 t1 >"$T/a.xml"
vm_xml beta "seed=3,rate=0" 64 t1 >"$T/b.xml"
for v in a b; do "$SP" define -c "$SOCK" "$T/$v.xml" >/dev/null 2>&1; done
"$SP" start -c "$SOCK" alpha >/dev/null 2>&1
"$SP" start -c "$SOCK" beta >/dev/null 2>&1

"$SP" top -c "$SOCK" </dev/null >"$T/out" 2>"$T/err"
rc=$?
check "top without a terminal: exit status 1, one line" \
    eval '[ $rc = 1 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q "terminal" "$T/err"'

# screen: the pane's text now
screen() { tmux capture-pane -p -t "$TS" >"$T/screen" 2>/dev/null; }
# (the waits go by the clock, times SLOW: inside the emulated host a
# refresh can wait seconds for the engine's lock)
# wait_screen PATTERN: up to 10 s for the pane to show PATTERN
wait_screen() {
    ws_end=$(($(date +%s) + 10 * SLOW))
    while :; do
        screen
        grep -q -- "$1" "$T/screen" && return 0
        [ "$(date +%s)" -lt $ws_end ] || return 1
        sleep 0.2
    done
}
# ended: up to 10 s for the session to end; $T/rc holds the exit status
ended() {
    e_end=$(($(date +%s) + 10 * SLOW))
    while tmux has-session -t "$TS" 2>/dev/null && [ "$(date +%s)" -lt $e_end ]; do sleep 0.2; done
    ! tmux has-session -t "$TS" 2>/dev/null
}

run_top() { # ARGS... ("2>FILE" too): in a tmux session; $T/rc gets its exit status
    rm -f "$T/rc"
    tmux new-session -d -s "$TS" -x 150 -y 30 \
        "env TERM=xterm LANG=C.UTF-8 $SP top --interval 0.5 $*; echo \$? >$T/rc"
}

TAP_DIAG="$T/screen $T/out $T/err"
run_top -c "$SOCK"
wait_screen "beta"
check "top shows every running VM and the engine line" \
    eval 'grep -q "^alpha " "$T/screen" && grep -q "^beta " "$T/screen" && grep -q "^engine .*sharing" "$T/screen" && grep -q "MERGED" "$T/screen"'
head -n1 "$T/screen" >"$T/title1"
sleep 1.6 # (its clock shows seconds; --interval 0.5)
end=$(($(date +%s) + 10 * SLOW))
while screen && head -n1 "$T/screen" >"$T/title2" && cmp -s "$T/title1" "$T/title2" &&
    [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
check "top refreshes (the clock in its title moves)" eval '! cmp -s "$T/title1" "$T/title2"'
wait_screen "sharing [1-9]"
check "the engine line shows the VMs' sharing" grep -q "sharing [1-9]" "$T/screen"
tmux send-keys -t "$TS" q
check "q quits with exit status 0" eval 'ended && [ "$(cat "$T/rc")" = 0 ]'

run_top -r -c "$ROSOCK"
wait_screen "beta"
check "over the read-only socket it shows the same" \
    eval 'grep -q "^alpha " "$T/screen" && grep -q "^engine " "$T/screen"'
tmux send-keys -t "$TS" '>' 'r' q
check "and quits on q" eval 'ended && [ "$(cat "$T/rc")" = 0 ]'

# The daemon goes away under the view: the terminal back, one line, status 1.
run_top -c "$SOCK" "2>$T/lost.err"
wait_screen "beta"
spd_stop
check "a daemon lost under the view: one line, exit status 1" \
    eval 'ended && [ "$(cat "$T/rc")" = 1 ] && [ "$(wc -l <"$T/lost.err")" = 1 ] && grep -q "^samepage: lost samepaged at $SOCK: " "$T/lost.err"'
vms_kill

# samepage run --top: the same view of its own VMs; q stops them.
VM="payload=memload,mem=32M,vcpus=1,domain=d,args=seed=5,rate=0"
rm -f "$T/rc"
tmux new-session -d -s "$TS" -x 150 -y 30 \
    "env TERM=xterm SAMEPAGE_PAYLOAD_DIR=$B/guest-tools $SP run --top --log-dir $T/logs --vm name=one,$VM --vm name=two,$VM; echo \$? >$T/rc; sleep 30"
wait_screen "^two "
check "run --top shows its VMs and the engine line" \
    eval 'grep -q "^one " "$T/screen" && grep -q "^engine " "$T/screen"'
# let memload fill its memory and report (phases, results) before q
end=$(($(date +%s) + 30 * SLOW))
while ! { grep -qs "^phase 2" "$T/logs/one.log" && grep -qs "^phase 2" "$T/logs/two.log"; } && [ "$(date +%s)" -lt $end ]; do sleep 0.1; done
tmux send-keys -t "$TS" q
wait_screen "VM logs in"
end=$(($(date +%s) + 10 * SLOW))
while [ ! -s "$T/rc" ] && [ "$(date +%s)" -lt $end ]; do sleep 0.1; done
check "q stops the VMs; the last status lines follow, exit status 0" \
    eval 'grep -q "^\[status\] one " "$T/screen" && grep -q "^\[engine\] " "$T/screen" && [ "$(cat "$T/rc" 2>/dev/null)" = 0 ]'
check "the guests' lines went to the per-VM logs" \
    eval 'grep -q "^result pages_total=" "$T/logs/one.log" && grep -q "^phase 1" "$T/logs/two.log"'
exit 0
