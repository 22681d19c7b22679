/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Persistence (LVS style): a client's new flows go to the backend of its
 * earlier ones while it keeps sending within the VIP's timeout. Clients are
 * grouped by prefix (persist_prefix_v4/v6). The remembered backend is used
 * only while it could take a new flow anyway: same generation, valid, not
 * down, weight > 0 (a drained backend gets no new flow, persistent or not).
 */
#ifndef LBD_PERSIST_H
#define LBD_PERSIST_H

#include "maps.h"
#include "parsing.h"

#define PERSIST_REFRESH_MAX_NS 1000000000ULL

/* The first `bits` bits of a 32-bit word, network byte order. */
static __always_inline __u32 prefix_word(int bits)
{
	if (bits <= 0)
		return 0;
	if (bits >= 32)
		return 0xffffffffu;
	return bpf_htonl(0xffffffffu << (32 - bits));
}

static __always_inline void persist_key(const struct lbd_vip_meta *vip, const struct packet *pkt,
					struct lbd_persist_key *k)
{
	int bits = pkt->flow.family == LBD_AF_INET ? vip->persist_prefix_v4 : vip->persist_prefix_v6;

	k->vip_id = vip->vip_id;
	k->reserved = 0;
	k->client.w[0] = pkt->flow.src.w[0] & prefix_word(bits);
	k->client.w[1] = pkt->flow.src.w[1] & prefix_word(bits - 32);
	k->client.w[2] = pkt->flow.src.w[2] & prefix_word(bits - 64);
	k->client.w[3] = pkt->flow.src.w[3] & prefix_word(bits - 96);
}

static __always_inline __u64 persist_timeout_ns(const struct lbd_vip_meta *vip)
{
	return (__u64)vip->persist_timeout_ms * 1000000ULL;
}

/* last_seen is written at most this often: timeout/16, at most once a second. */
static __always_inline void persist_refresh(struct lbd_persist_value *v, __u64 now, __u64 timeout)
{
	__u64 every = timeout >> 4;

	if (every > PERSIST_REFRESH_MAX_NS)
		every = PERSIST_REFRESH_MAX_NS;
	if (now - v->last_seen > every)
		v->last_seen = now;
}

/* The client's remembered backend if it is still fit for a new flow, else NULL. */
static __always_inline struct lbd_backend *persist_lookup(const struct lbd_persist_key *k,
							  const struct lbd_vip_meta *vip,
							  __u64 now, __u32 *be_id)
{
	struct lbd_persist_value *v = bpf_map_lookup_elem(&persist, k);
	struct lbd_backend *be;
	__u64 timeout;
	__u32 *weight;

	if (!v)
		return NULL;
	timeout = persist_timeout_ns(vip);
	if (now - v->last_seen > timeout)
		return NULL;
	be = bpf_map_lookup_elem(&backends, &v->backend_id);
	if (!be || be->gen != v->backend_gen ||
	    (be->flags & (LBD_BE_F_VALID | LBD_BE_F_DOWN)) != LBD_BE_F_VALID)
		return NULL;
	weight = bpf_map_lookup_elem(&backend_weight, &v->backend_id);
	if (!weight || !*weight)
		return NULL;
	persist_refresh(v, now, timeout);
	*be_id = v->backend_id;
	count(LBD_CNT_PERSIST_HIT);
	return be;
}

static __always_inline void persist_record(const struct lbd_persist_key *k, __u32 be_id,
					   const struct lbd_backend *be, __u64 now)
{
	struct lbd_persist_value v = {
		.backend_id = be_id,
		.backend_gen = be->gen,
		.last_seen = now,
	};

	bpf_map_update_elem(&persist, k, &v, BPF_ANY);
}

/* A packet of a pinned flow: the client is still there. Its record is
 * refreshed, or made again from this flow if it was evicted or expired. */
static __always_inline void persist_touch(const struct lbd_persist_key *k,
					  const struct lbd_vip_meta *vip, __u32 be_id,
					  const struct lbd_backend *be, __u64 now)
{
	struct lbd_persist_value *v = bpf_map_lookup_elem(&persist, k);
	__u64 timeout;

	if (!v) {
		persist_record(k, be_id, be, now);
		return;
	}
	timeout = persist_timeout_ns(vip);
	if (now - v->last_seen > timeout) {
		persist_record(k, be_id, be, now);
		return;
	}
	persist_refresh(v, now, timeout);
}

#endif /* LBD_PERSIST_H */
