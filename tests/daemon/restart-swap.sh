#!/bin/sh
# restart-swap.sh - swapped guest memory survives a crash of samepaged
# (docs/swap.md "After a crash"): two sharing memload VMs run until the
# engine has merged their pages, then under a per-VM limit (virsh memtune
# --live) below their share of the frames, which keeps private pages and
# shared frames out; samepaged is killed with SIGKILL while they are out,
# in the middle of an eviction; a new samepaged, started without swap
# options (the marker the crashed one left turns swap on), re-attaches,
# takes the old swap store over from the descriptors the VM processes
# kept, and the guests, which verify every page every round, go on with
# zero integrity errors and no page lost.  The limits are lifted after the
# re-attach (swap stays on), so that the guests' rounds are not slowed by
# eviction.  With ADOPT_KILLS (restart-swap-twice.sh) the samepageds
# started after the crash die too, each at one of the points named, in the
# middle of taking the store over, before the last one does.  With LOSE=N
# (restart-swap-lost.sh) the last one loses N of s1's slots on purpose, as
# a defect would: s1 must end, crashed, with a reason, when its guest reads
# one of those pages - never read zeros in their place - while s2 and
# samepaged go on.  With LOSE_SHARED=N (restart-swap-lost-frame.sh) it
# cannot write back up to N of the shared frames that were out: each stays
# a hole nothing of samepaged reads (a read would fill it with zeros, for
# every mapper), and every VM whose guest reaches one ends, crashed, with a
# reason - none reads zeros, none hangs on it - while samepaged goes on.
# TAP.
set -u
. "$(dirname "$0")/common.sh"
ADOPT_KILLS=${ADOPT_KILLS:-}
KILL_POINT=${KILL_POINT:-evict}
LOSE=${LOSE:-0}
LOSE_SHARED=${LOSE_SHARED:-0}
echo "1..$((8 + $(echo $ADOPT_KILLS | wc -w) + (LOSE > 0 || LOSE_SHARED > 0)))"
# The crash comes where it hurts most: between an eviction's M_EVICT and
# its M_EVICT_DONE, while a VM process holds the pages it copied for
# samepaged write-protected (a test hook: samepaged kills itself there
# with SIGKILL once the file named holds the point's name).  A guest write
# to one of them must not block for ever.  (KILL_POINT=evict-frame: right
# after a shared frame was punched out of its pool, its mappers waiting
# for it on missing faults.)
export SAMEPAGE_TEST_KILL="$T/kill"
spd_start --swap --swap-cache 4M || { echo "Bail out! samepaged did not start"; exit 1; }
unset SAMEPAGE_TEST_KILL

sum_of() {
    a=$(stat_of s1 "$1")
    b=$(stat_of s2 "$1")
    echo $((${a:-0} + ${b:-0}))
}
for vm in s1 s2; do
    vm_xml "$vm" seed=5,rate=200,interval=100 64 tenant >"$T/$vm.xml"
    V define "$T/$vm.xml" >/dev/null 2>&1 && V start "$vm" >/dev/null 2>&1
done
# Shared frames first (a limit from the start sends pages out before the
# engine merges them, and a page that is out is not merged: under CI's
# load in the emulated host no frame had formed, let alone left, in 240 s).
end=$(($(date +%s) + 120 * SLOW))
while [ "$(shm pages_sharing)" -lt 2000 ] 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 1; done
sharing=$(shm pages_sharing)
check "two 64 MiB memload VMs of one domain run and share pages (pages_sharing ${sharing:-?})" \
    sh -c "[ \$(virsh -c '$URI' list | grep -c ' running') = 2 ] && [ '${sharing:-0}' -ge 2000 ]"

