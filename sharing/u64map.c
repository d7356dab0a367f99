/* SPDX-License-Identifier: MIT */
/* u64map.c - open-addressing u64 -> u64 map (see u64map.h). */
#include <glib.h>
#include <string.h>

#include "sharing/u64map.h"

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static void alloc_slots(U64Map *m, uint64_t cap)
{
    m->keys = g_new0(uint64_t, cap);
    m->vals = g_new(uint64_t, cap);
    m->mask = cap - 1;
    m->count = 0;
}

void u64map_init(U64Map *m)
{
    alloc_slots(m, 1024);
}

void u64map_destroy(U64Map *m)
{
    g_free(m->keys);
    g_free(m->vals);
    memset(m, 0, sizeof(*m));
}

void u64map_clear(U64Map *m)
{
    if (m->mask + 1 > 1024 && m->count < (m->mask + 1) / 8) {
        u64map_destroy(m);
        alloc_slots(m, 1024);
        return;
    }
    memset(m->keys, 0, (m->mask + 1) * sizeof(uint64_t));
    m->count = 0;
}

bool u64map_get(const U64Map *m, uint64_t key, uint64_t *val)
{
    for (uint64_t i = mix(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return true;
        }
        if (!m->keys[i])
            return false;
    }
}

static void grow(U64Map *m)
{
    uint64_t *ok = m->keys, *ov = m->vals, cap = m->mask + 1;
    alloc_slots(m, cap * 2);
    for (uint64_t i = 0; i < cap; i++)
        if (ok[i])
            u64map_set(m, ok[i], ov[i]);
    g_free(ok);
    g_free(ov);
}

bool u64map_set(U64Map *m, uint64_t key, uint64_t val)
{
    if ((m->count + 1) * 4 > (m->mask + 1) * 3)
        grow(m);
    for (uint64_t i = mix(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return false;
        }
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->count++;
            return true;
        }
    }
}

bool u64map_remove(U64Map *m, uint64_t key)
{
    uint64_t i = mix(key) & m->mask;
    while (m->keys[i] != key) {
        if (!m->keys[i])
            return false;
        i = (i + 1) & m->mask;
    }
    /* Backward-shift: move later entries of the cluster into the hole. */
    for (uint64_t j = (i + 1) & m->mask; m->keys[j]; j = (j + 1) & m->mask) {
        uint64_t home = mix(m->keys[j]) & m->mask;
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->count--;
    return true;
}

uint64_t u64map_bytes(const U64Map *m)
{
    return (m->mask + 1) * 16;
}
