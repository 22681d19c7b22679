/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connection table: a flow that has a backend keeps it while that backend
 * stays valid (same id generation, not down), whatever happens to the ring.
 */
#ifndef LBD_CONNTRACK_H
#define LBD_CONNTRACK_H

#include "maps.h"
#include "parsing.h"

#define CT_REFRESH_NS 1000000000ULL

/* Returns the flow's pinned backend (and its id), or NULL on a miss or when
 * the pinned backend can no longer take it. */
static __always_inline struct lbd_backend *ct_lookup(const struct packet *pkt, __u32 *be_id)
{
	struct lbd_ct_value *ct;
	struct lbd_backend *be;
	__u64 now;

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
	now = bpf_ktime_get_coarse_ns();
	if (now - ct->last_seen > CT_REFRESH_NS)
		ct->last_seen = now;
	*be_id = ct->backend_id;
	return be;
}

static __always_inline void ct_insert(const struct packet *pkt, __u32 be_id,
				      const struct lbd_backend *be)
{
	struct lbd_ct_value v = {
		.backend_id = be_id,
		.backend_gen = be->gen,
		.last_seen = bpf_ktime_get_coarse_ns(),
	};

	if (bpf_map_update_elem(&conntrack, &pkt->flow, &v, BPF_ANY))
		count(LBD_CNT_CT_UPDATE_FAIL);
}

#endif /* LBD_CONNTRACK_H */
