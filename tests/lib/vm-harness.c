/* SPDX-License-Identifier: MIT */
/* vm-harness.c - real VMs under test (see vm-harness.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/lib/vm-harness.h"

static void h_console(SpVm *vm, const char *line, void *opaque)
{
    Harness *h = opaque;
    g_mutex_lock(&h->lock);
    g_ptr_array_add(h->console, g_strdup_printf("%s: %s", sp_vm_name(vm), line));
    if (h->echo)
        printf("# [%s] %s\n", sp_vm_name(vm), line);
    g_mutex_unlock(&h->lock);
}

static void h_integrity(SpVm *vm, uint64_t gpa, uint64_t expected, uint64_t found, void *opaque)
{
    Harness *h = opaque;
    HarnessIntegrity r = {vm, gpa, expected, found};
    g_mutex_lock(&h->lock);
    g_array_append_val(h->integrity, r);
    printf("# [%s] integrity error at 0x%" G_GINT64_MODIFIER "x\n", sp_vm_name(vm), gpa);
    g_mutex_unlock(&h->lock);
}

static void h_ended(SpVm *vm, SpVmState state, void *opaque)
{
    Harness *h = opaque;
    g_autofree char *reason = sp_vm_get_reason(vm);
    g_mutex_lock(&h->lock);
    if (state == SP_VM_CRASHED)
        printf("# [%s] crashed: %s\n", sp_vm_name(vm), reason);
    g_mutex_unlock(&h->lock);
}

Harness *harness_new(void)
{
    Harness *h = g_new0(Harness, 1);
    g_autoptr(GError) err = NULL;
    const char *top = g_getenv("top_builddir");
    g_autofree char *pdir = g_build_filename(top ? top : ".", "guest-tools", NULL);
    /* Once: a later setenv, with threads running, would be unsafe. */
    if (g_strcmp0(g_getenv("SAMEPAGE_PAYLOAD_DIR"), pdir) != 0)
        g_setenv("SAMEPAGE_PAYLOAD_DIR", pdir, TRUE);
    h->host = sp_vm_host_new("/dev/kvm", &err);
    if (!h->host)
        g_error("this test needs /dev/kvm and samepage-vm: %s", err->message);
    h->host->die_with_supervisor = true;
    h->host->test_hooks = true;
    h->vms = g_ptr_array_new();
    h->swap_readahead = SP_SWAP_READAHEAD_DEFAULT;
    g_mutex_init(&h->lock);
    h->integrity = g_array_new(FALSE, TRUE, sizeof(HarnessIntegrity));
    h->console = g_ptr_array_new_with_free_func(g_free);
    return h;
}

void harness_free(Harness *h)
{
    for (guint i = 0; i < h->vms->len; i++)
        sp_vm_free(h->vms->pdata[i]);
    sp_engine_free(h->engine);
    g_ptr_array_free(h->vms, TRUE);
    g_array_free(h->integrity, TRUE);
    g_ptr_array_free(h->console, TRUE);
    g_mutex_clear(&h->lock);
    sp_vm_host_free(h->host);
    g_free(h);
}

SpVmEvents harness_events(Harness *h)
{
    return (SpVmEvents){
        .console = h_console, .integrity = h_integrity, .ended = h_ended, .opaque = h};
}

uint64_t harness_new_vm_id(void)
{
    static uint64_t next = 1;
    return __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
}

SpVm *harness_add(Harness *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *spec = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autoptr(GError) err = NULL;
    g_autoptr(SpVmConfig) cfg = sp_vm_config_parse(spec, &err);
    if (!cfg)
        g_error("bad VM spec '%s': %s", spec, err->message);
    SpVmEvents ev = harness_events(h);
    SpVm *vm = sp_vm_new(h->host, cfg, harness_new_vm_id(), &ev, &err);
    if (!vm)
        g_error("cannot create VM '%s': %s", spec, err->message);
    g_ptr_array_add(h->vms, vm);
    if (h->engine)
        sp_vm_set_engine(vm, h->engine, 0, 0);
    return vm;
}

void harness_use_fast_engine(Harness *h)
{
    SpEngineKnobs k;
    sp_engine_default_knobs(&k);
    k.sleep_millisecs = 0;
    k.pages_to_scan = 20000;
    harness_use_engine(h, &k);
}

