/* SPDX-License-Identifier: MIT */
/*
 * domains.c - samepaged's domain registry (see domains.h for the model and
 * its locking): the list and its references, definitions and their files,
 * autostart links, jobs, lookups and infos, and the re-attach at start-up.
 * Running VMs are domains-run.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "sharing/engine.h"
#include "vmm/daemon/domains-priv.h"

char *dom_path(SpDomains *ds, const char *sub, const char *name, const char *ext)
{
    g_autofree char *file = g_strconcat(name, ext, NULL);
    return g_build_filename(ds->state_dir, sub, file, NULL);
}

SpDomain *domain_new(SpDomains *ds, SpDomXml *def, bool persistent)
{
    SpDomain *d = g_new0(SpDomain, 1);
    d->refs = 1;
    d->def = def;
    d->persistent = persistent;
    d->id = -1;
    d->state = SP_LV_DOMAIN_SHUTOFF;
    d->reason = SHUTOFF_UNKNOWN;
    d->owner = ds;
    return d;
}

SpDomain *dom_ref(SpDomain *d)
{
    g_atomic_int_inc(&d->refs);
    return d;
}

void sp_domain_unref(SpDomain *d)
{
    if (!d || !g_atomic_int_dec_and_test(&d->refs))
        return;
    if (d->vm) { /* only a domain that never joined the list still has one here */
        sp_vm_request_stop(d->vm);
        sp_vm_free(d->vm);
    }
    dom_family_unref(d->family);
    sp_domxml_free(d->def);
    g_free(d);
}

void dom_list_add(SpDomains *ds, SpDomain *d)
{
    g_ptr_array_add(ds->list, dom_ref(d));
    d->listed = true;
}

void dom_list_remove(SpDomains *ds, SpDomain *d)
{
    if (!d->listed)
        return;
    d->listed = false;
    g_ptr_array_remove(ds->list, d); /* drops the list's reference */
}

/* Lock held: the listed domain with this name (or, name NULL, UUID). */
static SpDomain *find_locked(SpDomains *ds, const char *name, const guint8 *uuid)
{
    for (guint i = 0; i < ds->list->len; i++) {
        SpDomain *d = ds->list->pdata[i];
        if (name ? !strcmp(d->def->name, name) : !memcmp(d->def->uuid, uuid, 16))
            return d;
    }
    return NULL;
}

static SpDomain *find_name_locked(SpDomains *ds, const char *name)
{
    return find_locked(ds, name, NULL);
}

static SpDomain *find_uuid_locked(SpDomains *ds, const guint8 uuid[16])
{
    return find_locked(ds, NULL, uuid);
}

bool dom_name_taken(SpDomains *ds, const char *name)
{
    return find_name_locked(ds, name) || g_hash_table_contains(ds->reserved, name);
}

/* A reference to what find_locked gives. */
static SpDomain *get_ref(SpDomains *ds, const char *name, const guint8 *uuid)
{
    g_mutex_lock(&ds->lock);
    SpDomain *d = find_locked(ds, name, uuid);
    if (d)
        dom_ref(d);
    g_mutex_unlock(&ds->lock);
    return d;
}

SpDomain *sp_domains_get_uuid(SpDomains *ds, const guint8 uuid[16])
{
    return get_ref(ds, NULL, uuid);
}

SpDomain *sp_domains_get_name(SpDomains *ds, const char *name)
{
    return get_ref(ds, name, NULL);
}

void dom_mem_limit_applies(SpDomains *ds, SpVmConfig *cfg)
{
    if (!cfg || !cfg->mem_limit || (ds->engine && sp_engine_swap_enabled(ds->engine)))
        return;
    g_warning("event=mem-limit-not-kept domain=%s hard_limit_kib=%" G_GUINT64_FORMAT
              " (samepaged runs without swap: start it with --swap to keep <memtune><hard_limit>)",
              cfg->name, cfg->mem_limit >> 10);
    cfg->mem_limit = 0;
}

