/* SPDX-License-Identifier: MIT */
/*
 * proto.c - framing, checking and descriptor passing of the supervisor <->
 * VM process protocol (proto.h has the rules; docs/process-model.md the
 * picture).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sharing/proto.h"

GQuark sp_proto_error_quark(void)
{
    return g_quark_from_static_string("sp-proto-error-quark");
}

/* Per type: its name, the payload length bounds and the descriptors a
 * request (or event) carries.  Replies are checked by their reader. */
typedef struct ProtoRule {
    uint16_t type;
    const char *name;
    uint32_t min_len, max_len;
    uint8_t min_fds, max_fds;
} ProtoRule;

#define MAXP (SP_PROTO_MAX_MSG - (uint32_t)sizeof(SpProtoHdr))

static const ProtoRule rules[] = {
    {SP_PROTO_HELLO, "HELLO", sizeof(SpProtoHello), sizeof(SpProtoHello), 0, 0},
    {SP_PROTO_CONFIG, "CONFIG", 1, MAXP, 0, 1},
    {SP_PROTO_START, "START", 0, 0, 0, 0},
    {SP_PROTO_STOP, "STOP", 0, 0, 0, 0},
    {SP_PROTO_PAUSE, "PAUSE", 0, 0, 0, 0},
    {SP_PROTO_RESUME, "RESUME", 0, 0, 0, 0},
    {SP_PROTO_COMMAND, "COMMAND", 8, 8, 0, 0},
    {SP_PROTO_STATUS, "STATUS", 0, 0, 0, 0},
    {SP_PROTO_CLONE_SAVE, "CLONE_SAVE", 4, 4, 0, 0},
    {SP_PROTO_CLONE_GROUP, "CLONE_GROUP", 4, 4, 1, 1},
    {SP_PROTO_CLONE_LOAD, "CLONE_LOAD", sizeof(SpProtoCloneLoad), sizeof(SpProtoCloneLoad), 1, 2},
    {SP_PROTO_QUIT, "QUIT", 0, 0, 0, 0},
    {SP_PROTO_TEST_HOOK, "TEST_HOOK", 4, 4, 0, 0},
    {SP_PROTO_SYNC, "SYNC", 0, 0, 0, 0},
    {SP_PROTO_IDENTITY, "IDENTITY", sizeof(SpProtoIdentity), sizeof(SpProtoIdentity), 0, 1},
    {SP_PROTO_LAYOUT, "LAYOUT", 4, 4, 0, 0},
    {SP_PROTO_NUMA_SET, "NUMA_SET", 5, 4 + 256, 0, 0},
    {SP_PROTO_NUMA_PAGES, "NUMA_PAGES", 0, 0, 0, 0},
    {SP_PROTO_EV_CONSOLE, "EV_CONSOLE", 0, 4096, 0, 0},
    {SP_PROTO_EV_PHASE, "EV_PHASE", 8, 8 + 256, 0, 0},
    {SP_PROTO_EV_RESULT, "EV_RESULT", 9, 8 + 64, 0, 0},
    {SP_PROTO_EV_INTEGRITY, "EV_INTEGRITY", 24, 24, 0, 0},
    {SP_PROTO_EV_ROUND, "EV_ROUND", 24, 24, 0, 0},
    {SP_PROTO_EV_ENDED, "EV_ENDED", sizeof(SpProtoStatus), MAXP, 0, 0},
    {SP_PROTO_M_ATTACH, "M_ATTACH", sizeof(SpProtoAttach), sizeof(SpProtoAttach), 1, 1},
    {SP_PROTO_M_SPACE, "M_SPACE", sizeof(SpProtoSpace), sizeof(SpProtoSpace), 1, 1},
    {SP_PROTO_M_BEGIN, "M_BEGIN", 0, 0, 0, 0},
    {SP_PROTO_M_SCAN, "M_SCAN", sizeof(SpProtoScan), sizeof(SpProtoScan), 0, 0},
    {SP_PROTO_M_CONTENT, "M_CONTENT", 8, MAXP, 0, 0},
    {SP_PROTO_M_MERGE, "M_MERGE", sizeof(SpProtoMergeItem), MAXP, 0, 0},
    {SP_PROTO_M_UNMERGE_ALL, "M_UNMERGE_ALL", 0, 0, 0, 0},
    {SP_PROTO_M_REPORT, "M_REPORT", 0, 0, 0, 0},
    {SP_PROTO_M_STATS, "M_STATS", 0, 0, 0, 0},
    {SP_PROTO_M_KNOBS, "M_KNOBS", sizeof(SpProtoKnobs), sizeof(SpProtoKnobs), 0, 0},
    {SP_PROTO_M_SYNC, "M_SYNC", 0, 0, 0, 0},
    {SP_PROTO_M_EVICT, "M_EVICT", sizeof(SpProtoEvict), sizeof(SpProtoEvict), 0, 0},
    {SP_PROTO_M_EVICT_DONE, "M_EVICT_DONE", 0, MAXP, 0, 0},
    {SP_PROTO_M_PREP, "M_PREP", 8, MAXP, 0, 0},
    {SP_PROTO_M_SWAP, "M_SWAP", 0, 0, 1, 1},
    {SP_PROTO_M_SWAP_DRAIN, "M_SWAP_DRAIN", 0, 0, 0, 0},
    {SP_PROTO_M_UNMERGE, "M_UNMERGE", 8, MAXP, 0, 0},
    {SP_PROTO_M_SWAP_STORE, "M_SWAP_STORE", sizeof(SpProtoSwapStore), sizeof(SpProtoSwapStore), 0,
     3},
    {SP_PROTO_S_IN, "S_IN", sizeof(SpProtoSwapIn),
     sizeof(SpProtoSwapIn) + sizeof(SpProtoSwapAhead) + SP_PROTO_SWAP_AHEAD_MAX * 8, 0, 0},
};

