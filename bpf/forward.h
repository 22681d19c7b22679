/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sending a packet on to its backend: the kernel's FIB names the next hop,
 * its MAC addresses and the egress interface; then encapsulate and transmit.
 */
#ifndef LBD_FORWARD_H
#define LBD_FORWARD_H

#include "maps.h"
#include "parsing.h"
#include "encap.h"
#include "icmp.h"

#define NEIGH_EVENT_INTERVAL_NS 10000000ULL /* at most 100 events/s per CPU */
#define NEXTHOP_TTL_NS 1000000000ULL /* a route or neighbour change shows within 1 s */

/* Tells lbd that the FIB's next hop toward a backend has no neighbour entry. */
static __always_inline void neigh_event(const struct bpf_fib_lookup *fib, __u64 now)
{
	struct lbd_neigh_event ev = {};
	__u32 zero = 0;
	__u64 *last;

	last = bpf_map_lookup_elem(&neigh_rl, &zero);
	if (!last)
		return;
	if (now - *last < NEIGH_EVENT_INTERVAL_NS)
		return;
	*last = now;
	ev.ifindex = fib->ifindex;
	if (fib->family == AF_INET) {
		ev.family = LBD_AF_INET;
		ev.nexthop.w[0] = fib->ipv4_dst;
	} else {
		ev.family = LBD_AF_INET6;
		__builtin_memcpy(&ev.nexthop, fib->ipv6_dst, sizeof(ev.nexthop));
	}
	if (bpf_ringbuf_output(&neigh_events, &ev, sizeof(ev), 0))
		count(LBD_CNT_NEIGH_EVENT_LOST);
}

/* Routes, encapsulates and transmits. Returns the counter to record and sets
 * *action. The packet is left untouched on every pass verdict. */
static __always_inline __u32 forward(struct xdp_md *ctx, const struct packet *pkt,
				     const struct lbd_backend *be, __u32 be_id, __u32 hash,
				     int *action)
{
	struct bpf_fib_lookup fib = {};
	struct lbd_addr src = {};
	struct lbd_nexthop *nh;
	__u32 overhead, flags = 0;
	const __u64 now = pkt->now;
	int have_src, rc;

	have_src = outer_source(be->family, hash, &src);
	overhead = be->family == LBD_AF_INET ? LBD_IPIP_OVERHEAD : LBD_IP6IP6_OVERHEAD;
	nh = bpf_map_lookup_elem(&nexthops, &be_id);
	if (nh && nh->expires > now && nh->gen == be->gen && nh->ingress == ctx->ingress_ifindex &&
	    pkt->ip_len + overhead <= nh->fits &&
	    (have_src || (nh->src.w[0] | nh->src.w[1] | nh->src.w[2] | nh->src.w[3]))) {
		/* This CPU asked the FIB about this backend less than a second
		 * ago, for a packet at least this long: same answer. */
		fib.ifindex = nh->ifindex;
		__builtin_memcpy(fib.smac, nh->smac, ETH_ALEN);
		__builtin_memcpy(fib.dmac, nh->dmac, ETH_ALEN);
		if (!have_src)
			src = nh->src;
		goto encap;
	}
	if (!have_src)
		flags |= BPF_FIB_LOOKUP_SRC;
	fib.ifindex = ctx->ingress_ifindex;
	if (be->family == LBD_AF_INET) {
		fib.family = AF_INET;
		fib.tos = pkt->tos;
		fib.ipv4_src = src.w[0];
		fib.ipv4_dst = be->addr.w[0];
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, &src, sizeof(src));
		__builtin_memcpy(fib.ipv6_dst, &be->addr, sizeof(be->addr));
	}
	fib.tot_len = pkt->ip_len + overhead;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), flags);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		break;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		neigh_event(&fib, now);
		return LBD_CNT_PASS_NO_NEIGH;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		if (pkt->icmp_error) /* never answer an ICMP error with one */
			return LBD_CNT_PASS_TOO_BIG;
		if (be->family == LBD_AF_INET)
			return send_icmp4_too_big(ctx, pkt, fib.mtu_result - overhead, action);
		return send_icmp6_too_big(ctx, pkt, fib.mtu_result - overhead, action);
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		*action = XDP_DROP;
		return LBD_CNT_DROP_FIB_UNREACH;
	case BPF_FIB_LKUP_RET_FWD_DISABLED:
		return LBD_CNT_PASS_FWD_DISABLED;
	default:
		return LBD_CNT_PASS_FIB_OTHER;
	}

	if (!have_src) {
		if (be->family == LBD_AF_INET)
			src.w[0] = fib.ipv4_src;
		else
			__builtin_memcpy(&src, fib.ipv6_src, sizeof(src));
	}
	if (nh) {
		if (nh->expires <= now || nh->gen != be->gen || nh->ingress != ctx->ingress_ifindex ||
		    nh->ifindex != fib.ifindex)
			nh->fits = 0;
		nh->expires = now + NEXTHOP_TTL_NS;
		nh->gen = be->gen;
		nh->ingress = ctx->ingress_ifindex;
		nh->ifindex = fib.ifindex;
		if (pkt->ip_len + overhead > nh->fits)
			nh->fits = pkt->ip_len + overhead;
		if (have_src) /* only a source the FIB picked is worth keeping */
			__builtin_memset(&nh->src, 0, sizeof(nh->src));
		else
			nh->src = src;
		__builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
		__builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
	}
encap:
	if (be->family == LBD_AF_INET)
		rc = encap_v4(ctx, pkt, &fib, src.w[0], be->addr.w[0]);
	else
		rc = encap_v6(ctx, pkt, &fib, &src, &be->addr, hash);
	if (rc) {
		*action = XDP_DROP;
		return LBD_CNT_DROP_ENCAP;
	}
	if (fib.ifindex == ctx->ingress_ifindex) {
		*action = XDP_TX;
		return LBD_CNT_TX;
	}
	*action = bpf_redirect(fib.ifindex, 0);
	return LBD_CNT_REDIRECT;
}

#endif /* LBD_FORWARD_H */
