/* SPDX-License-Identifier: MIT */
/* domains.c - samepaged's domain registry (see domains.h). */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "sharing/engine.h"
#include "vmm/daemon/domains-priv.h"

#define DOM_ERROR(error, code, ...) g_set_error(error, SP_LV_ERROR, code, __VA_ARGS__)

char *dom_path(SpDomains *ds, const char *sub, const char *name, const char *ext)
{
    g_autofree char *file = g_strconcat(name, ext, NULL);
    return g_build_filename(ds->state_dir, sub, file, NULL);
}

SpDomain *domain_new(SpDomains *ds, SpDomXml *def, bool persistent)
{
    SpDomain *d = g_new0(SpDomain, 1);
    d->def = def;
    d->persistent = persistent;
    d->id = -1;
    d->state = SP_LV_DOMAIN_SHUTOFF;
    d->reason = SHUTOFF_UNKNOWN;
    d->owner = ds;
    return d;
}

void domain_free(SpDomain *d)
{
    if (!d)
        return;
    if (d->vm) {
        sp_vm_request_stop(d->vm);
        sp_vm_free(d->vm);
    }

    dom_family_unref(d->family);
    sp_domxml_free(d->def);
    g_free(d);
}

SpVmConfig *sp_domain_vm_config(const SpDomXml *def, GError **error)
{
    g_autoptr(SpVmConfig) cfg = sp_vm_config_new();
    cfg->name = g_strdup(def->name);
    uint64_t bytes = def->memory_kib * 1024;
    if (def->sp_payload) /* payload VMs use 2 MiB pages */
        bytes = (bytes + (2 << 20) - 1) & ~((uint64_t)(2 << 20) - 1);
    cfg->mem_size = bytes;
    cfg->vcpus = def->vcpus;
    if (def->sp_payload) {
        cfg->payload = sp_payload_find(def->sp_payload, error);
        if (!cfg->payload)
            return NULL;
    }
    cfg->args = g_strdup(def->sp_args);
    cfg->kernel = g_strdup(def->kernel);
    cfg->initrd = g_strdup(def->initrd);
    cfg->cmdline = g_strdup(def->cmdline);
    cfg->domain = g_strdup(def->sp_domain);
    if (def->sp_share) {
        if (!g_ascii_strcasecmp(def->sp_share, "no") || !g_ascii_strcasecmp(def->sp_share, "off"))
            cfg->no_share = true;
        else if (g_ascii_strcasecmp(def->sp_share, "yes") &&
                 g_ascii_strcasecmp(def->sp_share, "on")) {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_XML_ERROR,
                        "<sp:share> must be yes or no, not '%s'", def->sp_share);
            return NULL;
        }
    }
    /* 4096 stands for "whatever KVM allows": the real limit is checked at start. */
    if (!sp_vm_config_validate(cfg, 4096, error))
        return NULL;
    return g_steal_pointer(&cfg);
}

static bool dom_write_definition(SpDomains *ds, SpDomain *d, GError **error)
{
    g_autofree char *xml = sp_domxml_format(d->def, -1);
    g_autofree char *path = dom_path(ds, "domains", d->def->name, ".xml");
    if (!g_file_set_contents_full(path, xml, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error)) {
        g_prefix_error(error, "cannot save the definition of '%s': ", d->def->name);
        return false;
    }
    return true;
}

/* The running domain's definition, for a restarted samepaged (run/NAME.xml). */
void dom_write_run_file(SpDomains *ds, SpDomain *d)
{
    g_autofree char *xml = sp_domxml_format(d->def, d->id);
    g_autofree char *path = dom_path(ds, "run", d->def->name, ".xml");
    g_autoptr(GError) err = NULL;
    if (!g_file_set_contents_full(path, xml, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &err))
        g_warning("event=run-file-failed domain=%s error=\"%s\" (a restart would not find it)",
                  d->def->name, err->message);
}

static void dom_remove_run_file(SpDomains *ds, const char *name)
{
    g_autofree char *path = dom_path(ds, "run", name, ".xml");
    g_unlink(path);
}

static char *dom_socket_path(SpDomains *ds, const char *name)
{
    g_autofree char *file = g_strconcat(name, ".sock", NULL);
    return g_build_filename(ds->runtime_dir, "vms", file, NULL);
}

