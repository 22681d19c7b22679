// Flows and backend changes: a flow keeps its backend (the connection table)
// while the backend set changes under it; draining, graceful and forced
// removal; a VIP left without backends. Many flows, fixed ports: the same
// flows land on the same ring slots on every run.
#include <linux/bpf.h>

#include <map>
#include <vector>

#include <cstdlib>
#include <ctime>

#include "fixture.h"

using namespace lbt;

namespace {

class Conntrack : public XdpTest {
protected:
    using Backends = std::map<uint16_t, lbd::IpAddr>;  // client port -> backend

    /// Sends one packet per client port (SYN or ACK) from kClient4 to web4
    /// and returns where each went; every one must be encapsulated.
    Backends send(uint16_t first_port, int n, bool syn)
    {
        Backends out;
        for (uint16_t port = first_port; port < first_port + n; port++) {
            const Packet p = syn ? tcp_syn(kClient4, port, kVip4) : tcp_ack(kClient4, port, kVip4);
            const RunResult r = run(p);
            EXPECT_ACTION(r, XDP_TX) << "client port " << port;
            if (r.action == XDP_TX)
                out.emplace(port, r.outer_dst());
        }
        return out;
    }

    static lbd_flow_key flow_of(uint16_t port) { return tcp_syn(kClient4, port, kVip4).flow(); }

    static std::map<lbd::IpAddr, int> count(const Backends& b)
    {
        std::map<lbd::IpAddr, int> c;
        for (const auto& [port, be] : b)
            c[be]++;
        return c;
    }

    const lbd::IpAddr kB10 = ip("198.18.61.10"), kB11 = ip("198.18.61.11"),
                      kB12 = ip("198.18.61.12"), kB13 = ip("198.18.61.13");
};

TEST_F(Conntrack, SynCreatesEntryPinnedToTheChosenBackend)
{
    const RunResult r = run(tcp_syn(kClient4, 50000, kVip4));
    ASSERT_ACTION(r, XDP_TX);
    const auto ct = conntrack_entry(flow_of(50000));
    ASSERT_TRUE(ct);
    const auto* be = vip("web4").find(r.outer_dst());
    ASSERT_NE(be, nullptr);
    EXPECT_EQ(ct->backend_id, be->id);
    EXPECT_EQ(ct->backend_gen, be->gen);
    // On CLOCK_MONOTONIC's scale (bpf/clock.h: jiffies scaled, or the coarse
    // clock): lbd compares last_seen with CLOCK_MONOTONIC_COARSE to find idle
    // flows. Both are tick-grained; a tenth of a second covers any lag.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    const int64_t now = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    EXPECT_LT(std::llabs(now - int64_t(ct->last_seen)), 100'000'000)
        << "last_seen " << ct->last_seen << " vs CLOCK_MONOTONIC_COARSE " << now;
}

TEST_F(Conntrack, EstablishedFlowsKeepTheirBackendWhenOneIsAdded)
{
    const Backends before = send(20000, 200, /*syn=*/true);
    ASSERT_EQ(before.size(), 200u);
    ASSERT_EQ(count(before).size(), 3u);

    set_backends("web4", {"198.18.61.10", "198.18.61.11", "198.18.61.12", "198.18.61.13"});

    // The ring moved some of these flows; conntrack must hold them.
    int moved = 0;
    for (const auto& [port, be] : before)
        moved += *ring_pick("web4", flow_of(port)) != be;
    ASSERT_GT(moved, 10) << "the new ring should move some existing flows, or this test proves nothing";

    CounterWatch counters(dp());
    const Backends after = send(20000, 200, /*syn=*/false);
    EXPECT_EQ(after, before) << moved << " flows were moved by the ring";
    EXPECT_EQ(counters.delta(LBD_CNT_CT_HIT), 200u);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_MISS), 0u);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_TX, 200));

    // New flows follow the new ring, and some reach the new backend.
    const Backends fresh = send(30000, 200, /*syn=*/true);
    for (const auto& [port, be] : fresh)
        EXPECT_EQ(be, *ring_pick("web4", flow_of(port))) << "port " << port;
    EXPECT_GT(count(fresh)[kB13], 20);
}