SpVmConfig *sp_domain_vm_config(const SpDomXml *def, GError **error)
{
    g_autoptr(SpVmConfig) cfg = sp_vm_config_new();
    cfg->name = g_strdup(def->name);
    uint64_t bytes = def->memory_kib * 1024;
    if (def->sp_payload) /* payload VMs use 2 MiB pages */
        bytes = (bytes + (2 << 20) - 1) & ~((uint64_t)(2 << 20) - 1);
    cfg->mem_size = bytes;
    cfg->vcpus = sp_domxml_vcpus_running(def);
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
    cfg->no_share = def->nosharepages; /* libvirt's own opt-out of KSM */
    /* <memtune><hard_limit>: its swap limit (docs/swap.md) */
    if (def->memtune_hard_limit_kib && def->memtune_hard_limit_kib < SP_LV_MEMORY_PARAM_UNLIMITED)
        cfg->mem_limit = def->memtune_hard_limit_kib * 1024;
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
    /* <numatune><memory mode nodeset>: the VM's memory policy (docs/numa.md);
     * placement='auto' without a nodeset (numad's) leaves the kernel's. */
    if (def->has_numatune && def->numa_nodeset) {
        const char *mode = def->numa_mode ? def->numa_mode : "strict"; /* libvirt's default */
        if (!strcmp(mode, "restrictive")) {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_CONFIG_UNSUPPORTED,
                        "<numatune><memory mode='restrictive'> is not supported (it needs "
                        "cgroups' cpuset.mems): use strict, preferred or interleave");
            return NULL;
        }
        g_autoptr(GError) err = NULL;
        if (!sp_numa_mode_parse(mode, &cfg->numa_mode, &err)) {
            g_set_error(error, SP_LV_ERROR, SP_LV_ERR_XML_ERROR, "<numatune>: %s", err->message);
            return NULL;
        }
        cfg->numa_nodes = g_strdup(def->numa_nodeset);
    }
    /* 4096 stands for "whatever KVM allows": the real limit is checked at start. */
    if (!sp_vm_config_validate(cfg, 4096, error))
        return NULL;
    return g_steal_pointer(&cfg);
}

/* --- files --- */

bool dom_write_definition(SpDomains *ds, SpDomain *d, GError **error)
{
    g_autofree char *xml = sp_domxml_format(d->def, -1);
    g_autofree char *path = dom_path(ds, "domains", d->def->name, ".xml");
    if (!g_file_set_contents_full(path, xml, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error)) {
        g_prefix_error(error, "cannot save the definition of '%s': ", d->def->name);
        return false;
    }
    return true;
}

void dom_write_run_file(SpDomains *ds, SpDomain *d)
{
    g_autofree char *xml = sp_domxml_format(d->def, d->id);
    g_autofree char *path = dom_path(ds, "run", d->def->name, ".xml");
    g_autoptr(GError) err = NULL;
    if (!g_file_set_contents_full(path, xml, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &err))
        g_warning("event=run-file-failed domain=%s error=\"%s\" (a restart would not find it)",
                  d->def->name, err->message);
}

void dom_remove_run_file(SpDomains *ds, const char *name)
{
    g_autofree char *path = dom_path(ds, "run", name, ".xml");
    g_unlink(path);
}

/* autostart/NAME.xml -> ../domains/NAME.xml, as libvirt keeps it. */
static bool dom_autostart_link(SpDomains *ds, const char *name, bool on, GError **error)
{
    g_autofree char *link = dom_path(ds, "autostart", name, ".xml");
    g_autofree char *target = g_strconcat("../domains/", name, ".xml", NULL);
    g_unlink(link);
    if (on && symlink(target, link) < 0) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "cannot create %s: %s", link,
                  g_strerror(errno));
        return false;
    }
    return true;
}

static char *dom_socket_path(SpDomains *ds, const char *name)
{
    g_autofree char *file = g_strconcat(name, ".sock", NULL);
    return g_build_filename(ds->runtime_dir, "vms", file, NULL);
}

/* --- jobs and VM uses --- */

