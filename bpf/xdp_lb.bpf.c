// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbd's XDP load balancer. One packet, top to bottom:
 *   classify (classify.h) -> VIP lookup -> connection table (conntrack.h)
 *   or a new pick (persistence, persist.h, then the VIP's algorithm,
 *   select.h; always for a TCP SYN, and for every datagram of a one-packet
 *   UDP VIP) -> route, encapsulate, transmit (forward.h).
 * Anything that is not for a VIP goes to the kernel untouched.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lbd_shared.h"
#include "lbd_hash.h"
#include "maps.h"
#include "clock.h"
#include "parsing.h"
#include "classify.h"
#include "conntrack.h"
#include "select.h"
#include "persist.h"
#include "forward.h"

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct lbd_vip_key vkey = {};
	struct lbd_persist_key pkey;
	struct packet pkt = {};
	struct lbd_vip_meta *vip;
	struct lbd_backend *be;
	struct ethhdr *eth;
	__u32 reason, hash, be_id = LBD_NO_BACKEND;
	int action = XDP_PASS, eth_type, new_flow = 0, one_packet, persistent;

	pkt.frame_len = data_end - data;
	eth_type = parse_ethhdr(&nh, data_end, &eth);
	if (eth_type < 0) {
		reason = LBD_CNT_PASS_MALFORMED;
		goto out;
	}
	pkt.l3_off = nh.pos - data;
	if (eth_type == bpf_htons(ETH_P_IP))
		reason = classify_v4(&nh, data_end, &pkt);
	else if (eth_type == bpf_htons(ETH_P_IPV6))
		reason = classify_v6(&nh, data_end, &pkt);
	else
		reason = LBD_CNT_PASS_NOT_IP;
	if (reason != LBD_CONTINUE)
		goto out;

	vkey.addr = pkt.flow.dst;
	vkey.port = pkt.flow.dport;
	vkey.proto = pkt.flow.proto;
	vkey.family = pkt.flow.family;
	vip = vip_lookup(&vkey);
	if (!vip) {
		reason = LBD_CNT_PASS_NOT_VIP;
		goto out;
	}
	/* Flooded to us, not sent to us: another host on the segment may be
	 * the one meant to take it; the kernel decides (it forwards neither). */
	if (eth->h_dest[0] & 1) {
		reason = LBD_CNT_PASS_NOT_UNICAST;
		goto vip_out;
	}

	hash = lbd_flow_hash(&pkt.flow, hash_seed);
	pkt.now = lbd_now(); /* the one clock read of this packet (clock.h) */
	/* One-packet UDP VIPs keep no connection table: each datagram is
	 * scheduled on its own. */
	one_packet = (vip->flags & LBD_VIP_F_ONE_PACKET) && pkt.flow.proto == IPPROTO_UDP;
	persistent = vip->flags & LBD_VIP_F_PERSIST;
	if (persistent)
		persist_key(vip, &pkt, &pkey);
	/* A SYN opens a new connection: it is scheduled afresh (a drained or
	 * re-weighted backend gets no new connection through a reused 5-tuple)
	 * and its entry replaces any old one. */
	be = pkt.tcp_syn || one_packet ? NULL : ct_lookup(&pkt, vip, hash, &be_id);
	if (!be) {
		be = persistent ? persist_lookup(&pkey, vip, pkt.now, &be_id) : NULL;
		if (!be) {
			be_id = select_backend(vip, &pkt, hash);
			be = bpf_map_lookup_elem(&backends, &be_id);
			if (!be || !(be->flags & LBD_BE_F_VALID)) {
				be_id = LBD_NO_BACKEND;
				action = XDP_DROP;
				reason = LBD_CNT_DROP_NO_BACKEND;
				goto vip_out;
			}
			if (persistent && !pkt.icmp_error)
				persist_record(&pkey, be_id, be, pkt.now);
		}
		if (!pkt.icmp_error) {
			if (!one_packet)
				ct_insert(&pkt, vip, hash, be_id, be);
			new_flow = 1;
		}
	} else if (persistent) {
		persist_touch(&pkey, vip, be_id, be, pkt.now);
	}
	if (be->family != pkt.flow.family) {
		action = XDP_DROP;
		reason = LBD_CNT_DROP_FAMILY;
		goto vip_out;
	}
	reason = forward(ctx, &pkt, be, be_id, hash, &action);
	if (reason == LBD_CNT_TX || reason == LBD_CNT_REDIRECT) {
		stats_add(&backend_stats, be_id, pkt.frame_len, new_flow);
		if (pkt.icmp_error)
			count(LBD_CNT_ICMP_ERR_FWD);
	}
vip_out:
	stats_add(&vip_stats, vip->vip_id, pkt.frame_len, new_flow);
out:
	count(reason);
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
