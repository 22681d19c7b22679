// The route-injection policy with a fake clock: quorum, maintenance (both
// actions), hold-down timings, flapping, the shared-prefix rule, stopping,
// and that nothing is sent twice.
#include "bgp/policy.h"

#include <gtest/gtest.h>

using namespace lbd;
using namespace lbd::bgp;
using namespace std::chrono_literals;

namespace {

IpAddr ip(const char* s)
{
    return *IpAddr::parse(s);
}

Prefix pfx(const char* s)
{
    return *Prefix::parse(s);
}

BgpConfig config()
{
    BgpConfig c;
    c.enabled = true;
    c.local_as = 65001;
    c.local_address = ip("198.18.0.2");
    c.router_id = c.local_address;
    Neighbor nb;
    nb.address = ip("198.18.0.1");
    nb.peer_as = 65000;
    nb.ipv4 = true;
    c.neighbors.push_back(nb);
    c.med = 100;
    c.communities = {*Community::parse("65001:100")};
    c.maintenance_file = "/etc/lb/disable";
    c.maintenance_med = 1000;
    c.maintenance_community = Community::parse("65001:666");
    c.withdraw_quorum = 1;
    c.hold_down = 5s;
    return c;
}

VipInput vip(const char* name, const char* addr, uint32_t healthy)
{
    return {name, ip(addr), healthy, {}};
}

/// A fake clock and the inputs, with a helper to evaluate.
struct Fixture {
    Policy policy{config()};
    PolicyInputs in;
    TimePoint now = TimePoint{} + 1000s;

    std::vector<RouteChange> at(Clock::duration since_start)
    {
        return policy.evaluate(in, TimePoint{} + 1000s + since_start);
    }
    std::vector<RouteChange> run()
    {
        return policy.evaluate(in, now);
    }
    PrefixState state(const char* prefix)
    {
        for (const auto& p : policy.prefixes())
            if (p.prefix == pfx(prefix))
                return p;
        ADD_FAILURE() << "no prefix " << prefix;
        return {};
    }
};

RouteAttributes normal()
{
    return {NextHop{}, 100, {*Community::parse("65001:100")}};
}

RouteChange announce(const char* prefix, RouteAttributes a = normal(), std::string reason = "announced")
{
    return {Action::Announce, pfx(prefix), std::move(a), std::move(reason)};
}

RouteChange withdraw(const char* prefix, std::string reason)
{
    return {Action::Withdraw, pfx(prefix), {}, std::move(reason)};
}

using Changes = std::vector<RouteChange>;

}  // namespace

namespace lbd::bgp {
void PrintTo(const RouteChange& c, std::ostream* os)
{
    *os << to_string(c.action) << " " << c.prefix.str() << " (" << c.attributes.str() << ") \"" << c.reason << "\"";
}
}  // namespace lbd::bgp

TEST(BgpPolicy, AnnouncesHealthyVipOnceAndNeverResends)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 2)};
    EXPECT_EQ(f.run(), Changes{announce("198.18.1.100/32")});
    EXPECT_EQ(f.run(), Changes{});
    f.in.vips[0].healthy = 3;  // still above quorum: nothing to say
    EXPECT_EQ(f.run(), Changes{});
    auto s = f.state("198.18.1.100/32");
    EXPECT_EQ(s.action, Action::Announce);
    EXPECT_EQ(s.reason, "announced");
    EXPECT_EQ(s.vips, std::vector<std::string>{"web"});
    EXPECT_EQ(s.attributes, normal());
}

TEST(BgpPolicy, NeverAnnouncedIsNotWithdrawn)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 0)};
    EXPECT_EQ(f.run(), Changes{});
    auto s = f.state("198.18.1.100/32");
    EXPECT_EQ(s.action, Action::Withdraw);
    EXPECT_EQ(s.reason, "vip web: 0 healthy backends < quorum 1");
}

TEST(BgpPolicy, FirstHealthyIsAnnouncedWithoutHoldDown)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 0)};
    EXPECT_EQ(f.at(0s), Changes{});
    f.in.vips[0].healthy = 1;  // health checks have just risen after start-up
    EXPECT_EQ(f.at(2s), Changes{announce("198.18.1.100/32")});
}

TEST(BgpPolicy, QuorumAboveOne)
{
    Fixture f;
    auto c = config();
    c.withdraw_quorum = 2;
    f.policy.set_config(c);
    f.in.vips = {vip("web", "198.18.1.100", 2)};
    EXPECT_EQ(f.at(0s), Changes{announce("198.18.1.100/32")});
    f.in.vips[0].healthy = 1;
    EXPECT_EQ(f.at(1s), Changes{withdraw("198.18.1.100/32", "vip web: 1 healthy backend < quorum 2")});
}

