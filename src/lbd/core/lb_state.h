// The desired-state engine: turns the configured VIPs and backends into map
// entries through the MapWriter seam, and on every later change writes only
// what changed (new backends, ring slots that moved, retired ids). Pure: no
// libbpf, no sockets.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/addr.h"
#include "lbd/core/config.h"
#include "lbd/core/map_writer.h"

namespace lbd {

struct BackendState {
    IpAddr address;
    uint16_t port = 0;
    uint32_t weight = 1;
    uint32_t id = 0;     // index in the backends map
    uint32_t gen = 0;    // generation written with it
    bool up = true;      // health: a VIP with health checks starts its backends down
    bool sorry = false;  // serves only when no other backend is up
};

struct VipState {
    std::string name;
    IpAddr address;
    uint16_t port = 0;
    Protocol protocol = Protocol::Tcp;
    Algorithm algorithm = Algorithm::Maglev;
    std::optional<Persistence> persistence;
    bool one_packet = false;
    bool health_checked = false;  // backends start down until checks pass
    uint32_t vip_id = 0;
    std::vector<BackendState> backends;  // sorted by address

    lbd_vip_key key() const;
    /// The vips map value: id, algorithm, persistence, one-packet.
    lbd_vip_meta meta() const;
    const BackendState* find(const IpAddr& a) const;
};

/// Hands out backend ids 1..capacity; id 0 is never used, so the zeroed ring
/// of a fresh map names no valid backend. An id whose backend was removed gracefully stays
/// valid (its pinned flows finish) and is reused only when no other id is
/// left; reuse bumps its generation, which ends those flows.
class BackendIds {
public:
    explicit BackendIds(uint32_t capacity) : capacity_(capacity + 1), gen_(capacity + 1, 0) {}
    /// An id and its new generation, or nullopt when all ids are live.
    std::optional<std::pair<uint32_t, uint32_t>> take();
    void retire(uint32_t id) { retired_.push_back(id); }
    /// Frees at once and returns the bumped generation that invalidates old flows.
    uint32_t release(uint32_t id);
    /// Takes over the ids found in adopted maps: `referenced` ones are live,
    /// other valid ones are retired (pinned flows may still use them).
    void adopt(const std::map<uint32_t, lbd_backend>& entries, const std::set<uint32_t>& referenced);
    uint32_t live() const { return next_fresh_ - 1 - uint32_t(free_.size() + retired_.size()); }

private:
    uint32_t capacity_;
    uint32_t next_fresh_ = 1;
    std::vector<uint32_t> gen_;
    std::deque<uint32_t> free_;
    std::deque<uint32_t> retired_;
};

class LbState {
public:
    LbState(MapWriter& writer, uint32_t ring_size, uint32_t max_vips, uint32_t max_backends);

    /// Makes the datapath serve exactly `vips`. The config must already be
    /// valid (validate()). Returns one human-readable line per change made.
    std::vector<std::string> apply(const std::vector<VipConfig>& vips);

    /// Takes over maps an earlier lbd left pinned, given the VIP states it
    /// saved (runtime state). What the maps do not confirm is dropped (apply()
    /// then re-creates it); map entries nothing explains are removed. Call
    /// once, before apply(). Returns one line per VIP adopted or dropped.
    std::vector<std::string> adopt(std::vector<VipState> saved);

    /// Writes the encapsulation source prefixes (none: the node's address).
    void set_encap_sources(const std::optional<Prefix>& v4, const std::optional<Prefix>& v6);

    /// Health checks moved a backend up or down: a down backend leaves the
    /// ring at once (only its slots move) and its pinned flows are
    /// re-scheduled; an up one re-enters. Returns false if nothing changed.
    bool set_health(const std::string& vip, const IpAddr& address, bool up);

    /// Removes one backend from a VIP. Graceful (force = false): no new flows,
    /// pinned flows go on. Forced: pinned flows are re-scheduled at once.
    /// Returns false if there is no such VIP or backend.
    bool remove_backend(const std::string& vip, const IpAddr& address, bool force);

    const std::map<std::string, VipState>& vips() const { return vips_; }
    /// Ids of every backend of a least-conn VIP (whose counters lbd re-counts).
    std::vector<uint32_t> least_conn_backend_ids() const;
    uint32_t ring_size() const { return ring_size_; }

private:
    /// A VIP of apply() whose backends are written and whose ring is still
    /// to build (in parallel with others) and to write, with what follows it.
    struct Pending {
        VipState* v;
        const VipConfig* cfg;
        bool added;                          ///< new VIP: its entry goes in last
        std::vector<BackendState> removed;   ///< retired once the ring no longer names them
    };
    /// Everything of a new or changed VIP up to its ring; nullopt when an
    /// update leaves the ring as it is (done already).
    Pending add_vip(const VipConfig& cfg);
    std::optional<Pending> update_vip(VipState& v, const VipConfig& cfg, std::vector<std::string>& log);
    /// Writes a pending VIP's ring and what must follow it.
    void finish_one(Pending& p, const std::vector<uint32_t>& ring, std::vector<std::string>& log);
    /// use(i, ring of vs[i]) for every i in order; worker threads build the
    /// rings a few ahead of the one in use.
    void build_rings(const std::vector<VipState*>& vs,
                     const std::function<void(size_t, const std::vector<uint32_t>&)>& use) const;
    void delete_vip(const VipState& v, std::vector<std::string>& log);
    BackendState add_backend(const BackendConfig& b, bool health_checked);
    void write_backend(const BackendState& b, uint8_t flags);
    std::vector<uint32_t> build_ring(const VipState& v) const;
    /// Scheduling beyond the ring (scheduling.h): every backend's weight, and
    /// for round-robin, weighted, least-conn and failover the VIP's members
    /// (those that may take new flows). Call wherever the ring is written.
    void write_sched(const VipState& v);
    /// update_vip's part for algorithm, persistence and one_packet.
    void update_scheduling(VipState& v, const VipConfig& cfg, std::vector<std::string>& log);

    MapWriter& w_;
    uint32_t ring_size_;
    uint32_t max_vips_;
    BackendIds ids_;
    std::vector<bool> vip_id_used_;
    std::map<std::string, VipState> vips_;
};

/// Bytes of an address as the maps store them.
lbd_addr to_lbd_addr(const IpAddr& a);

}  // namespace lbd
