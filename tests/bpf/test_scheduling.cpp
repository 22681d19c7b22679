// Per-VIP scheduling through the real program: round-robin, weighted,
// least-conn, source-hash and failover pick new flows as docs/scheduling.md
// says; persistence and one-packet scheduling; established flows stay
// pinned whatever the algorithm.
//
// Round-robin and weighted keep a cursor per CPU, so these tests pin the
// test thread to one CPU: BPF_PROG_TEST_RUN runs the program on the CPU of
// the calling thread.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "fixture.h"
#include "lbd_hash.h"

using namespace lbt;
using lbd::Algorithm;
using lbd::Protocol;

namespace {

const lbd::IpAddr kRrVip = ip("198.18.100.20");
const lbd::IpAddr kRrVip6 = ip("fd00:1b:100::20");
const lbd::IpAddr kB[] = {ip("198.18.61.10"), ip("198.18.61.11"), ip("198.18.61.12"), ip("198.18.61.13")};
const lbd::IpAddr kB6[] = {ip("fd00:1b:61::10"), ip("fd00:1b:61::11"), ip("fd00:1b:61::12")};

class Scheduling : public XdpTest {
protected:
    void SetUp() override
    {
        // One CPU for the whole test: the round-robin cursor is per CPU.
        ASSERT_EQ(sched_getaffinity(0, sizeof saved_, &saved_), 0);
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
        XdpTest::SetUp();
    }
    void TearDown() override
    {
        XdpTest::TearDown();
        sched_setaffinity(0, sizeof saved_, &saved_);
    }

    /// Adds one VIP (to the base config) and applies it.
    lbd::VipConfig& add(const std::string& name, const lbd::IpAddr& addr, Algorithm alg, const std::vector<Be>& bes,
                        Protocol proto = Protocol::Tcp, uint16_t port = 80)
    {
        auto v = make_vip(name, addr, port, proto, bes);
        v.algorithm = alg;
        config_.push_back(v);
        st().apply(config_);
        return config_.back();
    }
    /// Changes a VIP of the config and applies it.
    void change(const std::string& name, const std::function<void(lbd::VipConfig&)>& f)
    {
        for (auto& v : config_)
            if (v.name == name)
                f(v);
        st().apply(config_);
    }

    /// SYNs from `client`, ports first..first+n-1; the backend of each, in order.
    std::vector<lbd::IpAddr> syns(const lbd::IpAddr& client, uint16_t first, int n,
                                  const lbd::IpAddr& vip = kRrVip, uint16_t vport = 80)
    {
        std::vector<lbd::IpAddr> out;
        for (int i = 0; i < n; i++) {
            const RunResult r = run(tcp_syn(client, uint16_t(first + i), vip, vport));
            EXPECT_ACTION(r, XDP_TX) << "port " << first + i;
            if (r.action != XDP_TX)
                return out;
            out.push_back(r.outer_dst());
        }
        return out;
    }
    lbd::IpAddr one(const Packet& p)
    {
        const RunResult r = run(p);
        EXPECT_ACTION(r, XDP_TX);
        return r.action == XDP_TX ? r.outer_dst() : lbd::IpAddr{};
    }
    static std::map<lbd::IpAddr, int> count(const std::vector<lbd::IpAddr>& v)
    {
        std::map<lbd::IpAddr, int> c;
        for (const auto& a : v)
            c[a]++;
        return c;
    }
    /// The longest run of one backend in a row.
    static std::map<lbd::IpAddr, int> longest_runs(const std::vector<lbd::IpAddr>& v)
    {
        std::map<lbd::IpAddr, int> out;
        int run = 0;
        for (size_t i = 0; i < v.size(); i++) {
            run = i && v[i] == v[i - 1] ? run + 1 : 1;
            out[v[i]] = std::max(out[v[i]], run);
        }
        return out;
    }
    int64_t lc_active(const std::string& vip_name, const lbd::IpAddr& be)
    {
        const uint32_t id = backend_id(vip_name, be);
        return dp().least_conn_active({id}).at(id);
    }
    /// What health checks do: the DOWN flag, written through the map writer.
    void set_flags(const std::string& vip_name, const lbd::IpAddr& be, uint8_t flags)
    {
        const auto* b = vip(vip_name).find(be);
        lbd_backend v{};
        v.addr = lbd::to_lbd_addr(be);
        v.family = be.is_v4() ? LBD_AF_INET : LBD_AF_INET6;
        v.gen = b->gen;
        v.flags = flags;
        dp().writer().put_backend(b->id, v);
    }
    static Packet tcp_flags(const lbd::IpAddr& client, uint16_t port, const lbd::IpAddr& vip, uint8_t flags)
    {
        return from_client().ipv4(client, vip).ttl(64).df().tcp(port, 80).tcp_flags(flags);
    }
    static Packet dgram(const lbd::IpAddr& client, uint16_t port, const lbd::IpAddr& vip, uint16_t vport = 53)
    {
        Packet p = from_client();
        if (client.is_v4())
            p.ipv4(client, vip);
        else
            p.ipv6(client, vip);
        return p.udp(port, vport).payload(20);
    }
    /// Makes a client's persistence record `ago` older.
    void age_persist(const std::string& vip_name, const lbd::IpAddr& masked_client, std::chrono::milliseconds ago)
    {
        lbd_persist_key k{};
        k.vip_id = vip(vip_name).vip_id;
        k.client = lbd::to_lbd_addr(masked_client);
        lbd_persist_value v{};
        ASSERT_EQ(bpf_map_lookup_elem(map_fd("persist"), &k, &v), 0) << "no record for " << masked_client.str();
        v.last_seen -= uint64_t(std::chrono::nanoseconds(ago).count());
        ASSERT_EQ(bpf_map_update_elem(map_fd("persist"), &k, &v, BPF_EXIST), 0);
    }

