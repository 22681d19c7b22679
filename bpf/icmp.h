/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP both ways: inbound errors about a VIP flow are parsed so they can
 * follow the flow to its backend; a packet too big to encapsulate is answered
 * with ICMP fragmentation-needed / ICMPv6 Packet Too Big.
 */
#ifndef LBD_ICMP_H
#define LBD_ICMP_H

#include "maps.h"
#include "parsing.h"
#include "csum.h"

#define ICMP4_TOO_BIG_LEN (sizeof(struct iphdr) + 8) /* quoted: header + 8 bytes */
#define ICMP6_TOO_BIG_LEN (sizeof(struct ipv6hdr) + 8)
#define IPV6_MIN_MTU 1280

static __always_inline int icmp4_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

static __always_inline int icmp6_is_error(__u8 type)
{
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
}

/* The quoted packet went VIP -> client (a DSR reply); the flow it belongs to
 * is the reverse. The error must be addressed to where the quoted packet came
 * from (the VIP). Fills pkt->flow with the client's 5-tuple. Returns
 * LBD_CNT_MAX to go on, or the counter that ends the packet. */
static __always_inline __u32 parse_icmp4_quote(struct hdr_cursor *nh, void *data_end,
					       struct packet *pkt)
{
	struct iphdr *in = nh->pos;
	struct l4_ports *ports;

	if ((void *)(in + 1) > data_end)
		return LBD_CNT_PASS_MALFORMED;
	if (in->version != 4 || in->ihl != 5)
		return LBD_CNT_PASS_NOT_VIP;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return LBD_CNT_PASS_NOT_VIP;
	if (in->saddr != pkt->flow.dst.w[0])
		return LBD_CNT_PASS_NOT_VIP;
	ports = (void *)(in + 1);
	if ((void *)(ports + 1) > data_end)
		return LBD_CNT_PASS_MALFORMED;
	pkt->flow.src.w[0] = in->daddr;
	pkt->flow.dst.w[0] = in->saddr;
	pkt->flow.sport = ports->dest;
	pkt->flow.dport = ports->source;
	pkt->flow.proto = in->protocol;
	pkt->icmp_error = 1;
	return LBD_CNT_MAX;
}

static __always_inline __u32 parse_icmp6_quote(struct hdr_cursor *nh, void *data_end,
					       struct packet *pkt)
{
	struct ipv6hdr *in = nh->pos;
	struct l4_ports *ports;

	if ((void *)(in + 1) > data_end)
		return LBD_CNT_PASS_MALFORMED;
	if (in->version != 6)
		return LBD_CNT_PASS_NOT_VIP;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return LBD_CNT_PASS_NOT_VIP;
	if (in->saddr.in6_u.u6_addr32[0] != pkt->flow.dst.w[0] ||
	    in->saddr.in6_u.u6_addr32[1] != pkt->flow.dst.w[1] ||
	    in->saddr.in6_u.u6_addr32[2] != pkt->flow.dst.w[2] ||
	    in->saddr.in6_u.u6_addr32[3] != pkt->flow.dst.w[3])
		return LBD_CNT_PASS_NOT_VIP;
	ports = (void *)(in + 1);
	if ((void *)(ports + 1) > data_end)
		return LBD_CNT_PASS_MALFORMED;
	__builtin_memcpy(&pkt->flow.src, &in->daddr, sizeof(pkt->flow.src));
	__builtin_memcpy(&pkt->flow.dst, &in->saddr, sizeof(pkt->flow.dst));
	pkt->flow.sport = ports->dest;
	pkt->flow.dport = ports->source;
	pkt->flow.proto = in->nexthdr;
	pkt->icmp_error = 1;
	return LBD_CNT_MAX;
}

/* Rewrites the frame in place into an ICMP fragmentation-needed from the VIP
 * to the client and returns LBD_CNT_ICMP_TOO_BIG (action XDP_TX), or a pass
 * counter when it cannot. Only untagged frames are answered. */
