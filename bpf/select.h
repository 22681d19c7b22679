/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection for a new flow: the one place where a VIP's algorithm
 * picks a backend id. Returns LBD_NO_BACKEND when the VIP has none.
 */
#ifndef LBD_SELECT_H
#define LBD_SELECT_H

#include "maps.h"
#include "parsing.h"
#include "lbd_hash.h"

static __always_inline __u32 select_maglev(const struct lbd_vip_meta *vip, __u32 hash)
{
	__u32 idx = vip->vip_id * ring_size + lbd_reduce(hash, ring_size);
	__u32 *id = bpf_map_lookup_elem(&ring, &idx);

	return id ? *id : LBD_NO_BACKEND;
}

static __always_inline __u32 select_backend(const struct lbd_vip_meta *vip,
					    const struct packet *pkt, __u32 hash)
{
	switch (vip->algorithm) {
	case LBD_ALG_MAGLEV:
	default:
		return select_maglev(vip, hash);
	}
}

#endif /* LBD_SELECT_H */
