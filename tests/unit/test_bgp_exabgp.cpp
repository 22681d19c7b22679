// ExaBGP text both ways: the configuration file (golden), API commands, and
// the messages ExaBGP writes back.
#include "bgp/exabgp.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace lbd;
using namespace lbd::bgp;
namespace ex = lbd::bgp::exabgp;

namespace {

IpAddr ip(const char* s)
{
    return *IpAddr::parse(s);
}

Prefix pfx(const char* s)
{
    return *Prefix::parse(s);
}

BgpConfig two_neighbors()
{
    BgpConfig c;
    c.enabled = true;
    c.local_as = 65001;
    c.router_id = ip("198.18.0.2");
    c.local_address = ip("198.18.0.2");
    c.hold_time = 9;
    Neighbor a;
    a.address = ip("198.18.0.1");
    a.peer_as = 65000;
    a.ipv4 = true;
    Neighbor b;
    b.address = ip("fd00:1b::1");
    b.peer_as = 65000;
    b.local_address = ip("fd00:1b::2");
    b.md5_password = "s3cret!";
    b.passive = true;
    b.ipv6 = true;
    c.neighbors = {a, b};
    return c;
}

}  // namespace

TEST(ExabgpConfig, Golden)
{
    auto text = ex::config_text(two_neighbors(), {"/usr/sbin/lbd", "--exabgp-relay", "/run/lbd/bgp/api.sock"});
    EXPECT_EQ(text, R"(# Written by lbd for its own ExaBGP; changes are overwritten.
process lbd {
    run /usr/sbin/lbd --exabgp-relay /run/lbd/bgp/api.sock;
    encoder text;
}

neighbor 198.18.0.1 {
    router-id 198.18.0.2;
    local-address 198.18.0.2;
    local-as 65001;
    peer-as 65000;
    hold-time 9;
    family {
        ipv4 unicast;
    }
    api {
        processes [ lbd ];
        neighbor-changes;
        send {
            parsed;
            update;
        }
    }
}

neighbor fd00:1b::1 {
    router-id 198.18.0.2;
    local-address fd00:1b::2;
    local-as 65001;
    peer-as 65000;
    hold-time 9;
    md5-password s3cret!;
    passive true;
    listen 179;
    family {
        ipv6 unicast;
    }
    api {
        processes [ lbd ];
        neighbor-changes;
        send {
            parsed;
            update;
        }
    }
}
)");
}

TEST(ExabgpConfig, GracefulRestartAndBothFamilies)
{
    auto c = two_neighbors();
    c.neighbors.resize(1);
    c.neighbors[0].ipv6 = true;
    c.graceful_restart = 120;
    c.hold_time = 0;
    auto text = ex::config_text(c, {"/r", "/s"});
    EXPECT_NE(text.find(R"(    hold-time 0;
    manual-eor true;
    capability {
        graceful-restart 120;
    }
    family {
        ipv4 unicast;
        ipv6 unicast;
    }
)"),
              std::string::npos)
        << text;
}

TEST(ExabgpConfig, RefusesWordsThatCouldInjectSyntax)
{
    auto c = two_neighbors();
    for (const char* bad : {"/tmp/a b", "/tmp/x;", "/tmp/{", "/tmp/#", "/tmp/\"q\"", "", "/tmp/[", "/tmp/a\nb"})
        EXPECT_THROW(ex::config_text(c, {"/usr/sbin/lbd", bad}), std::invalid_argument) << bad;
    EXPECT_THROW(ex::config_text(c, {}), std::invalid_argument);
    EXPECT_NO_THROW(ex::config_text(c, {"/opt/lbd-1.0/bin/lbd", "--exabgp-relay=/run/x_y/api.sock"}));
}

TEST(ExabgpConfig, Environment)
{
    auto env = ex::environment();
    for (const char* want : {"exabgp.daemon.user=root", "exabgp.daemon.daemonize=false",
                             "exabgp.log.destination=stdout", "exabgp.api.ack=true", "exabgp.api.cli=false"})
        EXPECT_NE(std::find(env.begin(), env.end(), want), env.end()) << want;
}

TEST(ExabgpCommands, Announce)
{
    RouteAttributes a{NextHop{}, 100, {*Community::parse("65001:100")}};
    EXPECT_EQ(ex::announce(ip("198.18.0.1"), pfx("198.18.1.100/32"), a),
              "neighbor 198.18.0.1 announce route 198.18.1.100/32 next-hop self med 100 community [65001:100]");
    RouteAttributes b{NextHop{ip("fd00:1b::2")},
                      std::nullopt,
                      {*Community::parse("65001:1:2"), *Community::parse("65001:7"), *Community::parse("65001:3:4"),
                       *Community::parse("65001:8")}};
    EXPECT_EQ(ex::announce(ip("198.18.0.1"), pfx("fd00:1b:1::100/128"), b),
              "neighbor 198.18.0.1 announce route fd00:1b:1::100/128 next-hop fd00:1b::2 community [65001:7 65001:8] "
              "large-community [65001:1:2 65001:3:4]");
    EXPECT_EQ(ex::announce(ip("fd00:1b::1"), pfx("fd00:1b:1::100/128"), RouteAttributes{}),
              "neighbor fd00:1b::1 announce route fd00:1b:1::100/128 next-hop self");
}

