#!/usr/bin/env python3
"""Traffic for the namespace tests and the lab.

serve   run on a backend: HTTP, TCP echo and UDP echo servers whose answers
        start with the backend's tag, so a client can tell who served it.
udp     send datagrams from many source ports to a VIP; count answers per
        backend and check every answer came from the VIP (DSR).
tcp     open TCP connections to a VIP's echo service; count per backend.
hold    open TCP connections, note each one's backend, wait until a file
        appears, then talk again on every connection: report how many broke
        or moved to another backend.
stream  send sequence-numbered datagrams on one 5-tuple at a steady rate
        until a file appears; report sent, answered, lost and the backends.
Every client prints one JSON object and exits non-zero if something failed.
"""
import argparse
import http.server
import json
import os
import socket
import socketserver
import sys
import threading
import time


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


# ------------------------------------------------------------------ servers

class DualStackTCPServer(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class DualStackHTTPServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve(args):
    tag = args.tag.encode()

    class Http(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = tag + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Echo(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write(tag + b" " + line)
                self.wfile.flush()

    servers = []
    if args.http:
        servers.append(DualStackHTTPServer(("::", args.http), Http))
    if args.tcp_echo:
        servers.append(DualStackTCPServer(("::", args.tcp_echo), Echo))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()

    def udp_loop(sock):
        while True:
            data, peer = sock.recvfrom(65535)
            sock.sendto(tag + b" " + data, peer)

    for addr in args.udp_bind or []:
        if not args.udp_echo:
            break
        s = socket.socket(family_of(addr), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, args.udp_echo))  # DSR: replies must leave with the VIP as source
        threading.Thread(target=udp_loop, args=(s,), daemon=True).start()
    print("serving", args.tag, flush=True)
    while True:
        time.sleep(3600)


# ------------------------------------------------------------------ clients

def tag_of(reply):
    return reply.split(b" ", 1)[0].decode(errors="replace").strip()


def udp(args):
    fam = family_of(args.addr)
    per = {}
    answered = wrong_source = 0
    for i in range(args.count):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(args.timeout)
        payload = b"q%d" % i
        got = None
        for _ in range(args.tries):
            s.sendto(payload, (args.addr, args.port))
            try:
                data, peer = s.recvfrom(2048)
                got = (data, peer)
                break
            except socket.timeout:
                continue
        s.close()
        if not got:
            continue
        data, peer = got
        answered += 1
        if socket.inet_pton(fam, peer[0]) != socket.inet_pton(fam, args.addr) or peer[1] != args.port:
            wrong_source += 1
        per[tag_of(data)] = per.get(tag_of(data), 0) + 1
    out = {"sent": args.count, "answered": answered, "wrong_source": wrong_source, "backends": per}
    print(json.dumps(out, sort_keys=True))
    return 0 if answered == args.count and wrong_source == 0 else 1


def connect(args):
    s = socket.create_connection((args.addr, args.port), timeout=args.timeout)
    s.settimeout(args.timeout)
    return s, s.makefile("rb")


def ask(conn, text):
    s, f = conn
    s.sendall(text.encode() + b"\n")
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    return tag_of(line)


def tcp(args):
    per = {}
    failed = 0
    for i in range(args.count):
        try:
            conn = connect(args)
            t = ask(conn, "hello %d" % i)
            conn[0].close()
            per[t] = per.get(t, 0) + 1
        except OSError:
            failed += 1
    print(json.dumps({"tried": args.count, "failed": failed, "backends": per}, sort_keys=True))
    return 0 if failed == 0 else 1


def hold(args):
    conns, before = [], []
    for i in range(args.count):
        c = connect(args)
        conns.append(c)
        before.append(ask(c, "hello %d" % i))
    print(json.dumps({"phase": "open", "backends": before}), flush=True)
    deadline = time.time() + args.wait
    while not os.path.exists(args.go):
        if time.time() > deadline:
            print(json.dumps({"error": "timed out waiting for " + args.go}))
            return 2
        time.sleep(0.05)
    broken = moved = 0
    after = []
    for i, c in enumerate(conns):
        try:
            t = ask(c, "again %d" % i)
        except OSError:
            broken += 1
            after.append(None)
            continue
        after.append(t)
        if t != before[i]:
            moved += 1
    print(json.dumps({"phase": "after", "connections": args.count, "broken": broken,
                      "moved": moved, "backends": after}), flush=True)
    return 0 if broken == 0 and moved == 0 else 1


def stream(args):
    fam = family_of(args.addr)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(0.002)
    answered, backends = set(), {}
    sent = 0
    interval = 1.0 / args.rate
    next_send = time.time()

    def drain():
        while True:
            try:
                data, _ = s.recvfrom(2048)
            except (socket.timeout, BlockingIOError):
                return
            parts = data.split()
            if len(parts) >= 2 and parts[1].startswith(b"seq"):
                answered.add(int(parts[1][3:]))
                t = parts[0].decode()
                backends[t] = backends.get(t, 0) + 1

    deadline = time.time() + args.wait
    while not os.path.exists(args.go) and time.time() < deadline:
        now = time.time()
        if now >= next_send:
            s.sendto(b"seq%d" % sent, (args.addr, args.port))
            sent += 1
            next_send += interval
        drain()
    end = time.time() + 1.0  # the last answers in flight
    while time.time() < end:
        drain()
    lost = sent - len(answered)
    print(json.dumps({"sent": sent, "answered": len(answered), "lost": lost, "backends": backends}), flush=True)
    return 0 if lost == 0 and sent > 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tag", required=True)
    s.add_argument("--http", type=int, default=0)
    s.add_argument("--tcp-echo", type=int, default=0)
    s.add_argument("--udp-echo", type=int, default=0)
    s.add_argument("--udp-bind", nargs="*")
    for name in ("udp", "tcp", "hold", "stream"):
        c = sub.add_parser(name)
        c.add_argument("--addr", required=True)
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--count", type=int, default=10)
        c.add_argument("--timeout", type=float, default=3.0)
        c.add_argument("--tries", type=int, default=3)
        c.add_argument("--go", default="")
        c.add_argument("--wait", type=float, default=120.0)
        c.add_argument("--rate", type=float, default=200.0)
    a = p.parse_args()
    return {"serve": serve, "udp": udp, "tcp": tcp, "hold": hold, "stream": stream}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
