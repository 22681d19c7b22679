// The VIP prefilter's bitmap (bpf/lbd_shared.h, struct lbd_vip_filter) as lbd
// keeps it: a count of VIP keys per bucket, so a bucket's bit is cleared only
// when its last VIP is gone. Pure: the map writer copies bits() to the map.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "lbd/core/map_writer.h"
#include "lbd_hash.h"

namespace lbd {

class VipFilter {
public:
    VipFilter() : refs_(size_t(1) << LBD_VIP_FILTER_LOG2, 0) {}

    /// Counts a VIP key in (once, however often it is written). True when
    /// its bucket's bit was clear: the bitmap must be written before the VIP.
    bool add(const lbd_vip_key& k)
    {
        if (!keys_.insert(k).second)
            return false;
        const uint32_t b = lbd_vip_filter_bit(&k);
        if (refs_[b]++ != 0)
            return false;
        bits_.bits[b / 64] |= uint64_t{1} << (b % 64);
        return true;
    }

    /// Counts a VIP key out. True when its bucket's bit went clear: write the
    /// bitmap after the VIP is gone.
    bool remove(const lbd_vip_key& k)
    {
        if (keys_.erase(k) == 0)
            return false;
        const uint32_t b = lbd_vip_filter_bit(&k);
        if (--refs_[b] != 0)
            return false;
        bits_.bits[b / 64] &= ~(uint64_t{1} << (b % 64));
        return true;
    }

    /// What the program tests: false means no VIP has this key.
    bool may_match(const lbd_vip_key& k) const
    {
        const uint32_t b = lbd_vip_filter_bit(&k);
        return (bits_.bits[b / 64] >> (b % 64)) & 1;
    }

    const lbd_vip_filter& bits() const { return bits_; }
    size_t keys() const { return keys_.size(); }

private:
    std::vector<uint32_t> refs_;
    std::set<lbd_vip_key, VipKeyLess> keys_;
    lbd_vip_filter bits_{};
};

}  // namespace lbd