TEST(ExabgpCommands, WithdrawAndEor)
{
    EXPECT_EQ(ex::withdraw(ip("198.18.0.1"), pfx("198.18.1.100/32")),
              "neighbor 198.18.0.1 withdraw route 198.18.1.100/32");
    EXPECT_EQ(ex::eor(ip("198.18.0.1"), Family::V4), "neighbor 198.18.0.1 announce eor ipv4 unicast");
    EXPECT_EQ(ex::eor(ip("fd00:1b::1"), Family::V6), "neighbor fd00:1b::1 announce eor ipv6 unicast");
}

TEST(ExabgpCommands, OnePerNeighborCarryingTheFamily)
{
    auto c = two_neighbors();
    RouteChange v4{Action::Announce, pfx("198.18.1.100/32"), {NextHop{}, 5, {}}, "announced"};
    EXPECT_EQ(ex::commands(c, v4),
              std::vector<std::string>{"neighbor 198.18.0.1 announce route 198.18.1.100/32 next-hop self med 5"});
    RouteChange v6{Action::Withdraw, pfx("fd00:1b:1::100/128"), {}, "lbd stopping"};
    EXPECT_EQ(ex::commands(c, v6), std::vector<std::string>{"neighbor fd00:1b::1 withdraw route fd00:1b:1::100/128"});
    c.neighbors[0].ipv6 = true;
    EXPECT_EQ(ex::commands(c, v6).size(), 2u);
}

TEST(ExabgpMessages, Acks)
{
    EXPECT_EQ(ex::parse("done").kind, ex::Message::Kind::Done);
    EXPECT_EQ(ex::parse("done\n").kind, ex::Message::Kind::Done);
    EXPECT_EQ(ex::parse("error").kind, ex::Message::Kind::Error);
    EXPECT_EQ(ex::parse("shutdown 20198 1").kind, ex::Message::Kind::Shutdown);
    EXPECT_EQ(ex::parse("shutdown").kind, ex::Message::Kind::Shutdown);
}

TEST(ExabgpMessages, NeighborChanges)
{
    using K = ex::Message::Kind;
    auto up = ex::parse("neighbor 198.18.0.1 up");
    EXPECT_EQ(up.kind, K::Up);
    EXPECT_EQ(up.neighbor, ip("198.18.0.1"));
    EXPECT_EQ(ex::parse("neighbor fd00:1b::1 connected").kind, K::Connected);
    EXPECT_EQ(ex::parse("neighbor fd00:1b::1 connected").neighbor, ip("fd00:1b::1"));
    auto down = ex::parse("neighbor 198.18.0.1 down - peer reset, message [notification received (6,4)] "
                          "error[Cease / Administrative Reset]");
    EXPECT_EQ(down.kind, K::Down);
    EXPECT_EQ(down.text, "peer reset, message [notification received (6,4)] error[Cease / Administrative Reset]");
    EXPECT_EQ(ex::parse("neighbor 198.18.0.1 down - stop, message [shutting down]").text,
              "stop, message [shutting down]");
}

TEST(ExabgpMessages, SentUpdates)
{
    using K = ex::Message::Kind;
    auto a = ex::parse("neighbor 198.18.0.1 send update announced 198.18.1.100/32 next-hop 198.18.0.2 origin igp "
                       "as-path [ 65001 ] med 100 community 65001:100");
    EXPECT_EQ(a.kind, K::SentAnnounced);
    EXPECT_EQ(a.prefix, pfx("198.18.1.100/32"));
    auto w = ex::parse("neighbor fd00:1b::1 send update withdrawn fd00:1b:1::100/128");
    EXPECT_EQ(w.kind, K::SentWithdrawn);
    EXPECT_EQ(w.prefix, pfx("fd00:1b:1::100/128"));
    EXPECT_EQ(w.neighbor, ip("fd00:1b::1"));
    EXPECT_EQ(ex::parse("neighbor 198.18.0.1 send update route eor 1/1 (ipv4 unicast)").kind, K::SentEor);
    EXPECT_EQ(ex::parse("neighbor 198.18.0.1 send update start").kind, K::Other);
    EXPECT_EQ(ex::parse("neighbor 198.18.0.1 send update end").kind, K::Other);
}

TEST(ExabgpMessages, AnythingElseIsOther)
{
    using K = ex::Message::Kind;
    for (const char* s : {"", " ", "neighbor", "neighbor x.y up", "neighbor 198.18.0.1", "neighbor 198.18.0.1 up now",
                          "neighbor 198.18.0.1 send update announced not-a-prefix", "donee", "done done",
                          "neighbor 198.18.0.1 receive update announced 198.18.1.1/32"})
        EXPECT_EQ(ex::parse(s).kind, K::Other) << s;
}

TEST(ExabgpMessages, RoundTripOfOurOwnCommandsIsNotAnEvent)
{
    // ExaBGP never echoes commands, but a confused relay must not turn one into an event.
    EXPECT_EQ(ex::parse("neighbor 198.18.0.1 announce route 198.18.1.100/32 next-hop self").kind,
              ex::Message::Kind::Other);
}
