#!/bin/sh
# tests/emuhost/inner-share.sh - runs INSIDE the emulated host (busybox sh).
#
# The real-Linux density comparison (issue 5): the same two identical Linux
# guests (Debian kernel + busybox initramfs, 256 MiB and 1 vCPU each, held
# up HOLD seconds after their boot marker with sp.hold=) run twice in this
# one emulated host:
#   run A  `samepage run` with samepage's sharing engine on;
#   run B  `samepage run --engine=ksm`: samepage's engine off, guest RAM
#          MADV_MERGEABLE, the emulated host's own KSM on.
# In each run, once both guests printed SP-GUEST-BOOTED and the engine did
# SCANS more full scans, the samepage process is measured from this kernel
# (/proc/PID/smaps_rollup, /proc/PID/smaps, /proc/meminfo) and compared
# with what the engine reports.  Then the guests must power off by
# themselves (exit status 0).
#
# What each figure counts.  Each guest runs in a VM process of its own,
# a child of `samepage run`, which holds the frame pool; the figures below
# are read from all three processes' smaps (guest RAM has no other mapper,
# so summed Rss - summed Pss is exactly what page sharing saves there):
#  A: a frame the engine shares is one page of its memfd, resident once
#     (the supervisor's read-write MAP_SHARED view: its Rss is the frames in
#     use; the VM processes' read-only views show the same pages again and
#     are left out) and mapped MAP_PRIVATE at every guest page merged onto
#     it, in the VM processes.  Those guest mappings
#     are VMAs of the memfd; a page of one that the guest wrote since is an
#     anonymous copy ("Anonymous:" in smaps).  So from the kernel,
#       guest pages backed by frames = sum(Size - Anonymous) of the private
#                                      memfd VMAs,
#       physical pages behind them   = Rss of the view,
#     and the saving is their difference, which must equal the engine's
#     pages_sharing.  (Rss - Pss does not show it: a merged mapping is only
#     in the page tables once the guest touched it again, and idle guests
#     touch few; Rss - Pss is printed for reference.)  Pages the engine
#     dropped as all-zero leave Rss entirely (a read maps the kernel's zero
#     page, which is not counted), so the kernel cannot show them per page:
#     they are checked below against run B, where KSM keeps every page
#     mapped.
#  B: a KSM page with k mappers counts k times in Rss and once in Pss, so
#     Rss - Pss = KSM's pages_sharing (only samepage has MADV_MERGEABLE
#     memory in the emulated host) - over anonymous memory only (Anonymous -
#     Pss_Anon): the three processes also share library pages.
# Tolerance for "kernel figure = engine figure": 5% + 128 pages.  The two
# are read a few seconds apart (smaps of tens of thousands of VMAs is slow
# under TCG, and the engine line comes up to STATUS s later) while the
# guests idle in `sleep`; other doubly mapped pages in the process (shared
# library page cache) are a handful.  A wrong accounting (counting the
# view, counting zero pages, counting per mapping instead of per page) is
# off by thousands of pages, far outside it.
# Cross-check of zero pages: in A, (Rss - Rss(view) - Rss(private memfd
# VMAs) - engine metadata) + sum(Size - Anonymous) + sum(Anonymous) of the
# private memfd VMAs + zero_pages is every page the guests touched and
# kept, plus the VMM (the Anonymous pages of a frame mapping are the
# guest's private copies after a copy-on-write break: touched, kept, and in
# Rss(private memfd VMAs), so they are added back; leaving them out made A
# short by the number of such breaks: 7,474 pages in one run, 11 % under B); in B,
# Rss is the same thing (KSM leaves merged pages mapped).  The two runs boot the same
# guests, so these must agree within 10% (boot timing differs; 5.1% apart
# in the first run).  A zero count off by its own size (17000 pages) fails.
# Prints TAP; the density figures as "# density: ..." diagnostics.
HOLD=${1:-60}      # seconds each guest stays up after its marker
SCANS=3            # full scans after both markers before measuring
STATUS=2           # samepage --status interval
K=$SP_IMAGES/vmlinuz
I=$SP_IMAGES/linux-guest-initrd.gz
CMD="console=ttyS0 quiet panic=-1 sp.hold=$HOLD"
. "$(dirname "$0")/tap.sh" # /sptest/tap.sh, shipped by run-in-emuhost.sh
echo "1..8"
uptime_s() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }
# field NAME LINE: the value after word NAME in LINE
field() { echo "$2" | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'; }
kb() { awk -v k="$1:" '$1 == k { s += $2 } END { print s + 0 }' "$2"; } # summed over the processes
ksm() { cat /sys/kernel/mm/ksm/$1; }
mib() { awk -v p="$1" 'BEGIN { printf "%.1f", p * 4096 / 1048576 }'; }
within() { # A B: |A-B| <= 5% of B + 128 pages
    awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= b * 0.05 + 128) }'
}

