#include "packet_builder.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace lbt {

namespace {

constexpr uint8_t kProtoIcmp = 1, kProtoIpip = 4, kProtoTcp = 6, kProtoUdp = 17,
                  kProtoIpv6 = 41, kProtoFragment = 44, kProtoIcmp6 = 58, kProtoNoNext = 59;

void put16(Bytes& b, uint16_t v)
{
    b.push_back(uint8_t(v >> 8));
    b.push_back(uint8_t(v));
}

void put32(Bytes& b, uint32_t v)
{
    put16(b, uint16_t(v >> 16));
    put16(b, uint16_t(v));
}

void set16(Bytes& b, size_t off, uint16_t v)
{
    b[off] = uint8_t(v >> 8);
    b[off + 1] = uint8_t(v);
}

void put_addr(Bytes& b, const lbd::IpAddr& a)
{
    b.insert(b.end(), a.bytes.begin(), a.bytes.begin() + long(a.size()));
}

uint16_t get16(std::span<const uint8_t> b, size_t off) { return uint16_t(b[off] << 8 | b[off + 1]); }

}  // namespace

Mac mac(std::string_view text)
{
    Mac m{};
    unsigned v[6];
    char tail;
    const std::string s(text);
    if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
                    &v[5], &tail) != 6)
        throw std::invalid_argument("bad MAC address: " + s);
    for (int i = 0; i < 6; i++)
        m[size_t(i)] = uint8_t(v[i]);
    return m;
}

lbd::IpAddr ip(std::string_view text)
{
    auto a = lbd::IpAddr::parse(text);
    if (!a)
        throw std::invalid_argument("bad IP address: " + std::string(text));
    return *a;
}

std::string mac_str(const Mac& m)
{
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    return buf;
}

uint32_t csum_partial(std::span<const uint8_t> data, uint32_t sum)
{
    uint64_t s = sum;
    size_t i = 0;
    for (; i + 1 < data.size(); i += 2)
        s += uint32_t(data[i] << 8 | data[i + 1]);
    if (i < data.size())
        s += uint32_t(data[i] << 8);
    while (s >> 32)
        s = (s & 0xffffffff) + (s >> 32);
    return uint32_t(s);
}

uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

uint32_t pseudo_header_sum(const lbd::IpAddr& src, const lbd::IpAddr& dst, uint8_t proto,
                           uint32_t upper_len)
{
    Bytes ph;
    put_addr(ph, src);
    put_addr(ph, dst);
    if (src.is_v4()) {
        ph.push_back(0);
        ph.push_back(proto);
        put16(ph, uint16_t(upper_len));
    } else {
        put32(ph, upper_len);
        put32(ph, proto);
    }
    return csum_partial(ph);
}

// ------------------------------------------------------------------ layer 2

Packet& Packet::eth(const Mac& src, const Mac& dst)
{
    l2_.present = true;
    l2_.src = src;
    l2_.dst = dst;
    return *this;
}

Packet& Packet::vlan(uint16_t vid, uint16_t tpid, uint8_t pcp)
{
    if (!l2_.present)
        throw std::logic_error("vlan() needs eth() first");
    l2_.tags.emplace_back(tpid, uint16_t((pcp & 7) << 13 | (vid & 0xfff)));
    return *this;
}

Packet& Packet::ethertype(uint16_t type)
{
    l2_.type = type;
    return *this;
}

Packet& Packet::raw_l2(Bytes payload)
{
    l2_.raw = std::move(payload);
    return *this;
}

Packet& Packet::arp_request(const Mac& sender_mac, const lbd::IpAddr& sender,
                            const lbd::IpAddr& target)
{
    Bytes a;
    put16(a, 1);       // hardware: Ethernet
    put16(a, 0x0800);  // protocol: IPv4
    a.push_back(6);
    a.push_back(4);
    put16(a, 1);  // request
    a.insert(a.end(), sender_mac.begin(), sender_mac.end());
    put_addr(a, sender);
    a.insert(a.end(), 6, 0);
    put_addr(a, target);
    l2_.type = 0x0806;
    l2_.raw = std::move(a);
    return *this;
}

// ------------------------------------------------------------------ layer 3

Packet& Packet::ipv4(const lbd::IpAddr& src, const lbd::IpAddr& dst)
{
    if (!src.is_v4() || !dst.is_v4())
        throw std::invalid_argument("ipv4() with a non-IPv4 address");
    ip_.version = 4;
    ip_.src = src;
    ip_.dst = dst;
    return *this;
}

