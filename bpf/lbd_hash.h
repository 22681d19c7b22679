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

/* murmur3's 64-bit finaliser. */
LBD_HASH_INLINE __u64 lbd_fmix64(__u64 k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

LBD_HASH_INLINE __u64 lbd_u64_of(__u32 lo, __u32 hi)
{
	return ((__u64)hi << 32) | lo;
}

/* Hash of a flow key (both families; IPv4 keys have zero upper words). The
 * key as five 64-bit lanes, each multiplied by its own odd constant (five
 * independent multiplies the CPU runs side by side), summed, then the
 * finaliser: a dependency chain of three multiplies, where a word-at-a-time
 * hash of the 40 bytes would chain ten rounds. Every packet for a VIP pays
 * it (docs/benchmarks.md). */
LBD_HASH_INLINE __u32 lbd_flow_hash(const struct lbd_flow_key *k, __u32 seed)
{
	__u64 a = lbd_u64_of(k->src.w[0], k->src.w[1]) ^ ((__u64)seed << 32 | seed);
	__u64 b = lbd_u64_of(k->src.w[2], k->src.w[3]);
	__u64 c = lbd_u64_of(k->dst.w[0], k->dst.w[1]);
	__u64 d = lbd_u64_of(k->dst.w[2], k->dst.w[3]);
	__u64 e = lbd_u64_of(((__u32)k->sport << 16) | k->dport, ((__u32)k->proto << 8) | k->family);

	return (__u32)lbd_fmix64(a * 0x9e3779b97f4a7c15ULL + b * 0xc2b2ae3d27d4eb4fULL +
				 c * 0x165667b19e3779f9ULL + d * 0x85ebca77c2b2ae63ULL +
				 e * 0x27d4eb2f165667c5ULL);
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

/* The connection table's bucket of a flow (its hash under the seed). */
LBD_HASH_INLINE __u32 lbd_ct_bucket_of(__u32 flow_hash, __u32 buckets)
{
	/* Other bits than a ring's slot (lbd_reduce of the hash itself). */
	return lbd_reduce(lbd_rotl32(flow_hash, 16), buckets);
}

/* An entry's check: binds the backend to the flow it was written for. Never
 * 0 (that is an empty entry). One 64-bit multiply: it is computed on every
 * connection-table hit. */
LBD_HASH_INLINE __u32 lbd_ct_check(__u32 flow_hash, __u32 backend_id, __u32 backend_gen)
{
	__u64 x = lbd_u64_of(backend_id, flow_hash) ^ ((__u64)backend_gen * 0x9e3779b97f4a7c15ULL);

	return (__u32)((x * 0xc2b2ae3d27d4eb4fULL) >> 32) | 1;
}

#endif /* LBD_HASH_H */
