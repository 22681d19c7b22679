// Encapsulation, byte for byte, with the expected outer headers written out
// literally: where the outer source comes from (the FIB, or the configured
// prefix and the flow hash), which fields are copied, and that the backend is
// the one the ring names and stays the same for the same flow.
#include <linux/bpf.h>

#include <set>

#include "fixture.h"
#include "lbd_hash.h"

using namespace lbt;

namespace {

uint16_t be16_at(const Bytes& b, size_t off) { return uint16_t(b[off] << 8 | b[off + 1]); }

/// base | (hash & hostmask) over the raw 32-bit words, as lbd_shared.h
/// documents the outer source (hostmask from the prefix length).
lbd::IpAddr source_in_prefix(const lbd::Prefix& p, uint32_t word_hash, int word)
{
    lbd::IpAddr a = p.addr;
    const int bits = a.is_v4() ? 32 : 128;
    uint8_t mask[16] = {};
    for (int i = p.len; i < bits; i++)
        mask[i / 8] |= uint8_t(0x80 >> (i % 8));
    uint32_t base_w, mask_w;
    std::memcpy(&base_w, a.bytes.data() + 4 * word, 4);
    std::memcpy(&mask_w, mask + 4 * word, 4);
    const uint32_t w = base_w | (word_hash & mask_w);
    std::memcpy(a.bytes.data() + 4 * word, &w, 4);
    return a;
}

class Encap : public XdpTest {};

TEST_F(Encap, Ipv4SynExactFrameOuterSourceFromFib)
{
    const Packet in = from_client()
                          .ipv4("198.51.100.7", "198.18.100.1")
                          .ttl(61)
                          .tos(0x28)
                          .df()
                          .ip_id(0x4242)
                          .tcp(40000, 80)
                          .syn()
                          .seq(0xdeadbeef);
    const auto backend = ring_pick("web4", in.flow());
    ASSERT_TRUE(backend);
    ASSERT_TRUE(vip("web4").find(*backend)) << backend->str() << " is not a web4 backend";
    CounterWatch counters(dp());

    const RunResult r = run(in);

    ASSERT_ACTION(r, XDP_TX);
    const Packet expected = Packet()
                                .eth(mac("02:00:00:00:00:01"), mac("02:00:00:00:00:fe"))
                                .ipv4(ip("198.18.60.1"), *backend)
                                .ttl(61)
                                .tos(0x28)
                                .df()
                                .inner(in);
    EXPECT_FRAME(expected.bytes(), r.out);
    // The same, checked field by field on the raw output.
    ASSERT_EQ(r.out.size(), 14 + 20 + in.ip_bytes().size());
    EXPECT_EQ(be16_at(r.out, 12), 0x0800);
    EXPECT_EQ(r.out[14], 0x45);
    EXPECT_EQ(r.out[15], 0x28);                                       // TOS copied
    EXPECT_EQ(be16_at(r.out, 16), 20 + in.ip_bytes().size());         // total length
    EXPECT_EQ(be16_at(r.out, 20), 0x4000);                            // DF copied
    EXPECT_EQ(r.out[22], 61);                                         // TTL copied
    EXPECT_EQ(r.out[23], 4);                                          // IP-in-IP
    EXPECT_TRUE(ipv4_header_checksum_ok(std::span(r.out).subspan(14)));
    EXPECT_EQ(Bytes(r.out.begin() + 34, r.out.end()), in.ip_bytes()); // inner untouched
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_TX));
    const auto ct = conntrack_entry(in.flow());
    ASSERT_TRUE(ct) << "the SYN must pin its flow";
    EXPECT_EQ(ct->backend_id, backend_id("web4", *backend));

    // The same SYN again (a retransmission): same pick, same bytes.
    const RunResult r2 = run(in);
    ASSERT_ACTION(r2, XDP_TX);
    EXPECT_FRAME(expected.bytes(), r2.out);

    // The rest of the connection: conntrack hits, same backend.
    const Packet ack = from_client()
                           .ipv4("198.51.100.7", "198.18.100.1")
                           .ttl(61)
                           .tos(0x28)
                           .df()
                           .tcp(40000, 80)
                           .ack()
                           .payload(12);
    CounterWatch later(dp());
    const RunResult r3 = run(ack);
    ASSERT_ACTION(r3, XDP_TX);
    EXPECT_FRAME(Packet().eth(kLbMac, kGwMac).ipv4(kLbAddr4, *backend).ttl(61).tos(0x28).df().inner(ack).bytes(),
                 r3.out);
    EXPECT_EQ(later.delta(LBD_CNT_CT_HIT), 1u);
    EXPECT_EQ(later.delta(LBD_CNT_CT_MISS), 0u);
}