Packet& Packet::ipv6(const lbd::IpAddr& src, const lbd::IpAddr& dst)
{
    if (src.is_v4() || dst.is_v4())
        throw std::invalid_argument("ipv6() with a non-IPv6 address");
    ip_.version = 6;
    ip_.src = src;
    ip_.dst = dst;
    return *this;
}

void Packet::need_ip(const char* what) const
{
    if (ip_.version == 0)
        throw std::logic_error(std::string(what) + " needs ipv4() or ipv6() first");
}

Packet& Packet::ttl(uint8_t v)
{
    need_ip("ttl()");
    ip_.ttl = v;
    return *this;
}

Packet& Packet::tos(uint8_t v)
{
    need_ip("tos()");
    ip_.tos = v;
    return *this;
}

Packet& Packet::flow_label(uint32_t v)
{
    if (ip_.version != 6)
        throw std::logic_error("flow_label() needs ipv6()");
    ip_.flow_label = v & 0xfffff;
    return *this;
}

Packet& Packet::df()
{
    if (ip_.version != 4)
        throw std::logic_error("df() needs ipv4()");
    ip_.df = true;
    return *this;
}

Packet& Packet::ip_id(uint16_t v)
{
    need_ip("ip_id()");
    ip_.id = v;
    return *this;
}

Packet& Packet::frag(uint16_t offset_bytes, bool more_fragments, uint32_t ident)
{
    need_ip("frag()");
    if (offset_bytes % 8)
        throw std::invalid_argument("fragment offset must be a multiple of 8 bytes");
    ip_.frag = true;
    ip_.frag_offset = offset_bytes;
    ip_.mf = more_fragments;
    ip_.frag_ident = ident;
    return *this;
}

Packet& Packet::ip_options(Bytes options)
{
    if (ip_.version != 4)
        throw std::logic_error("ip_options() needs ipv4()");
    if (options.size() % 4 || options.size() > 40)
        throw std::invalid_argument("IPv4 options: a multiple of 4 bytes, at most 40");
    ip_.options = std::move(options);
    return *this;
}

Packet& Packet::ipv6_ext(uint8_t type)
{
    if (ip_.version != 6)
        throw std::logic_error("ipv6_ext() needs ipv6()");
    ip_.ext.push_back(type);
    return *this;
}

Packet& Packet::ip_version(uint8_t v)
{
    need_ip("ip_version()");
    ip_.version_override = v;
    return *this;
}

Packet& Packet::ihl(uint8_t words)
{
    if (ip_.version != 4)
        throw std::logic_error("ihl() needs ipv4()");
    ip_.ihl = words;
    return *this;
}

Packet& Packet::ip_total_length(uint16_t v)
{
    need_ip("ip_total_length()");
    ip_.length = v;
    return *this;
}

Packet& Packet::ip_proto(uint8_t proto)
{
    need_ip("ip_proto()");
    ip_.proto = proto;
    return *this;
}

// ------------------------------------------------------------------ layer 4

Packet& Packet::tcp(uint16_t sport, uint16_t dport)
{
    need_ip("tcp()");
    l4_.kind = L4::Tcp;
    l4_.sport = sport;
    l4_.dport = dport;
    return *this;
}

Packet& Packet::add_tcp_flags(uint8_t f)
{
    if (l4_.kind != L4::Tcp)
        throw std::logic_error("TCP flags need tcp() first");
    l4_.flags |= f;
    return *this;
}

Packet& Packet::tcp_flags(uint8_t flags)
{
    add_tcp_flags(0);
    l4_.flags = flags;
    return *this;
}

Packet& Packet::seq(uint32_t v)
{
    add_tcp_flags(0);
    l4_.seq = v;
    return *this;
}

Packet& Packet::ack_seq(uint32_t v)
{
    add_tcp_flags(0);
    l4_.ack = v;
    return *this;
}

Packet& Packet::window(uint16_t v)
{
    add_tcp_flags(0);
    l4_.window = v;
    return *this;
}

Packet& Packet::tcp_doff(uint8_t words)
{
    add_tcp_flags(0);
    l4_.doff = words;
    return *this;
}

Packet& Packet::udp(uint16_t sport, uint16_t dport)
{
    need_ip("udp()");
    l4_.kind = L4::Udp;
    l4_.sport = sport;
    l4_.dport = dport;
    return *this;
}

