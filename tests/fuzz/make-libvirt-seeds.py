# make-libvirt-seeds.py - writes the seed corpus of fuzz-libvirt into
# tests/fuzz/corpus-libvirt/ (committed; rerun only to change the seeds).
# Each seed: mode byte, chunk byte, then packets a real client would send.
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "libvirt"))
from lvtest import KEEPALIVE_PROGRAM, REMOTE_PROGRAM, packet, xdr_string  # noqa: E402

ALPHA = (xdr_string("alpha") + bytes.fromhex("11111111222233334444555555555551")
         + struct.pack(">i", 1))
BETA = (xdr_string("beta") + bytes.fromhex("11111111222233334444555555555552")
        + struct.pack(">i", -1))
u32 = lambda v: struct.pack(">I", v)  # noqa: E731
i32 = lambda v: struct.pack(">i", v)  # noqa: E731
XML = ("<domain type='samepage'><name>fz</name><memory unit='MiB'>4</memory>"
       "<vcpu>1</vcpu><os><type>hvm</type></os><metadata><sp:samepage "
       "xmlns:sp='https://samepage.invalid/xmlns/1'><sp:payload>p</sp:payload>"
       "</sp:samepage></metadata><devices><disk type='file'><source file='/f'/>"
       "<target dev='vda'/></disk></devices></domain>")
OPEN = packet(REMOTE_PROGRAM, 1, 2, u32(1) + xdr_string("samepage:///system") + u32(0))
TP = xdr_string("shm_pages_to_scan") + i32(2) + u32(200)

seeds = {
    "handshake": packet(REMOTE_PROGRAM, 66, 0) + packet(REMOTE_PROGRAM, 60, 1, i32(10)) + OPEN
    + packet(REMOTE_PROGRAM, 360, 3) + packet(REMOTE_PROGRAM, 2, 4),
    "list": packet(REMOTE_PROGRAM, 273, 5, i32(1) + u32(3)) + packet(REMOTE_PROGRAM, 212, 6, ALPHA + u32(0))
    + packet(REMOTE_PROGRAM, 37, 7, i32(512)) + packet(REMOTE_PROGRAM, 21, 8, i32(10)),
    "dominfo": packet(REMOTE_PROGRAM, 23, 5, xdr_string("alpha")) + packet(REMOTE_PROGRAM, 22, 6, i32(1))
    + packet(REMOTE_PROGRAM, 16, 7, ALPHA) + packet(REMOTE_PROGRAM, 19, 8, ALPHA)
    + packet(REMOTE_PROGRAM, 122, 9) + packet(REMOTE_PROGRAM, 426, 10, ALPHA + u32(0)),
    "stats": packet(REMOTE_PROGRAM, 159, 5, ALPHA + u32(13) + u32(0))
    + packet(REMOTE_PROGRAM, 344, 6, u32(1) + ALPHA + u32(0) + u32(0))
    + packet(REMOTE_PROGRAM, 344, 7, u32(0) + u32(5) + u32(1)),
    "node": packet(REMOTE_PROGRAM, 6, 5) + packet(REMOTE_PROGRAM, 289, 6, i32(0) + u32(4))
    + packet(REMOTE_PROGRAM, 289, 7, i32(8) + u32(4)) + packet(REMOTE_PROGRAM, 288, 8, u32(1) + TP + u32(0))
    + packet(REMOTE_PROGRAM, 228, 9, i32(0) + i32(-1) + u32(0)) + packet(REMOTE_PROGRAM, 228, 10, i32(4) + i32(0) + u32(0)),
    "lifecycle": packet(REMOTE_PROGRAM, 11, 5, xdr_string(XML)) + packet(REMOTE_PROGRAM, 9, 6, BETA)
    + packet(REMOTE_PROGRAM, 12, 7, BETA) + packet(REMOTE_PROGRAM, 35, 8, BETA)
    + packet(REMOTE_PROGRAM, 10, 9, xdr_string(XML.replace("fz", "fy")) + u32(0))
    + packet(REMOTE_PROGRAM, 14, 10, ALPHA + u32(0)),
    "exporter": packet(REMOTE_PROGRAM, 64, 5, ALPHA + xdr_string("vda"))
    + packet(REMOTE_PROGRAM, 65, 6, ALPHA + xdr_string("vnet0")) + packet(REMOTE_PROGRAM, 163, 7, ALPHA)
    + packet(REMOTE_PROGRAM, 281, 8, i32(1) + u32(0)),
    "keepalive": packet(KEEPALIVE_PROGRAM, 1, 0, mtype=2) + packet(KEEPALIVE_PROGRAM, 2, 0, mtype=2),
    "unknown": packet(REMOTE_PROGRAM, 9999, 5) + packet(0x20008087, 1, 6),
    # samepage's own program (procs-samepage.c): CLONE, CLONE_GROUPS, unknown.
    "samepage": packet(0x53504745, 1, 5, xdr_string("alpha") + u32(2) + u32(1) + xdr_string("kid"))
    + packet(0x53504745, 2, 6, u32(0)) + packet(0x53504745, 77, 7)
    + packet(0x53504745, 1, 8, xdr_string("alpha") + u32(0) + u32(0)),
}
outdir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-libvirt")
os.makedirs(outdir, exist_ok=True)
for name, body in seeds.items():
    mode = 0 if name in ("handshake", "keepalive") else 1
    for ro in (0, 2):
        with open(os.path.join(outdir, "%s-%d" % (name, mode | ro)), "wb") as f:
            f.write(bytes([mode | ro, 255]) + body)
