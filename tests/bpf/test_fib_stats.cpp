// Routing outcomes the table only counts (the neighbour event lbd is told
// about, forwarding disabled, a backend of the wrong family) and the per-VIP
// and per-backend statistics.
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>

#include <fstream>
#include <map>

#include "fixture.h"

using namespace lbt;

namespace {

class Fib : public XdpTest {
protected:
    std::vector<lbd_neigh_event> neigh_events()
    {
        std::vector<lbd_neigh_event> events;
        auto cb = [](void* ctx, void* data, size_t size) -> int {
            auto* out = static_cast<std::vector<lbd_neigh_event>*>(ctx);
            if (size == sizeof(lbd_neigh_event))
                out->push_back(*static_cast<lbd_neigh_event*>(data));
            return 0;
        };
        ring_buffer* rb = ring_buffer__new(dp().neigh_events_fd(), cb, &events, nullptr);
        if (!rb)
            throw std::runtime_error("ring_buffer__new");
        ring_buffer__consume(rb);
        ring_buffer__free(rb);
        return events;
    }
};

/// Writes a sysctl of the test namespace and puts the old value back at the end.
class SysctlGuard {
public:
    SysctlGuard(std::string path, const std::string& value) : path_(std::move(path))
    {
        std::ifstream(path_) >> old_;
        std::ofstream(path_) << value << "\n";
    }
    ~SysctlGuard() { std::ofstream(path_) << old_ << "\n"; }

private:
    std::string path_, old_;
};

TEST_F(Fib, NoNeighbourPassesAndTellsLbdTheNextHop)
{
    const Packet in = tcp_syn(kClient4, 43000, kNoNeighVip4);
    CounterWatch counters(dp());
    const RunResult r = run(in);
    EXPECT_ACTION(r, XDP_PASS);
    EXPECT_FRAME(in.bytes(), r.out);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_PASS_NO_NEIGH));

    const auto events = neigh_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].family, unsigned(LBD_AF_INET));
    EXPECT_EQ(events[0].ifindex, unsigned(ifindex()));
    EXPECT_EQ(events[0].nexthop.w[0], lbd::to_lbd_addr(ip("198.18.60.253")).w[0]);
}

TEST_F(Fib, Ipv6NoNeighbourPassesAndTellsLbdTheNextHop)
{
    const Packet in = tcp_syn(kClient6, 43000, kNoNeighVip6);
    CounterWatch counters(dp());
    const RunResult r = run(in);
    EXPECT_ACTION(r, XDP_PASS);
    EXPECT_FRAME(in.bytes(), r.out);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_PASS_NO_NEIGH));

    const auto events = neigh_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].family, unsigned(LBD_AF_INET6));
    EXPECT_EQ(events[0].ifindex, unsigned(ifindex()));
    const lbd_addr want = lbd::to_lbd_addr(ip("fd00:1b:60::fd"));
    EXPECT_EQ(std::memcmp(&events[0].nexthop, &want, sizeof want), 0);
}

TEST_F(Fib, NeighbourEventsAreRateLimited)
{
    for (uint16_t port = 43000; port < 43020; port++)
        EXPECT_ACTION(run(tcp_syn(kClient4, port, kNoNeighVip4)), XDP_PASS);
    const auto events = neigh_events();
    EXPECT_GE(events.size(), 1u);
    EXPECT_LT(events.size(), 20u) << "one event per packet: not rate limited";
}

TEST_F(Fib, BlackholedBackendIsDropped)
{
    for (const Packet& in : {tcp_syn(kClient4, 43000, kHoleVip4), tcp_syn(kClient6, 43000, kHoleVip6)}) {
        CounterWatch counters(dp());
        EXPECT_ACTION(run(in), XDP_DROP);
        EXPECT_TRUE(counters.verdicts_are(LBD_CNT_DROP_FIB_UNREACH));
    }
}

