// lbd's reading of the connection table (lbd/core/conntrack_table.h): an
// entry counts only when its check binds its backend to its 5-tuple, a flow
// is found in the bucket its hash names, and un-counting touches one flag.
// The program's side of the same layout is tested in tests/bpf.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <vector>

#include "lbd/core/conntrack_table.h"

using namespace lbd;

namespace {

constexpr uint32_t kSeed = 0x5eed;

lbd_flow_key flow(uint16_t sport)
{
    lbd_flow_key k{};
    k.src.w[0] = htonl(0xc6336407);  // 198.51.100.7
    k.dst.w[0] = htonl(0xc6120164);  // 198.18.1.100
    k.sport = htons(sport);
    k.dport = htons(80);
    k.proto = 6;
    k.family = LBD_AF_INET;
    return k;
}

/// Writes the entry as the program does, into `way` of the flow's bucket.
lbd_ct_entry& put(std::vector<lbd_ct_bucket>& t, const lbd_flow_key& k, uint32_t be, uint32_t gen, int way = 0)
{
    const uint32_t h = lbd_flow_hash(&k, kSeed);
    lbd_ct_entry& e = t[lbd_ct_bucket_of(h, uint32_t(t.size()))].e[way];
    e.key = k;
    e.v.backend_id = be;
    e.v.backend_gen = gen;
    e.v.last_seen = 1;
    e.v.flags = LBD_CT_F_COUNTED;
    e.v.check = lbd_ct_check(h, be, gen);
    return e;
}

}  // namespace

TEST(ConntrackTable, CheckIsNeverZeroAndBindsBackendAndGeneration)
{
    for (uint32_t h : {0u, 1u, 0xffffffffu, 0x12345678u})
        for (uint32_t be : {0u, 1u, 7u})
            EXPECT_NE(lbd_ct_check(h, be, 0), 0u);
    EXPECT_NE(lbd_ct_check(42, 1, 0), lbd_ct_check(42, 2, 0));
    EXPECT_NE(lbd_ct_check(42, 1, 0), lbd_ct_check(42, 1, 1));
    EXPECT_NE(lbd_ct_check(42, 1, 0), lbd_ct_check(43, 1, 0));
}

TEST(ConntrackTable, FindsAFlowInAnyWayOfItsBucket)
{
    std::vector<lbd_ct_bucket> t(64);
    put(t, flow(1000), 3, 1, 0);
    put(t, flow(1001), 4, 1, LBD_CT_WAYS - 1);
    const lbd_ct_entry* a = ct_find(t, flow(1000), kSeed);
    const lbd_ct_entry* b = ct_find(t, flow(1001), kSeed);
    ASSERT_TRUE(a);
    ASSERT_TRUE(b);
    EXPECT_EQ(a->v.backend_id, 3u);
    EXPECT_EQ(b->v.backend_id, 4u);
    EXPECT_FALSE(ct_find(t, flow(1002), kSeed));
    EXPECT_FALSE(ct_find(t, flow(1000), kSeed + 1)) << "another seed, another bucket and check";
    EXPECT_FALSE(ct_find({}, flow(1000), kSeed));
}

TEST(ConntrackTable, AnEntryWhoseCheckDoesNotMatchIsNotRead)
{
    std::vector<lbd_ct_bucket> t(64);
    lbd_ct_entry& e = put(t, flow(1000), 3, 1);
    ASSERT_TRUE(ct_read(e, kSeed));
    e.v.backend_id = 9;  // a torn write: another flow's backend, this one's check
    EXPECT_FALSE(ct_read(e, kSeed));
    EXPECT_FALSE(ct_find(t, flow(1000), kSeed));
    e.v.backend_id = 3;
    e.key.sport = htons(1001);  // or another flow's key
    EXPECT_FALSE(ct_read(e, kSeed));
    e = lbd_ct_entry{};  // empty
    EXPECT_FALSE(ct_read(e, kSeed));
}

TEST(ConntrackTable, ForEachVisitsEveryFlowOnceAndSkipsTheRest)
{
    std::vector<lbd_ct_bucket> t(8);
    for (uint16_t p = 0; p < 20; p++)
        put(t, flow(uint16_t(2000 + p)), p + 1u, 1, p % LBD_CT_WAYS);
    // Some landed on the same way of one bucket and overwrote each other;
    // and one way is spoiled (if it held a flow, it no longer counts).
    t[0].e[0].v.check ^= 2;
    size_t held = 0;
    for (uint16_t p = 0; p < 20; p++)
        held += ct_find(t, flow(uint16_t(2000 + p)), kSeed) != nullptr;
    size_t seen = 0;
    ct_for_each(t, kSeed, [&](lbd_ct_entry& slot, const lbd_ct_entry& copy) {
        EXPECT_NE(&slot, &copy);
        EXPECT_EQ(slot.v.backend_id, copy.v.backend_id);
        seen++;
    });
    EXPECT_EQ(seen, held);
    EXPECT_GT(seen, 10u);
}

TEST(ConntrackTable, ClearCountedTouchesOnlyThatFlag)
{
    std::vector<lbd_ct_bucket> t(4);
    lbd_ct_entry& e = put(t, flow(1000), 3, 1);
    e.v.flags = LBD_CT_F_COUNTED | LBD_CT_F_CLOSED;
    ct_clear_counted(e);
    EXPECT_EQ(e.v.flags, uint32_t(LBD_CT_F_CLOSED));
    EXPECT_TRUE(ct_read(e, kSeed)) << "flags are outside the check";
}
