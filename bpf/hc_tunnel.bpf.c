// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbd's health-check tunnel: TC egress on lbd's interfaces.
 *
 * A `via: tunnel` health probe is a socket on lbd's host connected to the
 * VIP itself, marked (SO_MARK) with the mark lbd gave its backend. Its
 * packets leave by the route to the VIP; here, on egress, each packet whose
 * mark is in lbd's range is wrapped in an outer header to that backend,
 * exactly as the XDP program wraps client traffic (IPv4-in-IPv4, IPv6-in-
 * IPv6), and handed to the backend's route. The backend decapsulates it and
 * answers from the VIP straight to lbd's address (DSR), which the XDP
 * program passes to the stack like any packet not for a VIP. So a backend
 * without the VIP on lo, or without decapsulation, fails the probe.
 *
 * Everything without a mark of lbd's range returns TC_ACT_UNSPEC at the
 * first test: the next filter on the interface, if any, decides about it.
 * A marked packet this program cannot send to its backend is dropped and
 * counted: sent on unencapsulated, it would reach whichever backend the
 * VIP's route leads to.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lbd_shared.h"
#include "csum.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#ifndef IP_DF
#define IP_DF 0x4000
#endif

#define HC_OUTER_TTL 64

/* lbd's mark range (datapath.probe_marks), set before load: a packet is a
 * probe's when (mark & mark_mask) == mark_value and mark != 0. */
const volatile __u32 mark_value = 0;
const volatile __u32 mark_mask = 0xffffffff;

/* hc_targets: mark -> lbd_hc_target (the backend); written by lbd whenever
 * its set of `via: tunnel` targets changes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lbd_hc_target);
	__uint(max_entries, LBD_DEFAULT_MAX_BACKENDS);
} hc_targets SEC(".maps");

/* hc_counters: enum lbd_hc_counter -> packets, per CPU; written by this
 * program, read by lbd (status, exit summary). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, LBD_HC_CNT_MAX);
} hc_counters SEC(".maps");

/* Asks the FIB (as the XDP program does for client traffic) which interface
 * leads to the backend; lbd enables forwarding on its interfaces, which the
 * lookup requires. The neighbour is left to bpf_redirect_neigh. Returns the
 * egress ifindex, or 0 with *cnt set. */
static __always_inline __u32 backend_route(struct __sk_buff *skb, struct bpf_fib_lookup *fib,
					   __u32 *cnt)
{
	long rc = bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_SKIP_NEIGH);

	if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return fib->ifindex;
	*cnt = rc == BPF_FIB_LKUP_RET_FRAG_NEEDED ? LBD_HC_DROP_TOO_BIG : LBD_HC_DROP_NO_ROUTE;
	return 0;
}

/* Wraps an IPv4 probe packet in IPv4 to the backend. Returns the counter. */
static __always_inline __u32 encap_v4(struct __sk_buff *skb, const struct lbd_hc_target *t,
				      __u32 *ifindex)
{
	struct bpf_fib_lookup fib = {};
	struct iphdr in, out = {};
	__u32 cnt, len;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &in, sizeof(in)) < 0 || in.version != 4 || in.ihl < 5)
		return LBD_HC_DROP_MALFORMED;
	len = bpf_ntohs(in.tot_len);
	if (len < in.ihl * 4 || len > skb->len - ETH_HLEN)
		return LBD_HC_DROP_MALFORMED;

	out.version = 4;
	out.ihl = 5;
	out.tos = in.tos;
	out.tot_len = bpf_htons(len + sizeof(out));
	out.id = in.id;
	out.frag_off = in.frag_off & bpf_htons(IP_DF);
	out.ttl = HC_OUTER_TTL;
	out.protocol = IPPROTO_IPIP;
	out.saddr = in.saddr; /* lbd's address on the VIP's route */
	out.daddr = t->addr.w[0];
	out.check = ipv4_csum(&out);

	fib.family = AF_INET;
	fib.tos = in.tos;
	fib.ipv4_src = out.saddr;
	fib.ipv4_dst = out.daddr;
	fib.tot_len = len + sizeof(out);
	fib.ifindex = skb->ifindex;
	*ifindex = backend_route(skb, &fib, &cnt);
	if (!*ifindex)
		return cnt;

	if (bpf_skb_adjust_room(skb, sizeof(out), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &out, sizeof(out), 0))
		return LBD_HC_DROP_ENCAP;
	return LBD_HC_ENCAP_V4;
}

