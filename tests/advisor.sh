#!/bin/sh
# advisor.sh - the engine's automatic tuning (advisor_mode=1, "scan-time";
# sharing/advisor.c, docs/sharing.md) and scan_nice, on `samepage run`
# with three memload VMs of 128 MiB that rewrite and verify their pages
# all along (a steady load: the same work every pass).
#
#   1. a reachable target (a full scan in 3 s, at most 50 % of a CPU;
#      inside the emulated host only the lower bound, below): the
#      passes take 3 s within 20 % on average, measured here from the
#      times the scan count changes on the status lines, and the median of
#      the engine's own figures says so too; the CPU of the engine thread
#      and the agents' threads over those passes, read from /proc (utime +
#      stime), stays within the ceiling + 10 %.  The engine runs at nice 0
#      here (the default): a pass cannot be faster than the CPU it gets;
#   2. a ceiling that binds (1 s asked, 10 % of a CPU; 20 % inside the
#      emulated host): the passes take longer than asked and the CPU
#      stays within the ceiling + 10 %;
#   3. scan_nice: 0 by default on the engine thread and every agent
#      thread (level with the vCPUs), --scan-nice=5 (ksmd's) lowers them;
#   4. bad options: one-line errors, exit 2, nothing started.
# No guest finds a wrong byte.  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
echo "1..14"

VM="mem=128M,vcpus=1,payload=memload,args=seed=7,rate=2000,interval=200"
HZ=$(getconf CLK_TCK)

# CPU ticks of the engine thread of process $1 and the agent threads of
# its VM processes (its children).
engine_ticks() {
    for p in $1 $(pgrep -P "$1"); do
        for t in /proc/$p/task/*; do
            awk '$2 == "(sp-engine)" || $2 == "(sp-agent)" {print $14 + $15}' "$t/stat" 2>/dev/null
        done
    done | awk '{s += $1} END {print s + 0}'
}

# nice of those threads, one line each: NAME NICE
engine_nices() {
    for p in $1 $(pgrep -P "$1"); do
        for t in /proc/$p/task/*; do
            awk '$2 == "(sp-engine)" || $2 == "(sp-agent)" {print $2, $19}' "$t/stat" 2>/dev/null
        done
    done
}

last_engine() { grep '^{"engine"' "$1" | tail -1; }
field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | tail -1; }

# run NAME SECONDS-OF-WINDOW OPTIONS...: start, wait for the guests to
# fill their RAM and two more scans, then measure for the window.  Sets
# avg_ms (mean pass time from the status lines), passes, cpu_pm (per
# mille of one CPU over those passes), reported (scan_time_ms values seen in the window), rc,
# errors, nices.
run() {
    name=$1 win=$2
    shift 2
    out="$T/$name.json"
    "$SP" run --json --status 1 --timeout $((win + 60 * SLOW)) "$@" \
        --vm name=${name}1,$VM --vm name=${name}2,$VM --vm name=${name}3,$VM >"$out" 2>"$T/err" &
    pid=$!
    wait_filled "$out" 3 $pid 60
    s0=$(last_engine "$out" | sed -n 's/.*"full_scans":\([0-9]*\).*/\1/p')
    while [ "$(last_engine "$out" | sed -n 's/.*"full_scans":\([0-9]*\).*/\1/p')" -lt $((${s0:-0} + 2)) ] &&
        kill -0 $pid 2>/dev/null; do sleep 0.2; done
    nices=$(engine_nices $pid | sort | uniq -c | awk '{printf "%s%d %s %s", (NR > 1 ? ", " : ""), $1, $2, $3}')
    t0=$(date +%s%N)
    first_t= first_s= last_t= last_s= prev=
    reported=
    while [ $((($(date +%s%N) - t0) / 1000000000)) -lt "$win" ] && kill -0 $pid 2>/dev/null; do
        line=$(last_engine "$out")
        s=$(echo "$line" | sed -n 's/.*"full_scans":\([0-9]*\).*/\1/p')
        now=$(date +%s%N)
        if [ -n "$prev" ] && [ "$s" != "$prev" ]; then
            k=$(engine_ticks $pid)
            [ -z "$first_t" ] && first_t=$now first_s=$s first_k=$k
            last_t=$now last_s=$s last_k=$k
            reported="$reported $(echo "$line" | sed -n 's/.*"scan_time_ms":\([0-9]*\).*/\1/p')"
        fi
        prev=$s
        sleep 0.1
    done
    kill -INT $pid 2>/dev/null
    wait $pid
    rc=$?
    passes=$((${last_s:-0} - ${first_s:-0}))
    avg_ms=0
    [ $passes -gt 0 ] && avg_ms=$(((last_t - first_t) / 1000000 / passes))
    # CPU over whole passes (first to last change of the scan count): the
    # ceiling holds per pass, and a pass is not even inside (its start
    # hashes what changed, its end waits).
    cpu_pm=0
    [ $passes -gt 0 ] && cpu_pm=$(((last_k - first_k) * 1000000000000 / HZ / (last_t - first_t)))
    errors=$(grep '^{"vm"' "$out" | tail -3 | sed -n 's/.*"integrity_errors":\([0-9]*\).*/\1/p' | paste -sd+ | bc)
    echo "# $name: filled after ${filled_after} s; $passes passes, mean ${avg_ms} ms; engine's scan_time_ms:$reported; CPU $cpu_pm per mille of one CPU; nice: $nices; rc $rc"
    cp "$out" "$T/out"
}

