# libvirt-keepalive30.py - a python3-libvirt connection with an event loop
# and keepalive (5 s interval, 3 misses) stays alive across 30 s of
# idleness against the libvirt endpoint, then still answers calls.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libvirt  # noqa: E402
import lvtest  # noqa: E402

tap = lvtest.Tap(2)
srv = lvtest.TestServer()
try:
    libvirt.virEventRegisterDefaultImpl()
    c = libvirt.open(srv.rouri)
    c.setKeepAlive(5, 3)
    # a tick so the loop returns even if the connection (and its timers) died
    libvirt.virEventAddTimeout(500, lambda timer, opaque: None, None)
    t0 = time.time()
    while time.time() - t0 < 30:
        libvirt.virEventRunDefaultImpl()
    tap.check(c.isAlive() == 1, "alive after 30 s idle")
    try:
        tap.check(sorted(d.name() for d in c.listAllDomains()) == ["alpha", "beta"],
                  "still answers")
    except libvirt.libvirtError as e:
        tap.check(False, "still answers", e)
    c.close()
finally:
    srv.stop()
tap.done()
