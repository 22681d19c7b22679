/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection for a new flow: the one place where a VIP's algorithm
 * picks a backend id. Returns LBD_NO_BACKEND when the VIP has none.
 *
 * Maglev and source-hash read the VIP's ring (a Maglev table that lbd keeps
 * without down or drained backends); they differ only in the slot's key:
 * the 5-tuple or the client's address. The others read the VIP's sched
 * entry. Those walk a list, so each is a global function: the verifier
 * checks it once, on its own, whatever the state of the caller, and Maglev's
 * per-packet path stays as it was (one compare). See docs/scheduling.md.
 */
#ifndef LBD_SELECT_H
#define LBD_SELECT_H

#include "maps.h"
#include "parsing.h"
#include "lbd_hash.h"

static __always_inline __u32 select_ring(const struct lbd_vip_meta *vip, __u32 hash)
{
	__u32 vip_id = vip->vip_id;
	__u32 *slots = bpf_map_lookup_elem(&ring, &vip_id);
	__u32 slot = lbd_reduce(hash, ring_size);

	/* ring_size is a load-time constant: this bound is what lets the
	 * verifier prove slots[slot] inside the value (4 * ring_size bytes). */
	if (!slots || slot >= ring_size)
		return LBD_NO_BACKEND;
	return slots[slot];
}

/* The id holds a live backend that is not down (lbd rebuilds sched without
 * down backends; this covers the time until it has). */
static __always_inline int backend_usable(__u32 id)
{
	struct lbd_backend *be = bpf_map_lookup_elem(&backends, &id);

	return be && (be->flags & (LBD_BE_F_VALID | LBD_BE_F_DOWN)) == LBD_BE_F_VALID;
}

/* The list walks below run under bpf_loop(): the verifier checks a step
 * once, not once per possible member. */

struct seq_walk {
	struct lbd_sched *s;
	__u32 n;     /* entries in s->seq */
	__u32 start; /* this CPU's cursor */
	__u32 id;    /* the pick */
	__u32 pos;   /* its position */
};

static long seq_step(__u32 i, void *data)
{
	struct seq_walk *w = data;
	__u32 pos = (w->start + i) % w->n;
	__u32 id;

	barrier_var(pos);
	if (pos >= LBD_SCHED_SEQ_MAX)
		return 1;
	id = w->s->seq[pos];
	if (!backend_usable(id))
		return 0;
	w->id = id;
	w->pos = pos;
	return 1;
}

/* Round-robin and weighted: the next usable entry of the VIP's sequence
 * from this CPU's cursor on. The cursor is per CPU (no cache line shared by
 * all CPUs per new flow): each CPU walks the whole sequence in order. */
__noinline __u32 lbd_select_seq(__u32 vip_id)
{
	struct seq_walk w = { .id = LBD_NO_BACKEND };
	__u32 *cur;

	w.s = bpf_map_lookup_elem(&sched, &vip_id);
	cur = bpf_map_lookup_elem(&sched_cursor, &vip_id);
	if (!w.s || !cur)
		return LBD_NO_BACKEND;
	w.n = w.s->seq_len;
	if (w.n == 0 || w.n > LBD_SCHED_SEQ_MAX)
		return LBD_NO_BACKEND;
	w.start = *cur;
	bpf_loop(w.n, seq_step, &w, 0);
	if (w.id != LBD_NO_BACKEND)
		*cur = w.pos + 1 >= w.n ? 0 : w.pos + 1;
	return w.id;
}

/* Least-conn's scan of the VIP's members: the member with the smallest
 * active/weight; among equals, the first from a member chosen by the flow
 * hash on, wrapping around. With `usable_only`, members whose backends
 * entry says down or invalid are passed over.
 *
 * The members are read in index order. Member i (weight w, a active flows)
 * beats the pick so far (weight v, b flows) when a/w < b/v, or when they
 * are equal and i comes first from `start` on: i >= start while the pick's
 * index is below it (p = 1 for an index below `start`, else 0). Among
 * members of one p the first read comes first anyway. One compare:
 *     (a*v << 1 | p_i) < (b*w << 1 | p_pick)
 * a < 2^31 (a __s32 counter), w, v < 2^16: no overflow. The pick starts as
 * a sentinel (b = 2^32 flows per unit of weight) that every member of
 * weight > 0 beats, and a member of weight 0 beats nothing.
 *
 * A plain bounded loop with plain loads: a member's id and weight from the
 * sched entry, its counter from lc_active's one value. No call per member
 * (a bpf_loop() callback, or a map lookup even where the verifier inlines
 * it, is a call to the compiler, which then keeps the scan on the stack).
 *
 * For the verifier, which walks the loop member by member: i is a known
 * constant in each iteration, and what the loop carries is unknown to it
 * and never compared with i or a constant (p comes from arithmetic, not
 * from i < start). A compare it could decide would make it track those
 * values exactly, back to the hash argument, and keep a state per value
 * instead of one per i. Each pass is a
 * global function of its own: the loop leaves with n known exactly (one
 * state per n), and what follows a call is verified once, not once per n. */
