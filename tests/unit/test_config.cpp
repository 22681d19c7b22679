#include "lbd/core/config.h"

#include "config_test_util.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

using namespace lbd;

namespace {

using lbd::testing::config_of;
using lbd::testing::dump;
using lbd::testing::errors_of;

IpAddr ip(const char* s)
{
    return *IpAddr::parse(s);
}

std::string source_dir()
{
    if (const char* dir = std::getenv("LBD_SOURCE_DIR"))
        return dir;
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().string();
}

// Two lines every case below starts from.
const std::string kDatapath = "datapath:\n  interfaces: [eth0]\n";

}  // namespace

TEST(Config, FullConfigLoadsIntoModel)
{
    auto cfg = config_of(R"(datapath:
  interfaces: [eth0, eth1]
  xdp_mode: native
  conntrack_size: 0x1000
  maglev_ring_size: 131071
  hash_seed: 0x5eed
  pin_path: /sys/fs/bpf/lbd-test
  encap_source_v4: 198.18.0.0/24
  encap_source_v6: fd00:1b::/64
  max_vips: 16
  max_backends: 1024
vips:
  - name: web
    address: 198.18.1.100
    port: 80
    protocol: tcp
    algorithm: maglev
    backends:
      - address: 198.18.2.10
        weight: 3
      - address: 198.18.2.11
        port: 80
        weight: 0
  - name: dns6
    address: fd00:1b::53
    port: 53
    protocol: udp
    backends:
      - address: fd00:1b::10
)");
    const auto& dp = cfg.datapath;
    EXPECT_EQ(dp.interfaces, (std::vector<std::string>{"eth0", "eth1"}));
    EXPECT_EQ(dp.xdp_mode, XdpMode::Native);
    EXPECT_EQ(dp.conntrack_size, 4096u);
    EXPECT_EQ(dp.maglev_ring_size, 131071u);
    EXPECT_EQ(dp.hash_seed, 0x5eedu);
    EXPECT_EQ(dp.pin_path, "/sys/fs/bpf/lbd-test");
    EXPECT_EQ(dp.encap_source_v4, Prefix::parse("198.18.0.0/24"));
    EXPECT_EQ(dp.encap_source_v6, Prefix::parse("fd00:1b::/64"));
    EXPECT_EQ(dp.max_vips, 16u);
    EXPECT_EQ(dp.max_backends, 1024u);

    ASSERT_EQ(cfg.vips.size(), 2u);
    const auto& web = cfg.vips[0];
    EXPECT_EQ(web.name, "web");
    EXPECT_EQ(web.address, ip("198.18.1.100"));
    EXPECT_EQ(web.port, 80);
    EXPECT_EQ(web.protocol, Protocol::Tcp);
    EXPECT_EQ(web.algorithm, Algorithm::Maglev);
    EXPECT_EQ(web.line, 13);
    ASSERT_EQ(web.backends.size(), 2u);
    EXPECT_EQ(web.backends[0].address, ip("198.18.2.10"));
    EXPECT_EQ(web.backends[0].port, 80);
    EXPECT_EQ(web.backends[0].weight, 3u);
    EXPECT_EQ(web.backends[0].line, 19);
    EXPECT_EQ(web.backends[1].weight, 0u);
    EXPECT_EQ(web.backends[1].line, 21);

    const auto& dns = cfg.vips[1];
    EXPECT_EQ(dns.address, ip("fd00:1b::53"));
    EXPECT_EQ(dns.protocol, Protocol::Udp);
    ASSERT_EQ(dns.backends.size(), 1u);
    EXPECT_EQ(dns.backends[0].port, 53);
    EXPECT_EQ(dns.backends[0].weight, 1u);
}

TEST(Config, DefaultsApplied)
{
    auto cfg = config_of(kDatapath + R"(vips:
  - name: web
    address: 198.18.1.100
    port: 443
    backends:
      - address: 198.18.2.10
)");
    const auto& dp = cfg.datapath;
    EXPECT_EQ(dp.xdp_mode, XdpMode::Auto);
    EXPECT_EQ(dp.conntrack_size, 1048576u);
    EXPECT_EQ(dp.maglev_ring_size, 65537u);
    EXPECT_EQ(dp.hash_seed, 0x5eedu);
    EXPECT_EQ(dp.pin_path, "/sys/fs/bpf/lbd");
    EXPECT_FALSE(dp.encap_source_v4);
    EXPECT_FALSE(dp.encap_source_v6);
    EXPECT_EQ(dp.max_vips, 256u);
    EXPECT_EQ(dp.max_backends, 4096u);
    ASSERT_EQ(cfg.vips.size(), 1u);
    EXPECT_EQ(cfg.vips[0].protocol, Protocol::Tcp);
    EXPECT_EQ(cfg.vips[0].algorithm, Algorithm::Maglev);
    EXPECT_EQ(cfg.vips[0].backends[0].port, 443);
    EXPECT_EQ(cfg.vips[0].backends[0].weight, 1u);
}

