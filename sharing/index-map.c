/* SPDX-License-Identifier: MIT */
/* index-map.c - the content indexes' 8-byte-slot map (see index-map.h). */
#include <glib.h>
#include <string.h>

#include "sharing/index-map.h"

#define MIN_SLOTS 1024
#define MAX_SLOTS (1ULL << 32)

/* The key's low half xor a bijective mix (murmur3's fmix32) of its high half. */
static uint32_t tag_of(uint64_t key)
{
    uint32_t hi = (uint32_t)(key >> 32);
    hi ^= hi >> 16;
    hi *= 0x85ebca6bu;
    hi ^= hi >> 16;
    hi *= 0xc2b2ae35u;
    hi ^= hi >> 16;
    return (uint32_t)key ^ hi;
}

static uint64_t home(const ShIndexMap *m, uint64_t slot)
{
    /* the tag spread again (a bijection), then scaled to the capacity */
    uint32_t spread = (uint32_t)(slot >> 32) * 0x9e3779b1u;
    return (uint64_t)spread * m->cap >> 32;
}

static uint64_t next(const ShIndexMap *m, uint64_t i)
{
    return i + 1 == m->cap ? 0 : i + 1;
}

/* Slots for n entries at 3/4 full, in whole 4 KiB pages. */
static uint64_t slots_for(uint64_t n)
{
    uint64_t cap = MAX(MIN_SLOTS, n * 4 / 3 + 1);
    cap = (cap + 511) / 512 * 512;
    return MIN(cap, MAX_SLOTS);
}

static void alloc_slots(ShIndexMap *m, uint64_t cap)
{
    m->slots = g_new0(uint64_t, cap);
    m->cap = cap;
    m->count = 0;
}

void index_map_init(ShIndexMap *m)
{
    alloc_slots(m, MIN_SLOTS);
    m->peak = 0;
    m->grew = false;
}

void index_map_destroy(ShIndexMap *m)
{
    g_free(m->slots);
    memset(m, 0, sizeof(*m));
}

void index_map_clear(ShIndexMap *m)
{
    uint64_t want = slots_for(m->peak);
    m->peak = 0;
    if (want != m->cap) {
        g_free(m->slots);
        alloc_slots(m, want);
        return;
    }
    memset(m->slots, 0, m->cap * sizeof(uint64_t));
    m->count = 0;
}

/* The slot holding tag, or the empty slot that ends its cluster. */
static uint64_t find(const ShIndexMap *m, uint32_t tag)
{
    uint64_t i = home(m, (uint64_t)tag << 32);
    while (m->slots[i] && (uint32_t)(m->slots[i] >> 32) != tag)
        i = next(m, i);
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
        i = next(m, i);
    m->slots[i] = s;
    m->count++;
}

/* The same entries in cap slots. */
static void resize(ShIndexMap *m, uint64_t cap)
{
    uint64_t *old = m->slots, n = m->cap;
    alloc_slots(m, cap);
    for (uint64_t i = 0; i < n; i++)
        if (old[i])
            put_slot(m, old[i]);
    g_free(old);
}

bool index_map_set(ShIndexMap *m, uint64_t key, uint32_t ref)
{
    g_return_val_if_fail(ref != UINT32_MAX, false);
    if ((m->count + 1) * 4 > m->cap * 3) {
        g_return_val_if_fail(m->cap < MAX_SLOTS, false);
        resize(m, MIN(m->cap * 2, MAX_SLOTS));
        m->grew = true;
    }
    uint32_t tag = tag_of(key);
    uint64_t i = find(m, tag), s = (uint64_t)tag << 32 | ((uint64_t)ref + 1);
    bool fresh = !m->slots[i];
    m->slots[i] = s;
    m->count += fresh;
    m->peak = MAX(m->peak, m->count);
    return fresh;
}

bool index_map_remove(ShIndexMap *m, uint64_t key)
{
    uint64_t i = find(m, tag_of(key));
    if (!m->slots[i])
        return false;
    /* Backward-shift: move later entries of the cluster into the hole. */
    for (uint64_t j = next(m, i); m->slots[j]; j = next(m, j)) {
        uint64_t h = home(m, m->slots[j]);
        bool movable = (i <= j) ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = 0;
    m->count--;
    if (m->cap > MIN_SLOTS && m->count * 8 < m->cap) /* an eighth full: half full after */
        resize(m, MAX(slots_for(m->count * 3 / 2), MIN_SLOTS));
    return true;
}

bool index_map_trim(ShIndexMap *m)
{
    bool grew = m->grew;
    m->grew = false;
    if (grew || m->cap <= MIN_SLOTS || m->count * 2 >= m->cap)
        return false;
    uint64_t want = MAX(MIN_SLOTS, (m->count * 3 / 2 + 511) / 512 * 512);
    if (want >= m->cap)
        return false;
    resize(m, want);
    return true;
}

uint64_t index_map_bytes(const ShIndexMap *m)
{
    return m->cap * sizeof(uint64_t);
}
