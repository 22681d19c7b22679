/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every struct, enum and constant that crosses the kernel boundary lives here.
 * It is included by the BPF programs (bpf/) and by the C++ side (src/), which
 * static_asserts sizes and offsets (src/lbd/kernel/layout_check.cpp). Change a
 * layout here and bump LBD_ABI_VERSION: a running lbd refuses to adopt pinned
 * maps of another ABI version.
 *
 * Addresses and ports are kept in network byte order, as on the wire.
 */
#ifndef LBD_SHARED_H
#define LBD_SHARED_H

#include <linux/types.h>

#define LBD_ABI_VERSION 4

/* Default map sizes; the real sizes are set from the config before load. */
#ifndef LBD_DEFAULT_MAX_VIPS
#define LBD_DEFAULT_MAX_VIPS 256
#endif
#ifndef LBD_DEFAULT_MAX_BACKENDS
#define LBD_DEFAULT_MAX_BACKENDS 4096
#endif
#ifndef LBD_DEFAULT_RING_SIZE
#define LBD_DEFAULT_RING_SIZE 65537
#endif
#ifndef LBD_DEFAULT_CONNTRACK_SIZE
#define LBD_DEFAULT_CONNTRACK_SIZE 1048576
#endif

/* A ring slot or conntrack entry that points nowhere. */
#define LBD_NO_BACKEND 0xffffffffu

/* Address families as stored in the maps (the kernel's AF_* values). */
#define LBD_AF_INET 2
#define LBD_AF_INET6 10

/* An IPv4 or IPv6 address, network byte order. IPv4 uses w[0], w[1..3] = 0. */
struct lbd_addr {
	__u32 w[4];
};

/* Key of the vips map. */
struct lbd_vip_key {
	struct lbd_addr addr;
	__be16 port;
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family; /* LBD_AF_INET or LBD_AF_INET6 */
};

/* vip_filter: one bit per bucket of lbd_vip_filter_bit() (lbd_hash.h) over
 * the VIP keys. A clear bit means no VIP has that key, so the packet passes
 * without the vips hash lookup: the common case on a gateway, where most
 * traffic is not for a VIP. lbd sets a bucket's bit before the first VIP of
 * the bucket goes in and clears it after the last one is gone. */
#define LBD_VIP_FILTER_LOG2 16
#define LBD_VIP_FILTER_WORDS ((1u << LBD_VIP_FILTER_LOG2) / 64)
struct lbd_vip_filter {
	__u64 bits[LBD_VIP_FILTER_WORDS];
};

/* How a VIP picks the backend of a new flow (see select.h and
 * docs/scheduling.md). */
enum lbd_algorithm {
	LBD_ALG_MAGLEV = 0,      /* the VIP's ring, slot by the 5-tuple hash */
	LBD_ALG_ROUND_ROBIN,     /* sched.seq: every member once, per-CPU cursor */
	LBD_ALG_WEIGHTED,        /* sched.seq: smooth weighted sequence, per-CPU cursor */
	LBD_ALG_LEAST_CONN,      /* sched.ids: fewest lc_active / weight */
	LBD_ALG_SOURCE_HASH,     /* the VIP's ring, slot by the client address hash */
	LBD_ALG_FAILOVER,        /* sched.ids (by weight, highest first): first up */
	LBD_ALG_MAX,
};

/* Value of the vips map. */
struct lbd_vip_meta {
	__u32 vip_id;    /* index of the VIP's ring and of vip_stats */
	__u32 flags;     /* LBD_VIP_F_* */
	__u32 algorithm; /* enum lbd_algorithm */
	__u32 persist_timeout_ms; /* with LBD_VIP_F_PERSIST: how long a client is remembered */
	__u8 persist_prefix_v4;   /* client addresses grouped by this prefix (1..32) */
	__u8 persist_prefix_v6;   /* (1..128) */
	__u16 reserved;
};

/* vip_index (bucket of lbd_vip_filter_bit -> LBD_VIP_INDEX_*, or vip id + 1
 * when exactly one VIP has a key in the bucket) and vip_by_id (vip id ->
 * its key and meta): a VIP packet finds its VIP with two array reads, which
 * the verifier inlines, and a key compare. Buckets of several VIPs fall back
 * to the vips hash. */
#define LBD_VIP_INDEX_NONE 0u
#define LBD_VIP_INDEX_MANY 0xffffffffu
struct lbd_vip_entry {
	struct lbd_vip_key key;
	struct lbd_vip_meta meta;
};

