#!/bin/sh
# restart-swap-twice.sh - restart-swap.sh with two more crashes: after the
# first samepaged is killed inside an eviction of shared frames (right
# after one was punched out of its pool), the next one dies right
# after a VM handed it the swap store it kept (before any page moved), and
# the one after that once a VM's pages moved into its own store (before the
# VM was told to keep that one); the fourth takes the store over, and both
# guests, which verify every page every round, go on with zero integrity
# errors and no page lost (docs/swap.md "After a crash").  TAP.
KILL_POINT=evict-frame ADOPT_KILLS="adopt-before-move adopt-before-commit" exec sh "$(dirname "$0")/restart-swap.sh"
