// `via: tunnel` health checks, the pure side: the mark range in the config,
// mark allocation per backend (ProbeMarks), the targets lbd builds for the
// checker, live changes through lb.set-health, and lbctl's --via. The kernel
// side (bpf/hc_tunnel.bpf.c) is tests/bpf/test_hc_tunnel.cpp and
// tests/integration/test_health_tunnel.sh.
#include <gtest/gtest.h>

#include "config_test_util.h"

#include <algorithm>

#include "health/http.h"
#include "lbctl/lbctl_args.h"
#include "lbctl/lbctl_format.h"
#include "lbd/core/config.h"
#include "lbd/core/controller.h"
#include "lbd/core/health_targets.h"
#include "lbd/core/lb_state.h"
#include "lbd/core/overrides.h"
#include "lbd/core/reload.h"

using namespace lbd;

namespace {

using lbd::testing::config_of;
using lbd::testing::dump;
using lbd::testing::errors_of;

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

const std::string kDatapath = "datapath:\n  interfaces: [eth0]\n";  // lines 1-2

/// One VIP (lines 3-8 after kDatapath; health on line 7) with `health` as its health section.
std::string vip_yaml(const std::string& health, const std::string& address = "198.18.1.100",
                     const std::string& backends = "[{address: 198.18.2.10}, {address: 198.18.2.11}]")
{
    return "vips:\n  - name: web\n    address: " + address + "\n    port: 80\n    health: " + health +
           "\n    backends: " + backends + "\n";
}

bool has_error(const std::vector<ConfigError>& errors, const std::string& key, const std::string& fragment)
{
    return std::any_of(errors.begin(), errors.end(), [&](const ConfigError& e) {
        return e.key == key && e.message.find(fragment) != std::string::npos;
    });
}

}  // namespace

// ------------------------------------------------------------------ config

TEST(TunnelConfig, ViaTunnelLoads)
{
    auto cfg = config_of(kDatapath + vip_yaml("{type: http, via: tunnel, path: /healthz}"));
    ASSERT_EQ(cfg.vips.size(), 1u);
    ASSERT_TRUE(cfg.vips[0].health);
    EXPECT_EQ(cfg.vips[0].health->via, health::Via::Tunnel);
    EXPECT_EQ(cfg.datapath.probe_marks, (MarkRange{0x4c420000, 0xffff0000})) << "the documented default";
}

TEST(TunnelConfig, MarkRangeParses)
{
    EXPECT_EQ(MarkRange::parse("0x4c420000/0xffff0000"), (MarkRange{0x4c420000, 0xffff0000}));
    EXPECT_EQ(MarkRange::parse("256/4294967040"), (MarkRange{256, 0xffffff00}));
    EXPECT_EQ(MarkRange::parse("0X10000/0XFFFF0000"), (MarkRange{0x10000, 0xffff0000}));
    for (const char* bad : {"", "0x10", "0x10/", "/0xff", "0x/0xff", "0x1g/0xff", "1/2/3", "0x100000000/0xff",
                            " 1/2", "-1/2"})
        EXPECT_FALSE(MarkRange::parse(bad)) << bad;
    EXPECT_EQ((MarkRange{0x4c420000, 0xffff0000}).str(), "0x4c420000/0xffff0000");

    const MarkRange r{0x7c000000, 0xfffffff0};
    EXPECT_EQ(r.capacity(), 15u);
    EXPECT_EQ(r.mark(1), 0x7c000001u);
    EXPECT_EQ(r.mark(15), 0x7c00000fu);
    EXPECT_EQ(r.problem(), "");
    EXPECT_NE((MarkRange{0x10000, 0xff00ff00}).problem().find("leading ones then zeros"), std::string::npos);
    EXPECT_NE((MarkRange{0x10000, 0xffffffff}).problem().find("no bit free"), std::string::npos);
    EXPECT_NE((MarkRange{0x10001, 0xffff0000}).problem().find("bits outside the mask"), std::string::npos);
    EXPECT_NE((MarkRange{0, 0xffff0000}).problem().find("must not be 0"), std::string::npos);
}