/* UDP only: every datagram is scheduled on its own, no connection table. */
#define LBD_VIP_F_ONE_PACKET 0x1
/* A client's new flows go to the backend of its last one (persist map). */
#define LBD_VIP_F_PERSIST 0x2

/* Backends of a VIP that is not scheduled by a ring (round-robin, weighted,
 * least-conn, failover): value of the sched map, key vip_id. Only members
 * that may take new flows are listed (weight > 0, up); the program still
 * skips one whose backends entry says down or invalid. */
#define LBD_SCHED_MAX_BACKENDS 256
#define LBD_SCHED_SEQ_MAX 1024
struct lbd_sched {
	__u32 count;   /* members in ids[] and weights[] */
	__u32 seq_len; /* entries in seq[] (round-robin, weighted; else 0) */
	__u32 ids[LBD_SCHED_MAX_BACKENDS];     /* backend ids; failover: highest weight first */
	__u32 weights[LBD_SCHED_MAX_BACKENDS];
	__u32 seq[LBD_SCHED_SEQ_MAX];          /* backend ids in scheduling order */
};

/* lc_active (least-conn): one value, an array of __s32 active-flow
 * counters, one per backend id: the counter of id n is at LBD_LC_INDEX(n)
 * (id 0 is never given out); max_backends of them, rounded up to a power of
 * two (the program masks the index: lc_mask). One value, so that
 * least-conn's scan reads the counters of its members with plain loads
 * (select.h); mmapable, so that lbd reads and writes single counters. */
#define LBD_LC_INDEX(id) ((id) - 1)

/* Key of the persist map: a client (address masked to the VIP's prefix) of a VIP. */
struct lbd_persist_key {
	__u32 vip_id;
	__u32 reserved;
	struct lbd_addr client;
};

/* Value of the persist map. */
struct lbd_persist_value {
	__u32 backend_id;
	__u32 backend_gen; /* must equal backends[backend_id].gen to be used */
	__u64 last_seen;   /* coarse ns clock of the client's last packet (refreshed lazily) */
};

/* Value of the backends map, indexed by backend id. */
struct lbd_backend {
	struct lbd_addr addr;
	__u32 gen;   /* changes when the id is reassigned or force-removed */
	__u8 family; /* LBD_AF_INET or LBD_AF_INET6 */
	__u8 flags;  /* LBD_BE_F_* */
	__u16 reserved;
};

/* The id holds a live backend. Pinned flows may use it. */
#define LBD_BE_F_VALID 0x1
/* Health checks say down: pinned flows are re-scheduled. */
#define LBD_BE_F_DOWN 0x2

/* Key of the connection table: the client's 5-tuple as it arrives. */
struct lbd_flow_key {
	struct lbd_addr src;
	struct lbd_addr dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u16 reserved;
};

/* What the connection table holds for a flow. */
struct lbd_ct_value {
	__u32 backend_id;
	__u32 backend_gen; /* must equal backends[backend_id].gen to be used */
	__u64 last_seen;   /* coarse ns clock; refreshed at most once a second */
	__u32 flags;       /* LBD_CT_F_* */
	__u32 check;       /* lbd_ct_check(flow hash, backend_id, backend_gen); 0: empty */
};

/* The connection table is set-associative: an ARRAY map of buckets, a flow's
 * bucket chosen by its flow hash (lbd_ct_bucket_of), LBD_CT_WAYS entries
 * each. The program and lbd (through a mapping of the map) write entries in
 * place without a lock; an entry is used only when its check matches, so a
 * torn write reads as a miss, never as another flow's backend. */
#define LBD_CT_WAYS 8

struct lbd_ct_entry {
	struct lbd_flow_key key;
	struct lbd_ct_value v;
};

struct lbd_ct_bucket {
	struct lbd_ct_entry e[LBD_CT_WAYS];
};

/* The flow is counted in lc_active[backend_id] (least-conn VIPs). */
#define LBD_CT_F_COUNTED 0x1
/* A TCP FIN or RST was seen: the flow no longer counts as active (least-conn)
 * and is the first entry a full bucket gives up. */
#define LBD_CT_F_CLOSED 0x2

/* The one entry of the config map: per-node settings userspace may change
 * while running. */