bool dom_job_begin(SpDomain *d, const char *api, double wait_s, GError **error)
{
    SpDomains *ds = d->owner;
    gint64 deadline = g_get_monotonic_time() + (gint64)(wait_s * G_USEC_PER_SEC);
    g_mutex_lock(&ds->lock);
    while (d->job) {
        if (wait_s < 0) {
            g_cond_wait(&ds->cond, &ds->lock);
        } else if (!g_cond_wait_until(&ds->cond, &ds->lock, deadline) && d->job) {
            DOM_ERROR(error, SP_LV_ERR_OPERATION_TIMEOUT,
                      "Timed out during operation: cannot acquire state change lock of domain "
                      "'%s' (held by %s)",
                      d->def->name, d->job);
            g_mutex_unlock(&ds->lock);
            return false;
        }
    }
    d->job = api;
    g_mutex_unlock(&ds->lock);
    return true;
}

void dom_job_end(SpDomain *d)
{
    SpDomains *ds = d->owner;
    g_mutex_lock(&ds->lock);
    d->job = NULL;
    g_cond_broadcast(&ds->cond);
    g_mutex_unlock(&ds->lock);
}

SpVm *dom_take_vm(SpDomain *d)
{
    SpDomains *ds = d->owner;
    g_mutex_lock(&ds->lock);
    SpVm *vm = d->vm;
    d->vm = NULL;
    while (d->vm_users)
        g_cond_wait(&ds->cond, &ds->lock);
    g_mutex_unlock(&ds->lock);
    return vm;
}

SpVm *sp_domain_vm_use(SpDomain *d)
{
    SpDomains *ds = d->owner;
    g_mutex_lock(&ds->lock);
    SpVm *vm = d->vm;
    if (vm)
        d->vm_users++;
    g_mutex_unlock(&ds->lock);
    return vm;
}

void sp_domain_vm_done(SpDomain *d)
{
    SpDomains *ds = d->owner;
    g_mutex_lock(&ds->lock);
    d->vm_users--;
    g_cond_broadcast(&ds->cond);
    g_mutex_unlock(&ds->lock);
}

/* --- start-up --- */

/* The VM of run file `name` (its definition `run_def`, taken) is
 * re-attached if its process still runs, else reported lost.  Start-up is
 * single-threaded: no job, the lock only for form. */
static void dom_reattach(SpDomains *ds, const char *name, SpDomXml *run_def, bool *all_ok)
{
    SpDomain *d = find_name_locked(ds, name);
    g_autoptr(SpDomain) made = NULL;
    if (!d) { /* a transient domain: the run file is its only definition */
        made = domain_new(ds, g_steal_pointer(&run_def), false);
        d = made;
        dom_list_add(ds, d);
    }
    g_autofree char *sock = dom_socket_path(ds, name);
    g_autoptr(GError) err = NULL;
    g_autoptr(SpVmConfig) cfg = sp_domain_vm_config(d->def, &err);
    dom_mem_limit_applies(ds, cfg);
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
            dom_list_remove(ds, d);
        return;
    }
    d->vm = vm;
    d->id = sp_vm_lv_id(vm) > 0 ? sp_vm_lv_id(vm) : ds->next_id++;
    ds->next_id = MAX(ds->next_id, d->id + 1);
    ds->next_vm_id = MAX(ds->next_vm_id, sp_vm_id(vm) + 1);
    bool paused = sp_vm_suspended(vm);
    d->state = paused ? SP_LV_DOMAIN_PAUSED : SP_LV_DOMAIN_RUNNING;
    d->reason = paused ? PAUSED_USER : RUNNING_BOOTED;
    if (ds->engine)
        sp_vm_set_engine(vm, ds->engine, 0, 0);
    if (!sp_vm_engine_attach(vm, &err))
        g_warning("event=reattach-engine-failed domain=%s error=\"%s\"", name, err->message);
    g_message("event=reattached domain=%s id=%d pid=%d%s", name, d->id, (int)sp_vm_pid(vm),
              paused ? " state=paused" : "");
}

/* Calls fn for every file of <state-dir>/SUB: with its definition (taken),
 * or with NULL and why it cannot be read. */
