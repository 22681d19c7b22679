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

struct lc_walk {
	struct lbd_sched *s;
	__u32 n;    /* members */
	__u32 idx;  /* next member to look at */
	__u32 best; /* the pick so far */
	__u32 reserved;
	__u64 best_a, best_w;
};

static long lc_step(__u32 i, void *data)
{
	struct lc_walk *w = data;
	__u32 idx = w->idx, id, wt;
	__s64 *cnt;
	__u64 a;

	barrier_var(idx);
	if (idx >= LBD_SCHED_MAX_BACKENDS)
		return 1;
	id = w->s->ids[idx];
	wt = w->s->weights[idx];
	w->idx = idx + 1 >= w->n ? 0 : idx + 1;
	if (!wt || !backend_usable(id))
		return 0;
	cnt = bpf_map_lookup_elem(&lc_active, &id);
	a = cnt && *cnt > 0 ? (__u64)*cnt : 0;
	if (w->best == LBD_NO_BACKEND || a * w->best_w < w->best_a * wt) {
		w->best = id;
		w->best_a = a;
		w->best_w = wt;
	}
	return 0;
}

/* Least-conn: the usable member with the fewest active flows relative to
 * its weight (a/w < b/v, compared as a*v < b*w). The scan starts at a
 * member chosen by the flow hash and only a strictly better one replaces
 * the pick, so ties go by the flow hash. */
__noinline __u32 lbd_select_least_conn(__u32 vip_id, __u32 hash)
{
	struct lc_walk w = { .best = LBD_NO_BACKEND };

	w.s = bpf_map_lookup_elem(&sched, &vip_id);
	if (!w.s)
		return LBD_NO_BACKEND;
	w.n = w.s->count;
	if (w.n == 0 || w.n > LBD_SCHED_MAX_BACKENDS)
		return LBD_NO_BACKEND;
	w.idx = lbd_reduce(hash, w.n);
	bpf_loop(w.n, lc_step, &w, 0);
	return w.best;
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
		return lbd_select_least_conn(vip->vip_id, hash);
	case LBD_ALG_FAILOVER:
		return lbd_select_failover(vip->vip_id);
	default:
		return select_ring(vip, hash);
	}
}

#endif /* LBD_SELECT_H */