TEST(Config, NoVipsIsValid)
{
    EXPECT_TRUE(config_of(kDatapath).vips.empty());
    EXPECT_TRUE(config_of(kDatapath + "vips:\n").vips.empty());
    EXPECT_TRUE(config_of(kDatapath + "vips: []\n").vips.empty());
    auto cfg = config_of(kDatapath + "vips:\n  - name: a\n    address: 198.18.1.1\n    port: 1\n    backends: []\n");
    ASSERT_EQ(cfg.vips.size(), 1u);
    EXPECT_TRUE(cfg.vips[0].backends.empty());
}

TEST(Config, ExampleFileLoads)
{
    auto path = source_dir() + "/etc/lbd.yaml";
    auto r = load_config_file(path);
    if (auto* e = std::get_if<std::vector<ConfigError>>(&r))
        FAIL() << path << ":\n" << dump(*e);
    EXPECT_FALSE(std::get<Config>(r).vips.empty());
}

struct BadCase {
    std::string yaml;
    std::string key;
    int line;
    std::string fragment;
};

TEST(Config, BadConfigs)
{
    const std::string vip = "vips:\n  - name: web\n    address: 198.18.1.100\n    port: 80\n";  // lines 3-6
    const std::string be = "    backends:\n      - address: 198.18.2.10\n";  // lines 7-8
    const std::vector<BadCase> cases{
        // Top level and unknown keys.
        {"", "datapath", 0, "is required"},
        {"vips: []\n", "datapath", 1, "is required"},
        {"- datapath\n", "", 1, "must be a mapping"},
        {kDatapath + "health:\n  interval: 5s\n", "health", 3, "not supported by this version of lbd"},
        {kDatapath + "bgp: {}\n", "bgp.local_as", 3, "is required"},
        {kDatapath + "colour: red\n", "colour", 3, "unknown key 'colour'"},
        {"datapath: 5\n", "datapath", 1, "must be a mapping"},
        {"datapath:\n  intrefaces: [eth0]\n", "datapath.intrefaces", 2, "unknown key 'intrefaces'"},
        {"datapath:\n  intrefaces: [eth0]\n", "datapath.interfaces", 1, "is required"},
        {kDatapath + "  interfaces: [eth1]\n", "datapath.interfaces", 3, "duplicate key 'interfaces'"},
        // Datapath.
        {"datapath:\n  interfaces: eth0\n", "datapath.interfaces", 2, "must be a list of interface names"},
        {"datapath:\n  interfaces: []\n", "datapath.interfaces", 2, "at least one interface"},
        {"datapath:\n  interfaces:\n    - eth0\n    - eth0\n", "datapath.interfaces[1]", 4, "duplicate interface 'eth0'"},
        {"datapath:\n  interfaces: [eth0, sixteen_chars_xx]\n", "datapath.interfaces[1]", 2, "not an interface name"},
        {"datapath:\n  interfaces: ['a/b']\n", "datapath.interfaces[0]", 2, "no '/' or whitespace"},
        {"datapath:\n  interfaces: [[eth0]]\n", "datapath.interfaces[0]", 2, "must be an interface name"},
        {kDatapath + "  xdp_mode: offload\n", "datapath.xdp_mode", 3, "must be auto, native or generic"},
        {kDatapath + "  conntrack_size: 0\n", "datapath.conntrack_size", 3, "between 1 and 268435456"},
        {kDatapath + "  conntrack_size: 268435457\n", "datapath.conntrack_size", 3, "between 1 and 268435456"},
        {kDatapath + "  conntrack_size: lots\n", "datapath.conntrack_size", 3, "must be an integer"},
        {kDatapath + "  conntrack_size: 1.5\n", "datapath.conntrack_size", 3, "must be an integer"},
        {kDatapath + "  conntrack_size: -5\n", "datapath.conntrack_size", 3, "between 1 and"},
        {kDatapath + "  conntrack_size: [1]\n", "datapath.conntrack_size", 3, "must be an integer"},
        {kDatapath + "  maglev_ring_size: 65536\n", "datapath.maglev_ring_size", 3, "must be a prime"},
        {kDatapath + "  maglev_ring_size: 0x1000003\n", "datapath.maglev_ring_size", 3, "between 3 and 16777216"},
        {kDatapath + "  maglev_ring_size: 16777213\n", "datapath.maglev_ring_size", 3, "max_vips = 4294966528"},
        {kDatapath + "  hash_seed: 0x100000000\n", "datapath.hash_seed", 3, "between 0 and 4294967295"},
        {kDatapath + "  hash_seed: 99999999999999999999999\n", "datapath.hash_seed", 3, "between 0 and 4294967295"},
        {kDatapath + "  hash_seed: 0xg\n", "datapath.hash_seed", 3, "must be an integer"},
        {kDatapath + "  pin_path: sys/fs/bpf\n", "datapath.pin_path", 3, "absolute"},
        {kDatapath + "  pin_path: /sys/fs/bpf/../lbd\n", "datapath.pin_path", 3, "'..'"},
        {kDatapath + "  encap_source_v4: fd00:1b::/64\n", "datapath.encap_source_v4", 3, "must be an IPv4 prefix"},
        {kDatapath + "  encap_source_v4: 198.18.0.1/24\n", "datapath.encap_source_v4", 3, "not a prefix"},
        {kDatapath + "  encap_source_v4: 10.0.0.0/7\n", "datapath.encap_source_v4", 3, "at least /8"},
        {kDatapath + "  encap_source_v6: fd00::/16\n", "datapath.encap_source_v6", 3, "at least /32"},
        {kDatapath + "  max_vips: 0\n", "datapath.max_vips", 3, "between 1 and 65536"},
        {kDatapath + "  max_backends: 2000000\n", "datapath.max_backends", 3, "between 1 and 1048576"},
        // VIPs.
        {kDatapath + "vips: {}\n", "vips", 3, "must be a list of VIPs"},
        {kDatapath + "vips: [web]\n", "vips[0]", 3, "must be a mapping"},
        {kDatapath + "vips:\n  - address: 198.18.1.100\n    port: 80\n", "vips[0].name", 4, "is required"},
        {kDatapath + "vips:\n  - name: web site\n    address: 198.18.1.100\n    port: 80\n", "vips[0].name", 4,
         "not a valid VIP name"},
        {kDatapath + vip + vip.substr(6), "vips[1].name", 7, "duplicate VIP name 'web' (also vips[0])"},
        {kDatapath + "vips:\n  - name: web\n    address: 198.18.1.300\n    port: 80\n", "vips[0].address", 5,
         "'198.18.1.300' is not an IP address"},
        {kDatapath + "vips:\n  - name: web\n    address: 198.18.1.100\n", "vips[0].port", 4, "is required"},
        {kDatapath + "vips:\n  - name: web\n    address: 198.18.1.100\n    port: 0\n", "vips[0].port", 6,
         "between 1 and 65535"},
        {kDatapath + "vips:\n  - name: web\n    address: 198.18.1.100\n    port: 65536\n", "vips[0].port", 6,
         "between 1 and 65535"},
        {kDatapath + vip + "    protocol: sctp\n", "vips[0].protocol", 7, "must be tcp or udp"},
        {kDatapath + vip + "    algorithm: roundrobin\n", "vips[0].algorithm", 7,
         "unknown algorithm 'roundrobin' (supported: maglev, round-robin, weighted, least-conn, source-hash, "
         "failover)"},
        {kDatapath + vip + "    prot: udp\n", "vips[0].prot", 7, "unknown key 'prot'"},
        {kDatapath + vip + "  - name: www\n    address: 198.18.1.100\n    port: 80\n", "vips[1]", 7,
         "same VIP as vips[0] (web)"},
        {kDatapath + vip + "    backends: 198.18.2.10\n", "vips[0].backends", 7, "must be a list of backends"},
        // Backends.
        {kDatapath + vip + "    backends:\n      - address: fd00:1b::10\n", "vips[0].backends[0].address", 8,
         "backend is IPv6 but the VIP is IPv4: lbd encapsulates IPv4 in IPv4 and IPv6 in IPv6 only"},
        {kDatapath + vip + "    backends:\n      - port: 80\n", "vips[0].backends[0].address", 8, "is required"},
        {kDatapath + vip + "    backends:\n      - address: backend1\n", "vips[0].backends[0].address", 8,
         "'backend1' is not an IP address"},
        {kDatapath + vip + be + "        port: 8080\n", "vips[0].backends[0].port", 9, "must equal the VIP's port 80"},
        {kDatapath + vip + be + "        weight: 65536\n", "vips[0].backends[0].weight", 9, "between 0 and 65535"},
        {kDatapath + vip + be + "        wieght: 2\n", "vips[0].backends[0].wieght", 9, "unknown key 'wieght'"},
        {kDatapath + vip + be + "      - address: 198.18.2.10\n", "vips[0].backends[1].address", 9,
         "duplicate backend 198.18.2.10 (also backends[0])"},
        {kDatapath + vip + "    backends:\n      - 198.18.2.10\n", "vips[0].backends[0]", 8, "must be a mapping"},
        // Totals against the map sizes.
        {kDatapath + "  max_vips: 1\n" + "vips:\n  - name: a\n    address: 198.18.1.1\n    port: 80\n" +
             "  - name: b\n    address: 198.18.1.2\n    port: 80\n",
         "vips", 4, "2 VIPs but datapath.max_vips is 1"},
        {kDatapath + "  max_backends: 1\n" + "vips:\n  - name: a\n    address: 198.18.1.1\n    port: 80\n" + be +
             "      - address: 198.18.2.11\n",
         "vips", 4, "2 backends in total but datapath.max_backends is 1"},
    };
    ASSERT_GE(cases.size(), 25u);
    for (const auto& c : cases) {
        auto errors = errors_of(c.yaml);
        bool found = std::any_of(errors.begin(), errors.end(), [&](const ConfigError& e) {
            return e.key == c.key && e.line == c.line && e.message.find(c.fragment) != std::string::npos;
        });
        EXPECT_TRUE(found) << "expected " << c.line << ": " << c.key << ": ..." << c.fragment << "...\nin:\n"
                           << c.yaml << "got:\n"
                           << dump(errors);
    }
}

