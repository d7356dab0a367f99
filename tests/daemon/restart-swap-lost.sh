#!/bin/sh
# restart-swap-lost.sh - restart-swap.sh where the samepaged that takes the
# swap store over after the crash loses four of s1's slots on purpose (a
# test hook, SAMEPAGE_TEST_LOSE_SLOTS), as a defect would.  Every page a VM
# has out has a slot (zero pages are dropped as zero pages, not left out),
# so a page out without one is a lost page: s1 must end, crashed, with a
# reason that says so, when its guest reads one - never read zeros in its
# place - while s2 and samepaged go on (docs/swap.md "After a crash").  TAP.
LOSE=4 exec sh "$(dirname "$0")/restart-swap.sh"
