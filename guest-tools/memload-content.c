/* SPDX-License-Identifier: MIT */
/*
 * memload-content.c - generate and check page contents (pure, no I/O).
 *
 * See memload-content.h for the content model.  The loops work on 64-bit
 * words (the payload is built without SSE); check compares word by word and
 * only on a mismatch looks for the first differing byte inside that word.
 */
#include "guest-tools/memload-content.h"

/* Domain-separation tags so no two classes can produce the same key stream. */
#define ML_TAG_SHARED 0x5348415245443031ULL
#define ML_TAG_UNIQUE 0x554e495155453031ULL
#define ML_TAG_POOL   0x504f4f4c30303031ULL

uint64_t memload_vm_seed(uint64_t seed, uint64_t vm_id, const char *vm_name)
{
    uint64_t h = memload_mix64(seed ^ 0x766d736565643031ULL);
    h = memload_mix64(h ^ vm_id);
    for (size_t i = 0; vm_name && i < 64 && vm_name[i]; i++)
        h = memload_mix64(h ^ (uint8_t)vm_name[i]);
    return h;
}

uint64_t memload_content_key(const MemloadContentCtx *ctx, uint64_t rec)
{
    uint64_t id = memload_rec_id(rec);
    switch (memload_rec_class(rec)) {
    case ML_CLASS_SHARED:
        return memload_mix64(memload_mix64(ctx->common_seed ^ ML_TAG_SHARED) + id);
    case ML_CLASS_POOL:
        return memload_mix64(memload_mix64(ctx->common_seed ^ ML_TAG_POOL) + id);
    default:
        return memload_mix64(memload_mix64(ctx->vm_seed ^ ML_TAG_UNIQUE) + id);
    }
}

static const uint64_t *image_page(const MemloadContentCtx *ctx, uint64_t rec)
{
    uint64_t id = memload_rec_id(rec);
    if (!ctx->blob || id >= ctx->blob_pages)
        return NULL;
    return (const uint64_t *)(ctx->blob + id * ML_PAGE_SIZE);
}

static inline uint64_t fill_word(uint64_t rec)
{
    return (memload_rec_id(rec) & 0xff) * 0x0101010101010101ULL;
}

uint64_t memload_content_word(const MemloadContentCtx *ctx, uint64_t rec, uint32_t i)
{
    switch (memload_rec_class(rec)) {
    case ML_CLASS_ZERO:
        return 0;
    case ML_CLASS_FILL:
        return fill_word(rec);
    case ML_CLASS_IMAGE: {
        const uint64_t *src = image_page(ctx, rec);
        return src ? src[i] : 0;
    }
    default:
        return memload_mix64(memload_content_key(ctx, rec) + (uint64_t)(i + 1) * ML_GOLDEN);
    }
}

static void words_set(uint64_t *dst, uint64_t v)
{
    for (uint32_t i = 0; i < ML_PAGE_WORDS; i++)
        dst[i] = v;
}

void memload_page_fill(void *page, const MemloadContentCtx *ctx, uint64_t rec)
{
    uint64_t *dst = page;
    switch (memload_rec_class(rec)) {
    case ML_CLASS_ZERO:
        words_set(dst, 0);
        return;
    case ML_CLASS_FILL:
        words_set(dst, fill_word(rec));
        return;
    case ML_CLASS_IMAGE: {
        const uint64_t *src = image_page(ctx, rec);
        for (uint32_t i = 0; i < ML_PAGE_WORDS; i++)
            dst[i] = src ? src[i] : 0;
        return;
    }
    default: {
        uint64_t x = memload_content_key(ctx, rec);
        for (uint32_t i = 0; i < ML_PAGE_WORDS; i++) {
            x += ML_GOLDEN;
            dst[i] = memload_mix64(x);
        }
        return;
    }
    }
}

/* Slow path once a word differs: the first differing byte (little endian). */
static bool mismatch_at(uint32_t i, uint64_t exp, uint64_t got, MemloadMismatch *mm)
{
    uint64_t diff = exp ^ got;
    uint32_t byte = (uint32_t)(__builtin_ctzll(diff) / 8);
    if (mm) {
        mm->offset = i * 8 + byte;
        mm->expected = exp;
        mm->found = got;
    }
    return false;
}

bool memload_page_check(const void *page, const MemloadContentCtx *ctx, uint64_t rec,
                        MemloadMismatch *mm)
{
    const volatile uint64_t *p = page; /* the host may change it under us */
    switch (memload_rec_class(rec)) {
    case ML_CLASS_ZERO:
    case ML_CLASS_FILL: {
        uint64_t w = memload_rec_class(rec) == ML_CLASS_ZERO ? 0 : fill_word(rec);
        for (uint32_t i = 0; i < ML_PAGE_WORDS; i++) {
            uint64_t got = p[i];
            if (got != w)
                return mismatch_at(i, w, got, mm);
        }
        return true;
    }
    case ML_CLASS_IMAGE: {
        const uint64_t *src = image_page(ctx, rec);
        for (uint32_t i = 0; i < ML_PAGE_WORDS; i++) {
            uint64_t exp = src ? src[i] : 0, got = p[i];
            if (got != exp)
                return mismatch_at(i, exp, got, mm);
        }
        return true;
    }
    default: {
        uint64_t x = memload_content_key(ctx, rec);
        for (uint32_t i = 0; i < ML_PAGE_WORDS; i++) {
            x += ML_GOLDEN;
            uint64_t exp = memload_mix64(x), got = p[i];
            if (got != exp)
                return mismatch_at(i, exp, got, mm);
        }
        return true;
    }
    }
}

bool memload_page_is_zero(const void *page)
{
    const uint64_t *p = page;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < ML_PAGE_WORDS; i++)
        acc |= p[i];
    return acc == 0;
}

bool memload_page_equal(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < ML_PAGE_WORDS; i++)
        acc |= x[i] ^ y[i];
    return acc == 0;
}

uint64_t memload_page_hash(const void *page)
{
    const uint64_t *p = page;
    uint64_t h = 0x686173687061676bULL;
    for (uint32_t i = 0; i < ML_PAGE_WORDS; i++)
        h = (h ^ memload_mix64(p[i] + i)) * 0x100000001b3ULL;
    return memload_mix64(h);
}