void harness_use_engine(Harness *h, const SpEngineKnobs *knobs)
{
    g_autoptr(GError) err = NULL;
    h->engine = sp_engine_new(knobs, &err);
    if (!h->engine)
        g_error("cannot create the sharing engine: %s", err->message);
}

void harness_engine_run(Harness *h, uint32_t run)
{
    SpEngineKnobs k;
    g_autoptr(GError) err = NULL;
    sp_engine_get_knobs(h->engine, &k);
    k.run = run;
    g_assert_true(sp_engine_set_knobs(h->engine, &k, &err));
}

double harness_slow(void)
{
    const char *e = g_getenv("SAMEPAGE_IN_EMUHOST");
    return e && *e ? 4.0 : 1.0;
}

static gint64 deadline_after(double seconds)
{
    return g_get_monotonic_time() + (gint64)(seconds * harness_slow() * 1e6);
}

bool harness_wait_scans(SpEngine *eng, uint64_t n, double seconds)
{
    return sp_engine_wait_scans(eng, n, seconds * harness_slow());
}

bool harness_wait_result(SpVm *vm, const char *key, uint64_t *value, double seconds)
{
    gint64 deadline = deadline_after(seconds);
    while (g_get_monotonic_time() < deadline) {
        if (sp_vm_get_result(vm, key, value))
            return true;
        g_usleep(10000);
    }
    return false;
}

bool harness_command(SpVm *vm, uint8_t op, uint32_t arg, double seconds)
{
    uint32_t seq = sp_vm_send_command(vm, op, arg);
    gint64 deadline = deadline_after(seconds);
    while (g_get_monotonic_time() < deadline) {
        uint64_t v = 0;
        if (sp_vm_get_result(vm, "cmd_seq", &v) && v == seq)
            return true;
        g_usleep(5000);
    }
    return false;
}

void harness_share_managed(Harness *h, SpVm *vm)
{
    uint64_t gpa = 0, pages = 0;
    g_assert_true(harness_wait_result(vm, "pages_gpa", &gpa, HARNESS_DEADLINE_S));
    g_assert_true(harness_wait_result(vm, "pages_total", &pages, HARNESS_DEADLINE_S));
    sp_engine_set_range(h->engine, sp_vm_engine_handle(vm), gpa, gpa + pages * 4096);
}

uint64_t harness_pfn(const void *addr)
{
    static int fd = -1;
    if (fd < 0)
        fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    uint64_t ent = 0;
    if (pread(fd, &ent, 8, (off_t)((uintptr_t)addr / 4096 * 8)) != 8 || !(ent >> 63))
        return 0;
    return ent & ((1ULL << 55) - 1);
}

void harness_start_all(Harness *h)
{
    for (guint i = 0; i < h->vms->len; i++) {
        g_autoptr(GError) err = NULL;
        if (!sp_vm_start(h->vms->pdata[i], &err))
            g_error("cannot start VM: %s", err->message);
    }
}

bool harness_wait_all(Harness *h, double seconds)
{
    gint64 deadline = deadline_after(seconds);
    for (;;) {
        bool running = false;
        for (guint i = 0; i < h->vms->len; i++) {
            SpVmInfo info;
            sp_vm_get_info(h->vms->pdata[i], &info);
            running |= info.state == SP_VM_RUNNING;
        }
        if (!running)
            return true;
        if (g_get_monotonic_time() > deadline)
            return false;
        g_usleep(20000);
    }
}

/* A VM that did not get on: each thread of its process with its state,
 * kernel wait channel and kernel stack (what a stuck guest waits on). */