within() { # within VALUE LOW HIGH
    [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# 1. a reachable target, 3 s.  Inside the emulated host the window is
# 60 s and only the lower bound is asserted: there the engine does not get
# the CPU a 3 s pass needs (at 143127f a mean of 3,680 ms at 38 % of a CPU;
# beside other tests 12,259 ms at 17 %, its ceiling 50 %), so the upper
# bound would measure the emulator; the advisor must still never scan
# faster than asked, and the CPU ceiling holds there too.
TGT=3 WIN=30
[ "$SLOW" != 1 ] && WIN=60
run reach $WIN --advisor-mode=1 --advisor-target-scan-time=$TGT --advisor-max-cpu=50
median=$(echo $reported | tr ' ' '\n' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)] + 0}')
lo=$((TGT * 800)) hi=$((TGT * 1200))
if [ "$SLOW" = 1 ]; then
    check "advisor $TGT s / 50 %: passes take $TGT s +-20 % on average ($passes passes, mean $avg_ms ms)" \
        eval '[ $passes -ge 7 ] && within $avg_ms $lo $hi'
    check "advisor $TGT s / 50 %: the median of the engine's scan_time_ms agrees ($median of${reported})" \
        within "$median" $lo $hi
else
    check "advisor $TGT s / 50 % (emulated host: lower bound only): passes take at least $lo ms on average ($passes passes, mean $avg_ms ms)" \
        eval '[ $passes -ge 1 ] && [ $avg_ms -ge $lo ]'
    check "advisor $TGT s / 50 % (emulated host: lower bound only): the median of the engine's scan_time_ms agrees ($median of${reported})" \
        eval '[ $median -ge $lo ]'
fi
check "advisor $TGT s / 50 %: engine + agents use at most 55 % of a CPU ($cpu_pm per mille)" \
    eval '[ $cpu_pm -le 550 ]'
check "default scan_nice 0 on the engine thread and the 3 agents ($nices)" \
    eval '[ "$nices" = "3 (sp-agent) 0, 1 (sp-engine) 0" ]'
check "advisor $TGT s / 50 %: no integrity error, exit 0 (errors ${errors:-?}, rc $rc)" \
    eval '[ "${errors:-1}" = 0 ] && [ $rc = 0 ]'

# 2. a ceiling that binds.  Inside the emulated host 20 % over 90 s: a
# pass there needs several times the CPU, and at 10 % (at 143127f) the
# two passes before the window outlasted the run
CEIL=10 WIN=40 MINP=2
[ "$SLOW" != 1 ] && CEIL=20 WIN=90 MINP=1
run bind $WIN --advisor-mode=1 --advisor-target-scan-time=1 --advisor-max-cpu=$CEIL --scan-nice=5
check "advisor 1 s / $CEIL %: the ceiling wins, passes take longer than 1.2 s ($passes passes, mean $avg_ms ms)" \
    eval '[ $passes -ge $MINP ] && [ $avg_ms -gt 1200 ]'
check "advisor 1 s / $CEIL %: engine + agents use at most $CEIL % + 10 % of a CPU ($cpu_pm per mille)" \
    eval '[ $cpu_pm -le $((CEIL * 11)) ]'
check "--scan-nice=5: the engine thread and the agents at nice 5 ($nices)" \
    eval '[ "$nices" = "3 (sp-agent) 5, 1 (sp-engine) 5" ]'
check "advisor 1 s / $CEIL %: no integrity error, exit 0 (errors ${errors:-?}, rc $rc)" \
    eval '[ "${errors:-1}" = 0 ] && [ $rc = 0 ]'
grep -q '"advisor_mode":1' "$T/bind.json" && grep -q "\"advisor_max_cpu\":$CEIL" "$T/bind.json"
check "the status lines show the advisor's knobs" [ $? = 0 ]

# 3. bad options
bad() { # bad PATTERN OPTIONS...: exit 2, one line naming PATTERN, no VM process
    pat=$1
    shift
    "$SP" run --timeout 5 "$@" --vm name=bad,$VM >"$T/out" 2>"$T/err"
    [ $? = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q -- "$pat" "$T/err" && ! pgrep -f 'name=bad' >/dev/null
}
check "--advisor-mode=1 with --pages-to-scan is refused" \
    bad "pages-to-scan: the engine sets it itself" --advisor-mode=1 --pages-to-scan=100
check "--advisor-max-cpu=0 is refused" bad "advisor-max-cpu" --advisor-max-cpu=0
check "--scan-nice=20 is refused" bad "scan-nice" --scan-nice=20
check "--advisor-mode=2 is refused" bad "advisor-mode" --advisor-mode=2
[ $fails = 0 ]
