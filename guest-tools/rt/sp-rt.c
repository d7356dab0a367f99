/* SPDX-License-Identifier: MIT */
/* sp-rt.c - control-port calls, string helpers and a small printf. */
#include <stdarg.h>
#include "guest-tools/rt/sp-rt.h"

int32_t sp_ctl(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t *out0, uint64_t *out1)
{
    /* On the stack: the stacks live below 4 GiB (guest-abi.h) and the
     * alignment keeps the 32-byte block inside one page. */
    SpCtlRequest req __attribute__((aligned(32))) = {
        .op = op,
        .ret = SP_CTL_EINVAL,
        .arg0 = a0,
        .arg1 = a1,
        .arg2 = a2,
    };
    uint32_t addr = (uint32_t)(uintptr_t)&req;
    __asm__ volatile("outl %0, %1" : : "a"(addr), "Nd"((uint16_t)SP_CTL_PORT) : "memory");
    if (out0)
        *out0 = req.arg0;
    if (out1)
        *out1 = req.arg1;
    return req.ret;
}

size_t sp_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void sp_puts(const char *s)
{
    sp_ctl(SP_CTL_CONSOLE, (uintptr_t)s, sp_strlen(s), 0, NULL, NULL);
}

void sp_phase(uint64_t n, const char *label)
{
    sp_ctl(SP_CTL_PHASE, n, (uintptr_t)label, label ? sp_strlen(label) : 0, NULL, NULL);
}

void sp_result(const char *key, uint64_t value)
{
    sp_ctl(SP_CTL_RESULT, (uintptr_t)key, sp_strlen(key), value, NULL, NULL);
}

void sp_integrity(uint64_t gpa, uint64_t expected, uint64_t found)
{
    sp_ctl(SP_CTL_INTEGRITY, gpa, expected, found, NULL, NULL);
}

void sp_round(uint64_t round, uint64_t verified, uint64_t rewritten)
{
    sp_ctl(SP_CTL_ROUND, round, verified, rewritten, NULL, NULL);
}

uint64_t sp_time_ns(void)
{
    uint64_t t = 0;
    sp_ctl(SP_CTL_TIME, 0, 0, 0, &t, NULL);
    return t;
}

uint64_t sp_query(uint64_t key)
{
    uint64_t v = 0;
    if (sp_ctl(SP_CTL_QUERY, key, 0, 0, NULL, &v) != SP_CTL_OK)
        return 0;
    return v;
}

void sp_exit(int status)
{
    for (;;)
        sp_ctl(SP_CTL_EXIT, (uint64_t)(uint32_t)status, 0, 0, NULL, NULL);
}

void *memcpy(void *dst, const void *src, size_t n)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s || d >= s + n)
        return memcpy(dst, src, n);
    while (n--)
        d[n] = s[n];
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

void sp_barrier_wait(SpBarrier *b, uint32_t nvcpus)
{
    uint32_t gen = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == nvcpus) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&b->generation, 1, __ATOMIC_RELEASE);
        return;
    }
    uint32_t steps = 0;
    while (__atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) == gen)
        sp_spin_step(&steps);
}

/* --- formatting: %s %c %d %u %x %p %% with l/ll, width and 0 flag --- */

typedef struct Out {
    char *buf;
    size_t size;
    size_t len;
} Out;

static void out_c(Out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void out_num(Out *o, uint64_t v, unsigned base, bool neg, int width, char pad)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        tmp[n++] = '-';
    for (int i = n; i < width; i++)
        out_c(o, pad);
    while (n)
        out_c(o, tmp[--n]);
}

static int sp_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    Out o = {buf, size, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out_c(&o, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng++;
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                out_c(&o, *s);
            break;
        }
        case 'c':
            out_c(&o, (char)va_arg(ap, int));
            break;
        case 'd': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            out_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            out_num(&o, v, *fmt == 'x' ? 16 : 10, false, width, pad);
            break;
        }
        case 'p':
            out_c(&o, '0');
            out_c(&o, 'x');
            out_num(&o, (uintptr_t)va_arg(ap, void *), 16, false, width, pad);
            break;
        case '%':
            out_c(&o, '%');
            break;
        default:
            return -1;
        }
    }
    if (o.size)
        o.buf[o.len < o.size ? o.len : o.size - 1] = 0;
    return (int)o.len;
}

int sp_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = sp_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void sp_printf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    sp_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sp_puts(buf);
}