TEST(TunnelConfig, ProbeMarksKey)
{
    auto cfg = config_of(kDatapath + "  probe_marks: 0x7c000000/0xfffff000\n");
    EXPECT_EQ(cfg.datapath.probe_marks, (MarkRange{0x7c000000, 0xfffff000}));

    auto bad = errors_of(kDatapath + "  probe_marks: lots\n");
    ASSERT_EQ(bad.size(), 1u) << dump(bad);
    EXPECT_EQ(bad[0].str(), "3: datapath.probe_marks: 'lots' is not VALUE/MASK (such as 0x4c420000/0xffff0000)");
    auto gaps = errors_of(kDatapath + "  probe_marks: 0x10000/0xff00ff00\n");
    ASSERT_EQ(gaps.size(), 1u) << dump(gaps);
    EXPECT_EQ(gaps[0].str(), "3: datapath.probe_marks: '0x00010000/0xff00ff00': the mask must be leading ones "
                             "then zeros (such as 0xffff0000), not 0xff00ff00");
    EXPECT_TRUE(has_error(errors_of(kDatapath + "  probe_marks: 0/0xffff0000\n"), "datapath.probe_marks",
                          "must not be 0"));
    EXPECT_TRUE(has_error(errors_of(kDatapath + "  probe_marks: [1]\n"), "datapath.probe_marks", "must be"));
}

TEST(TunnelConfig, EveryTunnelledBackendNeedsAMark)
{
    // 3 marks; 4 distinct backends probed via tunnel (198.18.2.10 in both VIPs counts once).
    const std::string yaml = kDatapath + "  probe_marks: 0x7c000000/0xfffffffc\n" +
                             "vips:\n"
                             "  - {name: a, address: 198.18.1.1, port: 80, health: {via: tunnel},\n"
                             "     backends: [{address: 198.18.2.10}, {address: 198.18.2.11}]}\n"
                             "  - {name: b, address: 198.18.1.2, port: 80, health: {via: tunnel},\n"
                             "     backends: [{address: 198.18.2.10}, {address: 198.18.2.12}, "
                             "{address: 198.18.2.13}]}\n";
    auto errors = errors_of(yaml);
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_EQ(errors[0].str(), "3: datapath.probe_marks: 4 backends are probed via tunnel, but "
                               "0x7c000000/0xfffffffc holds 3 marks (one per backend)");
    // The same backends probed directly need no mark.
    std::string direct = yaml;
    for (size_t p; (p = direct.find("via: tunnel")) != std::string::npos;)
        direct.replace(p, 11, "via: direct");
    EXPECT_TRUE(errors_of(direct).empty()) << dump(errors_of(direct));
}

TEST(TunnelConfig, ExecCannotGoThroughTheTunnel)
{
    auto errors = errors_of(kDatapath + vip_yaml("{type: exec, command: [/bin/true], via: tunnel}"));
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_EQ(errors[0].key, "vips[0].health.via");
    EXPECT_EQ(errors[0].line, 7);
    EXPECT_NE(errors[0].message.find("tunnel does not apply to type exec"), std::string::npos);
}

TEST(TunnelConfig, MarkRangeNeedsARestart)
{
    DatapathConfig a, b;
    EXPECT_TRUE(restart_only_changes(a, b).empty());
    b.probe_marks = {0x7c000000, 0xffffff00};
    EXPECT_EQ(restart_only_changes(a, b), std::vector<std::string>{"datapath.probe_marks"});
}

TEST(TunnelConfig, ViaSurvivesTheStateFile)
{
    auto cfg = config_of(kDatapath + vip_yaml("{type: tcp, via: tunnel}"));
    ASSERT_EQ(cfg.vips.size(), 1u);
    const auto back = vip_from_json(to_json(cfg.vips[0]));
    ASSERT_TRUE(back.health);
    EXPECT_EQ(back.health->via, health::Via::Tunnel);
}

// ------------------------------------------------------------- ProbeMarks

