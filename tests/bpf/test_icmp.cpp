// ICMP both ways.
//  In: an ICMP error about a VIP flow (it quotes the backend's DSR reply,
//      VIP:port -> client:port) goes to the backend of the client's flow.
//  Out: a packet too big for the path once encapsulated is answered with
//      ICMP fragmentation-needed / ICMPv6 Packet Too Big from the VIP.
#include <linux/bpf.h>

#include "fixture.h"

using namespace lbt;

namespace {

const lbd::IpAddr kRouter4 = ip("203.0.113.1");  // a router on the client's path
const lbd::IpAddr kRouter6 = ip("2001:db8:ff::1");

/// The backend's reply as a router quotes it: IP header + 8 bytes (v4), or
/// as much as the router chooses (v6: header + the TCP header here).
Packet reply_quote4(uint16_t cport) { return Packet().ipv4(kVip4, kClient4).ttl(63).df().tcp(80, cport).syn().ack().truncate(28); }
Packet reply_quote6(uint16_t cport) { return Packet().ipv6(kVip6, kClient6).hop_limit(63).tcp(80, cport).syn().ack(); }

uint16_t be16_at(const Bytes& b, size_t off) { return uint16_t(b[off] << 8 | b[off + 1]); }

class Icmp : public XdpTest {};

// ------------------------------------------------------------- errors in

TEST_F(Icmp, FragNeededToVipFollowsTheClientsFlow)
{
    const RunResult syn = run(tcp_syn(kClient4, 41000, kVip4));
    ASSERT_ACTION(syn, XDP_TX);
    const lbd::IpAddr backend = syn.outer_dst();

    const Packet err = from_client().ipv4(kRouter4, kVip4).ttl(250).icmp4_frag_needed(1300, reply_quote4(41000));
    CounterWatch counters(dp());
    const RunResult r = run(err);

    ASSERT_ACTION(r, XDP_TX);
    EXPECT_FRAME(Packet().eth(kLbMac, kGwMac).ipv4(kLbAddr4, backend).ttl(250).inner(err).bytes(), r.out);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_TX));
    EXPECT_EQ(counters.delta(LBD_CNT_ICMP_ERR_FWD), 1u);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_HIT), 1u);
}

TEST_F(Icmp, ErrorFollowsThePinnedBackendEvenWhenTheRingMoved)
{
    // Find flows the new ring will move; pin them first.
    std::map<uint16_t, lbd::IpAddr> pinned;
    for (uint16_t port = 20000; port < 20100; port++) {
        const RunResult r = run(tcp_syn(kClient4, port, kVip4));
        ASSERT_ACTION(r, XDP_TX);
        pinned[port] = r.outer_dst();
    }
    set_backends("web4", {"198.18.61.10", "198.18.61.11", "198.18.61.12", "198.18.61.13"});
    int moved = 0;
    for (const auto& [port, be] : pinned) {
        if (*ring_pick("web4", tcp_syn(kClient4, port, kVip4).flow()) == be)
            continue;
        moved++;
        const RunResult r = run(from_client().ipv4(kRouter4, kVip4).icmp4_frag_needed(1300, reply_quote4(port)));
        ASSERT_ACTION(r, XDP_TX);
        EXPECT_EQ(r.outer_dst(), be) << "port " << port;
    }
    EXPECT_GT(moved, 5);
}

TEST_F(Icmp, ErrorWithoutAFlowGoesWhereTheRingWouldSendTheClient)
{
    const Packet err = from_client().ipv4(kRouter4, kVip4).icmp4(11, 0, 0, reply_quote4(41001).bytes());
    const lbd_flow_key client_flow = tcp_syn(kClient4, 41001, kVip4).flow();
    CounterWatch counters(dp());
    const RunResult r = run(err);
    ASSERT_ACTION(r, XDP_TX);
    const auto backend = ring_pick("web4", client_flow);
    ASSERT_TRUE(backend);
    EXPECT_FRAME(encapsulated(err, *backend).bytes(), r.out);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_MISS), 1u);
    EXPECT_EQ(counters.delta(LBD_CNT_ICMP_ERR_FWD), 1u);
    EXPECT_FALSE(conntrack_entry(client_flow)) << "an ICMP error must not create a flow";
}

