/* SPDX-License-Identifier: MIT */
/*
 * prom.h - a snapshot (snapshot.h) in Prometheus's text exposition format
 * 0.0.4: for every figure of the tables of figures.h that has a metric
 * name, its # HELP and # TYPE lines and one sample per object: node
 * figures without labels, VM figures labelled domain (and uuid when the
 * VM has one), clone-group figures labelled group and parent, and
 * samepage_vm_info{domain,uuid,sharing_domain,state} 1 for every VM.
 * Values are in base units (seconds, bytes); label values are escaped
 * (backslash, quote, newline).  Pure function of the snapshot.
 */
#ifndef SAMEPAGE_VMM_METRICS_PROM_H
#define SAMEPAGE_VMM_METRICS_PROM_H

#include "vmm/metrics/snapshot.h"

#define SP_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The exposition text (UTF-8). */
GBytes *sp_prom_render(const SpFigSnapshot *s);

#endif
