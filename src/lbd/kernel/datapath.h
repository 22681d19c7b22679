// The datapath owner: the XDP program's skeleton, its attachments, and the
// real MapWriter. This and neigh.* are the only places lbd talks to the kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lbd/core/config.h"
#include "lbd/core/map_writer.h"

struct xdp_lb;

namespace lbd {

/// Mounts bpffs on /sys/fs/bpf when it is not mounted. Throws on failure.
void ensure_bpffs();

/// Sets net.ipv{4,6}.conf.IFACE.forwarding=1 (needed for bpf_fib_lookup);
/// returns one log line per sysctl it changed.
std::vector<std::string> enable_forwarding(const std::string& iface);

/// Driver name of an interface ("veth", "mlx5_core", ...), empty if unknown.
std::string driver_name(const std::string& iface);

class BpfMapWriter final : public MapWriter {
public:
    explicit BpfMapWriter(xdp_lb* skel, uint32_t ring_size);
    void put_vip(const lbd_vip_key& key, const lbd_vip_meta& meta) override;
    void delete_vip(const lbd_vip_key& key) override;
    void put_backend(uint32_t id, const lbd_backend& be) override;
    void reset_backend_stats(uint32_t id) override;
    void reset_vip_stats(uint32_t vip_id) override;
    void put_ring_slots(uint32_t vip_id, std::span<const uint32_t> slots,
                        std::span<const uint32_t> ids) override;
    void put_config(const lbd_config& cfg) override;

private:
    void zero_percpu(int fd, uint32_t idx, size_t value_size);
    xdp_lb* skel_;
    uint32_t ring_size_;
    int ncpus_;
};

struct Attachment {
    std::string iface;
    int ifindex = 0;
    XdpMode mode = XdpMode::Native;  // what was actually used
    int link_fd = -1;
};

class Datapath {
public:
    /// Opens the program, sizes its maps from `cfg` and loads it (verifier).
    /// Nothing is attached yet. Throws std::runtime_error with a clear message.
    explicit Datapath(const DatapathConfig& cfg);
    ~Datapath();
    Datapath(const Datapath&) = delete;
    Datapath& operator=(const Datapath&) = delete;

    /// Attaches to every configured interface (bpf_link; detached again when
    /// this object goes away). Returns one log line per interface; on failure
    /// detaches what it attached and throws.
    std::vector<std::string> attach();
    void detach();

    MapWriter& writer() { return *writer_; }
    int prog_fd() const;
    int neigh_events_fd() const;
    const std::vector<Attachment>& attachments() const { return attached_; }

    /// Counters summed over CPUs, indexed by enum lbd_counter.
    std::vector<uint64_t> counters() const;
    lbd_stats vip_stats(uint32_t vip_id) const;
    lbd_stats backend_stats(uint32_t id) const;

private:
    lbd_stats read_stats(int fd, uint32_t idx) const;
    DatapathConfig cfg_;
    xdp_lb* skel_ = nullptr;
    std::unique_ptr<BpfMapWriter> writer_;
    std::vector<Attachment> attached_;
    int ncpus_ = 1;
};

}  // namespace lbd