TEST(Config, CollectsAllErrors)
{
    auto errors = errors_of(R"(datapath:
  interfaces: [eth0]
  xdp_mode: turbo
  conntrack_size: 0
vips:
  - name: web
    address: 198.18.1.100
    port: 80
    protocol: icmp
    backends:
      - address: fd00:1b::1
      - address: 198.18.2.10
        weight: -1
metrics: {}
)");
    ASSERT_EQ(errors.size(), 6u) << dump(errors);
    // Sorted by line.
    EXPECT_EQ(errors[0].str("lbd.yaml"), "lbd.yaml:3: datapath.xdp_mode: must be auto, native or generic, not 'turbo'");
    EXPECT_EQ(errors[1].key, "datapath.conntrack_size");
    EXPECT_EQ(errors[2].key, "vips[0].protocol");
    EXPECT_EQ(errors[3].key, "vips[0].backends[0].address");
    EXPECT_EQ(errors[3].line, 11);
    EXPECT_EQ(errors[4].key, "vips[0].backends[1].weight");
    EXPECT_EQ(errors[4].line, 13);
    EXPECT_EQ(errors[4].str(), "13: vips[0].backends[1].weight: must be between 0 and 65535");
    EXPECT_EQ(errors[5].str(), "14: metrics: not supported by this version of lbd");
}

