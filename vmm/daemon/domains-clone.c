/* SPDX-License-Identifier: MIT */
/*
 * domains-clone.c - `samepage clone` in samepaged: clone a running domain
 * into N running transient domains (see sp_domains_clone() in domains.h).
 *
 * The source's job is held throughout (a second clone, a stop or a
 * suspend of it waits; other domains and queries go on).  Everything that
 * can be refused is checked before anything is made, under the registry
 * lock: the domain runs a payload, the count is 1..clone_max, every name is
 * valid, unique and free; the names are then reserved (ds->reserved) so
 * that no define or other clone takes them meanwhile.  Then the children's
 * definitions (the source's, with a new name and a random UUID), domains
 * and console logs are made, sp_vm_clone_many() pauses the source once and
 * starts every child (seconds, without the lock), and only if it succeeds
 * are the children registered (id, run marker, list) and announced
 * (STARTED events).  On failure the unregistered domains are freed and
 * console logs this call created are removed: nothing is left behind.
 *
 * Events: the children share one SpVmEvents, whose opaque is a DomFamily
 * (name -> SpDomain, fixed before the clone starts, read-only afterwards,
 * so vCPU threads read it without a lock).  Each child domain holds a
 * reference; a child's entry is only used by that child's own callbacks,
 * which stop (its threads are joined) before its domain is freed.
 *
 * Locking as in domains.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>

#include "vmm/daemon/domains-priv.h"

struct DomFamily {
    gint refs;
    guint n;
    char **names;    /* n names (owned) */
    SpDomain **doms; /* n domains (not owned) */
};

void dom_family_unref(DomFamily *f)
{
    if (!f || !g_atomic_int_dec_and_test(&f->refs))
        return;
    g_strfreev(f->names);
    g_free(f->doms);
    g_free(f);
}

static SpDomain *family_find(DomFamily *f, SpVm *vm)
{
    const char *name = sp_vm_name(vm);
    for (guint i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name))
            return f->doms[i];
    return NULL;
}

static void family_console(SpVm *vm, const char *line, void *opaque)
{
    SpDomain *d = family_find(opaque, vm);
    if (d)
        dom_console(vm, line, d);
}

static void family_integrity(SpVm *vm, uint64_t gpa, uint64_t expected, uint64_t found,
                             void *opaque)
{
    SpDomain *d = family_find(opaque, vm);
    if (d)
        dom_integrity(vm, gpa, expected, found, d);
}

static void family_ended(SpVm *vm, SpVmState state, void *opaque)
{
    SpDomain *d = family_find(opaque, vm);
    if (d)
        dom_ended(vm, state, d);
}

/* A name that is safe as a file name in the state directory. */
static bool clone_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > SP_LV_CLONE_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!g_ascii_isalnum(name[i]) && !strchr("._+-", name[i]))
            return false;
    return true;
}

/* Lock held. */
static bool clone_name_taken(SpDomains *ds, GPtrArray *chosen, const char *name)
{
    if (dom_name_taken(ds, name))
        return true;
    for (guint i = 0; i < chosen->len; i++)
        if (!strcmp(chosen->pdata[i], name))
            return true;
    return false;
}

/* The source's definition under a new name, with a random (v4) UUID. */
static SpDomXml *clone_definition(const SpDomXml *src, const char *name, GError **error)
{
    g_autofree char *xml = sp_domxml_format(src, -1);
    SpDomXml *def = sp_domxml_parse(xml, error);
    if (!def)
        return NULL;
    g_free(def->name);
    def->name = g_strdup(name);
    dom_uuid_random(def);
    return def;
}

/* Lock held: checks and picks the children's names; false with an error
 * otherwise. */
