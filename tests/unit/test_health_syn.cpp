// The half-open tcp check's packets: the SYN (golden bytes; checksums
// computed independently with Python's struct over the RFC 793 / RFC 8200
// pseudo headers), parsing SYN-ACKs and RSTs, and the socket filter run
// through a small classic BPF interpreter. No sockets.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "health/syn_packet.h"
#include "lbd_hash.h"

using namespace lbd;
using namespace lbd::health::syn;

namespace {

IpAddr ip(const char* s)
{
    return *IpAddr::parse(s);
}

/// A TCP header (20 bytes) with the given ports, ack and flags.
std::vector<uint8_t> tcp_header(uint16_t sport, uint16_t dport, uint32_t ack, uint8_t flags)
{
    std::vector<uint8_t> h(20, 0);
    h[0] = uint8_t(sport >> 8), h[1] = uint8_t(sport);
    h[2] = uint8_t(dport >> 8), h[3] = uint8_t(dport);
    h[4] = 0x11, h[5] = 0x22, h[6] = 0x33, h[7] = 0x44;  // their seq
    h[8] = uint8_t(ack >> 24), h[9] = uint8_t(ack >> 16), h[10] = uint8_t(ack >> 8), h[11] = uint8_t(ack);
    h[12] = 5 << 4;
    h[13] = flags;
    return h;
}

/// An IPv4 header (with `options` bytes of options) in front of `l4`.
std::vector<uint8_t> ipv4(const char* src, const std::vector<uint8_t>& l4, size_t options = 0, uint16_t frag = 0)
{
    std::vector<uint8_t> p(20 + options, 0);
    p[0] = uint8_t(0x40 | (20 + options) / 4);
    p[6] = uint8_t(frag >> 8), p[7] = uint8_t(frag);
    p[8] = 64;
    p[9] = 6;
    auto a = ip(src);
    std::copy(a.bytes.begin(), a.bytes.begin() + 4, p.begin() + 12);
    p.insert(p.end(), l4.begin(), l4.end());
    return p;
}

/// Runs the few classic BPF instructions reply_filter uses; the accepted length.
uint32_t run_filter(const std::vector<sock_filter>& prog, const std::vector<uint8_t>& pkt)
{
    uint32_t a = 0, x = 0;
    auto byte = [&](size_t at) -> std::optional<uint32_t> {
        if (at >= pkt.size())
            return std::nullopt;
        return pkt[at];
    };
    for (size_t pc = 0; pc < prog.size(); ++pc) {
        const auto& i = prog[pc];
        switch (i.code) {
        case BPF_LDX | BPF_B | BPF_MSH: {
            auto b = byte(i.k);
            if (!b)
                return 0;
            x = 4 * (*b & 0xf);
            break;
        }
        case BPF_LDX | BPF_IMM: x = i.k; break;
        case BPF_LD | BPF_H | BPF_IND: {
            auto hi = byte(x + i.k), lo = byte(x + i.k + 1);
            if (!hi || !lo)
                return 0;  // out of the packet: the kernel drops it too
            a = *hi << 8 | *lo;
            break;
        }
        case BPF_LD | BPF_B | BPF_IND: {
            auto b = byte(x + i.k);
            if (!b)
                return 0;
            a = *b;
            break;
        }
        case BPF_ALU | BPF_AND | BPF_K: a &= i.k; break;
        case BPF_JMP | BPF_JEQ | BPF_K: pc += a == i.k ? i.jt : i.jf; break;
        case BPF_JMP | BPF_JSET | BPF_K: pc += (a & i.k) ? i.jt : i.jf; break;
        case BPF_RET | BPF_K: return i.k;
        default: ADD_FAILURE() << "opcode " << i.code << " not interpreted"; return 0;
        }
    }
    ADD_FAILURE() << "ran off the end of the program";
    return 0;
}

}  // namespace

TEST(HealthSyn, Ipv4SynGoldenBytes)
{
    auto p = build_syn({ip("198.18.0.1"), ip("198.18.2.10"), 40000, 80, 0x01020304});
    const SynPacket want{0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
                         0x60, 0x02, 0xfa, 0xf0, 0x6e, 0x6f, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4};
    EXPECT_EQ(p, want);
    // Over a correct segment the checksum sums to zero.
    EXPECT_EQ(tcp_checksum(ip("198.18.0.1"), ip("198.18.2.10"), p), 0);
    // Another source changes it (the pseudo header is covered).
    EXPECT_NE(tcp_checksum(ip("198.18.0.2"), ip("198.18.2.10"), p), 0);
}

