# tap.sh - TAP output for the shell tests (sourced; POSIX sh, busybox sh too).
#
#   ok DESCRIPTION                one passing test
#   notok DESCRIPTION             one failing test; the last lines of every
#                                 file named in $TAP_DIAG (the test sets it,
#                                 e.g. TAP_DIAG="$T/out $T/err") follow as
#                                 "#   " diagnostics
#   check DESCRIPTION COMMAND...  ok if COMMAND succeeds, notok otherwise
#                                 (`check DESC eval 'COND'` for a condition)
#
# $n counts the tests so far and $fails the failed ones: a test prints its
# plan ("1..N") itself and ends with `[ $fails = 0 ]` (or exit 0 and lets
# the TAP driver count the "not ok" lines).
n=0
fails=0
TAP_DIAG=${TAP_DIAG:-}
# SLOW: how many times longer a run or a wait may take: 4 inside the
# emulated host (scripts/in-emuhost.sh, where TCG runs everything several
# times slower), else 1.
SLOW=1
[ -n "${SAMEPAGE_IN_EMUHOST:-}" ] && SLOW=4

# below VALUE N: VALUE is not a number at or above N.  For waits on a
# reading: one that failed (empty, an error text) counts as below, so the
# wait goes on, where `[ "$(reading)" -lt N ] 2>/dev/null` ended it at once
# and the check after it failed on a moment's error.
below() { ! [ "${1:-x}" -ge "$2" ] 2>/dev/null; }

ok() {
    n=$((n + 1))
    echo "ok $n - $*"
}

notok() {
    n=$((n + 1))
    fails=$((fails + 1))
    echo "not ok $n - $*"
    for tap_f in $TAP_DIAG; do
        [ -s "$tap_f" ] && sed "s|^|#   ${tap_f##*/}: |" "$tap_f" | tail -n 30
    done
    return 0
}

check() {
    tap_desc=$1
    shift
    if "$@"; then ok "$tap_desc"; else notok "$tap_desc"; fi
}