TEST_F(Conntrack, UnknownNonSynSegmentIsForwardedByTheRingAndPinned)
{
    // No SYN was seen (the flow started on another LB node, or before a
    // restart): the ring decides, and the flow is pinned from then on.
    CounterWatch counters(dp());
    const Packet ack = tcp_ack(kClient4, 51000, kVip4);
    const RunResult r = run(ack);
    ASSERT_ACTION(r, XDP_TX);
    const auto want = ring_pick("web4", ack.flow());
    ASSERT_TRUE(want);
    EXPECT_FRAME(encapsulated(ack, *want).bytes(), r.out);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_MISS), 1u);
    EXPECT_TRUE(conntrack_entry(ack.flow()));
}

TEST_F(Conntrack, DrainedBackendGetsNoNewFlowsButKeepsPinnedOnes)
{
    const Backends pinned = send(20000, 300, /*syn=*/true);
    std::vector<uint16_t> on_b11;
    for (const auto& [port, be] : pinned)
        if (be == kB11)
            on_b11.push_back(port);
    ASSERT_GT(on_b11.size(), 30u);

    set_backends("web4", {"198.18.61.10", {"198.18.61.11", 0}, "198.18.61.12"});

    const Backends fresh = send(30000, 500, /*syn=*/true);
    ASSERT_EQ(fresh.size(), 500u);
    const auto c = count(fresh);
    EXPECT_EQ(c.count(kB11), 0u) << "a drained backend got new flows";
    EXPECT_GT(c.at(kB10), 150);
    EXPECT_GT(c.at(kB12), 150);

    const Backends still = send(20000, 300, /*syn=*/false);
    EXPECT_EQ(still, pinned);

    // Undrained: new flows come back to it.
    set_backends("web4", {"198.18.61.10", "198.18.61.11", "198.18.61.12"});
    EXPECT_GT(count(send(40000, 300, /*syn=*/true))[kB11], 50);
}

TEST_F(Conntrack, ForcedRemovalReschedulesPinnedFlows)
{
    const Backends pinned = send(20000, 300, /*syn=*/true);
    std::vector<uint16_t> on_b11;
    for (const auto& [port, be] : pinned)
        if (be == kB11)
            on_b11.push_back(port);
    ASSERT_GT(on_b11.size(), 30u);

    ASSERT_TRUE(st().remove_backend("web4", kB11, /*force=*/true));

    CounterWatch counters(dp());
    const Backends after = send(20000, 300, /*syn=*/false);
    ASSERT_EQ(after.size(), 300u);
    for (const auto& [port, be] : after) {
        if (pinned.at(port) == kB11) {
            EXPECT_NE(be, kB11) << "port " << port << " still goes to the removed backend";
            EXPECT_EQ(be, *ring_pick("web4", flow_of(port))) << "port " << port;
        } else {
            EXPECT_EQ(be, pinned.at(port)) << "port " << port << " lost its backend";
        }
    }
    EXPECT_EQ(counters.delta(LBD_CNT_CT_RESCHEDULE), on_b11.size());
    EXPECT_EQ(counters.delta(LBD_CNT_CT_HIT), 300u - on_b11.size());

    // Re-pinned: the next packets of the moved flows are conntrack hits.
    CounterWatch later(dp());
    EXPECT_EQ(send(20000, 300, /*syn=*/false), after);
    EXPECT_EQ(later.delta(LBD_CNT_CT_HIT), 300u);
    EXPECT_EQ(later.delta(LBD_CNT_CT_RESCHEDULE), 0u);
}

TEST_F(Conntrack, GracefulRemovalKeepsPinnedFlows)
{
    const Backends pinned = send(20000, 300, /*syn=*/true);
    size_t on_b11 = count(pinned)[kB11];
    ASSERT_GT(on_b11, 30u);

    ASSERT_TRUE(st().remove_backend("web4", kB11, /*force=*/false));

    CounterWatch counters(dp());
    EXPECT_EQ(send(20000, 300, /*syn=*/false), pinned);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_RESCHEDULE), 0u);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_HIT), 300u);

    const auto fresh = count(send(30000, 500, /*syn=*/true));
    EXPECT_EQ(fresh.count(kB11), 0u) << "a removed backend got new flows";
}