    /// Least-conn as docs/scheduling.md states it, over the VIP's sched
    /// entry as the program reads it: the member with the smallest
    /// active/weight (negative counts as 0), not in `down`; a scan from
    /// member lbd_reduce(flow hash, n) on in which only a strictly better
    /// member replaces the pick.
    lbd::IpAddr least_conn_model(const std::string& vip_name, const Packet& syn,
                                 const std::set<uint32_t>& down = {})
    {
        const auto& v = vip(vip_name);
        lbd_sched s{};
        EXPECT_EQ(bpf_map_lookup_elem(map_fd("sched"), &v.vip_id, &s), 0);
        const uint32_t n = s.count;
        const std::vector<uint32_t> ids(s.ids, s.ids + n);
        const auto active = dp().least_conn_active(ids);
        const lbd_flow_key k = syn.flow();
        const uint32_t start = lbd_reduce(lbd_flow_hash(&k, kSeed), n);
        auto load = [&](uint32_t i) { return std::max<int64_t>(active.at(s.ids[i]), 0); };
        std::optional<uint32_t> best;
        for (uint32_t j = 0; j < n; j++) {
            const uint32_t i = (start + j) % n;
            if (down.count(s.ids[i]))
                continue;
            if (!best || load(i) * s.weights[*best] < load(*best) * s.weights[i])
                best = i;
        }
        if (!best)
            return {};
        for (const auto& b : v.backends)
            if (b.id == s.ids[*best])
                return b.address;
        return {};
    }

private:
    cpu_set_t saved_;
};

// ------------------------------------------------------------ round-robin

TEST_F(Scheduling, RoundRobinSplitsExactlyEvenlyInTurn)
{
    add("rr", kRrVip, Algorithm::RoundRobin, {"198.18.61.10", "198.18.61.11", "198.18.61.12", "198.18.61.13"});
    const auto got = syns(kClient4, 20000, 400);
    ASSERT_EQ(got.size(), 400u);
    for (const auto& [be, n] : count(got))
        EXPECT_EQ(n, 100) << be.str();
    EXPECT_EQ(count(got).size(), 4u);
    // In turn: every window of four new flows has all four backends.
    for (size_t i = 0; i + 4 <= got.size(); i++)
        EXPECT_EQ(std::set<lbd::IpAddr>(got.begin() + i, got.begin() + i + 4).size(), 4u) << "at " << i;
    // Weights do not matter to round-robin (0 still drains).
    change("rr", [](auto& v) { v.backends[0].weight = 5; v.backends[3].weight = 0; });
    const auto after = count(syns(kClient4, 21000, 300));
    EXPECT_EQ(after.size(), 3u);
    EXPECT_EQ(after.count(kB[3]), 0u) << "a drained backend got new flows";
    for (const auto& [be, n] : after)
        EXPECT_EQ(n, 100) << be.str();
}

TEST_F(Scheduling, RoundRobinSkipsABackendFlaggedDown)
{
    add("rr", kRrVip, Algorithm::RoundRobin, {"198.18.61.10", "198.18.61.11", "198.18.61.12"});
    // Only the flag: lbd has not rebuilt the members yet; the program skips it.
    set_flags("rr", kB[1], LBD_BE_F_VALID | LBD_BE_F_DOWN);
    const auto c = count(syns(kClient4, 20000, 100));
    EXPECT_EQ(c.count(kB[1]), 0u);
    EXPECT_EQ(c.at(kB[0]) + c.at(kB[2]), 100);
    EXPECT_LE(std::abs(c.at(kB[0]) - c.at(kB[2])), 34);
    // Through LbState (health checks): members rebuilt, exact again.
    ASSERT_TRUE(st().set_health("rr", kB[1], false));
    const auto c2 = count(syns(kClient4, 21000, 100));
    EXPECT_EQ(c2.at(kB[0]), 50);
    EXPECT_EQ(c2.at(kB[2]), 50);
}

TEST_F(Scheduling, RoundRobinIpv6)
{
    add("rr6", kRrVip6, Algorithm::RoundRobin, {"fd00:1b:61::10", "fd00:1b:61::11", "fd00:1b:61::12"});
    const auto c = count(syns(kClient6, 20000, 300, kRrVip6));
    ASSERT_EQ(c.size(), 3u);
    for (const auto& [be, n] : c)
        EXPECT_EQ(n, 100) << be.str();
}

// ---------------------------------------------------------------- weighted

TEST_F(Scheduling, WeightedThreeToOneSmooth)
{
    add("w", kRrVip, Algorithm::Weighted, {{"198.18.61.10", 3}, {"198.18.61.11", 1}});
    const auto got = syns(kClient4, 10000, 10000);
    ASSERT_EQ(got.size(), 10000u);
    const auto c = count(got);
    EXPECT_NEAR(c.at(kB[0]) / 10000.0, 0.75, 0.02);
    EXPECT_NEAR(c.at(kB[1]) / 10000.0, 0.25, 0.02);
    const auto runs = longest_runs(got);
    EXPECT_LE(runs.at(kB[0]), 3) << "more than weight-many new flows in a row";
    EXPECT_EQ(runs.at(kB[1]), 1);
}

TEST_F(Scheduling, WeightedManyBackendsFollowTheirWeights)
{
    add("w", kRrVip, Algorithm::Weighted, {{"198.18.61.10", 5}, {"198.18.61.11", 3}, {"198.18.61.12", 2}});
    const auto got = syns(kClient4, 10000, 5000);
    const auto c = count(got);
    EXPECT_EQ(c.at(kB[0]), 2500);
    EXPECT_EQ(c.at(kB[1]), 1500);
    EXPECT_EQ(c.at(kB[2]), 1000);
    const auto runs = longest_runs(got);
    EXPECT_LE(runs.at(kB[0]), 5);
    EXPECT_LE(runs.at(kB[1]), 3);
    EXPECT_LE(runs.at(kB[2]), 2);
}

// -------------------------------------------------------------- least-conn

TEST_F(Scheduling, LeastConnFillsTheEmptierBackendAndFollowsCloses)
{
    add("lc", kRrVip, Algorithm::LeastConn, {"198.18.61.10", "198.18.61.11"});
    // Ten new flows: never more than one apart.
    std::map<uint16_t, lbd::IpAddr> on;
    for (uint16_t p = 20000; p < 20010; p++) {
        on[p] = one(tcp_syn(kClient4, p, kRrVip));
        EXPECT_LE(std::abs(lc_active("lc", kB[0]) - lc_active("lc", kB[1])), 1);
    }
    EXPECT_EQ(lc_active("lc", kB[0]), 5);
    EXPECT_EQ(lc_active("lc", kB[1]), 5);
    // Later segments of those flows do not count again.
    for (const auto& [p, be] : on)
        EXPECT_EQ(one(tcp_ack(kClient4, p, kRrVip)), be);
    EXPECT_EQ(lc_active("lc", kB[0]) + lc_active("lc", kB[1]), 10);

    // Close three flows of b10: two with FIN, one with RST.
    std::vector<uint16_t> closing;
    for (const auto& [p, be] : on)
        if (be == kB[0] && closing.size() < 3)
            closing.push_back(p);
    ASSERT_EQ(closing.size(), 3u);
    EXPECT_EQ(one(tcp_flags(kClient4, closing[0], kRrVip, tcpf::FIN | tcpf::ACK)), kB[0]);
    EXPECT_EQ(one(tcp_flags(kClient4, closing[1], kRrVip, tcpf::FIN | tcpf::ACK)), kB[0]);
    EXPECT_EQ(one(tcp_flags(kClient4, closing[2], kRrVip, tcpf::RST)), kB[0]);
    // A retransmitted FIN and the last ACK still reach it and count nothing.
    EXPECT_EQ(one(tcp_flags(kClient4, closing[0], kRrVip, tcpf::FIN | tcpf::ACK)), kB[0]);
    EXPECT_EQ(one(tcp_ack(kClient4, closing[1], kRrVip)), kB[0]);
    EXPECT_EQ(lc_active("lc", kB[0]), 2);
    EXPECT_EQ(lc_active("lc", kB[1]), 5);

    // The next three new flows go to the emptier b10, then they alternate.
    for (uint16_t p = 21000; p < 21003; p++)
        EXPECT_EQ(one(tcp_syn(kClient4, p, kRrVip)), kB[0]) << "port " << p;
    EXPECT_EQ(lc_active("lc", kB[0]), 5);
    const auto c = count(syns(kClient4, 22000, 10));
    EXPECT_EQ(c.at(kB[0]), 5);
    EXPECT_EQ(c.at(kB[1]), 5);
}

TEST_F(Scheduling, LeastConnRetransmittedSynDoesNotCountTwice)
{
    add("lc", kRrVip, Algorithm::LeastConn, {"198.18.61.10", "198.18.61.11"});
    for (int i = 0; i < 5; i++)
        one(tcp_syn(kClient4, 20000, kRrVip));
    EXPECT_EQ(lc_active("lc", kB[0]) + lc_active("lc", kB[1]), 1);
}

TEST_F(Scheduling, LeastConnRelativeToWeight)
{
    add("lc", kRrVip, Algorithm::LeastConn, {{"198.18.61.10", 3}, {"198.18.61.11", 1}});
    const auto c = count(syns(kClient4, 20000, 400));
    EXPECT_NEAR(c.at(kB[0]), 300, 1);
    EXPECT_NEAR(c.at(kB[1]), 100, 1);
}

TEST_F(Scheduling, LeastConnTiesGoByTheFlowHash)
{
    // All empty: each new flow is a tie, settled by its hash; the same
    // flows make the same choices on a fresh program.
    add("lc", kRrVip, Algorithm::LeastConn, {"198.18.61.10", "198.18.61.11", "198.18.61.12"});
    const auto first = one(tcp_syn(kClient4, 20000, kRrVip));
    const lbd_flow_key k = tcp_syn(kClient4, 20000, kRrVip).flow();
    const auto& v = vip("lc");
    std::vector<lbd::IpAddr> members;
    for (const auto& b : v.backends)
        members.push_back(b.address);
    EXPECT_EQ(first, members[lbd_reduce(lbd_flow_hash(&k, kSeed), 3)]);
}

TEST_F(Scheduling, LeastConnPicksWhatTheModelPicksAmongFortyWeightedMembers)
{
    // Forty members of weights 1, 2, 3, 4, 1, ... (as in xdp_bench): flows
    // open, close (FIN or RST) and repeat their SYN in a fixed pseudo-random
    // order; each new flow goes where the model says, from the counters as
    // they are just before it.
    std::vector<std::string> addrs;
    for (int k = 0; k < 40; k++)
        addrs.push_back("198.18.61." + std::to_string(100 + k));
    std::vector<Be> bes;
    for (size_t k = 0; k < addrs.size(); k++)
        bes.push_back({addrs[k].c_str(), uint32_t(1 + k % 4)});
    add("lc", kRrVip, Algorithm::LeastConn, bes);

    std::vector<uint16_t> open;
    uint32_t rnd = 12345;
    auto next = [&] { return rnd = rnd * 1103515245u + 12345u, (rnd >> 16) & 0x7fff; };
    uint16_t port = 20000;
    int checked = 0;
    for (int step = 0; step < 600; step++) {
        const uint32_t r = next() % 10;
        if (r < 3 && !open.empty()) {
            const size_t i = next() % open.size();
            const uint8_t flags = r == 0 ? tcpf::RST : tcpf::FIN | tcpf::ACK;
            one(tcp_flags(kClient4, open[i], kRrVip, flags));
            open.erase(open.begin() + long(i));
            continue;
        }
        // A new port, or now and then a repeated SYN of an open flow.
        const bool again = r == 3 && !open.empty();
        const uint16_t p = again ? open[next() % open.size()] : port++;
        const Packet syn = tcp_syn(kClient4, p, kRrVip);
        const lbd::IpAddr want = least_conn_model("lc", syn);
        ASSERT_EQ(one(syn), want) << "step " << step << (again ? " (repeated SYN)" : "");
        checked++;
        if (!again)
            open.push_back(p);
    }
    EXPECT_GT(checked, 400);
    int64_t total = 0;
    for (const auto& a : addrs)
        total += lc_active("lc", ip(a.c_str()));
    EXPECT_EQ(total, int64_t(open.size())) << "one count per open flow";
}

TEST_F(Scheduling, LeastConnPassesOverTheLeastLoadedWhenItIsFlaggedDown)
{
    // Only the flag, before lbd rebuilds the members: the program's first
    // look finds the down member least loaded, and looks again without it.
    add("lc", kRrVip, Algorithm::LeastConn,
        {{"198.18.61.10", 1}, {"198.18.61.11", 2}, {"198.18.61.12", 1}, {"198.18.61.13", 3}});
    for (uint16_t p = 20000; p < 20007; p++)
        one(tcp_syn(kClient4, p, kRrVip));
    std::set<uint32_t> down;
    std::set<lbd::IpAddr> down_addrs;
    for (uint16_t p = 21000; p < 21003; p++) {
        const Packet syn = tcp_syn(kClient4, p, kRrVip);
        const lbd::IpAddr least = least_conn_model("lc", syn, down);
        set_flags("lc", least, LBD_BE_F_VALID | LBD_BE_F_DOWN);
        down.insert(backend_id("lc", least));
        down_addrs.insert(least);
        const lbd::IpAddr want = least_conn_model("lc", syn, down);
        const lbd::IpAddr got = one(syn);
        EXPECT_EQ(got, want) << "port " << p;
        EXPECT_EQ(down_addrs.count(got), 0u) << "a new flow to a member flagged down";
    }
    // All four down: no backend.
    set_flags("lc", kB[3], LBD_BE_F_VALID | LBD_BE_F_DOWN);
    for (const auto& b : kB)
        set_flags("lc", b, LBD_BE_F_VALID | LBD_BE_F_DOWN);
    EXPECT_ACTION(run(tcp_syn(kClient4, 22000, kRrVip)), XDP_DROP);
}

TEST_F(Scheduling, LeastConnCountersLbdWritesAreThoseTheProgramReads)
{
    // lbd writes single counters through its mapping of lc_active (the
    // re-count, a new id's zero); the program indexes the same value.
    add("lc", kRrVip, Algorithm::LeastConn, {"198.18.61.10", "198.18.61.11"});
    auto& lc = static_cast<lbd::BpfMapWriter&>(dp().writer()).lc_counters();
    const uint32_t a = backend_id("lc", kB[0]), b = backend_id("lc", kB[1]);
    lc.set(a, 5);
    EXPECT_EQ(count(syns(kClient4, 20000, 5)), (std::map<lbd::IpAddr, int>{{kB[1], 5}}));
    EXPECT_EQ(lc_active("lc", kB[1]), 5);
    lc.set(b, 9);
    EXPECT_EQ(count(syns(kClient4, 21000, 4)), (std::map<lbd::IpAddr, int>{{kB[0], 4}}));
    EXPECT_EQ(lc_active("lc", kB[0]), 9);
    // The first and the last id the map holds; none outside it.
    lc.set(1, 7);
    lc.set(kMaxBackends, 8);
    EXPECT_EQ(lc.get(1), 7);
    EXPECT_EQ(lc.get(kMaxBackends), 8);
    lc.set(0, 3);
    EXPECT_EQ(lc.get(0), 0);
    EXPECT_EQ(lc.get(kMaxBackends + 1), 0) << "64 counters: the value is rounded to a power of two";
}

TEST_F(Scheduling, LeastConnMovesOffADownBackendAndItsCountFollows)
{
    add("lc", kRrVip, Algorithm::LeastConn, {"198.18.61.10", "198.18.61.11"});
    std::map<uint16_t, lbd::IpAddr> on;
    for (uint16_t p = 20000; p < 20010; p++)
        on[p] = one(tcp_syn(kClient4, p, kRrVip));
    ASSERT_TRUE(st().set_health("lc", kB[0], false));
    for (const auto& [p, be] : on)
        EXPECT_EQ(one(tcp_ack(kClient4, p, kRrVip)), kB[1]) << "pinned flows of a down backend re-scheduled";
    EXPECT_EQ(lc_active("lc", kB[0]), 0);
    EXPECT_EQ(lc_active("lc", kB[1]), 10);
}

TEST_F(Scheduling, LeastConnFlowGivenUpByAFullBucketStopsCounting)
{
    add("lc", kRrVip, Algorithm::LeastConn, {"198.18.61.10", "198.18.61.11"});
    // LBD_CT_WAYS + 1 flows that share one bucket of the connection table.
    const auto table = dp().conntrack();
    const auto ports = ports_in_one_bucket(kClient4, kRrVip, LBD_CT_WAYS + 1, 20000);
    for (int i = 0; i < LBD_CT_WAYS; i++)
        one(tcp_syn(kClient4, ports[i], kRrVip));
    EXPECT_EQ(lc_active("lc", kB[0]) + lc_active("lc", kB[1]), LBD_CT_WAYS);
    // The oldest goes for the new one: the count stays right.
    lbd::ct_find(table, tcp_syn(kClient4, ports[0], kRrVip).flow(), kSeed)->v.last_seen -= 10'000'000'000ull;
    one(tcp_syn(kClient4, ports[LBD_CT_WAYS], kRrVip));
    EXPECT_FALSE(conntrack_entry(tcp_syn(kClient4, ports[0], kRrVip).flow()));
    EXPECT_EQ(lc_active("lc", kB[0]) + lc_active("lc", kB[1]), LBD_CT_WAYS);
}

TEST_F(Scheduling, LeastConnIdleFlowsStopCountingUntilTheyTalkAgain)
{
    add("lc", kRrVip, Algorithm::LeastConn, {"198.18.61.10", "198.18.61.11"});
    for (uint16_t p = 20000; p < 20006; p++)
        one(tcp_syn(kClient4, p, kRrVip));
    // Flow 20000 went quiet long ago.
    auto k = tcp_syn(kClient4, 20000, kRrVip).flow();
    auto ct = conntrack_entry(k);
    ASSERT_TRUE(ct);
    const auto idle_be = one(tcp_ack(kClient4, 20000, kRrVip));
    lbd_ct_entry* e = lbd::ct_find(dp().conntrack(), k, kSeed);
    ASSERT_TRUE(e);
    e->v.last_seen -= 600'000'000'000ull;

    const auto& v = vip("lc");
    std::vector<uint32_t> ids;
    for (const auto& b : v.backends)
        ids.push_back(b.id);
    EXPECT_EQ(dp().reconcile_least_conn(ids, 300'000'000'000ull, 60'000'000'000ull), 1u);
    EXPECT_EQ(lc_active("lc", kB[0]) + lc_active("lc", kB[1]), 5);
    EXPECT_FALSE(conntrack_entry(k)->flags & LBD_CT_F_COUNTED);
    // Its next packet counts it again.
    EXPECT_EQ(one(tcp_ack(kClient4, 20000, kRrVip)), idle_be);
    EXPECT_EQ(lc_active("lc", kB[0]) + lc_active("lc", kB[1]), 6);
    // Re-counting a consistent table changes nothing.
    EXPECT_EQ(dp().reconcile_least_conn(ids, 300'000'000'000ull, 60'000'000'000ull), 0u);
    EXPECT_EQ(lc_active("lc", kB[0]) + lc_active("lc", kB[1]), 6);
    const auto shown = dp().least_conn_active(ids);
    EXPECT_EQ(shown.at(ids[0]) + shown.at(ids[1]), 6);
}

// ------------------------------------------------------------- source-hash

TEST_F(Scheduling, SourceHashOneBackendPerClientOnEveryNode)
{
    add("sh", kRrVip, Algorithm::SourceHash, {"198.18.61.10", "198.18.61.11", "198.18.61.12"});
    std::map<std::string, lbd::IpAddr> of;  // client -> backend
    std::set<lbd::IpAddr> used;
    for (int c = 1; c <= 60; c++) {
        const auto client = ip("198.51.100." + std::to_string(c));
        const auto c1 = count(syns(client, 20000, 20));
        ASSERT_EQ(c1.size(), 1u) << client.str() << " spread over backends";
        of[client.str()] = c1.begin()->first;
        used.insert(c1.begin()->first);
    }
    EXPECT_EQ(used.size(), 3u) << "clients spread over the backends";

    // A second LB node: its own program, its own maps, other backend ids
    // (another VIP came first), the same config for this VIP.
    lbd::DatapathConfig cfg;
    cfg.interfaces = {"lbt0"};
    cfg.maglev_ring_size = kRingSize;
    cfg.max_vips = kMaxVips;
    cfg.max_backends = kMaxBackends;
    cfg.hash_seed = kSeed;
    cfg.pin_path = "/sys/fs/bpf/lbd-bpf-tests-second-" + std::to_string(getpid());
    cfg.conntrack_size = 8192;
    lbd::Datapath node2(cfg, lbd::Pinning::None);
    lbd::LbState st2(node2.writer(), kRingSize, kMaxVips, kMaxBackends);
    auto other = make_vip("other", kVip4, 80, Protocol::Tcp, {"198.18.61.20", "198.18.61.21"});
    auto sh = make_vip("sh", kRrVip, 80, Protocol::Tcp, {"198.18.61.12", "198.18.61.10", "198.18.61.11"});
    sh.algorithm = Algorithm::SourceHash;
    st2.apply({other, sh});
    ASSERT_NE(st2.vips().at("sh").find(kB[0])->id, vip("sh").find(kB[0])->id) << "ids should differ";
    for (const auto& [client, be] : of) {
        const Bytes frame = tcp_syn(ip(client), 33333, kRrVip).bytes();
        Bytes out(frame.size() + 512);
        xdp_md ctx{};
        ctx.data_end = uint32_t(frame.size());
        ctx.ingress_ifindex = uint32_t(ifindex());
        LIBBPF_OPTS(bpf_test_run_opts, opts);
        opts.data_in = frame.data();
        opts.data_size_in = uint32_t(frame.size());
        opts.data_out = out.data();
        opts.data_size_out = uint32_t(out.size());
        opts.ctx_in = &ctx;
        opts.ctx_size_in = sizeof ctx;
        opts.repeat = 1;
        ASSERT_EQ(bpf_prog_test_run_opts(node2.prog_fd(), &opts), 0);
        ASSERT_EQ(int(opts.retval), XDP_TX);
        out.resize(opts.data_size_out);
        EXPECT_EQ(parse_frame(out).ip_dst, be) << client << " got another backend on the second node";
    }
}

TEST_F(Scheduling, SourceHashClientStaysWhileItsBackendIsUp)
{
    add("sh", kRrVip, Algorithm::SourceHash, {"198.18.61.10", "198.18.61.11", "198.18.61.12"});
    std::map<std::string, lbd::IpAddr> before;
    for (int c = 1; c <= 100; c++) {
        const auto client = ip("198.51.100." + std::to_string(c));
        before[client.str()] = one(tcp_syn(client, 20000, kRrVip));
    }
    ASSERT_TRUE(st().set_health("sh", kB[2], false));
    int moved_others = 0;
    for (const auto& [client, be] : before) {
        const auto now = one(tcp_syn(ip(client), 20001, kRrVip));
        if (be == kB[2])
            EXPECT_NE(now, kB[2]) << client;
        else
            moved_others += now != be;
    }
    EXPECT_LE(moved_others, 5) << "Maglev moves (almost) only the down backend's clients";
}

TEST_F(Scheduling, SourceHashIpv6)
{
    add("sh6", kRrVip6, Algorithm::SourceHash, {"fd00:1b:61::10", "fd00:1b:61::11", "fd00:1b:61::12"});
    std::set<lbd::IpAddr> used;
    for (int c = 1; c <= 30; c++) {
        const auto client = ip("2001:db8:c::" + std::to_string(c));
        const auto c1 = count(syns(client, 20000, 10, kRrVip6));
        ASSERT_EQ(c1.size(), 1u) << client.str();
        used.insert(c1.begin()->first);
    }
    EXPECT_EQ(used.size(), 3u);
}

// ---------------------------------------------------------------- failover

TEST_F(Scheduling, FailoverMovesOnlyWhenTheFirstIsDown)
{
    add("fo", kRrVip, Algorithm::Failover, {{"198.18.61.10", 1}, {"198.18.61.11", 5}, {"198.18.61.12", 3}});
    const auto c = count(syns(kClient4, 20000, 50));
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c.begin()->first, kB[1]) << "the highest weight first";