Packet& Packet::udp_length(uint16_t v)
{
    if (l4_.kind != L4::Udp)
        throw std::logic_error("udp_length() needs udp()");
    l4_.udp_len = v;
    return *this;
}

Packet& Packet::echo_request(uint16_t id, uint16_t seq)
{
    need_ip("echo_request()");
    return ip_.version == 4 ? icmp4(8, 0, uint32_t(id) << 16 | seq, {})
                            : icmp6(128, 0, uint32_t(id) << 16 | seq, {});
}

Packet& Packet::icmp4(uint8_t type, uint8_t code, uint32_t rest, Bytes data)
{
    if (ip_.version != 4)
        throw std::logic_error("icmp4 messages need ipv4()");
    l4_.kind = L4::Icmp;
    l4_.icmp_type = type;
    l4_.icmp_code = code;
    l4_.icmp_rest = rest;
    payload_ = std::move(data);
    return *this;
}

Packet& Packet::icmp4_frag_needed(uint16_t mtu, Bytes quoted)
{
    return icmp4(3, 4, mtu, std::move(quoted));
}

Packet& Packet::icmp6(uint8_t type, uint8_t code, uint32_t rest, Bytes data)
{
    if (ip_.version != 6)
        throw std::logic_error("icmp6 messages need ipv6()");
    l4_.kind = L4::Icmp;
    l4_.icmp_type = type;
    l4_.icmp_code = code;
    l4_.icmp_rest = rest;
    payload_ = std::move(data);
    return *this;
}

Packet& Packet::icmp6_too_big(uint32_t mtu, Bytes quoted)
{
    return icmp6(2, 0, mtu, std::move(quoted));
}

Packet& Packet::inner(const Packet& in)
{
    need_ip("inner()");
    if (in.ip_.version == 0)
        throw std::logic_error("inner() needs an IP packet");
    l4_.kind = L4::Inner;
    l4_.inner_proto = in.ip_.version == 4 ? kProtoIpip : kProtoIpv6;
    payload_ = in.ip_bytes();
    return *this;
}

// ------------------------------------------------------------------ payload

Packet& Packet::payload(size_t n)
{
    Bytes p(n);
    for (size_t i = 0; i < n; i++)
        p[i] = uint8_t(i);
    return payload(std::move(p));
}

Packet& Packet::payload(Bytes data)
{
    if (l4_.kind == L4::None && ip_.version == 0)
        throw std::logic_error("payload() needs a layer 3 or 4 header");
    if (l4_.kind == L4::None)
        l4_.kind = L4::Raw;
    payload_ = std::move(data);
    return *this;
}

Packet& Packet::truncate(size_t n)
{
    truncate_ = n;
    return *this;
}

// ------------------------------------------------------------------- output

uint8_t Packet::l4_proto() const
{
    switch (l4_.kind) {
    case L4::Tcp: return kProtoTcp;
    case L4::Udp: return kProtoUdp;
    case L4::Icmp: return ip_.version == 4 ? kProtoIcmp : kProtoIcmp6;
    case L4::Inner: return l4_.inner_proto;
    default: return ip_.version == 4 ? 253 : kProtoNoNext;  // 253: experimentation
    }
}

Bytes Packet::build_l4() const
{
    Bytes b;
    switch (l4_.kind) {
    case L4::Tcp: {
        put16(b, l4_.sport);
        put16(b, l4_.dport);
        put32(b, l4_.seq);
        put32(b, l4_.ack);
        b.push_back(uint8_t(l4_.doff.value_or(5) << 4));
        b.push_back(l4_.flags);
        put16(b, l4_.window);
        put16(b, 0);  // checksum
        put16(b, 0);  // urgent pointer
        b.insert(b.end(), payload_.begin(), payload_.end());
        uint32_t s = pseudo_header_sum(ip_.src, ip_.dst, kProtoTcp, uint32_t(b.size()));
        set16(b, 16, csum_fold(csum_partial(b, s)));
        break;
    }
    case L4::Udp: {
        put16(b, l4_.sport);
        put16(b, l4_.dport);
        put16(b, l4_.udp_len.value_or(uint16_t(8 + payload_.size())));
        put16(b, 0);
        b.insert(b.end(), payload_.begin(), payload_.end());
        uint32_t s = pseudo_header_sum(ip_.src, ip_.dst, kProtoUdp, uint32_t(b.size()));
        uint16_t c = csum_fold(csum_partial(b, s));
        set16(b, 6, c == 0 ? 0xffff : c);
        break;
    }
    case L4::Icmp: {
        b.push_back(l4_.icmp_type);
        b.push_back(l4_.icmp_code);
        put16(b, 0);
        put32(b, l4_.icmp_rest);
        b.insert(b.end(), payload_.begin(), payload_.end());
        uint32_t s = ip_.version == 6
                         ? pseudo_header_sum(ip_.src, ip_.dst, kProtoIcmp6, uint32_t(b.size()))
                         : 0;
        set16(b, 2, csum_fold(csum_partial(b, s)));
        break;
    }
    case L4::Inner:
    case L4::Raw:
    case L4::None:
        b = payload_;
        break;
    }
    return b;
}