TEST(BgpPolicy, HoldDownExactTiming)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 1)};
    EXPECT_EQ(f.at(0s), Changes{announce("198.18.1.100/32")});
    f.in.vips[0].healthy = 0;
    EXPECT_EQ(f.at(10s), Changes{withdraw("198.18.1.100/32", "vip web: 0 healthy backends < quorum 1")});
    EXPECT_FALSE(f.policy.next_deadline());

    f.in.vips[0].healthy = 1;  // eligible again at 12s
    EXPECT_EQ(f.at(12s), Changes{});
    EXPECT_EQ(f.policy.next_deadline(), TimePoint{} + 1000s + 17s);
    EXPECT_EQ(f.state("198.18.1.100/32").reason, "hold-down: eligible for 0.0s of 5s");
    EXPECT_EQ(f.at(14100ms), Changes{});
    EXPECT_EQ(f.state("198.18.1.100/32").reason, "hold-down: eligible for 2.1s of 5s");
    EXPECT_EQ(f.at(16999ms), Changes{});
    EXPECT_EQ(f.at(17s), Changes{announce("198.18.1.100/32")});
    EXPECT_FALSE(f.policy.next_deadline());
    EXPECT_EQ(f.state("198.18.1.100/32").since, TimePoint{} + 1000s + 17s);
}

TEST(BgpPolicy, FlappingMakesNoStorm)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 1)};
    Changes all = f.at(0s);
    // 40 flaps, 100 ms each way, from 1 s to 9 s.
    auto t = 1000ms;
    for (int i = 0; i < 40; ++i) {
        f.in.vips[0].healthy = 0;
        for (auto& c : f.at(t))
            all.push_back(c);
        t += 100ms;
        f.in.vips[0].healthy = 1;
        for (auto& c : f.at(t))
            all.push_back(c);
        t += 100ms;
    }
    // Last recovery at 8.9 s: re-announced at 13.9 s, not before, exactly once.
    EXPECT_EQ(t, 9000ms);
    for (std::chrono::milliseconds when = 9s; when < 13900ms; when += 250ms)
        for (auto& c : f.at(when))
            all.push_back(c);
    for (auto& c : f.at(13900ms))
        all.push_back(c);
    for (auto& c : f.at(20s))
        all.push_back(c);
    EXPECT_EQ(all, (Changes{announce("198.18.1.100/32"),
                            withdraw("198.18.1.100/32", "vip web: 0 healthy backends < quorum 1"),
                            announce("198.18.1.100/32")}));
    EXPECT_EQ(f.state("198.18.1.100/32").since, TimePoint{} + 1000s + 13900ms);
}

TEST(BgpPolicy, ZeroHoldDownReannouncesAtOnce)
{
    Fixture f;
    auto c = config();
    c.hold_down = 0s;
    f.policy.set_config(c);
    f.in.vips = {vip("web", "198.18.1.100", 1)};
    f.at(0s);
    f.in.vips[0].healthy = 0;
    EXPECT_EQ(f.at(1s).size(), 1u);
    f.in.vips[0].healthy = 1;
    EXPECT_EQ(f.at(2s), Changes{announce("198.18.1.100/32")});
}

TEST(BgpPolicy, MaintenanceWithdrawAndBackAtOnce)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 1), vip("dns6", "fd00:1b:1::53", 1)};
    EXPECT_EQ(f.at(0s).size(), 2u);
    f.in.maintenance = true;
    EXPECT_EQ(f.at(1s), (Changes{withdraw("198.18.1.100/32", "maintenance file /etc/lb/disable exists"),
                                 withdraw("fd00:1b:1::53/128", "maintenance file /etc/lb/disable exists")}));
    EXPECT_EQ(f.at(2s), Changes{});
    f.in.maintenance = false;  // no hold-down after maintenance
    RouteAttributes v6 = normal();
    EXPECT_EQ(f.at(3s), (Changes{announce("198.18.1.100/32"), announce("fd00:1b:1::53/128", v6)}));
}

TEST(BgpPolicy, MaintenanceDepref)
{
    Fixture f;
    auto c = config();
    c.maintenance_action = MaintenanceAction::Depref;
    f.policy.set_config(c);
    f.in.vips = {vip("web", "198.18.1.100", 1)};
    f.at(0s);
    f.in.maintenance = true;
    RouteAttributes depref{NextHop{}, 1000, {*Community::parse("65001:100"), *Community::parse("65001:666")}};
    EXPECT_EQ(f.at(1s), Changes{announce("198.18.1.100/32", depref,
                                         "maintenance file /etc/lb/disable exists: announced with next-hop self med "
                                         "1000 communities 65001:100 65001:666")});
    EXPECT_EQ(f.at(2s), Changes{});
    // Health still rules: below quorum during maintenance is withdrawn.
    f.in.vips[0].healthy = 0;
    EXPECT_EQ(f.at(3s), Changes{withdraw("198.18.1.100/32", "vip web: 0 healthy backends < quorum 1")});
    f.in.vips[0].healthy = 1;
    EXPECT_EQ(f.at(4s), Changes{});
    EXPECT_EQ(f.at(8999ms), Changes{});
    EXPECT_EQ(f.at(9s).size(), 1u);  // after hold-down, deprefed again
    f.in.maintenance = false;
    EXPECT_EQ(f.at(10s), Changes{announce("198.18.1.100/32")});
}

