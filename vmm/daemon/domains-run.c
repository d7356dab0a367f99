/* SPDX-License-Identifier: MIT */
/*
 * domains-run.c - running domains: start, destroy, shutdown, reboot,
 * suspend, resume, and what happens when a VM ends by itself (its
 * <on_poweroff>, <on_reboot> and <on_crash> actions).
 *
 * Every operation holds the domain's job (domains.h) from its first check
 * to its last change, so two clients acting on one domain are served one
 * after the other; the registry lock is taken only to read or set fields.
 * dom_finish() is the one way a VM leaves a domain: it takes d->vm (no
 * query can use it after that), stops and waits for it if needed, frees
 * it, and sets the state, the events and the action that follow.  A
 * destroy, shutdown, reboot or reset whose guest has not stopped 10 s
 * after it was told kills the VM process (sp_vm_stop, as libvirt's QEMU driver sends
 * SIGKILL 10 s after SIGTERM) and goes on as if it had stopped:
 *
 *   how it ended                 events                        then
 *   destroy                      STOPPED/DESTROYED             shut off (destroyed)
 *   shutdown (host)              SHUTDOWN/HOST                 <on_poweroff>
 *   reboot, reset (host)         REBOOT                        boots again
 *   guest powered off / exited   SHUTDOWN/GUEST                <on_poweroff>
 *   guest rebooted               (REBOOT if restarted)         <on_reboot>
 *   guest crashed (triple fault) CRASHED/PANICKED              <on_crash>
 *   VM process died (killed)     STOPPED/FAILED                shut off (crashed)
 *
 *   action destroy: STOPPED/SHUTDOWN (or /CRASHED), shut off (shutdown or
 *   crashed); restart: STOPPED then STARTED/BOOTED around a new VM process
 *   with the same id (a reboot sends REBOOT alone); preserve (crash): the
 *   ended VM stays, state crashed (panicked), until destroyed.
 * Automatic restarts are limited to RESTART_BURST within RESTART_WINDOW_S:
 * a guest that cannot stay up is shut off (failed) rather than restarted
 * forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmm/daemon/domains-priv.h"

#define RESTART_BURST    4
#define RESTART_WINDOW_S 10

typedef enum { END_ITSELF, END_DESTROY, END_SHUTDOWN, END_RESET } EndCause;

/* The host CPUs of <vcpu cpuset>: true with *set filled, or no cpuset. */
static bool dom_cpuset(const SpDomXml *def, cpu_set_t *set, bool *given, GError **error)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    g_autoptr(GError) err = NULL;
    *given = def->vcpu_cpuset != NULL;
    CPU_ZERO(set);
    if (!*given)
        return true;
    if (!sp_domxml_cpuset_parse(def->vcpu_cpuset, CPU_SETSIZE, ids, &err)) {
        DOM_ERROR(error, SP_LV_ERR_CONFIG_UNSUPPORTED, "%s", err->message);
        return false;
    }
    cpu_set_t online;
    CPU_ZERO(&online);
    for (guint i = 0; i < ids->len; i++)
        CPU_SET(g_array_index(ids, guint, i), set);
    if (sched_getaffinity(0, sizeof(online), &online) == 0) {
        CPU_AND(&online, &online, set);
        if (CPU_COUNT(&online) == 0) {
            DOM_ERROR(error, SP_LV_ERR_CONFIG_UNSUPPORTED,
                      "<vcpu cpuset='%s'> names no CPU samepaged may use on this host",
                      def->vcpu_cpuset);
            return false;
        }
    }
    return true;
}

/* Lock held: a domain that no longer runs. */
static void dom_set_off(SpDomains *ds, SpDomain *d, gint32 reason)
{
    d->state = SP_LV_DOMAIN_SHUTOFF;
    d->reason = reason;
    if (d->id >= 0)
        dom_remove_run_file(ds, d->def->name);
    d->id = -1;
}