# 20 MiB each: below what a VM's share of the frames (1/2 each) and its
# private pages come to, so that private pages leave, then frames.
limit=20480
# LOSE_SHARED: the lost frames must be frames a guest reads again, or no
# VM reaches one.  memload reads every managed page every round, so a data
# frame that leaves comes back within a round; the frames that stay out
# are the guest's own pages it never reads again (code run once at boot:
# the lowest guest frames, merged first, so first on the frame clock).
# Inside the emulated host the kill once came while the clock's hand was
# still among those: the 3 frames out, all lost, were never touched and no
# VM ended.  So the kill waits until 64 frames have left (the hand is past
# the ~25 pages of memload's image), at samepage's 16 MiB minimum so that
# frames leave soon, and the wrapper loses up to 256 of the frames out at
# the kill: when few are out, every one, the data frame just punched at
# the kill point among them; when many are, most of those lost are data
# frames (once: 481 out at the kill, 256 lost, both VMs ended).
want_frames=20 want_outs=0 outs=0
if [ "$LOSE_SHARED" -gt 0 ]; then limit=16384 want_frames=1 want_outs=64; fi
for vm in s1 s2; do V memtune $vm --hard-limit $limit --live >/dev/null 2>&1; done
# Wait (by the clock: each reading is slow under emulation) until both
# kinds are out: private pages and shared frames.  (LOSE_SHARED wants one
# frame out, and the 64 evicted: the data frames among them come back, and
# in one emulated run 3 frames were out after the whole wait.)
# (Frames leave only when no private page is cold: inside the emulated
# host no frame had left after the whole wait once, the VMs kept under
# 20 MiB by private pages alone; after a third of it the limits go down
# to samepage's 16 MiB minimum.)
limits_to_minimum() { for vm in s1 s2; do V memtune $vm --hard-limit 16384 --live >/dev/null 2>&1; done; }
t0=$(date +%s)
end=$((t0 + 90 * SLOW))
lowered=no
while frames=$(shm swap_frames) && pages=$(sum_of samepage.swap.pages) &&
    { [ $want_outs = 0 ] || outs=$(shm swap_frame_outs); } &&
    { [ "${frames:-0}" -lt $want_frames ] 2>/dev/null || [ "${pages:-0}" -lt 200 ] 2>/dev/null ||
        [ "${outs:-0}" -lt $want_outs ] 2>/dev/null; } &&
    [ "$(date +%s)" -lt $end ]; do
    if [ $lowered = no ] && [ $(($(date +%s) - t0)) -ge $((30 * SLOW)) ]; then
        limits_to_minimum
        lowered=yes
    fi
    sleep 1
done
echo "#   the limits lowered to 16 MiB while waiting for frames to leave: $lowered"
[ "$LOSE_SHARED" -gt 0 ] && echo "#   frames evicted before the kill was armed: ${outs:-?} (want $want_outs), out then: ${frames:-?}"
r1=$(rounds s1)
r2=$(rounds s2)
pids=$(pgrep -f -- "--listen=$T/vms/" | sort | tr '\n' ' ')
echo "$KILL_POINT" >"$T/kill"
# (frames leave only when no private page is cold, and the VMs may stay
# under their limits on private pages alone: inside the emulated host no
# frame left for 30 s x SLOW once.  If the kill has not come after 10 s x
# SLOW, the limits go down to samepage's 16 MiB minimum.)
t0=$(date +%s)
pushed=no
while kill -0 "$SPD_PID" 2>/dev/null && [ $(($(date +%s) - t0)) -lt $((30 * SLOW)) ]; do
    if [ $pushed = no ] && [ $(($(date +%s) - t0)) -ge $((10 * SLOW)) ]; then
        limits_to_minimum
        pushed=yes
    fi
    sleep 0.2
done
echo "#   the limits lowered to 16 MiB before the kill: $pushed"
in_evict=no
grep -q "event=test-kill point=$KILL_POINT " "$T/daemon.log" && in_evict=yes
spd_kill9 # if it is still there: the check says so
rm -f "$T/kill"
check "samepaged killed (SIGKILL) inside an eviction, at $KILL_POINT ($in_evict), with shared frames (${frames:-?}) and private pages (${pages:-?}) out" \
    sh -c "[ $in_evict = yes ] && [ '${frames:-0}' -ge $want_frames ] && [ '${pages:-0}' -ge 200 ]"

sleep 2
# (the VM processes write to samepaged's log: they inherited its stderr)
abandoned=$(sed -n 's/.*event=swap-evict-abandoned .* pages=\([0-9]*\).*/\1/p' "$T/daemon.log" | head -n 1)
if [ "$KILL_POINT" = evict ]; then
    check "the VM processes go on without it; the one whose eviction was cut short released its ${abandoned:-?} pages" \
        sh -c "[ '$(pgrep -f -- "--listen=$T/vms/" | sort | tr '\n' ' ')' = '$pids' ] && [ '${abandoned:-0}' -gt 0 ]"
else
    check "the VM processes go on without it" \
        [ "$(pgrep -f -- "--listen=$T/vms/" | sort | tr '\n' ' ')" = "$pids" ]