static SpVmEvents dom_events(SpDomain *d)
{
    return (SpVmEvents){
        .console = dom_console, .integrity = dom_integrity, .ended = dom_ended, .opaque = d};
}

/* Start-up: the VM of run file `name` (its definition `def`, taken) is
 * re-attached if its process still runs, else reported lost. */
static void dom_reattach(SpDomains *ds, const char *name, SpDomXml *run_def, bool *all_ok)
{
    SpDomain *d = sp_domains_find_name(ds, name);
    if (!d) { /* a transient domain: the run file is its only definition */
        d = domain_new(ds, g_steal_pointer(&run_def), false);
        g_ptr_array_add(ds->list, d);
    }
    g_autofree char *sock = dom_socket_path(ds, name);
    g_autoptr(GError) err = NULL;
    g_autoptr(SpVmConfig) cfg = sp_domain_vm_config(d->def, &err);
    SpVmEvents ev = dom_events(d);
    SpVm *vm = NULL;
    if (cfg && g_file_test(sock, G_FILE_TEST_EXISTS))
        vm = sp_vm_attach(ds->host, sock, cfg, &ev, &err);
    sp_domxml_free(run_def);
    if (!vm) {
        if (g_file_test(sock, G_FILE_TEST_EXISTS))
            *all_ok = false; /* a live VM process may still map frames */
        d->state = SP_LV_DOMAIN_SHUTOFF;
        d->reason = SHUTOFF_CRASHED;
        g_warning("event=lost-on-restart domain=%s (it was running when samepaged stopped and "
                  "its VM process is gone: %s; now shut off, reason crashed)",
                  name, err ? err->message : "no socket");
        dom_remove_run_file(ds, name);
        g_unlink(sock);
        if (!d->persistent)
            g_ptr_array_remove(ds->list, d);
        return;
    }
    d->vm = vm;
    d->id = sp_vm_lv_id(vm) > 0 ? sp_vm_lv_id(vm) : ds->next_id++;
    ds->next_id = MAX(ds->next_id, d->id + 1);
    ds->next_vm_id = MAX(ds->next_vm_id, sp_vm_id(vm) + 1);
    d->state = SP_LV_DOMAIN_RUNNING;
    d->reason = RUNNING_BOOTED;
    if (ds->engine)
        sp_vm_set_engine(vm, ds->engine, 0, 0);
    if (!sp_vm_engine_attach(vm, &err))
        g_warning("event=reattach-engine-failed domain=%s error=\"%s\"", name, err->message);
    g_message("event=reattached domain=%s id=%d pid=%d", name, d->id, (int)sp_vm_pid(vm));
}

SpDomains *sp_domains_new(SpVmHost *host, struct SpEngine *engine, const char *state_dir,
                          GMainContext *ctx, GError **error)
{
    const char *subs[] = {"domains", "run", "console"};
    for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
        g_autofree char *dir = g_build_filename(state_dir, subs[i], NULL);
        if (g_mkdir_with_parents(dir, 0700) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot create %s: %s",
                        dir, g_strerror(errno));
            return NULL;
        }
    }
    g_autofree char *vms_dir = g_build_filename(host->runtime_dir, "vms", NULL);
    if (g_mkdir_with_parents(vms_dir, 0700) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot create %s: %s",
                    vms_dir, g_strerror(errno));
        return NULL;
    }
    SpDomains *ds = g_new0(SpDomains, 1);
    ds->host = host;
    ds->engine = engine;
    ds->runtime_dir = g_strdup(host->runtime_dir);
    ds->state_dir = g_strdup(state_dir);
    ds->list = g_ptr_array_new_with_free_func((GDestroyNotify)domain_free);
    ds->next_id = 1;
    ds->next_vm_id = 1;
    ds->clone_max = SP_VM_CLONE_MAX;
    ds->ctx = ctx;

    /* Load the stored definitions. */
    g_autofree char *ddir = g_build_filename(state_dir, "domains", NULL);
    g_autoptr(GDir) dir = g_dir_open(ddir, 0, NULL);
    const char *f;
    while (dir && (f = g_dir_read_name(dir))) {
        if (!g_str_has_suffix(f, ".xml"))
            continue;
        g_autofree char *path = g_build_filename(ddir, f, NULL);
        g_autofree char *xml = NULL;
        g_autoptr(GError) err = NULL;
        SpDomXml *def = NULL;
        if (!g_file_get_contents(path, &xml, NULL, &err) || !(def = sp_domxml_parse(xml, &err))) {
            g_warning("event=load-failed file=%s error=\"%s\" (definition ignored, file kept)",
                      path, err->message);
            continue;
        }
        g_ptr_array_add(ds->list, domain_new(ds, def, true));
        g_message("event=loaded domain=%s", def->name);
    }
    /* The VMs that were running: re-attach, or report them lost. */
    bool all_ok = true;
    g_autofree char *rdir = g_build_filename(state_dir, "run", NULL);
    g_autoptr(GDir) run = g_dir_open(rdir, 0, NULL);
    while (run && (f = g_dir_read_name(run))) {
        g_autofree char *path = g_build_filename(rdir, f, NULL);
        g_autofree char *xml = NULL;
        g_autoptr(GError) err = NULL;
        SpDomXml *def = NULL;
        if (!g_str_has_suffix(f, ".xml") || !g_file_get_contents(path, &xml, NULL, &err) ||
            !(def = sp_domxml_parse(xml, &err))) {
            g_warning("event=lost-on-restart file=%s (not a run file samepaged can read)", f);
            g_unlink(path);
            continue;
        }
        g_autofree char *name = g_strdup(def->name);
        dom_reattach(ds, name, def, &all_ok);
    }
    if (engine)
        sp_engine_reattach_done(engine, all_ok);
    return ds;
}

