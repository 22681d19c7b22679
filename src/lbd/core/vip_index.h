// What lbd keeps to find a VIP fast in the program (bpf/lbd_shared.h): the
// prefilter bitmap (vip_filter) and the bucket index (vip_index), both over
// the buckets of lbd_vip_filter_bit(). A count of VIP keys per bucket keeps
// a bit set until the bucket's last VIP is gone; a bucket of exactly one VIP
// names its id, a bucket of several says "many" (the program then asks the
// vips hash). Pure: the map writer copies what changed to the maps.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "lbd/core/map_writer.h"
#include "lbd_hash.h"

namespace lbd {

class VipIndex {
public:
    static constexpr uint32_t kBuckets = 1u << LBD_VIP_FILTER_LOG2;

    /// What an add() or remove() changed: the bitmap, and index slots.
    struct Change {
        bool bitmap = false;
        std::vector<uint32_t> buckets;
    };

    VipIndex() : refs_(kBuckets, 0), slots_(kBuckets, LBD_VIP_INDEX_NONE) {}

    /// Counts a VIP key in (once, however often it is written).
    Change add(const lbd_vip_key& k, uint32_t vip_id)
    {
        Change c;
        if (auto it = ids_.find(k); it != ids_.end()) {
            if (it->second == vip_id)
                return c;
            c = remove(k);  // the key under another id: out, then in again
        }
        ids_.emplace(k, vip_id);
        const uint32_t b = lbd_vip_filter_bit(&k);
        const uint32_t n = ++refs_[b];
        if (n == 1) {
            bits_.bits[b / 64] |= uint64_t{1} << (b % 64);
            c.bitmap = true;
            set_slot(c, b, vip_id + 1);
        } else if (n == 2) {
            set_slot(c, b, LBD_VIP_INDEX_MANY);
        }
        return c;
    }

    /// Counts a VIP key out; nothing if it is not in.
    Change remove(const lbd_vip_key& k)
    {
        Change c;
        auto it = ids_.find(k);
        if (it == ids_.end())
            return c;
        ids_.erase(it);
        const uint32_t b = lbd_vip_filter_bit(&k);
        const uint32_t n = --refs_[b];
        if (n == 0) {
            bits_.bits[b / 64] &= ~(uint64_t{1} << (b % 64));
            c.bitmap = true;
            set_slot(c, b, LBD_VIP_INDEX_NONE);
        } else if (n == 1) {
            for (const auto& [key, id] : ids_)  // the bucket's one VIP left
                if (lbd_vip_filter_bit(&key) == b)
                    set_slot(c, b, id + 1);
        }
        return c;
    }

    /// What the program tests first: false means no VIP has this key.
    bool may_match(const lbd_vip_key& k) const
    {
        const uint32_t b = lbd_vip_filter_bit(&k);
        return (bits_.bits[b / 64] >> (b % 64)) & 1;
    }

    std::optional<uint32_t> id_of(const lbd_vip_key& k) const
    {
        auto it = ids_.find(k);
        return it == ids_.end() ? std::nullopt : std::optional<uint32_t>(it->second);
    }

    const lbd_vip_filter& bits() const { return bits_; }
    uint32_t slot(uint32_t bucket) const { return slots_.at(bucket); }
    size_t keys() const { return ids_.size(); }

private:
    void set_slot(Change& c, uint32_t b, uint32_t v)
    {
        if (slots_[b] != v) {
            slots_[b] = v;
            c.buckets.push_back(b);
        }
    }

    std::vector<uint32_t> refs_;
    std::vector<uint32_t> slots_;
    std::map<lbd_vip_key, uint32_t, VipKeyLess> ids_;
    lbd_vip_filter bits_{};
};

}  // namespace lbd