TEST_F(Icmp, OtherErrorTypesAreForwardedToo)
{
    const RunResult syn = run(tcp_syn(kClient4, 41002, kVip4));
    ASSERT_ACTION(syn, XDP_TX);
    struct {
        uint8_t type, code;
    } errors[] = {{3, 1}, {3, 3}, {3, 13}, {11, 0}, {12, 0}};
    for (auto e : errors) {
        const Packet err = from_client().ipv4(kRouter4, kVip4).icmp4(e.type, e.code, 0, reply_quote4(41002).bytes());
        const RunResult r = run(err);
        ASSERT_ACTION(r, XDP_TX) << "type " << int(e.type) << " code " << int(e.code);
        EXPECT_FRAME(encapsulated(err, syn.outer_dst()).bytes(), r.out);
    }
}

TEST_F(Icmp, UdpFlowErrorFollowsTheUdpFlow)
{
    const Packet dgram = from_client().ipv4(kClient4, kVip4).udp(5300, 53).payload(20);
    const RunResult first = run(dgram);
    ASSERT_ACTION(first, XDP_TX);
    const Packet quote = Packet().ipv4(kVip4, kClient4).udp(53, 5300).payload(20).truncate(28);
    const Packet err = from_client().ipv4(kRouter4, kVip4).icmp4(3, 3, 0, quote.bytes());
    const RunResult r = run(err);
    ASSERT_ACTION(r, XDP_TX);
    EXPECT_EQ(r.outer_dst(), first.outer_dst());
}

TEST_F(Icmp, Ipv6PacketTooBigFollowsTheClientsFlow)
{
    const Packet syn = tcp_syn(kClient6, 41000, kVip6);
    const RunResult first = run(syn);
    ASSERT_ACTION(first, XDP_TX);

    const Packet err = from_client().ipv6(kRouter6, kVip6).hop_limit(250).icmp6_too_big(1280, reply_quote6(41000));
    CounterWatch counters(dp());
    const RunResult r = run(err);

    ASSERT_ACTION(r, XDP_TX);
    const lbd_flow_key client_flow = syn.flow();  // the flow label is the client flow's
    EXPECT_FRAME(encapsulated(err, first.outer_dst(), std::nullopt, client_flow).bytes(), r.out);
    EXPECT_EQ(r.outer_dst(), first.outer_dst());
    EXPECT_EQ(counters.delta(LBD_CNT_ICMP_ERR_FWD), 1u);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_HIT), 1u);
}

TEST_F(Icmp, Ipv6OtherErrorTypesAreForwardedToo)
{
    const RunResult syn = run(tcp_syn(kClient6, 41001, kVip6));
    ASSERT_ACTION(syn, XDP_TX);
    for (uint8_t type : {1, 3, 4}) {
        const Packet err = from_client().ipv6(kRouter6, kVip6).icmp6(type, 0, 0, reply_quote6(41001).bytes());
        const RunResult r = run(err);
        ASSERT_ACTION(r, XDP_TX) << "type " << int(type);
        EXPECT_EQ(r.outer_dst(), syn.outer_dst());
    }
}

TEST_F(Icmp, ErrorsNotAboutAVipFlowPass)
{
    const Packet cases[] = {
        // Quoted source is not a VIP.
        from_client().ipv4(kRouter4, kVip4).icmp4_frag_needed(1300, Packet().ipv4(ip("198.18.100.99"), kClient4).tcp(80, 41000).truncate(28)),
        // A VIP address, but a port that is not a VIP.
        from_client().ipv4(kRouter4, kVip4).icmp4_frag_needed(1300, Packet().ipv4(kVip4, kClient4).tcp(22, 41000).truncate(28)),
        // UDP quoted for the TCP VIP port.
        from_client().ipv4(kRouter4, kVip4).icmp4(3, 3, 0, Packet().ipv4(kVip4, kClient4).udp(80, 41000).truncate(28).bytes()),
        // The client's own direction quoted (client -> VIP): not a reply of ours.
        from_client().ipv4(kRouter4, kVip4).icmp4(3, 3, 0, Packet().ipv4(kClient4, kVip4).tcp(41000, 80).truncate(28).bytes()),
        // Not an error: echo reply, redirect.
        from_client().ipv4(kRouter4, kVip4).icmp4(0, 0, 0x00010001, {}),
        from_client().ipv4(kRouter4, kVip4).icmp4(5, 1, 0, reply_quote4(41000).bytes()),
        from_client().ipv6(kRouter6, kVip6).icmp6_too_big(1280, Packet().ipv6(ip("fd00:1b:100::99"), kClient6).tcp(80, 41000)),
        from_client().ipv6(kRouter6, kVip6).icmp6(129, 0, 0x00010001, {}),  // echo reply
        from_client().ipv6(kRouter6, kVip6).icmp6(135, 0, 0, Bytes(16, 0)),  // neighbour solicitation
    };
    int i = 0;
    for (const Packet& p : cases) {
        SCOPED_TRACE("case " + std::to_string(i++));
        CounterWatch counters(dp());
        const Bytes in = p.bytes();
        const RunResult r = run(in);
        EXPECT_ACTION(r, XDP_PASS);
        EXPECT_FRAME(in, r.out);
        EXPECT_TRUE(counters.verdicts_are(LBD_CNT_PASS_NOT_VIP));
    }
}

