// The datapath owner: the XDP program's skeleton, its attachments, and the
// real MapWriter. This and neigh.* are the only places lbd talks to the kernel.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lbd/core/config.h"
#include "lbd/core/map_writer.h"
#include "lbd/core/vip_index.h"

struct xdp_lb;

namespace lbd {

/// Mounts bpffs on /sys/fs/bpf when it is not mounted. Throws on failure.
void ensure_bpffs();

/// Sets net.ipv{4,6}.conf.IFACE.forwarding=1 (needed for bpf_fib_lookup);
/// returns one log line per sysctl it changed.
std::vector<std::string> enable_forwarding(const std::string& iface);

/// Driver name of an interface ("veth", "mlx5_core", ...), empty if unknown.
std::string driver_name(const std::string& iface);

/// An mmap of a BPF_F_MMAPABLE array map (all its values), unmapped at the end.
class MapMapping {
public:
    /// Throws (naming `what`) if the map cannot be mapped.
    MapMapping(int map_fd, size_t bytes, const char* what);
    ~MapMapping();
    MapMapping(const MapMapping&) = delete;
    MapMapping& operator=(const MapMapping&) = delete;
    void* data() const { return base_; }

private:
    void* base_ = nullptr;
    size_t len_ = 0;
};

/// The least-conn counters (lc_active: one value, a __s32 per backend id),
/// mapped into lbd's memory so that one counter is read or written at a
/// time: the program adds to the others meanwhile. Ids outside the map
/// read as 0 and are not written.
class LcCounters {
public:
    explicit LcCounters(int map_fd, uint32_t value_size);
    LcCounters(const LcCounters&) = delete;
    LcCounters& operator=(const LcCounters&) = delete;
    int32_t get(uint32_t id) const;
    void set(uint32_t id, int32_t n);

private:
    int32_t* slot(uint32_t id) const;
    MapMapping map_;
    uint32_t count_ = 0;
};

class BpfMapWriter final : public MapWriter {
public:
    explicit BpfMapWriter(xdp_lb* skel, uint32_t ring_size);
    void put_vip(const lbd_vip_key& key, const lbd_vip_meta& meta) override;
    void delete_vip(const lbd_vip_key& key) override;
    void put_backend(uint32_t id, const lbd_backend& be) override;
    void reset_backend_stats(uint32_t id) override;
    void reset_vip_stats(uint32_t vip_id) override;
    void put_ring(uint32_t vip_id, std::span<const uint32_t> ring) override;
    void put_config(const lbd_config& cfg) override;
    void put_sched(uint32_t vip_id, const lbd_sched& s) override;
    void delete_sched(uint32_t vip_id) override;
    void put_backend_weight(uint32_t id, uint32_t weight) override;
    std::map<uint32_t, lbd_backend> read_backends() const override;
    std::vector<std::pair<lbd_vip_key, lbd_vip_meta>> read_vips() const override;
    LcCounters& lc_counters() { return lc_; }

private:
    void zero_percpu(int fd, uint32_t idx, size_t value_size);
    void put_vip_entry(const lbd_vip_key& key, const lbd_vip_meta& meta);
    void write_index(const VipIndex::Change& c);
    xdp_lb* skel_;
    uint32_t ring_size_;
    int ncpus_;
    VipIndex index_;  ///< what vip_filter and vip_index hold, from every key in vips
    LcCounters lc_;
};

struct Attachment {
    std::string iface;
    int ifindex = 0;
    XdpMode mode = XdpMode::Native;  // what was actually used
    int link_fd = -1;
};

/// How the datapath is kept across lbd restarts: maps and one XDP link per
/// interface are pinned under pin_path, so forwarding goes on while no lbd
/// runs, and the next lbd adopts them (connection table included).
enum class Pinning { Pin, None };

class Datapath {
public:
    /// Opens the program and sizes its maps from `cfg`. With Pinning::Pin,
    /// maps pinned under cfg.pin_path by an earlier lbd are adopted when they
    /// were made for the same ABI, ring size, hash seed and sizes; otherwise
    /// this throws, naming the difference, and changes nothing. Then loads
    /// (verifier). Nothing is attached yet. Throws std::runtime_error.
    explicit Datapath(const DatapathConfig& cfg, Pinning pinning = Pinning::Pin);
    ~Datapath();  // closes its fds; what is pinned stays and keeps forwarding
    Datapath(const Datapath&) = delete;
    Datapath& operator=(const Datapath&) = delete;

    /// True when the maps (and so the connection table) were adopted.
    bool adopted() const { return adopted_; }
    /// How the program tells time (bpf/clock.h), for the log.
    std::string clock() const;
    /// The connection table's size, for the log: "1048576 entries (131072
    /// buckets of 8), 64 MiB".
    std::string conntrack_summary() const;

    /// Attaches to every configured interface: a pinned link left by an
    /// earlier lbd gets this program swapped in (no packet is missed); else a
    /// new link is made (and pinned). Pinned links of interfaces no longer
    /// configured are removed. Returns one log line per interface; on failure
    /// throws after undoing what this call attached.
    std::vector<std::string> attach();

    /// Removes every pin under `pin_path` (links first, which detaches XDP,
    /// then maps) and the directory. Returns one line per thing removed.
    static std::vector<std::string> remove_pins(const std::string& pin_path);

    MapWriter& writer() { return *writer_; }
    int prog_fd() const;
    int neigh_events_fd() const;
    const std::vector<Attachment>& attachments() const { return attached_; }

    /// Counters summed over CPUs, indexed by enum lbd_counter.
    std::vector<uint64_t> counters() const;
    lbd_stats vip_stats(uint32_t vip_id) const;
    lbd_stats backend_stats(uint32_t id) const;
    /// Backend id -> connection table entries seen in the last `idle_ns`.
    std::map<uint32_t, uint64_t> active_flows(uint64_t idle_ns) const;
    /// Backend id -> the program's least-conn counter (lc_active) for `ids`.
    std::map<uint32_t, int64_t> least_conn_active(const std::vector<uint32_t>& ids) const;
    /// Re-counts lc_active for `ids` (backends of least-conn VIPs) from the
    /// connection table: counted, not closed entries whose backend still
    /// has their generation, seen within the idle timeout (TCP: tcp_idle_ns,
    /// UDP: udp_idle_ns). Counted entries idle longer stop counting (their
    /// next packet counts them again). Returns the number so un-counted.
    /// Flows opened or closed during the walk may be off by one until the
    /// next call (docs/scheduling.md).
    size_t reconcile_least_conn(const std::vector<uint32_t>& ids, uint64_t tcp_idle_ns,
                                uint64_t udp_idle_ns);
    /// The connection table's buckets, mapped (the program writes them
    /// meanwhile: read entries with ct_read, lbd/core/conntrack_table.h).
    std::span<lbd_ct_bucket> conntrack() const;

private:
    lbd_stats read_stats(int fd, uint32_t idx) const;
    void check_pinned_meta() const;
    DatapathConfig cfg_;
    Pinning pinning_;
    bool adopted_ = false;
    xdp_lb* skel_ = nullptr;
    std::unique_ptr<BpfMapWriter> writer_;
    std::vector<Attachment> attached_;
    int ncpus_ = 1;
    std::optional<MapMapping> ct_map_;
    uint32_t ct_buckets_ = 0;
};

}  // namespace lbd