struct lbd_config {
	/* Outer source of encapsulated packets: base | (flow hash & hostmask).
	 * hostmask 0 means "always base" (the node's own address). */
	struct lbd_addr src_v4_base;
	struct lbd_addr src_v4_hostmask;
	struct lbd_addr src_v6_base;
	struct lbd_addr src_v6_hostmask;
	__u32 flags; /* LBD_CFG_F_* */
	__u32 reserved;
};

#define LBD_CFG_F_HAVE_SRC_V4 0x1
#define LBD_CFG_F_HAVE_SRC_V6 0x2

/* Per-VIP and per-backend statistics (per-CPU arrays; sum over CPUs). */
struct lbd_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

/* Why a packet got the verdict it got; one per-CPU counter each. The names
 * (lbd_counter_name below) are what operators see. */
enum lbd_counter {
	LBD_CNT_TX = 0,           /* encapsulated, sent back out the ingress interface */
	LBD_CNT_REDIRECT,         /* encapsulated, redirected to another interface */
	LBD_CNT_PASS_NOT_IP,      /* not IPv4/IPv6 (ARP, LLDP, ...) */
	LBD_CNT_PASS_NOT_VIP,     /* IP, but not addressed to a VIP */
	LBD_CNT_PASS_MALFORMED,   /* truncated or inconsistent headers */
	LBD_CNT_PASS_FRAGMENT,    /* IPv4 fragment or IPv6 fragment header */
	LBD_CNT_PASS_IP_OPTIONS,  /* IPv4 header with options */
	LBD_CNT_PASS_IPV6_EXT,    /* IPv6 extension headers before L4 */
	LBD_CNT_PASS_NO_NEIGH,    /* next hop has no neighbour entry yet */
	LBD_CNT_PASS_FWD_DISABLED,/* forwarding disabled on the ingress interface */
	LBD_CNT_PASS_FIB_OTHER,   /* any other FIB lookup result */
	LBD_CNT_PASS_TOO_BIG,     /* too big once encapsulated, DF not set */
	LBD_CNT_PASS_NOT_UNICAST, /* for a VIP, but to a broadcast or multicast MAC */
	LBD_CNT_DROP_NO_BACKEND,  /* VIP has no backend to send to */
	LBD_CNT_DROP_FIB_UNREACH, /* backend blackholed, unreachable or prohibited */
	LBD_CNT_DROP_ENCAP,       /* could not grow or write the packet */
	LBD_CNT_DROP_FAMILY,      /* backend family differs from the VIP's */
	LBD_CNT_ICMP_TOO_BIG,     /* answered with ICMP frag-needed / PTB */
	LBD_CNT_ICMP_ERR_FWD,     /* inbound ICMP error forwarded to a flow's backend */
	LBD_CNT_CT_HIT,           /* connection table had the flow */
	LBD_CNT_CT_MISS,          /* connection table did not have the flow */
	LBD_CNT_CT_RESCHEDULE,    /* pinned backend force-removed or down: re-picked */
	LBD_CNT_CT_EVICT,         /* a full bucket gave up its least recently seen flow */
	LBD_CNT_NEIGH_EVENT_LOST, /* could not tell lbd about a missing neighbour */
	LBD_CNT_PERSIST_HIT,      /* a new flow went to its client's remembered backend */
	LBD_CNT_MAX,
};

#ifdef __cplusplus
inline const char *lbd_counter_name(unsigned c)
{
	static const char *const names[LBD_CNT_MAX] = {
		"tx", "redirect", "pass_not_ip", "pass_not_vip", "pass_malformed",
		"pass_fragment", "pass_ip_options", "pass_ipv6_ext", "pass_no_neigh",
		"pass_fwd_disabled", "pass_fib_other", "pass_too_big", "pass_not_unicast",
		"drop_no_backend", "drop_fib_unreachable", "drop_encap", "drop_family",
		"icmp_too_big_sent", "icmp_error_forwarded", "ct_hit", "ct_miss",
		"ct_reschedule", "ct_evicted", "neigh_event_lost", "persist_hit",
	};
	return c < LBD_CNT_MAX ? names[c] : "unknown";
}
#endif

/* Sent by the XDP program on the neigh_events ring buffer when the FIB has a
 * route to a backend but no neighbour entry for its next hop; lbd asks the
 * kernel to resolve it. */
struct lbd_neigh_event {
	struct lbd_addr nexthop;
	__u32 ifindex;
	__u32 family;
};

/* The one entry of the meta map: what the pinned maps were made for. A new
 * lbd adopts pinned maps only when all of it matches (see datapath.cpp). */