void sp_domains_free(SpDomains *ds)
{
    if (!ds)
        return;
    /* The VMs go on; the next samepaged re-attaches them. */
    for (guint i = 0; i < ds->list->len; i++) {
        SpDomain *d = ds->list->pdata[i];
        if (d->vm) {
            sp_vm_release(d->vm);
            d->vm = NULL;
        }
    }
    g_ptr_array_free(ds->list, TRUE);
    g_free(ds->state_dir);
    g_free(ds->runtime_dir);
    g_free(ds);
}

SpDomain *sp_domains_find_uuid(SpDomains *ds, const guint8 uuid[16])
{
    for (guint i = 0; i < ds->list->len; i++) {
        SpDomain *d = ds->list->pdata[i];
        if (!memcmp(d->def->uuid, uuid, 16))
            return d;
    }
    return NULL;
}

SpDomain *sp_domains_find_name(SpDomains *ds, const char *name)
{
    for (guint i = 0; i < ds->list->len; i++) {
        SpDomain *d = ds->list->pdata[i];
        if (!strcmp(d->def->name, name))
            return d;
    }
    return NULL;
}

SpDomain *sp_domains_define(SpDomains *ds, const char *xml, bool persistent, GError **error)
{
    g_autoptr(GError) perr = NULL;
    g_autoptr(SpDomXml) def = sp_domxml_parse(xml, &perr);
    if (!def) {
        DOM_ERROR(error, SP_LV_ERR_XML_ERROR, "%s", perr->message);
        return NULL;
    }
    if (!def->has_uuid) {
        /* A random UUID (v4). */
        for (int i = 0; i < 16; i++)
            def->uuid[i] = (guint8)g_random_int_range(0, 256);
        def->uuid[6] = (def->uuid[6] & 0x0f) | 0x40;
        def->uuid[8] = (def->uuid[8] & 0x3f) | 0x80;
        def->has_uuid = true;
    }
    g_autoptr(SpVmConfig) cfg = sp_domain_vm_config(def, &perr);
    if (!cfg) {
        DOM_ERROR(error, SP_LV_ERR_XML_ERROR, "%s", perr->message);
        return NULL;
    }
    SpDomain *by_name = sp_domains_find_name(ds, def->name);
    SpDomain *by_uuid = sp_domains_find_uuid(ds, def->uuid);
    if (by_name && by_name != by_uuid) {
        DOM_ERROR(error, SP_LV_ERR_DOM_EXIST, "domain '%s' already exists with another UUID",
                  def->name);
        return NULL;
    }
    if (by_uuid && by_uuid != by_name) {
        DOM_ERROR(error, SP_LV_ERR_DOM_EXIST, "a domain with this UUID already exists as '%s'",
                  by_uuid->def->name);
        return NULL;
    }
    if (by_name) {
        /* Redefinition: the new definition applies from the next start. */
        if (by_name->vm && !persistent) {
            DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is already running",
                      def->name);
            return NULL;
        }
        sp_domxml_free(by_name->def);
        by_name->def = g_steal_pointer(&def);
        by_name->persistent |= persistent;
        if (persistent && !dom_write_definition(ds, by_name, error))
            return NULL;
        g_message("event=redefined domain=%s", by_name->def->name);
        return by_name;
    }
    SpDomain *d = domain_new(ds, g_steal_pointer(&def), persistent);
    if (persistent && !dom_write_definition(ds, d, error)) {
        domain_free(d);
        return NULL;
    }
    g_ptr_array_add(ds->list, d);
    g_message("event=defined domain=%s persistent=%d", d->def->name, persistent);
    return d;
}

