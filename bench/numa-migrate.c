/* SPDX-License-Identifier: MIT */
/*
 * numa-migrate.c - the kernel's own migration of a process's memory, for
 * bench/numa-bench: `numa-migrate PID FROM TO` is numactl's `migratepages
 * PID FROM TO` (migrate_pages(2) with every page of PID on node FROM moved
 * to node TO; as root, pages other processes map too: KSM pages, shared
 * file pages), timed.  Prints "seconds S not_moved N".  Built statically by
 * bench/numa-bench and shipped into the emulated host, which has no
 * numactl.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: numa-migrate PID FROM-NODE TO-NODE\n");
        return 2;
    }
    long pid = strtol(argv[1], NULL, 10);
    int from = atoi(argv[2]), to = atoi(argv[3]);
    if (from < 0 || from >= 64 || to < 0 || to >= 64) {
        fprintf(stderr, "numa-migrate: nodes must be 0-63\n");
        return 2;
    }
    unsigned long old_nodes = 1UL << from, new_nodes = 1UL << to;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long r = syscall(SYS_migrate_pages, pid, 65UL, &old_nodes, &new_nodes);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r < 0) {
        fprintf(stderr, "numa-migrate: migrate_pages(%ld): %s\n", pid, strerror(errno));
        return 1;
    }
    printf("seconds %.3f not_moved %ld\n",
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, r);
    return 0;
}
