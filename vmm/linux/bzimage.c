/* SPDX-License-Identifier: MIT */
/* bzimage.c - setup-header checks of a Linux bzImage (see bzimage.h). */
#include <string.h>

#include "vmm/linux/bzimage.h"
#include "vmm/vm-error.h"

#define HDRS_MAGIC 0x53726448u /* "HdrS" */
#define BOOT_FLAG  0xaa55u

static bool fail(GError **error, const char *what, const char *msg)
{
    g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_IMAGE, "%s: %s", what, msg);
    return false;
}

bool sp_bzimage_parse(const uint8_t *data, size_t size, const char *what, SpBzImage *out,
                      GError **error)
{
    struct setup_header h;
    size_t setup_size;

    memset(out, 0, sizeof *out);
    /* The header through `version` (0x1f1 .. 0x208) must be there to say anything. */
    if (size < 0x208)
        return fail(error, what, "not a Linux bzImage (file too short for a setup header)");
    memset(&h, 0, sizeof h);
    /* The jump at 0x200 skips the header: its end is 0x202 + the jump's byte offset. */
    size_t hdr_end = 0x202 + data[0x201];
    size_t hdr_len = hdr_end - SP_BZIMAGE_HDR_OFFSET;
    if (hdr_len > sizeof h)
        hdr_len = sizeof h;
    if (SP_BZIMAGE_HDR_OFFSET + hdr_len > size)
        hdr_len = size - SP_BZIMAGE_HDR_OFFSET;
    memcpy(&h, data + SP_BZIMAGE_HDR_OFFSET, hdr_len);

    if (h.header != HDRS_MAGIC || h.boot_flag != BOOT_FLAG)
        return fail(error, what, "not a Linux bzImage (no \"HdrS\" setup header)");
    if (h.version < SP_BZIMAGE_MIN_VERSION) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_UNSUPPORTED,
                    "%s: boot protocol %u.%02u is too old (samepage needs 2.12 or later for the "
                    "64-bit entry point)",
                    what, h.version >> 8, h.version & 0xff);
        return false;
    }
    if (hdr_len < offsetof(struct setup_header, init_size) + sizeof h.init_size)
        return fail(error, what, "setup header is truncated");
    if (!(h.loadflags & LOADED_HIGH))
        return fail(error, what, "not a bzImage (zImage kernels loaded low are not supported)");
    if (!(h.xloadflags & XLF_KERNEL_64)) {
        g_set_error(error, SP_VM_ERROR, SP_VM_ERROR_UNSUPPORTED,
                    "%s: kernel has no 64-bit entry point (not an x86-64 kernel?)", what);
        return false;
    }
    setup_size = ((size_t)(h.setup_sects ? h.setup_sects : 4) + 1) * 512;
    if (setup_size >= size)
        return fail(error, what, "truncated (file ends inside the real-mode setup)");
    if ((uint64_t)h.syssize * 16 > size - setup_size)
        return fail(error, what, "truncated (protected-mode kernel shorter than syssize)");
    if (h.init_size == 0 || h.init_size < size - setup_size)
        return fail(error, what, "setup header has an impossible init_size");
    if (h.cmdline_size == 0)
        return fail(error, what, "setup header has cmdline_size 0");
    if (h.pref_address < 0x100000 || h.pref_address > 0x40000000ull || (h.pref_address & 0xfff))
        return fail(error, what, "setup header has an unusable pref_address");

    out->hdr = h;
    out->hdr_len = hdr_len;
    out->version = h.version;
    out->kernel_offset = setup_size;
    out->kernel_size = size - setup_size;
    out->pref_address = h.pref_address;
    out->init_size = h.init_size;
    out->cmdline_max = h.cmdline_size;
    out->initrd_addr_max = h.initrd_addr_max;
    out->relocatable = h.relocatable_kernel != 0;
    return true;
}
