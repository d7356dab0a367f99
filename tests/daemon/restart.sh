#!/bin/sh
# restart.sh - samepaged keeps definitions across restarts, reports VMs that
# were running when it died, and guards its read-write socket.  TAP.
set -u
. "$(dirname "$0")/common.sh"
V() { virsh -c "$URI" "$@"; }
echo "1..7"
spd_start || { echo "Bail out! samepaged did not start"; exit 1; }
vm_xml keep1 >"$T/keep1.xml"
vm_xml keep2 >"$T/keep2.xml"
V define "$T/keep1.xml" >/dev/null 2>&1
V define "$T/keep2.xml" >/dev/null 2>&1
V start keep2 >/dev/null 2>&1

# A clean restart: definitions survive, running VMs were stopped.
spd_stop
spd_start
V list --all >"$T/out" 2>&1
check "definitions survive a clean restart" sh -c "grep -q 'keep1 *shut off' '$T/out' && grep -q 'keep2 *shut off' '$T/out'"

# samepaged dies with a VM running: after the restart it is reported, not lost.
V start keep1 >/dev/null 2>&1
V list >"$T/out" 2>&1
check "keep1 runs before the crash" grep -Eq '[0-9]+ +keep1 +running' "$T/out"
spd_kill9
spd_start
V list --all >"$T/out" 2>&1
check "a VM running when samepaged died is listed shut off" grep -q 'keep1 *shut off' "$T/out"
V domstate --reason keep1 >"$T/out" 2>&1
check "... with reason crashed" grep -q 'shut off (crashed)' "$T/out"
grep -q 'event=lost-on-restart domain=keep1' "$T/daemon.log" && ok "the loss is logged" || notok "the loss is logged"

# Access control: the read-write socket is root-only, the read-only one is open.
if command -v setpriv >/dev/null; then
    chmod 755 "$T"
    setpriv --reuid=65534 --regid=65534 --clear-groups virsh -c "$URI" list --all >"$T/out" 2>&1
    rc=$?
    check "a non-root user cannot use the read-write socket" sh -c "[ $rc != 0 ] && grep -Eqi 'permission denied|denied|failed to connect' '$T/out'"
    setpriv --reuid=65534 --regid=65534 --clear-groups virsh -r -c "samepage+unix:///system?socket=$ROSOCK" list --all >"$T/out" 2>&1
    check "a non-root user can read through the read-only socket" grep -q 'keep1' "$T/out"
else
    notok "setpriv (util-linux) is missing: cannot test non-root access"
    notok "setpriv (util-linux) is missing: cannot test non-root access"
fi
spd_stop
exit 0
