#include "common/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <stdexcept>

using namespace lbd::maglev;

namespace {

constexpr uint32_t kM = 65537;

std::vector<Backend> make_backends(size_t n, uint32_t weight = 1)
{
    std::vector<Backend> out;
    for (uint32_t i = 0; i < n; ++i)
        out.push_back({"198.18." + std::to_string(2 + i / 250) + "." + std::to_string(i % 250) + ":80", weight, i});
    return out;
}

std::map<uint32_t, size_t> counts(const std::vector<uint32_t>& ring)
{
    std::map<uint32_t, size_t> c;
    for (uint32_t id : ring)
        ++c[id];
    return c;
}

double changed_fraction(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b)
{
    size_t changed = 0;
    for (size_t i = 0; i < a.size(); ++i)
        changed += a[i] != b[i];
    return static_cast<double>(changed) / static_cast<double>(a.size());
}

}  // namespace

TEST(Maglev, IsPrime)
{
    for (uint32_t p : {2u, 3u, 5u, 251u, 65537u, 131071u, 16777213u, 4294967291u})
        EXPECT_TRUE(is_prime(p)) << p;
    for (uint32_t n : {0u, 1u, 4u, 9u, 65536u, 65535u, 16777216u, 4294967295u})
        EXPECT_FALSE(is_prime(n)) << n;
}

TEST(Maglev, NonPrimeRingSizeThrows)
{
    auto b = make_backends(3);
    EXPECT_THROW(build_ring(b, 65536), std::invalid_argument);
    EXPECT_THROW(build_ring(b, 1), std::invalid_argument);
    EXPECT_THROW(build_ring({}, 0), std::invalid_argument);
}

TEST(Maglev, EmptyIsAllNoBackend)
{
    auto ring = build_ring({}, kM);
    ASSERT_EQ(ring.size(), kM);
    EXPECT_TRUE(std::all_of(ring.begin(), ring.end(), [](uint32_t id) { return id == kNoBackend; }));

    auto drained = make_backends(5, 0);
    ring = build_ring(drained, kM);
    EXPECT_TRUE(std::all_of(ring.begin(), ring.end(), [](uint32_t id) { return id == kNoBackend; }));
}

TEST(Maglev, DeterministicAndOrderIndependent)
{
    auto b = make_backends(37);
    auto ring = build_ring(b, kM);
    EXPECT_EQ(build_ring(b, kM), ring);

    std::mt19937 rng(42);
    for (int i = 0; i < 5; ++i) {
        std::shuffle(b.begin(), b.end(), rng);
        EXPECT_EQ(build_ring(b, kM), ring);
    }
}

TEST(Maglev, FixedOutput)
{
    // Every LB node must build the same ring, whatever the machine or build:
    // pin the output so a change to the hashes or the fill order shows up.
    std::vector<Backend> b{{"a", 1, 0}, {"b", 1, 1}, {"c", 1, 2}};
    EXPECT_EQ(build_ring(b, 13), (std::vector<uint32_t>{2, 2, 0, 0, 0, 0, 1, 0, 1, 2, 1, 2, 1}));
    std::vector<Backend> w{{"198.18.2.10:80", 1, 7}, {"198.18.2.11:80", 2, 8}};
    EXPECT_EQ(build_ring(w, 17), (std::vector<uint32_t>{8, 7, 8, 7, 8, 7, 8, 8, 8, 8, 7, 7, 8, 8, 8, 8, 7}));
}

