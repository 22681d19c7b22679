/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connection table: a flow that has a backend keeps it while that backend
 * stays valid (same id generation, not down), whatever happens to the ring.
 *
 * The table is an ARRAY map of buckets (lbd_shared.h): the flow hash the
 * packet already has names the bucket, so a lookup is an inlined array read
 * and up to LBD_CT_WAYS key compares, and an insert writes an entry in place
 * (no allocation, no lock). A bucket that is full gives up a flow the
 * client closed, else its least recently seen one: LRU per bucket. Entries
 * are written without a lock by every CPU and by lbd, so each carries a
 * check over the flow's hash and its backend; an entry whose check does not
 * match is not used (a torn write is a miss: the flow is scheduled by its
 * VIP again).
 *
 * For least-conn VIPs the table also drives the active-flow counters
 * (lc_active): a new entry counts (LBD_CT_F_COUNTED), a TCP FIN or RST ends
 * the count (LBD_CT_F_CLOSED), and so does an entry replaced by a new pick or
 * given up for another flow. Idle flows are un-counted by lbd
 * (docs/scheduling.md).
 */
#ifndef LBD_CONNTRACK_H
#define LBD_CONNTRACK_H

#include "maps.h"
#include "parsing.h"

#define CT_REFRESH_NS 1000000000ULL

static __always_inline void lc_add(__u32 be_id, __s32 delta)
{
	__s32 *n = lc_counters();

	if (n)
		__sync_fetch_and_add(&n[LBD_LC_INDEX(be_id) & lc_mask], delta);
}

/* The flow is closed (FIN or RST, or its entry goes): the first entry a
 * full bucket gives up, and no longer an active flow for least-conn (the
 * count drops once, whoever gets here first). */
static __always_inline void ct_close(struct lbd_ct_value *ct)
{
	__u32 old;

	if (ct->flags & LBD_CT_F_CLOSED)
		return;
	old = __sync_fetch_and_or(&ct->flags, LBD_CT_F_CLOSED);
	if ((old & (LBD_CT_F_COUNTED | LBD_CT_F_CLOSED)) == LBD_CT_F_COUNTED)
		lc_add(ct->backend_id, -1);
}

