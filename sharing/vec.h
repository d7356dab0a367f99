/* SPDX-License-Identifier: MIT */
/*
 * vec.h - a growable array of fixed-size elements, for the engine's tables
 * by frame (frame records, group frames, the pools' offset tables, the
 * mapper lists' headers).
 *
 * These only grow, one element at a time as frames are made, and live as
 * long as the engine: a GArray doubles its allocation, so up to half of
 * what it held was room never used, which metadata_bytes (what
 * general_profit subtracts) did not see.  This grows by an eighth (64
 * elements at least) and metadata_bytes counts every element allocated:
 * at most an eighth above what the elements need.  Elements past len are
 * zero.  Not thread-safe: the engine lock protects each one.
 */
#ifndef SAMEPAGE_SHARING_VEC_H
#define SAMEPAGE_SHARING_VEC_H

#include <glib.h>
#include <stdint.h>
#include <string.h>

typedef struct ShVec {
    uint8_t *data;
    uint32_t len; /* elements in use */
    uint32_t cap; /* elements allocated */
    uint32_t elt; /* bytes an element */
} ShVec;

#define sh_vec_index(v, T, i) (((T *)(void *)(v)->data)[(i)])

static inline ShVec *sh_vec_new(uint32_t elt)
{
    ShVec *v = g_new0(ShVec, 1);
    v->elt = elt;
    return v;
}

static inline void sh_vec_free(ShVec *v)
{
    if (!v)
        return;
    g_free(v->data);
    g_free(v);
}

/* n elements; those added are zero. */
static inline void sh_vec_set_size(ShVec *v, uint32_t n)
{
    if (n > v->cap) {
        uint64_t cap = MAX((uint64_t)n, (uint64_t)v->cap + v->cap / 8 + 64);
        cap = MIN(cap, (uint64_t)UINT32_MAX);
        v->data = g_realloc_n(v->data, cap, v->elt);
        memset(v->data + (uint64_t)v->cap * v->elt, 0, (cap - v->cap) * v->elt);
        v->cap = (uint32_t)cap;
    }
    if (n > v->len)
        memset(v->data + (uint64_t)v->len * v->elt, 0, (uint64_t)(n - v->len) * v->elt);
    v->len = n;
}

/* Bytes allocated, every element counted. */
static inline uint64_t sh_vec_bytes(const ShVec *v)
{
    return (uint64_t)v->cap * v->elt;
}

#endif
