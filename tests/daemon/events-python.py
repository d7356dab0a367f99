#!/usr/bin/python3
"""events-python.py - Debian's python3-libvirt with its default event loop against
a real samepaged: lifecycle and reboot callbacks see a memload VM start,
suspend, resume, reboot and stop, and a payload that triple-faults crash;
a read-only connection gets the same events and can change nothing;
deregistering stops them.  Also the same figures through the API:
suspend/resume error codes, vcpus() and vcpusFlags(), getCPUMap(),
getCPUStats(), getMaxVcpus() against KVM, and autostart.  Prints TAP.  Run
by automake with top_builddir set."""
import fcntl
import os
import queue
import sys
import time

import libvirt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "libvirt"))
import lvtest  # noqa: E402

XML = """<domain type='samepage'><name>{name}</name><memory unit='MiB'>{mib}</memory>
<vcpu>2</vcpu><os><type>hvm</type></os><metadata>
<sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1"><sp:payload>{payload}</sp:payload>
<sp:args>{args}</sp:args></sp:samepage></metadata></domain>"""

E = libvirt


def lifecycle(conn, dom, event, detail, q):
    q.put((dom.name(), event, detail))


def reboot(conn, dom, q):
    q.put((dom.name(), "reboot", None))


def drain(q, until, timeout=15):
    """Events until one equals `until` (or the timeout)."""
    got = []
    end = time.time() + timeout
    while time.time() < end:
        try:
            ev = q.get(timeout=0.2)
        except queue.Empty:
            continue
        got.append(ev)
        if ev == until:
            break
    return got


