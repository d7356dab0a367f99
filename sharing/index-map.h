/* SPDX-License-Identifier: MIT */
/*
 * index-map.h - the engine's content indexes (the stable index and the
 * unstable table, engine-priv.h): a 64-bit content key to a 32-bit value
 * (a frame id, a page reference), in 8-byte slots.
 *
 * A slot holds tag << 32 | (value + 1), 0 when empty.  The tag is the
 * key's low half (the content hash) xor a bijective mix of its high half
 * (share set and node, engine-priv.h sh_key), and also gives the slot's
 * home, so entries can be moved and rehashed without the key.  So:
 *   - keys with the same high half have the same tag only if equal: within
 *     a share set and node the map is exact;
 *   - two keys with the same tag and the same low half are equal: a caller
 *     that knows the hash of what it finds (the stable index's frames)
 *     knows by comparing hashes that the entry is its key's;
 *   - keys with different high and low halves collide about once in 2^32
 *     pairs and are then one entry.  The stable index chains frames per
 *     entry and every walker compares the frame's hash; the unstable
 *     table's entries are hints (the engine checks the share set, the VM
 *     compares the bytes before any merge).
 * The value must be below UINT32_MAX.
 *
 * Linear probing with backward-shift deletion (no tombstones).  Any
 * capacity (not only powers of two: a slot's home is the tag's spread
 * scaled to the capacity), grown to twice its size at 3/4 full.  Sized for
 * what it held at its fullest: index_map_clear makes the next round's
 * table just large enough (3/4 full) for the peak of the round that ends,
 * so a table refilled to about the same peak every round (the unstable
 * table, every pass) neither grows during a round nor sits at less than
 * half full; a removal that leaves it an eighth full shrinks it, and
 * index_map_trim (the stable index, after each pass) resizes a table less
 * than half full to 2/3 full once a pass went by without growth.  Not
 * thread-safe: the engine lock protects it.
 */
#ifndef SAMEPAGE_SHARING_INDEX_MAP_H
#define SAMEPAGE_SHARING_INDEX_MAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ShIndexMap {
    uint64_t *slots; /* tag << 32 | (value + 1); 0 = empty */
    uint64_t cap;    /* slots (at most 2^32) */
    uint64_t count;  /* entries in use */
    uint64_t peak;   /* the most entries since the last clear */
    bool grew;       /* doubled since the last index_map_trim */
} ShIndexMap;

void index_map_init(ShIndexMap *m);
void index_map_destroy(ShIndexMap *m);
/* Empty it, sized for the peak of the round that ends. */
void index_map_clear(ShIndexMap *m);
bool index_map_get(const ShIndexMap *m, uint64_t key, uint32_t *val);
/* Insert or replace; returns true if the key (its tag) was new. */
bool index_map_set(ShIndexMap *m, uint64_t key, uint32_t val);
bool index_map_remove(ShIndexMap *m, uint64_t key);
/* Less than half full: resize to 2/3 full (a table that is never cleared,
 * the stable index, after growth has left it 3/8 full) - unless it doubled
 * since the last call: while it grows (the engine's first passes) a trim
 * would undo each doubling, a rehash each way, so it waits for a call
 * with no growth before.  true if it did. */
bool index_map_trim(ShIndexMap *m);
uint64_t index_map_bytes(const ShIndexMap *m);

#endif
