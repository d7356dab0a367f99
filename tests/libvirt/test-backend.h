/*
 * test-backend.h - an in-memory SpLvBackend for the endpoint's tests and the
 * fuzz target: a few domains with fixed figures, lifecycle operations that
 * change only this table, shm_* node parameters that read back what was
 * written.  NOT the product: samepaged provides the real backend.
 *
 * Not thread-safe: used from the protocol thread only.
 */
#pragma once

#include "vmm/libvirt/backend.h"

typedef struct SpLvTestBackend SpLvTestBackend;

/* Starts with "alpha" (running, id 1), "beta" (defined, shut off). */
SpLvTestBackend *sp_lv_test_backend_new(void);
void sp_lv_test_backend_free(SpLvTestBackend *tb);
/* The backend to hand to sp_lv_server_new / sp_lv_session_new. */
SpLvBackend sp_lv_test_backend_get(SpLvTestBackend *tb);
