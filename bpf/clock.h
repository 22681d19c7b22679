/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The packet's clock: CLOCK_MONOTONIC_COARSE nanoseconds, to the kernel's
 * tick. Everything the program times (connection-table and persistence
 * last_seen, the next-hop cache, the neighbour-event rate limit) works in
 * seconds or tens of milliseconds, and lbd compares last_seen with
 * CLOCK_MONOTONIC_COARSE.
 *
 * bpf_ktime_get_coarse_ns() is a helper call (tens of ns on a machine with
 * retpolines); bpf_jiffies64() is a load the verifier inlines. So each CPU
 * reads the coarse clock once a second and counts jiffies in between: now =
 * jiffies * tick + (coarse - jiffies * tick at the last read). The tick comes
 * from CONFIG_HZ, which libbpf reads from the kernel's config at load (lbd
 * passes "CONFIG_HZ=0" when the kernel has no config file: then every packet
 * reads the coarse clock). CONFIG_HZ is a load-time constant:
 * the verifier keeps one branch of each test on it.
 */
#ifndef LBD_CLOCK_H
#define LBD_CLOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const unsigned int CONFIG_HZ __kconfig __weak;

struct lbd_clock_sync {
	__u64 jiffies; /* at the last coarse clock read; 0: never read */
	__u64 offset;  /* coarse ns - jiffies * tick, then */
};

/* clock_sync: per CPU, the last coarse clock read. The program's own (not
 * pinned, not read by lbd). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lbd_clock_sync);
	__uint(max_entries, 1);
} clock_sync SEC(".maps");

static __always_inline __u64 lbd_tick_ns(void)
{
	switch (CONFIG_HZ) { /* whole divisions for the usual values */
	case 100:
		return 10000000;
	case 250:
		return 4000000;
	case 1000:
		return 1000000;
	default:
		return CONFIG_HZ ? 1000000000U / CONFIG_HZ : 0;
	}
}

static __always_inline __u64 lbd_now(void)
{
	const __u64 tick = lbd_tick_ns();
	struct lbd_clock_sync *s;
	__u32 zero = 0;
	__u64 j;

	if (!tick)
		return bpf_ktime_get_coarse_ns();
	s = bpf_map_lookup_elem(&clock_sync, &zero);
	if (!s)
		return bpf_ktime_get_coarse_ns();
	j = bpf_jiffies64();
	if (!s->jiffies || j - s->jiffies >= CONFIG_HZ) {
		s->offset = bpf_ktime_get_coarse_ns() - j * tick;
		s->jiffies = j;
	}
	return j * tick + s->offset;
}

#endif /* LBD_CLOCK_H */
