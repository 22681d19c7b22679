#include "health/http.h"

#include <gtest/gtest.h>

using namespace lbd;
using namespace lbd::health;

namespace {

Target http_target(const char* addr, uint16_t port)
{
    Target t;
    t.vip = "web";
    t.address = *IpAddr::parse(addr);
    t.port = port;
    t.config.type = CheckType::Http;
    return t;
}

}  // namespace

TEST(HealthHttp, StatusLine)
{
    EXPECT_EQ(parse_status_line("HTTP/1.1 200 OK"), 200);
    EXPECT_EQ(parse_status_line("HTTP/1.0 503 Service Unavailable"), 503);
    EXPECT_EQ(parse_status_line("HTTP/1.1 204"), 204);
    EXPECT_EQ(parse_status_line("HTTP/1.1 301 "), 301);
    EXPECT_EQ(parse_status_line("HTTP/2.0 404 Not Found"), 404);
    EXPECT_FALSE(parse_status_line(""));
    EXPECT_FALSE(parse_status_line("HTTP/1.1"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 20 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 2000 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 abc OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1  200 OK"));
    EXPECT_FALSE(parse_status_line("http/1.1 200 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/x.1 200 OK"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 099 Low"));
    EXPECT_FALSE(parse_status_line("HTTP/1.1 600 High"));
    EXPECT_FALSE(parse_status_line("SSH-2.0-OpenSSH_9.2"));
}

TEST(HealthHttp, ScanStatusIncremental)
{
    constexpr size_t kMax = 64;
    EXPECT_EQ(scan_status("", kMax).kind, StatusScan::NeedMore);
    EXPECT_EQ(scan_status("HT", kMax).kind, StatusScan::NeedMore);
    EXPECT_EQ(scan_status("HTTP/1.1 200 O", kMax).kind, StatusScan::NeedMore);
    auto s = scan_status("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", kMax);
    EXPECT_EQ(s.kind, StatusScan::Status);
    EXPECT_EQ(s.status, 200);
    auto bare_lf = scan_status("HTTP/1.0 503 Busy\nServer: x\n", kMax);
    EXPECT_EQ(bare_lf.kind, StatusScan::Status);
    EXPECT_EQ(bare_lf.status, 503);
    // Not HTTP: refused as soon as the first bytes show it.
    EXPECT_EQ(scan_status("SSH-2.0", kMax).kind, StatusScan::Bad);
    EXPECT_EQ(scan_status("garbage\r\n", kMax).kind, StatusScan::Bad);
    // A status line that never ends within the buffer.
    EXPECT_EQ(scan_status("HTTP/1.1 200 " + std::string(kMax, 'x'), kMax).kind, StatusScan::Bad);
}

TEST(HealthHttp, ExpectStatusRanges)
{
    StatusRange def;
    EXPECT_TRUE(def.contains(200));
    EXPECT_TRUE(def.contains(299));
    EXPECT_FALSE(def.contains(199));
    EXPECT_FALSE(def.contains(300));
    EXPECT_FALSE(def.contains(503));

    auto one = StatusRange::parse("204");
    ASSERT_TRUE(one);
    EXPECT_TRUE(one->contains(204));
    EXPECT_FALSE(one->contains(200));
    EXPECT_EQ(one->str(), "204");

    auto range = StatusRange::parse("200-399");
    ASSERT_TRUE(range);
    EXPECT_TRUE(range->contains(301));
    EXPECT_TRUE(range->contains(399));
    EXPECT_FALSE(range->contains(400));
    EXPECT_EQ(range->str(), "200-399");

    EXPECT_FALSE(StatusRange::parse(""));
    EXPECT_FALSE(StatusRange::parse("200-"));
    EXPECT_FALSE(StatusRange::parse("-300"));
    EXPECT_FALSE(StatusRange::parse("2xx"));
    EXPECT_FALSE(StatusRange::parse("200 - 300"));
    EXPECT_FALSE(StatusRange::parse("200-300-400"));
    // Syntax only: the range check is validate_health's.
    auto reversed = StatusRange::parse("399-200");
    ASSERT_TRUE(reversed);
    EXPECT_FALSE(reversed->contains(300));
}

TEST(HealthHttp, HostHeader)
{
    EXPECT_EQ(http_host(http_target("198.18.2.10", 80), false), "198.18.2.10");
    EXPECT_EQ(http_host(http_target("198.18.2.10", 8080), false), "198.18.2.10:8080");
    EXPECT_EQ(http_host(http_target("198.18.2.10", 443), true), "198.18.2.10");
    EXPECT_EQ(http_host(http_target("198.18.2.10", 80), true), "198.18.2.10:80");
    EXPECT_EQ(http_host(http_target("fd00:1b::10", 80), false), "[fd00:1b::10]");
    EXPECT_EQ(http_host(http_target("fd00:1b::10", 8443), true), "[fd00:1b::10]:8443");
    auto t = http_target("198.18.2.10", 80);
    t.config.port = 8081;  // the health port is what is probed
    EXPECT_EQ(http_host(t, false), "198.18.2.10:8081");
    t.config.host = "www.example.org";
    EXPECT_EQ(http_host(t, false), "www.example.org");
}

TEST(HealthHttp, Request)
{
    auto t = http_target("198.18.2.10", 80);
    t.config.path = "/healthz?x=1";
    t.config.host = "www.example.org";
    EXPECT_EQ(http_request(t, false),
              "GET /healthz?x=1 HTTP/1.1\r\n"
              "Host: www.example.org\r\n"
              "User-Agent: lbd-health\r\n"
              "Accept: */*\r\n"
              "Connection: close\r\n\r\n");
}
