# run-common.sh - what the tests of `samepage run` share (sourced): B (the
# build tree), SP (the samepage binary), a temporary directory T removed on
# exit, and the TAP helpers (tests/tap.sh), which show $T/out and $T/err
# when a test fails.
B=${top_builddir:-.}
SP="$B/samepage"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/tap.sh"
TAP_DIAG="$T/out $T/err"

# wait_filled JSON N PID [MAX]: wait (at most MAX s, default 120) until the
# last N VM status lines of `samepage run --json` (in file JSON, process
# PID) all say memload's phase 2 (its RAM filled); filled_after: seconds.
wait_filled() {
    filled_after=0
    while [ "$(grep '^{"vm"' "$1" | tail -"$2" | grep -c '"phase":2')" -lt "$2" ] &&
        [ $filled_after -lt "${4:-120}" ] && kill -0 "$3" 2>/dev/null; do
        sleep 1
        filled_after=$((filled_after + 1))
    done
}
