/* SPDX-License-Identifier: MIT */
/*
 * cand-map.h - the unstable table's map: a 64-bit content key to a 32-bit
 * page reference, in 8-byte slots (u64map.h takes 16).
 *
 * A slot holds tag << 32 | (ref + 1), 0 when empty.  The tag is the key's
 * low half (the engine's content hash) xor a bijective mix of its high
 * half (share set and node, engine-priv.h sh_key), and also gives the
 * slot's home, so entries can be moved and rehashed without the key.  Keys
 * with the same high half have the same tag only if they are equal: within
 * a share set and node the map is exact.  Keys with different high halves
 * and different low halves collide about once in 2^32 pairs and are then
 * one entry: a lookup may answer with a page of another share set (the
 * engine checks the share set) or, with merge_across_nodes=0, of another
 * node and always of another content (the VM compares the bytes before
 * any merge).  Callers that need exact keys use u64map.  ref must be below
 * UINT32_MAX.
 *
 * Linear probing with backward-shift deletion (no tombstones), grown at
 * 3/4 full, shrunk by cand_map_clear when an eighth full.  Not
 * thread-safe: the engine lock protects it.
 */
#ifndef SAMEPAGE_SHARING_CAND_MAP_H
#define SAMEPAGE_SHARING_CAND_MAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ShCandMap {
    uint64_t *slots; /* tag << 32 | (ref + 1); 0 = empty */
    uint64_t mask;   /* capacity - 1 (capacity a power of two) */
    uint64_t count;  /* entries in use */
} ShCandMap;

void cand_map_init(ShCandMap *m);
void cand_map_destroy(ShCandMap *m);
void cand_map_clear(ShCandMap *m);
bool cand_map_get(const ShCandMap *m, uint64_t key, uint32_t *ref);
/* Insert or replace; returns true if the key (its tag) was new. */
bool cand_map_set(ShCandMap *m, uint64_t key, uint32_t ref);
bool cand_map_remove(ShCandMap *m, uint64_t key);
uint64_t cand_map_bytes(const ShCandMap *m);

#endif
