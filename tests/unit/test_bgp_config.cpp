// The bgp: section and a VIP's bgp: key: reading, defaults, and every error
// naming its key and line.
#include "bgp/bgp_config.h"

#include <gtest/gtest.h>

#include "lbd/core/yaml_reader.h"

using namespace lbd;
using namespace lbd::bgp;

namespace {

/// Reads `bgp:` and `vips:` (name, address, bgp) like lbd's loader would.
class Reader : public YamlReader {
public:
    BgpConfig cfg;
    std::vector<VipRoute> vips;

    void load(const std::string& text)
    {
        YAML::Node root = YAML::Load(text);
        lines_.emplace("", line_of(root));
        auto f = fields(root, "", {"bgp", "vips"});
        if (!f)
            return;
        if (auto n = find(*f, "bgp"))
            read_bgp(*this, *n, "bgp", cfg);
        if (auto n = find(*f, "vips"))
            for (size_t i = 0; i < n->size(); ++i) {
                auto path = at("vips", i);
                const auto& v = (*n)[i];
                note_line(path, line_of(v));
                auto& r = vips.emplace_back();
                r.name = v["name"].as<std::string>();
                r.address = *IpAddr::parse(v["address"].as<std::string>());
                if (v["bgp"])
                    read_vip_bgp(*this, v["bgp"], path + ".bgp", r.bgp);
            }
        validate_bgp(*this, cfg, "bgp", vips);
    }
};

const std::string kBase = R"(bgp:
  exabgp: /bin/sh
  local_as: 65001
  router_id: 198.18.0.2
  local_address: 198.18.0.2
  hold_time: 9
  neighbors:
    - address: 198.18.0.1
      peer_as: 65000
  med: 100
  communities: ["65001:100"]
vips:
  - name: web
    address: 198.18.1.100
)";

/// kBase with the line `from` replaced by `to` (which may hold several lines).
std::string with(const std::string& from, const std::string& to)
{
    auto text = kBase;
    auto pos = text.find(from + "\n");
    if (pos == std::string::npos) {
        ADD_FAILURE() << "no line '" << from << "' in the base config";
        return text;
    }
    return text.replace(pos, from.size(), to);
}

/// Without the vips: section (for cases where the VIP would add its own error).
std::string without_vips(const std::string& text)
{
    return text.substr(0, text.find("vips:"));
}

std::string dump(const std::vector<ConfigError>& errors)
{
    std::string out;
    for (const auto& e : errors)
        out += "  " + e.str() + "\n";
    return out;
}

IpAddr ip(const char* s)
{
    return *IpAddr::parse(s);
}

}  // namespace

TEST(BgpConfig, BaseLoads)
{
    Reader r;
    r.load(kBase);
    EXPECT_TRUE(r.errors.empty()) << dump(r.errors);
    EXPECT_TRUE(r.cfg.enabled);
    EXPECT_EQ(r.cfg.local_as, 65001u);
    EXPECT_EQ(r.cfg.router_id, ip("198.18.0.2"));
    ASSERT_EQ(r.cfg.neighbors.size(), 1u);
    EXPECT_EQ(r.cfg.neighbors[0].address, ip("198.18.0.1"));
    EXPECT_EQ(r.cfg.neighbors[0].peer_as, 65000u);
    EXPECT_TRUE(r.cfg.neighbors[0].ipv4);
    EXPECT_FALSE(r.cfg.neighbors[0].ipv6);
    EXPECT_EQ(r.cfg.neighbors[0].line, 8);
}