static bool clone_pick_names(SpDomains *ds, SpDomain *d, guint32 count, const char *const *names,
                             guint32 n_names, GPtrArray *out, GError **error)
{
    const char *src = d->def->name;
    if (!d->def->sp_payload) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_UNSUPPORTED,
                  "domain '%s' is a Linux guest: only payload domains can be cloned", src);
        return false;
    }
    if (!d->vm || d->state != SP_LV_DOMAIN_RUNNING) {
        bool crashed = d->state == SP_LV_DOMAIN_CRASHED ||
                       (d->state == SP_LV_DOMAIN_SHUTOFF && d->reason == SHUTOFF_CRASHED);
        DOM_ERROR(error, SP_LV_ERR_OPERATION_INVALID,
                  "domain '%s' is not running (%s): only a running domain can be cloned", src,
                  crashed                           ? "crashed"
                  : d->state == SP_LV_DOMAIN_PAUSED ? "paused"
                                                    : "shut off");
        return false;
    }
    if (count == 0 || count > ds->clone_max) {
        DOM_ERROR(error, SP_LV_ERR_INVALID_ARG,
                  "clone count must be 1..%u (samepaged --clone-max), not %u", ds->clone_max,
                  count);
        return false;
    }
    if (n_names > count) {
        DOM_ERROR(error, SP_LV_ERR_INVALID_ARG, "%u names given for %u clones", n_names, count);
        return false;
    }
    for (guint32 i = 0; i < n_names; i++) {
        if (!clone_name_valid(names[i])) {
            DOM_ERROR(error, SP_LV_ERR_INVALID_ARG,
                      "invalid clone name '%s' (letters, digits, '.', '_', '+', '-'; not "
                      "starting with '.' or '-')",
                      names[i]);
            return false;
        }
        if (clone_name_taken(ds, out, names[i])) {
            DOM_ERROR(error, SP_LV_ERR_DOM_EXIST, "domain '%s' already exists", names[i]);
            return false;
        }
        g_ptr_array_add(out, g_strdup(names[i]));
    }
    for (guint32 k = 1; out->len < count; k++) {
        g_autofree char *name = g_strdup_printf("%s-c%u", src, k);
        if (strlen(name) > SP_LV_CLONE_NAME_MAX) {
            DOM_ERROR(error, SP_LV_ERR_INVALID_ARG,
                      "domain name '%s' is too long to derive "
                      "clone names from: give --names",
                      src);
            return false;
        }
        if (!clone_name_taken(ds, out, name))
            g_ptr_array_add(out, g_steal_pointer(&name));
    }
    return true;
}

/* Lock held: reserve (or release) the picked names. */
static void clone_reserve(SpDomains *ds, GPtrArray *names, bool on)
{
    for (guint i = 0; i < names->len; i++)
        if (on)
            g_hash_table_add(ds->reserved, g_strdup(names->pdata[i]));
        else
            g_hash_table_remove(ds->reserved, names->pdata[i]);
}

/* The children are running: give them their identity, pin them like the
 * source, and register them (lock taken inside). */
