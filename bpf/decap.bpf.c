/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbd-decap: XDP decapsulation for lbd backends.
 *
 * lbd sends client packets to a backend wrapped in an outer IP header:
 * IPv4-in-IPv4 (protocol 4) or IPv6-in-IPv6 (next header 41). Kernels without
 * the ipip / ip6_tunnel modules cannot take those apart, so this program does
 * it on the backend's ingress interface: it strips the outer header, keeps the
 * Ethernet header and any VLAN tags as they were, sets the ethertype of the
 * inner family and hands the inner packet to the kernel stack (XDP_PASS).
 *
 * Only packets whose outer protocol is 4 or 41 (so 4in4, 6in6, 6in4, 4in6)
 * AND whose outer destination is in decap_dsts are touched. Everything else
 * passes unchanged, so the program is harmless on an interface that also sees
 * transit tunnel traffic addressed to other hosts.
 *
 * Outer IPv6 headers may carry hop-by-hop and destination options headers
 * (Linux ip6tnl adds a tunnel encapsulation limit option by default); they
 * are removed with the outer header. Outer fragments (IPv4 MF or offset, IPv6
 * fragment header) are passed undecapsulated and counted.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lbd_shared.h"

/* struct decap_dst_key and enum decap_counter are in lbd_shared.h. */

#define DECAP_MAX_DSTS 1024
#define DECAP_MAX_VLANS 2
#define DECAP_MAX_IPV6_EXT 3

#define VLAN_8021Q 0x8100
#define VLAN_8021AD 0x88a8

/* IPv4 flags/offset bits that make a packet a fragment: MF | offset. */
#define IPV4_MF_OFFSET 0x3fff

struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

/* The Ethernet header and up to two VLAN tags, in wire order. */
struct l2_hdr {
	struct ethhdr eth;
	struct vlan_tag vlan[DECAP_MAX_VLANS];
} __attribute__((packed));

struct ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* decap_dsts: key struct decap_dst_key, value __u8 (unused, 1); this host's
 * tunnel endpoint addresses, written by lbd-decap attach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DECAP_MAX_DSTS);
	__type(key, struct decap_dst_key);
	__type(value, __u8);
} decap_dsts SEC(".maps");