Bytes Packet::bytes() const
{
    Bytes l3;
    if (ip_.version == 4) {
        const Bytes l4 = build_l4();
        const size_t hlen = 20 + ip_.options.size();
        l3.push_back(uint8_t(ip_.version_override.value_or(4) << 4 |
                             ip_.ihl.value_or(uint8_t(hlen / 4))));
        l3.push_back(ip_.tos);
        put16(l3, ip_.length.value_or(uint16_t(hlen + l4.size())));
        put16(l3, ip_.id);
        uint16_t frag = uint16_t(ip_.frag_offset / 8);
        if (ip_.df)
            frag |= 0x4000;
        if (ip_.mf)
            frag |= 0x2000;
        put16(l3, frag);
        l3.push_back(ip_.ttl);
        l3.push_back(ip_.proto.value_or(l4_proto()));
        put16(l3, 0);
        put_addr(l3, ip_.src);
        put_addr(l3, ip_.dst);
        l3.insert(l3.end(), ip_.options.begin(), ip_.options.end());
        set16(l3, 10, csum_fold(csum_partial(l3)));
        l3.insert(l3.end(), l4.begin(), l4.end());
    } else if (ip_.version == 6) {
        const Bytes l4 = build_l4();
        // Extension headers in call order, then the fragment header.
        std::vector<uint8_t> chain = ip_.ext;
        if (ip_.frag)
            chain.push_back(kProtoFragment);
        Bytes ext;
        for (size_t i = 0; i < chain.size(); i++) {
            const uint8_t next = i + 1 < chain.size() ? chain[i + 1] : ip_.proto.value_or(l4_proto());
            ext.push_back(next);
            if (chain[i] == kProtoFragment) {
                ext.push_back(0);
                put16(ext, uint16_t(ip_.frag_offset | (ip_.mf ? 1 : 0)));  // offset<<3 == bytes
                put32(ext, ip_.frag_ident);
            } else if (chain[i] == 43) {  // routing: type 0, segments left 0
                ext.insert(ext.end(), {0, 0, 0, 0, 0, 0, 0});
            } else {  // hop-by-hop / destination options: one PadN option
                ext.insert(ext.end(), {0, 1, 4, 0, 0, 0, 0});
            }
        }
        const uint8_t first = chain.empty() ? ip_.proto.value_or(l4_proto()) : chain[0];
        put32(l3, uint32_t(ip_.version_override.value_or(6)) << 28 | uint32_t(ip_.tos) << 20 |
                      ip_.flow_label);
        put16(l3, ip_.length.value_or(uint16_t(ext.size() + l4.size())));
        l3.push_back(first);
        l3.push_back(ip_.ttl);
        put_addr(l3, ip_.src);
        put_addr(l3, ip_.dst);
        l3.insert(l3.end(), ext.begin(), ext.end());
        l3.insert(l3.end(), l4.begin(), l4.end());
    }

    Bytes frame;
    if (l2_.present) {
        frame.insert(frame.end(), l2_.dst.begin(), l2_.dst.end());
        frame.insert(frame.end(), l2_.src.begin(), l2_.src.end());
        for (auto [tpid, tci] : l2_.tags) {
            put16(frame, tpid);
            put16(frame, tci);
        }
        uint16_t type = ip_.version == 6 ? 0x86dd : 0x0800;
        put16(frame, l2_.type.value_or(type));
        if (l2_.raw)
            frame.insert(frame.end(), l2_.raw->begin(), l2_.raw->end());
    }
    frame.insert(frame.end(), l3.begin(), l3.end());
    if (truncate_ && *truncate_ < frame.size())
        frame.resize(*truncate_);
    return frame;
}

Bytes Packet::ip_bytes() const
{
    Bytes b = bytes();
    const size_t l2 = l2_.present ? 14 + 4 * l2_.tags.size() : 0;
    return Bytes(b.begin() + long(std::min(l2, b.size())), b.end());
}

