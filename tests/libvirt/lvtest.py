# lvtest.py - helpers for the python client tests of tests/libvirt/: start
# sp-libvirt-testd (real endpoint, in-memory test backend) in a temp dir,
# TAP output, raw wire packets.
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

REMOTE_PROGRAM = 0x20008086
KEEPALIVE_PROGRAM = 0x6B656570


class Tap:
    def __init__(self, plan):
        self.n = 0
        self.fails = 0
        print("1..%d" % plan, flush=True)

    def check(self, cond, desc, detail=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, desc), flush=True)
        else:
            self.fails += 1
            print("not ok %d - %s" % (self.n, desc), flush=True)
            if detail is not None:
                for line in str(detail).splitlines()[:20]:
                    print("#   " + line, flush=True)

    def done(self):
        sys.exit(1 if self.fails else 0)


class TestServer:
    def __init__(self, *args):
        builddir = os.environ.get("top_builddir", ".")
        self.dir = tempfile.mkdtemp(prefix="sp-libvirt-py.")
        os.chmod(self.dir, 0o755)
        self.rw = os.path.join(self.dir, "rw.sock")
        self.ro = os.path.join(self.dir, "ro.sock")
        self.log = open(os.path.join(self.dir, "testd.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(builddir, "tests/libvirt/sp-libvirt-testd"),
             "--rw", self.rw, "--ro", self.ro] + list(args),
            stdout=subprocess.PIPE, stderr=self.log)
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("sp-libvirt-testd did not start")
        self.uri = "samepage+unix:///system?socket=" + self.rw
        self.rouri = "samepage+unix:///system?socket=" + self.ro

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode


def packet(prog, proc, serial=1, payload=b"", mtype=0, status=0, vers=1):
    body = struct.pack(">IIiiIi", prog, vers, proc, mtype, serial, status) + payload
    return struct.pack(">I", len(body) + 4) + body


def xdr_string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def raw_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def read_packet(s):
    """Returns (header tuple, payload) or None at EOF."""
    def need(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf
    ln = need(4)
    if ln is None:
        return None
    (length,) = struct.unpack(">I", ln)
    rest = need(length - 4)
    if rest is None:
        return None
    return struct.unpack(">IIiiIi", rest[:24]), rest[24:]


def error_message(payload):
    code, domain, present = struct.unpack(">iiI", payload[:12])
    msg = None
    if present:
        (n,) = struct.unpack(">I", payload[12:16])
        msg = payload[16:16 + n].decode()
    return code, msg


def closed_by_server(s, timeout=5):
    """True if the server closes s (reads until EOF; replies are skipped)."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
