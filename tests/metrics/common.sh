# common.sh - what the metrics tests share (sourced after
# tests/daemon/common.sh): a free loopback port, fetching a URL with
# python's standard library (no proxy), and Prometheus's HTTP API.
PY=/usr/bin/python3

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# fetch URL [FILE]: the body to FILE (default stdout); fails on a non-2xx status.
fetch() {
    "$PY" - "$1" "${2:-/dev/stdout}" <<'PY'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(sys.argv[1], timeout=10) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
PY
}

# wait_http URL [TRIES]: until URL answers 2xx (0.2 s apart).
wait_http() {
    wh_i=0
    until fetch "$1" /dev/null 2>/dev/null; do
        wh_i=$((wh_i + 1))
        [ $wh_i -ge "${2:-100}" ] && return 1
        sleep 0.2
    done
}

# prom_query PORT QUERY: the instant vector as JSON lines {"metric":..., "value":...}.
prom_query() {
    "$PY" - "$1" "$2" <<'PY'
import json, sys, urllib.parse, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
url = "http://127.0.0.1:%s/api/v1/query?%s" % (sys.argv[1], urllib.parse.urlencode({"query": sys.argv[2]}))
with opener.open(url, timeout=10) as r:
    d = json.load(r)
assert d["status"] == "success", d
for s in d["data"]["result"]:
    print(json.dumps(s))
PY
}

# shm NAME: a node-memory-tune figure through Debian's virsh.
shm() { virsh -c "$URI" node-memory-tune 2>/dev/null | awk -v k="$1" '$1 == k {print $2}'; }
