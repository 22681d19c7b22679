// xdp_bench: the XDP program's own cost per packet, path by path.
//
//   sudo build/bench/xdp_bench [--iterations N] [--reps R] [--batch B]
//        [--single-runs N] [--baseline FILE] [--no-conntrack-compare]
//        [--no-sched | --sched-only] [--sched-rows S] [--quick]
//
// Method (docs/benchmarks.md has the long form):
//
// * The real program (lbd::Datapath, Pinning::None: loaded, not attached, not
//   pinned) programmed by the real LbState through the real map writer, in a
//   private network namespace (bench_netns.h) where its bpf_fib_lookup
//   succeeds. Encapsulation sources configured as in etc/lbd.yaml.
// * Each case is timed with BPF_PROG_TEST_RUN in live-frames mode
//   (BPF_F_TEST_XDP_LIVE_FRAMES, repeat = N): every iteration gets a frame
//   from the test run's page pool, the program runs, XDP_TX frames really go
//   out of lbb0 to its veth peer lbb1 (which runs an XDP_DROP program, so
//   they are delivered and freed), XDP_PASS frames go up the stack. The
//   kernel's `duration` is the mean time per iteration (whole ns).
// * Against it, a baseline (bench/baseline.bpf.c) that parses the same
//   headers and bounces (XDP_TX) or passes the frame, run the same way,
//   interleaved with the program (base, prog, prog, base, ...): own cost =
//   median(program) - median(baseline); ratio = median(program) /
//   median(baseline).
// * Cross-check by a second method: single ordinary runs (repeat = 1, each
//   on a fresh copy of the frame, nothing transmitted), program and baseline
//   alternating, the median of the kernel's per-run duration.
//
// Why this measures the right path, and how it is proven:
// * Plain `repeat` without live frames re-runs the program on the buffer the
//   previous iteration left, i.e. already encapsulated: shown ("trap 1"), and
//   used for nothing but the non-VIP pass, which leaves the frame untouched.
// * Live frames re-initialise a recycled page's pointers, not its bytes: the
//   bytes the program wrote stay. Encapsulation writes the new Ethernet and
//   outer IP header in front of the inner IP header, over the first 14 bytes
//   of the original frame; the next iteration on that page sees the tail of
//   the outer IP header as its Ethernet header: with an ordinary backend a
//   non-IP frame ("trap 2", shown). So every forwarding frame is a FIXED
//   POINT of the program: its Ethernet header is exactly the 14 bytes the
//   program writes there (backends 198.19.8.0 and fd00:1b:61::86dd, so the
//   bytes that land on the ethertype are 0x0800 / 0x86dd; the program reads
//   no MAC address). A recycled page then holds byte for byte the frame the
//   page pool was filled with. Checked per case: the output of a run is the
//   expected encapsulation (built independently with the packet builder) and
//   its inner part is the input frame itself.
// * After every timed run of the program its own counters (enum lbd_counter,
//   summed over CPUs) must have moved by exactly N on the named path and by
//   0 everywhere else: established: ct_hit +N, tx +N; new flow (a SYN skips
//   the table lookup, always takes a fresh pick and writes its entry): tx +N
//   and the VIP's new_flows +N; non-VIP: pass_not_vip +N. The VIP's packet
//   count must be +N and, for XDP_TX, bench_drop on lbb1 must have counted N
//   frames addressed to the next hop's MAC. A failed check makes the exit
//   status 1. Time never does.
//
// Part 1: the cases as lbd loads the program. Part 2: the forwarding cases
// without encapsulation sources (the FIB then picks the outer source). Part
// 3 loads the same program by hand (xdp_lb__open, sizes and rodata as
// Datapath does) with the connection table as a shared ARRAY (as lbd loads it) and as a
// PERCPU_ARRAY, and
// times the established and new-flow cases on one CPU and on two at once,
// and real inserts (SYNs of 5-tuples never seen) with single runs. Part 4
// (alone with --sched-only) times a new flow (SYN, or a one-packet datagram)
// for each scheduling algorithm and option with 10 and 40 backends,
// interleaved with the same SYN to a Maglev VIP of as many backends: own ns
// and the ratio to Maglev's. Its backends are all at 10.k.8.0 (ethertype
// 0x0800), since round-robin, weighted and least-conn pick another member
// from one packet to the next; see sched_frame().
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// The test suite's packet builder (tests/bpf/packet_builder.*), compiled in:
// bench/CMakeLists.txt links lbd_kernel only.
#include "../tests/bpf/packet_builder.cpp"

#include "bench_common.h"
#include "bench_netns.h"
#include "lbd/core/lb_state.h"
#include "lbd/core/conntrack_table.h"
#include "lbd/kernel/datapath.h"
#include "lbd_hash.h"
#include "xdp_lb.skel.h"