    // Down by flag alone (the program checks it) ...
    set_flags("fo", kB[1], LBD_BE_F_VALID | LBD_BE_F_DOWN);
    EXPECT_EQ(count(syns(kClient4, 21000, 20)), (std::map<lbd::IpAddr, int>{{kB[2], 20}}));
    // ... pinned flows of the first move too, and stay where they moved.
    for (uint16_t p = 20000; p < 20005; p++)
        EXPECT_EQ(one(tcp_ack(kClient4, p, kRrVip)), kB[2]);
    set_flags("fo", kB[1], LBD_BE_F_VALID);
    EXPECT_EQ(count(syns(kClient4, 22000, 20)), (std::map<lbd::IpAddr, int>{{kB[1], 20}})) << "back to the first";
    EXPECT_EQ(one(tcp_ack(kClient4, 20000, kRrVip)), kB[2]) << "a moved flow stays pinned";

    // Through LbState: both of the first two down, then the third takes them.
    ASSERT_TRUE(st().set_health("fo", kB[1], false));
    ASSERT_TRUE(st().set_health("fo", kB[2], false));
    EXPECT_EQ(count(syns(kClient4, 23000, 10)), (std::map<lbd::IpAddr, int>{{kB[0], 10}}));
    ASSERT_TRUE(st().set_health("fo", kB[2], true));
    EXPECT_EQ(count(syns(kClient4, 24000, 10)), (std::map<lbd::IpAddr, int>{{kB[2], 10}}));
    // Drained: out of the order too.
    change("fo", [](auto& v) { v.backends[1].weight = v.backends[2].weight = 0; });
    EXPECT_EQ(count(syns(kClient4, 25000, 10)), (std::map<lbd::IpAddr, int>{{kB[0], 10}}));
}