TEST(BgpConfig, EveryKeyIntoTheModel)
{
    Reader r;
    r.load(R"(bgp:
  exabgp: /bin/sh
  local_as: 4200000001
  router_id: 198.18.0.9
  local_address: 198.18.0.2
  hold_time: 0
  neighbors:
    - address: 198.18.0.1
      peer_as: 65000
      md5_password: "s3cret!x"
      passive: true
      families: [ipv4, ipv6]
    - address: fd00:1b::1
      peer_as: 65000
      local_address: fd00:1b::2
  next_hop: 198.18.0.3
  next_hop_v6: fd00:1b::3
  med: 10
  communities: ["65001:100", "65001:1:2"]
  maintenance_file: /run/lb/disable
  maintenance_action: depref
  maintenance_med: 500
  maintenance_community: "65001:666"
  withdraw_quorum: 2
  hold_down: 0s
  graceful_restart: 120
vips:
  - name: web
    address: 198.18.1.100
    bgp:
      med: 20
      communities: ["65001:7"]
      withdraw_quorum: 0
  - name: web6
    address: fd00:1b:1::100
)");
    ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
    const auto& c = r.cfg;
    EXPECT_EQ(c.local_as, 4200000001u);
    EXPECT_EQ(c.router_id, ip("198.18.0.9"));
    EXPECT_EQ(c.hold_time, 0u);
    ASSERT_EQ(c.neighbors.size(), 2u);
    EXPECT_EQ(c.neighbors[0].md5_password, "s3cret!x");
    EXPECT_TRUE(c.neighbors[0].passive);
    EXPECT_TRUE(c.neighbors[0].ipv4 && c.neighbors[0].ipv6);
    EXPECT_FALSE(c.neighbors[1].ipv4);
    EXPECT_TRUE(c.neighbors[1].ipv6);
    EXPECT_EQ(c.neighbors[1].local_address, ip("fd00:1b::2"));
    EXPECT_EQ(c.next_hop.address, ip("198.18.0.3"));
    EXPECT_EQ(c.next_hop_v6, ip("fd00:1b::3"));
    EXPECT_EQ(c.med, 10u);
    ASSERT_EQ(c.communities.size(), 2u);
    EXPECT_EQ(c.communities[0].str(), "65001:100");
    EXPECT_TRUE(c.communities[1].large);
    EXPECT_EQ(c.communities[1].str(), "65001:1:2");
    EXPECT_EQ(c.maintenance_file, "/run/lb/disable");
    EXPECT_EQ(c.maintenance_action, MaintenanceAction::Depref);
    EXPECT_EQ(c.maintenance_med, 500u);
    EXPECT_EQ(c.maintenance_community->str(), "65001:666");
    EXPECT_EQ(c.withdraw_quorum, 2u);
    EXPECT_EQ(c.hold_down, std::chrono::milliseconds(0));
    EXPECT_EQ(c.graceful_restart, 120u);
    ASSERT_EQ(r.vips.size(), 2u);
    EXPECT_EQ(r.vips[0].bgp.med, 20u);
    ASSERT_TRUE(r.vips[0].bgp.communities);
    EXPECT_EQ((*r.vips[0].bgp.communities)[0].str(), "65001:7");
    EXPECT_EQ(r.vips[0].bgp.withdraw_quorum, 0u);
    EXPECT_EQ(r.vips[1].bgp, VipBgp{});
}

TEST(BgpConfig, Defaults)
{
    Reader r;
    r.load(R"(bgp:
  exabgp: /bin/sh
  local_as: 65001
  local_address: 198.18.0.2
  neighbors:
    - address: 198.18.0.1
      peer_as: 65000
)");
    ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
    const auto& c = r.cfg;
    EXPECT_EQ(c.router_id, ip("198.18.0.2"));  // from local_address
    EXPECT_EQ(c.hold_time, 9u);
    EXPECT_TRUE(c.next_hop.self());
    EXPECT_FALSE(c.next_hop_v6);
    EXPECT_FALSE(c.med);
    EXPECT_TRUE(c.communities.empty());
    EXPECT_EQ(c.maintenance_file, "/etc/lb/disable");
    EXPECT_EQ(c.maintenance_action, MaintenanceAction::Withdraw);
    EXPECT_EQ(c.withdraw_quorum, 1u);
    EXPECT_EQ(c.hold_down, std::chrono::seconds(5));
    EXPECT_FALSE(c.graceful_restart);
    EXPECT_FALSE(c.neighbors[0].passive);
    EXPECT_TRUE(c.neighbors[0].md5_password.empty());
}

TEST(BgpConfig, AbsentSectionIsDisabledAndValid)
{
    BgpConfig cfg;
    EXPECT_FALSE(cfg.enabled);
    EXPECT_TRUE(validate_bgp(cfg, "bgp").empty());
}

struct BadCase {
    const char* name;
    std::string yaml;
    std::string key;
    int line;
    std::string message;  // a part of it
};

class BgpConfigBad : public testing::TestWithParam<BadCase> {};

TEST_P(BgpConfigBad, NamesKeyAndLine)
{
    const auto& c = GetParam();
    Reader r;
    r.load(c.yaml);
    ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
    const auto& e = r.errors[0];
    EXPECT_EQ(e.key, c.key) << e.str();
    EXPECT_EQ(e.line, c.line) << e.str();
    EXPECT_NE(e.message.find(c.message), std::string::npos) << e.str();
}

