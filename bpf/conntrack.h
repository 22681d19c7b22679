/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connection table: a flow that has a backend keeps it while that backend
 * stays valid (same id generation, not down), whatever happens to the ring.
 *
 * For least-conn VIPs the table also drives the active-flow counters
 * (lc_active): a new entry counts (LBD_CT_F_COUNTED), a TCP FIN or RST ends
 * the count (LBD_CT_F_CLOSED), and so does an entry replaced by a new pick.
 * Idle flows are un-counted by lbd (docs/scheduling.md).
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

/* The entry stops counting as an active flow of its backend (once). */
static __always_inline void ct_uncount(struct lbd_ct_value *ct)
{
	__u32 old;

	if ((ct->flags & (LBD_CT_F_COUNTED | LBD_CT_F_CLOSED)) != LBD_CT_F_COUNTED)
		return;
	old = __sync_fetch_and_or(&ct->flags, LBD_CT_F_CLOSED);
	if ((old & (LBD_CT_F_COUNTED | LBD_CT_F_CLOSED)) == LBD_CT_F_COUNTED)
		lc_add(ct->backend_id, -1);
}

/* Returns the flow's pinned backend (and its id), or NULL on a miss or when
 * the pinned backend can no longer take it. */
static __always_inline struct lbd_backend *ct_lookup(const struct packet *pkt,
						     const struct lbd_vip_meta *vip, __u32 *be_id)
{
	struct lbd_ct_value *ct;
	struct lbd_backend *be;
	__u32 old;

	ct = bpf_map_lookup_elem(&conntrack, &pkt->flow);
	if (!ct) {
		count(LBD_CNT_CT_MISS);
		return NULL;
	}
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
		ct_uncount(ct);
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

static __always_inline void ct_insert(const struct packet *pkt, const struct lbd_vip_meta *vip,
				      __u32 be_id, const struct lbd_backend *be)
{
	struct lbd_ct_value v = {
		.backend_id = be_id,
		.backend_gen = be->gen,
		.last_seen = pkt->now,
	};
	struct lbd_ct_value *old;
	struct lbd_backend *old_be;

	if (vip->algorithm == LBD_ALG_LEAST_CONN) {
		/* The entry this one replaces (a SYN on a reused tuple or a
		 * retransmitted SYN, a flow moved off a down backend) no longer
		 * counts; unless its id was given to another backend since,
		 * whose counter started from zero. */
		old = bpf_map_lookup_elem(&conntrack, &pkt->flow);
		if (old) {
			old_be = bpf_map_lookup_elem(&backends, &old->backend_id);
			if (old_be && old_be->gen == old->backend_gen)
				ct_uncount(old);
		}
		v.flags = LBD_CT_F_COUNTED;
	}
	if (bpf_map_update_elem(&conntrack, &pkt->flow, &v, BPF_ANY)) {
		count(LBD_CNT_CT_UPDATE_FAIL);
		return;
	}
	if (v.flags & LBD_CT_F_COUNTED)
		lc_add(be_id, 1);
}

#endif /* LBD_CONNTRACK_H */