static __always_inline int flow_key_equal(const struct lbd_flow_key *a, const struct lbd_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

static __always_inline struct lbd_ct_bucket *ct_bucket(__u32 hash)
{
	__u32 idx = lbd_ct_bucket_of(hash, ct_buckets);

	return bpf_map_lookup_elem(&conntrack, &idx);
}

/* The flow's entry was found: its backend if it can still take the flow. */
static __always_inline struct lbd_backend *ct_use(const struct packet *pkt,
						  const struct lbd_vip_meta *vip,
						  struct lbd_ct_value *ct, __u32 *be_id)
{
	struct lbd_backend *be;
	__u32 old;

	be = bpf_map_lookup_elem(&backends, &ct->backend_id);
	if (!be || be->gen != ct->backend_gen ||
	    (be->flags & (LBD_BE_F_VALID | LBD_BE_F_DOWN)) != LBD_BE_F_VALID) {
		count(LBD_CNT_CT_RESCHEDULE);
		return NULL;
	}
	count(LBD_CNT_CT_HIT);
	if (pkt->now - ct->last_seen > CT_REFRESH_NS)
		ct->last_seen = pkt->now;
	if (pkt->tcp_close) {
		ct_close(ct);
	} else if (vip->algorithm == LBD_ALG_LEAST_CONN &&
		   !(ct->flags & (LBD_CT_F_COUNTED | LBD_CT_F_CLOSED))) {
		/* Open but not counted: it was idle (lbd un-counted it) or
		 * pinned before the VIP became least-conn. */
		old = __sync_fetch_and_or(&ct->flags, LBD_CT_F_COUNTED);
		if (!(old & (LBD_CT_F_COUNTED | LBD_CT_F_CLOSED)))
			lc_add(ct->backend_id, 1);
	}
	*be_id = ct->backend_id;
	return be;
}

/* Returns the flow's pinned backend (and its id), or NULL on a miss or when
 * the pinned backend can no longer take it. A way's match is used where it
 * is found: what comes out is the same for every way (a backend), so the
 * verifier follows the rest of the program once, not once per way. */
static __always_inline struct lbd_backend *ct_lookup(const struct packet *pkt,
						     const struct lbd_vip_meta *vip, __u32 hash,
						     __u32 *be_id)
{
	struct lbd_ct_bucket *b = ct_bucket(hash);
	int way;

	if (b) {
#pragma unroll
		for (way = 0; way < LBD_CT_WAYS; way++) {
			struct lbd_ct_entry *e = &b->e[way];

			if (flow_key_equal(&e->key, &pkt->flow) &&
			    e->v.check == lbd_ct_check(hash, e->v.backend_id, e->v.backend_gen))
				return ct_use(pkt, vip, &e->v, be_id);
		}
	}
	count(LBD_CNT_CT_MISS);
	return NULL;
}

/* An entry that goes (replaced or given up) no longer counts for its
 * backend; unless its id was given to another backend since, whose counter
 * started from zero. */
static __always_inline void ct_release(struct lbd_ct_value *v)
{
	struct lbd_backend *be;

	if ((v->flags & (LBD_CT_F_COUNTED | LBD_CT_F_CLOSED)) != LBD_CT_F_COUNTED)
		return;
	be = bpf_map_lookup_elem(&backends, &v->backend_id);
	if (be && be->gen == v->backend_gen)
		ct_close(v);
}

/* How far down the list to give an entry up: empty first, then flows the
 * client closed (FIN or RST), then the least recently seen. */
static __always_inline __u64 ct_keep_score(const struct lbd_ct_value *v)
{
	if (!v->check)
		return 0;
	if (v->flags & LBD_CT_F_CLOSED)
		return 1 + (v->last_seen >> 1);
	return (1ULL << 63) + (v->last_seen >> 1);
}

/* Pins the flow to be_id: its own entry if the bucket has one, else the one
 * ct_keep_score ranks lowest. A global function: the verifier checks it once,
 * on its own (inlined, the verifier's work on the program more than
 * doubled, and its registers pushed the program's stack past the limit). */
__noinline int ct_insert(const struct packet *pkt, const struct lbd_vip_meta *vip, __u32 hash,
			 __u32 be_id, const struct lbd_backend *be)
{
	struct lbd_ct_bucket *b = ct_bucket(hash);
	struct lbd_ct_entry *e, *victim = NULL;
	__u64 lowest = ~0ULL, score;
	__u32 flags = 0;
	int i, own = 0;

	if (!b || !pkt || !vip || !be)
		return 0; /* not while the map is the size lbd loaded it with */
#pragma unroll
	for (i = 0; i < LBD_CT_WAYS; i++) {
		e = &b->e[i];
		if (flow_key_equal(&e->key, &pkt->flow)) {
			victim = e; /* a SYN on a reused tuple, a retransmitted SYN, a re-pick */
			own = 1;
			break;
		}
		score = ct_keep_score(&e->v);
		if (score < lowest) {
			victim = e;
			lowest = score;
		}
	}
	if (!victim)
		return 0; /* cannot happen: the first way ranks below ~0 */
	if (victim->v.check) {
		if (!own && !(victim->v.flags & LBD_CT_F_CLOSED))
			count(LBD_CNT_CT_EVICT);
		ct_release(&victim->v);
	}
	if (vip->algorithm == LBD_ALG_LEAST_CONN)
		flags = LBD_CT_F_COUNTED;
	/* Cleared first, set last: a reader in between sees no entry or a
	 * check that does not match; either way a miss. */
	victim->v.check = 0;
	__builtin_memcpy(&victim->key, &pkt->flow, sizeof(victim->key));
	victim->v.backend_id = be_id;
	victim->v.backend_gen = be->gen;
	victim->v.last_seen = pkt->now;
	victim->v.flags = flags;
	victim->v.check = lbd_ct_check(hash, be_id, be->gen);
	if (flags)
		lc_add(be_id, 1);
	return 0;
}

#endif /* LBD_CONNTRACK_H */