#define LC_NONE_A (1ULL << 32)

static __always_inline __u32 lc_scan(__u32 vip_id, __u32 hash, const int usable_only)
{
	struct lbd_sched *s = bpf_map_lookup_elem(&sched, &vip_id);
	__s32 *active = lc_counters();
	const __u32 mask = lc_mask;
	__u32 n, start, i, id, best = LBD_NO_BACKEND;
	__u64 a, l, r, wt, p, best_a = LC_NONE_A, best_w = 1, best_p = 0;
	__s64 diff;
	__s32 c;

	if (!s || !active)
		return LBD_NO_BACKEND;
	n = s->count;
	if (n == 0 || n > LBD_SCHED_MAX_BACKENDS)
		return LBD_NO_BACKEND;
	start = lbd_reduce(hash, n);
	for (i = 0; i < LBD_SCHED_MAX_BACKENDS; i++) {
		if (i >= n)
			break;
		id = s->ids[i];
		if (usable_only && !backend_usable(id))
			continue;
		wt = s->weights[i] & 0xffff;
		c = active[LBD_LC_INDEX(id) & mask];
		c &= ~(c >> 31); /* a counter below zero counts as 0 */
		a = (__u32)c;
		diff = (__s64)i - (__s64)start;
		barrier_var(diff); /* or the compiler makes it a compare: i < start */
		p = (__u64)diff >> 63;
		l = (a * best_w) << 1 | p;
		r = (best_a * wt) << 1 | best_p;
		if (l < r) {
			best = id;
			best_a = a;
			best_w = wt;
			best_p = p;
		}
	}
	return best;
}

__noinline __u32 lbd_least_conn_pass(__u32 vip_id, __u32 hash)
{
	return lc_scan(vip_id, hash, 0);
}

__noinline __u32 lbd_least_conn_usable(__u32 vip_id, __u32 hash)
{
	return lc_scan(vip_id, hash, 1);
}

/* Least-conn: the usable member with the fewest active flows relative to
 * its weight; ties go by the flow hash: the first of the least loaded from
 * a member chosen by the hash on (as a scan from there in which only a
 * strictly better member replaces the pick).
 *
 * The first pass looks at every member without reading its backends entry;
 * the pick is checked after. Only if it is down or invalid (lbd rebuilds the
 * entry without down backends; this is the moment between the flag and the
 * rebuild) does a second pass skip such members. The result is that of a
 * single careful pass: the first pass's pick is the first, from the start,
 * of the least loaded members; when it is usable, no usable member is less
 * loaded and none before it is as little loaded. */
static __always_inline __u32 select_least_conn(__u32 vip_id, __u32 hash)
{
	__u32 best = lbd_least_conn_pass(vip_id, hash);

	if (best != LBD_NO_BACKEND && !backend_usable(best))
		best = lbd_least_conn_usable(vip_id, hash);
	return best;
}

struct fo_walk {
	struct lbd_sched *s;
	__u32 id;
	__u32 reserved;
};

static long fo_step(__u32 i, void *data)
{
	struct fo_walk *w = data;
	__u32 id;

	barrier_var(i);
	if (i >= LBD_SCHED_MAX_BACKENDS)
		return 1;
	id = w->s->ids[i];
	if (!backend_usable(id))
		return 0;
	w->id = id;
	return 1;
}

/* Failover: the first usable member; lbd lists them highest weight first. */
__noinline __u32 lbd_select_failover(__u32 vip_id)
{
	struct fo_walk w = { .id = LBD_NO_BACKEND };
	__u32 n;

	w.s = bpf_map_lookup_elem(&sched, &vip_id);
	if (!w.s)
		return LBD_NO_BACKEND;
	n = w.s->count;
	if (n > LBD_SCHED_MAX_BACKENDS)
		return LBD_NO_BACKEND;
	bpf_loop(n, fo_step, &w, 0);
	return w.id;
}

static __always_inline __u32 select_backend(const struct lbd_vip_meta *vip,
					    const struct packet *pkt, __u32 hash)
{
	if (vip->algorithm == LBD_ALG_MAGLEV)
		return select_ring(vip, hash);
	switch (vip->algorithm) {
	case LBD_ALG_SOURCE_HASH:
		return select_ring(vip, lbd_addr_hash(&pkt->flow.src, hash_seed));
	case LBD_ALG_ROUND_ROBIN:
	case LBD_ALG_WEIGHTED:
		return lbd_select_seq(vip->vip_id);
	case LBD_ALG_LEAST_CONN:
		return select_least_conn(vip->vip_id, hash);
	case LBD_ALG_FAILOVER:
		return lbd_select_failover(vip->vip_id);
	default:
		return select_ring(vip, hash);
	}
}

#endif /* LBD_SELECT_H */