TEST_F(Fib, ForwardingDisabledOnIngressPasses)
{
    const Packet in4 = tcp_syn(kClient4, 43000, kVip4);
    const Packet in6 = tcp_syn(kClient6, 43000, kVip6);
    {
        SysctlGuard off("/proc/sys/net/ipv4/conf/lbt0/forwarding", "0");
        CounterWatch counters(dp());
        const RunResult r = run(in4);
        EXPECT_ACTION(r, XDP_PASS);
        EXPECT_FRAME(in4.bytes(), r.out);
        EXPECT_TRUE(counters.verdicts_are(LBD_CNT_PASS_FWD_DISABLED));
    }
    {
        SysctlGuard off("/proc/sys/net/ipv6/conf/lbt0/forwarding", "0");
        CounterWatch counters(dp());
        const RunResult r = run(in6);
        EXPECT_ACTION(r, XDP_PASS);
        EXPECT_FRAME(in6.bytes(), r.out);
        EXPECT_TRUE(counters.verdicts_are(LBD_CNT_PASS_FWD_DISABLED));
    }
    // Back on: forwarded.
    EXPECT_ACTION(run(in4), XDP_TX);
    EXPECT_ACTION(run(in6), XDP_TX);
}

TEST_F(Fib, BackendOfTheOtherFamilyIsDropped)
{
    // Config validation forbids this; the datapath must still not send an
    // IPv4 packet in an IPv6 tunnel.
    auto cfg = base_config();
    cfg.push_back(make_vip("mixed", ip("198.18.100.9"), 80, lbd::Protocol::Tcp, {"fd00:1b:61::30"}));
    apply_config(cfg);
    CounterWatch counters(dp());
    EXPECT_ACTION(run(tcp_syn(kClient4, 43000, ip("198.18.100.9"))), XDP_DROP);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_DROP_FAMILY));
}

TEST_F(Fib, BackendOnAnotherInterfaceIsRedirected)
{
    // lbt1 (the veth peer, same namespace) is the way to 198.18.65.0/24.
    auto cfg = base_config();
    cfg.push_back(make_vip("other_if", ip("198.18.100.10"), 80, lbd::Protocol::Tcp, {"198.18.65.10"}));
    apply_config(cfg);
    const Packet in = tcp_syn(kClient4, 43000, ip("198.18.100.10"));
    CounterWatch counters(dp());
    const RunResult r = run(in);
    EXPECT_ACTION(r, XDP_REDIRECT);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_REDIRECT));
    EXPECT_FRAME(Packet()
                     .eth(mac("02:00:00:00:00:02"), mac("02:00:00:00:00:65"))
                     .ipv4(ip("198.18.65.1"), ip("198.18.65.10"))
                     .ttl(64)
                     .df()
                     .inner(in)
                     .bytes(),
                 r.out);
}

// ------------------------------------------------------------- statistics

class Stats : public XdpTest {};

TEST_F(Stats, PerVipAndPerBackendPacketsBytesNewFlows)
{
    const uint32_t web4 = vip("web4").vip_id;
    ASSERT_EQ(dp().vip_stats(web4).packets, 0u);

    // Two flows: A sends SYN + 2 ACKs, B sends SYN + 1 ACK with data.
    const Packet a_syn = tcp_syn(kClient4, 44000, kVip4);
    const Packet a_ack = tcp_ack(kClient4, 44000, kVip4);
    const Packet b_syn = tcp_syn(kClient4, 44001, kVip4);
    const Packet b_ack = tcp_ack(kClient4, 44001, kVip4).payload(300);
    std::map<lbd::IpAddr, lbd_stats> want_be;
    uint64_t bytes = 0;
    for (const Packet* p : {&a_syn, &a_ack, &a_ack, &b_syn, &b_ack}) {
        const RunResult r = run(*p);
        ASSERT_ACTION(r, XDP_TX);
        auto& w = want_be[r.outer_dst()];
        w.packets++;
        w.bytes += p->size();
        w.new_flows += p == &a_syn || p == &b_syn;
        bytes += p->size();
    }
    // Traffic that is not for web4 does not count for it.
    EXPECT_ACTION(run(tcp_syn(kClient4, 44002, kVip4, 443)), XDP_PASS);
    EXPECT_ACTION(run(from_client().ipv4(kClient4, kVip4).udp(44003, 53).payload(1)), XDP_TX);

    const lbd_stats v = dp().vip_stats(web4);
    EXPECT_EQ(v.packets, 5u);
    EXPECT_EQ(v.bytes, bytes);
    EXPECT_EQ(v.new_flows, 2u);

    for (const auto& b : vip("web4").backends) {
        const lbd_stats got = dp().backend_stats(b.id);
        const lbd_stats want = want_be.count(b.address) ? want_be[b.address] : lbd_stats{};
        EXPECT_EQ(got.packets, want.packets) << b.address.str();
        EXPECT_EQ(got.bytes, want.bytes) << b.address.str();
        EXPECT_EQ(got.new_flows, want.new_flows) << b.address.str();
    }
    const lbd_stats dns = dp().vip_stats(vip("dns4").vip_id);
    EXPECT_EQ(dns.packets, 1u);
    EXPECT_EQ(dns.new_flows, 1u);
}

