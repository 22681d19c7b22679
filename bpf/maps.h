/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps of the load balancer program. Sizes here are defaults: lbd sets the
 * real ones from its config before load. Layouts come from lbd_shared.h.
 */
#ifndef LBD_MAPS_H
#define LBD_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lbd_shared.h"
#include "lbd_hash.h"

/* Set by lbd before load. */
const volatile __u32 ring_size = LBD_DEFAULT_RING_SIZE;
const volatile __u32 hash_seed = 0x5eed;
/* Counters in lc_active's value (its value size / 4), a power of two,
 * minus 1: the mask that keeps an index inside it. */
const volatile __u32 lc_mask = LBD_DEFAULT_MAX_BACKENDS - 1;
/* Buckets of the connection table (its max_entries). */
const volatile __u32 ct_buckets = LBD_DEFAULT_CONNTRACK_SIZE / LBD_CT_WAYS;

/* vips: lbd_vip_key -> lbd_vip_meta; written by lbd (map writer). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lbd_vip_key);
	__type(value, struct lbd_vip_meta);
	__uint(max_entries, LBD_DEFAULT_MAX_VIPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} vips SEC(".maps");

/* vip_filter: 0 -> the bitmap of lbd_shared.h; written by lbd. Not pinned:
 * each lbd fills its program's own from the vips map before attaching it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_vip_filter);
	__uint(max_entries, 1);
} vip_filter SEC(".maps");

/* vip_index, vip_by_id: see lbd_shared.h; written by lbd, not pinned (each
 * lbd fills its program's own from the vips map, like vip_filter). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1u << LBD_VIP_FILTER_LOG2);
} vip_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_vip_entry);
	__uint(max_entries, LBD_DEFAULT_MAX_VIPS);
} vip_by_id SEC(".maps");

/* ring: vip_id -> the VIP's whole Maglev ring, ring_size backend ids
 * (LBD_NO_BACKEND where none); written by lbd in one update per ring. One
 * value per VIP, not one element per slot: a ring is one copy to write, and
 * the program still finds a slot with one lookup. lbd sets the value size
 * (4 * ring_size) and max_entries (max_vips) before load; the verifier
 * checks every slot access against that size. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, LBD_DEFAULT_RING_SIZE * sizeof(__u32));
	__uint(max_entries, LBD_DEFAULT_MAX_VIPS);
} ring SEC(".maps");

/* backends: backend id -> lbd_backend; written by lbd. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_backend);
	__uint(max_entries, LBD_DEFAULT_MAX_BACKENDS);
} backends SEC(".maps");

/* conntrack: bucket -> lbd_ct_bucket, the connection table (conntrack.h):
 * written by this program on new flows, read (and idle flows un-counted) by
 * lbd through a mapping. One table shared by all CPUs (a flow is correct
 * whichever CPU sees it); see docs/architecture.md for the measurement. lbd
 * sets max_entries (ct_buckets) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_ct_bucket);
	__uint(max_entries, LBD_DEFAULT_CONNTRACK_SIZE / LBD_CT_WAYS);
	__uint(map_flags, BPF_F_MMAPABLE);
} conntrack SEC(".maps");

/* sched: vip_id -> lbd_sched, the members of a VIP that no ring schedules
 * (round-robin, weighted, least-conn, failover); written by lbd, zeroed when
 * the VIP goes back to a ring. An array, not a hash: its lookup is an index
 * check the verifier inlines, where a hash lookup cost a new flow ~35 ns
 * (docs/scheduling.md). lbd writes an entry in place, as it writes ring
 * slots: a new flow in that microsecond may read a mix of both versions,
 * each id a member of one of them or no backend (id 0); the program skips
 * ids flagged down or invalid as ever. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_sched);
	__uint(max_entries, LBD_DEFAULT_MAX_VIPS);
} sched SEC(".maps");

/* sched_cursor: vip_id -> per-CPU position in sched.seq (round-robin,
 * weighted); written by this program, staggered by CPU by lbd when it gives
 * out the vip id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, LBD_DEFAULT_MAX_VIPS);
} sched_cursor SEC(".maps");

/* lc_active: 0 -> __s32[lc_mask + 1], per backend id (LBD_LC_INDEX) the flows
 * the program counts as open (least-conn VIPs only); atomic adds by this
 * program; zeroed by lbd when it gives an id to a new backend and re-counted
 * by lbd from the connection table (idle flows; docs/scheduling.md), one
 * counter at a time through a mapping. May dip below zero transiently. The
 * value size is set by lbd before load (no BTF type: it varies). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__s32) * LBD_DEFAULT_MAX_BACKENDS);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
} lc_active SEC(".maps");

/* backend_weight: backend id -> configured weight (0 = draining); written by
 * lbd. Read when a persistent client's remembered backend is checked. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, LBD_DEFAULT_MAX_BACKENDS);
} backend_weight SEC(".maps");

/* persist: (vip_id, client prefix) -> the backend of that client's last
 * flow (VIPs with persistence); written by this program. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lbd_persist_key);
	__type(value, struct lbd_persist_value);
	__uint(max_entries, LBD_DEFAULT_CONNTRACK_SIZE / 4);
} persist SEC(".maps");

/* config: 0 -> lbd_config (encap source prefixes); written by lbd. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_config);
	__uint(max_entries, 1);
} config SEC(".maps");

/* meta: 0 -> lbd_meta, what the pinned maps were made for; written by lbd
 * when it creates the maps, read by the next lbd before it adopts them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_meta);
	__uint(max_entries, 1);
} meta SEC(".maps");

/* vip_stats: vip_id -> per-CPU lbd_stats; written by this program. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_stats);
	__uint(max_entries, LBD_DEFAULT_MAX_VIPS);
} vip_stats SEC(".maps");

/* backend_stats: backend id -> per-CPU lbd_stats; written by this program,
 * zeroed by lbd when it gives an id to a new backend. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_stats);
	__uint(max_entries, LBD_DEFAULT_MAX_BACKENDS);
} backend_stats SEC(".maps");

/* nexthops: backend id -> per-CPU lbd_nexthop cache of the FIB's answer;
 * written by this program. Not pinned: a new program starts empty. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_nexthop);
	__uint(max_entries, LBD_DEFAULT_MAX_BACKENDS);
} nexthops SEC(".maps");

/* counters: enum lbd_counter -> per-CPU packet count; written by this program. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, LBD_CNT_MAX);
} counters SEC(".maps");

/* neigh_events: lbd_neigh_event records for lbd, which asks the kernel to
 * resolve the next hop; written by this program, rate limited per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} neigh_events SEC(".maps");

/* neigh_rl: 0 -> per-CPU time (coarse ns) of the last neigh event sent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} neigh_rl SEC(".maps");

static __always_inline int vip_key_equal(const struct lbd_vip_key *a, const struct lbd_vip_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* The VIP of this key, or NULL. A clear vip_filter bit (8 KiB, the common
 * case of traffic not for a VIP) ends it; a bucket of one VIP is two more
 * array reads and a compare; only buckets of several VIPs pay the vips hash
 * lookup. Every lookup here but the last is inlined by the verifier. */
