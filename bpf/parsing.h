/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsers. Each takes a cursor, checks the header against data_end,
 * advances the cursor and returns what comes next (or a negative value).
 */
#ifndef LBD_PARSING_H
#define LBD_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_endian.h>
#include "lbd_shared.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#define LBD_VLAN_MAX_DEPTH 2
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
#define IP_DF 0x4000

struct hdr_cursor {
	void *pos;
};

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* What the program learns about a packet on its way through. */
struct packet {
	struct lbd_flow_key flow; /* the client's 5-tuple */
	__u32 l3_off;             /* offset of the IP header from data */
	__u32 ip_len;             /* L3 length: IPv4 tot_len, IPv6 40 + payload_len */
	__u32 l4_len;             /* what the IP header says follows it */
	__u32 frame_len;
	__u64 now;                /* coarse ns clock, read once per VIP packet */
	__be32 flow_label;        /* IPv6 only */
	__u8 tos;                 /* IPv4 TOS / IPv6 traffic class */
	__u8 ttl;                 /* IPv4 TTL / IPv6 hop limit */
	__u8 df;                  /* IPv4 DF set (IPv6: always 1) */
	__u8 icmp_error;          /* packet is an ICMP error about a VIP flow */
	__u8 tcp_syn;             /* TCP SYN without ACK: a new connection */
	__u8 tcp_close;           /* TCP FIN or RST: the client ends the connection */
};

static __always_inline int proto_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD);
}

/* Returns the ethertype (network order) after up to two VLAN tags, or -1. */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end,
					struct ethhdr **ethhdr)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_hdr *vlh;
	__u16 h_proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return -1;
	nh->pos = eth + 1;
	*ethhdr = eth;
	h_proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < LBD_VLAN_MAX_DEPTH; i++) {
		if (!proto_is_vlan(h_proto))
			break;
		vlh = nh->pos;
		if ((void *)(vlh + 1) > data_end)
			return -1;
		h_proto = vlh->encap_proto;
		nh->pos = vlh + 1;
	}
	if (proto_is_vlan(h_proto))
		return -1; /* more tags than we parse */
	return h_proto;
}

/* Returns the IPv4 protocol, or -1 if truncated or inconsistent. */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       struct iphdr **iphdr)
{
	struct iphdr *iph = nh->pos;
	int hdrsize;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4)
		return -1;
	hdrsize = iph->ihl * 4;
	if (hdrsize < (int)sizeof(*iph))
		return -1;
	if (nh->pos + hdrsize > data_end)
		return -1;
	if (bpf_ntohs(iph->tot_len) < hdrsize)
		return -1;
	nh->pos += hdrsize;
	*iphdr = iph;
	return iph->protocol;
}

/* Returns the IPv6 next header, or -1 if truncated. */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct ipv6hdr **ip6hdr)
{
	struct ipv6hdr *ip6h = nh->pos;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	nh->pos = ip6h + 1;
	*ip6hdr = ip6h;
	return ip6h->nexthdr;
}

/* Returns 0 and the ports, or -1 if truncated or the data offset is bad. */
static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end,
					struct tcphdr **tcphdr)
{
	struct tcphdr *h = nh->pos;
	int len;

	if ((void *)(h + 1) > data_end)
		return -1;
	len = h->doff * 4;
	if (len < (int)sizeof(*h))
		return -1;
	nh->pos = h + 1; /* options are not needed */
	*tcphdr = h;
	return 0;
}

static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end,
					struct udphdr **udphdr)
{
	struct udphdr *h = nh->pos;

	if ((void *)(h + 1) > data_end)
		return -1;
	if (bpf_ntohs(h->len) < sizeof(*h))
		return -1;
	nh->pos = h + 1;
	*udphdr = h;
	return 0;
}

/* The first 8 bytes of ICMP / ICMPv6 (type, code, checksum, rest). */
struct icmp_common {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};

static __always_inline int parse_icmp(struct hdr_cursor *nh, void *data_end,
				      struct icmp_common **icmp)
{
	struct icmp_common *h = nh->pos;

	if ((void *)(h + 1) > data_end)
		return -1;
	nh->pos = h + 1;
	*icmp = h;
	return h->type;
}

/* Both port numbers sit in the first 4 bytes of TCP and UDP. */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

#endif /* LBD_PARSING_H */
