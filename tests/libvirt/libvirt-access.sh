#!/bin/sh
# libvirt-access.sh - access control of the libvirt endpoint with Debian's
# virsh: read-only connections (virsh -r, the read-only socket) cannot change
# anything; the read-write socket is 0600 root-only; a non-root peer that
# reaches it anyway (mode opened up) is refused by SO_PEERCRED with a clear
# error; a configured group opens it (0660) to that group.
. "${top_srcdir:-.}/tests/libvirt/common.sh"
if [ "$(id -u)" != 0 ]; then echo "1..0 # SKIP needs root (socket ownership, setpriv)"; exit 0; fi
echo "1..16"
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
lv_start || { echo "Bail out! no server"; exit 1; }

denied='operation forbidden: read only access prevents'
expect_fail "virsh -r destroy is refused" "$denied virDomainDestroy" timeout 20 virsh -r -c "$URI" destroy alpha
expect_fail "virsh -r start is refused" "$denied virDomainCreate" timeout 20 virsh -r -c "$URI" start beta
expect_fail "virsh -r undefine is refused" "$denied virDomainUndefine" timeout 20 virsh -r -c "$URI" undefine beta
expect_fail "virsh -r node-memory-tune write is refused" "$denied virNodeSetMemoryParameters" \
    timeout 20 virsh -r -c "$URI" node-memory-tune --shm-pages-to-scan 1
echo '<domain><name>ro1</name><memory>1024</memory></domain>' >"$T/ro1.xml"
expect_fail "virsh -r define is refused" "$denied virDomainDefineXML" timeout 20 virsh -r -c "$URI" define "$T/ro1.xml"
expect_fail "virsh -r create is refused" "$denied virDomainCreateXML" timeout 20 virsh -r -c "$URI" create "$T/ro1.xml"
expect_fail "read-only socket: start is refused" "$denied virDomainCreate" timeout 20 virsh -c "$ROURI" start beta
expect "nothing changed: alpha running, beta shut off, no ro1, to_scan 100" '^ *1 +alpha +running' vsh list --all
grep -Eq '^ *- +beta +shut off' "$T/out" && ! grep -q ro1 "$T/out" &&
    vsh_nq node-memory-tune | grep -Eq 'shm_pages_to_scan +100' && ok "state unchanged after refused calls" ||
    notok "state unchanged after refused calls"

mode=$(stat -c '%a %U' "$SOCK"); romode=$(stat -c '%a' "$ROSOCK")
[ "$mode" = "600 root" ] && [ "$romode" = "666" ] && ok "socket modes: rw 600 root, ro 666" ||
    { echo "# rw: $mode ro: $romode"; notok "socket modes: rw 600 root, ro 666"; }
expect "nobody reads through the read-only socket" '^ *1 +alpha +running' $NOBODY timeout 20 virsh -q -c "$ROURI" list
expect_fail "nobody cannot connect to the 0600 read-write socket" 'Permission denied' \
    $NOBODY timeout 20 virsh -c "$URI" list
chmod 666 "$SOCK"
expect_fail "nobody on an opened-up read-write socket: refused by peer credentials" \
    'access denied: uid 65534 is not allowed on the read-write socket' $NOBODY timeout 20 virsh -c "$URI" list
expect "root still works on the read-write socket" '^ *1 +alpha +running' vsh list
lv_stop

lv_start --group 65534 || { echo "Bail out! no server"; exit 1; }
mode=$(stat -c '%a %G' "$SOCK")
[ "$mode" = "660 $(getent group 65534 | cut -d: -f1)" ] && ok "--group: rw socket 660 with that group" ||
    { echo "# rw: $mode"; notok "--group: rw socket 660 with that group"; }
expect "--group: a member (gid 65534) may change things" 'shm_pages_to_scan +77' sh -c \
    "$NOBODY timeout 20 virsh -c '$URI' node-memory-tune --shm-pages-to-scan 77 && virsh -c '$URI' node-memory-tune"
lv_stop
[ $fails -eq 0 ]
