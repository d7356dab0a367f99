#!/usr/bin/python3
# scrape-load-client.py URI METRICS_URL SCRAPERS SECONDS [SLOW] - one measuring run for
# tests/metrics/scrape-load.sh: start 4 memload VMs of one sharing domain
# on the samepaged at URI (python3-libvirt), let SCRAPERS threads GET
# METRICS_URL at 10 Hz each for SECONDS while another polls the engine's
# shm_pages_sharing every 0.1 s through libvirt, then destroy the VMs and
# wait until their frames are gone.  Past SECONDS it goes on (scrapers too)
# while the sharing moved in the last STILL_S (5 s, 60 s emulated), up to
# SECONDS more: a loaded emulated host may not have converged by then, and
# a figure taken mid-way would not compare.  Prints one JSON object: the time the
# sharing took to reach 99 % of its final value, that value, and each
# scraper's count of scrapes and errors, its slowest answered scrape and
# when (seconds into the run) each failed one began.
import http.client, json, sys, threading, time, urllib.parse
import libvirt

uri, url, nscrapers, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
# A scrape's timeout: 5 s, times SLOW inside the emulated host, where the
# engine holds its lock for seconds per batch (up to 10 s measured there).
SLOW = float(sys.argv[5]) if len(sys.argv) > 5 else 1
TIMEOUT = 5 * SLOW
# 128 MiB VMs; 64 inside the emulated host, where 4 x 128 MiB beside another
# test had not converged after 240 s (54,723 and 46,749 pages sharing)
MIB = 128 if SLOW == 1 else 64
XML = """<domain type='samepage'><name>%s</name><memory unit='MiB'>%d</memory><vcpu>1</vcpu>
<os><type>hvm</type></os><metadata><sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1">
<sp:payload>memload</sp:payload><sp:args>seed=11,shared=60,unique=20,zero=10,rate=0</sp:args>
<sp:domain>load</sp:domain></sp:samepage></metadata></domain>"""
names = ["load%d" % i for i in range(1, 5)]
conn = libvirt.open(uri)
# No mapping budget: with it the final figure depends on the order merges
# happened in (which pages it refused), and this test compares two runs'.
conn.setMemoryParameters({"shm_map_budget": 0}, 0)


def sharing():
    return conn.getMemoryParameters()["shm_pages_sharing"]


stop = threading.Event()
scrapes = [{"scrapes": 0, "errors": 0, "first_error": None, "slowest_s": 0.0, "error_at": [],
            "seconds": 0.0} for _ in range(nscrapers)]


def scraper(st):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    nxt = begun0 = time.monotonic()
    while not stop.is_set():
        begun = time.monotonic()
        try:
            c.request("GET", u.path)
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or b"\nsamepage_pages_sharing " not in body:
                raise RuntimeError("status %d, %d bytes" % (r.status, len(body)))
            st["scrapes"] += 1
            st["slowest_s"] = round(max(st["slowest_s"], time.monotonic() - begun), 3)
        except Exception as e:  # counted, and the connection made again
            st["errors"] += 1
            st["first_error"] = st["first_error"] or repr(e)
            st["error_at"].append(round(begun - t0, 1))
            c.close()
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
        nxt += 0.1
        time.sleep(max(0, nxt - time.monotonic()))
    st["seconds"] = round(time.monotonic() - begun0, 1)  # from after the VMs' start


t0 = time.monotonic()
for n in names:
    conn.createXML(XML % (n, MIB), 0)
threads = [threading.Thread(target=scraper, args=(s,)) for s in scrapes]
for t in threads:
    t.start()
samples = []
# emulated, the sharing stood still for 38 s once, far from its final figure
STILL_S = 5 if SLOW == 1 else 15 * SLOW


def still():  # no change over the last STILL_S
    last = [v for t, v in samples if t >= samples[-1][0] - STILL_S]
    return samples[-1][0] >= STILL_S and min(last) == max(last)


while time.monotonic() - t0 < seconds or (not still() and time.monotonic() - t0 < 2 * seconds):
    samples.append((time.monotonic() - t0, sharing()))
    time.sleep(0.1)
stop.set()
for t in threads:
    t.join()
final = samples[-1][1]
conv = next((t for t, v in samples if v >= 0.99 * final), None) if final else None
for n in names:
    conn.lookupByName(n).destroy()
deadline = time.monotonic() + 30
while sharing() and time.monotonic() < deadline:
    time.sleep(0.2)
print(json.dumps({"convergence_s": conv, "final_pages_sharing": final, "scrapers": scrapes,
                  "left_sharing": sharing(), "sampled_s": round(samples[-1][0], 1)}))