TEST(ProbeMarks, EachBackendKeepsItsMark)
{
    ProbeMarks m({0x7c000000, 0xffffff00});
    auto c = m.assign({ip("198.18.2.10"), ip("198.18.2.11")});
    EXPECT_TRUE(c.remove.empty());
    ASSERT_EQ(c.put.size(), 2u);
    EXPECT_EQ(m.mark_of(ip("198.18.2.10")), 0x7c000001u);
    EXPECT_EQ(m.mark_of(ip("198.18.2.11")), 0x7c000002u);

    // Unchanged set: nothing to write.
    EXPECT_TRUE(m.assign({ip("198.18.2.10"), ip("198.18.2.11")}).empty());

    // A new backend in front (in address order) does not move the others.
    c = m.assign({ip("198.18.2.9"), ip("198.18.2.10"), ip("198.18.2.11")});
    ASSERT_EQ(c.put.size(), 1u);
    EXPECT_EQ(c.put[0], (std::pair<uint32_t, IpAddr>{0x7c000003u, ip("198.18.2.9")}));
    EXPECT_EQ(m.mark_of(ip("198.18.2.10")), 0x7c000001u);
    EXPECT_EQ(m.mark_of(ip("198.18.2.11")), 0x7c000002u);

    // Removed: its mark is freed, and not given again at once.
    c = m.assign({ip("198.18.2.9"), ip("198.18.2.11")});
    EXPECT_TRUE(c.put.empty());
    EXPECT_EQ(c.remove, std::vector<uint32_t>{0x7c000001u});
    EXPECT_FALSE(m.mark_of(ip("198.18.2.10")));
    c = m.assign({ip("198.18.2.9"), ip("198.18.2.11"), ip("fd00:1b::10")});
    ASSERT_EQ(c.put.size(), 1u);
    EXPECT_EQ(c.put[0].first, 0x7c000004u) << "the next after the last given, not the one just freed";
}

