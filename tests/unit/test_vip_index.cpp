// The VIP prefilter's and index's bookkeeping: a bucket's bit is set while at
// least one VIP key of the bucket is in, the same key counts once, and the
// index names a bucket's only VIP or says "many".
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include "lbd/core/vip_index.h"

using namespace lbd;

namespace {

lbd_vip_key key(uint32_t addr_host, uint16_t port, uint8_t proto = 6)
{
    lbd_vip_key k{};
    k.addr.w[0] = htonl(addr_host);
    k.port = htons(port);
    k.proto = proto;
    k.family = LBD_AF_INET;
    return k;
}

/// A key other than `k` in the same bucket (another port of its address).
lbd_vip_key collider(const lbd_vip_key& k)
{
    for (uint32_t a = 0; a < 64; a++)
        for (uint32_t p = 1; p < 65536; p++) {
            lbd_vip_key c = key(ntohl(k.addr.w[0]) + a, uint16_t(p));
            if (std::memcmp(&c, &k, sizeof c) != 0 && lbd_vip_filter_bit(&c) == lbd_vip_filter_bit(&k))
                return c;
        }
    throw std::runtime_error("no colliding key found");
}

}  // namespace

TEST(VipIndex, EmptyMatchesNothing)
{
    VipIndex f;
    EXPECT_FALSE(f.may_match(key(0xc6120064, 80)));
    for (auto w : f.bits().bits)
        ASSERT_EQ(w, 0u);
}

TEST(VipIndex, AddedKeyMatchesAndRemovedKeyDoesNot)
{
    VipIndex f;
    const auto k = key(0xc6120064, 80);
    const uint32_t b = lbd_vip_filter_bit(&k);
    auto c = f.add(k, 7);
    EXPECT_TRUE(c.bitmap) << "first key of the bucket: write the bitmap";
    EXPECT_EQ(c.buckets, std::vector<uint32_t>{b});
    EXPECT_EQ(f.slot(b), 8u) << "the index names the one VIP (id + 1)";
    EXPECT_TRUE(f.may_match(k));
    EXPECT_FALSE(f.may_match(key(0xc6120064, 443, 6))) << "another port (unless it collides)";
    c = f.add(k, 7);
    EXPECT_FALSE(c.bitmap) << "the same key again (a VIP rewritten) counts once";
    EXPECT_TRUE(c.buckets.empty());
    EXPECT_EQ(f.keys(), 1u);
    EXPECT_EQ(f.id_of(k), 7u);
    c = f.remove(k);
    EXPECT_TRUE(c.bitmap);
    EXPECT_EQ(f.slot(b), uint32_t(LBD_VIP_INDEX_NONE));
    EXPECT_FALSE(f.may_match(k));
    EXPECT_FALSE(f.id_of(k));
    c = f.remove(k);
    EXPECT_FALSE(c.bitmap) << "removing an absent key changes nothing";
    EXPECT_TRUE(c.buckets.empty());
}

TEST(VipIndex, SharedBucketStaysSetUntilItsLastKeyGoes)
{
    VipIndex f;
    const auto a = key(0xc6120064, 80);
    const auto b = collider(a);
    const uint32_t bucket = lbd_vip_filter_bit(&a);
    EXPECT_TRUE(f.add(a, 1).bitmap);
    auto c = f.add(b, 2);
    EXPECT_FALSE(c.bitmap) << "bucket already set";
    EXPECT_EQ(c.buckets, std::vector<uint32_t>{bucket});
    EXPECT_EQ(f.slot(bucket), LBD_VIP_INDEX_MANY) << "two VIPs: the program asks the hash";
    c = f.remove(a);
    EXPECT_FALSE(c.bitmap) << "b still needs the bit";
    EXPECT_EQ(f.slot(bucket), 3u) << "b alone again: the index names it";
    EXPECT_TRUE(f.may_match(b));
    EXPECT_TRUE(f.remove(b).bitmap);
    EXPECT_FALSE(f.may_match(a));
    EXPECT_EQ(f.slot(bucket), uint32_t(LBD_VIP_INDEX_NONE));
}

TEST(VipIndex, FamiliesProtocolsAndPortsSpreadOverBuckets)
{
    // 1,000 VIPs (addresses x ports x protocols, both families) set close to
    // 1,000 distinct bits: the filter then passes non-VIP traffic with about
    // 1000/65536 false positives.
    VipIndex f;
    size_t set = 0;
    for (uint32_t i = 0; i < 250; i++) {
        for (uint8_t proto : {uint8_t(6), uint8_t(17)}) {
            auto v4 = key(0xc6120000 + i, 443, proto);
            set += f.add(v4, uint32_t(f.keys())).bitmap;
            lbd_vip_key v6{};
            v6.addr.w[0] = htonl(0x20010db8);
            v6.addr.w[3] = htonl(i);
            v6.port = htons(443);
            v6.proto = proto;
            v6.family = LBD_AF_INET6;
            set += f.add(v6, uint32_t(f.keys())).bitmap;
        }
    }
    EXPECT_EQ(f.keys(), 1000u);
    EXPECT_GE(set, 980u) << "too many VIPs share buckets";
    size_t popcount = 0;
    for (auto w : f.bits().bits)
        popcount += size_t(__builtin_popcountll(w));
    EXPECT_EQ(popcount, set);
}