// ------------------------------------------------------------- persistence

TEST_F(Scheduling, PersistenceHoldsWithinTheTimeoutAndExpiresAfter)
{
    add("p", kRrVip, Algorithm::RoundRobin, {"198.18.61.10", "198.18.61.11", "198.18.61.12"});
    change("p", [](auto& v) {
        v.persistence = lbd::Persistence{};
        v.persistence->timeout = std::chrono::seconds(1);
        v.persistence->netmask = 24;
    });
    const auto first = one(tcp_syn(kClient4, 20000, kRrVip));
    // Round-robin alone would move each new flow on; persistence keeps the
    // client (and its /24) on its backend.
    EXPECT_EQ(count(syns(kClient4, 20001, 20)), (std::map<lbd::IpAddr, int>{{first, 20}}));
    EXPECT_EQ(one(tcp_syn(ip("198.51.100.99"), 20000, kRrVip)), first) << "same /24, same backend";
    const auto other = one(tcp_syn(ip("198.51.101.7"), 20000, kRrVip));
    EXPECT_NE(other, first) << "another /24 is another client";

    // Traffic on a pinned flow keeps the record fresh ...
    age_persist("p", ip("198.51.100.0"), std::chrono::milliseconds(900));
    one(tcp_ack(kClient4, 20000, kRrVip));
    age_persist("p", ip("198.51.100.0"), std::chrono::milliseconds(900));
    EXPECT_EQ(one(tcp_syn(kClient4, 20100, kRrVip)), first) << "within the timeout of the last packet";

    // ... silence longer than the timeout ends it: round-robin decides again.
    CounterWatch counters(dp());
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    const auto after = syns(kClient4, 20200, 3);
    EXPECT_EQ(std::set<lbd::IpAddr>(after.begin(), after.end()).size(), 1u) << "a new record holds at once";
    const auto again = syns(kClient4, 20300, 1);
    EXPECT_EQ(again[0], after[0]);
    EXPECT_EQ(counters.delta(LBD_CNT_PERSIST_HIT), 3u);
    age_persist("p", ip("198.51.100.0"), std::chrono::milliseconds(1500));
    const auto next = one(tcp_syn(kClient4, 20400, kRrVip));
    const auto next2 = one(tcp_syn(kClient4, 20401, kRrVip));
    EXPECT_EQ(next, next2);
    EXPECT_EQ(counters.delta(LBD_CNT_PERSIST_HIT), 4u) << "the aged record was not used";
}

