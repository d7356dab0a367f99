/* SPDX-License-Identifier: MIT */
/* vm-error.c - the SP_VM_ERROR domain (see vm-error.h). */
#include "vmm/vm-error.h"

/* Written out rather than G_DEFINE_QUARK, whose dashed name clang-format mangles. */
GQuark sp_vm_error_quark(void)
{
    return g_quark_from_static_string("sp-vm-error-quark");
}