namespace {

using lbt::Bytes;
using lbt::ip;
using lbt::mac;
using lbt::Packet;

// ------------------------------------------------------------ the topology
const lbt::Mac kLbMac = mac("02:00:00:00:00:01");      // lbb0
const lbt::Mac kGwMac = mac("02:00:00:00:00:fe");      // next hop to backends
const lbt::Mac kClientMac = mac("02:00:00:00:00:aa");  // router toward clients
const lbt::Mac kOtherMac = mac("02:00:00:00:00:99");   // not lbb0: the stack drops it early
const lbd::IpAddr kLbAddr4 = ip("198.18.60.1");
const lbd::IpAddr kLbAddr6 = ip("fd00:1b:60::1");
const lbd::IpAddr kVip4 = ip("198.18.100.1");
const lbd::IpAddr kVip6 = ip("fd00:1b:100::1");
const lbd::IpAddr kNotVip4 = ip("203.0.113.9");
// Their last two bytes are the ethertype of the frame the program leaves
// behind in a recycled page (see the top of this file).
const lbd::IpAddr kBackend4 = ip("198.19.8.0");
const lbd::IpAddr kBackend6 = ip("fd00:1b:61::86dd");
const lbd::IpAddr kDemoBackend4 = ip("198.19.61.10");  // an ordinary one (trap 2)
const lbd::IpAddr kClient4 = ip("198.51.100.7");
const lbd::IpAddr kClient6 = ip("2001:db8:c::7");
// Outer sources as in etc/lbd.yaml.
const lbd::Prefix kEncapSrc4 = *lbd::Prefix::parse("198.18.0.0/24");
const lbd::Prefix kEncapSrc6 = *lbd::Prefix::parse("fd00:1b::/64");

constexpr uint32_t kRingSize = 65537;  // production default
constexpr uint32_t kSeed = 0x5eed;
constexpr uint32_t kMaxVips = 16;
constexpr uint32_t kMaxBackends = 64;
constexpr uint32_t kConntrackSize = 1048576;  // production default

struct Options {
    uint32_t iterations = 100000;
    int reps = 7;
    uint32_t batch = 64;
    int single_runs = 10000;
    std::string baseline;
    bool conntrack_compare = true;
    bool sched = true;        // part 4
    bool sched_only = false;  // part 4 alone
    std::string sched_rows;   // part 4: only the rows whose name contains this
};

int g_failures = 0;

void fail(const std::string& what)
{
    std::printf("PATH CHECK FAILED: %s\n", what.c_str());
    std::fflush(stdout);
    g_failures++;
}

// ------------------------------------------------------------- the config
lbd::VipConfig make_vip(const std::string& name, const lbd::IpAddr& addr, uint16_t port,
                        lbd::Protocol proto, const lbd::IpAddr& backend)
{
    lbd::VipConfig v;
    v.name = name;
    v.address = addr;
    v.port = port;
    v.protocol = proto;
    lbd::BackendConfig b;
    b.address = backend;
    b.port = port;
    v.backends.push_back(b);
    return v;
}

std::vector<lbd::VipConfig> bench_vips()
{
    using lbd::Protocol;
    return {make_vip("web4", kVip4, 80, Protocol::Tcp, kBackend4),
            make_vip("dns4", kVip4, 53, Protocol::Udp, kBackend4),
            make_vip("web6", kVip6, 80, Protocol::Tcp, kBackend6),
            make_vip("demo4", kVip4, 8080, Protocol::Tcp, kDemoBackend4)};
}

lbd::DatapathConfig datapath_config(uint32_t max_vips, uint32_t max_backends)
{
    lbd::DatapathConfig cfg;
    cfg.maglev_ring_size = kRingSize;
    cfg.hash_seed = kSeed;
    cfg.max_vips = max_vips;
    cfg.max_backends = max_backends;
    cfg.conntrack_size = kConntrackSize;
    cfg.pin_path = "/sys/fs/bpf/lbd-xdp-bench-unused";  // Pinning::None: never used
    return cfg;
}

// ------------------------------------------------- what a program runs on
/// A loaded xdp_lb, programmed with a list of VIPs (bench_vips()), and its
/// counters.
class Target {
public:
    virtual ~Target() = default;
    virtual int prog_fd() const = 0;
    virtual std::vector<uint64_t> counters() const = 0;
    virtual lbd_stats vip_stats(uint32_t vip_id) const = 0;
    virtual lbd_stats backend_stats(uint32_t id) const = 0;
    const lbd::VipState& vip(const std::string& name) const { return st_->vips().at(name); }
    uint32_t vip_id(const std::string& name) const { return vip(name).vip_id; }
    /// Outer sources from etc/lbd.yaml's prefixes, or none (the FIB picks).
    void set_encap_sources(bool on)
    {
        encap_sources_ = on;
        if (on)
            st_->set_encap_sources(kEncapSrc4, kEncapSrc6);
        else
            st_->set_encap_sources(std::nullopt, std::nullopt);
    }
    bool encap_sources() const { return encap_sources_; }

protected:
    void program(const std::vector<lbd::VipConfig>& vips)
    {
        st_->apply(vips);
        set_encap_sources(true);
    }
    std::unique_ptr<lbd::LbState> st_;
    bool encap_sources_ = false;
};

/// The program exactly as lbd loads it.
class DatapathTarget final : public Target {
public:
    explicit DatapathTarget(const std::vector<lbd::VipConfig>& vips = bench_vips(), uint32_t max_vips = kMaxVips,
                            uint32_t max_backends = kMaxBackends)
        : dp_(datapath_config(max_vips, max_backends), lbd::Pinning::None)
    {
        st_ = std::make_unique<lbd::LbState>(dp_.writer(), kRingSize, max_vips, max_backends);
        program(vips);
    }
    int prog_fd() const override { return dp_.prog_fd(); }
    std::vector<uint64_t> counters() const override { return dp_.counters(); }
    lbd_stats vip_stats(uint32_t id) const override { return dp_.vip_stats(id); }
    lbd_stats backend_stats(uint32_t id) const override { return dp_.backend_stats(id); }

private:
    lbd::Datapath dp_;
};

/// The same program loaded by hand with another connection table: sizes and
/// rodata as src/lbd/kernel/datapath.cpp sets them, then the type and flags
/// of `conntrack` changed before load.
class SkelTarget final : public Target {
public:
    SkelTarget(bpf_map_type ct_type, uint32_t ct_flags)
    {
        skel_ = xdp_lb__open();
        if (!skel_)
            throw std::runtime_error("xdp_lb__open failed");
        skel_->rodata->ring_size = kRingSize;
        skel_->rodata->hash_seed = kSeed;
        auto& m = skel_->maps;
        bpf_map__set_max_entries(m.vips, kMaxVips);
        bpf_map__set_max_entries(m.vip_by_id, kMaxVips);
        bpf_map__set_max_entries(m.vip_stats, kMaxVips);
        bpf_map__set_max_entries(m.ring, kMaxVips);
        bpf_map__set_value_size(m.ring, kRingSize * uint32_t(sizeof(uint32_t)));
        bpf_map__set_max_entries(m.backends, kMaxBackends + 1);
        bpf_map__set_max_entries(m.backend_stats, kMaxBackends + 1);
        const uint32_t ct_buckets = lbd::ct_buckets_for(kConntrackSize);
        bpf_map__set_max_entries(m.conntrack, ct_buckets);
        skel_->rodata->ct_buckets = ct_buckets;
        if (bpf_map__set_type(m.conntrack, ct_type) || bpf_map__set_map_flags(m.conntrack, ct_flags)) {
            xdp_lb__destroy(skel_);
            throw std::runtime_error("cannot change the conntrack map type");
        }
        if (xdp_lb__load(skel_) != 0) {
            xdp_lb__destroy(skel_);
            throw std::runtime_error("loading xdp_lb with another conntrack type failed");
        }
        ncpus_ = libbpf_num_possible_cpus();
        writer_ = std::make_unique<lbd::BpfMapWriter>(skel_, kRingSize);
        st_ = std::make_unique<lbd::LbState>(*writer_, kRingSize, kMaxVips, kMaxBackends);
        program(bench_vips());
    }
    ~SkelTarget() override
    {
        st_.reset();
        writer_.reset();
        xdp_lb__destroy(skel_);
    }
    int prog_fd() const override { return bpf_program__fd(skel_->progs.xdp_lb); }
    std::vector<uint64_t> counters() const override
    {
        std::vector<uint64_t> out(LBD_CNT_MAX, 0);
        std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus_));
        const int fd = bpf_map__fd(skel_->maps.counters);
        for (uint32_t c = 0; c < LBD_CNT_MAX; c++)
            if (bpf_map_lookup_elem(fd, &c, per_cpu.data()) == 0)
                for (auto v : per_cpu)
                    out[c] += v;
        return out;
    }
    lbd_stats vip_stats(uint32_t id) const override { return stats(skel_->maps.vip_stats, id); }
    lbd_stats backend_stats(uint32_t id) const override { return stats(skel_->maps.backend_stats, id); }

private:
    lbd_stats stats(bpf_map* m, uint32_t id) const
    {
        std::vector<lbd_stats> per_cpu(static_cast<size_t>(ncpus_));
        lbd_stats sum{};
        if (bpf_map_lookup_elem(bpf_map__fd(m), &id, per_cpu.data()) == 0)
            for (const auto& s : per_cpu) {
                sum.packets += s.packets;
                sum.bytes += s.bytes;
                sum.new_flows += s.new_flows;
            }
        return sum;
    }

    xdp_lb* skel_ = nullptr;
    std::unique_ptr<lbd::BpfMapWriter> writer_;
    int ncpus_ = 1;
};

// --------------------------------------------------------- test-run calls
int g_ifindex = 0;
int g_peer_frames_fd = -1;  // bench_drop's count, see bench/baseline.bpf.c

/// Frames addressed to the next hop's MAC that reached lbb1, all CPUs.
uint64_t peer_frames_to_gw()
{
    std::vector<uint64_t> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
    uint32_t slot = 0;
    uint64_t sum = 0;
    if (bpf_map_lookup_elem(g_peer_frames_fd, &slot, per_cpu.data()) != 0)
        throw std::runtime_error("reading bench_drop's peer_frames map");
    for (auto v : per_cpu)
        sum += v;
    return sum;
}

const char* action_name(int a)
{
    switch (a) {
    case XDP_ABORTED: return "XDP_ABORTED";
    case XDP_DROP: return "XDP_DROP";
    case XDP_PASS: return "XDP_PASS";
    case XDP_TX: return "XDP_TX";
    case XDP_REDIRECT: return "XDP_REDIRECT";
    default: return "XDP_<unknown>";
    }
}

struct Once {
    int action = -1;
    Bytes out;
    uint32_t duration = 0;
};

/// One ordinary run on a fresh copy of `frame`, the output copied back.
Once run_once(int prog_fd, const Bytes& frame)
{
    Once r;
    r.out.resize(frame.size() + 256);
    xdp_md ctx{};
    ctx.data_end = uint32_t(frame.size());
    ctx.ingress_ifindex = uint32_t(g_ifindex);
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = uint32_t(frame.size());
    opts.data_out = r.out.data();
    opts.data_size_out = uint32_t(r.out.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof ctx;
    opts.repeat = 1;
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
        throw std::runtime_error(std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno));
    r.action = int(opts.retval);
    r.out.resize(opts.data_size_out);
    r.duration = opts.duration;
    return r;
}

