# common.sh - start and stop a real samepaged for a test (sourced).
# Sets T (temp dir), SOCK, ROSOCK, URI, ROURI; spd_start / spd_stop / spd_kill9;
# V (virsh on the read-write socket), R (virsh -r on the read-only one) and
# a running VM's figures (stat_of, rounds, errors, wait_rounds), state
# (state_is, wait_state), libvirt id and VM process (dom_id, vm_pid); SLOW.
B=${top_builddir:-.}
T=$(mktemp -d /tmp/samepage-test.XXXXXX)
SOCK=$T/sock
ROSOCK=$T/sock-ro
URI="samepage+unix:///system?socket=$SOCK"
ROURI="samepage+unix:///system?socket=$ROSOCK"
export SAMEPAGE_PAYLOAD_DIR="$B/guest-tools"
SPD_PID=
# Inside the emulated host (scripts/in-emuhost.sh, CI without /dev/kvm)
# everything runs several times slower, starting a process too: a test's
# own time bounds are SLOW times wider there, as the C tests'
# harness_slow().
SLOW=1
[ -n "${SAMEPAGE_IN_EMUHOST:-}" ] && SLOW=4
. "$(dirname "$0")/../tap.sh" # ok, notok, check DESCRIPTION COMMAND...
TAP_DIAG="$T/out"

V() { virsh -c "$URI" "$@"; }
R() { virsh -r -c "$ROURI" "$@"; }

# stat_of VM KEY: one figure of virsh domstats (KEY: the end of its name)
stat_of() { V domstats "$1" 2>/dev/null | awk -F= -v k="$2" '$1 ~ k"$" {print $2}'; }
# rounds VM / errors VM: memload's verify rounds and integrity errors
rounds() { stat_of "$1" samepage.guest.rounds; }
errors() { stat_of "$1" samepage.guest.integrity_errors; }
# wait_rounds VM N [TENTHS]: up to TENTHS tenths of a second (default 200)
# for rounds >= N
wait_rounds() {
    i=0
    while below "$(rounds "$1")" "$2" && [ $i -lt "${3:-200}" ]; do sleep 0.1; i=$((i + 1)); done
    [ "$(rounds "$1")" -ge "$2" ] 2>/dev/null
}
# state_is VM STATE-WITH-REASON: virsh domstate --reason says that
# shm KEY: shm_KEY of `virsh node-memory-tune`
shm() { V node-memory-tune 2>/dev/null | awk -v k="shm_$1" '$1 == k {print $2}'; }
# wait_shm KEY MIN [MAX]: up to 120 x SLOW s by the clock for shm_KEY in
# [MIN, MAX]; true if a reading was, and shm_seen is the last reading (the
# one that was in range).  By the clock: inside the emulated host each
# reading takes a while (at 143127f sharing was at 2,109 of a level of
# 4,926 when 120 readings were done; a re-attach took 43 s there), and
# beside other tests the engine is slow: restart.sh's sharing was at 86 %
# of its level after 240 s there, beside test-sharing and scrape-load.
wait_shm() {
    end=$(($(date +%s) + 120 * SLOW))
    while :; do
        shm_seen=$(shm "$1")
        [ "${shm_seen:-0}" -ge "$2" ] 2>/dev/null && [ "${shm_seen:-0}" -le "${3:-999999999}" ] && return 0
        [ "$(date +%s)" -lt $end ] || return 1
        sleep 0.5
    done
}
state_is() { [ "$(V domstate --reason "$1" 2>/dev/null | head -1)" = "$2" ]; }
# wait_state VM STATE-WITH-REASON: up to 15 s for it (by the clock, x SLOW)
wait_state() {
    ws_end=$(($(date +%s) + 15 * SLOW))
    while ! state_is "$1" "$2" && [ "$(date +%s)" -lt $ws_end ]; do sleep 0.1; done
    state_is "$1" "$2"
}
dom_id() { V domid "$1" 2>/dev/null | head -1; }
vm_pid() { pgrep -f -- "--listen=$T/vms/$1.sock"; } # the VM process

spd_start() {
    # A socket left by a killed daemon would look ready before the new one binds.
    rm -f "$SOCK" "$ROSOCK"
    "$B/samepaged" -d "$T/state" -s "$SOCK" "$@" >>"$T/daemon.log" 2>&1 &
    SPD_PID=$!
    # It re-attaches the VMs it finds before it listens (seconds apiece
    # inside a loaded emulated host): up to 30 s by the clock, x SLOW.
    ss_end=$(($(date +%s) + 30 * SLOW))
    while [ ! -S "$SOCK" ] && [ "$(date +%s)" -lt $ss_end ] && kill -0 "$SPD_PID" 2>/dev/null; do sleep 0.1; done
    [ -S "$SOCK" ] || { echo "# samepaged did not create its socket"; cat "$T/daemon.log"; return 1; }
}

# SPD_STOP_S: how long a graceful stop may take (x SLOW) before spd_stop
# kills it and returns 99.
SPD_STOP_S=15
spd_stop() { # SIGTERM and wait; returns its exit status
    [ -n "$SPD_PID" ] || return 0
    kill -TERM "$SPD_PID" 2>/dev/null
    ss_end=$(($(date +%s) + SPD_STOP_S * SLOW))
    while kill -0 "$SPD_PID" 2>/dev/null && [ "$(date +%s)" -lt $ss_end ]; do sleep 0.1; done
    if kill -0 "$SPD_PID" 2>/dev/null; then kill -9 "$SPD_PID"; SPD_PID=; return 99; fi
    wait "$SPD_PID"; rc=$?
    SPD_PID=
    return $rc
}

spd_kill9() {
    [ -n "$SPD_PID" ] && kill -9 "$SPD_PID" 2>/dev/null && wait "$SPD_PID" 2>/dev/null
    SPD_PID=
}

# VM processes outlive samepaged (they wait to be re-attached): a test ends
# them itself.  Theirs are the ones listening under $T.
vms_kill() {
    pkill -9 -f -- "--listen=$T/" 2>/dev/null
    i=0
    while pgrep -f -- "--listen=$T/" >/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}

cleanup() {
    spd_kill9
    vms_kill
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# vm_xml NAME [ARGS] [MEM_MIB] [SHARING_DOMAIN]: a memload domain definition
vm_xml() {
    cat <<XML
<domain type='samepage'>
  <name>$1</name>
  <memory unit='MiB'>${3:-64}</memory>
  <vcpu>2</vcpu>
  <os><type>hvm</type></os>
  <metadata>
    <sp:samepage xmlns:sp="https://samepage.invalid/xmlns/1">
      <sp:payload>memload</sp:payload>
      <sp:args>${2:-seed=1,rate=100}</sp:args>
      <sp:domain>${4:-$1}</sp:domain>
    </sp:samepage>
  </metadata>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/samepage/$1.img'/><target dev='vda' bus='virtio'/></disk>
    <interface type='bridge'><source bridge='br0'/><target dev='vnet-$1'/></interface>
  </devices>
</domain>
XML
}
