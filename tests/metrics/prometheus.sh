#!/bin/sh
# prometheus.sh - Debian's real Prometheus server scrapes samepaged's
# metrics endpoint on loopback: samepage_pages_sharing through its HTTP API
# equals what `virsh node-memory-tune` reports, each running VM has its
# series labelled with its domain name and UUID, `promtool check metrics`
# accepts the exposition text.  A VM named q"b\s (a quote and a
# backslash) comes back intact from Prometheus's parse of the labels and
# from every JSON output of the samepage client (list, stats, clone),
# parsed with /usr/bin/python3.  TAP.
set -u
. "$(dirname "$0")/../daemon/common.sh"
. "$(dirname "$0")/common.sh"
echo "1..11"
for c in prometheus promtool virsh; do
    command -v $c >/dev/null || { echo "Bail out! $c is not installed (debian-packages.txt)"; exit 1; }
done
SP="$B/samepage"
WEIRD='q"b\s'
MP=$(free_port)
spd_start --metrics-listen "127.0.0.1:$MP" || { echo "Bail out! samepaged did not start"; exit 1; }
PPID_=
trap 'kill $PPID_ 2>/dev/null; cleanup' EXIT

# Two memload VMs of one sharing domain, without churn: their sharing
# converges and then stays put.
ARGS="seed=7,shared=60,unique=20,zero=10,rate=0"
vm_xml web1 "$ARGS" 64 t1 >"$T/web1.xml"
vm_xml "$WEIRD" "$ARGS" 64 t1 >"$T/weird.xml"
for f in web1 weird; do
    "$SP" define -c "$SOCK" "$T/$f.xml" >/dev/null 2>>"$T/out"
done
"$SP" start -c "$SOCK" web1 >/dev/null 2>>"$T/out"
"$SP" start -c "$SOCK" "$WEIRD" >/dev/null 2>>"$T/out"

# Wait until the sharing is stable: the same figure 2 s apart, non-zero.
i=0 prev=-1
while [ $i -lt 60 ]; do
    cur=$(shm shm_pages_sharing)
    [ -n "$cur" ] && [ "$cur" -gt 0 ] && [ "$cur" = "$prev" ] && break
    prev=$cur
    sleep 2
    i=$((i + 1))
done
check "the two VMs merged and the sharing is stable (shm_pages_sharing $cur)" \
    eval '[ -n "$cur" ] && [ "$cur" -gt 0 ] && [ "$cur" = "$prev" ]'

# Prometheus, scraping every second.
PP=$(free_port)
cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: samepage
    static_configs:
      - targets: ['127.0.0.1:$MP']
YML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
    --web.listen-address="127.0.0.1:$PP" >"$T/prometheus.log" 2>&1 &
PPID_=$!
wait_http "http://127.0.0.1:$PP/-/ready" 150
check "Prometheus is up on loopback" wait_http "http://127.0.0.1:$PP/-/ready" 1

# The same figure through Prometheus and through virsh (samepaged's own
# libvirt endpoint), read in one go once the scrape caught up.
i=0 got=
while [ $i -lt 30 ]; do
    v1=$(shm shm_pages_sharing)
    got=$(prom_query "$PP" samepage_pages_sharing 2>>"$T/out" | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["value"][1])' 2>/dev/null)
    v2=$(shm shm_pages_sharing)
    [ -n "$got" ] && [ "$got" = "$v1" ] && [ "$v1" = "$v2" ] && break
    sleep 1
    i=$((i + 1))
done
check "Prometheus's samepage_pages_sharing ($got) = virsh node-memory-tune's shm_pages_sharing ($v1)" \
    eval '[ -n "$got" ] && [ "$got" = "$v1" ] && [ "$v1" = "$v2" ]'

prom_query "$PP" samepage_vm_merged_pages >"$T/series" 2>>"$T/out"
"$SP" list --json -c "$SOCK" >"$T/list.json" 2>>"$T/out"
"$PY" - "$T/series" "$T/list.json" "$WEIRD" >"$T/out" 2>&1 <<'PY'
import json, sys
series = [json.loads(l) for l in open(sys.argv[1])]
uuids = {d["name"]: d["uuid"] for d in json.load(open(sys.argv[2]))}
got = {s["metric"]["domain"]: s["metric"].get("uuid") for s in series}
assert set(got) == {"web1", sys.argv[3]}, got
assert all(got[n] == uuids[n] for n in got), (got, uuids)
assert all(int(s["value"][1]) > 0 for s in series), series
PY
check "a samepage_vm_merged_pages series per running VM, labelled domain and uuid, the quoted name intact" [ $? = 0 ]

prom_query "$PP" 'samepage_vm_info{sharing_domain="t1"}' >"$T/info" 2>>"$T/out"
check "samepage_vm_info names both VMs with their state" \
    "$PY" -c 'import json,sys; s=[json.loads(l)["metric"] for l in open(sys.argv[1])]; assert sorted(m["domain"] for m in s)==sorted(["web1",sys.argv[2]]) and all(m["state"]=="running" for m in s), s' "$T/info" "$WEIRD"

fetch "http://127.0.0.1:$MP/metrics" "$T/metrics.txt" 2>"$T/out"
promtool check metrics <"$T/metrics.txt" >"$T/out" 2>&1
check "promtool check metrics accepts the endpoint's output" [ $? = 0 ]
check "the exposition text escapes the quote and the backslash in the domain label" \
    grep -qF 'samepage_vm_merged_pages{domain="q\"b\\s",uuid=' "$T/metrics.txt"

# The JSON outputs of the client, parsed back.
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert sys.argv[2] in [x["name"] for x in d], d' \
    "$T/list.json" "$WEIRD" >"$T/out" 2>&1
check "list --json: the name with a quote and a backslash parses back" [ $? = 0 ]
"$SP" stats --json -c "$SOCK" >"$T/stats.json" 2>"$T/out"
check "stats --json: the name parses back, figures are integers" \
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=[x for x in d["domains"] if x["name"]==sys.argv[2]][0]; s=v["stats"]; assert s["samepage.sharing_domain"]=="t1" and isinstance(s["samepage.dedup.pages_merged"],int) and s["samepage.dedup.pages_merged"]>0 and isinstance(d["node"]["shm_pages_sharing"],int), v' "$T/stats.json" "$WEIRD"
"$SP" clone -c "$SOCK" --names qc1 --json "$WEIRD" >"$T/clone.json" 2>"$T/out"
check "clone --json: the source name parses back" \
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d=={"source":sys.argv[2],"children":["qc1"]}, d' "$T/clone.json" "$WEIRD"
"$SP" stats --json -c "$ROSOCK" -r "$WEIRD" >"$T/stats1.json" 2>"$T/out"
check "stats NAME --json over the read-only socket: only that VM" \
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [x["name"] for x in d["domains"]]==[sys.argv[2]], d' "$T/stats1.json" "$WEIRD"
kill $PPID_ 2>/dev/null
spd_stop
exit 0