// ---------------------------------------------------------------- too big

/// A DF packet of `ip_len` bytes from the client to `vip`.
Packet big4(const lbd::IpAddr& vip, size_t ip_len, bool df = true)
{
    Packet p = from_client().ipv4(kClient4, vip).ttl(64).tos(0x10);
    if (df)
        p.df();
    return p.tcp(42000, 80).ack().seq(7).ack_seq(9).payload(ip_len - 40);
}

Packet big6(const lbd::IpAddr& vip, size_t ip_len)
{
    return from_client().ipv6(kClient6, vip).hop_limit(64).tcp(42000, 80).ack().payload(ip_len - 60);
}

TEST_F(Icmp, TooBigWithDfIsAnsweredWithFragNeeded)
{
    const Packet in = big4(kSmallVip4, 1400);  // 1420 once encapsulated; route MTU 1400
    const Bytes in_ip = in.ip_bytes();
    CounterWatch counters(dp());

    const RunResult r = run(in);

    ASSERT_ACTION(r, XDP_TX);
    const Packet expected = Packet()
                                .eth(kLbMac, kClientMac)  // back where it came from
                                .ipv4(kSmallVip4, kClient4)
                                .ttl(64)
                                .icmp4_frag_needed(1400 - 20, Bytes(in_ip.begin(), in_ip.begin() + 28));
    EXPECT_FRAME(expected.bytes(), r.out);

    // Checked again on the raw bytes, without the builder.
    ASSERT_EQ(r.out.size(), 14u + 20 + 8 + 28);
    const auto ip4 = std::span(r.out).subspan(14, 20);
    const auto icmp = std::span(r.out).subspan(34);
    EXPECT_TRUE(ipv4_header_checksum_ok(ip4)) << "IPv4 header checksum";
    EXPECT_TRUE(icmp4_checksum_ok(icmp)) << "ICMP checksum";
    EXPECT_EQ(be16_at(r.out, 16), 20 + 8 + 28);
    EXPECT_EQ(r.out[23], 1);  // ICMP
    EXPECT_EQ(parse_frame(r.out).ip_src, kSmallVip4);
    EXPECT_EQ(parse_frame(r.out).ip_dst, kClient4);
    EXPECT_EQ(icmp[0], 3);
    EXPECT_EQ(icmp[1], 4);
    EXPECT_EQ(be16_at(r.out, 34 + 6), 1380);  // next-hop MTU
    EXPECT_TRUE(std::equal(icmp.begin() + 8, icmp.end(), in_ip.begin()));

    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_ICMP_TOO_BIG));
}

TEST_F(Icmp, TooBigBoundary)
{
    // 1380 + 20 = 1400 fits the route MTU exactly; one byte more does not.
    const Packet fits = big4(kSmallVip4, 1380);
    const RunResult a = run(fits);
    ASSERT_ACTION(a, XDP_TX);
    EXPECT_FRAME(encapsulated(fits, ip("198.18.62.10")).bytes(), a.out);

    const RunResult b = run(big4(kSmallVip4, 1381));
    ASSERT_ACTION(b, XDP_TX);
    EXPECT_EQ(parse_frame(b.out).proto, 1) << "expected an ICMP reply";
    EXPECT_EQ(parse_frame(b.out).ip_dst, kClient4);
}

