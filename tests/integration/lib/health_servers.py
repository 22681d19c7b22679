#!/usr/bin/env python3
"""Small servers for tests/integration/test_health_probes.sh.

  tcp   --bind ADDR --port P                 accept and close
  http  --bind ADDR --port P --state FILE [--host H] [--cert C --key K]
        GET /healthz: answers with the code in FILE ("200", "503", ...), or
        never answers when FILE says "hang"; 400 when the Host header (or,
        over TLS, the SNI name) is not H; GET /teapot: 418; anything else: 404.
  udp   --bind ADDR --port P                 answers "pong <payload>"

Each prints "serving" once listening and one line per request, flushed.
"""
import argparse
import os
import socket
import socketserver
import ssl
import sys
import threading


def log(*args):
    print(*args, flush=True)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve_tcp(a):
    s = socket.socket(family(a.bind), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port))
    s.listen(128)
    log("serving")
    while True:
        c, _ = s.accept()
        c.close()


def read_state(path):
    try:
        with open(path) as f:
            return f.read().strip() or "200"
    except OSError:
        return "200"


def serve_http(a):
    tls_ctx = None
    sni = {}
    if a.cert:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(a.cert, a.key)

        def on_sni(sock, name, _ctx):
            sni[id(sock)] = name

        tls_ctx.sni_callback = on_sni

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            conn = self.request
            conn.settimeout(10)
            name = None
            if tls_ctx:
                try:
                    conn = tls_ctx.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    log("tls error", e)
                    return
                name = sni.pop(id(conn), None)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 8192:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
            except OSError:
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            path = parts[1] if len(parts) > 1 else ""
            host = ""
            for line in lines[1:]:
                if line.lower().startswith("host:"):
                    host = line[5:].strip()
            state = read_state(a.state)
            log("request", path, "host=" + host, "sni=" + str(name), "state=" + state)
            if a.host and (host != a.host or (tls_ctx and name != a.host)):
                code = "400"
            elif path == "/teapot":
                code = "418"
            elif path != "/healthz":
                code = "404"
            elif state == "hang":
                try:
                    conn.recv(1)  # until the prober gives up and closes
                except OSError:
                    pass
                return
            else:
                code = state
            body = "%s\n" % code
            resp = "HTTP/1.1 %s X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (code, len(body), body)
            try:
                conn.sendall(resp.encode())
            except OSError:
                pass

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        address_family = family(a.bind)
        request_queue_size = 128

    srv = Server((a.bind, a.port), Handler)
    log("serving")
    srv.serve_forever()


def serve_udp(a):
    s = socket.socket(family(a.bind), socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    log("serving")
    while True:
        data, peer = s.recvfrom(4096)
        s.sendto(b"pong " + data, peer)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["tcp", "http", "udp"])
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state", default=os.devnull)
    p.add_argument("--host")
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()
    {"tcp": serve_tcp, "http": serve_http, "udp": serve_udp}[a.kind](a)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
