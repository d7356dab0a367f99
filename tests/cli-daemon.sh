#!/bin/sh
# cli-daemon.sh - the `samepage` client commands against a real samepaged:
# define/list/start/stats/console/stop/destroy/undefine of a memload VM
# checked by their output (names, states, numbers, JSON that parses), the
# read-only socket, and the error cases: unknown VM, bad XML, missing file,
# usage errors, no daemon, and a fake daemon sending malformed replies (an
# error, never a crash or a hang).  Prints TAP.  samepaged is killed on exit.
set -u
B=${top_builddir:-.}
SP="$B/samepage"
SPD="$B/samepaged"
PY=/usr/bin/python3
T=$(mktemp -d)
DPID=
cleanup() {
    if [ -n "$DPID" ]; then
        kill "$DPID" 2>/dev/null
        wait "$DPID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

. "$(dirname "$0")/tap.sh"
TAP_DIAG="$T/out $T/err"
echo "1..45"

C="--connect $T/sock"
# sp ARGS...: runs samepage with a time limit; $rc, $T/out, $T/err
sp() { timeout 20 "$SP" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
errline() { [ "$(wc -l <"$T/err")" = 1 ]; }
json() { "$PY" -c "import json,sys; d=json.load(open('$T/out')); $1"; }

mkxml() { # NAME
    cat >"$T/$1.xml" <<EOF
<domain type='samepage'><name>$1</name><memory unit='MiB'>64</memory><vcpu>2</vcpu><os><type>hvm</type></os><metadata><sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1"><sp:payload>memload</sp:payload><sp:args>seed=1,rate=100</sp:args></sp:samepage></metadata></domain>
EOF
}
mkxml vm1
mkxml vm2
printf '<domain type="samepage"><name>broken</name><memory>64\n' >"$T/bad.xml"

SAMEPAGE_PAYLOAD_DIR="$B/guest-tools" "$SPD" -d "$T/state" -s "$T/sock" 2>"$T/daemon.log" &
DPID=$!
i=0
while [ ! -S "$T/sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -S "$T/sock" ]; then
    echo "Bail out! samepaged did not create its socket"; cat "$T/daemon.log"; exit 1
fi

sp list $C
check "list on an empty daemon prints only the header" eval '[ $rc = 0 ] && grep -q "Name *State" "$T/out" && [ "$(wc -l <"$T/out")" = 2 ]'
sp define "$T/vm1.xml" $C
check "define vm1 from XML" eval '[ $rc = 0 ] && grep -q "Domain .vm1. defined" "$T/out"'
sp define "$T/vm2.xml" $C
check "define vm2 from XML" eval '[ $rc = 0 ] && grep -q "Domain .vm2. defined" "$T/out"'
sp list $C
check "list without --all hides inactive VMs" eval '[ $rc = 0 ] && ! grep -q vm1 "$T/out"'
sp list --all $C
check "list --all shows vm1 shut off" eval '[ $rc = 0 ] && grep -q "^ - *vm1 *shut off$" "$T/out" && grep -q "vm2" "$T/out"'
sp list --all --json $C
check "list --all --json parses, vm1 has id null and state shut off" \
    eval '[ $rc = 0 ] && json "v=[x for x in d if x[\"name\"]==\"vm1\"][0]; assert v[\"id\"] is None and v[\"state\"]==\"shut off\" and len(v[\"uuid\"])==36 and len(d)==2"'
sp start vm1 $C
check "start vm1" eval '[ $rc = 0 ] && grep -q "Domain .vm1. started" "$T/out"'
sp list $C
check "list shows vm1 running with a numeric id" eval '[ $rc = 0 ] && grep -q "^ [0-9][0-9]* *vm1 *running$" "$T/out" && ! grep -q vm2 "$T/out"'
sleep 1
sp stats $C
check "stats: a column per VM, vm1 running, vm2 shut off" \
    eval '[ $rc = 0 ] && grep -q "^statistic  *vm1  *vm2$" "$T/out" && grep -q "^state.state  *running  *shut off$" "$T/out"'
check "stats: vm1 has a positive samepage.pages_private, vm2 shows -" \
    eval 'grep -q "^samepage.pages_private  *[1-9][0-9]*  *-$" "$T/out" && grep -q "^balloon.current  *65536  *65536$" "$T/out"'
check "stats: node sharing knobs and counters" \
    eval 'grep -q "^shm_pages_to_scan  *[0-9][0-9]*$" "$T/out" && grep -q "^shm_full_scans  *[0-9][0-9]*$" "$T/out"'
sp stats --json $C
check "stats --json parses with per-VM samepage.* numbers and node shm_* numbers" \
    eval '[ $rc = 0 ] && json "v=[x for x in d[\"domains\"] if x[\"name\"]==\"vm1\"][0]; s=v[\"stats\"]; assert v[\"state\"]==\"running\" and s[\"samepage.rss_pages\"]>0 and isinstance(s[\"samepage.dedup.pages_merged\"],int) and s[\"balloon.maximum\"]==65536 and s[\"samepage.sharing_domain\"]==\"vm1\"; assert isinstance(d[\"node\"][\"shm_pages_sharing\"],int) and d[\"node\"][\"shm_pages_to_scan\"]>0"'
# NUMA cells: one per node the kernel lists, node 0's memory as its meminfo
# says, its free memory within 256 MiB of the kernel's a moment before.
nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
n0_total=$(awk '/MemTotal/ {print $4}' /sys/devices/system/node/node0/meminfo)
n0_free=$(awk '/MemFree/ {print $4}' /sys/devices/system/node/node0/meminfo)
check "stats --json: numa_cells, one per node ($nodes), node 0 memory and free memory as the kernel says" \
    eval 'json "c=d[\"numa_cells\"]; assert len(c)==$nodes and c[0][\"id\"]==0 and c[0][\"memory_bytes\"]==$n0_total*1024 and abs(c[0][\"free_bytes\"]-$n0_free*1024)<(256<<20) and c[0][\"cpus\"], c"'
sp stats $C
check "stats: the NUMA cells table (cell 0, its memory in MiB, its CPUs)" \
    eval 'grep -q "^cell  *memory MiB  *free MiB  *CPUs$" "$T/out" && grep -Eq "^0  *$((n0_total / 1024))  *[0-9]+  *[0-9]" "$T/out"'
sp stats vm2 --json $C
check "stats NAME --json reports only that VM" \
    eval '[ $rc = 0 ] && json "assert [x[\"name\"] for x in d[\"domains\"]]==[\"vm2\"] and d[\"domains\"][0][\"id\"] is None"'
sp console vm1 --state-dir "$T/state"
check "console prints the VM's console log" eval '[ $rc = 0 ] && grep -q "^memload: vm1:" "$T/out"'

timeout 20 "$SP" console vm1 --follow --state-dir "$T/state" $C >"$T/follow.out" 2>"$T/follow.err" &
FPID=$!
sleep 1
sp stop vm1 $C
check "stop vm1 waits until it is off" eval '[ $rc = 0 ] && grep -q "Domain .vm1. stopped" "$T/out"'
wait $FPID
frc=$?
check "console --follow ends by itself when the VM stops (rc=$frc)" \
    eval '[ $frc = 0 ] && grep -q "^memload: vm1:" "$T/follow.out" && [ ! -s "$T/follow.err" ]'
sp list --all --json $C
check "after stop, vm1 is shut off" eval 'json "assert [x for x in d if x[\"name\"]==\"vm1\"][0][\"state\"]==\"shut off\""'
sp start vm1 $C
sp suspend vm1 $C
check "suspend vm1: paused" eval '[ $rc = 0 ] && grep -q "Domain .vm1. suspended" "$T/out" && "$SP" list $C | grep -q "vm1 *paused$"'
sp resume vm1 $C
check "resume vm1: running" eval '[ $rc = 0 ] && grep -q "Domain .vm1. resumed" "$T/out" && "$SP" list $C | grep -q "vm1 *running$"'
sp resume vm1 $C
check "resume of a running VM: daemon's error, exit 1" eval '[ $rc = 1 ] && errline && grep -q "^samepage: .*not paused" "$T/err"'
id1=$("$SP" list $C | awk '$2 == "vm1" {print $1}')
sp reboot vm1 $C
check "reboot vm1: running again with the same id ($id1)" \
    eval '[ $rc = 0 ] && grep -q "Domain .vm1. is being rebooted" "$T/out" && "$SP" list $C | grep -q "^ *$id1 *vm1 *running$"'
sp destroy vm1 $C
check "destroy a running VM" eval '[ $rc = 0 ] && grep -q "Domain .vm1. destroyed" "$T/out"'
sp list --all $C
check "after destroy, vm1 is shut off" eval 'grep -q "^ - *vm1 *shut off$" "$T/out"'
sp destroy vm1 $C
check "destroy a stopped VM: daemon's error, exit 1" eval '[ $rc = 1 ] && errline && grep -q "^samepage: .*not running" "$T/err"'

sp list --all --readonly --connect "$T/sock-ro"
check "read-only socket: list works" eval '[ $rc = 0 ] && grep -q vm1 "$T/out"'
sp start vm1 --readonly --connect "$T/sock-ro"
check "read-only socket: start is refused with the daemon's message" \
    eval '[ $rc = 1 ] && errline && grep -qi "read only" "$T/err"'

sp start nosuch $C
check "unknown VM: one-line 'Domain not found' error, exit 1" \
    eval '[ $rc = 1 ] && errline && grep -q "^samepage: Domain not found.*nosuch" "$T/err"'
sp stats nosuch $C
check "stats of an unknown VM: exit 1" eval '[ $rc = 1 ] && errline && grep -q "nosuch" "$T/err"'
sp define "$T/bad.xml" $C
check "bad XML: the daemon's XML error, exit 1" eval '[ $rc = 1 ] && errline && grep -qi "xml" "$T/err"'
sp define "$T/none.xml" $C
check "missing XML file: exit 1" eval '[ $rc = 1 ] && errline && grep -q "none.xml" "$T/err"'
sp console nosuch --state-dir "$T/state"
check "console of a VM without a log: exit 1" eval '[ $rc = 1 ] && errline && grep -q "nosuch.log" "$T/err"'

sp undefine vm1 $C
check "undefine vm1" eval '[ $rc = 0 ] && grep -q "Domain .vm1. has been undefined" "$T/out"'
sp undefine vm2 $C
sp list --all $C
check "after undefine, list --all is empty" eval '[ $rc = 0 ] && ! grep -q "vm[12]" "$T/out"'

sp list --bogus $C
check "unknown option: usage error, exit 2" eval '[ $rc = 2 ] && errline && grep -q "samepage list" "$T/err"'
sp start $C
check "missing NAME: usage error, exit 2" eval '[ $rc = 2 ] && errline'
sp stats --help
check "stats --help explains the command" eval '[ $rc = 0 ] && grep -q "samepage\.\*" "$T/out" && grep -q -- "--json" "$T/out"'
sp --help
check "samepage --help lists the client commands" \
    eval '[ $rc = 0 ] && for c in list define undefine start stop destroy suspend resume reboot stats console; do grep -q "^  $c " "$T/out" || exit 1; done'

sp list --connect "$T/nosock"
check "no daemon: 'cannot connect to samepaged at PATH', exit 1" \
    eval '[ $rc = 1 ] && errline && grep -q "^samepage: cannot connect to samepaged at $T/nosock: " "$T/err"'

# A fake daemon that answers CONNECT_OPEN, then misbehaves (MODE).
cat >"$T/fake.py" <<'EOF'
import os, socket, struct, sys, time
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path + '.new')  # in sight only once it listens: no connect is refused
s.listen(1)
os.rename(path + '.new', path)
s.settimeout(15)
c, _ = s.accept()
def recvn(k):
    b = b''
    while len(b) < k:
        x = c.recv(k - len(b))
        if not x:
            sys.exit(0)
        b += x
    return b
def readpkt():
    n = struct.unpack('>I', recvn(4))[0]
    return struct.unpack('>IIiiIi', recvn(n - 4)[:24])
def reply(h, payload, serial=None):
    body = struct.pack('>IIiiIi', h[0], h[1], h[2], 1, h[4] if serial is None else serial, 0)
    c.sendall(struct.pack('>I', len(body) + 4 + len(payload)) + body + payload)
reply(readpkt(), b'')  # CONNECT_OPEN
h = readpkt()
if mode == 'truncated':   # claims 1000 domains, sends none
    reply(h, struct.pack('>I', 1000))
elif mode == 'serial':    # a reply to a call never made
    reply(h, struct.pack('>II', 0, 0), serial=h[4] + 7)
elif mode == 'huge':      # a packet over the 32 MiB limit
    c.sendall(struct.pack('>I', 0x7fffff00) + b'x' * 24)
elif mode == 'eof':
    c.close()
    sys.exit(0)
time.sleep(2)
EOF
for mode in truncated serial huge eof; do
    rm -f "$T/fake.sock"
    timeout 20 "$PY" "$T/fake.py" "$T/fake.sock" $mode &
    FK=$!
    i=0
    while [ ! -S "$T/fake.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    sp list --connect "$T/fake.sock"
    echo "# $mode: $(cat "$T/err")"
    kill $FK 2>/dev/null
    wait $FK 2>/dev/null
    check "fake daemon ($mode reply): a one-line error, exit 1, no crash" \
        eval '[ $rc = 1 ] && errline && grep -q "malformed reply\|connection to samepaged at .* lost" "$T/err"'
done

kill "$DPID"
wait "$DPID"
drc=$?
DPID=
check "samepaged exits cleanly on SIGTERM (rc=$drc)" eval '[ $drc = 0 ]'

[ $n = 39 ] || echo "# ran $n checks, planned 39"
[ $fails = 0 ]
