#!/usr/bin/env python3
"""A stand-in for ExaBGP 4.2's process API, for BgpSpeaker unit tests.

    bgp_fake_exabgp.py CONFIG          behave as ExaBGP: start the `run` line
                                       of CONFIG, report every neighbor up,
                                       acknowledge commands, report sent updates
    bgp_fake_exabgp.py relay SOCKET    a relay (stdin <-> SOCKET <-> stdout)

Environment: FAKE_EXABGP_LOG (append every command received, one a line),
FAKE_EXABGP_MODE ("" normal, "no-ack": never answer commands).
No BGP is spoken; nothing listens.
"""
import os
import re
import select
import signal
import socket
import subprocess
import sys


def relay(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    fds = [sys.stdin.fileno(), s.fileno()]
    while True:
        ready, _, _ = select.select(fds, [], [])
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                return 0
            if fd == s.fileno():
                os.write(sys.stdout.fileno(), data)
            else:
                s.sendall(data)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "relay":
        return relay(sys.argv[2])
    conf = open(sys.argv[1]).read()
    run = re.search(r"^\s*run (.*);$", conf, re.M).group(1).split()
    neighbors = re.findall(r"^neighbor (\S+) \{", conf, re.M)
    mode = os.environ.get("FAKE_EXABGP_MODE", "")
    log = open(os.environ["FAKE_EXABGP_LOG"], "a", buffering=1) if os.environ.get("FAKE_EXABGP_LOG") else None
    print("fake exabgp: pid %d, neighbors %s" % (os.getpid(), " ".join(neighbors)), flush=True)

    helper = subprocess.Popen(run, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def send(line):
        try:
            helper.stdin.write((line + "\n").encode())
            helper.stdin.flush()
        except BrokenPipeError:
            pass

    def stop(*_):
        for n in neighbors:
            send("neighbor %s down - stop, message [shutting down]" % n)
        send("shutdown %d %d" % (os.getpid(), os.getppid()))
        helper.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    for n in neighbors:
        send("neighbor %s connected" % n)
        send("neighbor %s up" % n)

    for raw in helper.stdout:
        line = raw.decode().strip()
        if log:
            log.write(line + "\n")
        if mode == "no-ack":
            continue
        m = re.match(r"neighbor (\S+) (announce|withdraw) route (\S+)", line)
        e = re.match(r"neighbor (\S+) announce eor (\S+) (\S+)", line)
        if not m and not e:
            send("error")
            continue
        send("done")
        if e:
            send("neighbor %s send update route eor 1/1 (%s %s)" % e.groups())
        elif m.group(2) == "announce":
            send("neighbor %s send update announced %s next-hop self" % (m.group(1), m.group(3)))
        else:
            send("neighbor %s send update withdrawn %s" % (m.group(1), m.group(3)))
    return 3  # the relay went away


if __name__ == "__main__":
    sys.exit(main())
