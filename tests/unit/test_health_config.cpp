#include "health/health_config.h"

#include <gtest/gtest.h>

#include "lbd/core/yaml_reader.h"

using namespace lbd;
using namespace lbd::health;
using namespace std::chrono_literals;

namespace {

struct Parsed {
    HealthConfig cfg;
    std::vector<ConfigError> errors;
};

/// `body` is the health mapping, indented by two spaces, under "health:" on
/// line 1; keys are reported under vips[0].health as a VIP's would be.
Parsed parse(const std::string& body)
{
    Parsed out;
    YAML::Node root = YAML::Load("health:\n" + body);
    YamlReader r;
    r.note_line("vips[0].health", 1);
    read_health(r, root["health"], "vips[0].health", out.cfg);
    validate_health(r, out.cfg, "vips[0].health");
    out.errors = r.errors;
    return out;
}

std::string dump(const std::vector<ConfigError>& errors)
{
    std::string out;
    for (const auto& e : errors)
        out += "  " + e.str() + "\n";
    return out;
}

}  // namespace

TEST(HealthConfig, Defaults)
{
    HealthConfig c;
    EXPECT_EQ(c.type, CheckType::Tcp);
    EXPECT_FALSE(c.port);
    EXPECT_EQ(c.interval, 10s);
    EXPECT_EQ(c.timeout, 3s);
    EXPECT_EQ(c.unhealthy_threshold, 3u);
    EXPECT_EQ(c.healthy_threshold, 2u);
    EXPECT_EQ(c.path, "/");
    EXPECT_EQ(c.expect_status, (StatusRange{200, 299}));
    EXPECT_FALSE(c.host);
    EXPECT_FALSE(c.tls_verify);
    EXPECT_EQ(c.via, Via::Direct);
    EXPECT_FALSE(c.half_open);
    EXPECT_TRUE(validate_health(c, "h").empty());
}

TEST(HealthConfig, TcpHalfOpen)
{
    auto p = parse("  type: tcp\n  half_open: true\n  port: 8080\n");
    EXPECT_TRUE(p.errors.empty()) << dump(p.errors);
    EXPECT_TRUE(p.cfg.half_open);
    EXPECT_EQ(p.cfg.port, 8080);
    auto off = parse("  half_open: false\n  via: tunnel\n");
    EXPECT_TRUE(off.errors.empty()) << dump(off.errors);
    EXPECT_FALSE(off.cfg.half_open);

    // The model check alone (lbctl's path): refused via tunnel, named by key.
    HealthConfig c;
    c.half_open = true;
    c.via = Via::Tunnel;
    auto errors = validate_health(c, "vips[1].health");
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_EQ(errors[0].key, "vips[1].health.half_open");
    EXPECT_NE(errors[0].message.find("socket mark per backend"), std::string::npos) << errors[0].str();
}

TEST(HealthConfig, EmptyMappingKeepsDefaults)
{
    auto p = parse("  {}\n");
    EXPECT_TRUE(p.errors.empty()) << dump(p.errors);
    EXPECT_EQ(p.cfg, HealthConfig{});
}

TEST(HealthConfig, NullNodeKeepsDefaults)
{
    auto p = parse("");
    EXPECT_TRUE(p.errors.empty()) << dump(p.errors);
    EXPECT_EQ(p.cfg, HealthConfig{});
}

TEST(HealthConfig, HttpFull)
{
    auto p = parse(R"(  type: http
  port: 8080
  interval: 5s
  timeout: 2s
  unhealthy_threshold: 4
  healthy_threshold: 1
  path: /healthz?full=1
  expect_status: 200-399
  host: www.example.org
  via: tunnel
)");
    ASSERT_TRUE(p.errors.empty()) << dump(p.errors);
    const auto& c = p.cfg;
    EXPECT_EQ(c.type, CheckType::Http);
    EXPECT_EQ(c.port, 8080);
    EXPECT_EQ(c.interval, 5s);
    EXPECT_EQ(c.timeout, 2s);
    EXPECT_EQ(c.unhealthy_threshold, 4u);
    EXPECT_EQ(c.healthy_threshold, 1u);
    EXPECT_EQ(c.path, "/healthz?full=1");
    EXPECT_EQ(c.expect_status, (StatusRange{200, 399}));
    EXPECT_EQ(c.host, "www.example.org");
    EXPECT_EQ(c.via, Via::Tunnel);
}