static __always_inline struct lbd_vip_meta *vip_lookup(const struct lbd_vip_key *k)
{
	__u32 zero = 0, bit = lbd_vip_filter_bit(k), id;
	struct lbd_vip_filter *f = bpf_map_lookup_elem(&vip_filter, &zero);
	struct lbd_vip_entry *e;
	__u32 *slot;

	if (f && !((f->bits[(bit >> 6) & (LBD_VIP_FILTER_WORDS - 1)] >> (bit & 63)) & 1))
		return NULL;
	slot = bpf_map_lookup_elem(&vip_index, &bit);
	if (slot && *slot != LBD_VIP_INDEX_NONE && *slot != LBD_VIP_INDEX_MANY) {
		id = *slot - 1;
		e = bpf_map_lookup_elem(&vip_by_id, &id);
		return e && vip_key_equal(&e->key, k) ? &e->meta : NULL;
	}
	return bpf_map_lookup_elem(&vips, k);
}

/* lc_active's counters (NULL only if the map is broken). */
static __always_inline __s32 *lc_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&lc_active, &zero);
}

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);

	if (v)
		*v += 1;
}

static __always_inline void stats_add(void *map, __u32 idx, __u64 bytes, int new_flow)
{
	struct lbd_stats *s = bpf_map_lookup_elem(map, &idx);

	if (!s)
		return;
	s->packets += 1;
	s->bytes += bytes;
	s->new_flows += new_flow;
}

#endif /* LBD_MAPS_H */
