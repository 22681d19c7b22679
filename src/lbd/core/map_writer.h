// The one seam between lbd's logic and the kernel: everything lbd writes into
// the datapath's maps goes through this interface. The real implementation
// (kernel/bpf_map_writer) calls libbpf; tests use MemMapWriter.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "lbd_shared.h"

namespace lbd {

class MapWriter {
public:
    virtual ~MapWriter() = default;
    virtual void put_vip(const lbd_vip_key& key, const lbd_vip_meta& meta) = 0;
    virtual void delete_vip(const lbd_vip_key& key) = 0;
    virtual void put_backend(uint32_t id, const lbd_backend& be) = 0;
    /// Zeroes what the program counts for an id given to a new backend
    /// (statistics, least-conn active flows).
    virtual void reset_backend_stats(uint32_t id) = 0;
    /// Zeroes a new VIP's statistics and starts its round-robin cursors.
    virtual void reset_vip_stats(uint32_t vip_id) = 0;
    /// Writes the VIP's whole ring (ring_size backend ids) in one update.
    virtual void put_ring(uint32_t vip_id, std::span<const uint32_t> ring) = 0;
    virtual void put_config(const lbd_config& cfg) = 0;
    /// The members of a VIP that no ring schedules (sched map, key vip_id).
    virtual void put_sched(uint32_t vip_id, const lbd_sched& s) = 0;
    virtual void delete_sched(uint32_t vip_id) = 0;
    /// A backend id's configured weight (backend_weight map; persistence
    /// checks it: a drained backend gets no persistent client's new flow).
    virtual void put_backend_weight(uint32_t id, uint32_t weight) = 0;

    // Reads, for adopting maps an earlier lbd left pinned.
    /// Every backends entry that is not all zero.
    virtual std::map<uint32_t, lbd_backend> read_backends() const = 0;
    virtual std::vector<std::pair<lbd_vip_key, lbd_vip_meta>> read_vips() const = 0;
};

struct VipKeyLess {
    bool operator()(const lbd_vip_key& a, const lbd_vip_key& b) const
    {
        return std::memcmp(&a, &b, sizeof a) < 0;
    }
};

/// In-memory MapWriter for unit tests: records what was written.
class MemMapWriter final : public MapWriter {
public:
    explicit MemMapWriter(uint32_t ring_size) : ring_size_(ring_size) {}

    void put_vip(const lbd_vip_key& key, const lbd_vip_meta& meta) override { vips[key] = meta; }
    void delete_vip(const lbd_vip_key& key) override { vips.erase(key); }
    void put_backend(uint32_t id, const lbd_backend& be) override { backends[id] = be; }
    void reset_backend_stats(uint32_t id) override { backend_stats_resets.push_back(id); }
    void reset_vip_stats(uint32_t id) override { vip_stats_resets.push_back(id); }
    void put_ring(uint32_t vip_id, std::span<const uint32_t> r) override
    {
        if (r.size() != ring_size_)
            throw std::logic_error("ring of " + std::to_string(r.size()) + " slots, not " +
                                   std::to_string(ring_size_));
        for (size_t i = 0; i < r.size(); i++)
            ring[uint64_t(vip_id) * ring_size_ + i] = r[i];
        ring_writes++;
    }
    void put_config(const lbd_config& cfg) override { config = cfg; }
    void put_sched(uint32_t vip_id, const lbd_sched& s) override { sched[vip_id] = s; }
    void delete_sched(uint32_t vip_id) override { sched.erase(vip_id); }
    void put_backend_weight(uint32_t id, uint32_t weight) override { backend_weights[id] = weight; }
    std::map<uint32_t, lbd_backend> read_backends() const override { return backends; }
    std::vector<std::pair<lbd_vip_key, lbd_vip_meta>> read_vips() const override
    {
        return {vips.begin(), vips.end()};
    }

    std::map<lbd_vip_key, lbd_vip_meta, VipKeyLess> vips;
    std::map<uint32_t, lbd_backend> backends;
    std::map<uint64_t, uint32_t> ring;
    std::map<uint32_t, lbd_sched> sched;
    std::map<uint32_t, uint32_t> backend_weights;
    std::vector<uint32_t> backend_stats_resets, vip_stats_resets;
    lbd_config config{};
    size_t ring_writes = 0;  ///< put_ring calls (whole rings)

private:
    uint32_t ring_size_;
};

}  // namespace lbd
