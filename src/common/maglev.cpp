#include "common/maglev.h"

#include <algorithm>
#include <stdexcept>

namespace lbd::maglev {

namespace {

/// FNV-1a 64 over `key`, starting from `seed` instead of the usual offset
/// basis, then a SplitMix64 finaliser so every output bit depends on every
/// input bit. Fixed arithmetic: the same on every machine and build.
uint64_t hash(const std::string& key, uint64_t seed)
{
    uint64_t h = seed;
    for (unsigned char c : key) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

constexpr uint64_t kSeedOffset = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
constexpr uint64_t kSeedSkip = 0x9e3779b97f4a7c15ull;

struct Slotter {
    uint32_t id;
    uint32_t weight;
    uint32_t next;  // the next slot of this backend's permutation to try
    uint32_t skip;
    uint64_t credit = 0;
};

}  // namespace

bool is_prime(uint32_t n)
{
    if (n < 2)
        return false;
    for (uint32_t d = 2; uint64_t{d} * d <= n; ++d)
        if (n % d == 0)
            return false;
    return true;
}

std::vector<uint32_t> build_ring(std::span<const Backend> backends, uint32_t ring_size)
{
    if (!is_prime(ring_size))
        throw std::invalid_argument("maglev ring size " + std::to_string(ring_size) +
                                    " is not prime");
    std::vector<uint32_t> ring(ring_size, kNoBackend);

    std::vector<const Backend*> sorted;
    sorted.reserve(backends.size());
    for (const auto& b : backends) {
        if (b.id == kNoBackend)
            throw std::invalid_argument("maglev backend id " + std::to_string(b.id) + " is reserved");
        if (b.weight > 0)
            sorted.push_back(&b);
    }
    if (sorted.empty())
        return ring;
    std::sort(sorted.begin(), sorted.end(), [](const Backend* a, const Backend* b) {
        return a->key != b->key ? a->key < b->key : a->id < b->id;
    });

    const uint32_t m = ring_size;
    uint32_t max_weight = 0;
    std::vector<Slotter> slotters;
    slotters.reserve(sorted.size());
    for (const Backend* b : sorted) {
        max_weight = std::max(max_weight, b->weight);
        slotters.push_back({b->id, b->weight,
                            static_cast<uint32_t>(hash(b->key, kSeedOffset) % m),
                            static_cast<uint32_t>(hash(b->key, kSeedSkip) % (m - 1) + 1)});
    }

    // Rounds: each backend earns its weight in credit and claims one slot per
    // max_weight of credit, so shares follow the weights. Permutation j of a
    // backend is (offset + j * skip) % m, walked by adding skip mod m. Most
    // of the time goes into probing taken slots near the end (about m * ln m
    // probes in all): they test a bitmap (8 KiB for 65537 slots, in L1), not
    // the ring (256 KiB).
    std::vector<uint64_t> taken((m + 63) / 64);
    auto is_taken = [&](uint32_t i) { return (taken[i >> 6] >> (i & 63)) & 1; };
    uint32_t filled = 0;
    while (true) {
        for (auto& s : slotters) {
            s.credit += s.weight;
            for (; s.credit >= max_weight; s.credit -= max_weight) {
                while (is_taken(s.next)) {
                    uint64_t next = uint64_t{s.next} + s.skip;  // no u32 overflow near 2^32
                    s.next = static_cast<uint32_t>(next >= m ? next - m : next);
                }
                taken[s.next >> 6] |= uint64_t{1} << (s.next & 63);
                ring[s.next] = s.id;
                if (++filled == m)
                    return ring;
            }
        }
    }
}

}  // namespace lbd::maglev
