#!/bin/sh
# endpoint-errors.sh - bad input to the metrics endpoint harms nothing
# else: a malformed request line, another method, another path and more
# connections than the limit each get a clear answer (or a closed
# connection), while the endpoint and samepaged's libvirt socket keep
# answering; a bad --metrics-listen is a one-line error.  TAP.
set -u
. "$(dirname "$0")/../daemon/common.sh"
. "$(dirname "$0")/common.sh"
echo "1..9"
SP="$B/samepage"

for bad in "nonsense" "127.0.0.1:99999" "127.0.0.1:" "[::1:9477"; do
    timeout 10 "$B/samepaged" -d "$T/state2" -s "$T/sock2" --metrics-listen "$bad" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc = 1 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q "metrics" "$T/err" || { echo "# $bad: rc=$rc"; break; }
done
check "a bad --metrics-listen is a one-line error, exit status 1" eval '[ $rc = 1 ] && [ "$(wc -l <"$T/err")" = 1 ]'

MP=$(free_port)
spd_start --metrics-listen "127.0.0.1:$MP" || { echo "Bail out! samepaged did not start"; exit 1; }
wait_http "http://127.0.0.1:$MP/metrics" 50
check "the endpoint answers /metrics" grep -q "event=metrics-listen address=127.0.0.1:$MP" "$T/daemon.log"

# raw REQUEST: the first line of the answer to bytes sent as they are.
raw() {
    "$PY" - "$MP" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
try:
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
print(data.split(b"\r\n")[0].decode("latin-1"))
PY
}
check "a malformed request line gets 400" eval 'raw "GARBAGE\\r\\n\\r\\n" | grep -q "^HTTP/1.[01] 400"'
check "a request with a broken header gets 400" eval 'raw "GET /metrics HTTP/1.1\\r\\nHost\\r\\n\\r\\n" | grep -q "^HTTP/1.[01] 400"'
check "POST /metrics gets 405" eval 'raw "POST /metrics HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 0\\r\\n\\r\\n" | grep -q "^HTTP/1.1 405"'
check "another path gets 404" eval 'raw "GET /nope HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n" | grep -q "^HTTP/1.1 404"'

# 40 idle connections: the endpoint keeps 32, closes the rest at once;
# once they go, scrapes are answered again.
# (the closes are looked for during 1 s x SLOW: samepaged's main loop
# accepts them in its own time on a loaded emulated host)
"$PY" - "$MP" "$SLOW" >"$T/out" 2>&1 <<'PY'
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5 * int(sys.argv[2])) for _ in range(40)]
for c in conns:
    c.setblocking(False)
gone = set()
end = time.monotonic() + int(sys.argv[2])
while True:
    time.sleep(0.1)
    for i, c in enumerate(conns):
        if i in gone:
            continue
        try:
            if c.recv(1) == b"":
                gone.add(i)
        except BlockingIOError:
            pass
    if len(gone) >= 8 or time.monotonic() >= end:
        break
closed = len(gone)
print("closed", closed)
assert closed >= 8, closed
PY
check "connections over the limit are closed at once" [ $? = 0 ]
sleep 0.5
check "after all that, /metrics still answers with the engine's figures" \
    eval 'fetch "http://127.0.0.1:$MP/metrics" "$T/m" && grep -q "^samepage_pages_sharing " "$T/m"'
check "and the libvirt socket still answers" eval 'virsh -c "$URI" node-memory-tune >"$T/out" 2>&1 && grep -q shm_pages_sharing "$T/out"'
spd_stop
exit 0