TEST_F(Conntrack, GracefulRemovalThroughApplyKeepsPinnedFlows)
{
    const Backends pinned = send(20000, 300, /*syn=*/true);
    ASSERT_GT(count(pinned)[kB12], 30);

    set_backends("web4", {"198.18.61.10", "198.18.61.11"});

    EXPECT_EQ(send(20000, 300, /*syn=*/false), pinned);
    EXPECT_EQ(count(send(30000, 500, /*syn=*/true)).count(kB12), 0u);
}

TEST_F(Conntrack, BackendMarkedDownReschedulesPinnedFlows)
{
    // What health checks do: the backend's DOWN flag (written directly here,
    // as lbd's health checker would through the map writer).
    const Backends pinned = send(20000, 300, /*syn=*/true);
    const size_t on_b10 = count(pinned)[kB10];
    ASSERT_GT(on_b10, 30u);
    const auto* b = vip("web4").find(kB10);
    lbd_backend down{};
    down.addr = lbd::to_lbd_addr(kB10);
    down.family = LBD_AF_INET;
    down.gen = b->gen;
    down.flags = LBD_BE_F_VALID | LBD_BE_F_DOWN;
    dp().writer().put_backend(b->id, down);

    CounterWatch counters(dp());
    const Backends after = send(20000, 300, /*syn=*/false);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_RESCHEDULE), on_b10);
    // The ring still names it (only the flag changed), so a rescheduled flow
    // may land on it again; what matters is that the pin was dropped and a
    // fresh pick made. Flows pinned elsewhere do not move.
    for (const auto& [port, be] : after) {
        if (pinned.at(port) != kB10) {
            EXPECT_EQ(be, pinned.at(port)) << "port " << port;
        }
    }
}

TEST_F(Conntrack, SynOfAReusedTupleIsScheduledAfreshAwayFromADrainedBackend)
{
    const Backends pinned = send(20000, 300, /*syn=*/true);
    ASSERT_GT(count(pinned)[kB11], 30);

    set_backends("web4", {"198.18.61.10", {"198.18.61.11", 0}, "198.18.61.12"});

    // A new SYN on the same 5-tuple is a new connection: the ring decides,
    // and the old entry is replaced.
    CounterWatch counters(dp());
    const Backends again = send(20000, 300, /*syn=*/true);
    for (const auto& [port, be] : again) {
        EXPECT_NE(be, kB11) << "port " << port << ": a new connection went to a drained backend";
        EXPECT_EQ(be, *ring_pick("web4", flow_of(port))) << "port " << port;
    }
    EXPECT_EQ(counters.delta(LBD_CNT_CT_HIT), 0u) << "a SYN does not look up the connection table";
    // ... and the connection's later segments follow the new pick.
    EXPECT_EQ(send(20000, 300, /*syn=*/false), again);
}

TEST_F(Conntrack, SynFollowsTheNewRingButSynAckFollowsTheEntry)
{
    const Backends pinned = send(20000, 200, /*syn=*/true);
    set_backends("web4", {"198.18.61.10", "198.18.61.11", "198.18.61.12", "198.18.61.13"});
    std::vector<uint16_t> moved;
    for (const auto& [port, be] : pinned)
        if (*ring_pick("web4", flow_of(port)) != be)
            moved.push_back(port);
    ASSERT_GT(moved.size(), 10u);

    for (uint16_t port : moved) {
        // SYN|ACK is not a connection opening from the client: conntrack.
        const RunResult synack =
            run(from_client().ipv4(kClient4, kVip4).ttl(64).df().tcp(port, 80).syn().ack());
        ASSERT_ACTION(synack, XDP_TX);
        EXPECT_EQ(synack.outer_dst(), pinned.at(port)) << "port " << port;
        // A bare SYN takes the new ring's pick.
        const RunResult syn = run(tcp_syn(kClient4, port, kVip4));
        ASSERT_ACTION(syn, XDP_TX);
        EXPECT_EQ(syn.outer_dst(), *ring_pick("web4", flow_of(port))) << "port " << port;
        EXPECT_NE(syn.outer_dst(), pinned.at(port)) << "port " << port;
    }
}