TEST(BgpPolicy, HoldDownStillRunsAfterMaintenance)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 1)};
    f.at(0s);
    f.in.maintenance = true;
    f.at(1s);
    f.in.vips[0].healthy = 0;  // fails and recovers during maintenance
    f.at(2s);
    f.in.vips[0].healthy = 1;
    f.at(3s);
    f.in.maintenance = false;
    EXPECT_EQ(f.at(4s), Changes{});
    EXPECT_EQ(f.state("198.18.1.100/32").reason, "hold-down: eligible for 1.0s of 5s");
    EXPECT_EQ(f.at(8s), Changes{announce("198.18.1.100/32")});
}

TEST(BgpPolicy, StoppingWithdrawsWhatWasAnnounced)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 1), vip("down", "198.18.1.101", 0)};
    f.at(0s);
    f.in.running = false;
    EXPECT_EQ(f.at(1s), Changes{withdraw("198.18.1.100/32", "lbd stopping")});
    EXPECT_EQ(f.state("198.18.1.101/32").reason, "lbd stopping");
    f.in.maintenance = true;
    EXPECT_EQ(f.at(2s), Changes{});
}

TEST(BgpPolicy, SharedPrefixNeedsEveryVip)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 2), vip("web-tls", "198.18.1.100", 2)};
    EXPECT_EQ(f.at(0s), Changes{announce("198.18.1.100/32")});  // one route for both
    EXPECT_EQ(f.state("198.18.1.100/32").vips, (std::vector<std::string>{"web", "web-tls"}));
    f.in.vips[1].healthy = 0;
    EXPECT_EQ(f.at(1s), Changes{withdraw("198.18.1.100/32", "vip web-tls: 0 healthy backends < quorum 1")});
    f.in.vips[1].healthy = 1;
    EXPECT_EQ(f.at(2s), Changes{});
    EXPECT_EQ(f.at(7s), Changes{announce("198.18.1.100/32")});
}

TEST(BgpPolicy, VipQuorumZeroNeverWithdrawsForHealth)
{
    Fixture f;
    auto v = vip("sorry", "198.18.1.100", 0);
    v.bgp.withdraw_quorum = 0;
    f.in.vips = {v};
    EXPECT_EQ(f.at(0s), Changes{announce("198.18.1.100/32")});
    f.in.maintenance = true;
    EXPECT_EQ(f.at(1s).size(), 1u);  // maintenance still applies
}

TEST(BgpPolicy, VipOverridesAttributes)
{
    Fixture f;
    auto v = vip("web", "198.18.1.100", 1);
    v.bgp.med = 7;
    v.bgp.communities = std::vector<Community>{*Community::parse("65001:1:2")};
    f.in.vips = {v};
    EXPECT_EQ(f.at(0s), Changes{announce("198.18.1.100/32", {NextHop{}, 7, {*Community::parse("65001:1:2")}})});
}

TEST(BgpPolicy, NewAttributesAreReannounced)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 1), vip("web6", "fd00:1b:1::100", 1)};
    f.at(0s);
    auto c = config();
    c.med = 200;
    c.next_hop_v6 = ip("fd00:1b::2");
    f.policy.set_config(c);
    RouteAttributes v4{NextHop{}, 200, {*Community::parse("65001:100")}};
    RouteAttributes v6{NextHop{ip("fd00:1b::2")}, 200, {*Community::parse("65001:100")}};
    EXPECT_EQ(f.at(1s), (Changes{announce("198.18.1.100/32", v4), announce("fd00:1b:1::100/128", v6)}));
    EXPECT_EQ(f.at(2s), Changes{});
}

TEST(BgpPolicy, RemovedVipIsWithdrawnAndForgotten)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 1), vip("old", "198.18.1.101", 1)};
    f.at(0s);
    f.in.vips.pop_back();
    EXPECT_EQ(f.at(1s), Changes{withdraw("198.18.1.101/32", "no VIP on 198.18.1.101 any more")});
    EXPECT_EQ(f.policy.prefixes().size(), 1u);
}

TEST(BgpPolicy, Snapshot)
{
    Fixture f;
    f.in.vips = {vip("web", "198.18.1.100", 1), vip("down", "198.18.1.101", 0)};
    f.at(0s);
    EXPECT_EQ(f.policy.snapshot(false), Changes{announce("198.18.1.100/32")});
    EXPECT_EQ(f.policy.snapshot(true),
              (Changes{announce("198.18.1.100/32"),
                       withdraw("198.18.1.101/32", "vip down: 0 healthy backends < quorum 1")}));
}