typedef void (*LoadFn)(SpDomains *ds, const char *path, SpDomXml *def, const char *why,
                       void *opaque);
static void load_dir(SpDomains *ds, const char *sub, LoadFn fn, void *opaque)
{
    g_autofree char *dpath = g_build_filename(ds->state_dir, sub, NULL);
    g_autoptr(GDir) dir = g_dir_open(dpath, 0, NULL);
    const char *f;
    while (dir && (f = g_dir_read_name(dir))) {
        g_autofree char *path = g_build_filename(dpath, f, NULL);
        g_autofree char *xml = NULL;
        g_autoptr(GError) err = NULL;
        SpDomXml *def = NULL;
        if (!g_str_has_suffix(f, ".xml"))
            fn(ds, path, NULL, "not a .xml file", opaque);
        else if (!g_file_get_contents(path, &xml, NULL, &err) ||
                 !(def = sp_domxml_parse(xml, &err)))
            fn(ds, path, NULL, err->message, opaque);
        else
            fn(ds, path, def, NULL, opaque);
    }
}

static void load_definition(SpDomains *ds, const char *path, SpDomXml *def, const char *why,
                            void *opaque)
{
    if (!def) {
        if (g_str_has_suffix(path, ".xml"))
            g_warning("event=load-failed file=%s error=\"%s\" (definition ignored, file kept)",
                      path, why);
        return;
    }
    SpDomain *d = domain_new(ds, def, true);
    g_autofree char *link = dom_path(ds, "autostart", def->name, ".xml");
    d->autostart = g_file_test(link, G_FILE_TEST_EXISTS);
    dom_list_add(ds, d);
    g_message("event=loaded domain=%s%s", def->name, d->autostart ? " autostart=1" : "");
    sp_domain_unref(d);
}

static void load_run_file(SpDomains *ds, const char *path, SpDomXml *def, const char *why,
                          void *all_ok)
{
    if (!def) {
        g_warning("event=lost-on-restart file=%s (not a run file samepaged can read: %s)", path,
                  why);
        g_unlink(path);
        return;
    }
    g_autofree char *name = g_strdup(def->name);
    dom_reattach(ds, name, def, all_ok);
}

SpDomains *sp_domains_new(SpVmHost *host, struct SpEngine *engine, const char *state_dir,
                          GError **error)
{
    g_autofree char *vms_dir = g_build_filename(host->runtime_dir, "vms", NULL);
    g_autofree char *d1 = g_build_filename(state_dir, "domains", NULL);
    g_autofree char *d2 = g_build_filename(state_dir, "run", NULL);
    g_autofree char *d3 = g_build_filename(state_dir, "console", NULL);
    g_autofree char *d4 = g_build_filename(state_dir, "autostart", NULL);
    const char *dirs[] = {d1, d2, d3, d4, vms_dir};
    for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
        if (g_mkdir_with_parents(dirs[i], 0700) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot create %s: %s",
                        dirs[i], g_strerror(errno));
            return NULL;
        }
    }
    SpDomains *ds = g_new0(SpDomains, 1);
    g_mutex_init(&ds->lock);
    g_cond_init(&ds->cond);
    ds->host = host;
    ds->engine = engine;
    ds->runtime_dir = g_strdup(host->runtime_dir);
    ds->state_dir = g_strdup(state_dir);
    ds->list = g_ptr_array_new_with_free_func((GDestroyNotify)sp_domain_unref);
    ds->reserved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ds->next_id = 1;
    ds->next_vm_id = 1;
    ds->clone_max = SP_VM_CLONE_MAX;
    ds->tasks = g_thread_pool_new(dom_task_run, ds, 4, FALSE, NULL);

    g_mutex_lock(&ds->lock);
    load_dir(ds, "domains", load_definition, NULL);
    /* The VMs that were running: re-attach, or report them lost. */
    bool all_ok = true;
    load_dir(ds, "run", load_run_file, &all_ok);
    g_mutex_unlock(&ds->lock);
    if (engine)
        sp_engine_reattach_done(engine, all_ok);
    return ds;
}