static const ProtoRule *rule_of(uint16_t type)
{
    for (size_t i = 0; i < G_N_ELEMENTS(rules); i++)
        if (rules[i].type == type)
            return &rules[i];
    return NULL;
}

const char *sp_proto_type_name(uint16_t type)
{
    const ProtoRule *r = rule_of(type);
    return r ? r->name : "unknown";
}

void sp_proto_msg_clear(SpProtoMsg *m)
{
    for (uint32_t i = 0; i < SP_PROTO_MAX_FDS; i++)
        if (i < m->hdr.nfds && m->fds[i] >= 0)
            close(m->fds[i]);
    g_free(m->payload);
    memset(m, 0, sizeof(*m));
}

int sp_proto_msg_take_fd(SpProtoMsg *m, uint32_t i)
{
    if (i >= m->hdr.nfds || i >= SP_PROTO_MAX_FDS)
        return -1;
    int fd = m->fds[i];
    m->fds[i] = -1;
    return fd;
}

bool sp_proto_send(int sock, uint16_t type, uint32_t seq, uint32_t pflags, const void *payload,
                   uint32_t len, const int *fds, uint32_t nfds, int sendflags, GError **error)
{
    if (len > MAXP || nfds > SP_PROTO_MAX_FDS) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED,
                    "message %s too large (%u bytes, %u descriptors)", sp_proto_type_name(type),
                    len, nfds);
        return false;
    }
    SpProtoHdr h = {.magic = SP_PROTO_MAGIC,
                    .version = SP_PROTO_VERSION,
                    .type = type,
                    .seq = seq,
                    .flags = pflags,
                    .len = len,
                    .nfds = nfds};
    struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof(h)},
                           {.iov_base = (void *)payload, .iov_len = len}};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * SP_PROTO_MAX_FDS)];
    } cbuf;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    if (nfds) {
        memset(&cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | sendflags);
        if (n == (ssize_t)(sizeof(h) + len))
            return true;
        if (n < 0 && errno == EINTR)
            continue;
        int e = n < 0 ? errno : EIO;
        g_set_error(error, SP_PROTO_ERROR,
                    e == EPIPE || e == ECONNRESET ? SP_PROTO_ERR_CLOSED : SP_PROTO_ERR_IO,
                    "cannot send %s: %s", sp_proto_type_name(type), g_strerror(e));
        return false;
    }
}