TEST_F(Conntrack, VipWithoutBackendsDropsNewFlows)
{
    set_backends("web4", {});

    CounterWatch counters(dp());
    for (uint16_t port = 52000; port < 52050; port++) {
        const RunResult r = run(tcp_syn(kClient4, port, kVip4));
        EXPECT_ACTION(r, XDP_DROP) << "port " << port;
    }
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_DROP_NO_BACKEND, 50));
    EXPECT_FALSE(conntrack_entry(flow_of(52000))) << "a dropped flow must not be pinned";

    // Backends back: served again.
    set_backends("web4", {"198.18.61.13"});
    const RunResult r = run(tcp_syn(kClient4, 52000, kVip4));
    ASSERT_ACTION(r, XDP_TX);
    EXPECT_EQ(r.outer_dst(), kB13);
}

TEST_F(Conntrack, DeletedVipPassesEvenForPinnedFlowsAndReAddingReschedules)
{
    const RunResult first = run(tcp_syn(kClient4, 54000, kVip4));
    ASSERT_ACTION(first, XDP_TX);

    auto cfg = base_config();
    std::erase_if(cfg, [](const lbd::VipConfig& v) { return v.name == "web4"; });
    apply_config(cfg);
    CounterWatch gone(dp());
    EXPECT_ACTION(run(tcp_ack(kClient4, 54000, kVip4)), XDP_PASS);
    EXPECT_ACTION(run(tcp_syn(kClient4, 54001, kVip4)), XDP_PASS);
    EXPECT_TRUE(gone.verdicts_are(LBD_CNT_PASS_NOT_VIP, 2));

    // Back, with new backend ids: the old pin names a released id.
    apply_config(base_config());
    CounterWatch back(dp());
    const RunResult r = run(tcp_ack(kClient4, 54000, kVip4));
    ASSERT_ACTION(r, XDP_TX);
    EXPECT_EQ(r.outer_dst(), *ring_pick("web4", flow_of(54000)));
    EXPECT_EQ(back.delta(LBD_CNT_CT_RESCHEDULE), 1u);
}

TEST_F(Conntrack, UdpFlowsArePinnedToo)
{
    std::map<uint16_t, lbd::IpAddr> before;
    auto dgram = [](uint16_t port) { return from_client().ipv4(kClient4, kVip4).udp(port, 53).payload(30); };
    for (uint16_t port = 20000; port < 20100; port++) {
        const RunResult r = run(dgram(port));
        ASSERT_ACTION(r, XDP_TX);
        before[port] = r.outer_dst();
    }
    set_backends("dns4", {"198.18.61.20", "198.18.61.21", "198.18.61.22"});
    int moved = 0;
    for (const auto& [port, be] : before) {
        moved += *ring_pick("dns4", dgram(port).flow()) != be;
        const RunResult r = run(dgram(port));
        ASSERT_ACTION(r, XDP_TX);
        EXPECT_EQ(r.outer_dst(), be) << "port " << port;
    }
    EXPECT_GT(moved, 10);
}

TEST_F(Conntrack, FlowsOfDifferentVipsAndProtocolsAreSeparate)
{
    // Same client address and port toward the TCP and the UDP VIP: two flows.
    const Packet tcp = tcp_syn(kClient4, 53000, kVip4, 80);
    const Packet udp = from_client().ipv4(kClient4, kVip4).udp(53000, 53).payload(8);
    ASSERT_ACTION(run(tcp), XDP_TX);
    ASSERT_ACTION(run(udp), XDP_TX);
    const auto ct_tcp = conntrack_entry(tcp.flow());
    const auto ct_udp = conntrack_entry(udp.flow());
    ASSERT_TRUE(ct_tcp);
    ASSERT_TRUE(ct_udp);
    EXPECT_NE(ct_tcp->backend_id, ct_udp->backend_id);  // different VIPs, different ids
}

TEST_F(Conntrack, Ipv6EstablishedFlowsKeepTheirBackend)
{
    std::map<uint16_t, lbd::IpAddr> before;
    for (uint16_t port = 20000; port < 20150; port++) {
        const RunResult r = run(tcp_syn(kClient6, port, kVip6));
        ASSERT_ACTION(r, XDP_TX);
        before[port] = r.outer_dst();
    }
    set_backends("web6", {"fd00:1b:61::10", "fd00:1b:61::11", "fd00:1b:61::12", "fd00:1b:61::13"});
    int moved = 0;
    for (const auto& [port, be] : before) {
        moved += *ring_pick("web6", tcp_syn(kClient6, port, kVip6).flow()) != be;
        const RunResult r = run(tcp_ack(kClient6, port, kVip6));
        ASSERT_ACTION(r, XDP_TX);
        EXPECT_EQ(r.outer_dst(), be) << "port " << port;
    }
    EXPECT_GT(moved, 5);
}

}  // namespace