lbd_flow_key Packet::flow() const
{
    if (l4_.kind != L4::Tcp && l4_.kind != L4::Udp)
        throw std::logic_error("flow() needs a TCP or UDP packet");
    lbd_flow_key k{};
    std::memcpy(k.src.w, ip_.src.bytes.data(), ip_.src.size());
    std::memcpy(k.dst.w, ip_.dst.bytes.data(), ip_.dst.size());
    k.sport = htons(l4_.sport);
    k.dport = htons(l4_.dport);
    k.proto = l4_proto();
    k.family = ip_.version == 4 ? LBD_AF_INET : LBD_AF_INET6;
    return k;
}

// --------------------------------------------------------------- inspection

FrameView parse_frame(std::span<const uint8_t> f)
{
    FrameView v;
    if (f.size() < 14)
        return v;
    std::copy(f.begin(), f.begin() + 6, v.dst.begin());
    std::copy(f.begin() + 6, f.begin() + 12, v.src.begin());
    size_t off = 12;
    uint16_t type = get16(f, off);
    while ((type == 0x8100 || type == 0x88a8) && off + 6 <= f.size()) {
        off += 4;
        type = get16(f, off);
    }
    v.ethertype = type;
    v.l3_off = off + 2;
    const auto l3 = f.subspan(v.l3_off);
    if (type == 0x0800 && l3.size() >= 20) {
        v.family = 4;
        v.ip_src.family = v.ip_dst.family = lbd::Family::V4;
        std::copy(l3.begin() + 12, l3.begin() + 16, v.ip_src.bytes.begin());
        std::copy(l3.begin() + 16, l3.begin() + 20, v.ip_dst.bytes.begin());
        v.proto = l3[9];
        v.l4_off = v.l3_off + size_t(l3[0] & 0xf) * 4;
    } else if (type == 0x86dd && l3.size() >= 40) {
        v.family = 6;
        v.ip_src.family = v.ip_dst.family = lbd::Family::V6;
        std::copy(l3.begin() + 8, l3.begin() + 24, v.ip_src.bytes.begin());
        std::copy(l3.begin() + 24, l3.begin() + 40, v.ip_dst.bytes.begin());
        v.proto = l3[6];
        v.l4_off = v.l3_off + 40;
    }
    return v;
}

// Written without csum_partial on purpose: 16-bit words summed into 32 bits.
static uint16_t plain_sum(std::span<const uint8_t> d, uint32_t sum)
{
    for (size_t i = 0; i < d.size(); i += 2) {
        uint16_t w = uint16_t(d[i] << 8);
        if (i + 1 < d.size())
            w |= d[i + 1];
        sum += w;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return uint16_t(sum);
}

bool ipv4_header_checksum_ok(std::span<const uint8_t> h)
{
    if (h.size() < 20)
        return false;
    const size_t len = size_t(h[0] & 0xf) * 4;
    return len >= 20 && len <= h.size() && plain_sum(h.first(len), 0) == 0xffff;
}

bool icmp4_checksum_ok(std::span<const uint8_t> icmp)
{
    return icmp.size() >= 8 && plain_sum(icmp, 0) == 0xffff;
}

bool l4_checksum_ok(const lbd::IpAddr& src, const lbd::IpAddr& dst, uint8_t proto,
                    std::span<const uint8_t> l4)
{
    uint32_t s = 0;
    for (size_t i = 0; i < src.size(); i += 2) {
        s += uint32_t(src.bytes[i] << 8 | src.bytes[i + 1]);
        s += uint32_t(dst.bytes[i] << 8 | dst.bytes[i + 1]);
    }
    s += proto;
    s += uint32_t(l4.size() & 0xffff) + uint32_t(l4.size() >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return plain_sum(l4, s) == 0xffff;
}

std::string hexdump(std::span<const uint8_t> data, std::span<const uint8_t> other)
{
    std::string out;
    char buf[32];
    for (size_t i = 0; i < data.size(); i++) {
        if (i % 16 == 0) {
            std::snprintf(buf, sizeof buf, "%s%04zx:", i ? "\n" : "", i);
            out += buf;
        }
        const bool differs = !other.empty() && (i >= other.size() || other[i] != data[i]);
        std::snprintf(buf, sizeof buf, "%c%02x", differs ? '*' : ' ', data[i]);
        out += buf;
    }
    return out;
}

}  // namespace lbt
