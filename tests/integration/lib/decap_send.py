#!/usr/bin/env python3
"""Helpers for tests/integration/test_decap.sh.

  serve  A UDP echo server bound to the given addresses. Logs every datagram
         it gets ("<source> <payload>") to --log and answers "echo:<payload>".
  send   Builds an IP-in-IP frame by hand (this kernel has no ipip device) and
         sends it with a raw AF_PACKET socket, then waits on a UDP socket bound
         to the inner source for the backend's direct reply (--expect reply)
         or makes sure none comes (--expect none).
  frame  Writes such a frame, and the frame decapsulation should produce, to
         files (for bpftool prog run).
"""
import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4_header(src, dst, proto, payload_len, frag_off=0x4000):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0x1234,
                      frag_off, 64, proto, 0, src.packed, dst.packed)
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]


def ip6_header(src, dst, nexthdr, payload_len):
    return struct.pack("!IHBB16s16s", 0x60000000, payload_len, nexthdr, 64,
                       src.packed, dst.packed)


def udp_packet(src, dst, sport, dport, payload: bytes) -> bytes:
    """An IP (v4 or v6, by the addresses) + UDP packet with valid checksums."""
    length = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    if src.version == 4:
        pseudo = struct.pack("!4s4sBBH", src.packed, dst.packed, 0, 17, length)
    else:
        pseudo = struct.pack("!16s16sIxxxB", src.packed, dst.packed, length, 17)
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    if src.version == 4:
        return ip4_header(src, dst, 17, len(udp)) + udp
    return ip6_header(src, dst, 17, len(udp)) + udp