# run_guests LABEL ARGS...: start samepage with the two guests; sets $out, $pid, $t0
run_guests() {
    out=/tmp/$1.out
    shift
    t0=$(uptime_s)
    samepage run --status=$STATUS "$@" \
        --vm "name=l1,mem=256M,vcpus=1,domain=lx,kernel=$K,initrd=$I,cmdline=$CMD" \
        --vm "name=l2,mem=256M,vcpus=1,domain=lx,kernel=$K,initrd=$I,cmdline=$CMD" \
        > "$out" 2>&1 &
    pid=$!
}

# scans: the engine's full_scans now (run A: last [engine] line; B: sysfs)
scans_now() {
    if [ "$1" = A ]; then field full_scans "$(grep '^\[engine\]' "$out" | tail -n1)"; else ksm full_scans; fi
}

# wait_and_measure A|B DEADLINE-SECONDS: wait for both markers and SCANS full
# scans, then read the kernel's figures into smaps/meminfo files.  Sets
# $measured (1/0), $why, $t_boot, $t_meas, $fs0, $fs1.  Kills samepage at the
# deadline (the test then fails, never hangs).
wait_and_measure() {
    measured=0 why="" t_boot="" fs0="" fs1=""
    end=$(awk -v a="$t0" -v d="$2" 'BEGIN { print a + d }')
    while :; do
        now=$(uptime_s)
        if ! kill -0 "$pid" 2>/dev/null; then
            [ "$measured" = 1 ] || why="samepage ended before the measurement"
            break
        fi
        if awk -v a="$now" -v b="$end" 'BEGIN { exit !(a > b) }'; then
            why="${why:-deadline of $2 s reached}"
            echo "# run $1: deadline reached, stopping samepage; where its threads wait:"
            for p in "$pid" $(children "$pid"); do
                for t in /proc/$p/task/*; do
                    echo "#   $p/${t##*/} $(cat $t/comm 2>/dev/null) wchan=$(cat $t/wchan 2>/dev/null) $(head -c 300 $t/stack 2>/dev/null | tr '\n' ' ')"
                done
            done
            tail -n 5 "$out" | sed 's/^/#   out: /'
            kill "$pid"; sleep 5; kill -9 "$pid" 2>/dev/null
            break
        fi
        if [ "$measured" = 0 ]; then
            if [ -z "$t_boot" ] && grep -q '^\[l1\] SP-GUEST-BOOTED' "$out" &&
                grep -q '^\[l2\] SP-GUEST-BOOTED' "$out"; then
                t_boot=$now
                fs0=$(scans_now "$1")
            fi
            if [ -n "$t_boot" ]; then
                fs=$(scans_now "$1")
                if grep -q 'SP-GUEST-POWEROFF' "$out"; then
                    why="a guest powered off before $SCANS full scans after both markers (full_scans $fs0 -> $fs; raise the hold)"
                    measured=2
                elif [ -n "$fs" ] && [ "$fs" -ge $((fs0 + SCANS)) ]; then
                    fs1=$fs
                    nlines=$(grep -c '^\[engine\]' "$out")
                    [ "$1" = B ] && for c in pages_shared pages_sharing pages_unshared pages_volatile full_scans; do ksm $c > /tmp/$1.ksm.$c; done
                    cat /proc/$pid/smaps_rollup > /tmp/$1.rollup
                    cat /proc/$pid/smaps > /tmp/$1.smaps
                    : > /tmp/$1.vm.smaps
                    for c in $(children "$pid"); do
                        cat /proc/$c/smaps_rollup >> /tmp/$1.rollup
                        cat /proc/$c/smaps >> /tmp/$1.vm.smaps
                    done
                    cat /proc/meminfo > /tmp/$1.meminfo
                    [ "$1" = B ] && ksm pages_sharing > /tmp/$1.ksm.after
                    t_meas=$(uptime_s)
                    if grep -q 'SP-GUEST-POWEROFF' "$out"; then
                        why="a guest powered off during the measurement (raise the hold)"
                        measured=2
                    else
                        measured=1
                        if [ "$1" = A ]; then # the first engine line after the measurement
                            i=0
                            while [ "$(grep -c '^\[engine\]' "$out")" -le "$nlines" ] && [ $i -lt 20 ]; do
                                sleep 0.5; i=$((i + 1))
                            done
                        fi
                    fi
                fi
            fi
        fi
        sleep 1
    done
    wait "$pid"
    rc=$?
    t_end=$(uptime_s)
}