void sp_domains_free(SpDomains *ds)
{
    if (!ds)
        return;
    g_thread_pool_free(ds->tasks, FALSE, TRUE);
    /* The VMs go on; the next samepaged re-attaches them. */
    for (guint i = 0; i < ds->list->len; i++) {
        SpDomain *d = ds->list->pdata[i];
        if (d->vm) {
            sp_vm_release(d->vm);
            d->vm = NULL;
        }
    }
    g_ptr_array_free(ds->list, TRUE);
    g_hash_table_unref(ds->reserved);
    g_free(ds->state_dir);
    g_free(ds->runtime_dir);
    g_mutex_clear(&ds->lock);
    g_cond_clear(&ds->cond);
    g_free(ds);
}

void sp_domains_set_emit(SpDomains *ds, SpDomainsEmit emit, void *opaque)
{
    g_mutex_lock(&ds->lock);
    ds->emit = emit;
    ds->emit_opaque = opaque;
    g_mutex_unlock(&ds->lock);
}

void sp_domains_autostart(SpDomains *ds)
{
    g_mutex_lock(&ds->lock);
    for (guint i = 0; i < ds->list->len; i++) {
        SpDomain *d = ds->list->pdata[i];
        if (d->autostart && !d->vm)
            dom_autostart_task(ds, d);
    }
    g_mutex_unlock(&ds->lock);
}

/* --- queries --- */

void sp_domain_fill_info(SpDomain *d, SpLvDomainInfo *out)
{
    SpDomains *ds = d->owner;
    memset(out, 0, sizeof(*out));
    g_mutex_lock(&ds->lock);
    out->name = g_strdup(d->def->name);
    memcpy(out->uuid, d->def->uuid, 16);
    out->id = d->id;
    out->state = d->state;
    out->reason = d->reason;
    out->max_mem_kib = d->def->memory_kib;
    out->cur_mem_kib = d->def->current_memory_kib ? d->def->current_memory_kib : d->def->memory_kib;
    out->vcpus = sp_domxml_vcpus_running(d->def);
    out->vcpus_max = d->def->vcpus;
    out->cpu_time_ns = d->cpu_ns_last;
    out->persistent = d->persistent;
    out->autostart = d->autostart;
    /* /proc, not a request: answers while the VM process is busy (d->vm
     * cannot be freed while the lock is held) */
    if (d->vm) {
        g_autoptr(GArray) vcpus = g_array_new(FALSE, FALSE, sizeof(SpVmVcpu));
        if (sp_vm_vcpus(d->vm, vcpus, NULL) && vcpus->len) {
            out->cpu_time_ns = 0;
            for (guint i = 0; i < vcpus->len; i++)
                out->cpu_time_ns += g_array_index(vcpus, SpVmVcpu, i).cpu_ns;
        }
    }
    g_mutex_unlock(&ds->lock);
}

GPtrArray *sp_domains_list_refs(SpDomains *ds)
{
    GPtrArray *doms = g_ptr_array_new_with_free_func((GDestroyNotify)sp_domain_unref);
    g_mutex_lock(&ds->lock);
    for (guint i = 0; i < ds->list->len; i++)
        g_ptr_array_add(doms, dom_ref(ds->list->pdata[i]));
    g_mutex_unlock(&ds->lock);
    return doms;
}

void sp_domains_list_info(SpDomains *ds, GPtrArray *out)
{
    g_autoptr(GPtrArray) doms = sp_domains_list_refs(ds);
    for (guint i = 0; i < doms->len; i++) {
        SpLvDomainInfo *info = g_new0(SpLvDomainInfo, 1);
        sp_domain_fill_info(doms->pdata[i], info);
        g_ptr_array_add(out, info);
    }
}

char *sp_domain_xml(SpDomain *d)
{
    g_mutex_lock(&d->owner->lock);
    char *xml = sp_domxml_format(d->def, d->id);
    g_mutex_unlock(&d->owner->lock);
    return xml;
}

