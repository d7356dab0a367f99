/* SPDX-License-Identifier: MIT */
/*
 * vm-heap.c - the C heap of samepage's processes: what the memory of the
 * VMM itself costs the host, beside its guests.
 *
 * Two glibc defaults made the VMM hold memory it had freed, measured with
 * two identical Linux guests in the emulated host (bench/guest-density,
 * per-process smaps):
 *
 *  - glibc raises its mmap threshold to the size of the largest mmap'd
 *    block freed so far (up to 32 MiB), and the trim threshold to twice
 *    that.  A VM process reads its 8 MiB kernel image into one block and
 *    frees it, so from then on every block below 8 MiB - the memory
 *    agent's page tables, the page contents it sends per merge batch -
 *    came from the agent thread's arena, whose top is only given back
 *    past 16 MiB (malloc_trim() does not trim the top of a thread's
 *    arena).  The arena held 2.7-7.1 MiB resident per VM process.
 *    M_MMAP_THRESHOLD set explicitly keeps 128 KiB and turns the
 *    adjustment off (and with it the trim threshold's, 128 KiB).
 *  - With transparent huge pages "always" (Debian's default), khugepaged
 *    made 2 MiB pages of those arenas (2-6 MiB of AnonHugePages per VM
 *    process, most of it never touched).  Guest RAM is MADV_NOHUGEPAGE
 *    already; PR_SET_THP_DISABLE turns THP off for the whole process,
 *    and children inherit it.
 *
 * Not in AddressSanitizer builds: their allocator is ASan's, not glibc's,
 * and there tests/swap-overcommit.sh's processes grew past its bound with
 * these settings (738 MiB) and stayed within it without them (474 MiB).
 *
 * No lock: called first thing, before any thread starts.
 */
#include <malloc.h>
#include <sys/prctl.h>

#include "vmm/vm-heap.h"

void sp_vm_heap_settings(void)
{
#ifndef __SANITIZE_ADDRESS__
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
#endif
}