TEST(HealthSyn, Ipv6SynGoldenBytes)
{
    auto p = build_syn({ip("fd00:1b:50::1"), ip("fd00:1b:50::10"), 51234, 8080, 0xdeadbeef});
    const SynPacket want{0xc8, 0x22, 0x1f, 0x90, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00,
                         0x60, 0x02, 0xfa, 0xf0, 0x1d, 0x11, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0};
    EXPECT_EQ(p, want);
    EXPECT_EQ(tcp_checksum(ip("fd00:1b:50::1"), ip("fd00:1b:50::10"), p), 0);
}

TEST(HealthSyn, Ipv4DatagramIsTheSynBehindAValidHeader)
{
    const SynFields f{ip("198.18.0.1"), ip("198.18.2.10"), 40000, 80, 0x01020304};
    auto d = build_syn_datagram(f);
    ASSERT_EQ(d.size, 44u);
    const std::array<uint8_t, 20> want{0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06,
                                       0x00, 0x00, 198,  18,   0,    1,    198,  18,   2,    10};
    auto check = uint16_t(d.bytes[10] << 8 | d.bytes[11]);
    auto header = d.bytes;
    header[10] = header[11] = 0;
    EXPECT_TRUE(std::equal(want.begin(), want.end(), header.begin()));
    // The header checksum: the one's complement sum of the header with it is 0xffff.
    uint32_t sum = 0;
    for (size_t i = 0; i < 20; i += 2)
        sum += uint32_t(d.bytes[i] << 8 | d.bytes[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    EXPECT_EQ(sum, 0xffffu);
    EXPECT_NE(check, 0);
    auto syn = build_syn(f);
    EXPECT_TRUE(std::equal(syn.begin(), syn.end(), d.bytes.begin() + 20));
    EXPECT_FALSE(parse_ipv4(d.data()));  // well formed, but a SYN is not an answer
}

TEST(HealthSyn, Ipv6DatagramIsTheSynBehindItsHeader)
{
    const SynFields f{ip("fd00:1b:50::1"), ip("fd00:1b:50::10"), 51234, 8080, 0xdeadbeef};
    auto d = build_syn_datagram(f);
    ASSERT_EQ(d.size, 64u);
    const std::array<uint8_t, 8> want{0x60, 0, 0, 0, 0x00, 24, 6, 64};
    EXPECT_TRUE(std::equal(want.begin(), want.end(), d.bytes.begin()));
    EXPECT_TRUE(std::equal(d.bytes.begin() + 8, d.bytes.begin() + 24, ip("fd00:1b:50::1").bytes.begin()));
    EXPECT_TRUE(std::equal(d.bytes.begin() + 24, d.bytes.begin() + 40, ip("fd00:1b:50::10").bytes.begin()));
    auto syn = build_syn(f);
    EXPECT_TRUE(std::equal(syn.begin(), syn.end(), d.bytes.begin() + 40));
}

TEST(HealthSyn, ChecksumOfOddLength)
{
    // 3 bytes are the words 0x0102 and 0x0300; the pseudo header of
    // 10.0.0.1 -> 10.0.0.2 adds its address words, protocol 6 and length 3.
    const uint8_t seg[] = {0x01, 0x02, 0x03};
    uint32_t sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 3 + 0x0102 + 0x0300;
    EXPECT_EQ(tcp_checksum(ip("10.0.0.1"), ip("10.0.0.2"), seg), uint16_t(~sum));
}

TEST(HealthSyn, ParsesSynAckAndRst)
{
    auto synack = parse_ipv4(ipv4("198.18.2.10", tcp_header(80, 40000, 0x01020305, 0x12)));
    ASSERT_TRUE(synack);
    EXPECT_EQ(synack->source, ip("198.18.2.10"));
    EXPECT_EQ(synack->source_port, 80);
    EXPECT_EQ(synack->destination_port, 40000);
    EXPECT_EQ(synack->ack, 0x01020305u);
    EXPECT_TRUE(synack->syn_ack);
    EXPECT_FALSE(synack->rst);

    // IP options: the TCP header is found after them.
    auto rst = parse_ipv4(ipv4("198.18.2.11", tcp_header(81, 40001, 7, 0x14), 8));
    ASSERT_TRUE(rst);
    EXPECT_EQ(rst->source, ip("198.18.2.11"));
    EXPECT_EQ(rst->source_port, 81);
    EXPECT_TRUE(rst->rst);
    EXPECT_FALSE(rst->syn_ack);

    auto v6 = parse_tcp(tcp_header(8080, 51234, 0xdeadbef0, 0x12), ip("fd00:1b:50::10"));
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->source, ip("fd00:1b:50::10"));
    EXPECT_EQ(v6->ack, 0xdeadbef0u);
    EXPECT_TRUE(v6->syn_ack);
}

TEST(HealthSyn, IgnoresWhatIsNotAnAnswer)
{
    EXPECT_FALSE(parse_ipv4(ipv4("198.18.2.10", tcp_header(80, 40000, 1, 0x10))));  // ACK
    EXPECT_FALSE(parse_ipv4(ipv4("198.18.2.10", tcp_header(80, 40000, 1, 0x02))));  // SYN
    EXPECT_FALSE(parse_ipv4(ipv4("198.18.2.10", tcp_header(80, 40000, 1, 0x04))));  // RST without ACK
    EXPECT_FALSE(parse_ipv4(ipv4("198.18.2.10", tcp_header(80, 40000, 1, 0x13))));  // SYN-ACK-FIN
    auto shorter = ipv4("198.18.2.10", tcp_header(80, 40000, 1, 0x12));
    shorter.resize(39);
    EXPECT_FALSE(parse_ipv4(shorter));
    EXPECT_FALSE(parse_ipv4(ipv4("198.18.2.10", tcp_header(80, 40000, 1, 0x12), 0, 0x0010)));  // a later fragment
    auto bad_ihl = ipv4("198.18.2.10", tcp_header(80, 40000, 1, 0x12));
    bad_ihl[0] = 0x44;
    EXPECT_FALSE(parse_ipv4(bad_ihl));
    EXPECT_FALSE(parse_tcp(std::vector<uint8_t>(19, 0x12), ip("::1")));
}

TEST(HealthSyn, FilterPassesOnlyRepliesToOurPorts)
{
    const uint16_t ports[] = {40000, 40001, 50000};
    auto v4 = reply_filter(ports, true);
    auto v6 = reply_filter(ports, false);
    for (uint16_t port : ports) {
        EXPECT_GT(run_filter(v4, ipv4("198.18.2.10", tcp_header(80, port, 1, 0x12))), 0u) << port;
        EXPECT_GT(run_filter(v4, ipv4("198.18.2.10", tcp_header(80, port, 1, 0x14), 12)), 0u) << port;
        EXPECT_GT(run_filter(v6, tcp_header(80, port, 1, 0x12)), 0u) << port;
        EXPECT_GT(run_filter(v6, tcp_header(80, port, 1, 0x04)), 0u) << port;
        // Not a reply to a SYN: data, a bare SYN, a FIN.
        EXPECT_EQ(run_filter(v4, ipv4("198.18.2.10", tcp_header(80, port, 1, 0x18))), 0u) << port;
        EXPECT_EQ(run_filter(v6, tcp_header(80, port, 1, 0x02)), 0u) << port;
        EXPECT_EQ(run_filter(v6, tcp_header(80, port, 1, 0x11)), 0u) << port;
    }
    // Other ports (ssh, BGP, an ephemeral one) never reach the socket.
    for (uint16_t port : {22, 179, 40002, 49999}) {
        EXPECT_EQ(run_filter(v4, ipv4("198.18.2.10", tcp_header(80, uint16_t(port), 1, 0x12))), 0u) << port;
        EXPECT_EQ(run_filter(v6, tcp_header(80, uint16_t(port), 1, 0x04)), 0u) << port;
    }
    // The source port is not what is matched.
    EXPECT_EQ(run_filter(v6, tcp_header(40000, 80, 1, 0x12)), 0u);
}

TEST(HealthSyn, IsnMixIsABijectionOnASample)
{
    std::set<uint32_t> seen;
    for (uint32_t i = 0; i < 100000; ++i)
        seen.insert(lbd_hash_final(i ^ 0x5eed5eedu));
    EXPECT_EQ(seen.size(), 100000u);
}
