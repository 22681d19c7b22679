// IndexTable: the half-open prober's index of probes in flight by flow.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "health/index_table.h"

using lbd::health::IndexTable;

namespace {

struct Key {
    uint32_t a = 0;
    uint16_t b = 0;
    bool operator==(const Key&) const = default;
};

/// Every key lands in one of `buckets` home slots: long runs, many wraps.
template <size_t buckets>
struct FewHomes {
    size_t operator()(const Key& k) const { return (k.a * 2654435761u + k.b) % buckets; }
};

struct FullHash {
    size_t operator()(const Key& k) const { return (uint64_t{k.a} << 16 | k.b) * 0x9e3779b97f4a7c15ull; }
};

}  // namespace

TEST(IndexTable, FindsWhatWasInsertedAndNotWhatWasErased)
{
    std::vector<Key> keys{{1, 80}, {1, 81}, {2, 80}};
    auto key_of = [&](uint32_t i) -> const Key& { return keys[i]; };
    IndexTable<Key, FullHash> t;
    EXPECT_FALSE(t.find(Key{1, 80}, key_of));
    for (uint32_t i = 0; i < keys.size(); ++i)
        t.insert(i, key_of);
    EXPECT_EQ(t.size(), 3u);
    EXPECT_EQ(t.find(Key{1, 81}, key_of), 1u);
    EXPECT_EQ(t.find(Key{2, 80}, key_of), 2u);
    EXPECT_FALSE(t.find(Key{2, 81}, key_of));
    EXPECT_TRUE(t.erase(Key{1, 81}, key_of));
    EXPECT_FALSE(t.erase(Key{1, 81}, key_of));
    EXPECT_FALSE(t.find(Key{1, 81}, key_of));
    EXPECT_EQ(t.find(Key{1, 80}, key_of), 0u);
    EXPECT_EQ(t.size(), 2u);
}

// Against a std::map, with colliding homes so that erasing from the middle
// of runs (and runs that wrap around the end) is exercised; the table
// grows from empty on the way.
template <class Hash>
void random_ops_match_a_map(uint32_t seed)
{
    std::mt19937 rng(seed);
    std::vector<Key> keys;  // entries: index -> key (a pool, slots reused)
    std::vector<uint32_t> free;
    std::map<std::pair<uint32_t, uint16_t>, uint32_t> model;
    auto key_of = [&](uint32_t i) -> const Key& { return keys[i]; };
    IndexTable<Key, Hash> t;
    for (int step = 0; step < 20000; ++step) {
        Key k{static_cast<uint32_t>(rng() % 300), static_cast<uint16_t>(rng() % 4)};
        auto m = model.find({k.a, k.b});
        if (rng() % 3 != 0) {  // insert if absent
            if (m != model.end())
                continue;
            uint32_t i;
            if (!free.empty()) {
                i = free.back();
                free.pop_back();
                keys[i] = k;
            } else {
                i = static_cast<uint32_t>(keys.size());
                keys.push_back(k);
            }
            t.insert(i, key_of);
            model[{k.a, k.b}] = i;
        } else {
            ASSERT_EQ(t.erase(k, key_of), m != model.end());
            if (m != model.end()) {
                free.push_back(m->second);
                model.erase(m);
            }
        }
        ASSERT_EQ(t.size(), model.size());
        ASSERT_LE(t.size() * 2, t.capacity());
        if (step % 97 == 0) {
            for (auto& [kk, i] : model)
                ASSERT_EQ(t.find(Key{kk.first, kk.second}, key_of), i);
        }
    }
    for (auto& [kk, i] : model)
        EXPECT_EQ(t.find(Key{kk.first, kk.second}, key_of), i);
}

TEST(IndexTable, RandomInsertsAndErasesMatchAMapWithFewHomes)
{
    random_ops_match_a_map<FewHomes<7>>(1);
}

TEST(IndexTable, RandomInsertsAndErasesMatchAMapWithAGoodHash)
{
    random_ops_match_a_map<FullHash>(2);
}

// Homes near the end of the table: runs wrap around to slot 0, and
// erasing must not pull an entry whose home is after the hole.
struct NearEnd {
    size_t operator()(const Key& k) const { return k.b == 0 ? 63 : 62; }
};

TEST(IndexTable, ErasingInARunThatWrapsKeepsTheRestFindable)
{
    std::vector<Key> keys{{1, 0}, {2, 0}, {3, 1}, {4, 0}, {5, 1}};
    auto key_of = [&](uint32_t i) -> const Key& { return keys[i]; };
    IndexTable<Key, NearEnd> t;  // 64 slots
    for (uint32_t i = 0; i < keys.size(); ++i)
        t.insert(i, key_of);
    ASSERT_EQ(t.capacity(), 64u);
    EXPECT_TRUE(t.erase(Key{3, 1}, key_of));  // home 62
    EXPECT_TRUE(t.erase(Key{1, 0}, key_of));  // home 63
    for (uint32_t i : {1u, 3u, 4u})
        EXPECT_EQ(t.find(keys[i], key_of), i) << i;
    EXPECT_EQ(t.size(), 3u);
}
