/* SPDX-License-Identifier: MIT */
/* clone-layout.c - the layers of clone-group files under a VM's RAM (see clone-layout.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmap/clone-file.h"
#include "rmap/clone-layout.h"
#include "rmap/rmap-priv.h"

static void layout_add_group(SpCloneLayout *l, SpCloneGroup *g)
{
    clone_group_layout_hold(g);
    g_ptr_array_add(l->groups, g);
}

SpCloneLayout *sp_clone_layout_new_flat(SpCloneGroup *g, uint64_t npages)
{
    SpCloneLayout *l = g_new0(SpCloneLayout, 1);
    l->groups = g_ptr_array_new();
    layout_add_group(l, g);
    l->layer = g_malloc0(npages);
    l->npages = npages;
    return l;
}

SpCloneLayout *sp_clone_layout_copy(const SpCloneLayout *l)
{
    SpCloneLayout *c = g_new0(SpCloneLayout, 1);
    c->groups = g_ptr_array_new();
    for (guint i = 0; i < l->groups->len; i++)
        layout_add_group(c, g_ptr_array_index(l->groups, i));
    c->layer = g_memdup2(l->layer, l->npages);
    c->npages = l->npages;
    return c;
}

/* Copy `layer` into l, each index checked against l's layers. */
static bool layer_set(SpCloneLayout *l, const uint8_t *layer, GError **error)
{
    for (uint64_t p = 0; p < l->npages; p++) {
        if (layer[p] >= l->groups->len) {
            g_set_error(error, SP_RMAP_ERROR, SP_RMAP_ERROR_INVALID,
                        "page %" G_GUINT64_FORMAT " names layer %u of %u", p, layer[p],
                        l->groups->len);
            return false;
        }
        l->layer[p] = layer[p];
    }
    return true;
}

SpCloneLayout *sp_clone_layout_from_fds(const int *fds, uint32_t nfds, const uint8_t *layer,
                                        uint64_t npages, GError **error)
{
    SpCloneLayout *l = NULL;
    SpCloneGroup *parent = NULL;
    uint32_t i = 0;
    for (; i < nfds; i++) {
        struct stat st;
        if (fds[i] < 0 || fstat(fds[i], &st) < 0 || !S_ISREG(st.st_mode) ||
            (uint64_t)st.st_size != npages * SP_PAGE_SIZE) {
            g_set_error(error, SP_RMAP_ERROR, SP_RMAP_ERROR_INVALID,
                        "layer %u is not a file of %" G_GUINT64_FORMAT " pages", i, npages);
            goto fail;
        }
        SpCloneGroup *g = sp_clone_group_new(fds[i], npages, parent);
        if (!l) {
            l = sp_clone_layout_new_flat(g, npages);
        } else {
            layout_add_group(l, g);
        }
        sp_clone_group_unref(g);
        parent = g;
    }
    if (layer && l && !layer_set(l, layer, error)) {
        sp_clone_layout_free(l);
        return NULL;
    }
    return l;
fail:
    for (uint32_t j = i; j < nfds; j++)
        if (fds[j] >= 0)
            close(fds[j]);
    sp_clone_layout_free(l);
    return NULL;
}

void sp_clone_layout_add_group(SpCloneLayout *l, SpCloneGroup *g)
{
    layout_add_group(l, g);
}

SpCloneLayout *sp_clone_layout_push(const SpCloneLayout *l, SpCloneGroup *g, const uint8_t *layer,
                                    GError **error)
{
    SpCloneLayout *n = sp_clone_layout_copy(l);
    layout_add_group(n, g);
    if (!layer_set(n, layer, error)) {
        sp_clone_layout_free(n);
        return NULL;
    }
    return n;
}

SpCloneGroup *sp_clone_layout_top(const SpCloneLayout *l)
{
    return g_ptr_array_index(l->groups, l->groups->len - 1);
}

void sp_clone_layout_free(SpCloneLayout *l)
{
    if (!l)
        return;
    for (guint i = 0; i < l->groups->len; i++)
        clone_group_layout_release(g_ptr_array_index(l->groups, i));
    g_ptr_array_free(l->groups, TRUE);
    g_free(l->layer);
    g_free(l);
}

uint64_t sp_clone_layout_runs(const SpCloneLayout *l)
{
    uint64_t runs = l->npages ? 1 : 0;
    for (uint64_t g = 1; g < l->npages; g++)
        runs += l->layer[g] != l->layer[g - 1];
    return runs;
}

bool sp_clone_layout_map(const SpCloneLayout *l, SpGuestMem *mem, GError **error)
{
    for (uint64_t g = 0; g < l->npages;) {
        uint64_t e = g + 1;
        while (e < l->npages && l->layer[e] == l->layer[g])
            e++;
        int fd = sp_clone_group_fd(g_ptr_array_index(l->groups, l->layer[g]));
        if (!sp_guest_mem_map_file_range(mem, fd, g * SP_PAGE_SIZE, (e - g) * SP_PAGE_SIZE, error))
            return false;
        g = e;
    }
    return true;
}

SpCloneLayout *sp_clone_layout_with_changed(const SpCloneLayout *l, const SpGuestMem *mem,
                                            const uint64_t *changed, uint64_t *copied,
                                            GError **error)
{
    *copied = 0;
    g_autofree uint8_t *pm = g_new0(uint8_t, l->npages);
    bool any = false;
    for (uint64_t g = 0; g < l->npages; g++) {
        pm[g] = (changed[g / 64] >> (g % 64)) & 1;
        any |= pm[g] != 0;
    }
    SpCloneLayout *n = sp_clone_layout_copy(l);
    if (!any)
        return n;
    int fd = memfd_create("samepage-clone-layer", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)mem->size) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot create a clone layer file: %s", g_strerror(errno));
        if (fd >= 0)
            close(fd);
        sp_clone_layout_free(n);
        return NULL;
    }
    uint8_t idx = (uint8_t)n->groups->len;
    for (uint64_t g = 0; g < l->npages;) {
        if (!pm[g]) {
            g++;
            continue;
        }
        uint64_t e = g + 1;
        while (e < l->npages && pm[e])
            e++;
        uint64_t off = g * SP_PAGE_SIZE, len = (e - g) * SP_PAGE_SIZE;
        for (uint64_t done = 0; done < len;) {
            ssize_t w = pwrite(fd, mem->host + off + done, len - done, (off_t)(off + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                            "cannot write a clone layer: %s", g_strerror(errno));
                close(fd);
                sp_clone_layout_free(n);
                return NULL;
            }
            done += (uint64_t)w;
        }
        memset(n->layer + g, idx, e - g);
        *copied += e - g;
        g = e;
    }
    SpCloneGroup *grp = sp_clone_group_new(fd, l->npages, sp_clone_layout_top(l));
    layout_add_group(n, grp);
    sp_clone_group_unref(grp);
    return n;
}