TEST(HealthConfig, HttpsSingleStatusAndVerify)
{
    auto p = parse("  type: https\n  expect_status: 204\n  tls_verify: true\n");
    ASSERT_TRUE(p.errors.empty()) << dump(p.errors);
    EXPECT_EQ(p.cfg.type, CheckType::Https);
    EXPECT_EQ(p.cfg.expect_status, (StatusRange{204, 204}));
    EXPECT_TRUE(p.cfg.tls_verify);
}

TEST(HealthConfig, UdpDnsExecIcmp)
{
    auto udp = parse("  type: udp\n  payload: \"ping\\x00\"\n  expect: pong\n");
    ASSERT_TRUE(udp.errors.empty()) << dump(udp.errors);
    EXPECT_EQ(udp.cfg.payload, std::string("ping\0", 5));
    EXPECT_EQ(udp.cfg.expect, "pong");

    auto dns = parse("  type: dns\n  query_name: example.org\n  query_type: aaaa\n  port: 5353\n");
    ASSERT_TRUE(dns.errors.empty()) << dump(dns.errors);
    EXPECT_EQ(dns.cfg.query_name, "example.org");
    EXPECT_EQ(dns.cfg.query_type, 28);
    EXPECT_EQ(dns.cfg.port, 5353);

    auto dns_num = parse("  type: dns\n  query_name: .\n  query_type: TYPE65\n");
    ASSERT_TRUE(dns_num.errors.empty()) << dump(dns_num.errors);
    EXPECT_EQ(dns_num.cfg.query_type, 65);

    auto exec = parse("  type: exec\n  command: [/usr/bin/check, --x, \"a b\"]\n  timeout: 1s\n");
    ASSERT_TRUE(exec.errors.empty()) << dump(exec.errors);
    EXPECT_EQ(exec.cfg.command, (std::vector<std::string>{"/usr/bin/check", "--x", "a b"}));

    auto icmp = parse("  type: icmp\n  interval: 1s\n  timeout: 500ms\n");
    ASSERT_TRUE(icmp.errors.empty()) << dump(icmp.errors);
    EXPECT_EQ(icmp.cfg.type, CheckType::Icmp);
}

struct ErrorCase {
    const char* name;
    const char* body;
    const char* key;
    int line;
    const char* message;  // a substring of the message
};

class HealthConfigErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(HealthConfigErrors, NamesKeyAndLine)
{
    const auto& c = GetParam();
    auto p = parse(c.body);
    ASSERT_EQ(p.errors.size(), 1u) << dump(p.errors);
    const auto& e = p.errors[0];
    EXPECT_EQ(e.key, c.key) << e.str();
    EXPECT_EQ(e.line, c.line) << e.str();
    EXPECT_NE(e.message.find(c.message), std::string::npos) << e.str();
}

