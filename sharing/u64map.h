/* SPDX-License-Identifier: MIT */
/*
 * u64map.h - an open-addressing hash map from 64-bit keys to 64-bit values,
 * for the content indexes (16 bytes per slot, no allocation per entry).
 * Key 0 is reserved (empty); callers never use it.  Linear probing with
 * backward-shift deletion, so there are no tombstones.  Not thread-safe:
 * the engine lock protects every map.
 */
#ifndef SAMEPAGE_SHARING_U64MAP_H
#define SAMEPAGE_SHARING_U64MAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct U64Map {
    uint64_t *keys; /* 0 = empty slot */
    uint64_t *vals;
    uint64_t mask;  /* capacity - 1 (capacity a power of two) */
    uint64_t count; /* entries in use */
} U64Map;

void u64map_init(U64Map *m);
void u64map_destroy(U64Map *m);
void u64map_clear(U64Map *m);
bool u64map_get(const U64Map *m, uint64_t key, uint64_t *val);
/* Insert or replace; returns true if the key was new. */
bool u64map_set(U64Map *m, uint64_t key, uint64_t val);
bool u64map_remove(U64Map *m, uint64_t key);
uint64_t u64map_bytes(const U64Map *m);

#endif
