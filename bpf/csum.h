/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksums (RFC 1071). */
#ifndef LBD_CSUM_H
#define LBD_CSUM_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Checksum of an option-less IPv4 header whose check field is zero. */
static __always_inline __u16 ipv4_csum(const struct iphdr *iph)
{
	const __u16 *w = (const __u16 *)iph;
	__u64 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	return csum_fold(sum);
}

/* Checksum over a stack buffer of `size` bytes (a multiple of 4), plus `seed`. */
static __always_inline __u16 csum_buf(void *buf, __u32 size, __u32 seed)
{
	__s64 sum = bpf_csum_diff(0, 0, buf, size, seed);

	return csum_fold(sum < 0 ? 0 : (__u64)sum);
}

#endif /* LBD_CSUM_H */