bool dom_boot(SpDomains *ds, SpDomain *d, gint32 id, GError **error)
{
    g_mutex_lock(&ds->lock);
    g_autoptr(SpDomXml) def = sp_domxml_copy(d->def);
    uint64_t vm_id = ds->next_vm_id++;
    g_mutex_unlock(&ds->lock);
    g_autoptr(GError) err = NULL;
    g_autoptr(SpVmConfig) cfg = def ? sp_domain_vm_config(def, &err) : NULL;
    dom_mem_limit_applies(ds, cfg);
    g_autofree char *cpath = NULL;
    cpu_set_t cpus;
    bool pin = false;
    SpVm *vm = NULL;
    if (!cfg) {
        DOM_ERROR(error, SP_LV_ERR_CONFIG_UNSUPPORTED, "%s",
                  err ? err->message : "the definition does not format");
        goto failed;
    }
    if (!dom_cpuset(def, &cpus, &pin, error))
        goto failed;
    cpath =
        def->serial_path ? g_strdup(def->serial_path) : dom_path(ds, "console", def->name, ".log");
    int console = open(cpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    SpVmEvents ev = dom_events(d);
    vm = sp_vm_new_full(ds->host, cfg, vm_id, id, def->uuid, console, &ev, &err);
    if (console >= 0)
        close(console);
    if (!vm || (pin && !sp_vm_set_affinity(vm, &cpus, &err))) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "%s", err->message);
        sp_vm_free(vm);
        goto failed;
    }
    if (ds->engine)
        sp_vm_set_engine(vm, ds->engine, 0, 0);
    g_mutex_lock(&ds->lock);
    d->vm = vm;
    d->id = id;
    d->state = SP_LV_DOMAIN_RUNNING;
    d->reason = RUNNING_BOOTED;
    dom_write_run_file(ds, d);
    g_mutex_unlock(&ds->lock);
    if (!sp_vm_start(vm, &err)) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "%s", err->message);
        sp_vm_free(dom_take_vm(d));
        goto failed;
    }
    g_message("event=started domain=%s id=%d pid=%d mem_mib=%" G_GUINT64_FORMAT " vcpus=%u%s%s",
              def->name, id, (int)sp_vm_pid(vm), cfg->mem_size >> 20, cfg->vcpus,
              pin ? " cpuset=" : "", pin ? def->vcpu_cpuset : "");
    return true;
failed:
    g_mutex_lock(&ds->lock);
    dom_set_off(ds, d, SHUTOFF_FAILED);
    g_mutex_unlock(&ds->lock);
    g_warning("event=start-failed domain=%s error=\"%s\"", d->def->name,
              error && *error ? (*error)->message : "?");
    return false;
}

/* Lock held: may d restart by itself once more (RESTART_BURST)? */
static bool restart_allowed(SpDomain *d)
{
    gint64 now = g_get_monotonic_time();
    gint64 oldest = d->restart_times[0];
    if (oldest && now - oldest < RESTART_WINDOW_S * G_USEC_PER_SEC)
        return false;
    memmove(d->restart_times, d->restart_times + 1, sizeof(d->restart_times[0]) * 3);
    d->restart_times[RESTART_BURST - 1] = now;
    return true;
}

/* What follows a VM's end: events before the action, the action, and the
 * state and events if the domain stops. */
typedef struct {
    gint32 event, detail;  /* first lifecycle event, or -1 */
    SpDomXmlAction action; /* destroy / restart / preserve */
    gint32 off_reason;     /* shut-off reason if it stops */
    gint32 stop_detail;    /* STOPPED detail if it stops */
    bool reboot;           /* a restart that is a reboot (REBOOT event only) */
    bool automatic;        /* a restart the guest caused (counted) */
} EndPlan;