# guests_ok: samepage exit 0 and both guests booted and powered off cleanly
guests_ok() {
    [ "$rc" = 0 ] && ! grep -q 'stopping all VMs' "$out" &&
        grep -q '^\[l1\] SP-GUEST-BOOTED' "$out" && grep -q '^\[l2\] SP-GUEST-BOOTED' "$out" &&
        grep -q '^\[l1\] exited with status 0' "$out" && grep -q '^\[l2\] exited with status 0' "$out"
}
report_run() { # LABEL
    grep -v '^\[status\]' "$out" | grep -v '^\[engine\]' | grep -v '^\[ksm\]' | grep -v '^\[l[12]\] \[' | sed "s/^/# $1: /"
    echo "# $1: samepage exit status $rc; both markers after $(secs "$t0" "${t_boot:-$t_end}") s, measured after $(secs "$t0" "${t_meas:-$t_end}") s (full_scans $fs0 -> $fs1), ended after $(secs "$t0" "$t_end") s"
    [ -n "$why" ] && echo "# $1: $why"
    if ! guests_ok; then
        grep '^\[l[12]\] \[' "$out" | tail -n 10 | sed 's/^/#   /'
    fi
}

# The pids whose parent is $1 (the VM processes of a samepage run).
children() {
    for st in /proc/[0-9]*/stat; do
        awk -v p="$1" '$4 == p { print $1 }' "$st" 2>/dev/null
    done
}

# From smaps: "VIEW_RSS PRIV_SIZE PRIV_ANON PRIV_RSS RO_VIEW_RSS" in kB: the
# Rss of the frame pool's read-write MAP_SHARED view (the supervisor's),
# Size, Anonymous and Rss summed over the guests' MAP_PRIVATE mappings of the
# pool's memfd, and the Rss of read-only shared views of it (the VM
# processes', the same pages again).  Files: the supervisor's, the VMs'.
frames_kb() {
    cat "$@" | awk '/^[0-9a-f]+-[0-9a-f]+ / { f = ($0 ~ /memfd:samepage-frames/); sh = ($2 ~ /s$/); w = ($2 ~ /^rw/) }
         f && sh && w && $1 == "Rss:" { vr += $2 }
         f && sh && !w && $1 == "Rss:" { ro += $2 }
         f && !sh && $1 == "Size:" { ps += $2 }
         f && !sh && $1 == "Anonymous:" { pa += $2 }
         f && !sh && $1 == "Rss:" { pr += $2 }
         END { print vr + 0, ps + 0, pa + 0, pr + 0, ro + 0 }'
}

