/* SPDX-License-Identifier: MIT */
/*
 * fuzz-vmproto.c - libFuzzer target for the supervisor's side of the VM
 * process protocol (sharing/proto.h): what a compromised VM process could
 * send on its control channel.  Each input is one packet; the decoder
 * (sp_proto_recv: header, version, type, lengths, descriptors) checks it,
 * and an accepted one goes to the handler the supervisor's reader would
 * call (events, status replies) against a VM that has no process.  Any
 * crash, leak or sanitizer report is a finding.
 */
#include <stdint.h>
#include <string.h>

#include "vmm/super/vm-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static SpVm *vm;
    if (!vm)
        vm = sp_vm_new_unattached("fuzz");
    if (size > SP_PROTO_MAX_MSG + 64)
        return 0;
    sp_vm_feed_packet(vm, data, size);
    return 0;
}