TEST_F(Icmp, TooBigWithoutDfPassesToTheKernel)
{
    const Packet in = big4(kSmallVip4, 1400, /*df=*/false);
    CounterWatch counters(dp());
    const RunResult r = run(in);
    EXPECT_ACTION(r, XDP_PASS);
    EXPECT_FRAME(in.bytes(), r.out);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_PASS_TOO_BIG));
}

TEST_F(Icmp, FullSizedFrameToADeviceMtuPathGetsFragNeeded)
{
    // A 1500-byte packet cannot get 20 more bytes on lbt0 (MTU 1500).
    const Packet in = big4(kVip4, 1500);
    const RunResult r = run(in);
    ASSERT_ACTION(r, XDP_TX);
    const Bytes in_ip = in.ip_bytes();
    EXPECT_FRAME(Packet()
                     .eth(kLbMac, kClientMac)
                     .ipv4(kVip4, kClient4)
                     .ttl(64)
                     .icmp4_frag_needed(1480, Bytes(in_ip.begin(), in_ip.begin() + 28))
                     .bytes(),
                 r.out);
    const RunResult ok = run(big4(kVip4, 1480));
    EXPECT_ACTION(ok, XDP_TX);
    EXPECT_EQ(parse_frame(ok.out).proto, 4) << "1480 + 20 fits: encapsulated";
}

TEST_F(Icmp, Ipv6TooBigIsAnsweredWithPacketTooBig)
{
    const Packet in = big6(kSmallVip6, 1400);  // 1440 once encapsulated; route MTU 1400
    const Bytes in_ip = in.ip_bytes();
    CounterWatch counters(dp());

    const RunResult r = run(in);

    ASSERT_ACTION(r, XDP_TX);
    const Packet expected = Packet()
                                .eth(kLbMac, kClientMac)
                                .ipv6(kSmallVip6, kClient6)
                                .hop_limit(64)
                                .icmp6_too_big(1400 - 40, Bytes(in_ip.begin(), in_ip.begin() + 48));
    EXPECT_FRAME(expected.bytes(), r.out);

    ASSERT_EQ(r.out.size(), 14u + 40 + 8 + 48);
    const auto icmp = std::span(r.out).subspan(54);
    EXPECT_TRUE(l4_checksum_ok(kSmallVip6, kClient6, 58, icmp)) << "ICMPv6 checksum";
    EXPECT_EQ(be16_at(r.out, 18), 8 + 48);
    EXPECT_EQ(r.out[20], 58);
    EXPECT_EQ(icmp[0], 2);
    EXPECT_EQ(icmp[1], 0);
    EXPECT_EQ(uint32_t(be16_at(r.out, 58)) << 16 | be16_at(r.out, 60), 1360u);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_ICMP_TOO_BIG));
}

TEST_F(Icmp, Ipv6TooBigBoundary)
{
    const Packet fits = big6(kSmallVip6, 1360);
    const RunResult a = run(fits);
    ASSERT_ACTION(a, XDP_TX);
    EXPECT_FRAME(encapsulated(fits, ip("fd00:1b:62::10")).bytes(), a.out);
    const RunResult b = run(big6(kSmallVip6, 1361));
    ASSERT_ACTION(b, XDP_TX);
    EXPECT_EQ(parse_frame(b.out).proto, 58);
}

TEST_F(Icmp, AnIcmpErrorTooBigToForwardIsNotAnsweredWithAnother)
{
    // An error about a small4 flow, quoting a lot: too big for the 1400 path.
    const Packet quote = Packet().ipv4(kSmallVip4, kClient4).df().tcp(80, 42000).ack().payload(1380);
    const Packet err = from_client().ipv4(kRouter4, kSmallVip4).df().icmp4(3, 4, 1300, quote.bytes());
    ASSERT_GT(err.ip_bytes().size() + 20, 1400u);
    CounterWatch counters(dp());
    const RunResult r = run(err);
    EXPECT_ACTION(r, XDP_PASS);
    EXPECT_FRAME(err.bytes(), r.out);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_PASS_TOO_BIG));
}

}  // namespace
