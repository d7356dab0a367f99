#!/bin/sh
# cli-errors.sh - `samepage run` on bad input: a one-line error and exit
# status 2, never a crash or a hang; a crashing guest is reported while the
# other VMs go on; signals stop VMs cleanly.  Prints TAP.
set -u
. "$(dirname "$0")/run-common.sh"
HELLO="$B/guest-tools/hello.elf"
echo "1..37"

# expect_error DESCRIPTION PATTERN ARGS... : exit 2, exactly one stderr line matching PATTERN
expect_error() {
    desc=$1 pat=$2
    shift 2
    timeout 20 "$SP" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(wc -l <"$T/err")
    if [ "$rc" = 2 ] && [ "$lines" = 1 ] && grep -qi -- "$pat" "$T/err"; then
        ok "$desc"
    else
        echo "# rc=$rc, $lines stderr lines, wanted /$pat/"
        notok "$desc"
    fi
}

head -c 100 "$HELLO" >"$T/trunc.elf"
head -c 5000 "$HELLO" >"$T/trunc2.elf"
printf '#!/bin/sh\necho hi\n' >"$T/script.elf"
cp "$HELLO" "$T/arm.elf"
printf '\267\000' | dd of="$T/arm.elf" bs=1 seek=18 conv=notrunc 2>/dev/null
: >"$T/empty.elf"

expect_error "missing payload file" "no such file\|not found" run --vm name=a,payload=$T/none.elf
expect_error "truncated payload (header)" "truncated" run --vm name=a,payload=$T/trunc.elf
expect_error "truncated payload (segment)" "outside the file\|truncated" run --vm name=a,payload=$T/trunc2.elf
expect_error "empty payload" "not an ELF" run --vm name=a,payload=$T/empty.elf
expect_error "non-ELF payload" "not an ELF" run --vm name=a,payload=$T/script.elf
expect_error "wrong-architecture payload" "architecture" run --vm name=a,payload=$T/arm.elf
expect_error "unknown payload name" "not found" run --vm name=a,payload=nosuchpayload
expect_error "mem=0" "zero" run --vm name=a,mem=0,payload=hello
expect_error "unparsable size" "not a size" run --vm name=a,mem=lots,payload=hello
expect_error "too many vCPUs" "vcpus" run --vm name=a,vcpus=1000,payload=hello
expect_error "unknown run option" "unknown option" run --frobnicate
expect_error "unknown VM key" "unknown VM option" run --vm name=a,colour=red,payload=hello
expect_error "unknown command" "unknown command" frobnicate
expect_error "missing /dev/kvm" "cannot open" run --kvm "$T/no-kvm" --vm name=a,payload=hello
expect_error "no VM given" "no VM" run
expect_error "duplicate VM names" "two VMs" run --vm name=a,payload=hello --vm name=a,payload=hello
expect_error "engine: negative pages-to-scan" "pages-to-scan" run --pages-to-scan -1 --vm name=a,payload=hello
expect_error "engine: run out of range" "run" run --run 3 --vm name=a,payload=hello
expect_error "engine: unparsable sleep" "sleep-millisecs" run --sleep-millisecs soon --vm name=a,payload=hello
expect_error "engine: max-page-sharing below 2" "max-page-sharing" run --max-page-sharing 1 --vm name=a,payload=hello
expect_error "engine: bad --engine" "engine" run --engine maybe --vm name=a,payload=hello
expect_error "engine: malformed --allow-share" "allow-share" run --allow-share red --vm name=a,payload=hello
expect_error "RAM too small for the payload image" "RAM\|mem" run --vm name=a,mem=2M,payload=hello
expect_error "swap: --mem-limit below 16 MiB per VM" "mem-limit.*below" run --mem-limit 20M --vm name=a,payload=hello --vm name=b,payload=hello
expect_error "swap: unknown size suffix" "mem-limit.*size" run --mem-limit 512Q --vm name=a,payload=hello
expect_error "swap: mem-limit= below 16 MiB" "mem-limit" run --vm name=a,mem-limit=1M,payload=hello
expect_error "swap: mem-limit= with share=no" "share" run --vm name=a,share=no,mem-limit=64M,payload=hello
expect_error "swap: limits without samepage's engine" "engine" run --engine ksm --mem-limit 64M --vm name=a,payload=hello
expect_error "swap: read-ahead out of range" "swap-readahead must be 0..14" run --mem-limit 64M --swap-readahead 15 --vm name=a,payload=hello
expect_error "swap: a swap file in a missing directory" "swap-file" run --swap-file "$T/no/such/dir/swap" --vm name=a,payload=hello
# root may write anywhere but on a read-only file system: /proc is one
expect_error "swap: an unwritable swap file" "swap-file" run --swap-file /proc/samepage-swap --vm name=a,payload=hello

