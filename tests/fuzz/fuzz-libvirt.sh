#!/bin/sh
# fuzz-libvirt.sh - runs the fuzz targets of what samepaged decodes from
# outside (libFuzzer + ASan/UBSan, Debian's clang) for a bounded time from
# the committed seed corpora; new inputs go to a temp dir, not to the tree.
#   fuzz-libvirt: the wire decoder and dispatch (sp_lv_session_feed), 60 s
#   fuzz-domxml:  the domain XML parser/formatter, 20 s
#   fuzz-vmproto: what a VM process sends its supervisor (sharing/proto.h), 30 s
# SP_FUZZ_SECONDS / SP_FUZZ_XML_SECONDS override the durations.
B=${top_builddir:-.}
S=${top_srcdir:-.}
echo "1..6"
T=$(mktemp -d /tmp/sp-fuzz-libvirt.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
n=0

# run_target NAME SECONDS CORPUS EXTRA_FLAGS...
run_target() {
    name=$1; secs=$2; corpus=$3; shift 3
    bin="$B/tests/fuzz/$name"
    n=$((n + 1))
    if [ ! -x "$bin" ]; then
        echo "not ok $n - $name was not built"; n=$((n + 1)); echo "not ok $n - $name"
        fails=$((fails + 1)); return
    fi
    if "$bin" -runs=0 "$corpus" >"$T/$name-seeds.log" 2>&1; then
        echo "ok $n - $name: seed corpus runs clean"
    else
        echo "not ok $n - $name: seed corpus runs clean"; fails=$((fails + 1))
        tail -30 "$T/$name-seeds.log" | sed 's/^/#   /'
    fi
    n=$((n + 1))
    mkdir -p "$T/$name-corpus"
    if ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$T/$name-" "$@" \
        "$T/$name-corpus" "$corpus" >"$T/$name.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$T/$name.log" | grep -o '[0-9]*$')
        echo "ok $n - $name: $secs s of fuzzing without a crash ($runs inputs)"
    else
        echo "not ok $n - $name: $secs s of fuzzing without a crash"; fails=$((fails + 1))
        tail -40 "$T/$name.log" | sed 's/^/#   /'
        for f in "$T/$name"-crash-* "$T/$name"-leak-* "$T/$name"-timeout-*; do
            [ -f "$f" ] && echo "#   artifact: $(od -An -tx1 "$f" | head -8 | tr -d '\n')"
        done
    fi
}

run_target fuzz-libvirt "${SP_FUZZ_SECONDS:-60}" "$S/tests/fuzz/corpus-libvirt" -max_len=4096
run_target fuzz-domxml "${SP_FUZZ_XML_SECONDS:-20}" "$S/tests/fuzz/corpus-domxml" -max_len=2048
run_target fuzz-vmproto "${SP_FUZZ_VM_SECONDS:-30}" "$S/tests/fuzz/corpus-vmproto" -max_len=4096
[ $fails -eq 0 ]
