#!/bin/sh
# clone.sh - `samepage clone` through a real samepaged, checked with
# Debian's virsh and `samepage stats --json`: a running memload domain is
# cloned into 3 children that run on as transient domains and keep
# verifying their memory; a clone of a clone works; bad input is one line,
# exit status 1, and changes nothing; the source can go first.  TAP.
set -u
. "$(dirname "$0")/common.sh"
V() { virsh -c "$URI" "$@"; }
S() { "$B/samepage" "$@" --connect "$SOCK"; }
# stat VM KEY: a per-VM figure from samepage stats --json (empty if absent)
stat() {
    S stats --json "$1" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)["domains"][0]["stats"]
print(d.get(sys.argv[1], ""))' "$2"
}
# wait_stat VM KEY MIN: wait (up to 15 s) until the figure is >= MIN
wait_stat() {
    i=0
    while below "$(stat "$1" "$2")" "$3" && [ $i -lt 150 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ "$(stat "$1" "$2")" -ge "$3" ] 2>/dev/null
}
# bad DESCRIPTION ARGS...: samepage clone fails with exit 1 and one line on
# stderr, and virsh list --all is unchanged.
bad() {
    desc=$1
    shift
    V list --all >"$T/before" 2>&1
    S clone "$@" >"$T/stdout" 2>"$T/out"
    rc=$?
    V list --all >"$T/after" 2>&1
    lines=$(wc -l <"$T/out")
    if [ $rc = 1 ] && [ "$lines" = 1 ] && [ ! -s "$T/stdout" ] && cmp -s "$T/before" "$T/after" \
        && grep -q '^samepage: ' "$T/out"; then
        ok "bad input, $desc: exit 1, one line, nothing changed ($(cat "$T/out"))"
    else
        notok "bad input, $desc: rc=$rc, $lines lines"
        diff "$T/before" "$T/after" | sed 's/^/#   /'
    fi
}

echo "1..27"
spd_start --clone-max 4 || { echo "Bail out! samepaged did not start"; exit 1; }

# One vCPU and 32 MiB each: 5 busy VMs share the test machine's cores.
vm_xml src "seed=5" 32 | sed 's|<vcpu>2</vcpu>|<vcpu>1</vcpu>|' >"$T/src.xml"
vm_xml off "seed=6" 32 >"$T/off.xml"
sed 's/memload/crash/; s/seed=7/mode=ud2/' >"$T/crash.xml" <<EOF
$(vm_xml boom "seed=7" 32)
EOF
cat >"$T/linux.xml" <<EOF
<domain type='samepage'>
  <name>lx</name>
  <memory unit='MiB'>64</memory>
  <os><type>hvm</type><kernel>$T/src.xml</kernel><cmdline>console=ttyS0</cmdline></os>
</domain>
EOF
S define "$T/src.xml" >/dev/null && S define "$T/off.xml" >/dev/null &&
    S define "$T/crash.xml" >/dev/null && S define "$T/linux.xml" >/dev/null &&
    S start src >/dev/null && S start boom >/dev/null
check "define and start the source (memload) and a crashing payload" [ $? = 0 ]
check "the source fills its memory and verifies a round" wait_stat src samepage.guest.rounds 1

# Bad input first: every case leaves the domains as they were.
bad "unknown domain" nosuch
bad "shut-off domain" off
i=0
while ! V domstate --reason boom 2>/dev/null | grep -q crashed && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
bad "crashed domain" boom
bad "count 0" src --count 0
bad "count above --clone-max 4" src --count 5
bad "Linux-kernel domain" lx
bad "name in use" src --names off
"$B/samepage" clone src --readonly --connect "$ROSOCK" >"$T/out" 2>&1
check "read-only connection: clone refused" sh -c "[ $? = 1 ] && grep -q 'read only access prevents' '$T/out'"

S clone src --count 3 >"$T/out" 2>&1
check "clone src into 3 children" grep -qx "Domain 'src' cloned into src-c1, src-c2, src-c3" "$T/out"
V list >"$T/out" 2>&1
check "virsh list shows the source and the children running" sh -c \
    "for v in src src-c1 src-c2 src-c3; do grep -Eq \"^ *[0-9]+ +\$v +running\" '$T/out' || exit 1; done"
V dominfo src-c2 >"$T/out" 2>&1
check "a child is a transient domain with the source's memory and vCPUs" sh -c \
    "grep -q 'Persistent: *no' '$T/out' && grep -q 'Max memory: *32768 KiB' '$T/out' && grep -q 'CPU(s): *1' '$T/out'"
r0=$(stat src-c1 samepage.guest.rounds)
check "children keep verifying: rounds advance past $r0" wait_stat src-c1 samepage.guest.rounds $((r0 + 1))
errs=0
for v in src src-c1 src-c2 src-c3; do
    e=$(stat $v samepage.guest.integrity_errors)
    [ "$e" = 0 ] || errs=$((errs + 1))
