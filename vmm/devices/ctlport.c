/* SPDX-License-Identifier: MIT */
/*
 * ctlport.c - the guest control port (vmm/guest-abi.h, docs/guest-abi.md).
 *
 * A 32-bit OUT to SP_CTL_PORT carries the guest address of an SpCtlRequest.
 * The request is copied out of guest memory first (the guest may change it
 * meanwhile; we act on one consistent copy), checked, acted on, and `ret`
 * (plus arg0/arg1 for TIME and QUERY) is written back.  Nothing a guest
 * writes here can stop the VM or the host: a bad request gets a negative
 * `ret`.  A 32-bit IN from the port returns SP_CTL_MAGIC so payloads can
 * detect samepage.
 *
 * Runs on the vCPU thread that exited; takes vm->lock only around the
 * results table and the state.
 */
#include <string.h>

#include "sharing/agent.h"
#include "vmm/guest-abi.h"
#include "vmm/machine/machine-priv.h"

#define CTL_TEXT_MAX 4096
#define CTL_KEY_MAX  64
#define SP_CTL_MAGIC 0x53504354u /* "SPCT" */

/* Copy guest text [gpa, gpa+len) into a NUL-terminated string, replacing
 * bytes that would garble a terminal. */
static char *ctl_text(SpMachine *vm, uint64_t gpa, uint64_t len, uint64_t max)
{
    if (len > max)
        return NULL;
    const char *src = sp_guest_mem_ptr(&vm->mem, gpa, len);
    if (!src)
        return NULL;
    char *s = g_malloc(len + 1);
    for (uint64_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        s[i] = (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f)) ? (char)c : '?';
    }
    s[len] = 0;
    return s;
}

static int32_t ctl_console(SpMachine *vm, const SpCtlRequest *r)
{
    g_autofree char *text = ctl_text(vm, r->arg0, r->arg1, CTL_TEXT_MAX);
    if (!text)
        return r->arg1 > CTL_TEXT_MAX ? SP_CTL_EINVAL : SP_CTL_EFAULT;
    if (!vm->ev.console)
        return SP_CTL_OK;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (!l[1] && !**l)
            break; /* text ended with a newline */
        vm->ev.console(vm, *l, vm->ev.opaque);
    }
    return SP_CTL_OK;
}

static int32_t ctl_result(SpMachine *vm, const SpCtlRequest *r)
{
    g_autofree char *key = ctl_text(vm, r->arg0, r->arg1, CTL_KEY_MAX);
    if (!key)
        return r->arg1 > CTL_KEY_MAX ? SP_CTL_EINVAL : SP_CTL_EFAULT;
    g_mutex_lock(&vm->lock);
    g_hash_table_insert(vm->results, g_strdup(key), g_memdup2(&r->arg2, sizeof(uint64_t)));
    g_mutex_unlock(&vm->lock);
    if (vm->ev.result)
        vm->ev.result(vm, key, r->arg2, vm->ev.opaque);
    return SP_CTL_OK;
}

static int32_t ctl_dispatch(SpMachine *vm, SpCtlRequest *r)
{
    switch (r->op) {
    case SP_CTL_CONSOLE:
        return ctl_console(vm, r);
    case SP_CTL_PHASE: {
        g_autofree char *label = r->arg2 ? ctl_text(vm, r->arg1, r->arg2, CTL_KEY_MAX) : NULL;
        if (r->arg2 && !label)
            return SP_CTL_EINVAL;
        __atomic_store_n(&vm->phase, r->arg0, __ATOMIC_RELAXED);
        if (vm->ev.phase)
            vm->ev.phase(vm, r->arg0, label ? label : "", vm->ev.opaque);
        return SP_CTL_OK;
    }
    case SP_CTL_RESULT:
        return ctl_result(vm, r);
    case SP_CTL_INTEGRITY:
        __atomic_add_fetch(&vm->integrity_errors, 1, __ATOMIC_RELAXED);
        if (vm->ev.integrity)
            vm->ev.integrity(vm, r->arg0, r->arg1, r->arg2, vm->ev.opaque);
        return SP_CTL_OK;
    case SP_CTL_EXIT:
        sp_machine_end(vm, SP_VM_EXITED, (int)(uint32_t)r->arg0, NULL);
        return SP_CTL_OK;
    case SP_CTL_TIME:
        r->arg0 = (uint64_t)g_get_monotonic_time() * 1000;
        return SP_CTL_OK;
    case SP_CTL_ROUND:
        __atomic_store_n(&vm->rounds, r->arg0, __ATOMIC_RELAXED);
        __atomic_store_n(&vm->pages_verified, r->arg1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&vm->pages_rewritten, r->arg2, __ATOMIC_RELAXED);
        if (vm->ev.round)
            vm->ev.round(vm, r->arg0, r->arg1, r->arg2, vm->ev.opaque);
        return SP_CTL_OK;
    case SP_CTL_QUERY:
        switch (r->arg0) {
        case SP_Q_CLONE_GENERATION:
            r->arg1 = vm->clone_generation;
            return SP_CTL_OK;
        case SP_Q_CLONE_ID:
            r->arg1 = vm->clone_id;
            return SP_CTL_OK;
        case SP_Q_PAUSE_REQUESTED:
            r->arg1 = 0;
            return SP_CTL_OK;
        case SP_Q_COMMAND:
            r->arg1 = __atomic_load_n(&vm->command, __ATOMIC_ACQUIRE);
            return SP_CTL_OK;
        default:
            return SP_CTL_EINVAL;
        }
    default:
        return SP_CTL_EINVAL;
    }
}

bool sp_ctlport_io(void *opaque, uint16_t port, uint8_t *data, uint32_t size, bool is_write)
{
    SpMachine *vm = opaque;
    if (!is_write) {
        uint32_t magic = SP_CTL_MAGIC;
        memset(data, 0, size);
        memcpy(data, &magic, size < 4 ? size : 4);
        return true;
    }
    if (size != 4)
        return true; /* only 32-bit writes carry a request; others are ignored */
    uint32_t gpa;
    memcpy(&gpa, data, 4);
    SpCtlRequest *greq = sp_guest_mem_ptr(&vm->mem, gpa, sizeof(SpCtlRequest));
    if (!greq || (gpa & 7))
        return true; /* nowhere to put an error: ignore, as hardware would */
    SpCtlRequest req;
    memcpy(&req, greq, sizeof(req));
    req.ret = ctl_dispatch(vm, &req);
    greq->ret = req.ret;
    greq->arg0 = req.arg0;
    greq->arg1 = req.arg1;
    /* A VMM write to guest RAM: KVM's dirty log will not show it. */
    sp_agent_mark_dirty(vm->agent, gpa, sizeof(SpCtlRequest));
    sp_machine_note_vmm_write(vm, gpa, sizeof(SpCtlRequest)); /* a clone's pre-copy */
    return true;
}
