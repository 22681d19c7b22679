// Per-VIP scheduler data for the algorithms that do not read a Maglev ring
// (round-robin, weighted, least-conn, failover): the sched map entry the XDP
// program walks (bpf/select.h). Pure. See docs/scheduling.md.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/addr.h"
#include "lbd/core/config.h"
#include "lbd_shared.h"

namespace lbd {

struct SchedMember {
    uint32_t id;      // backend id
    uint32_t weight;  // > 0
    IpAddr address;   // orders equal weights (failover), the same on every node
};

/// Smooth weighted round-robin (as nginx): the order in which a cycle of
/// sum(weights) picks visits the members, as indices into `weights`. A
/// member never gets more picks in a row than its weight when the others'
/// weights allow interleaving (3:1 gives A A B A). Weights are first divided
/// by their greatest common divisor; if their sum still exceeds `max_len`
/// they are scaled down (each keeps at least 1), so the shares are then
/// approximate. Zero weights are skipped.
std::vector<uint32_t> smooth_wrr_sequence(std::span<const uint32_t> weights, size_t max_len);

/// The sched entry for `members` (at most LBD_SCHED_MAX_BACKENDS; extra
/// ones are left out): failover lists them by weight, highest first (then
/// by address); round-robin's sequence is each member once, weighted's the
/// smooth sequence; least-conn and failover have no sequence.
lbd_sched build_sched(Algorithm a, std::vector<SchedMember> members);

}  // namespace lbd