TEST(Config, ReservedSectionsAreErrorsOnlyWhenPresent)
{
    auto errors = errors_of(kDatapath + "health: {}\nmetrics: {}\n");
    ASSERT_EQ(errors.size(), 2u) << dump(errors);
    for (const auto& e : errors)
        EXPECT_EQ(e.message, "not supported by this version of lbd");
}

TEST(Config, ControlSection)
{
    auto ok = load_config_string(kDatapath + "control:\n  socket: /run/x.sock\n  group: lbd\n  state_dir: /var/lib/x\n");
    ASSERT_TRUE(std::holds_alternative<Config>(ok));
    const auto& c = std::get<Config>(ok).control;
    EXPECT_EQ(c.socket, "/run/x.sock");
    EXPECT_EQ(c.group, "lbd");
    EXPECT_EQ(c.state_dir, "/var/lib/x");
    auto errors = errors_of(kDatapath + "control:\n  socket: relative.sock\n  sate_dir: /x\n");
    ASSERT_EQ(errors.size(), 2u) << dump(errors);
    EXPECT_EQ(errors[0].key, "control.socket");
    EXPECT_EQ(errors[0].message, "must be an absolute path");
    EXPECT_EQ(errors[1].message, "unknown key 'sate_dir'");
}

TEST(Config, NoCascadeFromUnparsedValues)
{
    // The VIP's port and address did not parse: no family or port complaints about its backends.
    auto errors = errors_of(kDatapath + R"(vips:
  - name: web
    address: nowhere
    port: http
    backends:
      - address: fd00:1b::1
        port: 80
)");
    ASSERT_EQ(errors.size(), 2u) << dump(errors);
    EXPECT_EQ(errors[0].key, "vips[0].address");
    EXPECT_EQ(errors[1].key, "vips[0].port");

    // A VIP entry that is not a mapping does not count as a duplicate of anything.
    errors = errors_of(kDatapath + "vips: [a, b]\n");
    ASSERT_EQ(errors.size(), 2u) << dump(errors);
}