const std::string kNeighbor = "    - address: 198.18.0.1\n      peer_as: 65000";
const std::string kV6Vip = "  - name: web\n    address: 198.18.1.100\n  - name: web6\n    address: fd00:1b:1::1";

INSTANTIATE_TEST_SUITE_P(
    Table, BgpConfigBad,
    testing::Values(
        BadCase{"neighbors_missing",
                "bgp:\n  exabgp: /bin/sh\n  local_as: 65001\n  local_address: 198.18.0.2\n", "bgp.neighbors", 1,
                "is required"},
        BadCase{"neighbors_empty", with("  neighbors:\n" + kNeighbor, "  neighbors: []"), "bgp.neighbors", 7,
                "at least one neighbor"},
        BadCase{"as_zero", with("  local_as: 65001", "  local_as: 0"), "bgp.local_as", 3, "between 1 and 4294967295"},
        BadCase{"as_too_big", with("  local_as: 65001", "  local_as: 4294967296"), "bgp.local_as", 3,
                "between 1 and 4294967295"},
        BadCase{"as_text", with("  local_as: 65001", "  local_as: AS65001"), "bgp.local_as", 3, "must be an integer"},
        BadCase{"as_negative", with("  local_as: 65001", "  local_as: -1"), "bgp.local_as", 3, "between 1 and"},
        BadCase{"as_trans", with("  local_as: 65001", "  local_as: 23456"), "bgp.local_as", 3, "AS_TRANS"},
        BadCase{"peer_as_zero", with("      peer_as: 65000", "      peer_as: 0"), "bgp.neighbors[0].peer_as", 9,
                "between 1 and"},
        BadCase{"peer_as_missing", with("      peer_as: 65000", "      passive: false"), "bgp.neighbors[0].peer_as",
                8, "is required"},
        BadCase{"router_id_bad", with("  router_id: 198.18.0.2", "  router_id: 198.18.0.256"), "bgp.router_id", 4,
                "not an IP address"},
        BadCase{"router_id_v6", with("  router_id: 198.18.0.2", "  router_id: fd00::1"), "bgp.router_id", 4,
                "must be an IPv4 address"},
        BadCase{"router_id_zero", with("  router_id: 198.18.0.2", "  router_id: 0.0.0.0"), "bgp.router_id", 4,
                "non-zero"},
        BadCase{"local_address_bad", with("  local_address: 198.18.0.2", "  local_address: lb1"),
                "bgp.local_address", 5, "not an IP address"},
        BadCase{"local_address_any", with("  local_address: 198.18.0.2", "  local_address: 0.0.0.0"),
                "bgp.local_address", 5, "cannot be a session address"},
        BadCase{"neighbor_address_bad", with("    - address: 198.18.0.1", "    - address: router1"),
                "bgp.neighbors[0].address", 8, "not an IP address"},
        BadCase{"neighbor_multicast", with("    - address: 198.18.0.1", "    - address: 224.0.0.5"),
                "bgp.neighbors[0].address", 8, "cannot be a neighbor address"},
        BadCase{"neighbor_duplicate", with(kNeighbor, kNeighbor + "\n" + kNeighbor), "bgp.neighbors[1].address", 10,
                "duplicate neighbor"},
        BadCase{"neighbor_is_self", with("    - address: 198.18.0.1", "    - address: 198.18.0.2"),
                "bgp.neighbors[0].address", 8, "local address itself"},
        BadCase{"neighbor_v6_needs_v6_local", without_vips(with("    - address: 198.18.0.1", "    - address: fd00:1b::1")),
                "bgp.neighbors[0].address", 8, "needs an IPv6 local address"},
        BadCase{"neighbor_unknown_key", with("      peer_as: 65000", "      peer_as: 65000\n      ttl: 1"),
                "bgp.neighbors[0].ttl", 10, "unknown key"},
        BadCase{"exabgp_missing", with("  exabgp: /bin/sh", "  exabgp: /nonexistent/exabgp"), "bgp.exabgp", 2,
                "does not exist"},
        BadCase{"exabgp_not_executable", with("  exabgp: /bin/sh", "  exabgp: /etc/passwd"), "bgp.exabgp", 2,
                "not an executable file"},
        BadCase{"exabgp_directory", with("  exabgp: /bin/sh", "  exabgp: /usr/bin"), "bgp.exabgp", 2,
                "not an executable file"},
        BadCase{"exabgp_relative", with("  exabgp: /bin/sh", "  exabgp: exabgp"), "bgp.exabgp", 2, "absolute path"},
        BadCase{"hold_time_1", with("  hold_time: 9", "  hold_time: 1"), "bgp.hold_time", 6, "0 (no keepalives) or"},
        BadCase{"hold_time_2", with("  hold_time: 9", "  hold_time: 2"), "bgp.hold_time", 6, "between 3 and 65535"},
        BadCase{"hold_time_big", with("  hold_time: 9", "  hold_time: 65536"), "bgp.hold_time", 6,
                "between 0 and 65535"},
        BadCase{"community_part_big", with("  communities: [\"65001:100\"]", "  communities: [\"65001:100\", \"70000:1\"]"),
                "bgp.communities[1]", 11, "is not a community"},
        BadCase{"community_four_parts", with("  communities: [\"65001:100\"]", "  communities: [\"1:2:3:4\"]"),
                "bgp.communities[0]", 11, "is not a community"},
        BadCase{"community_text", with("  communities: [\"65001:100\"]", "  communities: [no-export]"),
                "bgp.communities[0]", 11, "is not a community"},
        BadCase{"community_injection", with("  communities: [\"65001:100\"]", "  communities: [\"1:2]; x [\"]"),
                "bgp.communities[0]", 11, "is not a community"},
        BadCase{"large_community_big",
                with("  communities: [\"65001:100\"]", "  communities: [\"65001:1:4294967296\"]"),
                "bgp.communities[0]", 11, "is not a community"},
        BadCase{"communities_not_list", with("  communities: [\"65001:100\"]", "  communities: 65001:100"),
                "bgp.communities", 11, "must be a list"},
        BadCase{"md5_space", with("      peer_as: 65000", "      peer_as: 65000\n      md5_password: \"a b\""),
                "bgp.neighbors[0].md5_password", 10, "letters, digits"},
        BadCase{"md5_semicolon",
                with("      peer_as: 65000", "      peer_as: 65000\n      md5_password: \"x; } neighbor 1.2.3.4 {\""),
                "bgp.neighbors[0].md5_password", 10, "letters, digits"},
        BadCase{"md5_too_long",
                with("      peer_as: 65000", "      peer_as: 65000\n      md5_password: " + std::string(81, 'a')),
                "bgp.neighbors[0].md5_password", 10, "1 to 80"},
        BadCase{"next_hop_word", with("  med: 100", "  med: 100\n  next_hop: peer"), "bgp.next_hop", 11,
                "must be self or an IP address"},
        BadCase{"next_hop_v6_address", with("  med: 100", "  med: 100\n  next_hop: fd00::1"), "bgp.next_hop", 11,
                "must be self or an IPv4 address"},
        BadCase{"next_hop_v6_is_v4", with("  med: 100", "  med: 100\n  next_hop_v6: 198.18.0.2"), "bgp.next_hop_v6",
                11, "must be an IPv6 address"},
        BadCase{"ipv6_over_v4_needs_next_hop_v6",
                with("      peer_as: 65000", "      peer_as: 65000\n      families: [ipv4, ipv6]"),
                "bgp.neighbors[0].families", 10, "set bgp.next_hop_v6"},
        BadCase{"family_unknown", with("      peer_as: 65000", "      peer_as: 65000\n      families: [ipv4, vpnv4]"),
                "bgp.neighbors[0].families[1]", 10, "unknown address family"},
        BadCase{"families_empty", without_vips(with("      peer_as: 65000", "      peer_as: 65000\n      families: []")),
                "bgp.neighbors[0].families", 10, "must list ipv4, ipv6 or both"},
        BadCase{"passive_not_bool", with("      peer_as: 65000", "      peer_as: 65000\n      passive: sometimes"),
                "bgp.neighbors[0].passive", 10, "true or false"},
        BadCase{"maintenance_action", with("  med: 100", "  med: 100\n  maintenance_action: drain"),
                "bgp.maintenance_action", 11, "withdraw or depref"},
        BadCase{"maintenance_med_not_above_med",
                with("  med: 100", "  med: 100\n  maintenance_action: depref\n  maintenance_med: 100"),
                "bgp.maintenance_med", 12, "greater than med"},
        BadCase{"maintenance_community", with("  med: 100", "  med: 100\n  maintenance_community: \"666\""),
                "bgp.maintenance_community", 11, "is not a community"},
        BadCase{"maintenance_file_relative", with("  med: 100", "  med: 100\n  maintenance_file: disable"),
                "bgp.maintenance_file", 11, "absolute path"},
        BadCase{"hold_down", with("  med: 100", "  med: 100\n  hold_down: 5x"), "bgp.hold_down", 11,
                "not a duration"},
        BadCase{"graceful_restart_range", with("  med: 100", "  med: 100\n  graceful_restart: 5000"),
                "bgp.graceful_restart", 11, "between 1 and 4095"},
        BadCase{"unknown_key", with("  med: 100", "  med: 100\n  local_pref: 200"), "bgp.local_pref", 11,
                "unknown key"},
        BadCase{"vip_family_without_neighbor", with("  - name: web\n    address: 198.18.1.100", kV6Vip), "vips[1]",
                15, "no neighbor in bgp.neighbors carries ipv6"},
        BadCase{"vip_bgp_unknown_key", kBase + "    bgp:\n      local_pref: 1\n", "vips[0].bgp.local_pref", 16,
                "unknown key"},
        BadCase{"vip_med_text", kBase + "    bgp:\n      med: low\n", "vips[0].bgp.med", 16, "must be an integer"},
        BadCase{"vip_shared_address_med_differs",
                kBase + "    bgp:\n      med: 5\n  - name: web-tls\n    address: 198.18.1.100\n",
                "vips[1].bgp.med", 17, "VIPs sharing an address share one route"},
        BadCase{"vip_med_above_maintenance_med",
                with("  med: 100", "  med: 100\n  maintenance_action: depref") + "    bgp:\n      med: 1000\n",
                "vips[0].bgp.med", 17, "less than bgp.maintenance_med"}),
    [](const testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(BgpConfig, ManyErrorsAtOnce)
{
    Reader r;
    r.load("bgp:\n  exabgp: /nonexistent\n  local_as: x\n  local_address: y\n  neighbors: []\n");
    EXPECT_EQ(r.errors.size(), 4u) << dump(r.errors);
}

TEST(BgpConfig, SameSessions)
{
    Reader a, b;
    a.load(kBase);
    b.load(with("  med: 100", "  med: 200\n  maintenance_action: depref"));
    ASSERT_TRUE(b.errors.empty()) << dump(b.errors);
    EXPECT_TRUE(a.cfg.same_sessions(b.cfg));
    EXPECT_FALSE(a.cfg == b.cfg);
    Reader c;
    c.load(with("  hold_time: 9", "  hold_time: 30"));
    EXPECT_FALSE(a.cfg.same_sessions(c.cfg));
}

TEST(BgpCommunity, ParseAndPrint)
{
    EXPECT_EQ(Community::parse("65001:100")->str(), "65001:100");
    EXPECT_EQ(Community::parse("0:0")->str(), "0:0");
    EXPECT_EQ(Community::parse("65535:65535")->str(), "65535:65535");
    EXPECT_EQ(Community::parse("4294967295:1:4294967295")->str(), "4294967295:1:4294967295");
    for (const char* bad : {"", ":", "1:", ":1", "1", "65536:1", "1:65536", "+1:2", "-1:2", "1 :2", "1:2:", "1:2:3:4",
                            "0x10:1", "a:b", "1:2]", "99999999999:1:1"})
        EXPECT_FALSE(Community::parse(bad)) << bad;
}

TEST(BgpMd5, AllowedCharacters)
{
    EXPECT_TRUE(valid_md5_password("Abc123!$%&*+-./:<=>?@^_|~"));
    for (const char* bad : {"", "a b", "a;b", "a{b", "a}b", "a#b", "a\"b", "a'b", "a[b", "a,b", "a\\b", "a\nb"})
        EXPECT_FALSE(valid_md5_password(bad)) << bad;
    EXPECT_TRUE(valid_md5_password(std::string(80, 'x')));
    EXPECT_FALSE(valid_md5_password(std::string(81, 'x')));
}

TEST(BgpConfig, HostPrefix)
{
    EXPECT_EQ(host_prefix(ip("198.18.1.100")).str(), "198.18.1.100/32");
    EXPECT_EQ(host_prefix(ip("fd00:1b:1::100")).str(), "fd00:1b:1::100/128");
}