TEST_F(Conntrack, FullBucketGivesUpAClosedFlowThenTheLeastRecentlySeen)
{
    const auto ports = ports_in_one_bucket(kClient4, kVip4, LBD_CT_WAYS + 2, 30000);
    for (int i = 0; i < LBD_CT_WAYS; i++)
        ASSERT_ACTION(run(tcp_syn(kClient4, ports[i], kVip4)), XDP_TX);
    for (int i = 0; i < LBD_CT_WAYS; i++)
        ASSERT_TRUE(conntrack_entry(flow_of(ports[i]))) << "way " << i;
    // Flow 3 was last seen long ago; flow 5's client closed it.
    lbd_ct_entry* old = lbd::ct_find(dp().conntrack(), flow_of(ports[3]), kSeed);
    ASSERT_TRUE(old);
    old->v.last_seen -= 100'000'000'000ull;
    ASSERT_ACTION(run(tcp_ack(kClient4, ports[5], kVip4).fin()), XDP_TX);
    ASSERT_TRUE(conntrack_entry(flow_of(ports[5]))->flags & LBD_CT_F_CLOSED);

    CounterWatch counters(dp());
    ASSERT_ACTION(run(tcp_syn(kClient4, ports[8], kVip4)), XDP_TX);
    EXPECT_FALSE(conntrack_entry(flow_of(ports[5]))) << "the closed flow goes first";
    EXPECT_TRUE(conntrack_entry(flow_of(ports[3])));
    EXPECT_EQ(counters.delta(LBD_CNT_CT_EVICT), 0u) << "a closed flow is not counted as evicted";

    ASSERT_ACTION(run(tcp_syn(kClient4, ports[9], kVip4)), XDP_TX);
    EXPECT_FALSE(conntrack_entry(flow_of(ports[3]))) << "then the least recently seen";
    EXPECT_EQ(counters.delta(LBD_CNT_CT_EVICT), 1u);
    for (int i : {0, 1, 2, 4, 6, 7, 8, 9})
        EXPECT_TRUE(conntrack_entry(flow_of(ports[i]))) << "port " << ports[i];

    // The evicted flow's next packet is scheduled again (the ring: same
    // backend) and pinned again.
    const Packet ack = tcp_ack(kClient4, ports[3], kVip4);
    const RunResult r = run(ack);
    ASSERT_ACTION(r, XDP_TX);
    EXPECT_EQ(r.outer_dst(), ring_pick("web4", ack.flow()));
    EXPECT_TRUE(conntrack_entry(flow_of(ports[3])));
}

TEST_F(Conntrack, EntryWhoseCheckDoesNotMatchIsAMissNotAnotherBackend)
{
    const Packet syn = tcp_syn(kClient4, 52000, kVip4);
    const RunResult first = run(syn);
    ASSERT_ACTION(first, XDP_TX);
    lbd_ct_entry* e = lbd::ct_find(dp().conntrack(), syn.flow(), kSeed);
    ASSERT_TRUE(e);
    // Half of another write: the backend of another flow, the check of this one.
    const lbd::IpAddr other = first.outer_dst() == kB10 ? kB12 : kB10;
    e->v.backend_id = backend_id("web4", other);
    EXPECT_FALSE(lbd::ct_find(dp().conntrack(), syn.flow(), kSeed));

    CounterWatch counters(dp());
    const RunResult r = run(tcp_ack(kClient4, 52000, kVip4));
    ASSERT_ACTION(r, XDP_TX);
    EXPECT_EQ(r.outer_dst(), first.outer_dst()) << "not the torn entry's backend";
    EXPECT_EQ(counters.delta(LBD_CNT_CT_MISS), 1u);
    EXPECT_EQ(counters.delta(LBD_CNT_CT_HIT), 0u);
    const auto ct = conntrack_entry(syn.flow());
    ASSERT_TRUE(ct) << "written again, whole";
    EXPECT_EQ(ct->backend_id, backend_id("web4", first.outer_dst()));
}
