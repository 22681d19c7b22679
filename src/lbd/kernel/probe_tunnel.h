// The health-check tunnel (bpf/hc_tunnel.bpf.c): a TC egress program on every
// datapath interface that encapsulates the packets of `via: tunnel` probes to
// their backend. It is attached while lbd runs and detached when it stops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/addr.h"
#include "lbd/core/config.h"

struct hc_tunnel;

namespace lbd {

/// Where the filter sits on each interface's clsact egress hook.
constexpr uint32_t kProbeTunnelPriority = 1;
constexpr uint32_t kProbeTunnelHandle = 0x4c42;  // "LB"

class ProbeTunnel {
public:
    /// Loads the program for cfg.probe_marks, its map sized for
    /// cfg.max_backends. Nothing is attached yet. Throws std::runtime_error.
    explicit ProbeTunnel(const DatapathConfig& cfg);
    /// Detaches what attach() attached and removes its pin.
    ~ProbeTunnel();
    ProbeTunnel(const ProbeTunnel&) = delete;
    ProbeTunnel& operator=(const ProbeTunnel&) = delete;

    /// Removes what a crashed lbd left (remove_pinned), then attaches to the
    /// egress of every configured interface (making its clsact qdisc if it
    /// has none) and pins the program under pin_path so that `lbd --detach`
    /// finds the filters should this lbd crash. Returns one log line per
    /// interface; on failure throws after undoing what it attached.
    std::vector<std::string> attach();

    /// Probes marked `mark` go to `backend` (the hc_targets map).
    void put(uint32_t mark, const IpAddr& backend);
    void remove(uint32_t mark);

    /// Counters summed over CPUs, indexed by enum lbd_hc_counter.
    std::vector<uint64_t> counters() const;
    int prog_fd() const;

    /// Detaches the program pinned under `pin_path` (by an lbd that did not
    /// stop cleanly) from every interface of this network namespace and
    /// removes the pin. Returns one line per thing removed.
    static std::vector<std::string> remove_pinned(const std::string& pin_path);

private:
    struct Hook {
        std::string iface;
        int ifindex;
        uint32_t prog_id;
    };
    void detach_all() noexcept;
    DatapathConfig cfg_;
    hc_tunnel* skel_ = nullptr;
    std::vector<Hook> attached_;
    std::string pin_;
    int ncpus_ = 1;
};

}  // namespace lbd