TEST_F(Scheduling, PersistenceGivesWayToDownAndDrainedBackends)
{
    add("p", kRrVip, Algorithm::RoundRobin, {"198.18.61.10", "198.18.61.11"});
    change("p", [](auto& v) { v.persistence = lbd::Persistence{}; });
    const auto first = one(tcp_syn(kClient4, 20000, kRrVip));
    const auto second = first == kB[0] ? kB[1] : kB[0];
    ASSERT_TRUE(st().set_health("p", first, false));
    EXPECT_EQ(one(tcp_syn(kClient4, 20001, kRrVip)), second);
    ASSERT_TRUE(st().set_health("p", first, true));
    EXPECT_EQ(one(tcp_syn(kClient4, 20002, kRrVip)), second) << "the client stays where it went";
    change("p", [&](auto& v) {
        for (auto& b : v.backends)
            if (b.address == second)
                b.weight = 0;
    });
    EXPECT_EQ(one(tcp_syn(kClient4, 20003, kRrVip)), first) << "a drained backend takes no new flow";
}

TEST_F(Scheduling, PersistenceWithMaglevAndIpv6Prefix)
{
    add("p6", kRrVip6, Algorithm::Maglev, {"fd00:1b:61::10", "fd00:1b:61::11", "fd00:1b:61::12"});
    change("p6", [](auto& v) {
        v.persistence = lbd::Persistence{};
        v.persistence->prefix_v6 = 64;
    });
    const auto first = one(tcp_syn(ip("2001:db8:c::7"), 20000, kRrVip6));
    for (int i = 1; i < 30; i++)
        EXPECT_EQ(one(tcp_syn(ip("2001:db8:c::" + std::to_string(i + 100)), uint16_t(20000 + i), kRrVip6)), first);
}