fi
# Samepageds that die while they take the store over (a test hook, as
# above): one right after a VM handed it the store it kept, before any of
# its pages moved; one after they moved into its own store, before it told
# the VM to keep that one.  Each VM keeps the store that holds its pages
# out until a samepaged has them all (docs/swap.md "After a crash").
for point in $ADOPT_KILLS; do
    echo "$point" >"$T/kill"
    SAMEPAGE_TEST_KILL="$T/kill" "$B/samepaged" -d "$T/state" -s "$SOCK" >>"$T/daemon.log" 2>&1 &
    SPD_PID=$!
    i=0
    while kill -0 "$SPD_PID" 2>/dev/null && [ $i -lt $((150 * SLOW)) ]; do sleep 0.2; i=$((i + 1)); done
    died=no
    grep -q "event=test-kill point=$point " "$T/daemon.log" && died=yes
    spd_kill9
    rm -f "$T/kill" "$SOCK" "$ROSOCK"
    check "a samepaged that re-attaches dies (SIGKILL) while it takes the swap store over, at $point ($died)" \
        [ $died = yes ]
done
# The new one: the pages out come back as the guests touch them, and with
# the limits lifted nothing leaves again, so that their rounds (each reads
# every page) go at the emulated host's pace too.
# Started without swap options: the marker the crashed one left turns swap on.
[ "$LOSE" -gt 0 ] && export SAMEPAGE_TEST_LOSE_SLOTS="s1:$LOSE"
[ "$LOSE_SHARED" -gt 0 ] && export SAMEPAGE_TEST_LOSE_SHARED="$LOSE_SHARED"
from=$(($(wc -l <"$T/daemon.log") + 1)) # this samepaged's lines
spd_start
unset SAMEPAGE_TEST_LOSE_SLOTS SAMEPAGE_TEST_LOSE_SHARED
lossy=$((LOSE + LOSE_SHARED))
i=0
reattached() { tail -n "+$from" "$T/daemon.log" | grep -c "event=reattached domain=$1 "; }
while { [ "$(reattached s1)" = 0 ] || [ "$(reattached s2)" = 0 ] ||
    [ "$(V list 2>/dev/null | grep -c ' running')" -lt 2 ]; } && [ $i -lt 100 ]; do
    # (with LOSE, s1 may have reached a lost page and ended already; with
    # LOSE_SHARED, either or both)
    [ "$lossy" -gt 0 ] && [ "$(reattached s1)" != 0 ] && [ "$(reattached s2)" != 0 ] && break
    sleep 0.2
    i=$((i + 1))
done
n_run=2
[ "$LOSE" -gt 0 ] && n_run=1
[ "$LOSE_SHARED" -gt 0 ] && n_run=0
check "a new samepaged, started without --swap, turns swap on (the crashed one's marker) and re-attaches to both" \
    sh -c "[ $(reattached s1) -ge 1 ] && [ $(reattached s2) -ge 1 ] && [ \$(virsh -c '$URI' list | grep -c ' running') -ge $n_run ] && grep -q 'event=swap-on-for-takeover' '$T/daemon.log'"
# (a live limit the re-attach brought back with the VMs: lifted)
for vm in s1 s2; do V memtune $vm --hard-limit -1 --live >/dev/null 2>&1; done

# What it took over, from its log.
i=0
while ! grep -q 'event=swap-adopt-done' "$T/daemon.log" && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
shared=$(sed -n 's/.*event=swap-adopt-shared .* pages=\([0-9]*\).*/\1/p' "$T/daemon.log" | awk '{s += $1} END {print s + 0}')
priv=$(sed -n 's/.*event=swap-adopt-pages .* pages=\([0-9]*\).*/\1/p' "$T/daemon.log" | awk '{s += $1} END {print s + 0}')
# (LOSE is about private pages: whether frames were still out at the kill
# does not matter there, and under emulation they may all be back by then;
# with LOSE_SHARED the frames out may all be among those lost)
tshared=$(grep -c 'event=test-lose-slot shared ' "$T/daemon.log")
# (frames and layer pages out at the kill, as the kill's log line says: the
# guests bring some back between the wait above and the kill - inside the
# emulated host at times every one - and those out must come back)
out_at_kill=$(sed -n "s/.*event=test-kill point=$KILL_POINT frames_out=\([0-9]*\).*/\1/p" "$T/daemon.log" | head -n 1)
check "the old swap store is taken over: $shared shared pages written back into their files (${out_at_kill:-?} out at the kill), $priv private pages moved into the new store" \
    sh -c "grep -q 'event=swap-adopt store_inode' '$T/daemon.log' && [ -n '$out_at_kill' ] && { [ $((shared + tshared)) -gt 0 ] || [ '$out_at_kill' = 0 ] || [ $LOSE -gt 0 ]; } && [ $priv -gt 0 ]"