done
check "no integrity errors in the source or any child" [ $errs = 0 ]
gen=$(stat src-c3 samepage.clone.generation)
g1=$(stat src-c1 samepage.clone.group)
g0=$(stat src samepage.clone.group)
check "stats: children are generation 1 of the source's clone group ($gen, $g1 = $g0)" \
    sh -c "[ '$gen' = 1 ] && [ '$g1' = '$g0' ] && [ '$g1' -gt 0 ]"
shared=$(stat src-c2 samepage.clone.pages_shared)
check "stats: a child's samepage.clone.pages_shared > 0 ($shared)" [ "${shared:-0}" -gt 0 ]
S stats --json >"$T/stats.json" 2>&1
/usr/bin/python3 - "$T/stats.json" "$g0" >"$T/out" 2>&1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
g = [x for x in d["clone_groups"] if x["id"] == int(sys.argv[2])]
assert len(g) == 1, d["clone_groups"]
g = g[0]
print(g)
assert g["members"] == 4 and g["parent"] == 0, g
assert g["pages"] > 0 and g["pages_shared"] > 0 and g["pages_saved"] > 0, g
EOF
check "stats --json: the clone group has 4 members and saved pages" [ $? = 0 ]
S stats >"$T/out" 2>&1
check "stats text: a clone groups table" sh -c "grep -q '^clone groups' '$T/out' && grep -Eq '^ *$g0 +0 +4 ' '$T/out'"
S console src-c1 >"$T/out" 2>&1
check "a child has its own console log" test -s "$T/out"

S clone src-c1 --names chain >"$T/out" 2>&1
check "a clone of a clone (chain)" grep -qx "Domain 'src-c1' cloned into chain" "$T/out"
st=$(V domstate chain 2>&1 | head -1)
gen=$(stat chain samepage.clone.generation)
check "the chained clone runs as generation 2 ($st, $gen)" sh -c "[ '$st' = running ] && [ '$gen' = 2 ]"

V destroy src >"$T/out" 2>&1
check "virsh destroy the source first" grep -q "Domain 'src' destroyed" "$T/out"
r1=$(stat src-c3 samepage.guest.rounds)
wait_stat src-c3 samepage.guest.rounds $((r1 + 1))
e=$(stat src-c3 samepage.guest.integrity_errors)
check "after the source went, the children run on and verify (rounds $r1 -> $(stat src-c3 samepage.guest.rounds), errors $e)" \
    sh -c "[ '$e' = 0 ] && [ '$(V domstate src-c3 | head -1)' = running ] && [ $(stat src-c3 samepage.guest.rounds) -ge $((r1 + 1)) ]"
S destroy src-c2 >/dev/null 2>&1
V list --all >"$T/out" 2>&1
check "samepage destroy: a destroyed child is gone (transient)" sh -c "! grep -q 'src-c2' '$T/out' && grep -q 'src-c1' '$T/out'"
# The private program on the wire: an unknown procedure is an error reply
# (the connection goes on), another version of the program is refused.
/usr/bin/python3 - "$SOCK" "$(dirname "$0")/../libvirt" >"$T/out" 2>&1 <<'EOF'
import struct, sys
sys.path.insert(0, sys.argv[2])
from lvtest import *
SP = 0x53504745
s = raw_connect(sys.argv[1])
s.sendall(packet(REMOTE_PROGRAM, 1, 1, struct.pack(">I", 1) + xdr_string("samepage:///system")
                 + struct.pack(">I", 0)))
h, p = read_packet(s)
assert h[5] == 0, h
s.sendall(packet(SP, 99, 2))
h, p = read_packet(s)
assert h[0] == SP and h[2] == 99 and h[3] == 1 and h[5] == 1, h
code, msg = error_message(p)
print(code, msg)
assert code == 39 and msg == "unknown procedure: 99", (code, msg)
s.sendall(packet(SP, 2, 3, struct.pack(">I", 0)))
h, p = read_packet(s)
assert h[5] == 0 and h[4] == 3, h
(n,) = struct.unpack(">I", p[:4])
print("groups", n)
assert n >= 1
s.sendall(packet(SP, 2, 4, struct.pack(">I", 0), vers=2))
h, p = read_packet(s)
code, msg = error_message(p)
print(code, msg)
assert h[5] == 1 and "cannot find program" in msg, msg
assert closed_by_server(s)
EOF
check "samepage program: unknown procedure -> error reply, connection usable; wrong version refused" [ $? = 0 ]
spd_stop
check "SIGTERM with clones running: samepaged exits 0" [ $? = 0 ]
exit 0