// -------------------------------------------------------------- one-packet

TEST_F(Scheduling, OnePacketSpreadsTheDatagramsOfOneTuple)
{
    add("dns", kRrVip, Algorithm::RoundRobin, {"198.18.61.10", "198.18.61.11", "198.18.61.12", "198.18.61.13"},
        Protocol::Udp, 53);
    // Without one_packet a 5-tuple is a flow: pinned.
    std::vector<lbd::IpAddr> got;
    for (int i = 0; i < 8; i++)
        got.push_back(one(dgram(kClient4, 40000, kRrVip)));
    EXPECT_EQ(count(got).size(), 1u);

    change("dns", [](auto& v) { v.one_packet = true; });
    got.clear();
    CounterWatch counters(dp());
    for (int i = 0; i < 40; i++)
        got.push_back(one(dgram(kClient4, 40001, kRrVip)));
    for (const auto& [be, n] : count(got))
        EXPECT_EQ(n, 10) << be.str();
    EXPECT_EQ(count(got).size(), 4u);
    EXPECT_FALSE(conntrack_entry(dgram(kClient4, 40001, kRrVip).flow())) << "one_packet keeps no entry";
    EXPECT_EQ(counters.delta(LBD_CNT_CT_HIT) + counters.delta(LBD_CNT_CT_MISS), 0u);
    EXPECT_EQ(dp().vip_stats(vip("dns").vip_id).new_flows, 41u) << "every datagram is a new flow";
}

