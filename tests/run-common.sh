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