static EndPlan end_plan(const SpDomXml *def, EndCause cause, const SpVmInfo *info,
                        const char *reason, bool died)
{
    EndPlan p = {.event = -1,
                 .action = SP_DOMXML_ACTION_DESTROY,
                 .off_reason = SHUTOFF_DESTROYED,
                 .stop_detail = SP_LV_STOPPED_DESTROYED};
    if (cause == END_RESET) {
        p.action = SP_DOMXML_ACTION_RESTART;
        p.reboot = true;
    } else if (cause == END_SHUTDOWN || (cause == END_ITSELF && info->state == SP_VM_EXITED &&
                                         g_strcmp0(reason, SP_VM_REASON_REBOOT) != 0)) {
        p.event = SP_LV_EVENT_SHUTDOWN;
        p.detail = cause == END_SHUTDOWN ? SP_LV_SHUTDOWN_HOST : SP_LV_SHUTDOWN_GUEST;
        p.action = sp_domxml_on_poweroff(def);
        p.off_reason = SHUTOFF_SHUTDOWN;
        p.stop_detail = SP_LV_STOPPED_SHUTDOWN;
        p.automatic = cause == END_ITSELF;
    } else if (cause == END_ITSELF && info->state == SP_VM_EXITED) { /* guest reboot */
        p.action = sp_domxml_on_reboot(def);
        p.off_reason = SHUTOFF_SHUTDOWN;
        p.stop_detail = SP_LV_STOPPED_SHUTDOWN;
        p.reboot = p.automatic = true;
    } else if (cause == END_ITSELF && died) {
        p.off_reason = SHUTOFF_CRASHED;
        p.stop_detail = SP_LV_STOPPED_FAILED;
    } else if (cause == END_ITSELF && info->state == SP_VM_CRASHED) {
        p.event = SP_LV_EVENT_CRASHED;
        p.detail = SP_LV_CRASHED_PANICKED;
        p.action = sp_domxml_on_crash(def);
        p.off_reason = SHUTOFF_CRASHED;
        p.stop_detail = SP_LV_STOPPED_CRASHED;
        p.automatic = true;
    }
    return p;
}

/* Job held, d->vm set: the VM leaves the domain (see the table above). */
static void dom_finish(SpDomains *ds, SpDomain *d, EndCause cause)
{
    SpVm *vm = dom_take_vm(d);
    if (cause != END_ITSELF)
        sp_vm_stop(vm); /* a VM process that does not stop is killed after 10 s */
    else
        sp_vm_wait(vm);
    SpVmInfo info;
    sp_vm_get_info(vm, &info);
    g_autofree char *reason = sp_vm_get_reason(vm);
    g_mutex_lock(&ds->lock);
    EndPlan p = end_plan(d->def, cause, &info, reason, sp_vm_process_died(vm));
    g_autofree char *name = g_strdup(d->def->name);
    if (p.action == SP_DOMXML_ACTION_PRESERVE) {
        d->vm = vm; /* kept for inspection until destroyed */
        d->state = SP_LV_DOMAIN_CRASHED;
        d->reason = CRASHED_PANICKED;
    }
    g_mutex_unlock(&ds->lock);
    if (p.event >= 0)
        dom_emit(d, p.event, p.detail);
    g_message("event=%s domain=%s state=%s status=%d reason=\"%s\"",
              info.state == SP_VM_CRASHED ? "crashed" : "stopped", name,
              sp_vm_state_name(info.state), info.exit_status, reason ? strtok(reason, "\n") : "");
    if (p.action == SP_DOMXML_ACTION_PRESERVE)
        return;
    uint64_t cpu_ns = sp_vm_cpu_time_ns(vm);
    sp_vm_free(vm);

    g_autoptr(GError) err = NULL;
    g_mutex_lock(&ds->lock);
    d->cpu_ns_last = cpu_ns;
    gint32 id = d->id;
    bool restart = p.action == SP_DOMXML_ACTION_RESTART && (!p.automatic || restart_allowed(d));
    if (p.action == SP_DOMXML_ACTION_RESTART && !restart)
        g_warning("event=restart-loop domain=%s (%d restarts within %d s: shut off)", name,
                  RESTART_BURST, RESTART_WINDOW_S);
    g_mutex_unlock(&ds->lock);
    if (restart && !p.reboot)
        dom_emit(d, SP_LV_EVENT_STOPPED, p.stop_detail);
    if (restart && dom_boot(ds, d, id, &err)) {
        if (p.reboot)
            dom_emit_reboot(d);
        else
            dom_emit(d, SP_LV_EVENT_STARTED, SP_LV_STARTED_BOOTED);
        return;
    }
    g_mutex_lock(&ds->lock);
    dom_set_off(ds, d, restart ? SHUTOFF_FAILED : p.off_reason);
    if (!d->persistent)
        dom_list_remove(ds, d);
    g_mutex_unlock(&ds->lock);
    if (!restart || p.reboot) /* a failed restart after STOPPED was reported already */
        dom_emit(d, SP_LV_EVENT_STOPPED, restart ? SP_LV_STOPPED_FAILED : p.stop_detail);
}

