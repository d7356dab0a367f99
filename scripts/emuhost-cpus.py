#!/usr/bin/python3
"""scripts/emuhost-cpus.py - where the emulated host's CPUs are, from QEMU's
human monitor: for a frozen emulated host (scripts/in-emuhost.sh).

Usage: emuhost-cpus.py MONITOR_SOCKET [SYSTEM_MAP] [SAMPLES] [INTERVAL_S]

Asks QEMU's monitor (a Unix socket, -monitor unix:PATH,server=on,wait=off)
`info registers -a` SAMPLES times (default 3), INTERVAL_S apart (default
2), and prints one line per CPU and sample: RIP, CPL, HLT, CR3, and for a
kernel address the symbol from SYSTEM_MAP (System.map's format, or
/proc/kallsyms' text lines: the emulated host's kernel runs with nokaslr).  A RIP below the kernel's half with a CR3 the host's
processes do not use is a nested guest's (a VM's payload): a CPU that
stays there never comes back to the emulated host's kernel.

After the last sample, for each CPU in the kernel: the kernel text
addresses found in the top 96 words of its stack (`x` at its RSP),
innermost first: not a true backtrace (stale return addresses show too),
but enough to tell which path a spinning CPU came by.

Prints one line "emuhost-cpus: error: ..." and exits 1 when the monitor
does not answer; never waits more than 10 s for it.
"""
import bisect
import re
import socket
import sys
import time


def load_map(path):
    addrs, names = [], []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tTwW":
                    addrs.append(int(parts[0], 16))
                    names.append(parts[2])
    except OSError:
        return [], []
    order = sorted(range(len(addrs)), key=addrs.__getitem__)
    return [addrs[i] for i in order], [names[i] for i in order]


def symbol(addrs, names, rip):
    i = bisect.bisect_right(addrs, rip) - 1
    if i < 0 or rip < 0xFFFFFFFF80000000:
        return ""
    return " %s+0x%x" % (names[i], rip - addrs[i])


def ask(sock, cmd):
    sock.sendall(cmd.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"(qemu) "):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    # (the monitor speaks to a terminal: CRs and cursor escapes go)
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]|\r", "", buf.decode(errors="replace"))


def stack_symbols(sock, cpu, rsp, addrs, names):
    ask(sock, "cpu %s" % cpu)
    out = ask(sock, "x/96gx 0x%x" % rsp)
    found = []
    for line in out.splitlines():
        for word in re.findall(r"0x([0-9a-f]{16})", line.split(":", 1)[1] if ":" in line else ""):
            v = int(word, 16)
            i = bisect.bisect_right(addrs, v) - 1
            if i >= 0 and v - addrs[i] < 0x4000:  # (past a symbol's end: data)
                found.append(symbol(addrs, names, v).strip())
    return found or ["(none)"]


def main():
    if len(sys.argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = sys.argv[1]
    addrs, names = load_map(sys.argv[2]) if len(sys.argv) > 2 else ([], [])
    samples = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(path)
        buf = b""
        while not buf.endswith(b"(qemu) "):  # the banner and first prompt
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("the monitor closed the connection")
            buf += chunk
        last = {}
        for n in range(samples):
            out = ask(sock, "info registers -a")
            for cpu, body in re.findall(r"CPU#(\d+)\n(.*?)(?=CPU#\d+\n|\(qemu\) $)", out, re.S):
                rip = re.search(r"RIP=([0-9a-f]+)", body)
                cpl = re.search(r"CPL=(\d)", body)
                hlt = re.search(r"HLT=(\d)", body)
                cr3 = re.search(r"CR3=([0-9a-f]+)", body)
                r = int(rip.group(1), 16) if rip else 0
                rsp = re.search(r"RSP=([0-9a-f]+)", body)
                if cpl and cpl.group(1) == "0" and rsp:
                    last[cpu] = int(rsp.group(1), 16)
                else:
                    last.pop(cpu, None)
                print("sample %d cpu %s RIP=%016x CPL=%s HLT=%s CR3=%s%s" % (
                    n + 1, cpu, r, cpl.group(1) if cpl else "?", hlt.group(1) if hlt else "?",
                    cr3.group(1) if cr3 else "?", symbol(addrs, names, r)))
            if n + 1 < samples:
                time.sleep(interval)
        for cpu, rsp in sorted(last.items()):
            print("cpu %s stack at %016x (kernel text found in it, innermost first):" % (cpu, rsp))
            print("   " + " < ".join(stack_symbols(sock, cpu, rsp, addrs, names)))
    except (OSError, socket.timeout) as e:
        print("emuhost-cpus: error: QEMU's monitor at %s did not answer: %s" % (path, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