static void dump_stuck(SpVm *vm, uint64_t rounds)
{
    SpVmInfo info;
    sp_vm_get_info(vm, &info);
    pid_t pid = sp_vm_pid(vm);
    printf("# %s (pid %d) did not reach round %" G_GUINT64_FORMAT ": at round %" G_GUINT64_FORMAT
           ", state %d; its threads:\n",
           sp_vm_name(vm), (int)pid, rounds, (uint64_t)info.rounds, (int)info.state);
    g_autofree char *tdir = g_strdup_printf("/proc/%d/task", (int)pid);
    g_autoptr(GDir) d = pid > 0 ? g_dir_open(tdir, 0, NULL) : NULL;
    for (const char *t; d && (t = g_dir_read_name(d));) {
        g_autofree char *comm = NULL, *wchan = NULL, *stat = NULL, *stack = NULL;
        g_autofree char *pc = g_strdup_printf("%s/%s/comm", tdir, t);
        g_autofree char *pw = g_strdup_printf("%s/%s/wchan", tdir, t);
        g_autofree char *ps = g_strdup_printf("%s/%s/stat", tdir, t);
        g_autofree char *pk = g_strdup_printf("%s/%s/stack", tdir, t);
        g_file_get_contents(pc, &comm, NULL, NULL);
        g_file_get_contents(pw, &wchan, NULL, NULL);
        g_file_get_contents(ps, &stat, NULL, NULL);
        g_file_get_contents(pk, &stack, NULL, NULL);
        const char *st = stat ? strrchr(stat, ')') : NULL;
        printf("#   tid %s %s state %c wchan %s\n", t, comm ? g_strstrip(comm) : "?",
               st && st[1] ? st[2] : '?', wchan ? wchan : "?");
        gchar **lines = g_strsplit(stack ? stack : "", "\n", 12);
        for (int i = 0; lines[i] && i < 10; i++)
            if (*lines[i])
                printf("#     %s\n", lines[i]);
        g_strfreev(lines);
    }
}

bool harness_wait_rounds(Harness *h, SpVm *vm, uint64_t rounds, double seconds)
{
    gint64 deadline = deadline_after(seconds);
    for (;;) {
        SpVmInfo info;
        sp_vm_get_info(vm, &info);
        if (info.rounds >= rounds)
            return true;
        if (info.state != SP_VM_RUNNING)
            return false;
        if (g_get_monotonic_time() > deadline) {
            dump_stuck(vm, rounds);
            return false;
        }
        g_usleep(10000);
    }
}

guint harness_integrity_count(Harness *h)
{
    g_mutex_lock(&h->lock);
    guint n = h->integrity->len;
    g_mutex_unlock(&h->lock);
    /* The VMs' own counts too, in case an event was dropped on the way. */
    uint64_t counted = 0;
    for (guint i = 0; i < h->vms->len; i++) {
        SpVmInfo info;
        sp_vm_get_info(h->vms->pdata[i], &info);
        counted += info.integrity_errors;
    }
    return MAX(n, (guint)counted);
}

void harness_expect_bytes_intact(Harness *h)
{
    for (guint i = 0; i < h->vms->len; i++) {
        SpVm *vm = h->vms->pdata[i];
        SpVmInfo info;
        sp_vm_get_info(vm, &info);
        g_assert_true(harness_wait_rounds(h, vm, info.rounds + 2, HARNESS_DEADLINE_S));
    }
    g_assert_cmpuint(harness_integrity_count(h), ==, 0);
}

uint64_t harness_vm_pfn(SpVm *vm, uint64_t gpa)
{
    uint64_t ent = 0;
    if (!harness_vm_pagemap(vm, gpa / 4096, 1, &ent) || !(ent >> 63))
        return 0;
    return ent & ((1ULL << 55) - 1);
}

bool harness_vm_pagemap(SpVm *vm, uint64_t first, uint64_t n, uint64_t *ent)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/pagemap", (int)sp_vm_pid(vm));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    off_t off = (off_t)((sp_vm_ram_base(vm) / 4096 + first) * 8);
    bool ok = fd >= 0 && pread(fd, ent, n * 8, off) == (ssize_t)(n * 8);
    if (fd >= 0)
        close(fd);
    return ok;
}

void harness_vm_read(SpVm *vm, uint64_t gpa, void *buf, uint64_t len)
{
    g_autoptr(GError) err = NULL;
    if (!sp_vm_read_ram(vm, gpa, buf, len, &err))
        g_error("cannot read VM '%s' RAM: %s", sp_vm_name(vm), err->message);
}

void harness_vm_write(SpVm *vm, uint64_t gpa, const void *buf, uint64_t len)
{
    g_assert_cmpuint(gpa, <=, sp_vm_config(vm)->mem_size);
    g_assert_cmpuint(len, <=, sp_vm_config(vm)->mem_size - gpa);
    g_autofree char *path = g_strdup_printf("/proc/%d/mem", (int)sp_vm_pid(vm));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        g_error("cannot open %s: %s", path, g_strerror(errno));
    ssize_t n = pwrite(fd, buf, len, (off_t)(sp_vm_ram_base(vm) + gpa));
    int e = errno;
    close(fd);
    if (n != (ssize_t)len)
        g_error("cannot write VM '%s' RAM through %s: %s", sp_vm_name(vm), path,
                n < 0 ? g_strerror(e) : "short write");
}