# A triple-faulting guest is reported as crashed; the other VM finishes normally.
timeout 30 "$SP" run --vm name=bad,payload=crash --vm name=good,vcpus=2,payload=hello >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 1 ] && grep -q '^\[bad\] CRASHED: guest crashed: triple fault' "$T/out" &&
    grep -q 'rip ' "$T/out" && grep -q '^\[good\] exited with status 0' "$T/out"; then
    ok "triple fault crashes only that VM (register dump shown)"
else
    echo "# rc=$rc"; notok "triple fault crashes only that VM (register dump shown)"
fi

timeout 30 "$SP" run --vm name=bad,payload=crash,args=mode=port --vm name=good,payload=hello >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 1 ] && grep -q 'unexpected I/O port write 0x99' "$T/out" && grep -q '^\[good\] exited with status 0' "$T/out"; then
    ok "unknown I/O port crashes only that VM"
else
    echo "# rc=$rc"; notok "unknown I/O port crashes only that VM"
fi

# Exit statuses propagate: a non-zero guest exit makes samepage exit 1.
timeout 30 "$SP" run --vm name=a,payload=hello,args=status=5 >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 1 ] && grep -q '^\[a\] exited with status 5' "$T/out"; then ok "guest exit status reported"; else echo "# rc=$rc"; notok "guest exit status reported"; fi

# --engine=ksm: samepage's engine off, guest RAM MADV_MERGEABLE ("mg" in
# the smaps of the VM's process, a child of samepage run) for the host's
# KSM; status lines show KSM's counters.  On a host kernel without KSM it
# must instead be the one-line madvise error.
"$SP" run --engine=ksm --status 1 --timeout $((6 * SLOW)) --vm name=k,mem=64M,payload=hello,args=spin >"$T/out" 2>"$T/err" &
pid=$!
mg=0 i=0
while [ $mg = 0 ] && [ $i -lt $((16 * SLOW)) ] && kill -0 $pid 2>/dev/null; do
    sleep 0.25
    i=$((i + 1))
    for c in $(pgrep -P $pid); do mg=$((mg + $(grep -c '^VmFlags:.* mg' /proc/$c/smaps 2>/dev/null))); done
done
wait $pid; rc=$?
if [ -d /sys/kernel/mm/ksm ]; then
    if [ $rc = 0 ] && [ "${mg:-0}" -ge 1 ] && grep -q '^\[ksm\] run ' "$T/out" && ! grep -q '^\[engine\]' "$T/out"; then
        ok "--engine=ksm marks guest RAM mergeable and reports KSM"
    else
        echo "# rc=$rc mergeable VMAs=$mg"; notok "--engine=ksm marks guest RAM mergeable and reports KSM"
    fi
elif [ $rc = 2 ] && grep -q 'MADV_MERGEABLE' "$T/err"; then
    ok "--engine=ksm without KSM in the host kernel: one-line error"
else
    echo "# rc=$rc"; notok "--engine=ksm without KSM in the host kernel: one-line error"
fi

# SIGTERM stops running VMs cleanly, exit 0.
"$SP" run --status 1 --vm name=s1,vcpus=2,payload=hello,args=spin --vm name=s2,payload=hello,args=spin >"$T/out" 2>"$T/err" &
pid=$!
sleep $((2 * SLOW))
kill -TERM $pid
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt $((100 * SLOW)) ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then
    kill -9 $pid; notok "SIGTERM stops all VMs"
else
    wait $pid; rc=$?
    if [ $rc = 0 ] && grep -q 'stopping all VMs' "$T/out" && grep -q 's1 *stopped' "$T/out" && grep -q 's2 *stopped' "$T/out"; then
        ok "SIGTERM stops all VMs"
    else
        echo "# rc=$rc"; notok "SIGTERM stops all VMs"
    fi
fi

# --help explains every option.
"$SP" run --help >"$T/out" 2>"$T/err"
missing=""
for w in --vm --timeout --status --json --quiet --kvm name= mem= vcpus= payload= image= args= domain= share= \
    mem-limit= --mem-limit --swap-file --swap-size --swap-cache --swap-readahead "Exit status"; do
    grep -q -- "$w" "$T/out" || missing="$missing $w"
done
if [ -z "$missing" ]; then ok "run --help documents every option"; else echo "# missing:$missing"; notok "run --help documents every option"; fi
exit 0