bool sp_domain_has_device(SpDomain *d, bool disk, const char *name)
{
    bool found = false;
    g_mutex_lock(&d->owner->lock);
    GPtrArray *devs = disk ? d->def->disks : d->def->interfaces;
    for (guint i = 0; i < devs->len && !found; i++) {
        const SpDomXmlDevice *v = devs->pdata[i];
        found = !g_strcmp0(v->target, name) || (disk && !g_strcmp0(v->source, name));
    }
    g_mutex_unlock(&d->owner->lock);
    return found;
}

guint32 sp_domain_configured_cpus(SpDomain *d, cpu_set_t *set)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));
    CPU_ZERO(set);
    g_mutex_lock(&d->owner->lock);
    guint32 n = d->def->vcpus;
    bool given =
        d->def->vcpu_cpuset && sp_domxml_cpuset_parse(d->def->vcpu_cpuset, CPU_SETSIZE, ids, NULL);
    g_mutex_unlock(&d->owner->lock);
    if (!given)
        sched_getaffinity(0, sizeof(*set), set);
    for (guint i = 0; i < ids->len; i++)
        CPU_SET(g_array_index(ids, guint, i), set);
    return n;
}

guint sp_domains_running(SpDomains *ds)
{
    guint n = 0;
    g_mutex_lock(&ds->lock);
    for (guint i = 0; i < ds->list->len; i++)
        n += ((SpDomain *)ds->list->pdata[i])->vm != NULL;
    g_mutex_unlock(&ds->lock);
    return n;
}

/* --- definitions --- */