/* The job, and a VM to act on (else OPERATION_INVALID). */
static bool job_with_vm(SpDomain *d, const char *api, GError **error)
{
    if (!dom_job_begin(d, api, JOB_WAIT_S, error))
        return false;
    g_mutex_lock(&d->owner->lock);
    bool running = d->vm != NULL;
    if (!running)
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is not running", d->def->name);
    g_mutex_unlock(&d->owner->lock);
    if (!running)
        dom_job_end(d);
    return running;
}

bool sp_domains_start(SpDomains *ds, SpDomain *d, GError **error)
{
    if (!dom_job_begin(d, "virDomainCreate", JOB_WAIT_S, error))
        return false;
    g_mutex_lock(&ds->lock);
    bool running = d->vm != NULL;
    gint32 id = running ? -1 : ds->next_id++;
    if (running)
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is already running",
                  d->def->name);
    g_mutex_unlock(&ds->lock);
    bool ok = !running && dom_boot(ds, d, id, error);
    if (ok) /* within the job: before any event of its end */
        dom_emit(d, SP_LV_EVENT_STARTED, SP_LV_STARTED_BOOTED);
    dom_job_end(d);
    return ok;
}

bool sp_domains_destroy(SpDomains *ds, SpDomain *d, GError **error)
{
    /* Stop it first, without the job: a long operation on it ends now. */
    SpVm *vm = sp_domain_vm_use(d);
    if (vm) {
        sp_vm_request_stop(vm);
        sp_domain_vm_done(d);
    }
    if (!dom_job_begin(d, "virDomainDestroy", JOB_WAIT_S, error))
        return false;
    g_mutex_lock(&ds->lock);
    bool running = d->vm != NULL;
    g_mutex_unlock(&ds->lock);
    if (running)
        dom_finish(ds, d, END_DESTROY);
    else if (!vm) /* stopped meanwhile, by this request: done */
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is not running", d->def->name);
    dom_job_end(d);
    return running || vm;
}

bool sp_domains_shutdown(SpDomains *ds, SpDomain *d, GError **error)
{
    if (!job_with_vm(d, "virDomainShutdown", error))
        return false;
    dom_finish(ds, d, END_SHUTDOWN);
    dom_job_end(d);
    return true;
}

bool sp_domains_reboot(SpDomains *ds, SpDomain *d, GError **error)
{
    if (!job_with_vm(d, "virDomainReboot", error))
        return false;
    g_mutex_lock(&ds->lock);
    SpLvDomainState st = d->state;
    g_mutex_unlock(&ds->lock);
    bool ok = st == SP_LV_DOMAIN_RUNNING;
    if (ok)
        dom_finish(ds, d, END_RESET);
    else
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is %s: %s", d->def->name,
                  st == SP_LV_DOMAIN_PAUSED ? "paused" : "not running",
                  st == SP_LV_DOMAIN_PAUSED ? "resume it before rebooting" : "start it instead");
    dom_job_end(d);
    return ok;
}