TEST_F(Encap, FlowsSpreadOverAllBackendsAsTheRingSays)
{
    std::map<lbd::IpAddr, int> per_backend;
    for (uint16_t port = 20000; port < 20300; port++) {
        const Packet in = tcp_syn(kClient4, port, kVip4);
        const RunResult r = run(in);
        ASSERT_ACTION(r, XDP_TX);
        const auto want = ring_pick("web4", in.flow());
        ASSERT_TRUE(want);
        ASSERT_EQ(r.outer_dst(), *want) << "port " << port;
        per_backend[*want]++;
    }
    EXPECT_EQ(per_backend.size(), 3u);
    for (auto [be, n] : per_backend)
        EXPECT_GT(n, 50) << be.str() << " got too few of 300 flows";
}

TEST_F(Encap, Ipv4OuterSourceFromConfiguredPrefix)
{
    const auto prefix = lbd::Prefix::parse("198.18.0.0/24");
    ASSERT_TRUE(prefix);
    st().set_encap_sources(prefix, std::nullopt);
    std::set<lbd::IpAddr> sources;
    for (uint16_t port = 41000; port < 41032; port++) {
        const Packet in = tcp_syn(kClient4, port, kVip4);
        const lbd_flow_key k = in.flow();
        const lbd::IpAddr src = source_in_prefix(*prefix, lbd_flow_hash(&k, kSeed), 0);
        ASSERT_TRUE(prefix->contains(src));
        const RunResult r = run(in);
        ASSERT_ACTION(r, XDP_TX);
        EXPECT_FRAME(encapsulated(in, *ring_pick("web4", k), src).bytes(), r.out);
        sources.insert(parse_frame(r.out).ip_src);
    }
    EXPECT_GT(sources.size(), 10u) << "outer sources should spread over the prefix";

    // Back to no prefix: the FIB's choice, lbt0's address.
    st().set_encap_sources(std::nullopt, std::nullopt);
    const RunResult r = run(tcp_syn(kClient4, 41000, kVip4));
    EXPECT_EQ(parse_frame(r.out).ip_src, kLbAddr4);
}

TEST_F(Encap, Ipv4SinglePrefixAddressIsAlwaysTheSource)
{
    st().set_encap_sources(lbd::Prefix::parse("198.18.0.7/32"), std::nullopt);
    for (uint16_t port = 41000; port < 41010; port++) {
        const Packet in = tcp_syn(kClient4, port, kVip4);
        const RunResult r = run(in);
        ASSERT_ACTION(r, XDP_TX);
        EXPECT_FRAME(encapsulated(in, *ring_pick("web4", in.flow()), ip("198.18.0.7")).bytes(), r.out);
    }
}

