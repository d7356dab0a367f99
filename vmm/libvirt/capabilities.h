/* SPDX-License-Identifier: MIT */
/*
 * capabilities.h - the XML of virConnectGetCapabilities and
 * virConnectGetDomainCapabilities, written from the host description a
 * backend gives (SpLvHostCaps, backend.h).
 *
 * capabilities: the host (UUID, CPU arch/vendor/topology, NUMA cells with
 * their memory and CPUs, no security model) and the one guest kind
 * samepage runs (os type hvm, arch x86_64, domain types samepage and kvm,
 * the VM process program as emulator).  domcapabilities: what a definition
 * may ask for, in libvirt's schema; it says "supported='no'" for what
 * samepage keeps without acting on it (CPU modes, devices) so management
 * tools do not offer them.  Stateless; no locking.
 */
#pragma once

#include "vmm/libvirt/backend.h"

char *sp_lv_capabilities_xml(const SpLvHostCaps *c);
/* virttype: the domain type asked for ("samepage" if NULL). */
char *sp_lv_domcapabilities_xml(const SpLvHostCaps *c, const char *virttype);
