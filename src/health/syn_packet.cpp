#include "health/syn_packet.h"

#include <netinet/in.h>

#include <algorithm>

namespace lbd::health::syn {

namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr size_t kTcpHeader = 20;
constexpr uint16_t kWindow = 64240;
constexpr uint8_t kOptMss = 2;

uint16_t get16(std::span<const uint8_t> p, size_t at)
{
    return static_cast<uint16_t>(p[at] << 8 | p[at + 1]);
}

uint32_t get32(std::span<const uint8_t> p, size_t at)
{
    return uint32_t{p[at]} << 24 | uint32_t{p[at + 1]} << 16 | uint32_t{p[at + 2]} << 8 | p[at + 3];
}

void put16(uint8_t* p, uint16_t v)
{
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v)
{
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
}

/// Adds big-endian 16-bit words (an odd last byte padded with zero).
uint32_t sum_words(std::span<const uint8_t> p, uint32_t sum)
{
    size_t i = 0;
    for (; i + 1 < p.size(); i += 2)
        sum += get16(p, i);
    if (i < p.size())
        sum += uint32_t{p[i]} << 8;
    return sum;
}

}  // namespace

uint16_t tcp_checksum(const IpAddr& source, const IpAddr& destination, std::span<const uint8_t> segment)
{
    uint32_t sum = 0;
    sum = sum_words({source.bytes.data(), source.size()}, sum);
    sum = sum_words({destination.bytes.data(), destination.size()}, sum);
    // IPv4: zero, protocol, 16-bit length; IPv6: 32-bit length, 3 zeros,
    // next header. Summed as 16-bit words both give protocol + length.
    sum += IPPROTO_TCP;
    sum += static_cast<uint32_t>(segment.size() & 0xffff) + static_cast<uint32_t>(segment.size() >> 16);
    sum = sum_words(segment, sum);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

SynPacket build_syn(const SynFields& f)
{
    SynPacket p{};
    put16(&p[0], f.source_port);
    put16(&p[2], f.destination_port);
    put32(&p[4], f.seq);
    // ack 0
    p[12] = (kSynLength / 4) << 4;  // data offset
    p[13] = kSyn;
    put16(&p[14], kWindow);
    // checksum at 16 (below), urgent pointer 0
    p[20] = kOptMss;
    p[21] = 4;
    put16(&p[22], f.destination.is_v4() ? 1460 : 1440);
    put16(&p[16], tcp_checksum(f.source, f.destination, p));
    return p;
}

SynDatagram build_syn_datagram(const SynFields& f)
{
    SynDatagram d;
    uint8_t* p = d.bytes.data();
    size_t header;
    if (f.destination.is_v4()) {
        header = 20;
        p[0] = 0x45;  // version 4, 5 words
        put16(&p[2], static_cast<uint16_t>(header + kSynLength));
        // ID 0: with DF set nothing reassembles it (the kernel sends TCP's own so)
        put16(&p[6], 0x4000);  // DF
        p[8] = 64;             // TTL
        p[9] = IPPROTO_TCP;
        std::copy_n(f.source.bytes.begin(), 4, p + 12);
        std::copy_n(f.destination.bytes.begin(), 4, p + 16);
        uint32_t sum = sum_words({p, header}, 0);
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        put16(&p[10], static_cast<uint16_t>(~sum));
    } else {
        header = 40;
        p[0] = 0x60;  // version 6, traffic class and flow label 0
        put16(&p[4], static_cast<uint16_t>(kSynLength));
        p[6] = IPPROTO_TCP;
        p[7] = 64;  // hop limit
        std::copy_n(f.source.bytes.begin(), 16, p + 8);
        std::copy_n(f.destination.bytes.begin(), 16, p + 24);
    }
    const SynPacket syn = build_syn(f);
    std::copy(syn.begin(), syn.end(), p + header);
    d.size = header + kSynLength;
    return d;
}

std::optional<Reply> parse_tcp(std::span<const uint8_t> s, const IpAddr& source)
{
    if (s.size() < kTcpHeader)
        return std::nullopt;
    const uint8_t flags = s[13];
    Reply r;
    r.syn_ack = (flags & (kSyn | kAck | kRst | kFin)) == (kSyn | kAck);
    r.rst = (flags & (kRst | kAck)) == (kRst | kAck);
    if (!r.syn_ack && !r.rst)
        return std::nullopt;
    r.source = source;
    r.source_port = get16(s, 0);
    r.destination_port = get16(s, 2);
    r.ack = get32(s, 8);
    return r;
}

std::optional<Reply> parse_ipv4(std::span<const uint8_t> p)
{
    if (p.size() < 20 || (p[0] >> 4) != 4)
        return std::nullopt;
    const size_t ihl = size_t{p[0] & 0x0fu} * 4;
    if (ihl < 20 || ihl > p.size() || p[9] != IPPROTO_TCP)
        return std::nullopt;
    if ((get16(p, 6) & 0x1fff) != 0)  // not the first fragment
        return std::nullopt;
    IpAddr source;
    std::copy(p.begin() + 12, p.begin() + 16, source.bytes.begin());
    return parse_tcp(p.subspan(ihl), source);
}

std::vector<sock_filter> reply_filter(std::span<const uint16_t> ports, bool ip_header)
{
    // X = where the TCP header starts; A = its destination port; compared
    // against each port; then the flags.
    std::vector<sock_filter> f;
    const auto n = static_cast<uint8_t>(std::min<size_t>(ports.size(), 64));
    if (ip_header)
        f.push_back(BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0));  // X = 4 * (ip[0] & 0xf)
    else
        f.push_back(BPF_STMT(BPF_LDX | BPF_IMM, 0));
    f.push_back(BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2));
    for (uint8_t i = 0; i < n; ++i)  // a match jumps past the rest and the "drop" to the flags
        f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ports[i], static_cast<uint8_t>(n - i), 0));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, 0));
    f.push_back(BPF_STMT(BPF_LD | BPF_B | BPF_IND, 13));
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, kRst, 3, 0));  // RST: accept
    f.push_back(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kSyn | kAck));
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kSyn | kAck, 1, 0));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, 0));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, 0xffff));
    return f;
}

}  // namespace lbd::health::syn