# Automatic NUMA balancing off for both runs: with it on (the default of
# this 2-node emulated host), its 6.1 kernel's KSM merges almost nothing
# (pages_unshared stays 1, the rest volatile: docs/emuhost.md).
numab=$(cat /proc/sys/kernel/numa_balancing 2>/dev/null)
echo 0 > /proc/sys/kernel/numa_balancing 2>/dev/null
echo "# kernel.numa_balancing ${numab:-absent} -> $(cat /proc/sys/kernel/numa_balancing 2>/dev/null) for both runs"

# ---- run A: samepage's engine -------------------------------------------
echo 0 > /sys/kernel/mm/ksm/run 2>/dev/null
run_guests A --engine=on --pages-to-scan=8192 --sleep-millisecs=20
wait_and_measure A $((HOLD + 250))
report_run A
check "run A (samepage engine): both guests booted and powered off cleanly (exit status 0)" guests_ok
if [ "$measured" = 1 ]; then
    ok "run A: measured while both guests were up, $SCANS full scans after both markers"
else
    notok "run A: not measured: $why"
fi
eng=$(grep '^\[engine\]' "$out" | awk -v n="$nlines" 'NR == n + 1 { print; exit }')
[ -n "$eng" ] || eng=$(grep '^\[engine\]' "$out" | tail -n1)
echo "# A: engine after the measurement: $eng"
# the engine's own memory: saved - profit (both in MiB on the line)
a_meta_kb=$(awk -v s="$(field saved "$eng")" -v p="$(field profit "$eng")" 'BEGIN { printf "%d", (s - p) * 1024 }')
a_time=$(secs "$t0" "${t_meas:-$t_end}")
a_shared=$(field shared "$eng"); a_sharing=$(field sharing "$eng"); a_zero=$(field zero "$eng")
a_rss=$(kb Rss /tmp/A.rollup); a_pss=$(kb Pss /tmp/A.rollup)
set -- $(frames_kb /tmp/A.smaps /tmp/A.vm.smaps 2>/dev/null) 0 0 0 0 0
a_view=$1 a_psize=$2 a_panon=$3 a_prss=$4 a_roview=$5
a_backed=$(( (a_psize - a_panon) / 4 ))
a_kpages=$(( a_backed - a_view / 4 ))
echo "# A: kernel: samepage Rss ${a_rss} kB Pss ${a_pss} kB (Rss-Pss $(( (${a_rss:-0} - ${a_pss:-0}) / 4 )) pages); frame-pool view Rss $a_view kB = $((a_view / 4)) frames; private frame mappings Size $a_psize kB Anonymous $a_panon kB Rss $a_prss kB -> $a_backed guest pages on $((a_view / 4)) frames: saving $a_kpages pages"
echo "# A: engine: shared ${a_shared} sharing ${a_sharing} zero ${a_zero} (metadata ${a_meta_kb} kB)"
check "run A: the engine merged guest pages: pages_sharing ${a_sharing:-?} >= 2048 (8 MiB), zero ${a_zero:-?}" \
    eval '[ "${a_sharing:-0}" -ge 2048 ] 2>/dev/null'
check "run A: kernel-measured saving (frame-backed guest pages - frames) $a_kpages pages = engine pages_sharing ${a_sharing:-?} within 5%+128" \
    eval 'within "$a_kpages" "${a_sharing:-0}" && [ "$measured" = 1 ]'

# ---- run B: the emulated host's KSM ---------------------------------------
echo 8192 > /sys/kernel/mm/ksm/pages_to_scan
echo 20 > /sys/kernel/mm/ksm/sleep_millisecs
echo 1 > /sys/kernel/mm/ksm/run
if [ "$(ksm run)" != 1 ]; then
    echo "# B: cannot start KSM in the emulated host: /sys/kernel/mm/ksm/run is '$(ksm run 2>&1)'"