bool sp_domains_undefine(SpDomains *ds, SpDomain *d, GError **error)
{
    if (!d->persistent) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "cannot undefine transient domain '%s'",
                  d->def->name);
        return false;
    }
    g_autofree char *path = dom_path(ds, "domains", d->def->name, ".xml");
    if (g_unlink(path) < 0 && errno != ENOENT) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "cannot remove %s: %s", path,
                  g_strerror(errno));
        return false;
    }
    g_message("event=undefined domain=%s", d->def->name);
    if (d->vm) {
        d->persistent = false; /* it lives on as a transient domain until it stops */
        return true;
    }
    g_ptr_array_remove(ds->list, d);
    return true;
}

/* --- running --- */

/* The VM process writes its own console log; nothing to do here. */
void dom_console(SpVm *vm, const char *line, void *opaque)
{
    (void)vm;
    (void)line;
    (void)opaque;
}

void dom_integrity(SpVm *vm, uint64_t gpa, uint64_t expected, uint64_t found, void *opaque)
{
    SpDomain *d = opaque;
    g_autofree char *cpath = dom_path(d->owner, "console", d->def->name, ".log");
    FILE *f = fopen(cpath, "a");
    if (f) {
        fprintf(f, "samepage: INTEGRITY ERROR reported by the guest\n");
        fclose(f);
    }
    g_warning("event=integrity-error domain=%s gpa=0x%" G_GINT64_MODIFIER "x", sp_vm_name(vm), gpa);
}

typedef struct EndedMsg {
    SpDomains *ds;
    SpVm *vm;
} EndedMsg;

/* On the main thread: a VM left RUNNING.  Its domain may be gone already
 * if it was undefined or destroyed meanwhile (then vm no longer matches). */
static gboolean dom_ended_main(gpointer opaque)
{
    EndedMsg *m = opaque;
    for (guint i = 0; i < m->ds->list->len; i++) {
        SpDomain *d = m->ds->list->pdata[i];
        if (d->vm != m->vm)
            continue;
        SpVmInfo info;
        sp_vm_get_info(d->vm, &info);
        g_autofree char *reason = sp_vm_get_reason(d->vm);
        sp_vm_wait(d->vm);
        d->cpu_ns_last = sp_vm_cpu_time_ns(d->vm);
        if (info.state == SP_VM_CRASHED && sp_vm_process_died(d->vm)) {
            /* libvirt's report of an emulator process that died */
            d->state = SP_LV_DOMAIN_SHUTOFF;
            d->reason = SHUTOFF_CRASHED;
            g_warning("event=crashed domain=%s reason=\"%s\"", d->def->name,
                      reason ? reason : "the VM process died");
        } else if (info.state == SP_VM_CRASHED) {
            d->state = SP_LV_DOMAIN_CRASHED;
            d->reason = CRASHED_UNKNOWN;
            g_warning("event=crashed domain=%s reason=\"%s\"", d->def->name,
                      reason ? strtok(reason, "\n") : "unknown");
        } else {
            d->state = SP_LV_DOMAIN_SHUTOFF;
            d->reason = info.state == SP_VM_EXITED ? SHUTOFF_SHUTDOWN : SHUTOFF_DESTROYED;
            g_message("event=stopped domain=%s state=%s status=%d", d->def->name,
                      sp_vm_state_name(info.state), info.exit_status);
        }
        sp_vm_free(d->vm);
        d->vm = NULL;
        d->id = -1;
        dom_remove_run_file(m->ds, d->def->name);
        if (!d->persistent)
            g_ptr_array_remove(m->ds->list, d);
        break;
    }
    g_free(m);
    return G_SOURCE_REMOVE;
}

