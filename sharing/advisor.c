/* SPDX-License-Identifier: MIT */
/*
 * advisor.c - how the engine competes for CPU: scan_nice, and the
 * automatic mode (advisor_mode=1, "scan-time", after KSM's advisor).
 *
 * scan_nice: the engine thread sets its own nice (Linux's nice is per
 * thread) before each pass, and the agents' threads get theirs from the
 * supervisor, which has the privilege to set it back down (a VM process
 * has none): each M_KNOBS reply (at attach, and when scan_nice changes)
 * says the agent thread's id, which is used only if it is a thread of that
 * VM's process.  Default 0, level with the vCPUs: the engine's work is a
 * chain of requests and replies between its thread and the agents, and at
 * ksmd's nice 5 each hop waited for busy vCPUs' time slices (sp-bench,
 * 4 x 512 MiB: 58 s to converge instead of 18.5 s; docs/sharing.md).  To
 * keep the engine's share down, advisor_max_cpu caps it.
 *
 * advisor_mode=1: the operator gives a target time for a full scan
 * (advisor_target_scan_time) and a CPU ceiling (advisor_max_cpu, percent
 * of one CPU for the engine thread and the agents' threads together);
 * the engine sets the batch and the pause itself.  It paces
 * each pass by its progress: the batch is 1/ADV_BATCHES of the pass's
 * pages, and after each batch the engine waits until the later of
 *   - pass start + done fraction x target (no faster than the target),
 *   - pass start + CPU used in the pass / ceiling (never above the ceiling
 *     on average since the pass started),
 * then goes on; the pass's end waits for the same with fraction 1.  So a
 * pass whose work fits takes the target time, and one that does not takes
 * as long as the ceiling needs (the ceiling wins, as in KSM).  What it
 * chose is what sp_engine_get_knobs says for pages_to_scan and
 * sleep_millisecs (the last wait), as KSM's advisor writes pages_to_scan;
 * the operator's values stay in eng->knobs, unchanged while the mode is 1
 * (sp_engine_set_knobs keeps them), and rule again when it is set to 0.
 * The agents' CPU is read from their threads' /proc/PID/task/TID/schedstat
 * (kept open; no mapping walk), each time the advisor looks.
 *
 * Engine lock held throughout; the engine thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sharing/engine-priv.h"

#define ADV_BATCHES   100    /* batches per pass */
#define ADV_MIN_BATCH 256    /* pages */
#define ADV_MAX_BATCH 262144 /* pages */

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The agent thread's CPU time from its /proc/PID/task/TID/schedstat (the
 * kernel's own sum, current to the moment: no lag behind its replies, and
 * nothing the VM process says), or its last value if unreadable. */
static uint64_t agent_cpu_read(SpEngineVm *vm)
{
    char buf[96];
    ssize_t n = vm->agent_stat_fd >= 0 ? pread(vm->agent_stat_fd, buf, sizeof(buf) - 1, 0) : -1;
    if (n <= 0)
        return vm->agent_cpu_ns;
    buf[n] = 0;
    return g_ascii_strtoull(buf, NULL, 10);
}

/* Fold the agent's CPU since the last read into adv.agents_cpu_ns. */
static void agent_cpu_fold(SpEngine *eng, SpEngineVm *vm)
{
    uint64_t now = agent_cpu_read(vm);
    if (now > vm->agent_cpu_ns)
        eng->adv.agents_cpu_ns += now - vm->agent_cpu_ns;
    vm->agent_cpu_ns = now;
}

/* The engine thread's and the agents' CPU so far. */
static uint64_t adv_cpu_ns(SpEngine *eng)
{
    for (uint32_t s = 0; s < eng->nslots; s++)
        if (eng->vm_slots[s])
            agent_cpu_fold(eng, eng->vm_slots[s]);
    return thread_cpu_ns() + eng->adv.agents_cpu_ns;
}

void sh_advisor_vm_gone(SpEngine *eng, SpEngineVm *vm)
{
    agent_cpu_fold(eng, vm);
}