struct lbd_meta {
	__u32 abi_version; /* LBD_ABI_VERSION */
	__u32 ring_size;
	__u32 hash_seed;
	__u32 max_vips;
	__u32 max_backends;
	__u32 conntrack_size;
};

/* Key of the backend decapsulator's decap_dsts map (bpf/decap.bpf.c). */
struct decap_dst_key {
	struct lbd_addr addr; /* network order; IPv4 uses w[0], w[1..3] = 0 */
	__u32 family;         /* LBD_AF_INET or LBD_AF_INET6 */
};

/* Index of the decapsulator's decap_stats map. */
enum decap_counter {
	DECAP_CNT_DECAPSULATED = 0,  /* outer header removed, inner packet passed */
	DECAP_CNT_PASSED_NOT_TUNNEL, /* not IP, or IP but not protocol 4 / 41 */
	DECAP_CNT_PASSED_NOT_LOCAL,  /* tunnel packet for an address not in decap_dsts */
	DECAP_CNT_PASSED_FRAGMENT,   /* tunnel packet for us, but an outer fragment */
	DECAP_CNT_MALFORMED,         /* truncated or inconsistent headers */
	DECAP_CNT_MAX,
};

#ifdef __cplusplus
inline const char *decap_counter_name(unsigned c)
{
	static const char *const names[DECAP_CNT_MAX] = {
		"decapsulated", "passed_not_tunnel", "passed_not_local",
		"passed_fragment", "malformed",
	};
	return c < DECAP_CNT_MAX ? names[c] : "unknown";
}
#endif

/* Value of the nexthops map: one CPU's copy of the FIB's answer for a
 * backend, reused for a second instead of a lookup per packet. */
struct lbd_nexthop {
	__u64 expires;      /* coarse ns clock */
	__u32 gen;          /* the backend generation it was looked up for */
	__u32 ingress;      /* the ingress ifindex it was looked up from */
	__u32 ifindex;      /* egress */
	__u32 fits;         /* largest outer length the FIB's MTU check passed */
	struct lbd_addr src; /* the FIB's source; zero when encap_source gave it */
	__u8 smac[6];
	__u8 dmac[6];
	__u32 reserved;
};

/* The health-check tunnel (bpf/hc_tunnel.bpf.c, docs/health.md#via): a TC
 * egress program that encapsulates the packets of `via: tunnel` probes. lbd
 * gives every backend probed that way a mark from its range
 * (datapath.probe_marks) and sets it on the probe's socket (SO_MARK).
 *
 * Value of the hc_targets map, key: the mark (__u32). */
struct lbd_hc_target {
	struct lbd_addr addr; /* the backend: outer destination */
	__u32 family;         /* LBD_AF_INET or LBD_AF_INET6 */
};

/* What the health-check tunnel did with a packet carrying a mark of lbd's
 * range; one per-CPU counter each. Packets without such a mark are not
 * counted. */
enum lbd_hc_counter {
	LBD_HC_ENCAP_V4 = 0,     /* IPv4-in-IPv4, handed to the backend's route */
	LBD_HC_ENCAP_V6,         /* IPv6-in-IPv6, handed to the backend's route */
	LBD_HC_DROP_NO_TARGET,   /* the mark names no backend (probe of a removed target) */
	LBD_HC_DROP_FAMILY,      /* the packet's family is not the backend's */
	LBD_HC_DROP_MALFORMED,   /* not IPv4/IPv6, or truncated headers */
	LBD_HC_DROP_ENCAP,       /* could not grow or write the packet */
	LBD_HC_DROP_NO_ROUTE,    /* the FIB has no usable route to the backend */
	LBD_HC_DROP_TOO_BIG,     /* longer than the backend route's MTU once encapsulated */
	LBD_HC_CNT_MAX,
};

#ifdef __cplusplus
inline const char *lbd_hc_counter_name(unsigned c)
{
	static const char *const names[LBD_HC_CNT_MAX] = {
		"encap_v4", "encap_v6", "drop_no_target", "drop_family",
		"drop_malformed", "drop_encap", "drop_no_route", "drop_too_big",
	};
	return c < LBD_HC_CNT_MAX ? names[c] : "unknown";
}
#endif

/* Encapsulation overheads. */
#define LBD_IPIP_OVERHEAD 20
#define LBD_IP6IP6_OVERHEAD 40

#endif /* LBD_SHARED_H */