TEST_F(Stats, Ipv6AndVlanFramesCountTheirFrameLength)
{
    const Packet p = from_client().vlan(100).ipv6(kClient6, kVip6).tcp(44000, 80).syn().payload(7);
    const RunResult r = run(p);
    ASSERT_ACTION(r, XDP_TX);
    const lbd_stats v = dp().vip_stats(vip("web6").vip_id);
    EXPECT_EQ(v.packets, 1u);
    EXPECT_EQ(v.bytes, p.size());
    const lbd_stats b = dp().backend_stats(backend_id("web6", r.outer_dst()));
    EXPECT_EQ(b.packets, 1u);
    EXPECT_EQ(b.bytes, p.size());
    EXPECT_EQ(b.new_flows, 1u);
}

TEST_F(Stats, DropsCountForTheVipButNoBackend)
{
    const uint32_t empty = vip("empty4").vip_id;
    for (uint16_t port = 44000; port < 44003; port++)
        EXPECT_ACTION(run(tcp_syn(kClient4, port, kEmptyVip4)), XDP_DROP);
    const lbd_stats v = dp().vip_stats(empty);
    EXPECT_EQ(v.packets, 3u);
    EXPECT_EQ(v.bytes, 3 * tcp_syn(kClient4, 44000, kEmptyVip4).size());
    EXPECT_EQ(v.new_flows, 0u);

    const uint32_t hole_be = backend_id("hole4", ip("198.18.64.10"));
    EXPECT_ACTION(run(tcp_syn(kClient4, 44000, kHoleVip4)), XDP_DROP);
    EXPECT_EQ(dp().backend_stats(hole_be).packets, 0u);
    EXPECT_EQ(dp().vip_stats(vip("hole4").vip_id).packets, 1u);
}

TEST_F(Stats, PassedTrafficCountsNowhere)
{
    run(from_client().arp_request(kClientMac, kClient4, kVip4));
    run(tcp_syn(kClient4, 44000, kVip4, 8080));
    run(from_client().ipv4(kClient4, kVip4).frag(0, true).tcp(44000, 80));
    for (const auto& [name, v] : st().vips()) {
        EXPECT_EQ(dp().vip_stats(v.vip_id).packets, 0u) << name;
        for (const auto& b : v.backends)
            EXPECT_EQ(dp().backend_stats(b.id).packets, 0u) << name << " " << b.address.str();
    }
}

TEST_F(Stats, NewBackendStartsFromZero)
{
    for (uint16_t port = 44000; port < 44100; port++)
        ASSERT_ACTION(run(tcp_syn(kClient4, port, kVip4)), XDP_TX);
    set_backends("web4", {"198.18.61.10", "198.18.61.11", "198.18.61.12", "198.18.61.13"});
    const lbd_stats fresh = dp().backend_stats(backend_id("web4", ip("198.18.61.13")));
    EXPECT_EQ(fresh.packets, 0u);
    EXPECT_EQ(fresh.new_flows, 0u);
    uint64_t total = 0;
    for (const auto& b : vip("web4").backends)
        total += dp().backend_stats(b.id).packets;
    EXPECT_EQ(total, 100u);
}

}  // namespace