static void clone_register(SpDomains *ds, const char *src, DomFamily *fam, SpVm **vms,
                           const cpu_set_t *cpus, GPtrArray *out)
{
    for (guint32 i = 0; i < fam->n; i++) {
        SpDomain *c = fam->doms[i];
        g_mutex_lock(&ds->lock);
        c->vm = vms[i];
        c->id = ds->next_id++;
        c->state = SP_LV_DOMAIN_RUNNING;
        c->reason = RUNNING_BOOTED;
        g_mutex_unlock(&ds->lock);
        /* Its libvirt identity and console log, kept by its VM process
         * across samepaged restarts. */
        g_autofree char *cpath = dom_path(ds, "console", fam->names[i], ".log");
        int console = open(cpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        g_autoptr(GError) ierr = NULL;
        if (!sp_vm_set_identity(c->vm, c->id, c->def->uuid, console, &ierr) ||
            (cpus && !sp_vm_set_affinity(c->vm, cpus, &ierr)))
            g_warning("event=clone-identity-failed domain=%s error=\"%s\"", fam->names[i],
                      ierr->message);
        if (console >= 0)
            close(console);
        g_mutex_lock(&ds->lock);
        dom_write_run_file(ds, c);
        dom_list_add(ds, c);
        g_mutex_unlock(&ds->lock);
        g_ptr_array_add(out, g_strdup(fam->names[i]));
        g_message("event=cloned domain=%s source=%s id=%d generation=%" G_GUINT64_FORMAT,
                  fam->names[i], src, c->id, sp_vm_clone_generation(c->vm));
        dom_emit(c, SP_LV_EVENT_STARTED, SP_LV_STARTED_BOOTED);
    }
}

bool sp_domains_clone(SpDomains *ds, SpDomain *d, guint32 count, const char *const *names,
                      guint32 n_names, GPtrArray *out, GError **error)
{
    if (!dom_job_begin(d, "samepageDomainClone", JOB_WAIT_S, error))
        return false;
    g_autoptr(GPtrArray) picked = g_ptr_array_new_with_free_func(g_free);
    g_mutex_lock(&ds->lock);
    bool ok = clone_pick_names(ds, d, count, names, n_names, picked, error);
    g_autoptr(SpDomXml) src_def = ok ? sp_domxml_copy(d->def) : NULL;
    SpVm *src_vm = d->vm; /* stable: the job is held */
    if (ok)
        clone_reserve(ds, picked, true);
    g_mutex_unlock(&ds->lock);
    if (!ok) {
        dom_job_end(d);
        return false;
    }
    cpu_set_t cpus;
    bool pin = false;
    g_autoptr(GArray) ids_set = g_array_new(FALSE, FALSE, sizeof(guint));
    if (src_def->vcpu_cpuset &&
        sp_domxml_cpuset_parse(src_def->vcpu_cpuset, CPU_SETSIZE, ids_set, NULL)) {
        CPU_ZERO(&cpus);
        for (guint i = 0; i < ids_set->len; i++)
            CPU_SET(g_array_index(ids_set, guint, i), &cpus);
        pin = true;
    }

    DomFamily *fam = g_new0(DomFamily, 1);
    fam->refs = 1;
    fam->n = count;
    fam->names = g_new0(char *, count + 1);
    fam->doms = g_new0(SpDomain *, count);
    g_autofree uint64_t *ids = g_new0(uint64_t, count);
    g_autofree SpVm **vms = g_new0(SpVm *, count);
    g_autofree bool *new_log = g_new0(bool, count);
    g_autoptr(GError) err = NULL;
    ok = false;
    for (guint32 i = 0; i < count; i++) {
        fam->names[i] = g_strdup(picked->pdata[i]);
        SpDomXml *def = clone_definition(src_def, fam->names[i], &err);
        if (!def) {
            DOM_ERROR(error, SP_LV_ERR_INTERNAL_ERROR, "%s", err->message);
            goto out;
        }
        SpDomain *c = domain_new(ds, def, false);
        c->family = fam;
        g_atomic_int_inc(&fam->refs);
        fam->doms[i] = c;
        g_autofree char *cpath = dom_path(ds, "console", fam->names[i], ".log");
        new_log[i] = !g_file_test(cpath, G_FILE_TEST_EXISTS);
        g_mutex_lock(&ds->lock);
        ids[i] = ds->next_vm_id++;
        g_mutex_unlock(&ds->lock);
    }
    SpVmEvents ev = {.console = family_console,
                     .integrity = family_integrity,
                     .ended = family_ended,
                     .opaque = fam};
    SpVmCloneTimes times = {0};
    if (!sp_vm_clone_many(src_vm, count, (const char *const *)fam->names, ids, &ev, vms, &times,
                          &err)) {
        DOM_ERROR(error, SP_LV_ERR_OPERATION_FAILED, "%s", err->message);
        goto out;
    }
    clone_register(ds, src_def->name, fam, vms, pin ? &cpus : NULL, out);
    g_message("event=clone source=%s children=%u pause_ms=%.1f children_ms=%.1f "
              "pages_copied=%" G_GUINT64_FORMAT,
              src_def->name, count, times.pause_ms, times.children_ms, times.pages_copied);
    ok = true;
out:
    g_mutex_lock(&ds->lock);
    clone_reserve(ds, picked, false);
    g_mutex_unlock(&ds->lock);
    for (guint32 i = 0; i < count; i++) {
        if (!fam->doms[i])
            continue;
        if (!ok && new_log[i]) {
            g_autofree char *cpath = dom_path(ds, "console", fam->names[i], ".log");
            g_unlink(cpath);
        }
        sp_domain_unref(fam->doms[i]); /* the list holds the registered ones */
    }
    if (!ok)
        g_warning("event=clone-failed source=%s count=%u error=\"%s\"", src_def->name, count,
                  error && *error ? (*error)->message : "?");
    dom_family_unref(fam);
    dom_job_end(d);
    return ok;
}