uint64_t harness_vm_rss_pages(SpVm *vm)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/statm", (int)sp_vm_pid(vm));
    g_autofree char *s = NULL;
    if (!g_file_get_contents(path, &s, NULL, NULL))
        return 0;
    unsigned long size = 0, rss = 0;
    sscanf(s, "%lu %lu", &size, &rss);
    return rss;
}

uint64_t harness_rss_pages(void)
{
    g_autofree char *s = NULL;
    if (!g_file_get_contents("/proc/self/statm", &s, NULL, NULL))
        return 0;
    unsigned long size = 0, rss = 0;
    sscanf(s, "%lu %lu", &size, &rss);
    return rss;
}

uint64_t harness_zero_pfn(void)
{
    static volatile uint8_t *z;
    if (!z)
        z = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    (void)z[0];
    return harness_pfn((const void *)z);
}

static bool same_figures(const SpEngineStats *a, const SpEngineStats *b)
{
    return b->pages_volatile == 0 && b->pages_sharing == a->pages_sharing &&
           b->pages_shared == a->pages_shared && b->zero_pages == a->zero_pages;
}

/* With smart_scan, a page left unmerged and unwritten for long is examined
 * only in passes whose number is a multiple of 8 (sharing/agent-scan.c),
 * so two quiet passes do not mean its partner will never be found: the
 * figures, unchanged from `a` to `b`, must also have held over a pass that
 * examines every page - one that ended between the two reads, or else the
 * next one. */
static bool settled_over_every_page(Harness *h, const SpEngineStats *a, const SpEngineStats *b)
{
    SpEngineKnobs k;
    sp_engine_get_knobs(h->engine, &k);
    if (!k.smart_scan)
        return true;
    /* (it may have begun before `a` was read: what it merged by then is in `a`) */
    uint64_t every = (a->full_scans + 7) / 8 * 8;
    if (b->full_scans > every)
        return true;
    if (!harness_wait_scans(h->engine, every + 1 - b->full_scans, 60))
        return false;
    SpEngineStats c;
    sp_engine_get_stats(h->engine, &c);
    return same_figures(b, &c);
}

void harness_converge(Harness *h)
{
    SpEngineStats a = {0}, b = {0};
    bool have_a = false;
    for (guint v = 0; v < h->vms->len; v++)
        if (!harness_wait_rounds(h, h->vms->pdata[v], 1, 120))
            g_error("VM '%s' did not verify its memory once", sp_vm_name(h->vms->pdata[v]));
    for (int i = 0; i < 200; i++) {
        /* Two full scans must really have happened (a slow, loaded host or
         * a sanitizer build can take longer than the wait): unchanged
         * figures without scans would prove nothing. */
        if (!harness_wait_scans(h->engine, 2, 10))
            continue;
        sp_engine_get_stats(h->engine, &b);
        if (have_a && same_figures(&a, &b) && settled_over_every_page(h, &a, &b))
            return;
        a = b;
        have_a = true;
    }
    g_error("the engine did not converge");
}

void harness_use_swap(Harness *h, uint64_t cache_bytes, uint64_t limit)
{
    g_autofree char *path =
        g_strdup_printf("%s/samepage-test-swap-%d", g_get_tmp_dir(), (int)getpid());
    SpSwapConfig c = {.path = path,
                      .file_bytes = 4ULL << 30,
                      .cache_bytes = cache_bytes,
                      .host_limit = limit,
                      .readahead = h->swap_readahead};
    g_autoptr(GError) err = NULL;
    if (!sp_engine_enable_swap(h->engine, &c, &err))
        g_error("swap: %s", err->message);
    unlink(path);
}

HarnessManaged harness_managed(SpVm *vm)
{
    uint64_t gpa = 0, n = 0;
    g_assert_true(harness_wait_result(vm, "pages_gpa", &gpa, HARNESS_DEADLINE_S));
    g_assert_true(harness_wait_result(vm, "pages_total", &n, HARNESS_DEADLINE_S));
    return (HarnessManaged){vm, gpa, n};
}

uint64_t *harness_managed_pfns(const HarnessManaged *m)
{
    uint64_t *e = g_new(uint64_t, m->pages);
    g_assert_true(harness_vm_pagemap(m->vm, m->gpa / 4096, m->pages, e));
    for (uint64_t p = 0; p < m->pages; p++)
        e[p] = (e[p] >> 63) ? e[p] & ((1ULL << 55) - 1) : 0;
    return e;
}
