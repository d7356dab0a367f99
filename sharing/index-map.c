/* SPDX-License-Identifier: MIT */
/* index-map.c - the content indexes' 8-byte-slot map (see index-map.h). */
#include <glib.h>
#include <string.h>

#include "sharing/index-map.h"

#define MIN_SLOTS 1024

/* The key's low half xor a bijective mix (murmur3's fmix32) of its high half. */
static uint32_t tag_of(uint64_t key)
{
    uint32_t hi = (uint32_t)(key >> 32);
    hi ^= hi >> 16;
    hi *= 0x85ebca6bu;
    hi ^= hi >> 13;
    hi *= 0xc2b2ae35u;
    hi ^= hi >> 16;
    return (uint32_t)key ^ hi;
}

static uint64_t home(const ShIndexMap *m, uint64_t slot)
{
    /* the tag's low bits, spread again so that capacities above 2^32 work */
    return ((slot >> 32) * 0x9e3779b97f4a7c15ULL >> 16) & m->mask;
}

static void alloc_slots(ShIndexMap *m, uint64_t cap)
{
    m->slots = g_new0(uint64_t, cap);
    m->mask = cap - 1;
    m->count = 0;
}

void index_map_init(ShIndexMap *m)
{
    alloc_slots(m, MIN_SLOTS);
}

void index_map_destroy(ShIndexMap *m)
{
    g_free(m->slots);
    memset(m, 0, sizeof(*m));
}

void index_map_clear(ShIndexMap *m)
{
    if (m->mask + 1 > MIN_SLOTS && m->count < (m->mask + 1) / 8) {
        index_map_destroy(m);
        alloc_slots(m, MIN_SLOTS);
        return;
    }
    memset(m->slots, 0, (m->mask + 1) * sizeof(uint64_t));
    m->count = 0;
}

/* The slot holding tag, or the empty slot that ends its cluster. */
static uint64_t find(const ShIndexMap *m, uint32_t tag)
{
    uint64_t i = home(m, (uint64_t)tag << 32);
    while (m->slots[i] && (uint32_t)(m->slots[i] >> 32) != tag)
        i = (i + 1) & m->mask;
    return i;
}

bool index_map_get(const ShIndexMap *m, uint64_t key, uint32_t *ref)
{
    uint64_t s = m->slots[find(m, tag_of(key))];
    if (!s)
        return false;
    *ref = (uint32_t)s - 1;
    return true;
}

static void put_slot(ShIndexMap *m, uint64_t s)
{
    uint64_t i = home(m, s);
    while (m->slots[i])
        i = (i + 1) & m->mask;
    m->slots[i] = s;
    m->count++;
}

static void grow(ShIndexMap *m)
{
    uint64_t *old = m->slots, cap = m->mask + 1;
    alloc_slots(m, cap * 2);
    for (uint64_t i = 0; i < cap; i++)
        if (old[i])
            put_slot(m, old[i]);
    g_free(old);
}

bool index_map_set(ShIndexMap *m, uint64_t key, uint32_t ref)
{
    g_return_val_if_fail(ref != UINT32_MAX, false);
    if ((m->count + 1) * 4 > (m->mask + 1) * 3)
        grow(m);
    uint32_t tag = tag_of(key);
    uint64_t i = find(m, tag), s = (uint64_t)tag << 32 | ((uint64_t)ref + 1);
    bool fresh = !m->slots[i];
    m->slots[i] = s;
    m->count += fresh;
    return fresh;
}

bool index_map_remove(ShIndexMap *m, uint64_t key)
{
    uint64_t i = find(m, tag_of(key));
    if (!m->slots[i])
        return false;
    /* Backward-shift: move later entries of the cluster into the hole. */
    for (uint64_t j = (i + 1) & m->mask; m->slots[j]; j = (j + 1) & m->mask) {
        uint64_t h = home(m, m->slots[j]);
        bool movable = (i <= j) ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = 0;
    m->count--;
    return true;
}

uint64_t index_map_bytes(const ShIndexMap *m)
{
    return (m->mask + 1) * sizeof(uint64_t);
}