void dom_ended(SpVm *vm, SpVmState state, void *opaque)
{
    SpDomain *d = opaque;
    EndedMsg *m = g_new0(EndedMsg, 1);
    m->ds = d->owner;
    m->vm = vm;
    /* Always through an idle source, never synchronously: the caller may be
     * the main thread itself, inside sp_vm_request_stop(). */
    GSource *src = g_idle_source_new();
    g_source_set_callback(src, dom_ended_main, m, NULL);
    g_source_attach(src, d->owner->ctx);
    g_source_unref(src);
}

bool sp_domains_start(SpDomains *ds, SpDomain *d, GError **error)
{
    if (d->vm) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is already running",
                  d->def->name);
        return false;
    }
    g_autoptr(GError) err = NULL;
    g_autoptr(SpVmConfig) cfg = sp_domain_vm_config(d->def, &err);
    if (!cfg) {
        DOM_ERROR(error, SP_LV_ERR_CONFIG_UNSUPPORTED, "%s", err->message);
        return false;
    }
    g_autofree char *cpath = dom_path(ds, "console", d->def->name, ".log");
    int console = open(cpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    SpVmEvents ev = dom_events(d);
    gint32 id = ds->next_id++;
    SpVm *vm =
        sp_vm_new_full(ds->host, cfg, ds->next_vm_id++, id, d->def->uuid, console, &ev, &err);
    if (console >= 0)
        close(console);
    if (!vm) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "%s", err->message);
        d->state = SP_LV_DOMAIN_SHUTOFF;
        d->reason = SHUTOFF_FAILED;
        return false;
    }
    if (ds->engine)
        sp_vm_set_engine(vm, ds->engine, 0, 0);
    d->vm = vm;
    d->id = id;
    d->state = SP_LV_DOMAIN_RUNNING;
    d->reason = RUNNING_BOOTED;
    dom_write_run_file(ds, d);
    if (!sp_vm_start(vm, &err)) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "%s", err->message);
        return false; /* the ended event cleans up */
    }
    g_message("event=started domain=%s id=%d pid=%d mem_mib=%" G_GUINT64_FORMAT " vcpus=%u",
              d->def->name, d->id, (int)sp_vm_pid(vm), cfg->mem_size >> 20, cfg->vcpus);
    return true;
}

bool sp_domains_destroy(SpDomains *ds, SpDomain *d, GError **error)
{
    if (!d->vm) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is not running", d->def->name);
        return false;
    }
    SpVm *vm = d->vm;
    sp_vm_request_stop(vm);
    sp_vm_wait(vm);
    /* Finish now rather than when the posted event runs, so that the caller
     * sees the domain shut off; the event then finds no matching VM. */
    EndedMsg *m = g_new0(EndedMsg, 1);
    m->ds = ds;
    m->vm = vm;
    dom_ended_main(m);
    return true;
}

void sp_domains_stop_all(SpDomains *ds)
{
    for (guint i = 0; i < ds->list->len; i++) {
        SpDomain *d = ds->list->pdata[i];
        if (d->vm)
            sp_vm_request_stop(d->vm);
    }
    for (guint i = ds->list->len; i-- > 0;) {
        SpDomain *d = ds->list->pdata[i];
        if (d->vm)
            sp_domains_destroy(ds, d, NULL);
    }
}

guint sp_domains_running(SpDomains *ds)
{
    guint n = 0;
    for (guint i = 0; i < ds->list->len; i++)
        n += ((SpDomain *)ds->list->pdata[i])->vm != NULL;
    return n;
}

void sp_domain_fill_info(SpDomain *d, SpLvDomainInfo *out)
{
    memset(out, 0, sizeof(*out));
    out->name = g_strdup(d->def->name);
    memcpy(out->uuid, d->def->uuid, 16);
    out->id = d->id;
    out->state = d->state;
    out->reason = d->reason;
    out->max_mem_kib = d->def->memory_kib;
    out->cur_mem_kib = d->def->current_memory_kib ? d->def->current_memory_kib : d->def->memory_kib;
    out->vcpus = d->def->vcpus;
    out->cpu_time_ns = d->vm ? sp_vm_cpu_time_ns(d->vm) : d->cpu_ns_last;
    out->persistent = d->persistent;
    out->autostart = false;
}
