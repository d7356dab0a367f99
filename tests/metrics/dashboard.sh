#!/bin/sh
# dashboard.sh - the contrib/ files and the docs against the real
# endpoint, here `samepage run --metrics-listen` with two VMs: the Grafana
# dashboard's JSON parses and every metric it queries is in the endpoint's
# output; docs/metrics.md's table lists exactly the metrics the endpoint
# serves; the Prometheus scrape-config example passes `promtool check
# config`; run's --json lines parse with typed figures.  TAP.
set -u
. "$(dirname "$0")/../daemon/common.sh" # B, T, TAP helpers (no daemon started here)
SP="$B/samepage"
TAP_DIAG="$T/out $T/err"
. "$(dirname "$0")/common.sh"
echo "1..7"
S=${top_srcdir:-.}
DASH="$S/contrib/grafana/samepage-dashboard.json"
MP=$(free_port)
VM="payload=memload,mem=32M,vcpus=1,domain=d,args=seed=5,rate=50"
# (inside the emulated host the VMs take longer to start: SLOW, common.sh)
# (the run's own bound is far beyond the waits: the test stops it, SIGTERM
# through timeout, which --foreground makes pass it to samepage run alone;
# without, it signals its whole process group, the VM processes too)
timeout --foreground $((120 * SLOW)) "$SP" run --json --status 1 --timeout $((100 * SLOW)) \
    --log-dir "$T/logs" --metrics-listen "127.0.0.1:$MP" \
    --vm "name=one,$VM" --vm "name=two,$VM" >"$T/run.out" 2>"$T/err" &
RUN=$!
wait_http "http://127.0.0.1:$MP/metrics" $((100 * SLOW))
sleep 3
fetch "http://127.0.0.1:$MP/metrics" "$T/metrics.txt" 2>>"$T/err"
check "run --metrics-listen serves per-VM series" \
    grep -q '^samepage_vm_merged_pages{domain="one"} ' "$T/metrics.txt"
check "promtool check metrics accepts it" eval 'promtool check metrics <"$T/metrics.txt" >"$T/out" 2>&1'
"$PY" - "$DASH" "$T/metrics.txt" >"$T/out" 2>&1 <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
have = set(re.findall(r"^# TYPE (\S+) ", open(sys.argv[2]).read(), re.M))
exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                exprs.append(v)
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(dash)
used = set(n for e in exprs for n in re.findall(r"samepage_[a-z0-9_]+", e))
assert exprs and used, "no queries"
missing = used - have
assert not missing, missing
print("queries", len(exprs), "metrics", len(used))
PY
check "the dashboard parses and every metric it queries is in the endpoint's output" [ $? = 0 ]
"$PY" - "$S/docs/metrics.md" "$T/metrics.txt" >"$T/out" 2>&1 <<'PY'
import re, sys
doc = set(re.findall(r"^\| `(samepage_[a-z0-9_]+)`", open(sys.argv[1]).read(), re.M))
have = set(re.findall(r"^# TYPE (\S+) ", open(sys.argv[2]).read(), re.M))
assert doc == have, ("undocumented", have - doc, "documented but not served", doc - have)
PY
check "docs/metrics.md's table lists exactly the metrics served" [ $? = 0 ]
check "the scrape-config example passes promtool check config" \
    eval 'promtool check config "$S/contrib/prometheus/samepage.yml" >"$T/out" 2>&1'
kill -TERM $RUN 2>/dev/null
wait $RUN
rc=$?
check "run ended well (SIGTERM, exit $rc)" [ $rc = 0 ]
"$PY" - "$T/run.out" >"$T/out" 2>&1 <<'PY'
import json, sys
vms, engine = {}, None
for line in open(sys.argv[1]):
    if line.startswith("{"):
        o = json.loads(line)
        if "vm" in o:
            vms[o["vm"]] = o
        elif "engine" in o:
            engine = o["engine"]
assert set(vms) == {"one", "two"}, vms
v = vms["one"]
assert isinstance(v["merged_pages"], int) and isinstance(v["seconds"], (int, float)) and v["state"] in ("running", "stopped"), v
assert isinstance(engine["pages_sharing"], int) and isinstance(engine["general_profit"], int), engine
PY
check "run --json lines parse, figures typed" [ $? = 0 ]
exit 0
