/* SPDX-License-Identifier: MIT */
/* guest-mem.c - guest RAM mapping and its write-protect userfaultfd. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rmap/guest-mem.h"

GQuark sp_rmap_error_quark(void)
{
    return g_quark_from_static_string("sp-rmap-error-quark");
}

/* Features we use when the kernel has them: write-protection of shmem
 * mappings (merged pages map a memfd) and of not-yet-populated pages. */
static uint64_t uffd_wanted_features(void)
{
    uint64_t want = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
#ifdef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
    want |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
#endif
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return want;
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    uint64_t have = ioctl(fd, UFFDIO_API, &api) == 0 ? api.features : 0;
    close(fd);
    return (want & have) | UFFD_FEATURE_PAGEFAULT_FLAG_WP;
}

static int uffd_open(uint64_t *features, GError **error)
{
    uint64_t want = uffd_wanted_features();
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "userfaultfd: %s (samepage needs root or vm.unprivileged_userfaultfd=1)",
                    g_strerror(errno));
        return -1;
    }
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = want,
    };
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "userfaultfd write-protect mode is not supported by this kernel: %s",
                    g_strerror(errno));
        close(fd);
        return -1;
    }
    *features = api.features;
    return fd;
}

bool sp_guest_mem_init(SpGuestMem *mem, uint64_t size, GError **error)
{
    *mem = (SpGuestMem){.uffd = -1};
    if (size == 0 || size % SP_PAGE_SIZE) {
        g_set_error(error, SP_RMAP_ERROR, SP_RMAP_ERROR_INVALID,
                    "guest RAM size %" G_GUINT64_FORMAT " is not a non-zero multiple of 4 KiB",
                    size);
        return false;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot map %" G_GUINT64_FORMAT " MiB of guest RAM: %s", size >> 20,
                    g_strerror(errno));
        return false;
    }
    /* Guest RAM must never be dumped with the VMM nor given transparent huge
     * pages: sharing works on 4 KiB pages. */
    madvise(p, size, MADV_DONTDUMP);
    madvise(p, size, MADV_NOHUGEPAGE);
    mem->host = p;
    mem->size = size;

    mem->uffd = uffd_open(&mem->uffd_features, error);
    if (mem->uffd < 0)
        goto fail;
    struct uffdio_register reg = {
        .range = {.start = (uintptr_t)p, .len = size},
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    if (ioctl(mem->uffd, UFFDIO_REGISTER, &reg) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "userfaultfd write-protect registration of guest RAM failed: %s",
                    g_strerror(errno));
        goto fail;
    }
    return true;

fail:
    sp_guest_mem_destroy(mem);
    return false;
}

bool sp_guest_mem_set_mergeable(SpGuestMem *mem, GError **error)
{
    if (madvise(mem->host, mem->size, MADV_MERGEABLE) < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                    "madvise(MADV_MERGEABLE) of guest RAM failed: %s%s", g_strerror(e),
                    e == EINVAL ? " (host kernel without KSM, CONFIG_KSM?)" : "");
        return false;
    }
    return true;
}

void sp_guest_mem_destroy(SpGuestMem *mem)
{
    if (mem->uffd >= 0)
        close(mem->uffd);
    if (mem->host)
        munmap(mem->host, mem->size);
    *mem = (SpGuestMem){.uffd = -1};
}

void *sp_guest_mem_ptr(const SpGuestMem *mem, uint64_t gpa, uint64_t len)
{
    if (gpa > mem->size || len > mem->size - gpa)
        return NULL;
    return mem->host + gpa;
}

uint64_t sp_guest_mem_resident_pages(SpGuestMem *mem)
{
    uint64_t now = (uint64_t)g_get_monotonic_time();
    uint64_t at = __atomic_load_n(&mem->resident_at_us, __ATOMIC_ACQUIRE);
    uint64_t cost = __atomic_load_n(&mem->resident_cost_us, __ATOMIC_RELAXED);
    if (at && now - at < cost * SP_GUEST_MEM_RESIDENT_AGE)
        return __atomic_load_n(&mem->resident, __ATOMIC_RELAXED);
    /* Two threads may count at once: both figures are right. */
    const uint64_t chunk = 1ULL << 30; /* 256 Ki pages per mincore call */
    g_autofree unsigned char *vec = g_malloc(chunk / SP_PAGE_SIZE);
    uint64_t n = 0;
    for (uint64_t off = 0; off < mem->size; off += chunk) {
        uint64_t len = MIN(chunk, mem->size - off);
        if (mincore(mem->host + off, len, vec) < 0)
            continue;
        for (uint64_t i = 0; i < len / SP_PAGE_SIZE; i++)
            n += vec[i] & 1;
    }
    uint64_t done = (uint64_t)g_get_monotonic_time();
    __atomic_store_n(&mem->resident, n, __ATOMIC_RELAXED);
    __atomic_store_n(&mem->resident_cost_us, done - now, __ATOMIC_RELAXED);
    __atomic_store_n(&mem->resident_at_us, done, __ATOMIC_RELEASE);
    return n;
}