/// Plain `repeat` (not live): the same buffer, as the last iteration left it.
uint32_t run_repeat(int prog_fd, const Bytes& frame, uint32_t n)
{
    xdp_md ctx{};
    ctx.data_end = uint32_t(frame.size());
    ctx.ingress_ifindex = uint32_t(g_ifindex);
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = uint32_t(frame.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof ctx;
    opts.repeat = n;
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
        throw std::runtime_error(std::string("BPF_PROG_TEST_RUN (repeat): ") + std::strerror(errno));
    return opts.duration;
}

/// Live frames: N iterations, each on a frame from the page pool; XDP_TX
/// frames leave lbb0 (queue `rxq`). Returns the kernel's ns per iteration.
uint32_t run_live(int prog_fd, const Bytes& frame, uint32_t n, uint32_t batch, uint32_t rxq = 0)
{
    xdp_md ctx{};
    ctx.data_end = uint32_t(frame.size());
    ctx.ingress_ifindex = uint32_t(g_ifindex);
    ctx.rx_queue_index = rxq;
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = uint32_t(frame.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof ctx;
    opts.repeat = n;
    opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
    opts.batch_size = batch;
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
        throw std::runtime_error(std::string("BPF_PROG_TEST_RUN (live frames): ") +
                                 std::strerror(errno));
    return opts.duration;
}

/// Runs f in a thread pinned to `cpu` and waits for it.
template <typename F>
void on_cpu(int cpu, F f)
{
    std::exception_ptr err;
    std::thread t([&] {
        try {
            lbb::pin_to_cpu(cpu);
            f();
        } catch (...) {
            err = std::current_exception();
        }
    });
    t.join();
    if (err)
        std::rethrow_exception(err);
}

/// work(i) on k threads, thread i pinned to CPU i, all released together;
/// the first exception thrown in one is rethrown here.
template <typename F>
void on_cpus(size_t k, F&& work)
{
    std::vector<std::exception_ptr> errs(k);
    std::barrier sync{static_cast<std::ptrdiff_t>(k)};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < k; i++)
        threads.emplace_back([&, i] {
            try {
                lbb::pin_to_cpu(int(i));
                sync.arrive_and_wait();
                work(i);
            } catch (...) {
                errs[i] = std::current_exception();
            }
        });
    for (auto& t : threads)
        t.join();
    for (auto& e : errs)
        if (e)
            std::rethrow_exception(e);
}

/// Live runs on several CPUs at once (thread i on CPU i, frames[i], queue i),
/// released together. Returns each thread's ns/iteration.
std::vector<double> run_live_concurrent(int prog_fd, const std::vector<Bytes>& frames, uint32_t n,
                                        uint32_t batch)
{
    std::vector<double> d(frames.size(), 0);
    on_cpus(frames.size(), [&](size_t i) { d[i] = run_live(prog_fd, frames[i], n, batch, uint32_t(i)); });
    return d;
}

// ------------------------------------------------------------------ frames
uint16_t g_next_port = 40000;  // every flow of the bench its own client port

Packet from_client(const lbd::IpAddr& client, const lbd::IpAddr& vip)
{
    Packet p = Packet().eth(kClientMac, kLbMac);
    if (client.is_v4())
        p.ipv4(client, vip).ttl(64).df();
    else
        p.ipv6(client, vip).hop_limit(64);
    return p;
}

Packet tcp_syn(const lbd::IpAddr& client, uint16_t cport, const lbd::IpAddr& vip, uint16_t vport = 80)
{
    return from_client(client, vip).tcp(cport, vport).syn();
}

Packet tcp_ack(const lbd::IpAddr& client, uint16_t cport, const lbd::IpAddr& vip, uint16_t vport = 80)
{
    return from_client(client, vip).tcp(cport, vport).ack().seq(1001).ack_seq(2001).payload(10);
}

Packet udp_dns(const lbd::IpAddr& client, uint16_t cport, const lbd::IpAddr& vip)
{
    return from_client(client, vip).udp(cport, 53).payload(32);
}

/// The outer source the program picks with encapsulation sources set:
/// prefix | (flow hash & host mask), word by word as bpf/encap.h does.
lbd::IpAddr outer_source(const Packet& in)
{
    const lbd_flow_key k = in.flow();
    const uint32_t h = lbd_flow_hash(&k, kSeed);
    const lbd::Prefix& p = in.is_v4() ? kEncapSrc4 : kEncapSrc6;
    lbd::IpAddr src = p.addr;
    uint8_t mask[16] = {};
    for (int i = p.len; i < (in.is_v4() ? 32 : 128); i++)
        mask[i / 8] |= uint8_t(0x80 >> (i % 8));
    const int rot[4] = {8, 16, 24, 0};
    for (size_t w = 0; w < src.size() / 4; w++) {
        uint32_t base, m;
        std::memcpy(&base, src.bytes.data() + 4 * w, 4);
        std::memcpy(&m, mask + 4 * w, 4);
        const uint32_t hw = in.is_v4() ? h : lbd_rotl32(h, rot[w]);
        base |= hw & m;
        std::memcpy(src.bytes.data() + 4 * w, &base, 4);
    }
    return src;
}

/// What the program must send for `in`: Ethernet lbb0 -> next hop, outer
/// header to the backend from the configured prefix (or lbb0's address, the
/// FIB's choice), TTL/TOS/DF copied, IPv6 flow label = flow hash & 0xfffff.
Packet expected_encap(const Packet& in, const lbd::IpAddr& backend, bool encap_sources)
{
    Packet out;
    out.eth(kLbMac, kGwMac);
    const lbd::IpAddr src = encap_sources ? outer_source(in) : in.is_v4() ? kLbAddr4 : kLbAddr6;
    if (in.is_v4()) {
        out.ipv4(src, backend).ttl(in.ttl_value()).tos(in.tos_value());
        if (in.df_value())
            out.df();
    } else {
        const lbd_flow_key k = in.flow();
        out.ipv6(src, backend)
            .hop_limit(in.ttl_value())
            .traffic_class(in.tos_value())
            .flow_label(lbd_flow_hash(&k, kSeed) & 0xfffff);
    }
    return out.inner(in);
}

/// Turns `p`, which the program encapsulates, into its fixed point (see the
/// top of this file) and proves it: a run on the result outputs the
/// expected encapsulation, whose inner part is the result itself, so a page
/// recycled by live frames holds the very same bytes. Runs the program
/// twice: call it before taking a counter snapshot.
Bytes fixed_point(Target& t, const Packet& p, std::string* dump)
{
    const Bytes expected = expected_encap(p, p.is_v4() ? kBackend4 : kBackend6, t.encap_sources()).bytes();
    const size_t ovh = p.is_v4() ? LBD_IPIP_OVERHEAD : LBD_IP6IP6_OVERHEAD;
    const Once first = run_once(t.prog_fd(), p.bytes());
    if (first.action != XDP_TX || first.out != expected) {
        fail(std::string("first run: ") + action_name(first.action) +
             ", output differs from the expected encapsulation:\n" + lbt::hexdump(first.out, expected));
        return p.bytes();
    }
    Bytes fp = p.bytes();
    std::copy(first.out.begin() + long(ovh), first.out.begin() + long(ovh + 14), fp.begin());
    const uint16_t want_type = p.is_v4() ? 0x0800 : 0x86dd;
    if (uint16_t(fp[12] << 8 | fp[13]) != want_type)
        fail("the fixed point's ethertype is not IP's (backend address)");
    const Once again = run_once(t.prog_fd(), fp);
    const Bytes inner(again.out.begin() + long(std::min(ovh, again.out.size())), again.out.end());
    if (again.action != XDP_TX || again.out != expected || inner != fp)
        fail("the fixed-point frame is not a fixed point:\n" + lbt::hexdump(again.out, expected));
    if (dump)
        *dump = std::string("  input (fixed point, ") + std::to_string(fp.size()) + " bytes):\n" +
                lbt::hexdump(fp) + "\n  verdict " + action_name(again.action) + ", output (" +
                std::to_string(again.out.size()) +
                " bytes) = the expected encapsulation, and its inner part = the input:\n" +
                lbt::hexdump(again.out);
    return fp;
}

// -------------------------------------------------------------- the cases
struct Case {
    std::string name;
    std::string vip;            // whose vip_stats must count every packet
    bool tx = true;             // XDP_TX (baseline: bounce) or XDP_PASS (baseline: pass)
    double target = 0;          // ns of own cost, 0 = none
    std::map<unsigned, uint64_t> per_packet;  // counter -> delta per packet
    uint64_t new_flows_per_packet = 0;
    std::vector<Bytes> frames;  // one per CPU used
    std::vector<uint32_t> backend_ids;  // if any: every packet must reach one of them (backend_stats)
};

Case established(const std::string& name, const std::string& vip)
{
    return {name, vip, true, 70, {{LBD_CNT_CT_HIT, 1}, {LBD_CNT_TX, 1}}, 0, {}};
}

Case new_flow(const std::string& name, const std::string& vip)
{
    return {name, vip, true, 150, {{LBD_CNT_TX, 1}}, 1, {}};
}

/// Counters and stats before a timed run; check() after it. Several cases
/// (of different VIPs) may run between the two, n packets each.
class Snapshot {
public:
    Snapshot(const Target& t, const Case& c) : Snapshot(t, std::vector<const Case*>{&c}) {}
    Snapshot(const Target& t, std::vector<const Case*> cases) : t_(t), cases_(std::move(cases))
    {
        counters_ = t.counters();
        for (const Case* c : cases_) {
            vip_.push_back(c->vip.empty() ? lbd_stats{} : t.vip_stats(t.vip_id(c->vip)));
            be_.push_back(backend_packets(*c));
        }
        peer_rx_ = peer_frames_to_gw();
    }
    /// True when every one of `n` packets of each case took the case's path.
    bool check(uint64_t n, const std::string& what, bool transmitted = true) const
    {
        const auto now = t_.counters();
        std::string wrong;
        std::string names;
        uint64_t tx = 0;
        for (const Case* c : cases_) {
            names += (names.empty() ? "" : " + ") + c->name;
            tx += c->tx ? n : 0;
        }
        for (unsigned i = 0; i < LBD_CNT_MAX; i++) {
            uint64_t want = 0;
            for (const Case* c : cases_)
                if (auto e = c->per_packet.find(i); e != c->per_packet.end())
                    want += e->second * n;
            const uint64_t got = now[i] - counters_[i];
            if (got != want)
                wrong += std::string(" ") + lbd_counter_name(i) + " +" + std::to_string(got) +
                         " (want +" + std::to_string(want) + ")";
        }
        for (size_t k = 0; k < cases_.size(); k++) {
            const Case& c = *cases_[k];
            if (!c.vip.empty()) {
                const lbd_stats s = t_.vip_stats(t_.vip_id(c.vip));
                const uint64_t want_nf = c.new_flows_per_packet * n;
                if (s.packets - vip_[k].packets != n)
                    wrong += " " + c.vip + " packets +" + std::to_string(s.packets - vip_[k].packets) +
                             " (want +" + std::to_string(n) + ")";
                if (s.new_flows - vip_[k].new_flows != want_nf)
                    wrong += " " + c.vip + " new_flows +" + std::to_string(s.new_flows - vip_[k].new_flows) +
                             " (want +" + std::to_string(want_nf) + ")";
            }
            if (!c.backend_ids.empty() && backend_packets(c) - be_[k] != n)
                wrong += " " + c.vip + "'s backends packets +" + std::to_string(backend_packets(c) - be_[k]) +
                         " (want +" + std::to_string(n) + ")";
        }
        if (transmitted && tx) {
            const uint64_t got = peer_frames_to_gw() - peer_rx_;
            if (got != tx)
                wrong += " frames to the next hop received by lbb1 +" + std::to_string(got) +
                         " (want +" + std::to_string(tx) + ")";
        }
        if (wrong.empty())
            return true;
        fail(names + " (" + what + "):" + wrong);
        return false;
    }

private:
    uint64_t backend_packets(const Case& c) const
    {
        uint64_t sum = 0;
        for (uint32_t id : c.backend_ids)
            sum += t_.backend_stats(id).packets;
        return sum;
    }
    const Target& t_;
    std::vector<const Case*> cases_;
    std::vector<uint64_t> counters_;
    std::vector<lbd_stats> vip_;
    std::vector<uint64_t> be_;
    uint64_t peer_rx_ = 0;
};

struct Baselines {
    bpf_object* obj = nullptr;
    int bounce = -1, pass = -1, drop = -1;
    std::string path;
};

struct Result {
    double prog = NAN, base = NAN;  // medians, ns/packet
    double prog_min = NAN, prog_max = NAN, base_min = NAN, base_max = NAN;
    double own() const { return prog - base; }
    double ratio() const { return prog / base; }
    bool ok = true;
};

/// Live frames: program and baseline interleaved (base,prog / prog,base),
/// one thread per frame of `c` (each on its own CPU, started together; the
/// value of a run is the mean over the threads); one untimed warm-up pair;
/// a path check after every program run.
Result measure_live(Target& t, const Baselines& b, const Case& c, const Options& o)
{
    const int base_fd = c.tx ? b.bounce : b.pass;
    auto run = [&](int fd) {
        if (c.frames.size() == 1)
            return double(run_live(fd, c.frames[0], o.iterations, o.batch));
        double sum = 0;
        for (double x : run_live_concurrent(fd, c.frames, o.iterations, o.batch))
            sum += x;
        return sum / double(c.frames.size());
    };
    std::vector<double> prog, base;
    Result r;
    for (int rep = -1; rep < o.reps; rep++)
        for (int k = 0; k < 2; k++) {
            const bool is_prog = (rep & 1) ? k == 0 : k == 1;
            if (is_prog) {
                Snapshot s(t, c);
                const double d = run(t.prog_fd());
                r.ok &= s.check(uint64_t(o.iterations) * c.frames.size(),
                                rep < 0 ? "warm-up" : "rep " + std::to_string(rep));
                if (rep >= 0)
                    prog.push_back(d);
            } else {
                const double d = run(base_fd);
                if (rep >= 0)
                    base.push_back(d);
            }
        }
    r.prog = lbb::median(prog);
    r.base = lbb::median(base);
    r.prog_min = lbb::min_of(prog);
    r.prog_max = *std::max_element(prog.begin(), prog.end());
    r.base_min = lbb::min_of(base);
    r.base_max = *std::max_element(base.begin(), base.end());
    return r;
}

/// Single ordinary runs (repeat = 1, each on a fresh copy of its frame),
/// program and baseline alternating; the medians of the kernel's per-run
/// durations. Nothing is transmitted. With several frame lists, one thread
/// per list, thread i on CPU i, all released together, each walking its
/// list round and round for `runs` program/baseline pairs.
Result measure_single(Target& t, const Baselines& b, const Case& c,
                      const std::vector<std::vector<Bytes>>& per_cpu, int runs)
{
    const int base_fd = c.tx ? b.bounce : b.pass;
    const size_t k = per_cpu.size();
    std::vector<std::vector<uint32_t>> prog(k), base(k);
    auto work = [&](size_t i) {
        prog[i].reserve(size_t(runs));
        base[i].reserve(size_t(runs));
        const auto& frames = per_cpu[i];
        for (int n = 0; n < runs; n++) {
            const Bytes& f = frames[size_t(n) % frames.size()];
            prog[i].push_back(run_once(t.prog_fd(), f).duration);
            base[i].push_back(run_once(base_fd, f).duration);
        }
    };
    Snapshot s(t, c);
    if (k == 1)
        work(0);
    else
        on_cpus(k, work);
    Result r;
    r.ok = s.check(uint64_t(runs) * k, "single runs", false);
    std::vector<uint32_t> all_prog, all_base;
    for (size_t i = 0; i < k; i++) {
        all_prog.insert(all_prog.end(), prog[i].begin(), prog[i].end());
        all_base.insert(all_base.end(), base[i].begin(), base[i].end());
    }
    r.prog = lbb::median(all_prog);
    r.base = lbb::median(all_base);
    return r;
}

Result measure_single(Target& t, const Baselines& b, const Case& c, const Options& o)
{
    return measure_single(t, b, c, {{c.frames[0]}}, o.single_runs);
}

/// The forwarding cases on one CPU (the caller's), frames made against `t`.
std::vector<Case> forwarding_cases(Target& t, const Baselines& b, bool print)
{
    std::vector<Case> cases;
    auto add = [&](Case c, const Packet& p, const std::optional<Packet>& establish) {
        if (establish)
            run_once(t.prog_fd(), establish->bytes());
        std::string dump;
        c.frames = {fixed_point(t, p, print ? &dump : nullptr)};
        if (print) {
            const Once rb = run_once(b.bounce, c.frames[0]);
            std::printf("-- %s\n%s\n  baseline bench_bounce on the input: %s\n", c.name.c_str(),
                        dump.c_str(), action_name(rb.action));
        }
        cases.push_back(c);
    };
    uint16_t port = g_next_port;
    g_next_port = uint16_t(g_next_port + 4);
    add(new_flow("new TCP flow (SYN), IPv4", "web4"), tcp_syn(kClient4, port, kVip4), std::nullopt);
    add(established("established TCP (ACK), IPv4", "web4"), tcp_ack(kClient4, uint16_t(port + 1), kVip4),
        tcp_syn(kClient4, uint16_t(port + 1), kVip4));
    add(established("established UDP, IPv4", "dns4"), udp_dns(kClient4, uint16_t(port + 2), kVip4),
        udp_dns(kClient4, uint16_t(port + 2), kVip4));
    add(established("established TCP (ACK), IPv6", "web6"), tcp_ack(kClient6, uint16_t(port + 3), kVip6),
        tcp_syn(kClient6, uint16_t(port + 3), kVip6));
    return cases;
}

std::string n0(double v) { return lbb::fmt("%.0f", v); }
std::string n1(double v) { return lbb::fmt("%.1f", v); }

// ------------------------------------ part 4: a new flow, algorithm by algorithm
// One VIP per algorithm (and option) and backend count, on kVip4 with ports
// from kSchedPort0, all with the same backends 10.k.8.0 (k = 1..n, weights
// 1, 2, 3, 4, 1, ...), so every member any algorithm may pick ends in the
// ethertype 0x0800 (see the top of this file). Each case's SYN (or datagram)
// is timed interleaved with the baseline and with the same SYN to the
// Maglev VIP of the same backend count: own(case) / own(Maglev) is the
// ratio of one run, not of two runs minutes apart.

constexpr uint32_t kSchedMaxVips = 32;
constexpr uint32_t kSchedMaxBackends = 1024;
constexpr uint16_t kSchedPort0 = 10000;

/// The scheduling section's k-th backend (1..255): 10.k.8.0.
lbd::IpAddr sched_backend(size_t k)
{
    lbd::IpAddr a = ip("10.0.8.0");
    a.bytes[1] = uint8_t(k);
    return a;
}

struct SchedRow {
    std::string label;
    lbd::Algorithm alg = lbd::Algorithm::Maglev;
    size_t n = 0;  // backends
    bool persist = false;
    bool udp_one_packet = false;
    std::string vip;  // VIP name
    uint16_t port = 0;
};

std::vector<SchedRow> sched_rows(const std::vector<size_t>& sizes)
{
    using A = lbd::Algorithm;
    std::vector<SchedRow> rows;
    for (size_t n : sizes)
        for (A a : {A::Maglev, A::RoundRobin, A::Weighted, A::LeastConn, A::SourceHash, A::Failover})
            rows.push_back({lbd::to_string(a), a, n});
    // The options, with the most backends.
    const size_t n = sizes.back();
    rows.push_back({"maglev + persistence", A::Maglev, n, true, false});
    rows.push_back({"round-robin + persistence", A::RoundRobin, n, true, false});
    rows.push_back({"least-conn + persistence", A::LeastConn, n, true, false});
    rows.push_back({"UDP maglev, one_packet", A::Maglev, n, false, true});
    rows.push_back({"UDP round-robin, one_packet", A::RoundRobin, n, false, true});
    rows.push_back({"UDP weighted, one_packet", A::Weighted, n, false, true});
    rows.push_back({"UDP failover, one_packet", A::Failover, n, false, true});
    for (size_t i = 0; i < rows.size(); i++) {
        rows[i].vip = "s" + std::to_string(i);
        rows[i].port = uint16_t(kSchedPort0 + i);
    }
    return rows;
}

lbd::VipConfig sched_vip(const SchedRow& r)
{
    lbd::VipConfig v;
    v.name = r.vip;
    v.address = kVip4;
    v.port = r.port;
    v.protocol = r.udp_one_packet ? lbd::Protocol::Udp : lbd::Protocol::Tcp;
    v.algorithm = r.alg;
    v.one_packet = r.udp_one_packet;
    if (r.persist)
        v.persistence = lbd::Persistence{};  // 300 s, clients by /32
    for (size_t k = 1; k <= r.n; k++) {
        lbd::BackendConfig b;
        b.address = sched_backend(k);
        b.port = r.port;
        b.weight = uint32_t(1 + (k - 1) % 4);
        v.backends.push_back(b);
    }
    return v;
}

/// A new flow of row `r` from `client`: a SYN, or a datagram (one_packet).
Packet sched_packet(const SchedRow& r, const lbd::IpAddr& client, uint16_t cport)
{
    if (r.udp_one_packet)
        return from_client(client, kVip4).udp(cport, r.port).payload(32);
    return tcp_syn(client, cport, kVip4, r.port);
}

uint32_t g_next_client = 0;  // fresh clients for single runs: 100.64.0.0/10, one each

lbd::IpAddr fresh_client()
{
    const uint32_t n = 0x64400000u + (++g_next_client & 0x3fffffu);
    lbd::IpAddr a = ip("100.64.0.0");
    for (int i = 0; i < 4; i++)
        a.bytes[size_t(i)] = uint8_t(n >> (24 - 8 * i));
    return a;
}

lbd::IpAddr outer_dst4(const Bytes& out)
{
    lbd::IpAddr a = ip("0.0.0.0");
    if (out.size() >= 34)
        std::copy(out.begin() + 30, out.begin() + 34, a.bytes.begin());
    return a;
}

/// The live frame of a case whose algorithm may pick any backend of VIP `v`
/// (all at 10.k.8.0), and its proof. As fixed_point(), with one difference:
/// round-robin, weighted and least-conn pick another member from one packet
/// to the next, and the encapsulation toward member B leaves B's outer
/// header bytes 6-19 where the frame's Ethernet header was. So a recycled
/// page holds the frame with other MAC addresses (12 bytes the program never
/// reads: checked by mac_blind()); its ethertype (0x0800, from 10.k.8.0)
/// and all that follows are the frame's own. Checked: two runs, each
/// output the expected encapsulation toward a backend of `v`, and what it
/// leaves in the page equals the frame from byte 12 on (all 14 bytes when
/// both runs picked the same backend). Runs the program twice.
Bytes sched_frame(Target& t, const Packet& p, const lbd::VipState& v, const std::string& what)
{
    const size_t ovh = LBD_IPIP_OVERHEAD;
    auto member = [&](const lbd::IpAddr& a) { return v.find(a) != nullptr && a.bytes[2] == 8 && a.bytes[3] == 0; };
    const Once first = run_once(t.prog_fd(), p.bytes());
    const lbd::IpAddr be1 = outer_dst4(first.out);
    if (first.action != XDP_TX || !member(be1) ||
        first.out != expected_encap(p, be1, t.encap_sources()).bytes()) {
        fail(what + ": first run: " + action_name(first.action) + " to " + be1.str() +
             ", not the expected encapsulation toward one of the VIP's backends:\n" + lbt::hexdump(first.out));
        return p.bytes();
    }
    Bytes fp = p.bytes();
    std::copy(first.out.begin() + long(ovh), first.out.begin() + long(ovh + 14), fp.begin());
    if (uint16_t(fp[12] << 8 | fp[13]) != 0x0800)
        fail(what + ": the frame's ethertype is not IPv4's (backend address)");
    const Once again = run_once(t.prog_fd(), fp);
    const lbd::IpAddr be2 = outer_dst4(again.out);
    if (again.action != XDP_TX || !member(be2) ||
        again.out != expected_encap(p, be2, t.encap_sources()).bytes()) {
        fail(what + ": second run: " + action_name(again.action) + " to " + be2.str() +
             ", not the expected encapsulation toward one of the VIP's backends:\n" + lbt::hexdump(again.out));
        return fp;
    }
    const Bytes left(again.out.begin() + long(ovh), again.out.end());
    const bool from12 = left.size() == fp.size() && std::equal(left.begin() + 12, left.end(), fp.begin() + 12);
    if (!from12 || (be1 == be2 && left != fp))
        fail(what + ": what the program leaves in the page is not the frame:\n" + lbt::hexdump(left, fp));
    return fp;
}

/// The program reads no MAC address: `fp` (a frame of Maglev VIP `v`, which
/// picks the same backend for it every time) with the MAC bytes that the
/// encapsulation toward each backend of `v` leaves in a page gets the very
/// output `fp` gets. Returns how many variants were run.
size_t mac_blind(Target& t, const Packet& p, const Bytes& fp, const lbd::VipState& v, const std::string& what)
{
    const Once ref = run_once(t.prog_fd(), fp);
    size_t n = 0;
    for (const auto& be : v.backends) {
        const Bytes leftover = expected_encap(p, be.address, t.encap_sources()).bytes();
        Bytes f = fp;
        std::copy(leftover.begin() + LBD_IPIP_OVERHEAD, leftover.begin() + LBD_IPIP_OVERHEAD + 12, f.begin());
        const Once r = run_once(t.prog_fd(), f);
        n++;
        if (r.action != ref.action || r.out != ref.out) {
            fail(what + ": other MAC bytes (as left by " + be.address.str() + ") change the output:\n" +
                 lbt::hexdump(r.out, ref.out));
            break;
        }
    }
    return n;
}

/// A case measured against a reference case (Maglev), same run.
struct VsResult {
    Result r;          // the case and the baseline
    double ref = NAN;  // median of the reference's runs
    double ref_own() const { return ref - r.base; }
    double ratio() const { return r.own() / ref_own(); }
    bool ok = true;
};

/// Live frames: baseline, reference and case in rotation (base ref case,
/// ref case base, case base ref, ...), one untimed round, then o.reps timed
/// ones; a path check after every program run.
VsResult measure_live_vs(Target& t, const Baselines& b, const Case& c, const Case& ref, const Options& o)
{
    std::vector<double> prog, refv, base;
    VsResult v;
    for (int rep = -1; rep < o.reps; rep++)
        for (int k = 0; k < 3; k++) {
            const int which = (k + std::max(rep, 0)) % 3;
            const std::string what = rep < 0 ? "warm-up" : "rep " + std::to_string(rep);
            if (which == 0) {
                const double d = run_live(b.bounce, c.frames[0], o.iterations, o.batch);
                if (rep >= 0)
                    base.push_back(d);
                continue;
            }
            const Case& x = which == 1 ? ref : c;
            Snapshot s(t, x);
            const double d = run_live(t.prog_fd(), x.frames[0], o.iterations, o.batch);
            v.ok &= s.check(o.iterations, what);
            if (rep >= 0)
                (which == 1 ? refv : prog).push_back(d);
        }
    v.r.prog = lbb::median(prog);
    v.r.base = lbb::median(base);
    v.r.prog_min = lbb::min_of(prog);
    v.r.prog_max = *std::max_element(prog.begin(), prog.end());
    v.r.base_min = lbb::min_of(base);
    v.r.base_max = *std::max_element(base.begin(), base.end());
    v.ref = lbb::median(refv);
    v.r.ok = v.ok;
    return v;
}

/// Single runs, each on a frame of its own (new 5-tuples, new clients):
/// baseline, reference and case in rotation; medians of the kernel's
/// per-run durations. Nothing is transmitted.
VsResult measure_single_vs(Target& t, const Baselines& b, const Case& c, const std::vector<Bytes>& frames,
                           const Case& ref, const std::vector<Bytes>& ref_frames)
{
    std::vector<uint32_t> prog, refv, base;
    const size_t runs = std::min(frames.size(), ref_frames.size());
    Snapshot s(t, std::vector<const Case*>{&c, &ref});
    for (size_t i = 0; i < runs; i++)
        for (size_t k = 0; k < 3; k++)
            switch ((k + i) % 3) {
            case 0: base.push_back(run_once(b.bounce, frames[i]).duration); break;
            case 1: refv.push_back(run_once(t.prog_fd(), ref_frames[i]).duration); break;
            default: prog.push_back(run_once(t.prog_fd(), frames[i]).duration); break;
            }
    VsResult v;
    v.ok = s.check(runs, "single runs", false);
    v.r.prog = lbb::median(prog);
    v.r.base = lbb::median(base);
    v.ref = lbb::median(refv);
    v.r.ok = v.ok;
    return v;
}

void sched_section(const Baselines& b, const Options& o)
{
    std::printf("== 4. A new flow, algorithm by algorithm: own ns and the ratio to Maglev's, same runs ==\n");
    const std::vector<size_t> sizes{10, 40};
    const auto rows = sched_rows(sizes);
    std::vector<lbd::VipConfig> vips;
    for (const auto& r : rows)
        vips.push_back(sched_vip(r));
    DatapathTarget t(vips, kSchedMaxVips, kSchedMaxBackends);
    std::printf("%zu VIPs on %s, ports %u.., backends 10.k.8.0 (k = 1..n), weights 1,2,3,4,1,..; live frames: the "
                "same SYN (datagram) each time;\nsingle runs: a new client (100.64.0.0/10) each time\n",
                rows.size(), kVip4.str().c_str(), unsigned(kSchedPort0));

    // Cases: the live frame and the single runs' fresh frames of each row.
    struct Prepared {
        Case live, single;
        std::vector<Bytes> fresh;
    };
    std::vector<Prepared> prep;
    std::map<size_t, size_t> maglev_of;  // backends -> row of the TCP Maglev VIP
    for (size_t i = 0; i < rows.size(); i++) {
        const SchedRow& r = rows[i];
        const lbd::VipState& v = t.vip(r.vip);
        if (r.alg == lbd::Algorithm::Maglev && !r.persist && !r.udp_one_packet)
            maglev_of[r.n] = i;
        Prepared p;
        p.live = new_flow(r.label, r.vip);
        p.live.target = 0;
        for (const auto& be : v.backends)
            p.live.backend_ids.push_back(be.id);
        p.single = p.live;
        if (r.persist)  // the same client again: its record picks
            p.live.per_packet[LBD_CNT_PERSIST_HIT] = 1;
        const std::string what = r.label + ", " + std::to_string(r.n) + " backends";
        const Packet pkt = sched_packet(r, kClient4, g_next_port++);
        p.live.frames = {sched_frame(t, pkt, v, what)};
        if (r.alg == lbd::Algorithm::Maglev && !r.persist && !r.udp_one_packet) {
            const size_t k = mac_blind(t, pkt, p.live.frames[0], v, what);
            std::printf("  %s, %zu backends: the frame with the MAC bytes each of the %zu backends leaves: "
                        "the same output (%zu runs)\n",
                        r.label.c_str(), r.n, v.backends.size(), k);
        }
        for (int n = 0; n < o.single_runs; n++)
            p.fresh.push_back(sched_packet(r, fresh_client(), 40000).bytes());
        prep.push_back(std::move(p));
    }

    lbb::Table table({"algorithm", "backends", "xdp_lb", "(min-max)", "Maglev", "baseline", "own", "Maglev own",
                      "ratio", "own 1-run", "Maglev 1-run", "ratio 1-run", "backends used", "path check"});
    for (size_t i = 0; i < rows.size(); i++) {
        const SchedRow& r = rows[i];
        const size_t m = maglev_of.at(r.n);
        if (i == m || r.label.find(o.sched_rows) == std::string::npos)
            continue;
        Prepared& p = prep[i];
        Prepared& ref = prep[m];
        std::vector<uint64_t> before;
        for (uint32_t id : p.live.backend_ids)
            before.push_back(t.backend_stats(id).packets);
        const VsResult live = measure_live_vs(t, b, p.live, ref.live, o);
        size_t used = 0;
        for (size_t k = 0; k < p.live.backend_ids.size(); k++)
            used += t.backend_stats(p.live.backend_ids[k]).packets > before[k];
        // Fresh frames for the reference each time: a 5-tuple the table
        // does not hold yet.
        std::vector<Bytes> ref_fresh;
        for (int n = 0; n < o.single_runs; n++)
            ref_fresh.push_back(sched_packet(rows[m], fresh_client(), 40000).bytes());
        const VsResult one = measure_single_vs(t, b, p.single, p.fresh, ref.single, ref_fresh);
        table.add({r.label, std::to_string(r.n), n0(live.r.prog), n0(live.r.prog_min) + "-" + n0(live.r.prog_max),
                   n0(live.ref), n0(live.r.base), n1(live.r.own()), n1(live.ref_own()), lbb::fmt("%.2fx", live.ratio()),
                   n1(one.r.own()), n1(one.ref_own()), lbb::fmt("%.2fx", one.ratio()),
                   std::to_string(used) + "/" + std::to_string(r.n), live.ok && one.ok ? "every packet" : "FAILED"});
        std::fflush(stdout);
    }
    table.print();
    std::printf("  ns per packet. xdp_lb, Maglev, baseline: medians of %d live-frames runs of %u packets each, "
                "the three interleaved\n  (rotating order); own = xdp_lb - baseline; Maglev own = Maglev - baseline "
                "(the same SYN to the Maglev VIP with as many\n  backends); ratio = own / Maglev own. 1-run: %d "
                "single runs each, every one a new client (a 5-tuple the table does not hold),\n  the three "
                "alternating; medians. Persistence rows: live = the client's record picks (persist_hit), 1-run = "
                "new clients\n  (the algorithm picks, the record is written). backends used: members that got "
                "packets in the live runs.\n\n",
                o.reps, o.iterations, o.single_runs);
}

// ------------------------------------------------------------------- main
std::string find_baseline(const std::string& given)
{
    if (!given.empty())
        return given;
    if (const char* env = std::getenv("LBD_BENCH_BASELINE"))
        return env;
    char exe[4096] = {};
    const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string dir = len > 0 ? std::string(exe, size_t(len)) : std::string();
    dir = dir.substr(0, dir.rfind('/'));
    for (const std::string& p :
         {dir + "/../bpf/bench_baseline.bpf.o", dir + "/bench_baseline.bpf.o", dir + "/baseline.bpf.o"})
        if (access(p.c_str(), R_OK) == 0)
            return p;
    return {};
}

Baselines load_baselines(const std::string& path)
{
    Baselines b;
    b.path = path;
    b.obj = bpf_object__open_file(path.c_str(), nullptr);
    if (!b.obj)
        throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    if (bpf_object__load(b.obj) != 0)
        throw std::runtime_error("cannot load " + path + " (see libbpf messages above)");
    auto fd = [&](const char* name) {
        bpf_program* p = bpf_object__find_program_by_name(b.obj, name);
        if (!p)
            throw std::runtime_error(path + " has no program " + name);
        return bpf_program__fd(p);
    };
    b.bounce = fd("bench_bounce");
    b.pass = fd("bench_pass");
    b.drop = fd("bench_drop");
    bpf_map* m = bpf_object__find_map_by_name(b.obj, "peer_frames");
    if (!m)
        throw std::runtime_error(path + " has no map peer_frames (an old build? rerun bench/build_baseline.sh)");
    g_peer_frames_fd = bpf_map__fd(m);
    return b;
}

void usage()
{
    std::printf(
        "usage: xdp_bench [--iterations N] [--reps R] [--batch B] [--single-runs N]\n"
        "                 [--baseline FILE] [--no-conntrack-compare] [--no-sched | --sched-only]\n"
        "                 [--sched-rows S] [--quick]\n"
        "  --iterations N    packets per live-frames run (default 100000)\n"
        "  --reps R          timed program/baseline pairs per case (default 7)\n"
        "  --batch B         live-frames batch size, 1..256 (default 64)\n"
        "  --single-runs N   program/baseline pairs of single runs per case (default 10000)\n"
        "  --baseline FILE   bench/baseline.bpf.c compiled (default: BUILD/bpf/bench_baseline.bpf.o\n"
        "                    next to this binary's directory, made by bench/build_baseline.sh\n"
        "                    BUILD; or $LBD_BENCH_BASELINE)\n"
        "  --no-conntrack-compare  skip part 3 (connection table map types)\n"
        "  --no-sched        skip part 4 (a new flow, algorithm by algorithm)\n"
        "  --sched-only      part 4 alone\n"
        "  --sched-rows S    part 4: only the algorithms whose name contains S\n"
        "  --quick           fewer iterations, repetitions and runs (a smoke test)\n");
}

void trap_demos(DatapathTarget& dp, const Options& o)
{
    std::printf("== Why not plain `repeat`, why fixed-point frames ==\n");
    const uint16_t port = g_next_port++;
    const Packet syn = tcp_syn(kClient4, port, kVip4, 8080), ack = tcp_ack(kClient4, port, kVip4, 8080);
    run_once(dp.prog_fd(), syn.bytes());
    auto before = dp.counters();
    run_repeat(dp.prog_fd(), ack.bytes(), 1000);
    auto after = dp.counters();
    auto d = [&](unsigned c) { return (unsigned long long)(after[c] - before[c]); };
    std::printf("trap 1, plain repeat, 1000 x an ACK of a known flow: ct_hit +%llu, tx +%llu, "
                "pass_not_vip +%llu\n  (iterations 2.. ran on the encapsulated packet the first "
                "one left)\n",
                d(LBD_CNT_CT_HIT), d(LBD_CNT_TX), d(LBD_CNT_PASS_NOT_VIP));
    const uint32_t n = std::min<uint32_t>(o.iterations, 100000);
    before = dp.counters();
    run_live(dp.prog_fd(), ack.bytes(), n, o.batch);
    after = dp.counters();
    std::printf("trap 2, live frames, %u x that ACK as built, backend %s: ct_hit +%llu, tx +%llu, "
                "pass_not_ip +%llu\n  (a recycled page keeps what the encapsulation wrote over its "
                "Ethernet header; its ethertype is then the backend address' last two bytes)\n",
                n, kDemoBackend4.str().c_str(), d(LBD_CNT_CT_HIT), d(LBD_CNT_TX),
                d(LBD_CNT_PASS_NOT_IP));
    std::printf("  => every forwarding frame below is a fixed point: its Ethernet header is what "
                "the program writes there, so a recycled page holds the original frame.\n\n");
}

int finish(const Baselines& b, int peer_ifindex, uint64_t t0);

int real_main(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc)
                throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        if (a == "--iterations")
            o.iterations = uint32_t(std::stoul(next()));
        else if (a == "--reps")
            o.reps = std::stoi(next());
        else if (a == "--batch")
            o.batch = uint32_t(std::stoul(next()));
        else if (a == "--single-runs")
            o.single_runs = std::stoi(next());
        else if (a == "--baseline")
            o.baseline = next();
        else if (a == "--no-conntrack-compare")
            o.conntrack_compare = false;
        else if (a == "--no-sched")
            o.sched = false;
        else if (a == "--sched-only")
            o.sched_only = true;
        else if (a == "--sched-rows")
            o.sched_rows = next();
        else if (a == "--quick") {
            o.iterations = 10000;
            o.reps = 3;
            o.single_runs = 1000;
        } else if (a == "-h" || a == "--help") {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    if (!lbb::is_root()) {
        std::printf("xdp_bench: skipped: needs root (BPF_PROG_TEST_RUN, a network namespace)\n");
        return lbb::kSkip;
    }
    const std::string baseline_path = find_baseline(o.baseline);
    if (baseline_path.empty()) {
        std::printf("xdp_bench: the baseline program is not built. Run\n"
                    "  bench/build_baseline.sh BUILD_DIR\n"
                    "(BUILD_DIR: the CMake build directory, default build) or pass --baseline FILE.\n");
        return 2;
    }
    if (auto err = lbb::make_bench_netns(); !err.empty())
        throw std::runtime_error("network namespace: " + err);
    g_ifindex = int(if_nametoindex(lbb::kDev));
    const int peer_ifindex = int(if_nametoindex(lbb::kPeer));
    lbb::pin_to_cpu(0);

    const Baselines b = load_baselines(baseline_path);
    if (bpf_xdp_attach(peer_ifindex, b.drop, XDP_FLAGS_DRV_MODE, nullptr) != 0)
        throw std::runtime_error(std::string("attaching bench_drop to lbb1: ") + std::strerror(errno));

    const uint64_t t0 = lbb::now_ns();
    std::printf("xdp_bench: %s\n", lbb::machine_line().c_str());
    std::printf("%s at start\n", lbb::load_line().c_str());
    std::printf("method: BPF_PROG_TEST_RUN live frames, %u packets per run, batch %u, %d interleaved "
                "program/baseline pairs per case (medians); cross-check: %d single runs each "
                "(medians)\nbaseline: %s\n\n",
                o.iterations, o.batch, o.reps, o.single_runs, b.path.c_str());

    if (o.sched_only) {
        sched_section(b, o);
        return finish(b, peer_ifindex, t0);
    }
    DatapathTarget dp;
    trap_demos(dp, o);

    // ------------------------------------------------------ part 1: cases
    std::printf("== One run of each case (ordinary BPF_PROG_TEST_RUN, output copied back) ==\n");
    Case pass{"non-VIP pass", "", false, 25, {{LBD_CNT_PASS_NOT_VIP, 1}}, 0, {}};
    {
        // To another MAC, so the kernel drops the passed frame early in
        // ip_rcv (PACKET_OTHERHOST) instead of routing it.
        const Bytes f = Packet()
                            .eth(kClientMac, kOtherMac)
                            .ipv4(kClient4, kNotVip4)
                            .ttl(64)
                            .df()
                            .tcp(40000, 80)
                            .ack()
                            .payload(10)
                            .bytes();
        const Once r = run_once(dp.prog_fd(), f);
        if (r.action != XDP_PASS || r.out != f)
            fail("non-VIP pass: " + std::string(action_name(r.action)) + " or the frame changed");
        std::printf("-- %s\n  input:\n%s\n  verdict %s, output = input (%zu bytes)\n", pass.name.c_str(),
                    lbt::hexdump(f).c_str(), action_name(r.action), r.out.size());
        std::printf("  baseline bench_pass on the input: %s\n", action_name(run_once(b.pass, f).action));
        pass.frames = {f};
    }
    std::vector<Case> cases{pass};
    for (auto& c : forwarding_cases(dp, b, true))
        cases.push_back(c);
    std::printf("\n");

    std::printf("== 1. Per-packet cost of xdp_lb as lbd loads it, 1 CPU, encapsulation sources as in "
                "etc/lbd.yaml ==\n");
    lbb::Table table({"case", "xdp_lb", "(min-max)", "baseline", "(min-max)", "own", "ratio",
                      "own (single runs)", "target (own)", "path check"});
    for (const auto& c : cases) {
        const Result r = measure_live(dp, b, c, o);
        const Result s = measure_single(dp, b, c, o);
        table.add({c.name, n0(r.prog), n0(r.prog_min) + "-" + n0(r.prog_max), n0(r.base),
                   n0(r.base_min) + "-" + n0(r.base_max), n1(r.own()), lbb::fmt("%.2fx", r.ratio()),
                   n1(s.own()), c.target > 0 ? "<= " + n0(c.target) : "-",
                   r.ok && s.ok ? "every packet" : "FAILED"});
    }
    {
        // The one case where plain repeat is right: the program leaves a
        // passed frame untouched. No page pool, no stack: the program alone.
        std::vector<double> prog, base;
        bool ok = true;
        for (int rep = 0; rep < o.reps; rep++) {
            Snapshot s(dp, pass);
            prog.push_back(run_repeat(dp.prog_fd(), pass.frames[0], o.iterations));
            ok &= s.check(o.iterations, "plain repeat", false);
            base.push_back(run_repeat(b.pass, pass.frames[0], o.iterations));
        }
        const double p = lbb::median(prog), q = lbb::median(base);
        table.add({"non-VIP pass, plain repeat", n0(p),
                   n0(lbb::min_of(prog)) + "-" + n0(*std::max_element(prog.begin(), prog.end())), n0(q),
                   n0(lbb::min_of(base)) + "-" + n0(*std::max_element(base.begin(), base.end())),
                   n1(p - q), lbb::fmt("%.2fx", p / q), "-", "<= 25", ok ? "every packet" : "FAILED"});
    }
    table.print();
    std::printf("  ns per packet; xdp_lb and baseline: medians (and range) of %d live-frames runs "
                "(XDP_TX frames delivered to lbb1);\n  own = xdp_lb - baseline; ratio = xdp_lb / "
                "baseline; single runs: repeat=1 runs, nothing transmitted, own = median - median.\n\n",
                o.reps);

    // ------------------------------------- part 2: no encapsulation source
    {
        std::printf("== 2. The same without encapsulation sources (the FIB picks the outer source: "
                    "BPF_FIB_LOOKUP_SRC) ==\n");
        dp.set_encap_sources(false);
        lbb::Table t2({"case", "xdp_lb", "baseline", "own", "ratio", "own (single runs)", "path check"});
        for (const auto& c : forwarding_cases(dp, b, false)) {
            const Result r = measure_live(dp, b, c, o);
            const Result s = measure_single(dp, b, c, o);
            t2.add({c.name, n0(r.prog), n0(r.base), n1(r.own()), lbb::fmt("%.2fx", r.ratio()), n1(s.own()),
                    r.ok && s.ok ? "every packet" : "FAILED"});
        }
        t2.print();
        dp.set_encap_sources(true);
        std::printf("\n");
    }

    // ------------------------------------------ part 3: connection tables
    if (o.conntrack_compare) {
        std::printf("== 3. Connection table map type: own ns/pkt (xdp_lb/baseline), 1 CPU and 2 CPUs "
                    "at once ==\n");
        struct Variant {
            const char* name;
            bpf_map_type type;
            uint32_t flags;
        };
        const Variant variants[] = {
            {"ARRAY, shared (lbd)", BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE},
            {"PERCPU_ARRAY", BPF_MAP_TYPE_PERCPU_ARRAY, 0},
        };
        const int ncpu = std::min<int>(2, int(sysconf(_SC_NPROCESSORS_ONLN)));
        Options o3 = o;  // half the packets per run: 2 tables x 2 cases x 2 modes
        o3.iterations = std::max<uint32_t>(1, o.iterations / 2);
        lbb::Table ct({"connection table", "established, 1 CPU", "established, 2 CPUs", "new flow, 1 CPU",
                       "new flow, 2 CPUs", "path check"});
        lbb::Table ct2({"connection table", "new 5-tuples, 1 CPU", "new 5-tuples, 2 CPUs", "path check"});
        for (const auto& v : variants) {
            SkelTarget t(v.type, v.flags);
            // Each CPU its own flows, made on that CPU (a per-CPU table
            // knows a flow only on the CPU that inserted it).
            Case est = established(std::string("established (") + v.name + ")", "web4");
            Case syn = new_flow(std::string("new flow (") + v.name + ")", "web4");
            for (int cpu = 0; cpu < ncpu; cpu++)
                on_cpu(cpu, [&] {
                    const uint16_t port = g_next_port;
                    g_next_port = uint16_t(g_next_port + 2);
                    run_once(t.prog_fd(), tcp_syn(kClient4, port, kVip4).bytes());
                    est.frames.push_back(fixed_point(t, tcp_ack(kClient4, port, kVip4), nullptr));
                    syn.frames.push_back(fixed_point(t, tcp_syn(kClient4, uint16_t(port + 1), kVip4), nullptr));
                });
            bool ok = true;
            std::vector<std::string> row{v.name};
            for (Case* c : {&est, &syn}) {
                Case one = *c;
                one.frames.resize(1);
                const Result r1 = measure_live(t, b, one, o3);
                ok &= r1.ok;
                row.push_back(n1(r1.own()) + " (" + n0(r1.prog) + "/" + n0(r1.base) + ")");
                if (ncpu > 1) {
                    const Result r2 = measure_live(t, b, *c, o3);
                    ok &= r2.ok;
                    row.push_back(n1(r2.own()) + " (" + n0(r2.prog) + "/" + n0(r2.base) + ")");
                } else {
                    row.push_back("n/a (1 CPU)");
                }
            }
            row.push_back(ok ? "every packet" : "FAILED");
            ct.add(row);

            // Real inserts: every run a SYN of a 5-tuple never seen (client
            // 198.51.101.0/24, ports by CPU), single runs.
            std::vector<std::vector<Bytes>> fresh(static_cast<size_t>(ncpu));
            for (int cpu = 0; cpu < ncpu; cpu++)
                for (int n = 0; n < 2 * o.single_runs; n++) {
                    lbd::IpAddr client = ip("198.51.101.0");
                    client.bytes[3] = uint8_t(n % 250 + 1);
                    const uint16_t port = uint16_t(1024 + cpu * 30000 + n / 250);
                    fresh[size_t(cpu)].push_back(tcp_syn(client, port, kVip4).bytes());
                }
            Case ins = new_flow(std::string("new 5-tuples (") + v.name + ")", "web4");
            bool ok2 = true;
            std::vector<std::string> row2{v.name};
            {
                // first half of each list on 1 CPU, second half on 2 CPUs:
                // every run inserts a key the table does not hold yet.
                std::vector<std::vector<Bytes>> first{{fresh[0].begin(), fresh[0].begin() + o.single_runs}};
                const Result r1 = measure_single(t, b, ins, first, o.single_runs);
                ok2 &= r1.ok;
                row2.push_back(n1(r1.own()) + " (" + n0(r1.prog) + "/" + n0(r1.base) + ")");
                if (ncpu > 1) {
                    std::vector<std::vector<Bytes>> second;
                    for (int cpu = 0; cpu < ncpu; cpu++)
                        second.emplace_back(fresh[size_t(cpu)].begin() + o.single_runs, fresh[size_t(cpu)].end());
                    const Result r2 = measure_single(t, b, ins, second, o.single_runs);
                    ok2 &= r2.ok;
                    row2.push_back(n1(r2.own()) + " (" + n0(r2.prog) + "/" + n0(r2.base) + ")");
                } else {
                    row2.push_back("n/a (1 CPU)");
                }
            }
            row2.push_back(ok2 ? "every packet" : "FAILED");
            ct2.add(row2);
        }
        ct.print();
        std::printf("  %u packets per run and CPU. 2 CPUs: each CPU its own flow, both runs released "
                    "together; the figure is the\n  mean of the two CPUs' ns/pkt. New flow = the same SYN again and again "
                    "(its entry rewritten in place).\n"
                    "  Semantics differ: a per-CPU table misses a flow whose packets move to another CPU, "
                    "and holds a copy per CPU.\n\n",
                    o3.iterations);
        std::printf("   Real inserts (single runs, each a SYN of a 5-tuple the table does not hold; "
                    "medians of %d runs per CPU):\n", o.single_runs);
        ct2.print();
        std::printf("\n");
    }

    if (o.sched)
        sched_section(b, o);
    return finish(b, peer_ifindex, t0);
}

int finish(const Baselines& b, int peer_ifindex, uint64_t t0)
{
    bpf_xdp_detach(peer_ifindex, XDP_FLAGS_DRV_MODE, nullptr);
    bpf_object__close(b.obj);
    std::printf("xdp_bench: %.1f s, %s at the end\n", double(lbb::now_ns() - t0) / 1e9,
                lbb::load_line().c_str());
    if (g_failures) {
        std::printf("xdp_bench: %d path check(s) FAILED: some figures above are not the cost of the "
                    "named path\n",
                    g_failures);
        return 1;
    }
    std::printf("xdp_bench: every timed packet took its named path\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    try {
        return real_main(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "xdp_bench: %s\n", e.what());
        return 2;
    }
}
