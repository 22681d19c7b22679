#include "lbctl/lbctl_args.h"

#include <gtest/gtest.h>

using namespace lbctl;
using namespace std::chrono_literals;
using Kind = Invocation::Kind;

namespace {

Invocation parse(std::vector<std::string> args, const char* env = nullptr)
{
    return parse_args(args, env, "9.8.7");
}

// The request lbctl would send, as the line it sends (without the '\n').
std::string request(std::vector<std::string> args)
{
    const Invocation inv = parse(std::move(args));
    EXPECT_EQ(inv.kind, Kind::Request) << inv.text;
    EXPECT_EQ(inv.exit_code, kExitOk);
    return inv.request.dump();
}

void expect_usage_error(std::vector<std::string> args, const std::string& contains)
{
    std::string joined;
    for (const auto& a : args)
        joined += a + " ";
    const Invocation inv = parse(std::move(args));
    EXPECT_EQ(inv.kind, Kind::UsageError) << joined;
    EXPECT_EQ(inv.exit_code, kExitUsage) << joined;
    EXPECT_EQ(inv.text.rfind("lbctl: ", 0), 0u) << joined << inv.text;
    EXPECT_NE(inv.text.find(contains), std::string::npos) << joined << "\n" << inv.text;
    EXPECT_EQ(inv.text.back(), '\n');
}

}  // namespace

TEST(LbctlArgs, EveryCommandMakesItsRequest)
{
    EXPECT_EQ(request({"status"}), R"({"cmd":"status"})");
    EXPECT_EQ(request({"reload"}), R"({"cmd":"reload"})");
    EXPECT_EQ(request({"lb", "list"}), R"({"cmd":"lb.list"})");
    EXPECT_EQ(request({"lb", "show", "web"}), R"({"cmd":"lb.show","name":"web"})");
    EXPECT_EQ(request({"lb", "create", "--name", "web", "--vip", "198.18.1.100:80", "--protocol", "tcp",
                       "--algorithm", "maglev", "--backends", "198.18.2.10:80,198.18.2.11:80:3"}),
              R"({"cmd":"lb.create","name":"web","vip":"198.18.1.100:80","protocol":"tcp","algorithm":"maglev",)"
              R"("backends":["198.18.2.10:80","198.18.2.11:80:3"]})");
    EXPECT_EQ(request({"lb", "add-backend", "web", "--backend", "198.18.2.12:80:2"}),
              R"({"cmd":"lb.add-backend","name":"web","backend":"198.18.2.12:80:2"})");
    EXPECT_EQ(request({"lb", "set-weight", "web", "--backend", "198.18.2.12", "--weight", "0"}),
              R"({"cmd":"lb.set-weight","name":"web","backend":"198.18.2.12","weight":0})");
    EXPECT_EQ(request({"lb", "remove-backend", "web", "--backend", "198.18.2.10:80"}),
              R"({"cmd":"lb.remove-backend","name":"web","backend":"198.18.2.10:80","force":false})");
    EXPECT_EQ(request({"lb", "remove-backend", "web", "--backend", "198.18.2.10:80", "--force"}),
              R"({"cmd":"lb.remove-backend","name":"web","backend":"198.18.2.10:80","force":true})");
    EXPECT_EQ(request({"lb", "delete", "web"}), R"({"cmd":"lb.delete","name":"web"})");
}

TEST(LbctlArgs, CreateLeavesDefaultsToLbd)
{
    // Protocol and algorithm are sent only when given; backends always (may be empty).
    EXPECT_EQ(request({"lb", "create", "--name", "web", "--vip", "198.18.1.100:80"}),
              R"({"cmd":"lb.create","name":"web","vip":"198.18.1.100:80","backends":[]})");
    EXPECT_EQ(request({"lb", "create", "--vip=198.18.1.100:53", "--name=dns", "--protocol=udp", "--backends="}),
              R"({"cmd":"lb.create","name":"dns","vip":"198.18.1.100:53","protocol":"udp","backends":[]})");
    EXPECT_EQ(request({"lb", "create", "--name", "w", "--vip", "v", "--backends", ""}),
              R"({"cmd":"lb.create","name":"w","vip":"v","backends":[]})");
}