static __always_inline __u32 send_icmp4_too_big(struct xdp_md *ctx, const struct packet *pkt,
						__u32 mtu, int *action)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const int grow = sizeof(struct iphdr) + sizeof(struct icmphdr);
	const int len = sizeof(struct ethhdr) + grow + ICMP4_TOO_BIG_LEN;
	__u8 quote[ICMP4_TOO_BIG_LEN];
	__u8 smac[ETH_ALEN], dmac[ETH_ALEN];
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct icmphdr *icmp;

	if (!pkt->df || pkt->l3_off != sizeof(struct ethhdr))
		return LBD_CNT_PASS_TOO_BIG;
	if (data + sizeof(struct ethhdr) + ICMP4_TOO_BIG_LEN > data_end)
		return LBD_CNT_PASS_MALFORMED;
	__builtin_memcpy(quote, data + sizeof(struct ethhdr), ICMP4_TOO_BIG_LEN);
	__builtin_memcpy(smac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(dmac, eth->h_source, ETH_ALEN);

	if (bpf_xdp_adjust_head(ctx, -grow))
		return LBD_CNT_PASS_TOO_BIG;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (bpf_xdp_adjust_tail(ctx, len - (int)(data_end - data))) {
		*action = XDP_DROP;
		return LBD_CNT_DROP_ENCAP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + len > data_end) {
		*action = XDP_DROP;
		return LBD_CNT_DROP_ENCAP;
	}
	eth = data;
	iph = (void *)(eth + 1);
	icmp = (void *)(iph + 1);

	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = 0;
	iph->tot_len = bpf_htons(grow + ICMP4_TOO_BIG_LEN);
	iph->id = 0;
	iph->frag_off = 0;
	iph->ttl = 64;
	iph->protocol = IPPROTO_ICMP;
	iph->check = 0;
	iph->saddr = pkt->flow.dst.w[0]; /* the VIP */
	iph->daddr = pkt->flow.src.w[0]; /* the client */
	iph->check = ipv4_csum(iph);

	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->un.frag.__unused = 0;
	icmp->un.frag.mtu = bpf_htons(mtu);
	__builtin_memcpy(icmp + 1, quote, ICMP4_TOO_BIG_LEN);
	icmp->checksum = csum_fold(bpf_csum_diff(0, 0, (void *)icmp,
						 sizeof(*icmp) + ICMP4_TOO_BIG_LEN, 0));
	*action = XDP_TX;
	return LBD_CNT_ICMP_TOO_BIG;
}

/* Same for IPv6: an ICMPv6 Packet Too Big from the VIP to the client. */
static __always_inline __u32 send_icmp6_too_big(struct xdp_md *ctx, const struct packet *pkt,
						__u32 mtu, int *action)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const int grow = sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr);
	const int len = sizeof(struct ethhdr) + grow + ICMP6_TOO_BIG_LEN;
	__u8 quote[ICMP6_TOO_BIG_LEN];
	__u8 smac[ETH_ALEN], dmac[ETH_ALEN];
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6h;
	struct icmp6hdr *icmp;
	__u64 sum;

	if (pkt->l3_off != sizeof(struct ethhdr))
		return LBD_CNT_PASS_TOO_BIG;
	if (data + sizeof(struct ethhdr) + ICMP6_TOO_BIG_LEN > data_end)
		return LBD_CNT_PASS_MALFORMED;
	__builtin_memcpy(quote, data + sizeof(struct ethhdr), ICMP6_TOO_BIG_LEN);
	__builtin_memcpy(smac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(dmac, eth->h_source, ETH_ALEN);
	if (mtu < IPV6_MIN_MTU)
		mtu = IPV6_MIN_MTU;

	if (bpf_xdp_adjust_head(ctx, -grow))
		return LBD_CNT_PASS_TOO_BIG;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (bpf_xdp_adjust_tail(ctx, len - (int)(data_end - data))) {
		*action = XDP_DROP;
		return LBD_CNT_DROP_ENCAP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + len > data_end) {
		*action = XDP_DROP;
		return LBD_CNT_DROP_ENCAP;
	}
	eth = data;
	ip6h = (void *)(eth + 1);
	icmp = (void *)(ip6h + 1);

	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);

	ip6h->version = 6;
	ip6h->priority = 0;
	ip6h->flow_lbl[0] = 0;
	ip6h->flow_lbl[1] = 0;
	ip6h->flow_lbl[2] = 0;
	ip6h->payload_len = bpf_htons(sizeof(*icmp) + ICMP6_TOO_BIG_LEN);
	ip6h->nexthdr = IPPROTO_ICMPV6;
	ip6h->hop_limit = 64;
	__builtin_memcpy(&ip6h->saddr, &pkt->flow.dst, 16); /* the VIP */
	__builtin_memcpy(&ip6h->daddr, &pkt->flow.src, 16); /* the client */

	icmp->icmp6_type = ICMPV6_PKT_TOOBIG;
	icmp->icmp6_code = 0;
	icmp->icmp6_cksum = 0;
	icmp->icmp6_mtu = bpf_htonl(mtu);
	__builtin_memcpy(icmp + 1, quote, ICMP6_TOO_BIG_LEN);

	/* Pseudo-header: addresses, upper-layer length, next header. */
	sum = (__u32)bpf_csum_diff(0, 0, (void *)&ip6h->saddr, 32, 0);
	sum += bpf_htonl(sizeof(*icmp) + ICMP6_TOO_BIG_LEN);
	sum += bpf_htonl(IPPROTO_ICMPV6);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (__u32)bpf_csum_diff(0, 0, (void *)icmp, sizeof(*icmp) + ICMP6_TOO_BIG_LEN,
				   (__u32)sum);
	icmp->icmp6_cksum = csum_fold(sum);
	*action = XDP_TX;
	return LBD_CNT_ICMP_TOO_BIG;
}

#endif /* LBD_ICMP_H */