void dom_uuid_random(SpDomXml *def)
{
    for (int i = 0; i < 16; i++)
        def->uuid[i] = (guint8)g_random_int_range(0, 256);
    def->uuid[6] = (def->uuid[6] & 0x0f) | 0x40; /* version 4 */
    def->uuid[8] = (def->uuid[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    def->has_uuid = true;
}

/* Parses xml into a definition the daemon can run, with a UUID. */
static SpDomXml *dom_parse(const char *xml, GError **error)
{
    g_autoptr(GError) perr = NULL;
    g_autoptr(SpDomXml) def = sp_domxml_parse(xml, &perr);
    g_autoptr(SpVmConfig) cfg = def ? sp_domain_vm_config(def, &perr) : NULL;
    if (!cfg) {
        DOM_ERROR(error, SP_LV_ERR_XML_ERROR, "%s", perr->message);
        return NULL;
    }
    if (!def->has_uuid)
        dom_uuid_random(def);
    return g_steal_pointer(&def);
}

/* Lock held: the domain def may take (its own by name and UUID, or none). */
static bool dom_identity_free(SpDomains *ds, const SpDomXml *def, SpDomain **same, GError **error)
{
    SpDomain *by_name = find_name_locked(ds, def->name);
    SpDomain *by_uuid = find_uuid_locked(ds, def->uuid);
    *same = by_name;
    if (by_name && by_name != by_uuid) {
        DOM_ERROR(error, SP_LV_ERR_DOM_EXIST, "domain '%s' already exists with another UUID",
                  def->name);
        return false;
    }
    if (by_uuid && by_uuid != by_name) {
        DOM_ERROR(error, SP_LV_ERR_DOM_EXIST, "a domain with this UUID already exists as '%s'",
                  by_uuid->def->name);
        return false;
    }
    if (!by_name && g_hash_table_contains(ds->reserved, def->name)) {
        DOM_ERROR(error, SP_LV_ERR_DOM_EXIST, "domain '%s' is being created by a clone", def->name);
        return false;
    }
    return true;
}

SpDomain *sp_domains_define(SpDomains *ds, const char *xml, bool persistent, GError **error)
{
    g_autoptr(SpDomXml) def = dom_parse(xml, error);
    if (!def)
        return NULL;
    SpDomain *d = NULL;
    g_mutex_lock(&ds->lock);
    if (!dom_identity_free(ds, def, &d, error))
        goto fail;
    if (d && d->vm && !persistent) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is already running", def->name);
        goto fail;
    }
    bool updated = d != NULL;
    if (d) {
        /* Redefinition: the new definition applies from the next start. */
        SpDomXml *old = d->def;
        d->def = g_steal_pointer(&def);
        if (persistent && !dom_write_definition(ds, d, error)) {
            def = d->def;
            d->def = old;
            goto fail;
        }
        sp_domxml_free(old);
        d->persistent |= persistent;
        dom_ref(d);
    } else {
        d = domain_new(ds, g_steal_pointer(&def), persistent);
        if (persistent && !dom_write_definition(ds, d, error)) {
            sp_domain_unref(d);
            goto fail;
        }
        dom_list_add(ds, d);
    }
    g_mutex_unlock(&ds->lock);
    g_message("event=%s domain=%s persistent=%d", updated ? "redefined" : "defined", d->def->name,
              persistent);
    if (persistent)
        dom_emit(d, SP_LV_EVENT_DEFINED, updated ? SP_LV_DEFINED_UPDATED : SP_LV_DEFINED_ADDED);
    return d;
fail:
    g_mutex_unlock(&ds->lock);
    return NULL;
}

SpDomain *sp_domains_create(SpDomains *ds, const char *xml, GError **error)
{
    g_autoptr(SpDomXml) def = dom_parse(xml, error);
    if (!def)
        return NULL;
    g_mutex_lock(&ds->lock);
    if (dom_name_taken(ds, def->name) || find_uuid_locked(ds, def->uuid)) {
        DOM_ERROR(error, SP_LV_ERR_DOM_EXIST, "domain '%s' already exists", def->name);
        g_mutex_unlock(&ds->lock);
        return NULL;
    }
    SpDomain *d = domain_new(ds, g_steal_pointer(&def), false);
    d->job = "virDomainCreateXML"; /* nobody else acts on it before it runs */
    dom_list_add(ds, d);
    gint32 id = ds->next_id++;
    g_mutex_unlock(&ds->lock);
    bool ok = dom_boot(ds, d, id, error);
    g_mutex_lock(&ds->lock);
    if (!ok)
        dom_list_remove(ds, d);
    g_mutex_unlock(&ds->lock);
    if (ok)
        dom_emit(d, SP_LV_EVENT_STARTED, SP_LV_STARTED_BOOTED);
    dom_job_end(d);
    if (!ok) {
        sp_domain_unref(d);
        return NULL;
    }
    return d;
}

bool sp_domains_undefine(SpDomains *ds, SpDomain *d, GError **error)
{
    if (!dom_job_begin(d, "virDomainUndefine", JOB_WAIT_S, error))
        return false;
    g_mutex_lock(&ds->lock);
    bool ok = false;
    g_autofree char *path = dom_path(ds, "domains", d->def->name, ".xml");
    if (!d->persistent) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "cannot undefine transient domain '%s'",
                  d->def->name);
    } else if (g_unlink(path) < 0 && errno != ENOENT) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "cannot remove %s: %s", path,
                  g_strerror(errno));
    } else {
        ok = true;
        dom_autostart_link(ds, d->def->name, false, NULL);
        d->autostart = false;
        d->persistent = false; /* a running one lives on as a transient domain until it stops */
        if (!d->vm)
            dom_list_remove(ds, d);
        g_message("event=undefined domain=%s", d->def->name);
    }
    g_mutex_unlock(&ds->lock);
    if (ok)
        dom_emit(d, SP_LV_EVENT_UNDEFINED, SP_LV_UNDEFINED_REMOVED);
    dom_job_end(d);
    return ok;
}

bool sp_domains_set_autostart(SpDomains *ds, SpDomain *d, bool on, GError **error)
{
    g_mutex_lock(&ds->lock);
    bool ok = false;
    if (!d->persistent)
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID,
                  "cannot set autostart for transient domain '%s'", d->def->name);
    else if (dom_autostart_link(ds, d->def->name, on, error))
        ok = true;
    if (ok && d->autostart != on)
        g_message("event=autostart domain=%s autostart=%d", d->def->name, on);
    if (ok)
        d->autostart = on;
    g_mutex_unlock(&ds->lock);
    return ok;
}