TEST(LbctlArgs, BackendsKeepIpv6BracketsAndWeights)
{
    EXPECT_EQ(request({"lb", "create", "--name", "web6", "--vip", "[2001:db8::1]:80", "--backends",
                       "[2001:db8::2]:80:3, [2001:db8::3]:80 ,2001:db8::4"}),
              R"({"cmd":"lb.create","name":"web6","vip":"[2001:db8::1]:80",)"
              R"("backends":["[2001:db8::2]:80:3","[2001:db8::3]:80","2001:db8::4"]})");
}

TEST(LbctlArgs, AddressesAreNotCheckedHere)
{
    // lbd owns the address rules; lbctl passes whatever it is given.
    EXPECT_EQ(request({"lb", "create", "--name", "x", "--vip", "1.2.3", "--protocol", "sctp", "--algorithm", "rr",
                       "--backends", "nonsense:99999:abc"}),
              R"({"cmd":"lb.create","name":"x","vip":"1.2.3","protocol":"sctp","algorithm":"rr",)"
              R"("backends":["nonsense:99999:abc"]})");
    EXPECT_EQ(request({"lb", "add-backend", "web", "--backend", "[::1"}),
              R"({"cmd":"lb.add-backend","name":"web","backend":"[::1"})");
}

TEST(LbctlArgs, SplitBackends)
{
    using V = std::vector<std::string>;
    EXPECT_EQ(split_backends(""), V{});
    EXPECT_EQ(split_backends("  "), V{});
    EXPECT_EQ(split_backends("a"), V{"a"});
    EXPECT_EQ(split_backends(" a , b "), (V{"a", "b"}));
    EXPECT_EQ(split_backends("[2001:db8::2]:80:3,198.18.2.11:80"), (V{"[2001:db8::2]:80:3", "198.18.2.11:80"}));
    for (const char* bad : {",", "a,", ",a", "a,,b", "a, ,b"})
        EXPECT_FALSE(split_backends(bad)) << bad;
    expect_usage_error({"lb", "create", "--name", "w", "--vip", "1.1.1.1:80", "--backends", "a,,b"}, "--backends");
}

TEST(LbctlArgs, Weight)
{
    EXPECT_EQ(parse_weight("0"), 0u);
    EXPECT_EQ(parse_weight("3"), 3u);
    EXPECT_EQ(parse_weight("65535"), 65535u);
    EXPECT_EQ(parse_weight("70000"), 70000u);  // lbd says what is too big
    for (const char* bad : {"", "x", "-1", "+1", "1.5", "1e3", " 1", "1 ", "0x10", "99999999999999999999999"})
        EXPECT_FALSE(parse_weight(bad)) << bad;
    expect_usage_error({"lb", "set-weight", "web", "--backend", "198.18.2.12", "--weight", "heavy"},
                       "--weight: 'heavy' is not a non-negative integer");
    expect_usage_error({"lb", "set-weight", "web", "--backend", "198.18.2.12", "--weight", "-1"}, "--weight");
}

TEST(LbctlArgs, Timeout)
{
    EXPECT_EQ(parse_timeout("10"), 10s);
    EXPECT_EQ(parse_timeout("500ms"), 500ms);
    EXPECT_EQ(parse_timeout("30s"), 30s);
    EXPECT_EQ(parse_timeout("2m"), 2min);
    for (const char* bad : {"", "0", "0s", "-1", "1.5", "1.5s", "s", "10 s", "99999999999999999999"})
        EXPECT_FALSE(parse_timeout(bad)) << bad;

    EXPECT_EQ(parse({"status"}).options.timeout, 10s);
    EXPECT_EQ(parse({"--timeout", "3s", "status"}).options.timeout, 3s);
    EXPECT_EQ(parse({"status", "--timeout=250ms"}).options.timeout, 250ms);
    expect_usage_error({"--timeout", "soon", "status"}, "--timeout: 'soon' is not a positive duration");
}

TEST(LbctlArgs, SocketComesFromFlagThenEnvThenDefault)
{
    EXPECT_EQ(parse({"status"}).options.socket, "/run/lbd/lbd.sock");
    EXPECT_EQ(parse({"status"}, "").options.socket, "/run/lbd/lbd.sock");
    EXPECT_EQ(parse({"status"}, "/tmp/env.sock").options.socket, "/tmp/env.sock");
    EXPECT_EQ(parse({"--socket", "/tmp/flag.sock", "status"}, "/tmp/env.sock").options.socket, "/tmp/flag.sock");
    EXPECT_EQ(parse({"lb", "list", "--socket=/tmp/late.sock"}).options.socket, "/tmp/late.sock");
    expect_usage_error({"--socket", "", "status"}, "--socket");
}

TEST(LbctlArgs, GlobalFlagsGoBeforeOrAfterTheCommand)
{
    EXPECT_FALSE(parse({"lb", "list"}).options.json);
    EXPECT_TRUE(parse({"--json", "lb", "list"}).options.json);
    EXPECT_TRUE(parse({"lb", "--json", "list"}).options.json);
    EXPECT_TRUE(parse({"lb", "show", "web", "--json"}).options.json);
    const Invocation inv = parse({"lb", "show", "--json", "--socket", "/s", "web", "--timeout", "1s"});
    ASSERT_EQ(inv.kind, Kind::Request) << inv.text;
    EXPECT_EQ(inv.request.dump(), R"({"cmd":"lb.show","name":"web"})");
    EXPECT_TRUE(inv.options.json);
    EXPECT_EQ(inv.options.socket, "/s");
    EXPECT_EQ(inv.options.timeout, 1s);
}

TEST(LbctlArgs, SetHealthBgpAndMaintenanceRequests)
{
    auto inv = parse({"lb", "set-health", "web", "--type", "http", "--path", "/healthz",
                                  "--expect-status", "200-399", "--interval", "5s", "--timeout", "2s",
                                  "--unhealthy-threshold", "3", "--healthy-threshold", "2"});
    ASSERT_EQ(inv.request.value("cmd", ""), "lb.set-health") << inv.text;
    EXPECT_EQ(inv.request.value("path", ""), "/healthz");
    EXPECT_EQ(inv.request.value("expect_status", ""), "200-399");
    EXPECT_EQ(inv.request.value("interval", ""), "5s");
    EXPECT_EQ(inv.request.value("unhealthy_threshold", 0), 3);
    EXPECT_FALSE(inv.request.contains("host")) << "options not given are not sent";
    EXPECT_FALSE(inv.request.contains("half_open"));
    auto ho = parse({"lb", "set-health", "web", "--type", "tcp", "--half-open", "true"});
    EXPECT_EQ(ho.request.value("half_open", false), true) << ho.text;
    EXPECT_EQ(parse({"lb", "set-health", "web", "--half-open", "false"}).request.value("half_open", true), false);
    EXPECT_EQ(parse({"bgp", "status"}).request.value("cmd", ""), "bgp.status");
    auto on = parse({"maintenance", "on"}).request;
    EXPECT_EQ(on.value("cmd", ""), "maintenance");
    EXPECT_EQ(on.value("on", false), true);
    EXPECT_EQ(parse({"maintenance", "off"}).request.value("on", true), false);
}

TEST(LbctlArgs, UsageErrors)
{
    expect_usage_error({"frob"}, "unknown command 'frob'");
    expect_usage_error({"lb", "frob"}, "unknown command 'frob'");
    expect_usage_error({"lb"}, "needs a command: list, show, create, add-backend, set-health, set-weight, remove-backend, delete");
    expect_usage_error({"lb", "show"}, "NAME is required");
    expect_usage_error({"lb", "delete"}, "NAME is required");
    expect_usage_error({"lb", "show", "a", "b"}, "b");
    expect_usage_error({"lb", "list", "extra"}, "extra");
    expect_usage_error({"lb", "create", "--vip", "198.18.1.100:80"}, "--name is required");
    expect_usage_error({"lb", "create", "--name", "web"}, "--vip is required");
    expect_usage_error({"lb", "create", "--name", "a", "--name", "b", "--vip", "1.1.1.1:80"}, "--name");
    expect_usage_error({"lb", "add-backend", "web"}, "--backend is required");
    expect_usage_error({"lb", "set-weight", "web", "--backend", "198.18.2.12"}, "--weight is required");
    expect_usage_error({"lb", "set-weight", "web", "--weight", "1"}, "--backend is required");
    expect_usage_error({"lb", "remove-backend", "web"}, "--backend is required");
    expect_usage_error({"lb", "remove-backend", "web", "--backend", "a", "--force=maybe"}, "maybe");
    expect_usage_error({"status", "--bogus"}, "--bogus");
    expect_usage_error({"lb", "show", "web\xff"}, "UTF-8");
    // The hint names the command the user was at.
    EXPECT_NE(parse({"lb", "create", "--name", "web"}).text.find("Run 'lbctl lb create --help' for usage."),
              std::string::npos);
}

TEST(LbctlArgs, NoArgumentsPrintsHelpAsUsageError)
{
    const Invocation inv = parse({});
    EXPECT_EQ(inv.kind, Kind::UsageError);
    EXPECT_EQ(inv.exit_code, kExitUsage);
    EXPECT_NE(inv.text.find("Usage: lbctl"), std::string::npos);
}

TEST(LbctlArgs, Version)
{
    for (auto args : {std::vector<std::string>{"--version"}, std::vector<std::string>{"lb", "--version"}}) {
        const Invocation inv = parse(args);
        EXPECT_EQ(inv.kind, Kind::Print);
        EXPECT_EQ(inv.exit_code, kExitOk);
        EXPECT_EQ(inv.text, "lbctl 9.8.7\n");
    }
}

TEST(LbctlArgs, EveryCommandHasItsOwnHelp)
{
    struct Case {
        std::vector<std::string> args;
        std::vector<std::string> mentions;
    };
    const std::vector<Case> cases{
        {{"--help"}, {"Usage: lbctl", "status", "reload", "lb", "--socket", "--json", "--timeout", "--version",
                      "LBD_SOCKET", "/run/lbd/lbd.sock", "Exit codes"}},
        {{"-h"}, {"Usage: lbctl"}},
        {{"status", "--help"}, {"Usage: lbctl status", "uptime", "XDP mode", "config file", "pin path"}},
        {{"reload", "--help"}, {"Usage: lbctl reload", "SIGHUP", "nothing changes"}},
        {{"lb", "--help"}, {"Usage: lbctl lb", "list", "show", "create", "add-backend", "set-weight",
                            "remove-backend", "delete"}},
        {{"lb", "list", "--help"}, {"Usage: lbctl lb list", "healthy", "config+lbctl"}},
        {{"lb", "show", "--help"}, {"Usage: lbctl lb show", "NAME", "active flows", "packets", "bytes"}},
        {{"lb", "create", "--help"}, {"Usage: lbctl lb create", "--name", "--vip", "--protocol", "--algorithm",
                                      "--backends", "[ADDRESS]:PORT", "WEIGHT"}},
        {{"lb", "add-backend", "--help"}, {"Usage: lbctl lb add-backend", "NAME", "--backend", "WEIGHT"}},
        {{"lb", "set-weight", "--help"}, {"Usage: lbctl lb set-weight", "--backend", "--weight", "drains"}},
        {{"lb", "remove-backend", "--help"}, {"Usage: lbctl lb remove-backend", "--backend", "--force", "finish", "re-scheduled"}},
        {{"lb", "delete", "--help"}, {"Usage: lbctl lb delete", "NAME"}},
        {{"lb", "set-health", "--help"}, {"Usage: lbctl lb set-health", "--type", "--interval", "--timeout",
                                          "--unhealthy-threshold", "--healthy-threshold", "none"}},
        {{"bgp", "status", "--help"}, {"Usage: lbctl bgp status", "neighbor", "announced"}},
        {{"maintenance", "--help"}, {"Usage: lbctl maintenance", "on", "off", "withdrawn"}},
        // --help wins over missing required options.
        {{"lb", "create", "--name", "web", "--help"}, {"Usage: lbctl lb create"}},
    };
    for (const auto& c : cases) {
        const Invocation inv = parse(c.args);
        EXPECT_EQ(inv.kind, Kind::Print) << c.args.front();
        EXPECT_EQ(inv.exit_code, kExitOk);
        for (const auto& m : c.mentions)
            EXPECT_NE(inv.text.find(m), std::string::npos) << "help of " << c.args.front() << " "
                                                            << (c.args.size() > 1 ? c.args[1] : "") << " lacks " << m
                                                            << "\n"
                                                            << inv.text;
    }
}