fi
run_guests B --engine=ksm
wait_and_measure B $((HOLD + 250))
echo 2 > /sys/kernel/mm/ksm/run
report_run B
check "run B (--engine=ksm, host KSM): both guests booted and powered off cleanly (exit status 0)" guests_ok
b_sharing=$(cat /tmp/B.ksm.pages_sharing 2>/dev/null); b_shared=$(cat /tmp/B.ksm.pages_shared 2>/dev/null)
b_after=$(cat /tmp/B.ksm.after 2>/dev/null)
b_rss=$(kb Rss /tmp/B.rollup); b_pss=$(kb Pss /tmp/B.rollup)
b_anon=$(kb Anonymous /tmp/B.rollup); b_pss_anon=$(kb Pss_Anon /tmp/B.rollup)
b_kpages=$(( (${b_anon:-0} - ${b_pss_anon:-0}) / 4 ))
echo "# B: kernel: samepage Rss ${b_rss} kB Pss ${b_pss} kB, Anonymous ${b_anon} kB Pss_Anon ${b_pss_anon} kB -> Anonymous-Pss_Anon = $b_kpages pages; KSM: pages_shared ${b_shared} pages_sharing ${b_sharing} (${b_after} after reading smaps) pages_unshared $(cat /tmp/B.ksm.pages_unshared 2>/dev/null) pages_volatile $(cat /tmp/B.ksm.pages_volatile 2>/dev/null)"
# KSM counts zero pages in pages_sharing (use_zero_pages 0); the engine
# counts them apart
a_all=$(( ${a_sharing:-0} + ${a_zero:-0} ))
if [ "$measured" = 1 ] && [ "${b_sharing:-0}" -ge $((a_all / 2)) ] && [ "${b_sharing:-0}" -ge 2048 ]; then
    ok "run B: the host's KSM merged guest pages: pages_sharing $b_sharing >= half of what the engine saved ($a_all)"
else
    notok "run B: KSM merged ${b_sharing:-nothing} pages (want >= 2048 and half of the engine's $a_all): $why"
fi
mid=$(( (${b_sharing:-0} + ${b_after:-0}) / 2 ))
check "run B: kernel-measured saving (Anonymous-Pss_Anon) $b_kpages pages = KSM pages_sharing $mid within 5%+128" \
    eval 'within "$b_kpages" "$mid" && [ "$measured" = 1 ]'

# ---- both ------------------------------------------------------------------
# Touched guest memory as each run's kernel shows it (see the header).
a_touch=$(( (${a_rss:-0} - a_view - a_roview - a_prss - ${a_meta_kb:-0}) / 4 + a_backed + a_panon / 4 + ${a_zero:-0} ))
b_touch=$(( ${b_rss:-0} / 4 ))
echo "# touched: run A (Rss - views - frame mappings - engine metadata)/4K + frame-backed $a_backed + copied $((a_panon / 4)) + zero ${a_zero:-0} = $a_touch pages; run B Rss/4K = $b_touch pages"
check "zero pages: run A's kernel figures + engine zero pages ($a_touch) = run B's Rss ($b_touch) within 10%" \
    awk -v a="$a_touch" -v b="$b_touch" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= b * 0.10) }'

a_saved=$(( ${a_sharing:-0} + ${a_zero:-0} ))
echo "# density: samepage saved $(mib $a_saved) MiB ($a_sharing pages merged, $a_zero zero; kernel: $(mib $a_kpages) MiB merged) at $a_time s; KSM saved $(mib ${b_sharing:-0}) MiB ($b_sharing pages; kernel: $(mib $b_kpages) MiB) at $(secs "$t0" "${t_meas:-$t_end}") s (seconds since each samepage run started)"
echo "# density: samepage process Pss (what the host really spends): engine $((${a_pss:-0} / 1024)) MiB, KSM $((${b_pss:-0} / 1024)) MiB, for 2 x 256 MiB guests"
[ -n "$numab" ] && echo "$numab" > /proc/sys/kernel/numa_balancing
[ "$n" = 8 ] || echo "not ok $((n + 1)) - internal: $n results"
[ "$fails" = 0 ] && [ "$n" = 8 ]