void sh_advisor_agent_nice(SpEngine *eng, SpEngineVm *vm, uint32_t tid)
{
    /* Only a thread of the VM's own process: the id is the VM's word. */
    g_autofree char *task = g_strdup_printf("/proc/%d/task/%u", vm->pid, tid);
    if (tid == 0 || vm->pid <= 0 || access(task, F_OK) != 0) {
        g_message("event=agent-nice-refused vm=%s tid=%u error=\"not a thread of process %d\"",
                  vm->name, tid, vm->pid);
        return;
    }
    if (vm->agent_tid != tid) { /* its CPU, for the advisor's ceiling */
        g_autofree char *stat = g_strdup_printf("%s/schedstat", task);
        int fd = open(stat, O_RDONLY | O_CLOEXEC);
        if (vm->agent_stat_fd >= 0)
            close(vm->agent_stat_fd);
        vm->agent_stat_fd = fd;
        vm->agent_tid = tid;
        vm->agent_cpu_ns = agent_cpu_read(vm); /* from here on */
    }
    if (setpriority(PRIO_PROCESS, (id_t)tid, (int)eng->knobs.scan_nice) < 0)
        g_message("event=agent-nice-refused vm=%s tid=%u nice=%u error=\"%s\"", vm->name, tid,
                  eng->knobs.scan_nice, g_strerror(errno));
}

/* scan_nice for the engine thread: tried once per value (a refusal is
 * logged, and the thread keeps the nice it had). */
void sh_advisor_nice(SpEngine *eng)
{
    if (eng->adv.nice_tried == eng->knobs.scan_nice)
        return;
    eng->adv.nice_tried = eng->knobs.scan_nice;
    if (setpriority(PRIO_PROCESS, 0, (int)eng->knobs.scan_nice) < 0)
        g_message("event=engine-nice-refused nice=%u error=\"%s\"", eng->knobs.scan_nice,
                  g_strerror(errno));
}

void sh_advisor_pass_begin(SpEngine *eng)
{
    sh_advisor_nice(eng);
    gint64 now = g_get_monotonic_time();
    uint64_t cpu = adv_cpu_ns(eng);
    if (eng->adv.pass_start_us) { /* the last pass's figures, start to start */
        double wall = (double)(now - eng->adv.pass_start_us) / 1e6;
        eng->stats.scan_time_ms = (uint64_t)(wall * 1000);
        eng->stats.scan_cpu_permille =
            wall > 0 ? (uint64_t)((double)(cpu - eng->adv.cpu_start_ns) / 1e6 / wall) : 0;
    }
    eng->adv.pass_start_us = now;
    eng->adv.cpu_start_ns = cpu;
    uint64_t pages = 0;
    for (uint32_t s = 0; s < eng->nslots; s++) {
        SpEngineVm *vm = eng->vm_slots[s];
        if (vm && !vm->broken && !vm->hold)
            pages += vm->end - vm->first;
    }
    eng->adv.pass_pages = pages;
    eng->adv.batch = (uint32_t)CLAMP(pages / ADV_BATCHES, ADV_MIN_BATCH, ADV_MAX_BATCH);
}

/* When the next batch may start (or, pass_end, the next pass). */
static gint64 advisor_wake(SpEngine *eng, bool pass_end)
{
    double f = 1.0;
    if (!pass_end && eng->adv.pass_pages) {
        uint64_t done = 0;
        for (uint32_t s = 0; s < eng->nslots; s++) {
            SpEngineVm *vm = eng->vm_slots[s];
            if (vm && !vm->broken && !vm->hold)
                done += MIN(vm->cursor, vm->end) - MIN(vm->first, vm->cursor);
        }
        f = MIN(1.0, (double)done / (double)eng->adv.pass_pages);
    }
    gint64 start = eng->adv.pass_start_us;
    gint64 pace = start + (gint64)(f * eng->knobs.advisor_target_scan_time * 1e6);
    uint64_t cpu = adv_cpu_ns(eng) - eng->adv.cpu_start_ns;
    gint64 ceil = start + (gint64)((double)cpu / 1e3 * 100.0 / eng->knobs.advisor_max_cpu);
    gint64 wake = MAX(pace, ceil);
    gint64 now = g_get_monotonic_time();
    eng->adv.sleep_ms = wake > now ? (uint32_t)MIN((wake - now) / 1000, 600000) : 0;
    return wake;
}

/* Wait until the next batch (pass_end: the next pass) may start, unless
 * the scan must stop (false).  A knob change wakes us: the time is worked
 * out again (a new target counts at once), and the nice applied. */
bool sh_advisor_pause(SpEngine *eng, bool pass_end)
{
    bool slept = false;
    while (!eng->quit && eng->knobs.run == 1 && eng->knobs.advisor_mode == 1) {
        gint64 wake = advisor_wake(eng, pass_end);
        if (g_get_monotonic_time() >= wake)
            break;
        g_cond_wait_until(&eng->cond, &eng->lock, wake);
        sh_advisor_nice(eng);
        slept = true;
    }
    if (!slept) {
        /* Behind its pace: no sleep, but attach/detach, stats readers and
         * a stopping `samepage run` still get a chance at the lock between
         * batches, as at full speed (engine_batch_pause). */
        sh_engine_let_in(eng);
    }
    return !eng->quit && eng->knobs.run == 1;
}