/* Suspend (pause = true) or resume; the state it leaves and the event. */
static bool dom_pause(SpDomains *ds, SpDomain *d, bool pause, GError **error)
{
    if (!job_with_vm(d, pause ? "virDomainSuspend" : "virDomainResume", error))
        return false;
    g_mutex_lock(&ds->lock);
    SpLvDomainState st = d->state;
    SpVm *vm = d->vm;
    g_mutex_unlock(&ds->lock);
    SpLvDomainState want = pause ? SP_LV_DOMAIN_RUNNING : SP_LV_DOMAIN_PAUSED;
    g_autoptr(GError) err = NULL;
    bool ok = false;
    if (pause && st == SP_LV_DOMAIN_PAUSED)
        ok = true; /* already suspended: nothing to do, no event */
    else if (st != want)
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is not %s", d->def->name,
                  pause ? "running" : "paused");
    else if (!(pause ? sp_vm_pause(vm, &err) : sp_vm_resume(vm, &err)))
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "%s", err->message);
    else {
        ok = true;
        g_mutex_lock(&ds->lock);
        d->state = pause ? SP_LV_DOMAIN_PAUSED : SP_LV_DOMAIN_RUNNING;
        d->reason = pause ? PAUSED_USER : RUNNING_UNPAUSED;
        g_mutex_unlock(&ds->lock);
        g_message("event=%s domain=%s", pause ? "suspended" : "resumed", d->def->name);
        dom_emit(d, pause ? SP_LV_EVENT_SUSPENDED : SP_LV_EVENT_RESUMED,
                 pause ? SP_LV_SUSPENDED_PAUSED : SP_LV_RESUMED_UNPAUSED);
    }
    dom_job_end(d);
    return ok;
}

bool sp_domains_suspend(SpDomains *ds, SpDomain *d, GError **error)
{
    return dom_pause(ds, d, true, error);
}

bool sp_domains_resume(SpDomains *ds, SpDomain *d, GError **error)
{
    return dom_pause(ds, d, false, error);
}

/* --- tasks (ds->tasks) --- */

void dom_autostart_task(SpDomains *ds, SpDomain *d)
{
    DomTask *t = g_new0(DomTask, 1);
    t->kind = DOM_TASK_AUTOSTART;
    t->d = dom_ref(d);
    g_thread_pool_push(ds->tasks, t, NULL);
}

static void task_ended(SpDomains *ds, SpDomain *d, SpVm *vm)
{
    dom_job_begin(d, "the end of its VM", -1, NULL);
    g_mutex_lock(&ds->lock);
    bool current = d->vm == vm; /* else a job holder already handled it */
    g_mutex_unlock(&ds->lock);
    if (current)
        dom_finish(ds, d, END_ITSELF);
    dom_job_end(d);
}

static void task_autostart(SpDomains *ds, SpDomain *d)
{
    g_autoptr(GError) err = NULL;
    if (!dom_job_begin(d, "autostart", JOB_WAIT_S, &err)) {
        g_warning("event=autostart-failed domain=%s error=\"%s\"", d->def->name, err->message);
        return;
    }
    g_mutex_lock(&ds->lock);
    bool go = d->listed && d->autostart && !d->vm;
    gint32 id = go ? ds->next_id++ : -1;
    g_mutex_unlock(&ds->lock);
    bool ok = go && dom_boot(ds, d, id, &err);
    if (ok) {
        g_message("event=autostarted domain=%s id=%d", sp_vm_name(d->vm), id);
        dom_emit(d, SP_LV_EVENT_STARTED, SP_LV_STARTED_BOOTED);
    }
    dom_job_end(d);
}

void dom_task_run(gpointer task, gpointer opaque)
{
    DomTask *t = task;
    SpDomains *ds = opaque;
    if (t->kind == DOM_TASK_ENDED)
        task_ended(ds, t->d, t->vm);
    else if (t->kind == DOM_TASK_REHOME)
        dom_rehome_task(ds);
    else
        task_autostart(ds, t->d);
    sp_domain_unref(t->d);
    g_free(t);
}
