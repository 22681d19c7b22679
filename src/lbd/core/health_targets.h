// What lbd probes: the health-check targets of the running VIPs, and the
// socket marks of the backends probed `via: tunnel` (docs/health.md#via).
// Pure: the TC program's map is written from ProbeMarks::Change by the
// kernel side (kernel/probe_tunnel.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "common/addr.h"
#include "health/probe.h"
#include "lbd/core/config.h"

namespace lbd {

/// Which mark each backend probed via tunnel has: the key of the TC
/// program's hc_targets map, set on the probe's socket. A backend keeps its
/// mark for as long as it is probed that way (a VIP added or removed does
/// not move the others). A new one gets the first free mark after the last
/// one given, so a mark just freed, which a closing probe socket may still
/// carry, is given again only after the whole range has gone round.
class ProbeMarks {
public:
    explicit ProbeMarks(MarkRange range) : range_(range) {}

    struct Change {
        std::vector<std::pair<uint32_t, IpAddr>> put;  ///< marks given: write before probing with them
        std::vector<uint32_t> remove;                   ///< marks freed: delete once their probes stopped
        bool empty() const { return put.empty() && remove.empty(); }
    };

    /// Makes `backends` the set of backends with a mark. Throws
    /// std::length_error when the range cannot hold them all (the config
    /// validation refuses such a config first), changing nothing.
    Change assign(const std::set<IpAddr>& backends);
    std::optional<uint32_t> mark_of(const IpAddr& backend) const;
    const std::map<IpAddr, uint32_t>& marks() const { return marks_; }
    const MarkRange& range() const { return range_; }

private:
    MarkRange range_;
    std::map<IpAddr, uint32_t> marks_;
    std::set<uint32_t> used_;
    uint32_t last_ = 0;  ///< index of the last mark given (1..capacity)
};

/// The backends of `vips` probed via tunnel (a backend of several such VIPs
/// once: its mark names the backend, not the VIP).
std::set<IpAddr> tunnel_backends(const std::vector<VipConfig>& vips);

/// One target per backend of every VIP with a health section. A `via:
/// tunnel` target probes the VIP's address (at the check's port) with its
/// backend's mark from `marks` (assign() them first); one without a mark
/// would never reach its backend and so fails (TTL 1, health/probe.h).
std::vector<health::Target> health_targets(const std::vector<VipConfig>& vips, const ProbeMarks& marks);

}  // namespace lbd
