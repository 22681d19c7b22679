// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Baselines for bench/xdp_bench.cpp: the least an XDP load balancer must do.
 * Each program parses the same headers as xdp_lb (Ethernet with up to two
 * VLAN tags, IPv4 or IPv6, the TCP or UDP ports; bpf/parsing.h, the very same
 * parsers) and then gives the verdict xdp_lb gives the packet, with nothing in
 * between: no map, no hash, no FIB lookup, no encapsulation. The benchmark
 * runs a baseline and xdp_lb on the same frame, interleaved, and reports
 * xdp_lb's time minus the baseline's as xdp_lb's own cost: what the test
 * harness, the page pool, the transmit and the parse cost is common to both
 * and cancels out.
 *
 *   bench_bounce  swaps the MAC addresses and returns XDP_TX (the packet's
 *                 cost for every VIP case: xdp_lb sends those with XDP_TX)
 *   bench_pass    returns XDP_PASS (the non-VIP case)
 *   bench_drop    returns XDP_DROP; attached to the far end of the bench's
 *                 veth pair so XDP_TX frames are delivered (native XDP_TX on
 *                 veth reaches the peer only if the peer runs XDP) and freed.
 *                 It counts what arrives in peer_frames: slot 0 the frames
 *                 sent to the next hop's MAC (gw_mac: what xdp_lb sends
 *                 after its FIB lookup), slot 1 anything else (the
 *                 baseline's bounced frames, the kernel's own IPv6 chatter).
 *                 Every frame costs the same whichever slot it lands in.
 *
 * Built like bpf/xdp_lb.bpf.c (cmake/BpfObject.cmake flags); see
 * bench/build_baseline.sh until CMake builds it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "parsing.h"

/* Parses as far as xdp_lb does before it looks anything up. Returns 0 when
 * the frame is TCP or UDP over IPv4/IPv6 with sane headers, -1 otherwise. */
static __always_inline int parse(struct xdp_md *ctx, struct ethhdr **eth_out)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct tcphdr *tcp;
	struct udphdr *udp;
	int eth_type, proto;

	eth_type = parse_ethhdr(&nh, data_end, &eth);
	if (eth_type == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto < 0 || iph->ihl != 5)
			return -1;
	} else if (eth_type == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
	} else {
		return -1;
	}
	if (proto == IPPROTO_TCP) {
		if (parse_tcphdr(&nh, data_end, &tcp) < 0 || tcp->dest == 0)
			return -1;
	} else if (proto == IPPROTO_UDP) {
		if (parse_udphdr(&nh, data_end, &udp) < 0 || udp->dest == 0)
			return -1;
	} else {
		return -1;
	}
	*eth_out = eth;
	return 0;
}

SEC("xdp")
int bench_bounce(struct xdp_md *ctx)
{
	struct ethhdr *eth;
	__u8 tmp[ETH_ALEN];

	if (parse(ctx, &eth) < 0)
		return XDP_PASS;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	struct ethhdr *eth;

	if (parse(ctx, &eth) < 0)
		return XDP_DROP; /* never for the bench's frames: the counter check would see it */
	return XDP_PASS;
}

/* The next hop of bench/bench_netns.h. */
const volatile __u8 gw_mac[ETH_ALEN] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} peer_frames SEC(".maps");

SEC("xdp")
int bench_drop(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	__u32 slot = 1, i;
	__u64 *n;

	if ((void *)(eth + 1) <= data_end) {
		slot = 0;
#pragma unroll
		for (i = 0; i < ETH_ALEN; i++)
			if (eth->h_dest[i] != gw_mac[i])
				slot = 1;
	}
	n = bpf_map_lookup_elem(&peer_frames, &slot);
	if (n)
		*n += 1;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
