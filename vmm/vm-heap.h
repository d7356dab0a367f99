/* SPDX-License-Identifier: MIT */
/*
 * vm-heap.h - how samepage's processes set up their C heap (vm-heap.c).
 */
#ifndef SAMEPAGE_VMM_VM_HEAP_H
#define SAMEPAGE_VMM_VM_HEAP_H

/* Call first thing in a process: samepaged and `samepage run` (through
 * sp_vm_host_new) and every VM process. */
void sp_vm_heap_settings(void);

#endif