uint64_t fnv(const std::vector<uint32_t>& ring)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t id : ring)
        for (int i = 0; i < 4; i++)
            h = (h ^ ((id >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    return h;
}

TEST(Maglev, FixedOutputFullSize)
{
    // Full-size rings, pinned by a hash of their slots: a faster build must
    // give every slot to the same backend as before (LB nodes of different
    // versions share a fleet).
    auto weighted = [](size_t n, uint32_t (*w)(uint32_t)) {
        auto b = make_backends(n);
        for (uint32_t i = 0; i < n; i++)
            b[i].weight = w(i);
        return b;
    };
    const uint64_t got[] = {
        fnv(build_ring(make_backends(10), kM)),
        fnv(build_ring(make_backends(1000), kM)),
        fnv(build_ring(weighted(1000, [](uint32_t i) { return uint32_t(1 + i % 5); }), kM)),
        fnv(build_ring(weighted(100, [](uint32_t i) { return uint32_t(1 + i % 100); }), kM)),
        fnv(build_ring(weighted(7, [](uint32_t i) { return i == 3 ? 0u : i * i + 1; }), 1021)),
    };
    const uint64_t want[] = {0x37cdbf4ef0782773ull, 0xa362a8dbfb9101ffull, 0x8ac7deb82e83aeafull,
                             0xdca036269a0e5eb0ull, 0x85265394f237b670ull};
    for (size_t i = 0; i < std::size(want); i++)
        EXPECT_EQ(got[i], want[i]) << "case " << i;
}

TEST(Maglev, EverySlotFilled)
{
    for (size_t n : {1, 2, 7, 100}) {
        auto b = make_backends(n);
        auto ring = build_ring(b, kM);
        EXPECT_EQ(std::count(ring.begin(), ring.end(), kNoBackend), 0) << n;
    }
    auto one = make_backends(1);
    auto ring = build_ring(one, 3);
    EXPECT_EQ(ring, (std::vector<uint32_t>{0, 0, 0}));
}

TEST(Maglev, EqualWeightsShareEvenly)
{
    for (size_t n : {3, 10, 100}) {
        auto ring = build_ring(make_backends(n), kM);
        auto c = counts(ring);
        ASSERT_EQ(c.size(), n);
        double ideal = static_cast<double>(kM) / static_cast<double>(n);
        for (auto [id, count] : c)
            EXPECT_LE(std::abs(static_cast<double>(count) - ideal), 0.01 * kM) << "n=" << n << " id=" << id;
    }
}

TEST(Maglev, WeightsHonoured)
{
    for (std::vector<uint32_t> weights : {std::vector<uint32_t>{1, 2, 3}, {1, 1, 1, 5}, {10, 1}, {100, 250, 65535},
                                          {3, 0, 7, 7, 1}}) {
        std::vector<Backend> b;
        for (uint32_t i = 0; i < weights.size(); ++i)
            b.push_back({"10.0.0." + std::to_string(i) + ":443", weights[i], i});
        auto c = counts(build_ring(b, kM));
        double total = 0;
        for (auto w : weights)
            total += w;
        for (uint32_t i = 0; i < weights.size(); ++i) {
            double ideal = kM * weights[i] / total;
            EXPECT_LE(std::abs(static_cast<double>(c[i]) - ideal), 0.01 * kM) << "backend " << i << " weight " << weights[i];
        }
    }
}

TEST(Maglev, WeightZeroOwnsNothing)
{
    auto b = make_backends(5);
    b[2].weight = 0;
    auto ring = build_ring(b, kM);
    EXPECT_EQ(std::count(ring.begin(), ring.end(), b[2].id), 0);
    EXPECT_EQ(std::count(ring.begin(), ring.end(), kNoBackend), 0);
    EXPECT_EQ(counts(ring).size(), 4u);
}

TEST(Maglev, MinimalDisruption)
{
    // Maglev moves more than the minimal 1/n: the survivors' claims shift too.
    // With 65537 slots that is ~1.02/n at n=10 but ~1.6/n at n=100 (the same
    // as textbook Maglev with random permutations), hence the looser bound.
    for (auto [n, bound] : {std::pair<size_t, double>{10, 1.5}, {100, 2.0}}) {
        auto all = make_backends(n);
        auto before = build_ring(all, kM);
        double worst = 0, sum = 0;
        size_t trials = std::min<size_t>(n, 20);
        for (size_t k = 0; k < trials; ++k) {
            auto fewer = all;
            fewer.erase(fewer.begin() + static_cast<long>(k * n / trials));
            auto after = build_ring(fewer, kM);
            double f = changed_fraction(before, after);
            worst = std::max(worst, f);
            sum += f;
            EXPECT_LE(f, bound / static_cast<double>(n)) << "n=" << n << " removed " << k * n / trials;

            // Adding the backend back restores the original ring.
            fewer.push_back(all[k * n / trials]);
            EXPECT_EQ(build_ring(fewer, kM), before);
        }
        std::printf("[ maglev   ] n=%zu: removing one backend moves %.4f of slots on average, %.4f worst (1/n = %.4f)\n",
                    n, sum / static_cast<double>(trials), worst, 1.0 / static_cast<double>(n));
    }
}

TEST(Maglev, ThousandBackendsBuild)
{
    auto b = make_backends(1000);
    auto start = std::chrono::steady_clock::now();
    auto ring = build_ring(b, kM);
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("[ maglev   ] 1000 backends, ring %u: built in %.2f ms\n", kM, ms);
    EXPECT_EQ(std::count(ring.begin(), ring.end(), kNoBackend), 0);
    EXPECT_EQ(counts(ring).size(), 1000u);
}
