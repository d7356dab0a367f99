/* SPDX-License-Identifier: MIT */
/*
 * kvm-keeper.c - hold one KVM VM open inside the emulated host, for as
 * long as the emulated host runs (tests/emuhost/emuhost-init starts it
 * before any test, for the tier's runs and for scripts/in-emuhost.sh's).
 *
 * Why: KVM's first VM turns the scheduler's preempt-notifier static key on
 * and its last VM's exit turns it off; each turn patches __schedule's code
 * through int3 (text_poke_bp).  Under QEMU's TCG another CPU can go on
 * running its old translation of that code: it takes the int3 again and
 * again, and the kprobes handler, finding no int3 in memory, sends it back
 * to retry - forever (found 2026-12-03, docs/emuhost.md).  Tests start and
 * end VMs all the time; with this VM alive the key's count never falls to
 * 0, so it is patched once, before anything runs.
 *
 * The VM has the in-kernel irqchip and one vCPU, as samepage's VMs do, and
 * never runs.  Usage: kvm-keeper PIDFILE - writes its pid there once the
 * VM exists, then waits for a signal.  Exit status 1 (with a message) when
 * /dev/kvm or any of the three ioctls fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *what)
{
    fprintf(stderr, "kvm-keeper: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kvm-keeper PIDFILE (holds one KVM VM open until killed)\n");
        return 2;
    }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return fail("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        return fail("KVM_CREATE_VM");
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
        return fail("KVM_CREATE_IRQCHIP");
    if (ioctl(vm, KVM_CREATE_VCPU, 0) < 0)
        return fail("KVM_CREATE_VCPU");
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0)
        return fail(argv[1]);
    for (;;)
        pause();
}
