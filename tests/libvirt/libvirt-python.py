# libvirt-python.py - Debian's python3-libvirt against the libvirt endpoint
# (sp-libvirt-testd): node memory parameters get/set, memoryStats,
# getAllDomainStats with samepage.* keys, node info and memory stats, error
# codes as clients see them, and a connection kept alive by keepalive PINGs
# across 12 s of idleness (the 30 s run is libvirt-keepalive30.py).
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libvirt  # noqa: E402
import lvtest  # noqa: E402

libvirt.registerErrorHandler(lambda ctx, err: None, None)
tap = lvtest.Tap(14)
srv = lvtest.TestServer()
try:
    libvirt.virEventRegisterDefaultImpl()
    c = libvirt.open(srv.uri)
    p = c.getMemoryParameters()
    tap.check(p == {"shm_pages_to_scan": 100, "shm_sleep_millisecs": 20,
                    "shm_pages_shared": 300, "shm_pages_sharing": 1200,
                    "shm_pages_unshared": 5000, "shm_pages_volatile": 40,
                    "shm_full_scans": 12, "shm_merge_across_nodes": 1},
              "getMemoryParameters: the eight shm_* values", p)
    c.setMemoryParameters({"shm_pages_to_scan": 321, "shm_sleep_millisecs": 7})
    p = c.getMemoryParameters()
    tap.check(p["shm_pages_to_scan"] == 321 and p["shm_sleep_millisecs"] == 7,
              "setMemoryParameters is read back", p)
    try:
        c.setMemoryParameters({"shm_pages_shared": 1})
        tap.check(False, "setting a read-only counter fails")
    except libvirt.libvirtError as e:
        tap.check(e.get_error_code() == libvirt.VIR_ERR_INVALID_ARG and "read-only" in str(e),
                  "setting a read-only counter fails with VIR_ERR_INVALID_ARG", e)
    d = c.lookupByName("alpha")
    ms = d.memoryStats()
    tap.check(ms == {"swap_in": 7, "swap_out": 9, "actual": 524288, "available": 524288,
                     "usable": 400000, "rss": 123456}, "memoryStats", ms)
    stats = dict((dom.name(), st) for dom, st in c.getAllDomainStats())
    a = stats.get("alpha", {})
    tap.check(a.get("samepage.merged_pages") == 4242 and a.get("samepage.zero_pages") == 17
              and a.get("samepage.sharing_domain") == "tenant-a",
              "getAllDomainStats: samepage.* keys (ullong and string)", a)
    tap.check(a.get("state.state") == 1 and a.get("balloon.maximum") == 524288
              and a.get("vcpu.current") == 2 and a.get("cpu.time") == 1500000000,
              "getAllDomainStats: standard keys", a)
    tap.check(set(stats) == {"alpha", "beta"} and stats["beta"]["state.state"] == 5,
              "getAllDomainStats: both domains, beta shut off", sorted(stats))
    only = c.domainListGetStats([d], libvirt.VIR_DOMAIN_STATS_STATE)
    tap.check(len(only) == 1 and only[0][1] == {"state.state": 1, "state.reason": 1},
              "domainListGetStats for one domain and one group", only)
    info = c.getInfo()
    tap.check(info[0] == "x86_64" and info[1] == 8192 and info[2] == 2,
              "getInfo: model, memory MiB, cpus", info)
    tap.check(c.getMemoryStats(-1) == {"total": 8388608, "free": 4194304, "buffers": 1024,
                                       "cached": 2048}
              and c.getMemoryStats(0) == {"total": 8388608, "free": 4194304},
              "getMemoryStats all cells and cell 0")
    try:
        c.lookupByName("nosuch")
        tap.check(False, "lookup of a missing domain fails")
    except libvirt.libvirtError as e:
        tap.check(e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN,
                  "lookup of a missing domain: VIR_ERR_NO_DOMAIN", e)
    try:
        d.migrateGetMaxSpeed()
        tap.check(False, "unimplemented procedure fails")
    except libvirt.libvirtError as e:
        tap.check(e.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT,
                  "unimplemented procedure: VIR_ERR_NO_SUPPORT (client-rewritten)", e)

    # keepalive: pings every 2 s, dead after 2 unanswered: 12 s idle would
    # kill the connection unless the server answers with PONGs
    c.setKeepAlive(2, 2)
    # a tick so the loop returns even if the connection (and its timers) died
    libvirt.virEventAddTimeout(500, lambda timer, opaque: None, None)
    t0 = time.time()
    while time.time() - t0 < 12:
        libvirt.virEventRunDefaultImpl()
    tap.check(c.isAlive() == 1, "keepalive: connection alive after 12 s idle")
    try:
        tap.check(c.getHostname() != "" and len(c.listAllDomains()) == 2,
                  "keepalive: connection still answers calls")
    except libvirt.libvirtError as e:
        tap.check(False, "keepalive: connection still answers calls", e)
    c.close()
finally:
    rc = srv.stop()
tap.done()