TEST(ProbeMarks, WrapsRoundTheRangeSkippingMarksInUse)
{
    ProbeMarks m({0x7c000000, 0xfffffffc});  // marks 1..3
    m.assign({ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")});
    m.assign({ip("10.0.0.1"), ip("10.0.0.3")});  // frees 2
    auto c = m.assign({ip("10.0.0.1"), ip("10.0.0.3"), ip("10.0.0.4")});
    ASSERT_EQ(c.put.size(), 1u);
    EXPECT_EQ(c.put[0].first, 0x7c000002u) << "after 3 comes 1 (in use), then 2";
    EXPECT_EQ(m.marks().size(), 3u);
}

TEST(ProbeMarks, TooManyBackendsChangeNothing)
{
    ProbeMarks m({0x7c000000, 0xfffffffe});  // one mark
    m.assign({ip("10.0.0.1")});
    EXPECT_THROW(m.assign({ip("10.0.0.1"), ip("10.0.0.2")}), std::length_error);
    EXPECT_EQ(m.mark_of(ip("10.0.0.1")), 0x7c000001u);
    EXPECT_EQ(m.marks().size(), 1u);
}

// ---------------------------------------------------------- health_targets

TEST(HealthTargets, TunnelTargetsProbeTheVipWithTheirBackendsMark)
{
    auto cfg = config_of(kDatapath + "vips:\n"
                                     "  - {name: web, address: 198.18.1.100, port: 80, health: {type: http, via: "
                                     "tunnel, port: 8080}, backends: [{address: 198.18.2.10}, {address: "
                                     "198.18.2.11, health_port: 9000}]}\n"
                                     "  - {name: dns, address: 198.18.1.100, port: 53, protocol: udp, health: "
                                     "{type: udp}, backends: [{address: 198.18.2.10}]}\n"
                                     "  - {name: v6, address: 'fd00:1b:1::100', port: 443, health: {type: tcp, "
                                     "via: tunnel}, backends: [{address: 'fd00:1b:2::10'}]}\n"
                                     "  - {name: plain, address: 198.18.1.101, port: 80, backends: [{address: "
                                     "198.18.2.10}]}\n");
    ASSERT_EQ(cfg.vips.size(), 4u);
    const auto backends = tunnel_backends(cfg.vips);
    EXPECT_EQ(backends, (std::set<IpAddr>{ip("198.18.2.10"), ip("198.18.2.11"), ip("fd00:1b:2::10")}));
    ProbeMarks marks(cfg.datapath.probe_marks);
    marks.assign(backends);

    const auto targets = health_targets(cfg.vips, marks);
    ASSERT_EQ(targets.size(), 4u) << "a VIP without health has no targets";
    const auto& web0 = targets[0];
    EXPECT_EQ(web0.vip, "web");
    EXPECT_EQ(web0.address, ip("198.18.2.10")) << "the state stays the backend's";
    EXPECT_EQ(web0.tunnel_to, ip("198.18.1.100"));
    EXPECT_EQ(web0.probe_address(), ip("198.18.1.100"));
    EXPECT_EQ(web0.mark, marks.mark_of(ip("198.18.2.10")));
    EXPECT_EQ(web0.probe_port(), 8080) << "the check's port, on the VIP";
    EXPECT_EQ(web0.endpoint(), "198.18.2.10:8080") << "logs name the backend";
    EXPECT_EQ(health::http_host(web0, false), "198.18.1.100:8080") << "the default Host is what is probed";
    EXPECT_EQ(targets[1].port, 9000);
    EXPECT_EQ(targets[1].mark, marks.mark_of(ip("198.18.2.11")));
    EXPECT_NE(targets[1].mark, web0.mark);

    const auto& dns = targets[2];
    EXPECT_EQ(dns.vip, "dns");
    EXPECT_FALSE(dns.tunnel_to) << "direct";
    EXPECT_FALSE(dns.mark);
    EXPECT_EQ(dns.probe_address(), ip("198.18.2.10"));

    const auto& v6 = targets[3];
    EXPECT_EQ(v6.tunnel_to, ip("fd00:1b:1::100"));
    EXPECT_EQ(v6.mark, marks.mark_of(ip("fd00:1b:2::10")));
    EXPECT_EQ(v6.probe_port(), 443);
}

TEST(HealthTargets, HostSetInTheConfigStays)
{
    auto cfg = config_of(kDatapath + vip_yaml("{type: http, via: tunnel, host: www.example.org}"));
    ProbeMarks marks(cfg.datapath.probe_marks);
    marks.assign(tunnel_backends(cfg.vips));
    const auto targets = health_targets(cfg.vips, marks);
    ASSERT_EQ(targets.size(), 2u);
    EXPECT_EQ(health::http_host(targets[0], false), "www.example.org");
    EXPECT_NE(health::http_request(targets[0], false).find("Host: www.example.org\r\n"), std::string::npos);
}

// ---------------------------------------------------------- lb.set-health

namespace {

struct NoStats : StatsSource {
    lbd_stats vip_stats(uint32_t) const override { return {}; }
    lbd_stats backend_stats(uint32_t) const override { return {}; }
    std::map<uint32_t, uint64_t> active_flows() const override { return {}; }
    std::map<uint32_t, int64_t> least_conn_active(const std::vector<uint32_t>&) const override { return {}; }
};

struct SetHealthTest : ::testing::Test {
    static constexpr uint32_t kRing = 1021;
    Config cfg = [] {
        Config c;
        c.datapath.interfaces = {"eth0"};
        c.datapath.probe_marks = {0x7c000000, 0xfffffffc};  // 3 marks
        return c;
    }();
    Overrides ov;
    MemMapWriter w{kRing};
    LbState st{w, kRing, 8, 16};
    NoStats stats;
    int refreshed = 0;
    Controller ctl{cfg, ov, st, stats, [this] {
                       Controller::Hooks h;
                       h.persist = [] {};
                       h.status = [] { return nlohmann::json::object(); };
                       h.reload = [] { return nlohmann::json::object(); };
                       h.applied = [this] { refreshed++; };
                       return h;
                   }()};

    void SetUp() override
    {
        auto r = ctl.handle({{"cmd", "lb.create"}, {"name", "x"}, {"vip", "198.18.1.9:80"},
                             {"backends", {"10.0.0.1", "10.0.0.2"}}});
        ASSERT_TRUE(r.value("ok", false)) << r.dump();
    }
    nlohmann::json set_health(nlohmann::json args)
    {
        args["cmd"] = "lb.set-health";
        args["name"] = "x";
        return ctl.handle(args);
    }
};

}  // namespace

TEST_F(SetHealthTest, ViaChangesLiveAndIsKept)
{
    auto r = set_health({{"type", "http"}, {"via", "tunnel"}});
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
    ASSERT_TRUE(ov.vips.at("x").health);
    EXPECT_EQ(ov.vips.at("x").health->via, health::Via::Tunnel);
    const int after_tunnel = refreshed;
    EXPECT_GT(after_tunnel, 0) << "the daemon's hook rebuilds the targets (and the tunnel's map)";

    // Other options keep via; via: direct turns it back.
    ASSERT_TRUE(set_health({{"interval", "5s"}}).value("ok", false));
    EXPECT_EQ(ov.vips.at("x").health->via, health::Via::Tunnel);
    ASSERT_TRUE(set_health({{"via", "direct"}}).value("ok", false));
    EXPECT_EQ(ov.vips.at("x").health->via, health::Via::Direct);
}

TEST_F(SetHealthTest, BadViaRefusedAndNothingChanges)
{
    ASSERT_TRUE(set_health({{"type", "tcp"}}).value("ok", false));
    const auto before = to_json(ov);
    const std::vector<std::pair<nlohmann::json, std::string>> cases = {
        {{{"via", "gre"}}, "'via' must be direct or tunnel"},
        {{{"via", 1}}, "'via' must be direct or tunnel"},
        {{{"type", "exec"}, {"command", {"/bin/true"}}, {"via", "tunnel"}},
         "vip x: health.via: tunnel does not apply to type exec"},
    };
    for (const auto& [args, want] : cases) {
        const auto r = set_health(args);
        EXPECT_FALSE(r.value("ok", true)) << args.dump();
        EXPECT_NE(r.value("error", std::string()).find(want), std::string::npos) << args.dump() << " -> "
                                                                                 << r.dump();
        EXPECT_EQ(to_json(ov), before) << "a refused change changes nothing";
    }
}

TEST_F(SetHealthTest, MoreTunnelledBackendsThanMarksRefused)
{
    ASSERT_TRUE(set_health({{"via", "tunnel"}}).value("ok", false));
    ASSERT_TRUE(ctl.handle({{"cmd", "lb.add-backend"}, {"name", "x"}, {"backend", "10.0.0.3"}}).value("ok", false));
    const auto r = ctl.handle({{"cmd", "lb.add-backend"}, {"name", "x"}, {"backend", "10.0.0.4"}});
    EXPECT_FALSE(r.value("ok", true));
    EXPECT_NE(r.value("error", std::string()).find("4 backends are probed via tunnel, but 0x7c000000/0xfffffffc "
                                                   "holds 3 marks"),
              std::string::npos)
        << r.dump();
    EXPECT_EQ(ov.vips.at("x").backends.size(), 3u);
}

// ------------------------------------------------------------------- lbctl

TEST(TunnelLbctl, SetHealthVia)
{
    auto inv = lbctl::parse_args({"lb", "set-health", "web", "--via", "tunnel"}, nullptr, "9.8.7");
    ASSERT_EQ(inv.kind, lbctl::Invocation::Kind::Request) << inv.text;
    EXPECT_EQ(inv.request.dump(), R"({"cmd":"lb.set-health","name":"web","via":"tunnel"})");
    auto help = lbctl::parse_args({"lb", "set-health", "--help"}, nullptr, "9.8.7");
    EXPECT_NE(help.text.find("--via"), std::string::npos) << help.text;
}

TEST(TunnelLbctl, StatusShowsTheTunnel)
{
    const auto r = nlohmann::ordered_json::parse(R"({"ok": true, "vips": 1, "probe_tunnel": {"marks": 2,
        "mark_range": "0x4c420000/0xffff0000", "encap_v4": 12, "encap_v6": 0, "drop_no_target": 1}})");
    const std::string out = lbctl::format_status(r);
    EXPECT_NE(out.find("health tunnel:  2 backends via tunnel (marks 0x4c420000/0xffff0000), encap_v4 12, "
                       "drop_no_target 1\n"),
              std::string::npos)
        << out;
}