bool sp_proto_reply(int sock, const SpProtoHdr *req, const void *payload, uint32_t len,
                    const int *fds, uint32_t nfds, GError **error)
{
    return sp_proto_send(sock, req->type, req->seq, SP_PROTO_F_REPLY, payload, len, fds, nfds, 0,
                         error);
}

bool sp_proto_reply_error(int sock, const SpProtoHdr *req, const char *message)
{
    size_t len = MIN(strlen(message), 1024);
    return sp_proto_send(sock, req->type, req->seq, SP_PROTO_F_REPLY | SP_PROTO_F_ERROR, message,
                         (uint32_t)len, NULL, 0, 0, NULL);
}

bool sp_proto_check(const SpProtoHdr *h, size_t packet_len, uint32_t nfds, GError **error)
{
    const char *why = NULL;
    const ProtoRule *r = NULL;
    if (packet_len < sizeof(*h))
        why = "shorter than a header";
    else if (h->magic != SP_PROTO_MAGIC)
        why = "bad magic";
    else if (h->version != SP_PROTO_VERSION)
        why = "another protocol version";
    else if (!(r = rule_of(h->type)))
        why = "unknown type";
    else if (h->len != packet_len - sizeof(*h))
        why = "length does not match the packet";
    else if (h->nfds != nfds || nfds > SP_PROTO_MAX_FDS)
        why = "descriptor count does not match";
    else if (h->flags & ~(SP_PROTO_F_REPLY | SP_PROTO_F_ERROR))
        why = "unknown flags";
    else if ((h->flags & SP_PROTO_F_ERROR) && !(h->flags & SP_PROTO_F_REPLY))
        why = "an error that is not a reply";
    else if ((h->flags & SP_PROTO_F_ERROR) && (h->len > 1024 || nfds))
        why = "error reply too large";
    else if (!(h->flags & SP_PROTO_F_REPLY) &&
             (h->len < r->min_len || h->len > r->max_len || nfds < r->min_fds || nfds > r->max_fds))
        why = "payload or descriptors out of bounds for its type";
    if (why) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED,
                    "malformed message (%s%s%s, %zu bytes, %u descriptors)", why,
                    packet_len >= sizeof(*h) ? ", type " : "",
                    packet_len >= sizeof(*h) ? sp_proto_type_name(h->type) : "", packet_len, nfds);
        return false;
    }
    return true;
}

bool sp_proto_recv(int sock, SpProtoMsg *m, int timeout_ms, GError **error)
{
    memset(m, 0, sizeof(*m));
    for (uint32_t i = 0; i < SP_PROTO_MAX_FDS; i++)
        m->fds[i] = -1;
    if (timeout_ms >= 0) {
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int r;
        do
            r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r == 0) {
            g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_TIMEOUT, "no message within %d ms",
                        timeout_ms);
            return false;
        }
    }
    /* One byte more than the largest message tells a too-large one. */
    g_autofree uint8_t *buf = g_malloc(SP_PROTO_MAX_MSG + 1);
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * SP_PROTO_MAX_FDS)];
    } cbuf;
    struct iovec iov = {.iov_base = buf, .iov_len = SP_PROTO_MAX_MSG + 1};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf)};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        int e = n < 0 ? errno : 0;
        g_set_error(error, SP_PROTO_ERROR,
                    n == 0 || e == ECONNRESET ? SP_PROTO_ERR_CLOSED : SP_PROTO_ERR_IO, "%s",
                    n == 0 ? "the peer closed the channel" : g_strerror(e));
        return false;
    }
    /* Collect descriptors first, so that every path below closes them. */
    uint32_t nfds = 0;
    bool fd_trunc = (mh.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int tmp[SP_PROTO_MAX_FDS];
        memcpy(tmp, CMSG_DATA(c), MIN(k, (size_t)SP_PROTO_MAX_FDS) * sizeof(int));
        for (size_t i = 0; i < k && i < SP_PROTO_MAX_FDS; i++) {
            if (nfds < SP_PROTO_MAX_FDS)
                m->fds[nfds++] = tmp[i];
            else
                close(tmp[i]);
        }
    }
    m->hdr.nfds = nfds;
    SpProtoHdr h = {0};
    memcpy(&h, buf, MIN((size_t)n, sizeof(h)));
    if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > SP_PROTO_MAX_MSG || fd_trunc) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED,
                    "malformed message (larger than %u bytes or with too many descriptors)",
                    SP_PROTO_MAX_MSG);
        sp_proto_msg_clear(m);
        return false;
    }
    if (!sp_proto_check(&h, (size_t)n, nfds, error)) {
        sp_proto_msg_clear(m);
        return false;
    }
    m->hdr = h;
    m->payload = g_memdup2(buf + sizeof(h), h.len ? h.len : 1);
    return true; /* an error reply too: its flags say so (sp_proto_reply_text) */
}

