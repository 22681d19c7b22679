/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From raw frame to a struct packet: which flow it belongs to, or the named
 * reason it is not the load balancer's business.
 */
#ifndef LBD_CLASSIFY_H
#define LBD_CLASSIFY_H

#include "parsing.h"
#include "icmp.h"

/* Returned by the classifiers when the packet goes on to the VIP lookup. */
#define LBD_CONTINUE LBD_CNT_MAX

static __always_inline __u32 classify_l4(struct hdr_cursor *nh, void *data_end,
					 struct packet *pkt, int proto)
{
	struct l4_ports *ports = nh->pos;
	struct tcphdr *tcp;
	struct udphdr *udp;

	/* The L4 header must lie within what the IP length covers, not only
	 * within the frame: lengths are trusted later (outer header, MTU). */
	if (proto == IPPROTO_TCP) {
		if (parse_tcphdr(nh, data_end, &tcp) < 0 || pkt->l4_len < tcp->doff * 4u)
			return LBD_CNT_PASS_MALFORMED;
		pkt->tcp_syn = tcp->syn && !tcp->ack;
		pkt->tcp_close = tcp->fin || tcp->rst;
	} else if (proto == IPPROTO_UDP) {
		if (parse_udphdr(nh, data_end, &udp) < 0 || bpf_ntohs(udp->len) > pkt->l4_len)
			return LBD_CNT_PASS_MALFORMED;
	} else {
		return LBD_CNT_PASS_NOT_VIP;
	}
	pkt->flow.sport = ports->source;
	pkt->flow.dport = ports->dest;
	pkt->flow.proto = proto;
	return LBD_CONTINUE;
}

static __always_inline __u32 classify_v4(struct hdr_cursor *nh, void *data_end,
					 struct packet *pkt)
{
	struct icmp_common *icmp;
	struct iphdr *iph;
	int proto;

	proto = parse_iphdr(nh, data_end, &iph);
	if (proto < 0)
		return LBD_CNT_PASS_MALFORMED;
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return LBD_CNT_PASS_FRAGMENT;
	if (iph->ihl != 5)
		return LBD_CNT_PASS_IP_OPTIONS;

	pkt->flow.family = LBD_AF_INET;
	pkt->flow.src.w[0] = iph->saddr;
	pkt->flow.dst.w[0] = iph->daddr;
	pkt->ip_len = bpf_ntohs(iph->tot_len);
	if ((void *)iph + pkt->ip_len > data_end)
		return LBD_CNT_PASS_MALFORMED; /* claims more than the frame holds */
	pkt->l4_len = pkt->ip_len - sizeof(*iph);
	pkt->tos = iph->tos;
	pkt->ttl = iph->ttl;
	pkt->df = !!(iph->frag_off & bpf_htons(IP_DF));

	if (proto == IPPROTO_ICMP) {
		if (parse_icmp(nh, data_end, &icmp) < 0)
			return LBD_CNT_PASS_MALFORMED;
		if (!icmp4_is_error(icmp->type))
			return LBD_CNT_PASS_NOT_VIP;
		if (pkt->l4_len < sizeof(*icmp) + sizeof(struct iphdr) + sizeof(struct l4_ports))
			return LBD_CNT_PASS_MALFORMED;
		return parse_icmp4_quote(nh, data_end, pkt);
	}
	return classify_l4(nh, data_end, pkt, proto);
}

static __always_inline __u32 classify_v6(struct hdr_cursor *nh, void *data_end,
					 struct packet *pkt)
{
	struct icmp_common *icmp;
	struct ipv6hdr *ip6h;
	int proto;

	proto = parse_ip6hdr(nh, data_end, &ip6h);
	if (proto < 0)
		return LBD_CNT_PASS_MALFORMED;

	pkt->flow.family = LBD_AF_INET6;
	__builtin_memcpy(&pkt->flow.src, &ip6h->saddr, sizeof(pkt->flow.src));
	__builtin_memcpy(&pkt->flow.dst, &ip6h->daddr, sizeof(pkt->flow.dst));
	pkt->ip_len = sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
	if ((void *)ip6h + pkt->ip_len > data_end)
		return LBD_CNT_PASS_MALFORMED; /* claims more than the frame holds */
	pkt->l4_len = bpf_ntohs(ip6h->payload_len);
	pkt->tos = (ip6h->priority << 4) | (ip6h->flow_lbl[0] >> 4);
	pkt->ttl = ip6h->hop_limit;
	pkt->df = 1;

	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		return classify_l4(nh, data_end, pkt, proto);
	case IPPROTO_ICMPV6:
		if (parse_icmp(nh, data_end, &icmp) < 0)
			return LBD_CNT_PASS_MALFORMED;
		if (!icmp6_is_error(icmp->type))
			return LBD_CNT_PASS_NOT_VIP;
		if (pkt->l4_len < sizeof(*icmp) + sizeof(struct ipv6hdr) + sizeof(struct l4_ports))
			return LBD_CNT_PASS_MALFORMED;
		return parse_icmp6_quote(nh, data_end, pkt);
	case IPPROTO_FRAGMENT:
		return LBD_CNT_PASS_FRAGMENT;
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_ESP:
	case IPPROTO_MH:
		return LBD_CNT_PASS_IPV6_EXT;
	default:
		return LBD_CNT_PASS_NOT_VIP;
	}
}

#endif /* LBD_CLASSIFY_H */