TEST_F(Encap, Ipv6SynExactFrame)
{
    const Packet in = from_client()
                          .ipv6("2001:db8:c::7", "fd00:1b:100::1")
                          .hop_limit(33)
                          .traffic_class(0xb8)
                          .flow_label(0xabcde)
                          .tcp(40000, 80)
                          .syn();
    const lbd_flow_key k = in.flow();
    const auto backend = ring_pick("web6", k);
    ASSERT_TRUE(backend);
    ASSERT_TRUE(vip("web6").find(*backend));
    const uint32_t label = lbd_flow_hash(&k, kSeed) & 0xfffff;

    const RunResult r = run(in);

    ASSERT_ACTION(r, XDP_TX);
    const Packet expected = Packet()
                                .eth(mac("02:00:00:00:00:01"), mac("02:00:00:00:00:fe"))
                                .ipv6(ip("fd00:1b:60::1"), *backend)
                                .hop_limit(33)
                                .traffic_class(0xb8)
                                .flow_label(label)
                                .inner(in);
    EXPECT_FRAME(expected.bytes(), r.out);
    ASSERT_EQ(r.out.size(), 14 + 40 + in.ip_bytes().size());
    EXPECT_EQ(be16_at(r.out, 12), 0x86dd);
    const uint32_t vtf = uint32_t(be16_at(r.out, 14)) << 16 | be16_at(r.out, 16);
    EXPECT_EQ(vtf >> 28, 6u);
    EXPECT_EQ((vtf >> 20) & 0xff, 0xb8u);            // traffic class copied
    EXPECT_EQ(vtf & 0xfffff, label);                 // flow label from the hash
    EXPECT_EQ(be16_at(r.out, 18), in.ip_bytes().size());  // payload length = inner length
    EXPECT_EQ(r.out[20], 41);                        // IPv6-in-IPv6
    EXPECT_EQ(r.out[21], 33);                        // hop limit copied
    EXPECT_EQ(Bytes(r.out.begin() + 54, r.out.end()), in.ip_bytes());
}

TEST_F(Encap, Ipv6FlowLabelDiffersPerFlowAndIsStablePerFlow)
{
    std::set<uint32_t> labels;
    for (uint16_t port = 42000; port < 42016; port++) {
        const Packet in = tcp_syn(kClient6, port, kVip6);
        const RunResult a = run(in), b = run(in);
        ASSERT_ACTION(a, XDP_TX);
        EXPECT_FRAME(a.out, b.out);
        labels.insert((uint32_t(be16_at(a.out, 15)) << 8 | a.out[17]) & 0xfffff);
    }
    EXPECT_GT(labels.size(), 12u);
}

TEST_F(Encap, Ipv6OuterSourceFromConfiguredPrefix)
{
    // A /120: only the last word has host bits, so the documented
    // base | (hash & hostmask) names the address without ambiguity.
    const auto prefix = lbd::Prefix::parse("fd00:1b:e::/120");
    ASSERT_TRUE(prefix);
    st().set_encap_sources(std::nullopt, prefix);
    std::set<lbd::IpAddr> sources;
    for (uint16_t port = 43000; port < 43024; port++) {
        const Packet in = tcp_syn(kClient6, port, kVip6);
        const lbd_flow_key k = in.flow();
        const lbd::IpAddr src = source_in_prefix(*prefix, lbd_flow_hash(&k, kSeed), 3);
        const RunResult r = run(in);
        ASSERT_ACTION(r, XDP_TX);
        EXPECT_FRAME(encapsulated(in, *ring_pick("web6", k), src).bytes(), r.out);
        sources.insert(src);
    }
    EXPECT_GT(sources.size(), 10u);
}

TEST_F(Encap, Ipv6WidePrefixSourceStaysInsideAndIsPerFlow)
{
    const auto prefix = lbd::Prefix::parse("fd00:1b:e::/64");
    st().set_encap_sources(std::nullopt, prefix);
    std::set<lbd::IpAddr> sources;
    for (uint16_t port = 43000; port < 43016; port++) {
        const Packet in = tcp_syn(kClient6, port, kVip6);
        const RunResult a = run(in), b = run(in);
        ASSERT_ACTION(a, XDP_TX);
        const lbd::IpAddr src = parse_frame(a.out).ip_src;
        EXPECT_TRUE(prefix->contains(src)) << src.str();
        EXPECT_EQ(parse_frame(b.out).ip_src, src);
        sources.insert(src);
    }
    EXPECT_EQ(sources.size(), 16u);
}

TEST_F(Encap, V4PrefixDoesNotChangeV6SourceAndViceVersa)
{
    st().set_encap_sources(lbd::Prefix::parse("198.18.0.0/24"), std::nullopt);
    EXPECT_EQ(parse_frame(run(tcp_syn(kClient6, 44000, kVip6)).out).ip_src, kLbAddr6);
    st().set_encap_sources(std::nullopt, lbd::Prefix::parse("fd00:1b:e::/120"));
    EXPECT_EQ(parse_frame(run(tcp_syn(kClient4, 44000, kVip4)).out).ip_src, kLbAddr4);
}