bool sp_proto_socketpair(int sv[2], GError **error)
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "socketpair: %s", g_strerror(errno));
        return false;
    }
    return true;
}

bool sp_proto_is_error(const SpProtoMsg *m, GError **error)
{
    if (!(m->hdr.flags & SP_PROTO_F_ERROR))
        return false;
    g_autofree char *text = g_strndup((const char *)m->payload, m->hdr.len);
    g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_REMOTE, "%s", text);
    return true;
}

/* --- blobs --- */

#define BLOB_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int sp_proto_blob_new(const void *data, uint64_t len, GError **error)
{
    int fd = memfd_create("samepage-blob", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "memfd_create: %s", g_strerror(errno));
        return -1;
    }
    const uint8_t *p = data;
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, MIN(len - done, 1u << 30), (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "cannot fill a blob: %s",
                        g_strerror(n < 0 ? errno : EIO));
            close(fd);
            return -1;
        }
        done += (uint64_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, BLOB_SEALS) < 0) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "cannot seal a blob: %s",
                    g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void *sp_proto_blob_map(int fd, uint64_t expect, uint64_t max, uint64_t *len, GError **error)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    const char *why = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        why = "not a file";
    else if (seals < 0 || (seals & BLOB_SEALS) != BLOB_SEALS)
        why = "not sealed";
    else if (expect ? (uint64_t)st.st_size != expect
                    : (uint64_t)st.st_size > MIN(max, SP_PROTO_MAX_BLOB))
        why = "wrong size";
    if (why) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_MALFORMED, "malformed blob (%s)", why);
        return NULL;
    }
    *len = (uint64_t)st.st_size;
    if (!st.st_size)
        return g_malloc0(1) /* never dereferenced; freed by sp_proto_blob_unmap */;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        g_set_error(error, SP_PROTO_ERROR, SP_PROTO_ERR_IO, "cannot map a blob: %s",
                    g_strerror(errno));
        return NULL;
    }
    return p;
}

void sp_proto_blob_unmap(void *p, uint64_t len)
{
    if (!p)
        return;
    if (len)
        munmap(p, len);
    else
        g_free(p);
}

/* --- reader --- */

bool sp_proto_read(SpProtoReader *r, void *out, size_t n)
{
    const void *p = sp_proto_read_ptr(r, n);
    if (!p) {
        memset(out, 0, n);
        return false;
    }
    memcpy(out, p, n);
    return true;
}

const void *sp_proto_read_ptr(SpProtoReader *r, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

const void *sp_proto_read_array(SpProtoReader *r, uint64_t count, size_t size)
{
    if (size && count > r->left / size) {
        r->bad = true;
        return NULL;
    }
    return sp_proto_read_ptr(r, (size_t)count * size);
}

char *sp_proto_read_text(SpProtoReader *r, size_t len)
{
    const char *p = sp_proto_read_ptr(r, len);
    if (!p)
        return NULL;
    char *s = g_malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        s[i] = (c == '\t' || (c >= 0x20 && c != 0x7f)) ? (char)c : '?';
    }
    s[len] = 0;
    return s;
}
