/* SPDX-License-Identifier: MIT */
/*
 * vm-threads.c - a VM process's threads as the supervisor sees them in
 * /proc: its vCPUs (for libvirt's vcpuinfo and the domain's CPU time) and
 * its CPU affinity (libvirt's <vcpu cpuset>).
 *
 * Why /proc and not a request: the answer must not wait for the VM
 * process, whose control thread may be busy for seconds (a clone copying
 * RAM), and the kernel knows what is asked (a thread's CPU time, the CPU it
 * last ran on, its affinity).  vCPU threads are recognised by the name the
 * VM process gives them, "NAME/vcpuN" (NAME cut to 8 bytes: vcpu.c).  A VM
 * process that is gone reads as an SP_VM_ERROR_GONE.
 *
 * Affinity: sp_vm_set_affinity() pins every thread the process has now;
 * threads it starts later inherit the mask of the thread that starts them
 * (vCPU threads are started by its control thread), so pinning before
 * START covers the vCPUs, and pinning a running VM (a clone child) covers
 * everything.  No state, no locks: each call reads /proc afresh.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/super/vm-priv.h"

static char *task_file(pid_t pid, const char *tid, const char *file)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%s/%s", (int)pid, tid, file);
    char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    return text;
}

/* The fields of /proc/.../stat after the command name. */
static GStrv stat_fields(const char *stat)
{
    const char *close = stat ? strrchr(stat, ')') : NULL;
    return close ? g_strsplit(close + 2, " ", -1) : NULL;
}

/* One vCPU thread's figures; false if it is not a vCPU thread (or gone). */
static bool vcpu_read(pid_t pid, const char *tid, SpVmVcpu *out)
{
    g_autofree char *comm = task_file(pid, tid, "comm");
    const char *v = comm ? g_strrstr(g_strchomp(comm), "/vcpu") : NULL;
    guint64 index;
    if (!v || !g_ascii_string_to_unsigned(v + 5, 10, 0, 4095, &index, NULL))
        return false;
    g_autofree char *stat = task_file(pid, tid, "stat");
    g_auto(GStrv) f = stat_fields(stat);
    if (!f || g_strv_length(f) < 38)
        return false;
    *out = (SpVmVcpu){.index = (uint32_t)index, .tid = (pid_t)atoi(tid), .cpu = atoi(f[36])};
    /* schedstat: nanoseconds on a CPU; stat's ticks are the fallback */
    g_autofree char *sched = task_file(pid, tid, "schedstat");
    if (sched)
        out->cpu_ns = g_ascii_strtoull(sched, NULL, 10);
    else
        out->cpu_ns = (g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10)) *
                      (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
    CPU_ZERO(&out->affinity);
    sched_getaffinity(out->tid, sizeof(out->affinity), &out->affinity);
    return true;
}

static gint vcpu_cmp(gconstpointer a, gconstpointer b)
{
    const SpVmVcpu *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static GDir *task_dir(SpVm *vm, GError **error)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task", (int)vm->pid);
    GDir *dir = vm->pid > 0 ? g_dir_open(path, 0, NULL) : NULL;
    if (!dir)
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_GONE, "VM '%s': its process is gone", vm->name);
    return dir;
}

bool sp_vm_vcpus(SpVm *vm, GArray *out, GError **error)
{
    g_autoptr(GDir) dir = task_dir(vm, error);
    if (!dir)
        return false;
    const char *tid;
    while ((tid = g_dir_read_name(dir))) {
        SpVmVcpu v;
        if (vcpu_read(vm->pid, tid, &v))
            g_array_append_val(out, v);
    }
    g_array_sort(out, vcpu_cmp);
    return true;
}

bool sp_vm_set_affinity(SpVm *vm, const cpu_set_t *set, GError **error)
{
    g_autoptr(GDir) dir = task_dir(vm, error);
    if (!dir)
        return false;
    const char *tid;
    while ((tid = g_dir_read_name(dir))) {
        if (sched_setaffinity((pid_t)atoi(tid), sizeof(*set), set) < 0 && errno != ESRCH) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "VM '%s': cannot set the CPU affinity of thread %s: %s", vm->name, tid,
                        g_strerror(errno));
            return false;
        }
    }
    return true;
}
