#!/bin/sh
# events.sh - domain lifecycle events from a real samepaged, seen by
# Debian's `virsh event --all --loop` on a read-write and on a read-only
# connection: defined, started, suspended, resumed, reboot, shutdown,
# stopped (destroyed, shutdown, failed when its VM process is killed),
# crashed and stopped (crashed) for a payload whose vCPU triple-faults, and
# undefined, in that order.  TAP.
set -u
. "$(dirname "$0")/common.sh"
echo "1..6"
spd_start || { echo "Bail out! samepaged did not start"; exit 1; }

# Two listeners, line-buffered so that the file fills as events arrive.
stdbuf -oL virsh -c "$URI" event --all --loop --timeout $((120 * SLOW)) >"$T/rw.events" 2>&1 &
RW=$!
stdbuf -oL virsh -r -c "$ROURI" event --all --loop --timeout $((120 * SLOW)) >"$T/ro.events" 2>&1 &
RO=$!
# Both registered: a domain defined and undefined until both have seen it
# (its events are left out of what is compared).
i=0
while ! { grep -q "'sync0': Defined" "$T/rw.events" && grep -q "'sync0': Defined" "$T/ro.events"; } &&
    [ $i -lt $((100 * SLOW)) ]; do
    vm_xml sync0 "" 32 >"$T/sync0.xml"
    V define "$T/sync0.xml" >/dev/null 2>&1
    V undefine sync0 >/dev/null 2>&1
    sleep 0.2
    i=$((i + 1))
done

vm_xml ev1 "seed=2,rate=100" 64 >"$T/ev1.xml"
vm_xml boom "" 32 | sed 's/memload/crash/' >"$T/boom.xml"
V define "$T/ev1.xml" >/dev/null 2>&1
V start ev1 >/dev/null 2>&1
V suspend ev1 >/dev/null 2>&1
V resume ev1 >/dev/null 2>&1
V reboot ev1 >/dev/null 2>&1
V shutdown ev1 >/dev/null 2>&1
V start ev1 >/dev/null 2>&1
V destroy ev1 >/dev/null 2>&1
V start ev1 >/dev/null 2>&1
kill -9 "$(pgrep -f -- "--listen=$T/vms/ev1.sock")"
i=0
while ! V domstate ev1 2>/dev/null | grep -q 'shut off' && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
V create "$T/boom.xml" >/dev/null 2>&1
i=0
while V list --all 2>/dev/null | grep -q boom && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
V undefine ev1 >/dev/null 2>&1

want="event 'lifecycle' for domain 'ev1': Defined Added
event 'lifecycle' for domain 'ev1': Started Booted
event 'lifecycle' for domain 'ev1': Suspended Paused
event 'lifecycle' for domain 'ev1': Resumed Unpaused
event 'reboot' for domain 'ev1'
event 'lifecycle' for domain 'ev1': Shutdown Finished after host request
event 'lifecycle' for domain 'ev1': Stopped Shutdown
event 'lifecycle' for domain 'ev1': Started Booted
event 'lifecycle' for domain 'ev1': Stopped Destroyed
event 'lifecycle' for domain 'ev1': Started Booted
event 'lifecycle' for domain 'ev1': Stopped Failed
event 'lifecycle' for domain 'boom': Started Booted
event 'lifecycle' for domain 'boom': Crashed Panicked
event 'lifecycle' for domain 'boom': Stopped Crashed
event 'lifecycle' for domain 'ev1': Undefined Removed"
echo "$want" >"$T/want"
# wait_events FILE: up to 10 s for the last expected line
wait_events() {
    i=0
    while ! grep -q "Undefined Removed" "$1" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    grep "^event '" "$1" | grep -v "'sync0'" >"$1.got"
}
wait_events "$T/rw.events"
wait_events "$T/ro.events"
kill "$RW" "$RO" 2>/dev/null
wait "$RW" "$RO" 2>/dev/null
TAP_DIAG="$T/rw.events.got"
check "virsh event --all --loop: every lifecycle event, in order" cmp -s "$T/want" "$T/rw.events.got"
TAP_DIAG="$T/ro.events.got"
check "virsh -r event (read-only socket): the same events" cmp -s "$T/want" "$T/ro.events.got"
TAP_DIAG="$T/out"
check "a triple fault is reported crashed (panicked), then stopped (crashed)" \
    sh -c "grep -A1 \"'boom': Crashed Panicked\" '$T/rw.events.got' | grep -q 'Stopped Crashed'"

# One domain's events only: virsh event --domain (which looks it up first)
vm_xml ev2 "seed=2" 32 >"$T/ev2.xml"; vm_xml ev3 "seed=2" 32 >"$T/ev3.xml"
V define "$T/ev2.xml" >/dev/null 2>&1; V define "$T/ev3.xml" >/dev/null 2>&1
stdbuf -oL virsh -c "$URI" event --domain ev2 --event lifecycle --loop --timeout $((120 * SLOW)) >"$T/one.events" 2>&1 &
ONE=$!
sleep "$SLOW" # until it listens
V start ev3 >/dev/null 2>&1; V start ev2 >/dev/null 2>&1
V destroy ev3 >/dev/null 2>&1; V destroy ev2 >/dev/null 2>&1
end=$(($(date +%s) + 10 * SLOW))
while ! grep -q "Stopped Destroyed" "$T/one.events" && [ "$(date +%s)" -lt $end ]; do sleep 0.1; done
kill "$ONE" 2>/dev/null; wait "$ONE" 2>/dev/null
TAP_DIAG="$T/one.events"
check "virsh event --domain ev2: ev2's events only" \
    sh -c "[ \$(grep -c \"^event '\" '$T/one.events') = 2 ] && ! grep -q ev3 '$T/one.events'"
TAP_DIAG="$T/out"

# A connection that registers and goes away harms nobody.
/usr/bin/python3 - "$URI" >"$T/out" 2>&1 <<'PY'
import sys, libvirt
libvirt.virEventRegisterDefaultImpl()
c = libvirt.open(sys.argv[1])
c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lambda *a: None, None)
PY
vm_xml ev4 "seed=2" 32 >"$T/ev4.xml"
V create "$T/ev4.xml" >"$T/out" 2>&1
check "events to a connection that closed: dropped, the daemon goes on" grep -q "Domain 'ev4' created" "$T/out"
V destroy ev4 >/dev/null 2>&1
spd_stop
check "SIGTERM: samepaged exits 0" [ $? = 0 ]
exit 0
