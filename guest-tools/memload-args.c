/* SPDX-License-Identifier: MIT */
/*
 * memload-args.c - parse memload's "key=value,..." argument string.
 *
 * Pure code shared by the payload and the host unit tests: no printf, no
 * libc; error messages are assembled with a tiny appender.  Numbers are
 * decimal or 0x-hex, must fit their range, and may not be empty.  fill=
 * also accepts one non-digit character, meaning its ASCII code (fill=c).
 */
#include "guest-tools/memload-args.h"

void memload_args_defaults(MemloadArgs *a)
{
    *a = (MemloadArgs){
        .seed = 1,
        .pct_shared = 40,
        .pct_unique = 0,
        .pct_zero = 10,
        .pct_image = 10,
        .pages = 0,
        .rate = 0,
        .dup = 50,
        .pool = 1024,
        .rounds = 0,
        .interval_ms = 1000,
        .fill = -1,
        .mix_given = false,
    };
}

typedef struct Msg {
    char *buf;
    size_t size;
    size_t len;
} Msg;

static void msg_add(Msg *m, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++) {
        if (m->len + 1 < m->size)
            m->buf[m->len++] = s[i];
    }
    if (m->size)
        m->buf[m->len] = 0;
}

static bool fail(char *err, size_t errlen, const char *what, const char *item, size_t item_len)
{
    Msg m = {err, errlen, 0};
    msg_add(&m, "memload: bad argument '", 64);
    msg_add(&m, item, item_len > 200 ? 200 : item_len);
    msg_add(&m, "': ", 4);
    msg_add(&m, what, 200);
    return false;
}

static bool fail_global(char *err, size_t errlen, const char *what)
{
    Msg m = {err, errlen, 0};
    msg_add(&m, "memload: bad arguments: ", 64);
    msg_add(&m, what, 200);
    return false;
}

static bool key_is(const char *k, size_t klen, const char *name)
{
    size_t i = 0;
    for (; i < klen; i++)
        if (name[i] != k[i])
            return false;
    return name[i] == 0;
}

/* Parse [v, v+n) as decimal or 0x-hex, no sign, at most max. */
static bool parse_u64(const char *v, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t x = 0;
    unsigned base = 10;
    if (n >= 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        base = 16;
        v += 2;
        n -= 2;
    }
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        char c = v[i];
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return false;
        if (x > (max - d) / base)
            return false;
        x = x * base + d;
    }
    *out = x;
    return true;
}

enum { ML_GIVEN_SHARED = 1, ML_GIVEN_UNIQUE = 2, ML_GIVEN_ZERO = 4, ML_GIVEN_IMAGE = 8 };

bool memload_args_parse(MemloadArgs *a, const char *s, char *err, size_t errlen)
{
    if (errlen)
        err[0] = 0;
    unsigned given = 0;
    if (!s)
        return true;
    while (*s) {
        const char *item = s;
        size_t n = 0;
        while (item[n] && item[n] != ',')
            n++;
        s = item[n] ? item + n + 1 : item + n;
        if (n == 0)
            continue; /* tolerate ",," and a trailing comma */
        size_t klen = 0;
        while (klen < n && item[klen] != '=')
            klen++;
        if (klen == n)
            return fail(err, errlen, "expected key=value", item, n);
        const char *v = item + klen + 1;
        size_t vlen = n - klen - 1;
        uint64_t x = 0;

#define NUM(max, what)                                                                             \
    do {                                                                                           \
        if (!parse_u64(v, vlen, (max), &x))                                                        \
            return fail(err, errlen, what, item, n);                                               \
    } while (0)

        if (key_is(item, klen, "seed")) {
            NUM(UINT64_MAX, "seed must be a number (decimal or 0x hex)");
            a->seed = x;
        } else if (key_is(item, klen, "shared")) {
            NUM(100, "percentage must be 0..100");
            a->pct_shared = (uint32_t)x;
            given |= ML_GIVEN_SHARED;
        } else if (key_is(item, klen, "unique")) {
            NUM(100, "percentage must be 0..100");
            a->pct_unique = (uint32_t)x;
            given |= ML_GIVEN_UNIQUE;
        } else if (key_is(item, klen, "zero")) {
            NUM(100, "percentage must be 0..100");
            a->pct_zero = (uint32_t)x;
            given |= ML_GIVEN_ZERO;
        } else if (key_is(item, klen, "image")) {
            NUM(100, "percentage must be 0..100");
            a->pct_image = (uint32_t)x;
            given |= ML_GIVEN_IMAGE;
        } else if (key_is(item, klen, "pages")) {
            NUM(ML_MAX_PAGES, "pages must be 0 (all) .. 2^40");
            a->pages = x;
        } else if (key_is(item, klen, "rate")) {
            NUM(ML_MAX_RATE, "rate must be 0..100000000 pages per second");
            a->rate = x;
        } else if (key_is(item, klen, "dup")) {
            NUM(100, "dup must be a percentage 0..100");
            a->dup = (uint32_t)x;
        } else if (key_is(item, klen, "pool")) {
            NUM(ML_MAX_POOL, "pool must be 1..65536");
            if (x == 0)
                return fail(err, errlen, "pool must be 1..65536", item, n);
            a->pool = (uint32_t)x;
        } else if (key_is(item, klen, "rounds")) {
            NUM(UINT64_MAX, "rounds must be a number (0 = run until stopped)");
            a->rounds = x;
        } else if (key_is(item, klen, "interval")) {
            NUM(ML_MAX_INTERVAL, "interval must be 0..3600000 ms");
            a->interval_ms = x;
        } else if (key_is(item, klen, "stall")) {
            NUM(60000, "stall must be 0 (off) .. 60000 ms");
            a->stall_ms = (uint32_t)x;
        } else if (key_is(item, klen, "layout")) {
            if (key_is(v, vlen, "shuffled"))
                a->realistic = false;
            else if (key_is(v, vlen, "realistic"))
                a->realistic = true;
            else
                return fail(err, errlen, "layout must be shuffled or realistic", item, n);
        } else if (key_is(item, klen, "fill")) {
            if (vlen == 1 && !(v[0] >= '0' && v[0] <= '9'))
                x = (uint8_t)v[0];
            else
                NUM(255, "fill must be a byte value 0..255 or a single non-digit character");
            a->fill = (int)x;
        } else {
            return fail(err, errlen,
                        "unknown key (known: seed shared unique zero image pages rate dup pool "
                        "rounds interval fill stall layout)",
                        item, n);
        }
#undef NUM
    }
    if (given) {
        /* An explicit mix starts from nothing: unnamed classes get 0 %. */
        a->mix_given = true;
        if (!(given & ML_GIVEN_SHARED))
            a->pct_shared = 0;
        if (!(given & ML_GIVEN_UNIQUE))
            a->pct_unique = 0;
        if (!(given & ML_GIVEN_ZERO))
            a->pct_zero = 0;
        if (!(given & ML_GIVEN_IMAGE))
            a->pct_image = 0;
    }
    if (a->pct_shared + a->pct_unique + a->pct_zero + a->pct_image > 100) {
        return fail_global(err, errlen, "shared+unique+zero+image must not exceed 100");
    }
    if (a->fill >= 0 && a->mix_given) {
        return fail_global(err, errlen,
                           "fill= replaces the content mix: drop shared/unique/zero/image=");
    }
    return true;
}
