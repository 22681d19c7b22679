// The C++ side's check of the layouts in bpf/lbd_shared.h: both sides include
// the same header, and these asserts catch padding surprises between clang's
// BPF target and g++.
#include <cstddef>

#include "lbd_shared.h"

static_assert(sizeof(lbd_addr) == 16);
static_assert(sizeof(lbd_vip_key) == 20);
static_assert(sizeof(lbd_vip_filter) == (1u << LBD_VIP_FILTER_LOG2) / 8);
static_assert(sizeof(lbd_vip_entry) == 40);
static_assert(offsetof(lbd_vip_key, port) == 16);
static_assert(offsetof(lbd_vip_key, proto) == 18);
static_assert(offsetof(lbd_vip_key, family) == 19);
static_assert(sizeof(lbd_vip_meta) == 20);
static_assert(offsetof(lbd_vip_meta, algorithm) == 8);
static_assert(offsetof(lbd_vip_meta, persist_timeout_ms) == 12);
static_assert(offsetof(lbd_vip_meta, persist_prefix_v4) == 16);
static_assert(offsetof(lbd_vip_meta, persist_prefix_v6) == 17);
static_assert(sizeof(lbd_backend) == 24);
static_assert(offsetof(lbd_backend, gen) == 16);
static_assert(offsetof(lbd_backend, flags) == 21);
static_assert(sizeof(lbd_flow_key) == 40);
static_assert(offsetof(lbd_flow_key, sport) == 32);
static_assert(offsetof(lbd_flow_key, proto) == 36);
static_assert(sizeof(lbd_ct_value) == 24);
static_assert(offsetof(lbd_ct_value, last_seen) == 8);
static_assert(offsetof(lbd_ct_value, flags) == 16);
static_assert(sizeof(lbd_sched) == 8 + 4 * (2 * LBD_SCHED_MAX_BACKENDS + LBD_SCHED_SEQ_MAX));
static_assert(offsetof(lbd_sched, ids) == 8);
static_assert(offsetof(lbd_sched, weights) == 8 + 4 * LBD_SCHED_MAX_BACKENDS);
static_assert(offsetof(lbd_sched, seq) == 8 + 8 * LBD_SCHED_MAX_BACKENDS);
static_assert(sizeof(lbd_persist_key) == 24);
static_assert(offsetof(lbd_persist_key, client) == 8);
static_assert(sizeof(lbd_persist_value) == 16);
static_assert(offsetof(lbd_persist_value, last_seen) == 8);
static_assert(sizeof(lbd_config) == 72);
static_assert(sizeof(lbd_stats) == 24);
static_assert(sizeof(lbd_neigh_event) == 24);
static_assert(sizeof(lbd_meta) == 24);
static_assert(sizeof(lbd_nexthop) == 56);
static_assert(offsetof(lbd_nexthop, src) == 24);
static_assert(sizeof(lbd_hc_target) == 20);
static_assert(offsetof(lbd_hc_target, family) == 16);
