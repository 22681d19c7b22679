// Weighted Maglev consistent hashing (Eisenbud et al., NSDI 2016). Pure.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lbd::maglev {

constexpr uint32_t kNoBackend = 0xffffffffu;  // same value as LBD_NO_BACKEND

struct Backend {
    std::string key;   // stable identity, e.g. "198.18.2.10:80": drives the permutation
    uint32_t weight;   // 0 = not in the ring
    uint32_t id;       // value written to the slots this backend owns
};

bool is_prime(uint32_t n);

/// Fills a ring of `ring_size` slots (must be prime). Each backend with
/// weight > 0 owns a share of slots proportional to its weight. The result
/// depends only on the set of (key, weight, id), not on the order of
/// `backends`, so every LB node with the same backends builds the same ring.
/// With no backend of weight > 0, every slot is kNoBackend.
std::vector<uint32_t> build_ring(std::span<const Backend> backends, uint32_t ring_size);

}  // namespace lbd::maglev
