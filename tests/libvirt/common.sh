# common.sh - start and stop sp-libvirt-testd (the real endpoint over the
# in-memory test backend) for the client tests of tests/libvirt/ (sourced).
# Sets T (temp dir), SOCK, ROSOCK, URI, ROURI; lv_start / lv_stop; TAP helpers.
B=${top_builddir:-.}
T=$(mktemp -d /tmp/sp-libvirt-test.XXXXXX)
chmod 755 "$T"
SOCK=$T/rw.sock
ROSOCK=$T/ro.sock
URI="samepage+unix:///system?socket=$SOCK"
ROURI="samepage+unix:///system?socket=$ROSOCK"
LV_PID=
. "${top_srcdir:-.}/tests/tap.sh" # ok, notok, check
TAP_DIAG="$T/out"
# expect DESCRIPTION REGEX COMMAND...: ok if the command succeeds and its
# combined output matches the extended regex (grep -E on the whole output).
expect() {
    desc=$1; re=$2; shift 2
    if "$@" >"$T/out" 2>&1 && grep -Eq -- "$re" "$T/out"; then ok "$desc"; else notok "$desc"; fi
}
# expect_fail DESCRIPTION REGEX COMMAND...: the command fails, output matches.
expect_fail() {
    desc=$1; re=$2; shift 2
    if ! "$@" >"$T/out" 2>&1 && grep -Eq -- "$re" "$T/out"; then ok "$desc"; else notok "$desc"; fi
}
vsh() { timeout 20 virsh -q -c "$URI" "$@"; }
vsh_nq() { timeout 20 virsh -c "$URI" "$@"; }

lv_start() {
    "$B/tests/libvirt/sp-libvirt-testd" --rw "$SOCK" --ro "$ROSOCK" "$@" >>"$T/testd.log" 2>&1 &
    LV_PID=$!
    i=0
    while [ ! -S "$ROSOCK" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    [ -S "$ROSOCK" ] || { echo "# sp-libvirt-testd did not start"; cat "$T/testd.log"; return 1; }
}

lv_alive() { kill -0 "$LV_PID" 2>/dev/null; }

lv_stop() {
    [ -n "$LV_PID" ] || return 0
    kill -TERM "$LV_PID" 2>/dev/null
    wait "$LV_PID"; rc=$?
    LV_PID=
    return $rc
}

cleanup() {
    [ -n "$LV_PID" ] && kill -9 "$LV_PID" 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
