/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Encapsulation toward a backend: IPv4-in-IPv4 or IPv6-in-IPv6. The frame is
 * rebuilt as [Ethernet from the FIB][outer IP][the client's IP packet]; VLAN
 * tags the packet arrived with are not carried over (see docs/architecture.md).
 */
#ifndef LBD_ENCAP_H
#define LBD_ENCAP_H

#include "maps.h"
#include "parsing.h"
#include "csum.h"
#include "lbd_hash.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef IPPROTO_IPIP
#define IPPROTO_IPIP 4
#endif

/* Fills `src` with the outer source for this flow from the configured prefix
 * and returns 1, or returns 0 when none is configured (the FIB picks the
 * node's address). */
static __always_inline int outer_source(__u8 family, __u32 hash, struct lbd_addr *src)
{
	__u32 zero = 0;
	struct lbd_config *cfg = bpf_map_lookup_elem(&config, &zero);

	if (!cfg)
		return 0;
	if (family == LBD_AF_INET) {
		if (!(cfg->flags & LBD_CFG_F_HAVE_SRC_V4))
			return 0;
		src->w[0] = cfg->src_v4_base.w[0] | (hash & cfg->src_v4_hostmask.w[0]);
		return 1;
	}
	if (!(cfg->flags & LBD_CFG_F_HAVE_SRC_V6))
		return 0;
	src->w[0] = cfg->src_v6_base.w[0] | (lbd_rotl32(hash, 8) & cfg->src_v6_hostmask.w[0]);
	src->w[1] = cfg->src_v6_base.w[1] | (lbd_rotl32(hash, 16) & cfg->src_v6_hostmask.w[1]);
	src->w[2] = cfg->src_v6_base.w[2] | (lbd_rotl32(hash, 24) & cfg->src_v6_hostmask.w[2]);
	src->w[3] = cfg->src_v6_base.w[3] | (hash & cfg->src_v6_hostmask.w[3]);
	return 1;
}

/* Makes room for the outer header and writes Ethernet + outer IPv4. */
static __always_inline int encap_v4(struct xdp_md *ctx, const struct packet *pkt,
				    const struct bpf_fib_lookup *fib, __be32 src, __be32 dst)
{
	int delta = (int)pkt->l3_off - (int)(sizeof(struct ethhdr) + sizeof(struct iphdr));
	struct ethhdr *eth;
	struct iphdr *iph;
	void *data, *data_end;

	if (bpf_xdp_adjust_head(ctx, delta))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return -1;

	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = pkt->tos;
	iph->tot_len = bpf_htons(pkt->ip_len + sizeof(struct iphdr));
	iph->id = 0;
	iph->frag_off = pkt->df ? bpf_htons(IP_DF) : 0;
	iph->ttl = pkt->ttl;
	iph->protocol = IPPROTO_IPIP;
	iph->check = 0;
	iph->saddr = src;
	iph->daddr = dst;
	iph->check = ipv4_csum(iph);
	return 0;
}

/* Makes room for the outer header and writes Ethernet + outer IPv6. */
static __always_inline int encap_v6(struct xdp_md *ctx, const struct packet *pkt,
				    const struct bpf_fib_lookup *fib,
				    const struct lbd_addr *src, const struct lbd_addr *dst,
				    __u32 hash)
{
	int delta = (int)pkt->l3_off - (int)(sizeof(struct ethhdr) + sizeof(struct ipv6hdr));
	__u32 label = hash & 0xfffff;
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	void *data, *data_end;

	if (bpf_xdp_adjust_head(ctx, delta))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	ip6h = (void *)(eth + 1);
	if ((void *)(ip6h + 1) > data_end)
		return -1;

	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);

	ip6h->version = 6;
	ip6h->priority = pkt->tos >> 4;
	ip6h->flow_lbl[0] = ((pkt->tos & 0xf) << 4) | (label >> 16);
	ip6h->flow_lbl[1] = (label >> 8) & 0xff;
	ip6h->flow_lbl[2] = label & 0xff;
	ip6h->payload_len = bpf_htons(pkt->ip_len);
	ip6h->nexthdr = IPPROTO_IPV6;
	ip6h->hop_limit = pkt->ttl;
	__builtin_memcpy(&ip6h->saddr, src, sizeof(*src));
	__builtin_memcpy(&ip6h->daddr, dst, sizeof(*dst));
	return 0;
}

#endif /* LBD_ENCAP_H */
