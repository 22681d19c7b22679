// The packet builder checked against frames computed elsewhere (by hand and
// with a separate script), so the packet tests do not rest on a builder that
// agrees with itself only. No root needed.
#include <gtest/gtest.h>

#include "fixture.h"
#include "packet_builder.h"

using namespace lbt;

namespace {

const Mac kA = mac("02:00:00:00:00:01");
const Mac kB = mac("02:00:00:00:00:aa");

TEST(PacketBuilder, Ipv4HeaderChecksumKnownVector)
{
    // The classic example: 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
    const Bytes h = Packet()
                        .ipv4("192.168.0.1", "192.168.0.199")
                        .ttl(64)
                        .df()
                        .ip_proto(17)
                        .ip_total_length(0x73)
                        .bytes();
    const Bytes want = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                        0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_FRAME(want, h);
    EXPECT_TRUE(ipv4_header_checksum_ok(h));
}

TEST(PacketBuilder, Ipv4TcpSynExactBytes)
{
    const Bytes f = Packet()
                        .eth(kB, kA)
                        .ipv4("198.51.100.7", "198.18.100.1")
                        .ttl(64)
                        .df()
                        .tcp(40000, 80)
                        .syn()
                        .bytes();
    const Bytes want = {
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0xaa, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xe6, 0x81, 0xc6, 0x33,
        0x64, 0x07, 0xc6, 0x12, 0x64, 0x01, 0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04,
        0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff, 0xba, 0xfd, 0x00, 0x00};
    EXPECT_FRAME(want, f);
}

TEST(PacketBuilder, Ipv6UdpExactBytes)
{
    const Bytes f = Packet()
                        .eth(kB, kA)
                        .ipv6("2001:db8:c::7", "fd00:1b:100::1")
                        .hop_limit(33)
                        .traffic_class(0x28)
                        .flow_label(0x12345)
                        .udp(5353, 53)
                        .payload(Bytes{0xde, 0xad, 0xbe, 0xef})
                        .bytes();
    const Bytes want = {
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0xaa, 0x86, 0xdd,
        0x62, 0x81, 0x23, 0x45, 0x00, 0x0c, 0x11, 0x21, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0c,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xfd, 0x00, 0x00, 0x1b,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x14, 0xe9,
        0x00, 0x35, 0x00, 0x0c, 0x21, 0x32, 0xde, 0xad, 0xbe, 0xef};
    EXPECT_FRAME(want, f);
}

TEST(PacketBuilder, Icmp6EchoChecksumKnownValue)
{
    const Bytes f = Packet().ipv6("2001:db8:c::7", "fd00:1b:100::1").echo_request(7, 9).bytes();
    ASSERT_EQ(f.size(), 48u);
    EXPECT_EQ(f[40], 128);
    EXPECT_EQ(f[42], 0x53);
    EXPECT_EQ(f[43], 0xc4);
}

TEST(PacketBuilder, ChecksumsVerifyIndependently)
{
    const auto tcp4 = Packet().ipv4("10.0.0.1", "10.0.0.2").tcp(1, 2).ack().payload(33).bytes();
    EXPECT_TRUE(ipv4_header_checksum_ok(tcp4));
    EXPECT_TRUE(l4_checksum_ok(ip("10.0.0.1"), ip("10.0.0.2"), 6, std::span(tcp4).subspan(20)));

    const auto udp6 = Packet().ipv6("fd00::1", "fd00::2").udp(1, 2).payload(7).bytes();
    EXPECT_TRUE(l4_checksum_ok(ip("fd00::1"), ip("fd00::2"), 17, std::span(udp6).subspan(40)));

    const auto quoted = Packet().ipv4("10.0.0.2", "10.0.0.1").tcp(2, 1).truncate(28);
    const auto icmp4 = Packet().ipv4("10.0.0.9", "10.0.0.2").icmp4_frag_needed(1400, quoted).bytes();
    ASSERT_EQ(icmp4.size(), 20u + 8 + 28);
    EXPECT_TRUE(icmp4_checksum_ok(std::span(icmp4).subspan(20)));
    EXPECT_EQ(icmp4[20], 3);
    EXPECT_EQ(icmp4[21], 4);
    EXPECT_EQ(icmp4[26] << 8 | icmp4[27], 1400);  // next-hop MTU

    const auto ptb = Packet().ipv6("fd00::9", "fd00::2").icmp6_too_big(1280, Bytes(48, 0x11)).bytes();
    EXPECT_TRUE(l4_checksum_ok(ip("fd00::9"), ip("fd00::2"), 58, std::span(ptb).subspan(40)));

    // A corrupted byte is noticed.
    auto bad = tcp4;
    bad[30] ^= 1;
    EXPECT_FALSE(l4_checksum_ok(ip("10.0.0.1"), ip("10.0.0.2"), 6, std::span(bad).subspan(20)));
}

TEST(PacketBuilder, VlanTagsAndIpBytes)
{
    const Packet p = Packet().eth(kB, kA).vlan(200, 0x88a8).vlan(100).ipv4("10.0.0.1", "10.0.0.2").udp(1, 2);
    const Bytes f = p.bytes();
    ASSERT_EQ(f.size(), 14u + 8 + 20 + 8);
    EXPECT_EQ(f[12] << 8 | f[13], 0x88a8);
    EXPECT_EQ(f[14] << 8 | f[15], 200);
    EXPECT_EQ(f[16] << 8 | f[17], 0x8100);
    EXPECT_EQ(f[18] << 8 | f[19], 100);
    EXPECT_EQ(f[20] << 8 | f[21], 0x0800);
    EXPECT_EQ(p.ip_bytes(), Bytes(f.begin() + 22, f.end()));
    const auto v = parse_frame(f);
    EXPECT_EQ(v.l3_off, 22u);
    EXPECT_EQ(v.family, 4);
    EXPECT_EQ(v.ip_dst, ip("10.0.0.2"));
}

TEST(PacketBuilder, FragmentsOptionsAndTruncation)
{
    const auto f4 = Packet().ipv4("10.0.0.1", "10.0.0.2").frag(1480, true).udp(1, 2).bytes();
    EXPECT_EQ(f4[6] << 8 | f4[7], 0x2000 | 185);

    const auto f6 = Packet().ipv6("fd00::1", "fd00::2").frag(8, false, 0xabcd).udp(1, 2).bytes();
    EXPECT_EQ(f6[6], 44);                      // next header: fragment
    EXPECT_EQ(f6[4] << 8 | f6[5], 8 + 8);      // payload length counts the extension
    EXPECT_EQ(f6[40], 17);                     // fragment header's next header
    EXPECT_EQ(f6[42] << 8 | f6[43], 8);        // offset 1 (8 bytes), M = 0
    EXPECT_EQ(f6[46] << 8 | f6[47], 0xabcd);

    const auto o = Packet().ipv4("10.0.0.1", "10.0.0.2").ip_options({1, 1, 1, 0}).tcp(1, 2).bytes();
    EXPECT_EQ(o[0], 0x46);
    EXPECT_EQ(o[2] << 8 | o[3], 24 + 20);
    EXPECT_TRUE(ipv4_header_checksum_ok(o));

    const auto t = Packet().eth(kB, kA).ipv4("10.0.0.1", "10.0.0.2").tcp(1, 2).truncate(30).bytes();
    EXPECT_EQ(t.size(), 30u);
    EXPECT_EQ(t[16] << 8 | t[17], 40);  // lengths are those of the whole packet
}

TEST(PacketBuilder, InnerPacketAndFlowKey)
{
    const Packet in = Packet().eth(kB, kA).ipv4("198.51.100.7", "198.18.100.1").tcp(40000, 80);
    const auto outer = Packet().ipv4("198.18.60.1", "198.18.61.10").inner(in).bytes();
    EXPECT_EQ(outer[9], 4);
    EXPECT_EQ(Bytes(outer.begin() + 20, outer.end()), in.ip_bytes());

    const lbd_flow_key k = in.flow();
    const uint8_t* src = reinterpret_cast<const uint8_t*>(k.src.w);
    EXPECT_EQ(src[0], 198);
    EXPECT_EQ(src[3], 7);
    EXPECT_EQ(k.src.w[1], 0u);
    const uint8_t* sport = reinterpret_cast<const uint8_t*>(&k.sport);
    EXPECT_EQ(sport[0] << 8 | sport[1], 40000);  // network order, as on the wire
    EXPECT_EQ(k.proto, 6);
    EXPECT_EQ(k.family, LBD_AF_INET);

    const Packet in6 = Packet().ipv6("2001:db8::1", "fd00::1").udp(1, 2);
    EXPECT_EQ(Packet().ipv6("fd00::a", "fd00::b").inner(in6).bytes()[6], 41);
}

}  // namespace