TEST_F(Encap, UdpBothFamiliesExactFrames)
{
    const Packet in4 = from_client().ipv4(kClient4, kVip4).ttl(64).udp(33000, 53).payload(29);
    const RunResult r4 = run(in4);
    ASSERT_ACTION(r4, XDP_TX);
    const auto be4 = ring_pick("dns4", in4.flow());
    ASSERT_TRUE(be4);
    EXPECT_FRAME(Packet().eth(kLbMac, kGwMac).ipv4(kLbAddr4, *be4).ttl(64).inner(in4).bytes(), r4.out);

    const Packet in6 = from_client().ipv6(kClient6, kVip6).hop_limit(5).udp(33000, 53).payload(29);
    const lbd_flow_key k6 = in6.flow();
    const RunResult r6 = run(in6);
    ASSERT_ACTION(r6, XDP_TX);
    const auto be6 = ring_pick("dns6", k6);
    ASSERT_TRUE(be6);
    EXPECT_FRAME(Packet()
                     .eth(kLbMac, kGwMac)
                     .ipv6(kLbAddr6, *be6)
                     .hop_limit(5)
                     .flow_label(lbd_flow_hash(&k6, kSeed) & 0xfffff)
                     .inner(in6)
                     .bytes(),
                 r6.out);
}

TEST_F(Encap, VlanTagsAreNotCarriedOver)
{
    const Packet one = from_client().vlan(100).ipv4(kClient4, kVip4).ttl(64).df().tcp(45000, 80).syn();
    const Packet two = from_client().vlan(200, 0x88a8).vlan(100).ipv4(kClient4, kVip4).ttl(64).df().tcp(45000, 80).syn();
    const Packet none = from_client().ipv4(kClient4, kVip4).ttl(64).df().tcp(45000, 80).syn();
    const auto backend = ring_pick("web4", none.flow());
    ASSERT_TRUE(backend);
    const Bytes expected = Packet().eth(kLbMac, kGwMac).ipv4(kLbAddr4, *backend).ttl(64).df().inner(none).bytes();

    const RunResult r1 = run(one);
    ASSERT_ACTION(r1, XDP_TX);
    EXPECT_FRAME(expected, r1.out);
    const RunResult r2 = run(two);
    ASSERT_ACTION(r2, XDP_TX);
    EXPECT_FRAME(expected, r2.out);
    // The tags are not part of the flow: all three are one flow.
    const RunResult r0 = run(none);
    EXPECT_FRAME(expected, r0.out);
}

TEST_F(Encap, TcpPayloadAndLengthsPreserved)
{
    const Packet in = tcp_ack(kClient4, 46000, kVip4).payload(1000);
    const RunResult r = run(in);
    ASSERT_ACTION(r, XDP_TX);
    EXPECT_FRAME(encapsulated(in, *ring_pick("web4", in.flow())).bytes(), r.out);
    EXPECT_EQ(r.out.size(), in.size() + 20);
    EXPECT_TRUE(l4_checksum_ok(kClient4, kVip4, 6, std::span(r.out).subspan(14 + 20 + 20)));
}

TEST_F(Encap, FrameWithEthernetPaddingKeepsIpLengthFromHeader)
{
    // A 54-byte SYN padded to the 60-byte Ethernet minimum: the outer length
    // counts the IP packet, not the padding.
    const Packet syn = tcp_syn(kClient4, 47000, kVip4);
    Bytes padded = syn.bytes();
    padded.resize(60, 0);
    const RunResult r = run(padded);
    ASSERT_ACTION(r, XDP_TX);
    const auto backend = ring_pick("web4", syn.flow());
    Bytes expected = encapsulated(syn, *backend).bytes();
    expected.resize(expected.size() + 6, 0);  // the padding trails the inner packet
    EXPECT_FRAME(expected, r.out);
    EXPECT_EQ(be16_at(r.out, 16), 20 + 40);
}

}  // namespace
