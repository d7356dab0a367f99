/* SPDX-License-Identifier: MIT */
/*
 * vm-error.h - SP_VM_ERROR, the error domain of a VM's life: loading its
 * payload or kernel, starting, pausing and cloning it.
 *
 * Other domains keep what is theirs: a failed system call is G_IO_ERROR
 * (g_io_error_from_errno), a bad --vm spec on the command line is
 * G_OPTION_ERROR (vm-config.c), and the engine and the reverse map have
 * SP_ENGINE_ERROR and SP_RMAP_ERROR.  Callers that answer a client (the
 * libvirt endpoint) pick the client's error code by call site, not by
 * domain.
 */
#ifndef SAMEPAGE_VMM_VM_ERROR_H
#define SAMEPAGE_VMM_VM_ERROR_H

#include <glib.h>

#define SP_VM_ERROR (sp_vm_error_quark())
GQuark sp_vm_error_quark(void);

typedef enum {
    SP_VM_ERROR_FAILED,      /* the operation did not complete (a pause that timed out) */
    SP_VM_ERROR_INVALID,     /* a configuration or argument the VM cannot take */
    SP_VM_ERROR_STATE,       /* the VM's state does not allow it ("is crashed, cannot ...") */
    SP_VM_ERROR_UNSUPPORTED, /* not for this kind of VM, kernel or guest size */
    SP_VM_ERROR_NO_SPACE,    /* what must be placed in guest RAM does not fit */
    SP_VM_ERROR_IMAGE,       /* a payload, kernel or initrd file that cannot be loaded */
    SP_VM_ERROR_SETUP,       /* its VM process could not be started or set up */
    SP_VM_ERROR_GONE,        /* its VM process is gone */
    SP_VM_ERROR_TIMEOUT,     /* its VM process did not answer in time */
    SP_VM_ERROR_REFUSED,     /* its VM process answered with an error (the message) */
} SpVmError;

#endif
