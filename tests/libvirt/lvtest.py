# lvtest.py - helpers for the python client tests of tests/libvirt/ and
# tests/daemon/: start sp-libvirt-testd (real endpoint, in-memory test
# backend) or a real samepaged in a temp dir, libvirt's default event loop
# on a thread, TAP output, raw wire packets.
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
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


class Samepaged:
    """A real samepaged with its state, sockets and VM processes under a
    temp dir (prefix); payloads from the build's guest-tools."""

    def __init__(self, prefix):
        builddir = os.environ.get("top_builddir", ".")
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.sock = os.path.join(self.dir, "sock")
        self.uri = "samepage+unix:///system?socket=" + self.sock
        self.rouri = self.uri + "-ro"
        env = dict(os.environ, SAMEPAGE_PAYLOAD_DIR=os.path.join(builddir, "guest-tools"))
        self.log = open(os.path.join(self.dir, "daemon.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(builddir, "samepaged"), "-d", os.path.join(self.dir, "state"),
             "-s", self.sock], stdout=self.log, stderr=self.log, env=env)
        for _ in range(100):
            if os.path.exists(self.sock):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("samepaged did not create its socket")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM (SIGKILL after 15 s), then its VM processes, which
        outlive samepaged, and the temp dir."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        subprocess.run(["pkill", "-9", "-f", "--", "--listen=" + self.dir + "/"], check=False)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode


def default_event_loop():
    """libvirt's default event loop on a daemon thread (event callbacks and
    keepalive need it); returns the Event that ends it."""
    import libvirt
    libvirt.virEventRegisterDefaultImpl()
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=loop, daemon=True).start()
    return stop


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