// Line 1 is "health:", so the first key of `body` is on line 2.
INSTANTIATE_TEST_SUITE_P(
    Table, HealthConfigErrors,
    testing::Values(
        ErrorCase{"UnknownType", "  type: smtp\n", "vips[0].health.type", 2, "unknown type 'smtp'"},
        ErrorCase{"UnknownKey", "  type: tcp\n  retries: 3\n", "vips[0].health.retries", 3, "unknown key 'retries'"},
        ErrorCase{"NotAMapping", "  tcp\n", "vips[0].health", 1, "must be a mapping"},
        ErrorCase{"TimeoutNotBelowInterval", "  interval: 2s\n  timeout: 2s\n", "vips[0].health.timeout", 3,
                  "must be below interval (2s)"},
        ErrorCase{"TimeoutAboveDefaultInterval", "  timeout: 15s\n", "vips[0].health.timeout", 2,
                  "must be below interval (10s)"},
        ErrorCase{"BadDuration", "  interval: 5 seconds\n", "vips[0].health.interval", 2, "is not a duration"},
        ErrorCase{"ZeroDuration", "  timeout: 0s\n", "vips[0].health.timeout", 2, "is not a duration"},
        ErrorCase{"UnhealthyThresholdZero", "  unhealthy_threshold: 0\n", "vips[0].health.unhealthy_threshold", 2,
                  "must be between 1 and 1000"},
        ErrorCase{"HealthyThresholdNegative", "  healthy_threshold: -1\n", "vips[0].health.healthy_threshold", 2,
                  "must be between 1 and 1000"},
        ErrorCase{"HealthyThresholdText", "  healthy_threshold: two\n", "vips[0].health.healthy_threshold", 2,
                  "must be an integer"},
        ErrorCase{"PortZero", "  port: 0\n", "vips[0].health.port", 2, "must be between 1 and 65535"},
        ErrorCase{"PortTooBig", "  port: 70000\n", "vips[0].health.port", 2, "must be between 1 and 65535"},
        ErrorCase{"PathWithTcp", "  type: tcp\n  path: /x\n", "vips[0].health.path", 3,
                  "does not apply to type tcp (only to http, https)"},
        ErrorCase{"PathWithDefaultType", "  path: /x\n", "vips[0].health.path", 2, "does not apply to type tcp"},
        ErrorCase{"HostWithDns", "  type: dns\n  query_name: a.b\n  host: x\n", "vips[0].health.host", 4,
                  "does not apply to type dns"},
        ErrorCase{"CommandWithHttp", "  type: http\n  command: [/bin/true]\n", "vips[0].health.command", 3,
                  "(only to exec)"},
        ErrorCase{"PortWithIcmp", "  type: icmp\n  port: 80\n", "vips[0].health.port", 3,
                  "does not apply to type icmp"},
        ErrorCase{"TlsVerifyWithHttp", "  type: http\n  tls_verify: true\n", "vips[0].health.tls_verify", 3,
                  "(only to https)"},
        ErrorCase{"ExpectWithTcp", "  expect: pong\n", "vips[0].health.expect", 2, "(only to udp)"},
        ErrorCase{"ExecWithoutCommand", "  type: exec\n", "vips[0].health.command", 1, "is required for type exec"},
        ErrorCase{"ExecCommandNotAList", "  type: exec\n  command: /bin/check --x\n", "vips[0].health.command", 3,
                  "must be a list"},
        ErrorCase{"ExecCommandEmptyList", "  type: exec\n  command: []\n", "vips[0].health.command", 3,
                  "must be a list"},
        ErrorCase{"ExecEmptyProgram", "  type: exec\n  command: [\"\", x]\n", "vips[0].health.command", 3,
                  "must not be empty"},
        ErrorCase{"DnsWithoutName", "  type: dns\n", "vips[0].health.query_name", 1, "is required for type dns"},
        ErrorCase{"DnsBadName", "  type: dns\n  query_name: a..b\n", "vips[0].health.query_name", 3,
                  "has an empty label"},
        ErrorCase{"DnsLongLabel",
                  "  type: dns\n  query_name: "
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org\n",
                  "vips[0].health.query_name", 3, "longer than 63"},
        ErrorCase{"DnsBadType", "  type: dns\n  query_name: a.b\n  query_type: BOGUS\n",
                  "vips[0].health.query_type", 4, "unknown DNS type 'BOGUS'"},
        ErrorCase{"StatusBelow100", "  type: http\n  expect_status: 99\n", "vips[0].health.expect_status", 3,
                  "between 100 and 599"},
        ErrorCase{"StatusAbove599", "  type: http\n  expect_status: 200-600\n", "vips[0].health.expect_status", 3,
                  "between 100 and 599"},
        ErrorCase{"StatusRangeReversed", "  type: https\n  expect_status: 399-200\n",
                  "vips[0].health.expect_status", 3, "the first code must not exceed the second"},
        ErrorCase{"StatusNotANumber", "  type: http\n  expect_status: ok\n", "vips[0].health.expect_status", 3,
                  "is not a status code or a range"},
        ErrorCase{"PathWithoutSlash", "  type: http\n  path: healthz\n", "vips[0].health.path", 3,
                  "must start with '/'"},
        ErrorCase{"PathWithSpace", "  type: http\n  path: /a b\n", "vips[0].health.path", 3, "no spaces"},
        ErrorCase{"HostWithSpace", "  type: http\n  host: a b\n", "vips[0].health.host", 3, "host name"},
        ErrorCase{"EmptyExpect", "  type: udp\n  expect: \"\"\n", "vips[0].health.expect", 3, "must not be empty"},
        ErrorCase{"UnknownVia", "  via: gre\n", "vips[0].health.via", 2, "must be direct or tunnel"},
        ErrorCase{"HalfOpenWithHttp", "  type: http\n  half_open: true\n", "vips[0].health.half_open", 3,
                  "does not apply to type http (only to tcp)"},
        ErrorCase{"HalfOpenNotBool", "  half_open: sometimes\n", "vips[0].health.half_open", 2,
                  "must be true or false"},
        ErrorCase{"HalfOpenViaTunnel", "  type: tcp\n  half_open: true\n  via: tunnel\n", "vips[0].health.half_open",
                  3, "does not apply with via: tunnel"},
        ErrorCase{"TlsVerifyNotBool", "  type: https\n  tls_verify: maybe\n", "vips[0].health.tls_verify", 3,
                  "must be true or false"},
        ErrorCase{"DuplicateKey", "  interval: 5s\n  interval: 6s\n", "vips[0].health.interval", 3,
                  "duplicate key"}),
    [](const testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

TEST(HealthConfig, FailedKeysSkipCrossChecks)
{
    // The bad interval leaves the default (10s) in the model; timeout 5s must
    // not be compared against it.
    auto p = parse("  interval: soon\n  timeout: 5s\n");
    ASSERT_EQ(p.errors.size(), 1u) << dump(p.errors);
    EXPECT_EQ(p.errors[0].key, "vips[0].health.interval");

    // An unknown type: keys of other types are not judged against it.
    auto q = parse("  type: smtp\n  path: /x\n");
    ASSERT_EQ(q.errors.size(), 1u) << dump(q.errors);
    EXPECT_EQ(q.errors[0].key, "vips[0].health.type");
}

TEST(HealthConfig, SeveralErrorsAllReported)
{
    auto p = parse("  type: http\n  interval: 1s\n  timeout: 2s\n  expect_status: 500-400\n  payload: x\n");
    EXPECT_EQ(p.errors.size(), 3u) << dump(p.errors);
}

TEST(HealthConfig, ValidateModelDirectly)
{
    HealthConfig c;
    c.type = CheckType::Exec;
    c.timeout = 20s;
    c.healthy_threshold = 0;
    auto errors = validate_health(c, "vips[2].health");
    ASSERT_EQ(errors.size(), 3u) << dump(errors);
    EXPECT_EQ(errors[0].key, "vips[2].health.timeout");
    EXPECT_EQ(errors[1].key, "vips[2].health.healthy_threshold");
    EXPECT_EQ(errors[2].key, "vips[2].health.command");
    for (const auto& e : errors)
        EXPECT_EQ(e.line, 0);

    // Skipped under a failed key.
    auto none = validate_health(c, "vips[2].health", {"vips[2].health"});
    EXPECT_TRUE(none.empty()) << dump(none);
}

TEST(HealthConfig, CheckTypeNames)
{
    for (auto t : {CheckType::Tcp, CheckType::Http, CheckType::Https, CheckType::Udp, CheckType::Dns, CheckType::Icmp,
                   CheckType::Exec})
        EXPECT_EQ(parse_check_type(to_string(t)), t);
    EXPECT_FALSE(parse_check_type("TCP"));
}

TEST(HealthConfig, DnsTypes)
{
    EXPECT_EQ(parse_dns_type("A"), 1);
    EXPECT_EQ(parse_dns_type("aaaa"), 28);
    EXPECT_EQ(parse_dns_type("TXT"), 16);
    EXPECT_EQ(parse_dns_type("SOA"), 6);
    EXPECT_EQ(parse_dns_type("TYPE99"), 99);
    EXPECT_EQ(parse_dns_type("257"), 257);
    EXPECT_FALSE(parse_dns_type("0"));
    EXPECT_FALSE(parse_dns_type("TYPE"));
    EXPECT_FALSE(parse_dns_type("65536"));
    EXPECT_FALSE(parse_dns_type(""));
    EXPECT_EQ(dns_type_name(28), "AAAA");
    EXPECT_EQ(dns_type_name(99), "TYPE99");
}
