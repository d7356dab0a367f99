/* SPDX-License-Identifier: MIT */
/*
 * memload-command.c - act on host commands (proposed SP_Q_COMMAND query).
 *
 * vCPU 0 polls the command word during churn windows (memload_command_poll);
 * a word with a new sequence number sets cmd_pending, which ends every
 * vCPU's churn window.  After the round's barrier all vCPUs run
 * memload_command_run(): vCPU 0 decodes the command and updates the records,
 * every vCPU rewrites its own slice if the command changed contents, and
 * vCPU 0 reports the new ground truth and acknowledges with
 * sp_result("cmd_seq", seq) and sp_result("cmd_status", 0|1).  The verify
 * pass of the same round then checks the new contents.
 * A VMM without SP_Q_COMMAND answers the query with an error, which
 * sp_query() turns into 0 = no command.
 */
#include "guest-tools/memload.h"

void memload_command_poll(void)
{
    memload.paused = sp_query(SP_Q_PAUSE_REQUESTED) != 0;
    if (sp_query(SP_Q_CLONE_GENERATION))
        memload.epoch = (uint32_t)(sp_query(SP_Q_CLONE_ID) % 32767) + 1;
    uint64_t w = sp_query(SP_Q_COMMAND);
    uint32_t seq = memload_cmd_seq(w);
    if (seq != 0 && seq != memload.last_seq && !memload.cmd_pending) {
        memload.cmd_word = w;
        memload.cmd_pending = 1;
    }
}

/* vCPU 0: apply the command to args and records; true if pages must be rewritten. */
static bool command_apply(uint64_t w, uint64_t *status)
{
    uint32_t arg = memload_cmd_arg(w);
    uint64_t blob_pages = memload.ctx.blob_pages;
    *status = 0;
    switch (memload_cmd_op(w)) {
    case ML_CMD_FILL:
        memload.args.fill = (int)(arg & 0xff);
        memload_layout_classes(&memload.lay, &memload.args, blob_pages);
        memload_table_build(memload.table, &memload.lay, &memload.args, blob_pages,
                            memload.ctx.vm_seed);
        sp_printf("memload: command %u: fill every page with byte 0x%02x\n", memload_cmd_seq(w),
                  arg & 0xff);
        return true;
    case ML_CMD_MIX:
        memload.args.fill = -1;
        memload_layout_classes(&memload.lay, &memload.args, blob_pages);
        memload_table_build(memload.table, &memload.lay, &memload.args, blob_pages,
                            memload.ctx.vm_seed);
        sp_printf("memload: command %u: back to the content mix\n", memload_cmd_seq(w));
        return true;
    case ML_CMD_RATE:
        if (arg > ML_MAX_RATE) {
            *status = 1;
            return false;
        }
        memload.args.rate = arg;
        return false;
    case ML_CMD_DUP:
        if (arg > 100) {
            *status = 1;
            return false;
        }
        memload.args.dup = arg;
        return false;
    case ML_CMD_EXIT:
        memload.exit_now = 1;
        return false;
    case ML_CMD_SET_ONE: {
        uint64_t slot = arg >> 8;
        if (slot >= memload.lay.pages) {
            *status = 1;
            return false;
        }
        /* One page only, rewritten here by vCPU 0; the round's verify checks it. */
        memload.table[slot] = memload_rec_make(ML_CLASS_FILL, arg & 0xff);
        memload_page_fill(memload_page(slot), &memload.ctx, memload.table[slot]);
        sp_printf("memload: command %u: page %lu now holds byte 0x%02x\n", memload_cmd_seq(w), slot,
                  arg & 0xff);
        return false;
    }
    default:
        sp_printf("memload: command %u: unknown opcode %u ignored\n", memload_cmd_seq(w),
                  memload_cmd_op(w));
        *status = 1;
        return false;
    }
}

void memload_command_run(uint32_t vcpu)
{
    static volatile uint32_t refill;
    static uint64_t status;
    uint64_t w = memload.cmd_word;
    if (vcpu == 0)
        refill = command_apply(w, &status);
    sp_barrier_wait(&memload.barrier, memload.nvcpus);
    if (refill)
        memload_fill_slice(vcpu);
    memload_churn_restart(vcpu);
    sp_barrier_wait(&memload.barrier, memload.nvcpus);
    if (vcpu != 0)
        return;
    if (refill) {
        memload_truth_report();
        sp_phase(ML_PHASE_REFILLED, "refilled");
    }
    memload.last_seq = memload_cmd_seq(w);
    memload.cmd_word = 0;
    memload.cmd_pending = 0;
    sp_result("cmd_status", status);
    sp_result("cmd_seq", memload.last_seq);
}
