// One frame in, one verdict out: the table of what the program does with a
// single packet, no history needed. Each row reads
//   description | input frame | expected action | expected output | counter
// where the output is the input unchanged, the input encapsulated toward the
// backend the VIP's ring names for its flow (outer header built independently
// by encapsulated(): lbt0 -> next hop MACs, lbt0's address -> backend, TTL,
// TOS and DF copied), or nothing to compare (dropped).
#include <linux/bpf.h>

#include <bpf/bpf.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "fixture.h"
#include "lbd/core/vip_index.h"
#include "lbd_hash.h"

using namespace lbt;

namespace {

enum class Out { Unchanged, EncapToRing, NotCompared };

struct Row {
    std::string name;
    Packet input;
    int action;
    Out out;
    lbd_counter reason;
    std::string vip = {};  // EncapToRing: the VIP whose ring picks the backend
};

void PrintTo(const Row& r, std::ostream* os) { *os << r.name; }

// Short-hands for the rows below.
Packet v4(const lbd::IpAddr& dst = kVip4) { return from_client().ipv4(kClient4, dst).ttl(64).df(); }
Packet v6(const lbd::IpAddr& dst = kVip6) { return from_client().ipv6(kClient6, dst).hop_limit(64); }
Packet v4_vlan(int tags)
{
    Packet p = from_client();
    if (tags == 2)
        p.vlan(200, 0x88a8);
    p.vlan(100);
    return p.ipv4(kClient4, kVip4).ttl(64).df();
}

const Packet kQuoteTcpVip4 = Packet().ipv4(kVip4, kClient4).ttl(64).df().tcp(80, 40000).syn().ack();

std::vector<Row> rows()
{
    const int TX = XDP_TX, PASS = XDP_PASS, DROP = XDP_DROP;
    const auto U = Out::Unchanged, E = Out::EncapToRing, N = Out::NotCompared;
    return {
        // ------------------------------------------------ to a VIP: encapsulated
        {"v4_tcp_syn", v4().tcp(40000, 80).syn(), TX, E, LBD_CNT_TX, "web4"},
        {"v4_tcp_ack_no_conntrack_entry", v4().tcp(40001, 80).ack().payload(100), TX, E, LBD_CNT_TX, "web4"},
        {"v4_tcp_fin_rst_no_conntrack_entry", v4().tcp(40002, 80).fin().rst(), TX, E, LBD_CNT_TX, "web4"},
        {"v4_tcp_tos_ttl_copied", from_client().ipv4(kClient4, kVip4).ttl(3).tos(0xb8).df().tcp(40003, 80).syn(), TX, E, LBD_CNT_TX, "web4"},
        {"v4_tcp_no_df_gives_outer_no_df", from_client().ipv4(kClient4, kVip4).ttl(64).tcp(40004, 80).syn(), TX, E, LBD_CNT_TX, "web4"},
        {"v4_tcp_with_tcp_options_doff_15", v4().tcp(40005, 80).syn().tcp_doff(15).payload(40), TX, E, LBD_CNT_TX, "web4"},
        {"v4_udp", v4().udp(5353, 53).payload(40), TX, E, LBD_CNT_TX, "dns4"},
        {"v4_udp_no_df", from_client().ipv4(kClient4, kVip4).ttl(9).udp(5354, 53).payload(1), TX, E, LBD_CNT_TX, "dns4"},
        {"v6_tcp_syn", v6().tcp(40000, 80).syn(), TX, E, LBD_CNT_TX, "web6"},
        {"v6_tcp_tclass_flowlabel", from_client().ipv6(kClient6, kVip6).hop_limit(7).traffic_class(0xb8).flow_label(0xabcde).tcp(40001, 80).syn(), TX, E, LBD_CNT_TX, "web6"},
        {"v6_tcp_ack_no_conntrack_entry", v6().tcp(40002, 80).ack().payload(200), TX, E, LBD_CNT_TX, "web6"},
        {"v6_udp", v6().udp(5353, 53).payload(40), TX, E, LBD_CNT_TX, "dns6"},
        {"v4_vlan_1_tag_output_untagged", v4_vlan(1).tcp(40010, 80).syn(), TX, E, LBD_CNT_TX, "web4"},
        {"v4_vlan_2_tags_output_untagged", v4_vlan(2).tcp(40011, 80).syn(), TX, E, LBD_CNT_TX, "web4"},
        {"v4_vlan_2_tags_udp", v4_vlan(2).udp(5355, 53).payload(12), TX, E, LBD_CNT_TX, "dns4"},
        {"v6_vlan_1_tag_output_untagged", from_client().vlan(100).ipv6(kClient6, kVip6).tcp(40010, 80).syn(), TX, E, LBD_CNT_TX, "web6"},
        {"v6_vlan_2_tags_output_untagged", from_client().vlan(7, 0x88a8).vlan(8).ipv6(kClient6, kVip6).tcp(40011, 80).syn(), TX, E, LBD_CNT_TX, "web6"},

        // ------------------------------------------------ to a VIP, flooded: not ours to forward
        {"v4_tcp_syn_to_broadcast_mac", Packet().eth(kClientMac, mac("ff:ff:ff:ff:ff:ff")).ipv4(kClient4, kVip4).ttl(64).df().tcp(40020, 80).syn(), PASS, U, LBD_CNT_PASS_NOT_UNICAST},
        {"v4_udp_to_multicast_mac", Packet().eth(kClientMac, mac("01:00:5e:12:00:01")).ipv4(kClient4, kVip4).ttl(64).udp(5360, 53).payload(8), PASS, U, LBD_CNT_PASS_NOT_UNICAST},
        {"v6_tcp_syn_to_multicast_mac", Packet().eth(kClientMac, mac("33:33:00:00:00:01")).ipv6(kClient6, kVip6).hop_limit(64).tcp(40020, 80).syn(), PASS, U, LBD_CNT_PASS_NOT_UNICAST},

        // ------------------------------------------------ not IP
        {"arp_request", from_client().arp_request(kClientMac, kClient4, kVip4), PASS, U, LBD_CNT_PASS_NOT_IP},
        {"lldp", from_client().ethertype(0x88cc).raw_l2(Bytes(46, 0x5a)), PASS, U, LBD_CNT_PASS_NOT_IP},
        {"vlan_tagged_arp", from_client().vlan(100).arp_request(kClientMac, kClient4, kVip4), PASS, U, LBD_CNT_PASS_NOT_IP},
        {"ethernet_header_only_arp", from_client().ethertype(0x0806), PASS, U, LBD_CNT_PASS_NOT_IP},

        // ------------------------------------------------ IP, not for a VIP
        {"v4_tcp_other_address", v4(ip("198.18.100.99")).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_tcp_vip_other_port", v4().tcp(40000, 443).syn(), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_tcp_to_udp_vip_port", v4().tcp(40000, 53).syn(), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_udp_to_tcp_vip_port", v4().udp(40000, 80).payload(8), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_icmp_echo_to_vip", v4().echo_request(1, 1), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_gre_to_vip", v4().ip_proto(47).payload(16), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_tcp_to_lb_own_address", v4(kLbAddr4).tcp(40000, 22).syn(), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v6_tcp_other_address", v6(ip("fd00:1b:100::99")).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v6_tcp_vip_other_port", v6().tcp(40000, 8080).syn(), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v6_udp_to_tcp_vip_port", v6().udp(40000, 80).payload(8), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v6_icmp_echo_to_vip", v6().echo_request(1, 1), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v6_no_next_header", v6().payload(0), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v6_address_with_v4_vip_bytes", v6(ip("c612:6401::")).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_icmp_error_quoting_non_vip_flow", v4().icmp4_frag_needed(1300, Packet().ipv4(ip("198.18.100.99"), kClient4).tcp(80, 40000).syn().ack().truncate(28)), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_icmp_error_quoting_vip_other_port", v4().icmp4_frag_needed(1300, Packet().ipv4(kVip4, kClient4).tcp(443, 40000).syn().ack().truncate(28)), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_icmp_error_quoting_icmp", v4().icmp4(3, 1, 0, Packet().ipv4(kVip4, kClient4).echo_request(1, 1).bytes()), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v4_icmp_error_quote_with_ip_options", v4().icmp4(3, 4, 1300, Packet().ipv4(kVip4, kClient4).ip_options({1, 1, 1, 0}).tcp(80, 40000).truncate(32)), PASS, U, LBD_CNT_PASS_NOT_VIP},
        {"v6_icmp_error_quoting_non_vip_flow", v6().icmp6_too_big(1280, Packet().ipv6(ip("fd00:1b:100::99"), kClient6).tcp(80, 40000).syn().ack()), PASS, U, LBD_CNT_PASS_NOT_VIP},

        // ------------------------------------------------ fragments, options, extension headers
        {"v4_first_fragment_mf", v4().frag(0, true).tcp(40000, 80).syn().payload(64), PASS, U, LBD_CNT_PASS_FRAGMENT},
        {"v4_middle_fragment", v4().frag(1480, true).tcp(40000, 80).payload(64), PASS, U, LBD_CNT_PASS_FRAGMENT},
        {"v4_last_fragment_offset_only", v4().frag(1480, false).udp(5353, 53).payload(64), PASS, U, LBD_CNT_PASS_FRAGMENT},
        {"v4_fragment_with_options", v4().frag(8, false).ip_options({1, 1, 1, 0}).tcp(40000, 80), PASS, U, LBD_CNT_PASS_FRAGMENT},
        {"v6_fragment_header_first", v6().frag(0, true).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_FRAGMENT},
        {"v6_fragment_header_later", v6().frag(1232, false).udp(5353, 53).payload(8), PASS, U, LBD_CNT_PASS_FRAGMENT},
        {"v6_atomic_fragment", v6().frag(0, false).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_FRAGMENT},
        {"v4_options_ihl_6", v4().ip_options({1, 1, 1, 0}).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_IP_OPTIONS},
        {"v4_options_ihl_15", v4().ip_options(Bytes(40, 1)).udp(5353, 53), PASS, U, LBD_CNT_PASS_IP_OPTIONS},
        {"v6_hop_by_hop", v6().ipv6_ext(0).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_IPV6_EXT},
        {"v6_destination_options", v6().ipv6_ext(60).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_IPV6_EXT},
        {"v6_routing_header", v6().ipv6_ext(43).udp(5353, 53), PASS, U, LBD_CNT_PASS_IPV6_EXT},

        // ------------------------------------------------ truncated or inconsistent
        {"cut_in_vlan_tag_16_bytes", v4_vlan(1).tcp(40000, 80).syn().truncate(16), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"cut_in_second_vlan_tag", v4_vlan(2).tcp(40000, 80).syn().truncate(20), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"three_vlan_tags", from_client().vlan(1, 0x88a8).vlan(2).vlan(3).ipv4(kClient4, kVip4).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_ethernet_header_only", v4().tcp(40000, 80).syn().truncate(14), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_cut_mid_header", v4().tcp(40000, 80).syn().truncate(14 + 10), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_cut_19_header_bytes", v4().tcp(40000, 80).syn().truncate(14 + 19), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_cut_in_options", v4().ip_options({1, 1, 1, 1, 1, 1, 1, 0}).tcp(40000, 80).truncate(14 + 24), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_cut_before_tcp", v4().tcp(40000, 80).syn().truncate(14 + 20), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_cut_mid_tcp", v4().tcp(40000, 80).syn().truncate(14 + 20 + 10), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_cut_tcp_19_bytes", v4().tcp(40000, 80).syn().truncate(14 + 20 + 19), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_cut_mid_udp", v4().udp(5353, 53).payload(8).truncate(14 + 20 + 4), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_vlan_cut_mid_header", v4_vlan(1).tcp(40000, 80).truncate(18 + 12), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_version_field_5", v4().ip_version(5).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_version_field_6", v4().ip_version(6).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_ihl_4", v4().ihl(4).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_ihl_beyond_frame", v4().ihl(15).tcp(40000, 80).truncate(14 + 40), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_total_length_below_header", v4().ip_total_length(19).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_tcp_doff_4", v4().tcp(40000, 80).syn().tcp_doff(4), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_udp_length_7", v4().udp(5353, 53).udp_length(7), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_icmp_cut_in_header", v4().icmp4_frag_needed(1300, Packet(kQuoteTcpVip4).truncate(28)).truncate(14 + 20 + 6), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_icmp_quote_cut_in_ip_header", v4().icmp4_frag_needed(1300, Packet(kQuoteTcpVip4).truncate(12)), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v4_icmp_quote_cut_in_ports", v4().icmp4_frag_needed(1300, Packet(kQuoteTcpVip4).truncate(22)), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v6_ethernet_header_only", v6().tcp(40000, 80).truncate(14), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v6_cut_mid_header", v6().tcp(40000, 80).syn().truncate(14 + 20), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v6_cut_39_header_bytes", v6().tcp(40000, 80).syn().truncate(14 + 39), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v6_cut_mid_tcp", v6().tcp(40000, 80).syn().truncate(14 + 40 + 12), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v6_cut_mid_udp", v6().udp(5353, 53).truncate(14 + 40 + 7), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v6_version_field_4", v6().ip_version(4).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_MALFORMED},
        {"v6_icmp_quote_cut_in_ports", v6().icmp6_too_big(1280, Packet().ipv6(kVip6, kClient6).tcp(80, 40000).truncate(42)), PASS, U, LBD_CNT_PASS_MALFORMED},

        // ------------------------------------------------ to a VIP, but no way to a backend
        {"v4_vip_without_backends", v4(kEmptyVip4).tcp(40000, 80).syn(), DROP, N, LBD_CNT_DROP_NO_BACKEND},
        {"v6_vip_without_backends", v6(kEmptyVip6).tcp(40000, 80).syn(), DROP, N, LBD_CNT_DROP_NO_BACKEND},
        {"v4_backend_blackholed", v4(kHoleVip4).tcp(40000, 80).syn(), DROP, N, LBD_CNT_DROP_FIB_UNREACH},
        {"v6_backend_blackholed", v6(kHoleVip6).tcp(40000, 80).syn(), DROP, N, LBD_CNT_DROP_FIB_UNREACH},
        {"v4_next_hop_without_neighbour", v4(kNoNeighVip4).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_NO_NEIGH},
        {"v6_next_hop_without_neighbour", v6(kNoNeighVip6).tcp(40000, 80).syn(), PASS, U, LBD_CNT_PASS_NO_NEIGH},
        {"v4_too_big_without_df", from_client().ipv4(kClient4, kSmallVip4).ttl(64).tcp(40000, 80).ack().payload(1400 - 40), PASS, U, LBD_CNT_PASS_TOO_BIG},
        {"v4_vlan_too_big_with_df", from_client().vlan(100).ipv4(kClient4, kSmallVip4).ttl(64).df().tcp(40000, 80).ack().payload(1400 - 40), PASS, U, LBD_CNT_PASS_TOO_BIG},
        {"v6_vlan_too_big", from_client().vlan(100).ipv6(kClient6, kSmallVip6).tcp(40000, 80).ack().payload(1400 - 60), PASS, U, LBD_CNT_PASS_TOO_BIG},
    };
}

class Verdict : public XdpTest, public ::testing::WithParamInterface<Row> {};

TEST_P(Verdict, OneFrame)
{
    const Row& row = GetParam();
    const Bytes in = row.input.bytes();
    SCOPED_TRACE("input:\n" + hexdump(in));
    CounterWatch counters(dp());

    const RunResult r = run(in);

    EXPECT_ACTION(r, row.action);
    switch (row.out) {
    case Out::Unchanged:
        EXPECT_FRAME(in, r.out);
        break;
    case Out::EncapToRing: {
        const auto backend = ring_pick(row.vip, row.input.flow());
        ASSERT_TRUE(backend) << "the ring of " << row.vip << " names no backend for this flow";
        EXPECT_FRAME(encapsulated(row.input, *backend).bytes(), r.out);
        break;
    }
    case Out::NotCompared:
        break;
    }
    EXPECT_TRUE(counters.verdicts_are(row.reason)) << "expected " << lbd_counter_name(row.reason);
}

INSTANTIATE_TEST_SUITE_P(Table, Verdict, ::testing::ValuesIn(rows()),
                         [](const auto& info) { return info.param.name; });

}  // namespace

// ------------------------------------------------- vip_filter, vip_index
// The VIP lookup: vip_filter's clear bit passes the packet as not for a VIP;
// a bucket of one VIP is found through vip_index and vip_by_id (key
// compared); a bucket of several goes to the vips hash.
// The prefilter in front of the vips lookup: a clear bit passes the packet
// as not for a VIP; a set bit only sends it on to the lookup.
namespace {

using VipFilterTest = XdpTest;

lbd::VipIndex filter_of(const lbd::LbState& st)
{
    lbd::VipIndex f;
    for (const auto& [name, v] : st.vips())
        f.add(v.key(), v.vip_id);
    return f;
}

/// The vip_index map holds, for every bucket of a VIP, what VipIndex says.
::testing::AssertionResult index_matches(int fd, const lbd::LbState& st)
{
    const auto want = filter_of(st);
    for (const auto& [name, v] : st.vips()) {
        const lbd_vip_key k = v.key();
        uint32_t b = lbd_vip_filter_bit(&k), got = 0;
        if (bpf_map_lookup_elem(fd, &b, &got) != 0)
            return ::testing::AssertionFailure() << "reading vip_index";
        if (got != want.slot(b))
            return ::testing::AssertionFailure() << "bucket " << b << " of " << name << ": map " << got
                                                 << ", want " << want.slot(b);
    }
    return ::testing::AssertionSuccess();
}

/// A port of `vip_key`'s address whose key shares its bucket.
std::optional<uint16_t> colliding_port(const lbd_vip_key& vip_key)
{
    for (uint32_t p = 1; p < 65536; p++) {
        lbd_vip_key k = vip_key;
        k.port = htons(uint16_t(p));
        if (k.port != vip_key.port && lbd_vip_filter_bit(&k) == lbd_vip_filter_bit(&vip_key))
            return uint16_t(p);
    }
    return std::nullopt;
}

lbd_vip_filter filter_map(int fd)
{
    lbd_vip_filter m{};
    const uint32_t zero = 0;
    if (bpf_map_lookup_elem(fd, &zero, &m) != 0)
        throw std::runtime_error("reading vip_filter");
    return m;
}

bool same_bits(const lbd_vip_filter& a, const lbd_vip_filter& b)
{
    return std::memcmp(&a, &b, sizeof a) == 0;
}

TEST_F(VipFilterTest, MapHoldsTheBitsOfEveryVipAndFollowsChanges)
{
    const int fd = map_fd("vip_filter");
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(same_bits(filter_map(fd), filter_of(st()).bits()));
    EXPECT_TRUE(index_matches(map_fd("vip_index"), st()));
    size_t set = 0;
    for (auto w : filter_map(fd).bits)
        set += size_t(__builtin_popcountll(w));
    EXPECT_GE(set, 1u);
    EXPECT_LE(set, st().vips().size());

    // A VIP goes: its bit clears (unless another VIP shares the bucket) and
    // its packets pass; it comes back: they are forwarded again.
    auto cfg = config_;
    const auto web4 = std::find_if(cfg.begin(), cfg.end(), [](const auto& v) { return v.name == "web4"; });
    ASSERT_NE(web4, cfg.end());
    const lbd::VipConfig saved = *web4;
    cfg.erase(web4);
    apply_config(cfg);
    EXPECT_TRUE(same_bits(filter_map(fd), filter_of(st()).bits()));
    EXPECT_TRUE(index_matches(map_fd("vip_index"), st()));
    {
        CounterWatch c(dp());
        EXPECT_ACTION(run(v4().tcp(40100, 80).syn()), XDP_PASS);
        EXPECT_TRUE(c.verdicts_are(LBD_CNT_PASS_NOT_VIP));
    }
    cfg.push_back(saved);
    apply_config(cfg);
    EXPECT_TRUE(same_bits(filter_map(fd), filter_of(st()).bits()));
    CounterWatch c(dp());
    EXPECT_ACTION(run(v4().tcp(40101, 80).syn()), XDP_TX);
    EXPECT_TRUE(c.verdicts_are(LBD_CNT_TX));
}

TEST_F(VipFilterTest, KeyInAVipsBucketStillPassesWhenItIsNoVip)
{
    // A port of the VIP's address whose key lands in the VIP's bucket: the
    // filter lets it through to the vips lookup, which finds nothing.
    const std::optional<uint16_t> port = colliding_port(vip("web4").key());
    if (!port)
        GTEST_SKIP() << "no port of the VIP's address shares its bucket (hash constants changed?)";
    CounterWatch c(dp());
    const Bytes in = v4().tcp(40000, *port).syn().bytes();
    const RunResult r = run(in);
    EXPECT_ACTION(r, XDP_PASS);
    EXPECT_FRAME(in, r.out);
    EXPECT_TRUE(c.verdicts_are(LBD_CNT_PASS_NOT_VIP)) << "port " << *port;
}

TEST_F(VipFilterTest, TwoVipsInOneBucketAreBothFoundAndOneSurvivesTheOther)
{
    // A second VIP on web4's address whose key lands in web4's bucket: the
    // index says "many" and both are found through the vips hash; when web4
    // goes, the index names the other one alone.
    const std::optional<uint16_t> port = colliding_port(vip("web4").key());
    if (!port)
        GTEST_SKIP() << "no port of the VIP's address shares its bucket (hash constants changed?)";
    auto cfg = config_;
    auto web4 = std::find_if(cfg.begin(), cfg.end(), [](const auto& v) { return v.name == "web4"; });
    ASSERT_NE(web4, cfg.end());
    lbd::VipConfig twin = *web4;
    twin.name = "twin4";
    twin.port = *port;
    for (auto& b : twin.backends)
        b.port = *port;
    cfg.push_back(twin);
    apply_config(cfg);
    const lbd_vip_key k = vip("web4").key();
    const uint32_t bucket = lbd_vip_filter_bit(&k);
    uint32_t slot = 0;
    ASSERT_EQ(bpf_map_lookup_elem(map_fd("vip_index"), &bucket, &slot), 0);
    EXPECT_EQ(slot, LBD_VIP_INDEX_MANY);
    for (uint16_t p : {uint16_t(80), *port}) {
        CounterWatch c(dp());
        EXPECT_ACTION(run(v4().tcp(40200, p).syn()), XDP_TX) << "port " << p;
        EXPECT_TRUE(c.verdicts_are(LBD_CNT_TX)) << "port " << p;
    }
    cfg.erase(std::find_if(cfg.begin(), cfg.end(), [](const auto& v) { return v.name == "web4"; }));
    apply_config(cfg);
    ASSERT_EQ(bpf_map_lookup_elem(map_fd("vip_index"), &bucket, &slot), 0);
    EXPECT_EQ(slot, vip("twin4").vip_id + 1) << "the bucket's one VIP left, by id";
    EXPECT_TRUE(index_matches(map_fd("vip_index"), st()));
    {
        CounterWatch c(dp());
        EXPECT_ACTION(run(v4().tcp(40201, *port).syn()), XDP_TX);
        EXPECT_TRUE(c.verdicts_are(LBD_CNT_TX));
    }
    CounterWatch c(dp());
    EXPECT_ACTION(run(v4().tcp(40202, 80).syn()), XDP_PASS) << "web4 is gone";
    EXPECT_TRUE(c.verdicts_are(LBD_CNT_PASS_NOT_VIP));
}

}  // namespace