def mac_bytes(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def build_frame(a):
    """The encapsulated frame described by the arguments, and the frame the
    decapsulator should turn it into (same MACs and tags, inner ethertype)."""
    osrc = ipaddress.ip_address(a.outer_src)
    odst = ipaddress.ip_address(a.outer_dst)
    isrc = ipaddress.ip_address(a.inner_src)
    idst = ipaddress.ip_address(a.inner_dst)
    if osrc.version != odst.version or isrc.version != idst.version:
        raise SystemExit("decap_send: outer or inner addresses mix families")
    inner = udp_packet(isrc, idst, a.sport, a.dport, a.payload.encode())
    proto = a.outer_proto if a.outer_proto is not None else (4 if isrc.version == 4 else 41)

    if osrc.version == 4:
        frag = 0x2000 if a.outer_frag else 0x4000  # MF, else DF
        outer = ip4_header(osrc, odst, proto, len(inner), frag)
        ethertype = 0x0800
    else:
        # Extension headers, outermost first: (type, body after nexthdr).
        exts = []
        if a.dstopts:
            # Destination options: tunnel encapsulation limit 4, then PadN.
            exts.append((60, bytes([0, 4, 1, 4, 1, 1, 0])))
        if a.outer_frag:
            # Fragment header: offset 0, M flag set.
            exts.append((44, struct.pack("!BHI", 0, 1, 0x1234)))
        ext = b""
        nexthdr = proto
        for typ, body in reversed(exts):
            ext = bytes([nexthdr]) + body + ext
            nexthdr = typ
        outer = ip6_header(osrc, odst, nexthdr, len(ext) + len(inner)) + ext
        ethertype = 0x86DD

    if a.src_mac:
        src_mac = mac_bytes(a.src_mac)
    else:
        with open("/sys/class/net/%s/address" % a.ifname) as f:
            src_mac = mac_bytes(f.read().strip())
    macs = mac_bytes(a.dst_mac) + src_mac
    # VLAN tags "TPID:VID", outermost first; each tag's TPID is carried by
    # the field before it.
    tpids = [int(t.split(":")[0], 16) for t in a.vlan]
    vids = [int(t.split(":")[1]) for t in a.vlan]
    inner_type = 0x0800 if isrc.version == 4 else 0x86DD

    def l2(last_type):
        types = tpids + [last_type]
        out = macs + struct.pack("!H", types[0])
        for i, vid in enumerate(vids):
            out += struct.pack("!HH", vid, types[i + 1])
        return out

    return l2(ethertype) + outer + inner, l2(inner_type) + inner


def cmd_frame(a) -> int:
    frame, expected = build_frame(a)
    with open(a.out, "wb") as f:
        f.write(frame)
    if a.expect_out:
        with open(a.expect_out, "wb") as f:
            f.write(expected)
    return 0


def cmd_send(a) -> int:
    frame, _ = build_frame(a)
    isrc = ipaddress.ip_address(a.inner_src)
    idst = ipaddress.ip_address(a.inner_dst)
    payload = a.payload.encode()

    fam = socket.AF_INET if isrc.version == 4 else socket.AF_INET6
    rx = socket.socket(fam, socket.SOCK_DGRAM)
    rx.bind((str(isrc), a.sport))
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((a.ifname, 0))
    tx.send(frame)

    deadline = time.monotonic() + a.wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([rx], [], [], left)
        if not r:
            break
        data, peer = rx.recvfrom(2048)
        src = ipaddress.ip_address(peer[0].split("%")[0])
        if a.expect == "none":
            print("send: unexpected reply %r from %s port %d" % (data, src, peer[1]))
            return 1
        if src != idst or peer[1] != a.dport or data != b"echo:" + payload:
            print("send: wrong reply %r from %s port %d (want echo from %s port %d)"
                  % (data, src, peer[1], idst, a.dport))
            return 1
        print("reply %r from %s port %d" % (data.decode(), src, peer[1]))
        return 0
    if a.expect == "reply":
        print("send: no reply within %.1f s" % a.wait)
        return 1
    print("no reply, as expected")
    return 0


def cmd_serve(a) -> int:
    socks = []
    for addr in a.bind:
        ip = ipaddress.ip_address(addr)
        s = socket.socket(socket.AF_INET if ip.version == 4 else socket.AF_INET6,
                          socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, a.port))
        socks.append(s)
    log = open(a.log, "a", buffering=1)
    with open(a.ready, "w") as f:
        f.write("%d\n" % os.getpid())
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            data, peer = s.recvfrom(2048)
            log.write("%s %s\n" % (peer[0], data.decode(errors="replace")))
            s.sendto(b"echo:" + data, peer)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dst-mac", required=True)
    common.add_argument("--src-mac", help="default: the address of --ifname")
    common.add_argument("--vlan", action="append", default=[],
                        help="TPID:VID, e.g. 88a8:10; repeat for QinQ, outermost first")
    common.add_argument("--outer-src", required=True)
    common.add_argument("--outer-dst", required=True)
    common.add_argument("--outer-proto", type=int, help="override protocol 4 / 41")
    common.add_argument("--outer-frag", action="store_true",
                        help="mark the outer packet as a fragment (IPv4 MF / IPv6 fragment header)")
    common.add_argument("--dstopts", action="store_true",
                        help="IPv6 outer: add a destination options header")
    common.add_argument("--inner-src", required=True)
    common.add_argument("--inner-dst", required=True)
    common.add_argument("--sport", type=int, required=True)
    common.add_argument("--dport", type=int, required=True)
    common.add_argument("--payload", required=True)

    s = sub.add_parser("send", parents=[common])
    s.add_argument("--ifname", required=True)
    s.add_argument("--expect", choices=["reply", "none"], required=True)
    s.add_argument("--wait", type=float, default=3.0)

    fr = sub.add_parser("frame", parents=[common],
                        help="write the frame (and the expected decapsulated frame) to files")
    fr.add_argument("--ifname")
    fr.add_argument("--out", required=True)
    fr.add_argument("--expect-out")

    v = sub.add_parser("serve")
    v.add_argument("--bind", action="append", required=True)
    v.add_argument("--port", type=int, required=True)
    v.add_argument("--log", required=True)
    v.add_argument("--ready", required=True)

    a = p.parse_args()
    if a.cmd == "send":
        return cmd_send(a)
    if a.cmd == "frame":
        return cmd_frame(a)
    return cmd_serve(a)


if __name__ == "__main__":
    sys.exit(main())
