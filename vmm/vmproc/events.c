/* SPDX-License-Identifier: MIT */
/*
 * events.c - what the guest reports, on its way to the supervisor.
 *
 * The machine calls these on vCPU threads.  Console lines also go to the
 * console log the supervisor opened for us (so they survive a supervisor
 * restart); every event is sent on the control channel if a supervisor is
 * attached.  A send waits at most EVENT_WAIT_MS for room: a supervisor that
 * does not read costs events (counted in events_dropped), never the guest's
 * progress for long.  Counters (rounds, integrity errors, ...) are kept by
 * the machine and reported in full by STATUS and EV_ENDED, so a dropped
 * event loses detail, not figures.  Only console lines may be dropped that
 * way; a result, a phase, an integrity error or a round waits up to
 * EVENT_WAIT_MAX_MS for a supervisor that is merely slow (loaded host).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/vmproc/vmproc.h"

#define EVENT_WAIT_MS     200   /* a console line */
#define EVENT_WAIT_MAX_MS 10000 /* any other event */

void sp_vmproc_event(SpVmProc *p, uint16_t type, const void *payload, uint32_t len)
{
    int budget = type == SP_PROTO_EV_CONSOLE ? EVENT_WAIT_MS : EVENT_WAIT_MAX_MS;
    g_mutex_lock(&p->send_lock);
    while (p->control >= 0) {
        g_autoptr(GError) err = NULL;
        if (sp_proto_send(p->control, type, 0, 0, payload, len, NULL, 0, MSG_DONTWAIT, &err))
            break;
        struct pollfd pf = {.fd = p->control, .events = POLLOUT};
        gint64 t0 = g_get_monotonic_time();
        if (!g_error_matches(err, SP_PROTO_ERROR, SP_PROTO_ERR_IO) || budget <= 0 ||
            poll(&pf, 1, budget) <= 0) {
            p->events_dropped++;
            break;
        }
        budget -= (int)((g_get_monotonic_time() - t0) / 1000) + 1;
    }
    g_mutex_unlock(&p->send_lock);
}

static void ev_console(SpMachine *m, const char *line, void *opaque)
{
    SpVmProc *p = opaque;
    g_mutex_lock(&p->console_lock);
    if (p->console) {
        fprintf(p->console, "%s\n", line);
        fflush(p->console);
    }
    g_mutex_unlock(&p->console_lock);
    sp_vmproc_event(p, SP_PROTO_EV_CONSOLE, line, (uint32_t)MIN(strlen(line), 4096));
}

static void ev_phase(SpMachine *m, uint64_t n, const char *label, void *opaque)
{
    uint8_t buf[8 + 256];
    size_t l = MIN(strlen(label), 256);
    memcpy(buf, &n, 8);
    memcpy(buf + 8, label, l);
    sp_vmproc_event(opaque, SP_PROTO_EV_PHASE, buf, (uint32_t)(8 + l));
}

static void ev_result(SpMachine *m, const char *key, uint64_t value, void *opaque)
{
    uint8_t buf[8 + 64];
    size_t l = MIN(strlen(key), 64);
    if (!l)
        return;
    memcpy(buf, &value, 8);
    memcpy(buf + 8, key, l);
    sp_vmproc_event(opaque, SP_PROTO_EV_RESULT, buf, (uint32_t)(8 + l));
}

static void ev_integrity(SpMachine *m, uint64_t gpa, uint64_t expected, uint64_t found,
                         void *opaque)
{
    uint64_t v[3] = {gpa, expected, found};
    SpVmProc *p = opaque;
    g_autofree char *what = p->agent ? sp_agent_describe_page(p->agent, gpa) : NULL;
    g_warning("event=integrity-error gpa=0x%" G_GINT64_MODIFIER
              "x expected=0x%016" G_GINT64_MODIFIER "x found=0x%016" G_GINT64_MODIFIER "x%s%s",
              gpa, expected, found, what ? " " : "", what ? what : "");
    sp_vmproc_event(opaque, SP_PROTO_EV_INTEGRITY, v, sizeof(v));
}

static void ev_round(SpMachine *m, uint64_t round, uint64_t verified, uint64_t rewritten,
                     void *opaque)
{
    uint64_t v[3] = {round, verified, rewritten};
    sp_vmproc_event(opaque, SP_PROTO_EV_ROUND, v, sizeof(v));
}

/* The guest left RUNNING: the main thread sends EV_ENDED with the final
 * status once the vCPU threads are done. */
static void ev_ended(SpMachine *m, SpVmState state, void *opaque)
{
    SpVmProc *p = opaque;
    uint64_t one = 1;
    if (write(p->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        g_warning("event=wake-failed error=\"%s\"", g_strerror(errno));
}

SpMachineEvents sp_vmproc_machine_events(SpVmProc *p)
{
    return (SpMachineEvents){
        .console = ev_console,
        .phase = ev_phase,
        .result = ev_result,
        .integrity = ev_integrity,
        .round = ev_round,
        .ended = ev_ended,
        .opaque = p,
    };
}
