# libvirt-robust.py - hostile input on the libvirt endpoint's sockets:
# garbage, a too-short length, an oversized length, truncated arguments,
# trailing bytes, a wrong program, a reply-type message, a half packet left
# hanging, 60 concurrent connections.  Each bad connection is closed alone:
# the server process, an open python3-libvirt connection and new
# connections keep working throughout.
import os
import random
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libvirt  # noqa: E402
import lvtest  # noqa: E402
from lvtest import REMOTE_PROGRAM, packet, raw_connect, read_packet  # noqa: E402

libvirt.registerErrorHandler(lambda ctx, err: None, None)
tap = lvtest.Tap(22)
srv = lvtest.TestServer()
AUTH_LIST, OPEN, LOOKUP_BY_NAME = 66, 1, 23


def others_ok(desc):
    """The long-lived connection and a fresh one both still work."""
    try:
        ok = len(conn.listAllDomains()) == 2
        c2 = libvirt.openReadOnly(srv.rouri)
        ok = ok and c2.lookupByName("alpha").ID() == 1
        c2.close()
    except libvirt.libvirtError as e:
        ok = False
        desc += " (%s)" % e
    tap.check(ok and srv.alive(), "server and other connections carry on after " + desc)


def opened():
    s = raw_connect(srv.rw)
    s.sendall(packet(REMOTE_PROGRAM, OPEN, 1, b"\0\0\0\0\0\0\0\0"))
    hdr, _ = read_packet(s)
    assert hdr[5] == 0
    return s


try:
    conn = libvirt.open(srv.uri)

    s = raw_connect(srv.rw)
    random.seed(6)
    s.sendall(bytes(random.getrandbits(8) for _ in range(4096)))
    tap.check(lvtest.closed_by_server(s), "garbage: connection closed")
    others_ok("garbage")

    s = raw_connect(srv.rw)
    s.sendall(struct.pack(">I", 8) + b"\0" * 4)
    tap.check(lvtest.closed_by_server(s), "length under a header: connection closed")

    s = raw_connect(srv.rw)
    s.sendall(struct.pack(">I", 64 << 20))  # 64 MiB, more than the 1 MiB limit
    tap.check(lvtest.closed_by_server(s), "oversized length word: closed before any body is sent")
    s = raw_connect(srv.rw)
    try:
        s.sendall(struct.pack(">I", (1 << 20) + 4) + b"\0" * (1 << 20))
    except (BrokenPipeError, ConnectionResetError):
        pass
    tap.check(lvtest.closed_by_server(s), "1 MiB + 4 packet: connection closed")
    others_ok("oversized messages")

    s = opened()
    s.sendall(packet(REMOTE_PROGRAM, LOOKUP_BY_NAME, 5, struct.pack(">I", 1000) + b"abcd"))
    r = read_packet(s)
    code, msg = lvtest.error_message(r[1]) if r else (None, None)
    tap.check(r is not None and r[0][5] == 1 and r[0][4] == 5 and code == 39
              and "cannot decode" in msg, "truncated arguments: RPC error reply", msg)
    tap.check(lvtest.closed_by_server(s), "truncated arguments: then closed")

    s = opened()
    s.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 6, b"\0\0\0\0"))
    r = read_packet(s)
    tap.check(r is not None and lvtest.error_message(r[1])[0] == 39
              and lvtest.closed_by_server(s), "trailing bytes after the arguments: error, closed")
    others_ok("malformed arguments")

    s = raw_connect(srv.rw)
    s.sendall(packet(0x20008087, 1, 7))  # the QEMU program
    r = read_packet(s)
    msg = lvtest.error_message(r[1])[1] if r else None
    tap.check(r is not None and "cannot find program" in msg and lvtest.closed_by_server(s),
              "wrong program: error reply, closed", msg)
    s = raw_connect(srv.rw)
    s.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 8, mtype=1))
    tap.check(lvtest.closed_by_server(s), "REPLY-type message from a client: closed")
    s = raw_connect(srv.rw)
    s.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 8, vers=2))
    r = read_packet(s)
    tap.check(r is not None and lvtest.closed_by_server(s), "wrong version: error reply, closed")
    others_ok("wrong program, type and version")

    s = opened()
    s.sendall(packet(REMOTE_PROGRAM, 9999, 9))
    r = read_packet(s)
    code, msg = lvtest.error_message(r[1])
    s.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 10))
    r2 = read_packet(s)
    tap.check(code == 39 and msg == "unknown procedure: 9999" and r2[0][4] == 10
              and r2[0][5] == 0, "unknown procedure: error reply, connection stays usable",
              msg)

    s = raw_connect(srv.ro)
    s.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 12) + packet(REMOTE_PROGRAM, AUTH_LIST, 13))
    s.shutdown(socket.SHUT_WR)
    r1, r2 = read_packet(s), read_packet(s)
    tap.check(r1 and r2 and (r1[0][4], r2[0][4]) == (12, 13) and lvtest.closed_by_server(s),
              "calls sent before a half-close are still answered, then closed")

    hang = raw_connect(srv.rw)
    hang.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 11)[:10])
    others_ok("a half packet left hanging")
    hang.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 11)[10:])
    r = read_packet(hang)
    tap.check(r is not None and r[0][4] == 11, "the half packet completes later and is answered")

    socks = [raw_connect(srv.ro) for _ in range(60)]
    for i, s in enumerate(socks):
        s.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 1000 + i))
    serials = [read_packet(s)[0][4] for s in socks]
    tap.check(serials == [1000 + i for i in range(60)], "60 concurrent connections answered")
    for s in socks[::2]:
        s.close()
    for i, s in enumerate(socks[1::2]):
        s.sendall(packet(REMOTE_PROGRAM, AUTH_LIST, 2000 + i))
    tap.check(all(read_packet(s)[0][4] == 2000 + i for i, s in enumerate(socks[1::2])),
              "half of them closed, the other half still answered")
    others_ok("60 concurrent connections")
    tap.check(srv.stop() == 0, "server exits cleanly on SIGTERM")
finally:
    srv.stop()
tap.done()