TEST(Config, SyntaxErrorHasLine)
{
    auto errors = errors_of("datapath:\n  interfaces: [eth0\nvips: []\n");
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_EQ(errors[0].line, 3) << dump(errors);
    EXPECT_EQ(errors[0].key, "");
    EXPECT_EQ(errors[0].str("lbd.yaml"), "lbd.yaml:3: end of sequence flow not found");

    errors = errors_of("datapath:\n  interfaces: [eth0]\n  xdp_mode: auto\n bad: x\n");
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_EQ(errors[0].line, 4) << dump(errors);
}

TEST(Config, UnreadableFile)
{
    auto r = load_config_file("/nonexistent/lbd.yaml");
    auto* errors = std::get_if<std::vector<ConfigError>>(&r);
    ASSERT_TRUE(errors);
    ASSERT_EQ(errors->size(), 1u);
    EXPECT_EQ((*errors)[0].str("/nonexistent/lbd.yaml"), "/nonexistent/lbd.yaml: cannot open: No such file or directory");

    r = load_config_file(std::filesystem::temp_directory_path().string());
    errors = std::get_if<std::vector<ConfigError>>(&r);
    ASSERT_TRUE(errors);
    ASSERT_EQ(errors->size(), 1u);
    EXPECT_NE((*errors)[0].message.find("cannot"), std::string::npos) << (*errors)[0].message;
}

TEST(Config, ErrorStr)
{
    ConfigError e{"vips[0].port", 12, "must be between 1 and 65535"};
    EXPECT_EQ(e.str("lbd.yaml"), "lbd.yaml:12: vips[0].port: must be between 1 and 65535");
    EXPECT_EQ(e.str(), "12: vips[0].port: must be between 1 and 65535");
    e.line = 0;
    EXPECT_EQ(e.str("lbd.yaml"), "lbd.yaml: vips[0].port: must be between 1 and 65535");
    EXPECT_EQ(e.str(), "vips[0].port: must be between 1 and 65535");
}

TEST(Config, ToString)
{
    EXPECT_EQ(to_string(Protocol::Tcp), "tcp");
    EXPECT_EQ(to_string(Protocol::Udp), "udp");
    EXPECT_EQ(to_string(XdpMode::Auto), "auto");
    EXPECT_EQ(to_string(XdpMode::Native), "native");
    EXPECT_EQ(to_string(XdpMode::Generic), "generic");
    EXPECT_EQ(to_string(Algorithm::Maglev), "maglev");
}

TEST(Config, ValidateModel)
{
    Config cfg;
    auto errors = validate(cfg);
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_EQ(errors[0].key, "datapath.interfaces");

    cfg.datapath.interfaces = {"eth0"};
    EXPECT_TRUE(validate(cfg).empty());

    VipConfig vip{.name = "web", .address = ip("198.18.1.100"), .port = 80, .backends = {}, .line = 7};
    vip.backends.push_back({.address = ip("198.18.2.10"), .port = 80, .weight = 1, .line = 9});
    vip.backends.push_back({.address = ip("198.18.2.11"), .port = 81, .weight = 1, .line = 10});
    cfg.vips.push_back(vip);
    errors = validate(cfg);
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_EQ(errors[0].key, "vips[0].backends[1].port");
    EXPECT_EQ(errors[0].line, 10);

    cfg.vips[0].backends[1].port = 80;
    cfg.datapath.maglev_ring_size = 100;
    cfg.vips.push_back(cfg.vips[0]);
    cfg.vips[1].name = "web2";
    errors = validate(cfg);
    ASSERT_EQ(errors.size(), 2u) << dump(errors);
    EXPECT_EQ(errors[0].key, "datapath.maglev_ring_size");
    EXPECT_EQ(errors[1].key, "vips[1]");
    EXPECT_NE(errors[1].message.find("same VIP as vips[0] (web)"), std::string::npos);
}
