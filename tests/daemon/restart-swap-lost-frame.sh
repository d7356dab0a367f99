#!/bin/sh
# restart-swap-lost-frame.sh - restart-swap.sh killed right after a shared
# frame was punched out of its pool, where the samepaged that takes the
# swap store over cannot write back any of the shared frames that were out
# (up to 256: a test hook, SAMEPAGE_TEST_LOSE_SHARED), as a defect or an
# unreadable store would.  Each stays a hole that nothing of samepaged
# reads (a read would fill it with zeros, for every VM that maps it), and
# every VM whose guest reaches one ends, crashed, with a reason that says
# so - never reads zeros in its place, never hangs faulting on it again
# and again - while samepaged goes on (docs/swap.md "After a crash").  TAP.
LOSE_SHARED=256 KILL_POINT=evict-frame exec sh "$(dirname "$0")/restart-swap.sh"