/* decap_stats: key enum decap_counter, value __u64 packets per CPU; written by
 * this program only, read by lbd-decap status. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DECAP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} decap_stats SEC(".maps");

SEC("xdp")
int lbd_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct decap_dst_key key = {};
	struct l2_hdr l2;
	struct ethhdr *eth = data;
	__u32 cnt = DECAP_CNT_MALFORMED;
	int action = XDP_PASS;
	__u32 l3_off, inner_off, outer_len, nvlan = 0;
	__be16 proto, inner_ethertype;
	__u8 inner_proto;
	int frag = 0;
	__u64 *counter;
	int i;

	if ((void *)(eth + 1) > data_end)
		goto out;
	proto = eth->h_proto;
	l3_off = sizeof(*eth);

	for (i = 0; i < DECAP_MAX_VLANS; i++) {
		struct vlan_tag *tag = data + l3_off;

		if (proto != bpf_htons(VLAN_8021Q) &&
		    proto != bpf_htons(VLAN_8021AD))
			break;
		if ((void *)(tag + 1) > data_end)
			goto out;
		proto = tag->encap_proto;
		l3_off += sizeof(*tag);
		nvlan++;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + l3_off;
		__u32 ihl_bytes;

		if ((void *)(ip + 1) > data_end)
			goto out;
		ihl_bytes = (ip->ihl & 0xf) * 4;
		if (ip->version != 4 || ihl_bytes < sizeof(*ip) ||
		    data + l3_off + ihl_bytes > data_end)
			goto out;
		inner_proto = ip->protocol;
		if (inner_proto != IPPROTO_IPIP && inner_proto != IPPROTO_IPV6) {
			cnt = DECAP_CNT_PASSED_NOT_TUNNEL;
			goto out;
		}
		key.addr.w[0] = ip->daddr;
		key.family = LBD_AF_INET;
		frag = (ip->frag_off & bpf_htons(IPV4_MF_OFFSET)) != 0;
		inner_off = l3_off + ihl_bytes;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + l3_off;

		if ((void *)(ip6 + 1) > data_end)
			goto out;
		if (ip6->version != 6)
			goto out;
		inner_proto = ip6->nexthdr;
		inner_off = l3_off + sizeof(*ip6);

		/* Skip the extension headers a tunnel sender may put before
		 * the inner packet. */
		for (i = 0; i < DECAP_MAX_IPV6_EXT; i++) {
			if (inner_proto == IPPROTO_HOPOPTS ||
			    inner_proto == IPPROTO_DSTOPTS) {
				struct ipv6_opt_hdr *opt = data + inner_off;

				if ((void *)(opt + 1) > data_end)
					goto out;
				inner_proto = opt->nexthdr;
				inner_off += (opt->hdrlen + 1) * 8;
			} else if (inner_proto == IPPROTO_FRAGMENT) {
				struct ipv6_frag *fh = data + inner_off;

				if ((void *)(fh + 1) > data_end)
					goto out;
				inner_proto = fh->nexthdr;
				inner_off += sizeof(*fh);
				frag = 1;
			} else {
				break;
			}
		}
		if (inner_proto != IPPROTO_IPIP && inner_proto != IPPROTO_IPV6) {
			cnt = DECAP_CNT_PASSED_NOT_TUNNEL;
			goto out;
		}
		__builtin_memcpy(&key.addr, &ip6->daddr, sizeof(key.addr));
		key.family = LBD_AF_INET6;
	} else {
		cnt = DECAP_CNT_PASSED_NOT_TUNNEL;
		goto out;
	}

	if (!bpf_map_lookup_elem(&decap_dsts, &key)) {
		cnt = DECAP_CNT_PASSED_NOT_LOCAL;
		goto out;
	}
	if (frag) {
		cnt = DECAP_CNT_PASSED_FRAGMENT;
		goto out;
	}

	/* The inner header must be there and match the outer protocol. */
	if (inner_proto == IPPROTO_IPIP) {
		struct iphdr *in4 = data + inner_off;

		if ((void *)(in4 + 1) > data_end || in4->version != 4)
			goto out;
		inner_ethertype = bpf_htons(ETH_P_IP);
	} else {
		struct ipv6hdr *in6 = data + inner_off;

		if ((void *)(in6 + 1) > data_end || in6->version != 6)
			goto out;
		inner_ethertype = bpf_htons(ETH_P_IPV6);
	}

	/* Save the L2 header, give the inner ethertype to its last tag (or to
	 * the Ethernet header), drop the outer IP header, write L2 back. */
	if (nvlan == 0) {
		if (data + sizeof(l2.eth) > data_end)
			goto out;
		__builtin_memcpy(&l2, data, sizeof(l2.eth));
		l2.eth.h_proto = inner_ethertype;
	} else if (nvlan == 1) {
		if (data + sizeof(l2.eth) + sizeof(l2.vlan[0]) > data_end)
			goto out;
		__builtin_memcpy(&l2, data, sizeof(l2.eth) + sizeof(l2.vlan[0]));
		l2.vlan[0].encap_proto = inner_ethertype;
	} else {
		if (data + sizeof(l2) > data_end)
			goto out;
		__builtin_memcpy(&l2, data, sizeof(l2));
		l2.vlan[1].encap_proto = inner_ethertype;
	}

	outer_len = inner_off - l3_off;
	if (bpf_xdp_adjust_head(ctx, (int)outer_len))
		goto out; /* nothing changed: pass the packet as it was */

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	/* The packet was checked to be long enough above, so these bounds
	 * checks cannot fail; if they did, the packet is half rewritten. */
	action = XDP_DROP;
	if (nvlan == 0) {
		if (data + sizeof(l2.eth) > data_end)
			goto out;
		__builtin_memcpy(data, &l2, sizeof(l2.eth));
	} else if (nvlan == 1) {
		if (data + sizeof(l2.eth) + sizeof(l2.vlan[0]) > data_end)
			goto out;
		__builtin_memcpy(data, &l2, sizeof(l2.eth) + sizeof(l2.vlan[0]));
	} else {
		if (data + sizeof(l2) > data_end)
			goto out;
		__builtin_memcpy(data, &l2, sizeof(l2));
	}
	action = XDP_PASS;
	cnt = DECAP_CNT_DECAPSULATED;

out:
	counter = bpf_map_lookup_elem(&decap_stats, &cnt);
	if (counter)
		*counter += 1;
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
