#!/usr/bin/python3
"""python-libvirt.py - Debian's python3-libvirt against a real samepaged:
memory parameters get/set, memoryStats, getAllDomainStats with samepage.*
keys, and a connection kept alive by keepalive across 32 s of idleness.
Prints TAP.  Run by automake with top_builddir set."""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import libvirt

B = os.environ.get("top_builddir", ".")
T = tempfile.mkdtemp(prefix="samepage-py.")
SOCK = os.path.join(T, "sock")
URI = "samepage+unix:///system?socket=" + SOCK
n = 0
failed = 0


def ok(cond, desc, detail=""):
    global n, failed
    n += 1
    if cond:
        print(f"ok {n} - {desc}")
    else:
        failed += 1
        print(f"not ok {n} - {desc}")
        for line in str(detail).splitlines()[:20]:
            print(f"#   {line}")
    sys.stdout.flush()


XML = """<domain type='samepage'><name>{name}</name><memory unit='MiB'>64</memory>
<vcpu>2</vcpu><os><type>hvm</type></os><metadata>
<sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1"><sp:payload>memload</sp:payload>
<sp:args>seed=1,rate=100</sp:args></sp:samepage></metadata></domain>"""

print("1..10")
env = dict(os.environ, SAMEPAGE_PAYLOAD_DIR=os.path.join(B, "guest-tools"))
log = open(os.path.join(T, "daemon.log"), "w")
daemon = subprocess.Popen([os.path.join(B, "samepaged"), "-d", os.path.join(T, "state"),
                           "-s", SOCK], stdout=log, stderr=log, env=env)
try:
    for _ in range(100):
        if os.path.exists(SOCK):
            break
        time.sleep(0.1)
    libvirt.virEventRegisterDefaultImpl()
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=loop, daemon=True).start()
    conn = libvirt.open(URI)
    ok(conn is not None, "open " + URI)

    params = conn.getMemoryParameters()
    want = {"shm_pages_to_scan", "shm_sleep_millisecs", "shm_pages_shared",
            "shm_pages_sharing", "shm_pages_unshared", "shm_pages_volatile",
            "shm_full_scans", "shm_merge_across_nodes"}
    ok(want <= set(params), "getMemoryParameters returns every shm_* parameter", params)

    conn.setMemoryParameters({"shm_pages_to_scan": 4321, "shm_sleep_millisecs": 7})
    params = conn.getMemoryParameters()
    ok(params["shm_pages_to_scan"] == 4321 and params["shm_sleep_millisecs"] == 7,
       "setMemoryParameters is read back", params)
    try:
        conn.setMemoryParameters({"shm_pages_shared": 5})
        ok(False, "a read-only parameter is refused")
    except libvirt.libvirtError as e:
        ok(e.get_error_code() == libvirt.VIR_ERR_INVALID_ARG,
           "a read-only parameter is refused with VIR_ERR_INVALID_ARG", e)

    dom = conn.defineXML(XML.format(name="py1"))
    dom.create()
    time.sleep(2)
    ms = dom.memoryStats()
    ok(ms.get("actual") == 65536 and 0 < ms.get("rss", 0) <= 65536 and "swap_in" in ms,
       "memoryStats: actual, rss, swap_in", ms)

    stats = conn.getAllDomainStats()
    rec = [s for d, s in stats if d.name() == "py1"]
    ok(len(rec) == 1 and rec[0].get("state.state") == libvirt.VIR_DOMAIN_RUNNING,
       "getAllDomainStats has the running domain", stats)
    keys = rec[0] if rec else {}
    sp = {k for k in keys if k.startswith("samepage.")}
    ok({"samepage.dedup.pages_merged", "samepage.pages_private", "samepage.mappings",
        "samepage.profit_bytes"} <= sp, "getAllDomainStats carries samepage.* keys", keys)

    conn.setKeepAlive(5, 3)
    time.sleep(32)  # idle: only keepalive messages cross the socket
    ok(conn.isAlive() == 1, "the connection is alive after 32 s idle (keepalive)")
    ok(conn.lookupByName("py1").isActive() == 1, "and still answers calls")
    dom.destroy()
    dom.undefine()
    ok(all(d.name() != "py1" for d in conn.listAllDomains()), "destroy + undefine")
    conn.close()
    stop.set()
finally:
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(15)
    except subprocess.TimeoutExpired:
        daemon.kill()
    subprocess.run(["rm", "-rf", T])
sys.exit(0)