TEST_F(Scheduling, OnePacketIgnoredForTcpOfTheSameDatapathEntry)
{
    // The flag only ever matters for UDP (the config refuses it on TCP; the
    // program checks the protocol too).
    add("rr", kRrVip, Algorithm::RoundRobin, {"198.18.61.10", "198.18.61.11"});
    lbd_vip_meta m = vip("rr").meta();
    m.flags |= LBD_VIP_F_ONE_PACKET;
    dp().writer().put_vip(vip("rr").key(), m);
    const auto be = one(tcp_syn(kClient4, 20000, kRrVip));
    for (int i = 0; i < 6; i++)
        EXPECT_EQ(one(tcp_ack(kClient4, 20000, kRrVip)), be);
}

// ------------------------------------------------- pinned, whatever happens

TEST_F(Scheduling, EstablishedFlowsStayPinnedAcrossAlgorithmAndWeightChanges)
{
    add("v", kRrVip, Algorithm::RoundRobin, {"198.18.61.10", "198.18.61.11", "198.18.61.12"});
    std::map<uint16_t, lbd::IpAddr> on;
    for (uint16_t p = 20000; p < 20060; p++)
        on[p] = one(tcp_syn(kClient4, p, kRrVip));
    for (Algorithm a : {Algorithm::Weighted, Algorithm::LeastConn, Algorithm::Failover, Algorithm::SourceHash,
                        Algorithm::Maglev, Algorithm::RoundRobin}) {
        change("v", [&](auto& v) {
            v.algorithm = a;
            v.backends[0].weight = 7;
            v.backends[1].weight = v.backends[1].weight == 0 ? 1 : 0;  // drained every other time
        });
        for (const auto& [p, be] : on)
            EXPECT_EQ(one(tcp_ack(kClient4, p, kRrVip)), be) << lbd::to_string(a) << " port " << p;
    }
    // Forced removal re-schedules them, to the remaining backends.
    ASSERT_TRUE(st().remove_backend("v", kB[0], true));
    for (const auto& [p, be] : on)
        EXPECT_NE(one(tcp_ack(kClient4, p, kRrVip)), kB[0]);
}

TEST_F(Scheduling, EmptyMemberListDropsNewFlows)
{
    add("rr", kRrVip, Algorithm::RoundRobin, {{"198.18.61.10", 0}});
    CounterWatch counters(dp());
    EXPECT_ACTION(run(tcp_syn(kClient4, 20000, kRrVip)), XDP_DROP);
    EXPECT_TRUE(counters.verdicts_are(LBD_CNT_DROP_NO_BACKEND));
    change("rr", [](auto& v) { v.backends.clear(); });
    EXPECT_ACTION(run(tcp_syn(kClient4, 20001, kRrVip)), XDP_DROP);
}

}  // namespace