lost=$(grep -c 'swap-adopt-lost\|swap-adopt-failed' "$T/daemon.log")
tlost=$(grep -c 'event=test-lose-slot vm=s1 ' "$T/daemon.log")
# (LOSE_SHARED: as many as were out, up to N; the kill point has one out)
check "nothing of it lost ($lost lost or failed; $tlost of s1's slots and $tshared shared pages lost on purpose, of $LOSE and $LOSE_SHARED)" \
    sh -c "[ '$lost' = 0 ] && [ '$tlost' = '$LOSE' ] && [ $tshared -le $LOSE_SHARED ] && { [ $LOSE_SHARED = 0 ] || [ $tshared -ge 1 ]; }"
grep 'swap-adopt' "$T/daemon.log" | head -n 8 | sed 's/^/#   log: /'

if [ "$LOSE_SHARED" -gt 0 ]; then
    # Every guest reads every page every round: those that map a lost frame
    # reach it and end; one that maps none (if any) verifies on.
    ended() { grep -q "event=crashed domain=$1 " "$T/daemon.log"; }
    end=$(($(date +%s) + 120 * SLOW))
    while ! { ended s1 || ended s2; } && [ "$(date +%s)" -lt $end ]; do sleep 1; done
    # Then each ends too or verifies two more rounds.  (A reading that
    # fails - domstats of a VM that is ending - counts as behind, not as
    # done: under ASan this wait once ended 20 s after the re-attach.)
    behind() { rd=$(rounds "$1"); ! ended "$1" && ! [ "${rd:-0}" -ge "$2" ] 2>/dev/null; }
    end=$(($(date +%s) + 90 * SLOW))
    while { behind s1 $((r1 + 2)) || behind s2 $((r2 + 2)); } && [ "$(date +%s)" -lt $end ]; do
        sleep 1
    done
    told=$(grep -c 'event=swap-in-lost vm=s[12] .*file_inode=' "$T/daemon.log")
    nend=$(grep -c 'event=crashed domain=s[12] ' "$T/daemon.log")
    nwhy=$(grep 'event=crashed domain=s[12] ' "$T/daemon.log" | grep -c 'content is lost')
    why=$(sed -n 's/.*event=crashed domain=\(s[12]\) .*reason="\(.*\)".*/\1: \2/p' "$T/daemon.log" | head -n 1)
    check "the VMs whose guests reached a lost frame end crashed ($nend, $nwhy with the reason; '$why'; samepaged said $told faults hit a lost page)" \
        sh -c "[ $nend -ge 1 ] && [ $nwhy = $nend ] && [ $told -ge 1 ]"
    zi=$(grep -c 'swap-in-zero-unslotted' "$T/daemon.log")
    bad=$(grep -h -c 'INTEGRITY' "$T"/state/console/*.log 2>/dev/null | awk '{s += $1} END {print s + 0}')
    on=yes
    for vm in s1 s2; do
        ended $vm && continue
        r0=$r1
        [ $vm = s2 ] && r0=$r2
        [ "$(rounds $vm)" -ge $((r0 + 2)) ] 2>/dev/null && [ "$(errors $vm)" = 0 ] || on="no ($vm)"
    done
    check "no guest reported an integrity error ($bad), no page was answered as zero ($zi), a VM that did not end verifies on with zero errors ($on), samepaged runs on" \
        sh -c "[ $bad = 0 ] && [ $zi = 0 ] && [ '$on' = yes ] && kill -0 $SPD_PID"
    noidx=$(grep -c 'event=frame-lost-not-indexed' "$T/daemon.log")
    check "samepaged read no lost frame: the mappings of one ($noidx) were left out of its index (reading the hole would have filled it with zeros)" \
        [ "$noidx" -ge 1 ]
    if [ "$told" = 0 ] || [ "$nend" = 0 ] || [ "$on" != yes ]; then
        grep -h 'swap\|warn\|crashed\|lost' "$T/daemon.log" | tail -n 25 | sed 's/^/#   log: /'
    fi
    spd_stop
    exit 0
fi

if [ "$LOSE" -gt 0 ]; then
    # s1's guest reads every page every round: it reaches a lost one.
    end=$(($(date +%s) + 90 * SLOW))
    while ! grep -q 'event=crashed domain=s1 ' "$T/daemon.log" && [ "$(date +%s)" -lt $end ]; do sleep 1; done
    told=$(grep -c 'event=swap-in-lost vm=s1 ' "$T/daemon.log")
    why=$(sed -n 's/.*event=crashed domain=s1 .*reason="\(.*\)".*/\1/p' "$T/daemon.log" | head -n 1)
    check "s1, whose guest reached a page whose slot was lost, ends crashed: '$why' (samepaged said it lost $told)" \
        sh -c "[ '$told' -ge 1 ] && echo '$why' | grep -q 'content is lost'"
    # Neither guest read zeros in place of a lost page; s2 and samepaged go on.
    zi=$(grep -c 'swap-in-zero-unslotted' "$T/daemon.log")
    bad1=$(grep -h -c 'INTEGRITY' "$T"/state/console/s1*.log 2>/dev/null | awk '{s += $1} END {print s + 0}')
    end=$(($(date +%s) + 90 * SLOW))
    while rd=$(rounds s2) && ! [ "${rd:-0}" -ge $((r2 + 2)) ] 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 1; done
    e=$(errors s2)
    check "s2 verifies on (rounds $r2 -> $(rounds s2)) with zero integrity errors (${e:-?}), s1 reported none ($bad1), no page was answered as zero ($zi), samepaged runs on" \
        sh -c "[ '$(rounds s2)' -ge $((r2 + 2)) ] && [ '${e:-1}' = 0 ] && [ $bad1 = 0 ] && [ $zi = 0 ] && kill -0 $SPD_PID && [ \$(virsh -c '$URI' list | grep -c ' running') = 1 ]"
    ins=$(shm swap_ins)
    check "s2's pages out come back as they are touched (swap ins ${ins:-?} since the re-attach)" \
        sh -c "[ '${ins:-0}' -gt 0 ]"
    if [ "$told" = 0 ] || [ "$zi" != 0 ]; then
        grep -h 'swap\|warn\|crashed' "$T/daemon.log" | tail -n 20 | sed 's/^/#   log: /'
    fi
    spd_stop
    exit 0
fi

# Every round reads every page: two more rounds each (the first may have
# begun before the kill) read back all that was out at it.
end=$(($(date +%s) + 90 * SLOW))
while { rd1=$(rounds s1); rd2=$(rounds s2); ! [ "${rd1:-0}" -ge $((r1 + 2)) ] 2>/dev/null ||
    ! [ "${rd2:-0}" -ge $((r2 + 2)) ] 2>/dev/null; } &&
    [ "$(date +%s)" -lt $end ]; do
    sleep 1
done
e=$(($(errors s1) + $(errors s2)))
check "both guests verify on (rounds s1 $r1 -> $(rounds s1), s2 $r2 -> $(rounds s2)) with zero integrity errors ($e)" \
    sh -c "[ $(rounds s1) -ge $((r1 + 2)) ] && [ $(rounds s2) -ge $((r2 + 2)) ] && [ $e = 0 ]"
ins=$(shm swap_ins)
left=$(shm swap_pages)
check "the pages out come back as they are touched (swap ins ${ins:-?} since the re-attach; ${left:-?} contents still out)" \
    sh -c "[ '${ins:-0}' -gt 0 ]"
if [ "$e" != 0 ] || [ "$(rounds s1)" -lt $((r1 + 2)) ] || [ "$(rounds s2)" -lt $((r2 + 2)) ]; then
    grep -h 'INTEGRITY' "$T"/state/console/*.log 2>/dev/null | head -n 5 | sed 's/^/#   console: /'
    grep -h 'integrity-error' "$T/daemon.log" | head -n 5 | sed 's/^/#   log: /'
    grep -h 'swap-in-zero-unslotted' "$T/daemon.log" | head -n 3 | sed 's/^/#   log: /'
    grep -h 'swap\|warn' "$T/daemon.log" | tail -n 20 | sed 's/^/#   log: /'
fi
spd_stop
exit 0
