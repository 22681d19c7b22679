/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow hash, shared word for word by the XDP program and the C++ side
 * (tests predict the program's choices with it; every LB node computes the
 * same value for the same 5-tuple and seed). Plain C, no helpers.
 */
#ifndef LBD_HASH_H
#define LBD_HASH_H

#include "lbd_shared.h"

#ifdef __BPF__
#define LBD_HASH_INLINE static __always_inline
#else
#define LBD_HASH_INLINE static inline
#endif

LBD_HASH_INLINE __u32 lbd_rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* One round of a multiply-rotate mix over a 32-bit word. */
LBD_HASH_INLINE __u32 lbd_hash_round(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51u;
	k = lbd_rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = lbd_rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

/* Final avalanche. */
LBD_HASH_INLINE __u32 lbd_hash_final(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Hash of a flow key (both families; IPv4 keys have zero upper words). */
LBD_HASH_INLINE __u32 lbd_flow_hash(const struct lbd_flow_key *k, __u32 seed)
{
	__u32 h = seed;

	h = lbd_hash_round(h, k->src.w[0]);
	h = lbd_hash_round(h, k->src.w[1]);
	h = lbd_hash_round(h, k->src.w[2]);
	h = lbd_hash_round(h, k->src.w[3]);
	h = lbd_hash_round(h, k->dst.w[0]);
	h = lbd_hash_round(h, k->dst.w[1]);
	h = lbd_hash_round(h, k->dst.w[2]);
	h = lbd_hash_round(h, k->dst.w[3]);
	h = lbd_hash_round(h, ((__u32)k->sport << 16) | k->dport);
	h = lbd_hash_round(h, ((__u32)k->proto << 8) | k->family);
	return lbd_hash_final(h ^ 40);
}

/* Hash of an address alone (source-hash: the client's address, so every
 * flow of one client, from any port, gets the same value on every node). */
LBD_HASH_INLINE __u32 lbd_addr_hash(const struct lbd_addr *a, __u32 seed)
{
	__u32 h = seed;

	h = lbd_hash_round(h, a->w[0]);
	h = lbd_hash_round(h, a->w[1]);
	h = lbd_hash_round(h, a->w[2]);
	h = lbd_hash_round(h, a->w[3]);
	return lbd_hash_final(h ^ 16);
}

/* The vip_filter bucket of a VIP key: the address folded to one word, with
 * port, protocol and family, through a 64-bit multiply; the top bits. */
LBD_HASH_INLINE __u32 lbd_vip_filter_bit(const struct lbd_vip_key *k)
{
	__u64 x = ((__u64)(k->addr.w[0] ^ k->addr.w[1] ^ k->addr.w[2] ^ k->addr.w[3]) << 32) |
		  ((__u32)k->port << 16) | ((__u32)k->proto << 8) | k->family;

	return (__u32)((x * 0x9e3779b97f4a7c15ULL) >> (64 - LBD_VIP_FILTER_LOG2));
}

/* Map a 32-bit hash onto [0, n) without a division (multiply-shift). */
LBD_HASH_INLINE __u32 lbd_reduce(__u32 h, __u32 n)
{
	return (__u32)(((__u64)h * n) >> 32);
}

#endif /* LBD_HASH_H */