tap = lvtest.Tap(18)
ok = tap.check
spd = lvtest.Samepaged("samepage-ev.")
T, URI, ROURI = spd.dir, spd.uri, spd.rouri
try:
    stop = lvtest.default_event_loop()
    conn = libvirt.open(URI)
    ro = libvirt.openReadOnly(ROURI)
    q, rq = queue.Queue(), queue.Queue()
    cb = conn.domainEventRegisterAny(None, E.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, q)
    cb2 = conn.domainEventRegisterAny(None, E.VIR_DOMAIN_EVENT_ID_REBOOT, reboot, q)
    rcb = ro.domainEventRegisterAny(None, E.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, rq)
    ok(cb != cb2, "lifecycle and reboot callbacks registered (ids %d, %d)" % (cb, cb2))

    dom = conn.defineXML(XML.format(name="pe", mib=64, payload="memload",
                                    args="seed=4,rate=100"))
    dom.create()
    time.sleep(0.5)
    dom.suspend()
    st, reason = dom.state()
    ok(st == E.VIR_DOMAIN_PAUSED and reason == E.VIR_DOMAIN_PAUSED_USER,
       "suspend: paused, reason user", (st, reason))
    try:
        ro.lookupByName("pe").resume()
        ok(False, "read-only resume refused")
    except libvirt.libvirtError as e:
        ok(e.get_error_code() == E.VIR_ERR_OPERATION_DENIED and dom.state()[0] ==
           E.VIR_DOMAIN_PAUSED, "read-only resume refused: VIR_ERR_OPERATION_DENIED, still "
           "paused", e)
    dom.resume()
    try:
        dom.resume()
        ok(False, "resume of a running domain is refused")
    except libvirt.libvirtError as e:
        ok(e.get_error_code() == E.VIR_ERR_OPERATION_INVALID,
           "resume of a running domain: VIR_ERR_OPERATION_INVALID", e)
    dom.reboot(0)
    dom.destroy()
    got = drain(q, ("pe", E.VIR_DOMAIN_EVENT_STOPPED, E.VIR_DOMAIN_EVENT_STOPPED_DESTROYED))
    want = [("pe", E.VIR_DOMAIN_EVENT_DEFINED, E.VIR_DOMAIN_EVENT_DEFINED_ADDED),
            ("pe", E.VIR_DOMAIN_EVENT_STARTED, E.VIR_DOMAIN_EVENT_STARTED_BOOTED),
            ("pe", E.VIR_DOMAIN_EVENT_SUSPENDED, E.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED),
            ("pe", E.VIR_DOMAIN_EVENT_RESUMED, E.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED),
            ("pe", "reboot", None),
            ("pe", E.VIR_DOMAIN_EVENT_STOPPED, E.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)]
    ok(got == want, "callbacks: defined, started, suspended, resumed, reboot, stopped", got)

    crash = conn.createXML(XML.format(name="tf", mib=32, payload="crash", args=""), 0)
    got = drain(q, ("tf", E.VIR_DOMAIN_EVENT_STOPPED, E.VIR_DOMAIN_EVENT_STOPPED_CRASHED))
    ok(got == [("tf", E.VIR_DOMAIN_EVENT_STARTED, E.VIR_DOMAIN_EVENT_STARTED_BOOTED),
               ("tf", E.VIR_DOMAIN_EVENT_CRASHED, E.VIR_DOMAIN_EVENT_CRASHED_PANICKED),
               ("tf", E.VIR_DOMAIN_EVENT_STOPPED, E.VIR_DOMAIN_EVENT_STOPPED_CRASHED)],
       "triple fault: started, crashed (panicked), stopped (crashed)", got)
    rgot = drain(rq, ("tf", E.VIR_DOMAIN_EVENT_STOPPED, E.VIR_DOMAIN_EVENT_STOPPED_CRASHED))
    ok([e for e in rgot if e[1] != "reboot"] == [e for e in want if e[1] != "reboot"] + got,
       "the read-only connection got the same lifecycle events", rgot)

    conn.domainEventDeregisterAny(cb)
    dom.create()
    dom.destroy()
    got = drain(q, None, timeout=2)
    ok(got == [], "deregistered: no more lifecycle events", got)
    try:
        conn.domainEventDeregisterAny(cb)
        ok(False, "deregistering twice is refused")
    except libvirt.libvirtError as e:
        ok(True, "deregistering twice is refused: %s" % e.get_error_message())

    # The same figures through the API.
    dom.create()
    time.sleep(0.3)
    info, maps = dom.vcpus()
    ok(len(info) == 2 and all(v[1] == E.VIR_VCPU_RUNNING and v[3] in os.sched_getaffinity(0)
                              for v in info) and all(all(m) for m in maps),
       "vcpus(): 2 running vCPUs on host CPUs, each allowed on every CPU", (info, maps))
    ok(dom.vcpusFlags(E.VIR_DOMAIN_AFFECT_LIVE | E.VIR_DOMAIN_VCPU_MAXIMUM) == 2 and
       dom.vcpusFlags(E.VIR_DOMAIN_AFFECT_CONFIG) == 2 and dom.maxVcpus() == 2,
       "vcpusFlags() and maxVcpus(): 2")
    try:
        dom.vcpusFlags(E.VIR_DOMAIN_VCPU_GUEST)
        ok(False, "vcpusFlags(GUEST) is refused")
    except libvirt.libvirtError as e:
        ok(e.get_error_code() == E.VIR_ERR_OPERATION_UNSUPPORTED,
           "vcpusFlags(GUEST): no guest agent, VIR_ERR_OPERATION_UNSUPPORTED", e)
    ncpu, online, count = conn.getCPUMap()
    ok(count == len(os.sched_getaffinity(0)) and
       [i for i, b in enumerate(online) if b] == sorted(os.sched_getaffinity(0)),
       "getCPUMap(): the host's CPUs (%d)" % count, (ncpu, online, count))
    kvm = fcntl.ioctl(os.open("/dev/kvm", os.O_RDWR), 0xAE03, 66)  # KVM_CAP_MAX_VCPUS
    ok(conn.getMaxVcpus(None) == kvm and ro.getMaxVcpus("kvm") == kvm,
       "getMaxVcpus(): %d, KVM's limit" % kvm)
    a = conn.getCPUStats(-1)
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    ok(set(a) == {"kernel", "user", "idle", "iowait"} and
       a["idle"] <= ticks[3] * 10**9 // hz and a["user"] <= (ticks[0] + ticks[1]) * 10**9 // hz,
       "getCPUStats(-1): kernel, user, idle, iowait in ns, from /proc/stat", a)
    dom.destroy()
    dom.setAutostart(1)
    ok(dom.autostart() == 1 and os.path.islink(os.path.join(T, "state/autostart/pe.xml")),
       "setAutostart(1): kept as a link in the state dir")
    try:
        ro.lookupByName("pe").setAutostart(0)
        ok(False, "read-only setAutostart refused")
    except libvirt.libvirtError as e:
        ok(e.get_error_code() == E.VIR_ERR_OPERATION_DENIED and dom.autostart() == 1,
           "read-only setAutostart refused, autostart unchanged", e)
    dom.setAutostart(0)
    dom.undefine()
    ok(spd.alive(), "samepaged still runs")
    stop.set()
finally:
    spd.stop()
tap.done()
