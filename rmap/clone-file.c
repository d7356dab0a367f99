/* SPDX-License-Identifier: MIT */
/* clone-file.c - a clone group's frame file (see clone-file.h). */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rmap/clone-file.h"

#define CLONE_CHUNK (64ULL << 20) /* mincore window */

/* Write [off, off+len) of src into fd at the same offset. */
static bool file_write_range(int fd, const SpGuestMem *src, uint64_t off, uint64_t len,
                             GError **error)
{
    while (len) {
        ssize_t n = pwrite(fd, src->host + off, MIN(len, 1ULL << 30), (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot copy guest RAM into the clone file: %s",
                        n < 0 ? g_strerror(errno) : "short write");
            return false;
        }
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return true;
}

int sp_clone_file_create(const SpGuestMem *src, uint64_t *pages_copied, GError **error)
{
    int fd = memfd_create("samepage-clone-group", MFD_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "memfd_create for the clone file: %s", g_strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)src->size) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot size the clone file to %" G_GUINT64_FORMAT " MiB: %s", src->size >> 20,
                    g_strerror(errno));
        close(fd);
        return -1;
    }
    g_autofree unsigned char *vec = g_malloc(CLONE_CHUNK / SP_PAGE_SIZE);
    uint64_t copied = 0;
    for (uint64_t base = 0; base < src->size; base += CLONE_CHUNK) {
        uint64_t len = MIN(CLONE_CHUNK, src->size - base);
        uint64_t np = len / SP_PAGE_SIZE;
        if (mincore(src->host + base, len, vec) < 0)
            memset(vec, 1, np); /* unknown: copy it all */
        /* one pwrite per run of resident pages */
        for (uint64_t i = 0; i < np;) {
            if (!(vec[i] & 1)) {
                i++;
                continue;
            }
            uint64_t j = i;
            while (j < np && (vec[j] & 1))
                j++;
            if (!file_write_range(fd, src, base + i * SP_PAGE_SIZE, (j - i) * SP_PAGE_SIZE,
                                  error)) {
                close(fd);
                return -1;
            }
            copied += j - i;
            i = j;
        }
    }
    if (pages_copied)
        *pages_copied = copied;
    return fd;
}

bool sp_clone_file_write_pages(int fd, const SpGuestMem *src, const uint64_t *bitmap,
                               uint64_t *pages, GError **error)
{
    uint64_t np = src->size / SP_PAGE_SIZE, n = 0;
#define BIT(g) ((bitmap[(g) / 64] >> ((g) % 64)) & 1)
    for (uint64_t g = 0; g < np;) {
        if (!bitmap[g / 64]) {
            g = (g / 64 + 1) * 64;
            continue;
        }
        if (!BIT(g)) {
            g++;
            continue;
        }
        uint64_t e = g + 1;
        while (e < np && BIT(e))
            e++;
        if (!file_write_range(fd, src, g * SP_PAGE_SIZE, (e - g) * SP_PAGE_SIZE, error))
            return false;
        n += e - g;
        g = e;
    }
#undef BIT
    if (pages)
        *pages = n;
    return true;
}

void *sp_guest_mem_move_out(SpGuestMem *mem)
{
    void *to = mmap(NULL, mem->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (to == MAP_FAILED)
        return NULL;
    void *p = mremap(mem->host, mem->size, mem->size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (p == MAP_FAILED) {
        munmap(to, mem->size);
        return NULL;
    }
    return p;
}

bool sp_guest_mem_map_file(SpGuestMem *mem, int fd, GError **error)
{
    return sp_guest_mem_map_file_range(mem, fd, 0, mem->size, error);
}

bool sp_guest_mem_map_file_range(SpGuestMem *mem, int fd, uint64_t off, uint64_t len,
                                 GError **error)
{
    void *p = mmap(mem->host + off, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, (off_t)off);
    if (p == MAP_FAILED) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot map the clone file over guest RAM: %s", g_strerror(errno));
        return false;
    }
    madvise(p, len, MADV_DONTDUMP);
    madvise(p, len, MADV_NOHUGEPAGE);
    if (mem->uffd >= 0) {
        struct uffdio_register reg = {
            .range = {.start = (uintptr_t)p, .len = len},
            .mode = UFFDIO_REGISTER_MODE_WP,
        };
        if (ioctl(mem->uffd, UFFDIO_REGISTER, &reg) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "userfaultfd write-protect registration of the clone mapping: %s",
                        g_strerror(errno));
            return false;
        }
    }
    return true;
}
