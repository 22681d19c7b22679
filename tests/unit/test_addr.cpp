#include "common/addr.h"

#include <gtest/gtest.h>

using namespace lbd;

TEST(IpAddr, ParsesV4)
{
    auto a = IpAddr::parse("198.18.1.100");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->is_v4());
    EXPECT_EQ(a->size(), 4u);
    EXPECT_EQ(a->bytes[0], 198);
    EXPECT_EQ(a->bytes[3], 100);
    EXPECT_EQ(a->bytes[4], 0);
    EXPECT_EQ(a->str(), "198.18.1.100");
}

TEST(IpAddr, ParsesV6Canonically)
{
    auto a = IpAddr::parse("2001:0DB8:0:0:0:0:0:0001");
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->is_v4());
    EXPECT_EQ(a->size(), 16u);
    EXPECT_EQ(a->bytes[0], 0x20);
    EXPECT_EQ(a->bytes[15], 1);
    EXPECT_EQ(a->str(), "2001:db8::1");
    EXPECT_EQ(IpAddr::parse("::")->str(), "::");
    EXPECT_EQ(IpAddr::parse("::ffff:1.2.3.4")->str(), "::ffff:1.2.3.4");
}

TEST(IpAddr, Rejects)
{
    for (const char* s : {"", " 1.2.3.4", "1.2.3.4 ", "1.2.3", "1.2.3.256", "1.2.3.4.5", "[2001:db8::1]",
                          "fe80::1%eth0", "2001:db8::1 ", "2001:db8:::1", "host.example", "1.2.3.4/32", "-1.2.3.4"})
        EXPECT_FALSE(IpAddr::parse(s)) << s;
    EXPECT_FALSE(IpAddr::parse(std::string_view("1.2.3.4\0", 8)));
}

TEST(IpAddr, OrdersAndCompares)
{
    EXPECT_EQ(*IpAddr::parse("10.0.0.1"), *IpAddr::parse("10.0.0.1"));
    EXPECT_LT(*IpAddr::parse("10.0.0.1"), *IpAddr::parse("10.0.0.2"));
    EXPECT_NE(*IpAddr::parse("::"), *IpAddr::parse("0.0.0.0"));
}

TEST(Prefix, Parses)
{
    auto p = Prefix::parse("198.18.0.0/24");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->len, 24);
    EXPECT_EQ(p->str(), "198.18.0.0/24");
    EXPECT_EQ(Prefix::parse("fd00:1b::/64")->str(), "fd00:1b::/64");
    EXPECT_EQ(Prefix::parse("0.0.0.0/0")->len, 0);
    EXPECT_EQ(Prefix::parse("1.2.3.4/32")->len, 32);
    EXPECT_EQ(Prefix::parse("2001:db8::1/128")->len, 128);
    EXPECT_EQ(Prefix::parse("198.18.0.128/25")->str(), "198.18.0.128/25");
}

TEST(Prefix, Rejects)
{
    for (const char* s : {"", "198.18.0.0", "198.18.0.0/", "/24", "198.18.0.0/33", "fd00::/129", "198.18.0.0/-1",
                          "198.18.0.0/+8", "198.18.0.0/ 24", "198.18.0.0/24 ", "198.18.0.0/2x", "198.18.0.1/24",
                          "198.18.0.128/24", "fd00:1b::1/64", "fd00::/0064", "[fd00::]/64"})
        EXPECT_FALSE(Prefix::parse(s)) << s;
}

TEST(Prefix, Contains)
{
    auto p = *Prefix::parse("198.18.0.0/15");
    EXPECT_TRUE(p.contains(*IpAddr::parse("198.18.0.0")));
    EXPECT_TRUE(p.contains(*IpAddr::parse("198.19.255.255")));
    EXPECT_FALSE(p.contains(*IpAddr::parse("198.20.0.0")));
    EXPECT_FALSE(p.contains(*IpAddr::parse("198.17.255.255")));
    EXPECT_FALSE(p.contains(*IpAddr::parse("::")));

    auto all = *Prefix::parse("0.0.0.0/0");
    EXPECT_TRUE(all.contains(*IpAddr::parse("255.255.255.255")));
    EXPECT_FALSE(all.contains(*IpAddr::parse("::1")));

    auto v6 = *Prefix::parse("fd00:1b::/64");
    EXPECT_TRUE(v6.contains(*IpAddr::parse("fd00:1b::ffff:1")));
    EXPECT_FALSE(v6.contains(*IpAddr::parse("fd00:1c::1")));

    auto host = *Prefix::parse("2001:db8::1/128");
    EXPECT_TRUE(host.contains(*IpAddr::parse("2001:db8::1")));
    EXPECT_FALSE(host.contains(*IpAddr::parse("2001:db8::2")));
}

TEST(Endpoint, Parses)
{
    auto e = Endpoint::parse("198.18.1.100:80");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->addr, *IpAddr::parse("198.18.1.100"));
    EXPECT_EQ(e->port, 80);
    EXPECT_EQ(e->str(), "198.18.1.100:80");

    auto v6 = Endpoint::parse("[2001:DB8::1]:65535");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->port, 65535);
    EXPECT_EQ(v6->str(), "[2001:db8::1]:65535");
    EXPECT_EQ(Endpoint::parse("1.2.3.4:1")->port, 1);
}

TEST(Endpoint, Rejects)
{
    for (const char* s : {"", ":80", "1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:99999999",
                          "1.2.3.4:8o", "1.2.3.4:-1", "1.2.3.4:+80", "1.2.3.4: 80", " 1.2.3.4:80", "1.2.3.4:80 ",
                          "2001:db8::1:80", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:", "[2001:db8::1]80",
                          "[2001:db8::1:80", "[1.2.3.4]:80", "[fe80::1%eth0]:80", "[[::1]]:80", "host:80"})
        EXPECT_FALSE(Endpoint::parse(s)) << s;
}

TEST(Endpoint, StrRoundTrips)
{
    for (const char* s : {"198.18.2.10:8080", "[fd00:1b::10]:443", "[::]:53"})
        EXPECT_EQ(Endpoint::parse(s)->str(), s);
}