/* Wraps an IPv6 probe packet in IPv6 to the backend. Returns the counter. */
static __always_inline __u32 encap_v6(struct __sk_buff *skb, const struct lbd_hc_target *t,
				      __u32 *ifindex)
{
	struct bpf_fib_lookup fib = {};
	struct ipv6hdr in, out;
	__u32 cnt, len;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &in, sizeof(in)) < 0 || in.version != 6)
		return LBD_HC_DROP_MALFORMED;
	len = sizeof(in) + bpf_ntohs(in.payload_len);
	if (len > skb->len - ETH_HLEN)
		return LBD_HC_DROP_MALFORMED;

	/* Version, traffic class and flow label as the probe has them. */
	out = in;
	out.payload_len = bpf_htons(len);
	out.nexthdr = IPPROTO_IPV6;
	out.hop_limit = HC_OUTER_TTL;
	__builtin_memcpy(&out.daddr, &t->addr, sizeof(out.daddr));

	fib.family = AF_INET6;
	__builtin_memcpy(fib.ipv6_src, &out.saddr, sizeof(fib.ipv6_src));
	__builtin_memcpy(fib.ipv6_dst, &out.daddr, sizeof(fib.ipv6_dst));
	fib.tot_len = len + sizeof(out);
	fib.ifindex = skb->ifindex;
	*ifindex = backend_route(skb, &fib, &cnt);
	if (!*ifindex)
		return cnt;

	if (bpf_skb_adjust_room(skb, sizeof(out), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &out, sizeof(out), 0))
		return LBD_HC_DROP_ENCAP;
	return LBD_HC_ENCAP_V6;
}

SEC("tc")
int hc_tunnel(struct __sk_buff *skb)
{
	const __u32 mark = skb->mark;
	struct lbd_hc_target *t;
	__u32 cnt, ifindex = 0;
	__be16 h_proto;
	__u64 *counter;
	int ret = TC_ACT_SHOT;

	if (mark == 0 || (mark & mark_mask) != mark_value)
		return TC_ACT_UNSPEC; /* not a probe's: not ours to decide */

	t = bpf_map_lookup_elem(&hc_targets, &mark);
	if (!t) {
		cnt = LBD_HC_DROP_NO_TARGET;
		goto out;
	}
	/* lbd's interfaces are Ethernet; the frame's type must be the skb's. */
	if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), &h_proto, sizeof(h_proto)) < 0 ||
	    h_proto != skb->protocol) {
		cnt = LBD_HC_DROP_MALFORMED;
		goto out;
	}
	if (skb->protocol == bpf_htons(ETH_P_IP))
		cnt = t->family == LBD_AF_INET ? encap_v4(skb, t, &ifindex) : LBD_HC_DROP_FAMILY;
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		cnt = t->family == LBD_AF_INET6 ? encap_v6(skb, t, &ifindex) : LBD_HC_DROP_FAMILY;
	else
		cnt = LBD_HC_DROP_MALFORMED;
	if (cnt == LBD_HC_ENCAP_V4 || cnt == LBD_HC_ENCAP_V6) {
		/* Unmarked, the packet passes this program as anyone's when the
		 * backend's route leaves by this same interface. */
		skb->mark = 0;
		ret = bpf_redirect_neigh(ifindex, NULL, 0, 0);
	}
out:
	counter = bpf_map_lookup_elem(&hc_counters, &cnt);
	if (counter)
		*counter += 1;
	return ret;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
