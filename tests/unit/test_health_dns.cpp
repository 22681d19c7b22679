#include "health/dns_wire.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

using namespace lbd::health;

namespace {

std::vector<uint8_t> query(uint16_t id, std::string_view name, uint16_t qtype)
{
    std::array<uint8_t, dns::kMaxQuerySize> buf{};
    size_t n = dns::encode_query(buf, id, name, qtype);
    return {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)};
}

/// A reply to `q`: the same bytes with QR (and RA) set and the given rcode,
/// plus `answers` answer records (A, name as a pointer to the question).
std::vector<uint8_t> reply_to(std::vector<uint8_t> q, uint8_t rcode, int answers = 0)
{
    q[2] |= 0x80;
    q[3] = static_cast<uint8_t>(0x80 | rcode);
    q[7] = static_cast<uint8_t>(answers);
    for (int i = 0; i < answers; ++i) {
        uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 9, 9};
        q.insert(q.end(), std::begin(rr), std::end(rr));
    }
    return q;
}

}  // namespace

TEST(HealthDns, EncodeQueryWireFormat)
{
    auto q = query(0xbeef, "example.org", 1);
    std::vector<uint8_t> want = {
        0xbe, 0xef,  // id
        0x01, 0x00,  // RD
        0x00, 0x01,  // QDCOUNT
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0,
        0x00, 0x01,  // A
        0x00, 0x01,  // IN
    };
    EXPECT_EQ(q, want);
}

TEST(HealthDns, TrailingDotAndRoot)
{
    EXPECT_EQ(query(1, "example.org.", 28), query(1, "example.org", 28));
    auto root = query(7, ".", 6);
    ASSERT_EQ(root.size(), dns::kHeaderSize + 1 + 4);
    EXPECT_EQ(root[12], 0);
    EXPECT_EQ(root[13], 0);
    EXPECT_EQ(root[14], 6);  // SOA
}

TEST(HealthDns, RejectsBadNames)
{
    std::array<uint8_t, dns::kMaxQuerySize> buf{};
    EXPECT_EQ(dns::encode_query(buf, 1, "", 1), 0u);
    EXPECT_EQ(dns::encode_query(buf, 1, "a..b", 1), 0u);
    EXPECT_EQ(dns::encode_query(buf, 1, ".a", 1), 0u);
    EXPECT_EQ(dns::encode_query(buf, 1, "a..", 1), 0u);
    EXPECT_EQ(dns::encode_query(buf, 1, std::string(64, 'a') + ".org", 1), 0u);
    EXPECT_NE(dns::encode_query(buf, 1, std::string(63, 'a') + ".org", 1), 0u);
    // 4 labels of 63 = 255 bytes on the wire with the lengths, +1 for the root: too long.
    std::string long_name = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                            std::string(63, 'd');
    EXPECT_EQ(dns::encode_query(buf, 1, long_name, 1), 0u);
    std::array<uint8_t, 20> small{};
    EXPECT_EQ(dns::encode_query(small, 1, "example.org", 1), 0u);
}

TEST(HealthDns, ParseHeaderAndQuestion)
{
    auto r = reply_to(query(0x1234, "Example.ORG", 16), dns::NxDomain, 2);
    auto h = dns::parse_header(r);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->id, 0x1234);
    EXPECT_TRUE(h->qr);
    EXPECT_TRUE(h->rd);
    EXPECT_TRUE(h->ra);
    EXPECT_EQ(h->rcode, dns::NxDomain);
    EXPECT_EQ(h->qdcount, 1);
    EXPECT_EQ(h->ancount, 2);
    auto q = dns::parse_question(r);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->name, "Example.ORG");
    EXPECT_EQ(q->qtype, 16);
    EXPECT_EQ(q->qclass, 1);
    EXPECT_FALSE(dns::parse_header(std::vector<uint8_t>(11, 0)));
}

TEST(HealthDns, AnswersMatchesIdQrAndQuestion)
{
    auto q = query(0x4242, "example.org", 1);
    EXPECT_TRUE(dns::answers(q, reply_to(q, dns::NoError, 1)));
    EXPECT_FALSE(dns::answers(q, q));  // QR not set: not a response

    auto other_id = reply_to(q, dns::NoError);
    other_id[1] ^= 1;
    EXPECT_FALSE(dns::answers(q, other_id));

    EXPECT_TRUE(dns::answers(q, reply_to(query(0x4242, "EXAMPLE.org", 1), dns::NoError)));
    EXPECT_FALSE(dns::answers(q, reply_to(query(0x4242, "example.net", 1), dns::NoError)));
    EXPECT_FALSE(dns::answers(q, reply_to(query(0x4242, "example.org", 28), dns::NoError)));

    // An error reply without the question still answers; a NOERROR one does not.
    auto bare = reply_to(q, dns::FormErr);
    bare.resize(dns::kHeaderSize);
    bare[5] = 0;
    EXPECT_TRUE(dns::answers(q, bare));
    bare[3] = 0x80;
    EXPECT_FALSE(dns::answers(q, bare));

    auto truncated = reply_to(q, dns::NoError);
    truncated.resize(truncated.size() - 3);
    EXPECT_FALSE(dns::answers(q, truncated));
}

TEST(HealthDns, CompressionPointersAreBounded)
{
    // A question whose name is a pointer to itself.
    std::vector<uint8_t> m = {0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1};
    EXPECT_FALSE(dns::parse_question(m));
    // A pointer past the end.
    m[13] = 0xff;
    EXPECT_FALSE(dns::parse_question(m));
    // A valid pointer to a name after the question.
    std::vector<uint8_t> ok = {0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 18, 0, 1, 0, 1, 1, 'a', 0};
    auto q = dns::parse_question(ok);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->name, "a");
    EXPECT_EQ(q->qtype, 1);
}

TEST(HealthDns, RcodeNames)
{
    EXPECT_EQ(dns::rcode_name(0), "NOERROR");
    EXPECT_EQ(dns::rcode_name(2), "SERVFAIL");
    EXPECT_EQ(dns::rcode_name(3), "NXDOMAIN");
    EXPECT_EQ(dns::rcode_name(5), "REFUSED");
    EXPECT_EQ(dns::rcode_name(11), "RCODE11");
}

TEST(HealthDns, QueryRoundTrips)
{
    for (auto [name, type] : {std::pair{"a.b.c", 1}, {"www.example.org.", 28}, {"_sip._udp.example.com", 33}}) {
        auto q = query(9, name, static_cast<uint16_t>(type));
        auto parsed = dns::parse_question(q);
        ASSERT_TRUE(parsed) << name;
        std::string want = name;
        if (want.ends_with('.'))
            want.pop_back();
        EXPECT_EQ(parsed->name, want);
        EXPECT_EQ(parsed->qtype, type);
        auto h = dns::parse_header(q);
        EXPECT_FALSE(h->qr);
        EXPECT_TRUE(h->rd);
        EXPECT_EQ(h->id, 9);
    }
}