bool sp_domains_set_mem_limit(SpDomains *ds, SpDomain *d, guint32 flags, guint64 kib,
                              GError **error)
{
    SpVm *vm = sp_domain_vm_use(d);
    bool live = (flags & SP_LV_AFFECT_LIVE) || (!(flags & SP_LV_AFFECT_CONFIG) && vm);
    bool config = (flags & SP_LV_AFFECT_CONFIG) || (!(flags & SP_LV_AFFECT_LIVE) && !vm);
    bool ok = true;
    if (kib && kib * 1024 < SP_VM_MEM_LIMIT_MIN) {
        DOM_ERROR(error, SP_LV_ERR_INVALID_ARG,
                  "invalid argument: hard_limit %" G_GUINT64_FORMAT
                  " KiB is below the %llu MiB a guest needs resident to make progress",
                  kib, SP_VM_MEM_LIMIT_MIN >> 20);
        ok = false;
    } else if (live && !vm) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID, "domain '%s' is not running", d->def->name);
        ok = false;
    } else if (live && !sp_vm_set_mem_limit(vm, kib * 1024, error)) {
        g_prefix_error(error, "domain '%s': ", d->def->name);
        ok = false;
    }
    if (vm)
        sp_domain_vm_done(d);
    if (ok && config) {
        g_mutex_lock(&ds->lock);
        d->def->memtune_hard_limit_kib = kib;
        d->def->has_memtune = d->def->has_memtune || kib;
        ok = !d->persistent || dom_write_definition(ds, d, error);
        g_mutex_unlock(&ds->lock);
    }
    if (ok)
        g_message("event=mem-limit domain=%s hard_limit_kib=%" G_GUINT64_FORMAT
                  " live=%d config=%d",
                  d->def->name, kib, live, config);
    return ok;
}

bool sp_domains_get_mem_limit(SpDomains *ds, SpDomain *d, guint32 flags, guint64 *kib,
                              GError **error)
{
    (void)error;
    SpVm *vm = (flags & SP_LV_AFFECT_CONFIG) ? NULL : sp_domain_vm_use(d);
    if (vm) {
        *kib = sp_vm_config(vm)->mem_limit / 1024;
        sp_domain_vm_done(d);
        return true;
    }
    g_mutex_lock(&ds->lock);
    guint64 v = d->def->memtune_hard_limit_kib;
    g_mutex_unlock(&ds->lock);
    *kib = v < SP_LV_MEMORY_PARAM_UNLIMITED ? v : 0;
    return true;
}

/* --- the VM's events (its reader thread) --- */

SpVmEvents dom_events(SpDomain *d)
{
    return (SpVmEvents){
        .console = dom_console, .integrity = dom_integrity, .ended = dom_ended, .opaque = d};
}

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
    g_autofree char *cpath = dom_path(d->owner, "console", sp_vm_name(vm), ".log");
    FILE *f = fopen(cpath, "a");
    if (f) {
        fprintf(
            f,
            "samepage: INTEGRITY ERROR reported by the guest at guest address 0x%" G_GINT64_MODIFIER
            "x: expected 0x%016" G_GINT64_MODIFIER "x, found 0x%016" G_GINT64_MODIFIER "x\n",
            gpa, expected, found);
        fclose(f);
    }
    g_warning("event=integrity-error domain=%s gpa=0x%" G_GINT64_MODIFIER
              "x expected=0x%016" G_GINT64_MODIFIER "x found=0x%016" G_GINT64_MODIFIER "x",
              sp_vm_name(vm), gpa, expected, found);
}

/* Its end is handled on ds->tasks, never here: this is the VM's reader
 * thread, which freeing the VM joins. */
void dom_ended(SpVm *vm, SpVmState state, void *opaque)
{
    SpDomain *d = opaque;
    DomTask *t = g_new0(DomTask, 1);
    t->kind = DOM_TASK_ENDED;
    t->d = dom_ref(d);
    t->vm = vm;
    g_thread_pool_push(d->owner->tasks, t, NULL);
}
