// The connection table as lbd sees it: the buckets the program writes
// (bpf/conntrack.h, layout in bpf/lbd_shared.h), read and un-counted in place
// through a mapping of the map while the program runs. Pure: no libbpf; the
// Datapath hands over the mapped buckets.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "lbd_hash.h"

namespace lbd {

static_assert(sizeof(lbd_ct_entry) % sizeof(uint32_t) == 0);

/// Buckets of a table of `entries` entries (rounded up to whole buckets):
/// the map's max_entries.
constexpr uint32_t ct_buckets_for(uint32_t entries)
{
    return (entries + LBD_CT_WAYS - 1) / LBD_CT_WAYS;
}

/// A copy of the entry at `e`, which the program may be writing now, if it
/// holds a flow: its check matches (not empty, not torn). Word by word, as
/// the program writes it.
inline std::optional<lbd_ct_entry> ct_read(const lbd_ct_entry& e, uint32_t seed)
{
    uint32_t w[sizeof(lbd_ct_entry) / sizeof(uint32_t)];
    auto* src = reinterpret_cast<uint32_t*>(const_cast<lbd_ct_entry*>(&e));
    for (size_t i = 0; i < std::size(w); i++)
        w[i] = std::atomic_ref<uint32_t>(src[i]).load(std::memory_order_relaxed);
    lbd_ct_entry c;
    std::memcpy(&c, w, sizeof(c));
    if (c.v.check == 0 || c.v.check != lbd_ct_check(lbd_flow_hash(&c.key, seed), c.v.backend_id, c.v.backend_gen))
        return std::nullopt;
    return c;
}

/// The entry that holds `flow` (as the program would find it), or nullptr.
inline lbd_ct_entry* ct_find(std::span<lbd_ct_bucket> buckets, const lbd_flow_key& flow, uint32_t seed)
{
    if (buckets.empty())
        return nullptr;
    const uint32_t h = lbd_flow_hash(&flow, seed);
    auto& b = buckets[lbd_ct_bucket_of(h, uint32_t(buckets.size()))];
    for (auto& e : b.e) {
        auto c = ct_read(e, seed);
        if (c && std::memcmp(&c->key, &flow, sizeof(flow)) == 0)
            return &e;
    }
    return nullptr;
}

/// Calls fn(entry&, copy) for every entry that holds a flow; `copy` is what
/// it held when read (the program may change it meanwhile).
template <class Fn>
void ct_for_each(std::span<lbd_ct_bucket> buckets, uint32_t seed, Fn&& fn)
{
    for (auto& b : buckets)
        for (auto& e : b.e)
            if (e.v.check != 0)
                if (auto c = ct_read(e, seed))
                    fn(e, *c);
}

/// Clears LBD_CT_F_COUNTED of the entry, as the program sets it (atomically).
inline void ct_clear_counted(lbd_ct_entry& e)
{
    std::atomic_ref<uint32_t>(e.v.flags).fetch_and(~uint32_t(LBD_CT_F_COUNTED), std::memory_order_relaxed);
}

}  // namespace lbd
