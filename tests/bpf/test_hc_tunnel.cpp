// The health-check tunnel (bpf/hc_tunnel.bpf.c) run on single frames with
// BPF_PROG_TEST_RUN, its map written by the real ProbeTunnel: a probe's
// packet (skb mark in lbd's range) leaves wrapped in an outer header to the
// backend its mark names and is handed to bpf_redirect_neigh; everything
// unmarked is left to the next filter; a marked packet that cannot reach its
// backend is dropped with a named counter. Same namespace as the XDP tests:
// the FIB answers from lbt0's routes (fixture.h).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <cstring>
#include <memory>

#include "fixture.h"
#include "lbd/kernel/probe_tunnel.h"

using namespace lbt;

namespace {

constexpr uint32_t kMarkValue = 0x4c420000;
constexpr uint32_t kMark4 = kMarkValue | 1;      // -> 198.18.61.10
constexpr uint32_t kMark6 = kMarkValue | 2;      // -> fd00:1b:61::10
constexpr uint32_t kMarkHole = kMarkValue | 3;   // -> 198.18.64.10 (blackhole)
constexpr uint32_t kMarkSmall = kMarkValue | 4;  // -> 198.18.62.10 (MTU 1400, locked)
constexpr uint32_t kMarkFree = kMarkValue | 9;   // no entry

const lbd::IpAddr kBackend4 = ip("198.18.61.10");
const lbd::IpAddr kBackend6 = ip("fd00:1b:61::10");

struct TcResult {
    int verdict = 0;
    Bytes out;
    uint32_t mark = 0;  // skb->mark after the program
};

const char* tc_name(int v)
{
    switch (v) {
    case TC_ACT_UNSPEC: return "TC_ACT_UNSPEC";
    case TC_ACT_OK: return "TC_ACT_OK";
    case TC_ACT_SHOT: return "TC_ACT_SHOT";
    case TC_ACT_REDIRECT: return "TC_ACT_REDIRECT";
    default: return "other";
    }
}

class HcTunnel : public XdpTest {
protected:
    void SetUp() override
    {
        XdpTest::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        lbd::DatapathConfig cfg;
        cfg.interfaces = {"lbt0"};
        cfg.max_backends = kMaxBackends;
        cfg.probe_marks = {kMarkValue, 0xffff0000};
        try {
            tunnel_ = std::make_unique<lbd::ProbeTunnel>(cfg);  // loaded, not attached
        } catch (const std::exception& e) {
            FAIL() << "loading the health-check tunnel: " << e.what();
        }
        tunnel_->put(kMark4, kBackend4);
        tunnel_->put(kMark6, kBackend6);
        tunnel_->put(kMarkHole, ip("198.18.64.10"));
        tunnel_->put(kMarkSmall, ip("198.18.62.10"));
        before_ = tunnel_->counters();
    }

    /// Runs one frame through the program as lbt0's egress with skb->mark = mark.
    TcResult egress(const Bytes& frame, uint32_t mark)
    {
        TcResult r;
        r.out.resize(frame.size() + 256);
        __sk_buff ctx{};
        ctx.mark = mark;
        ctx.ifindex = uint32_t(ifindex());
        LIBBPF_OPTS(bpf_test_run_opts, opts);
        opts.data_in = frame.data();
        opts.data_size_in = uint32_t(frame.size());
        opts.data_out = r.out.data();
        opts.data_size_out = uint32_t(r.out.size());
        opts.ctx_in = &ctx;
        opts.ctx_size_in = sizeof ctx;
        opts.ctx_out = &ctx;
        opts.ctx_size_out = sizeof ctx;
        opts.repeat = 1;
        if (bpf_prog_test_run_opts(tunnel_->prog_fd(), &opts) != 0)
            throw std::runtime_error(std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno));
        r.verdict = int(opts.retval);
        r.out.resize(opts.data_size_out);
        r.mark = ctx.mark;
        return r;
    }

    /// Exactly one packet counted, under `c`.
    ::testing::AssertionResult counted(lbd_hc_counter c)
    {
        const auto now = tunnel_->counters();
        std::string diff;
        for (unsigned i = 0; i < now.size(); i++) {
            const uint64_t d = now[i] - before_[i];
            if (d != (i == unsigned(c) ? 1u : 0u))
                diff += std::string(" ") + lbd_hc_counter_name(i) + "+" + std::to_string(d);
        }
        before_ = now;
        if (diff.empty())
            return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "want " << lbd_hc_counter_name(c) << "+1, got:" << diff;
    }

    /// A probe's frame as it reaches lbt0's egress: lbd's address to the VIP.
    static Packet probe4()
    {
        return Packet().eth(kLbMac, kGwMac).ipv4(kLbAddr4, kVip4).ttl(1).tos(0x10).df().ip_id(0x1234).tcp(40000, 80).syn();
    }
    static Packet probe6()
    {
        return Packet().eth(kLbMac, kGwMac).ipv6(kLbAddr6, kVip6).hop_limit(1).traffic_class(0x28).flow_label(0xabcde)
            .tcp(40000, 80).syn();
    }
    std::unique_ptr<lbd::ProbeTunnel> tunnel_;
    std::vector<uint64_t> before_;
};

#define EXPECT_VERDICT(r, want) EXPECT_STREQ(tc_name((r).verdict), tc_name(want))

}  // namespace

TEST_F(HcTunnel, Ipv4ProbeWrappedToItsBackend)
{
    const auto in = probe4();
    const auto r = egress(in, kMark4);
    EXPECT_VERDICT(r, TC_ACT_REDIRECT);
    EXPECT_TRUE(counted(LBD_HC_ENCAP_V4));
    // Ethernet as it was (bpf_redirect_neigh fills it in), then IPv4 from
    // the probe's source to the backend: TTL 64, TOS and DF copied, the
    // probe's packet (TTL 1) untouched inside.
    auto want = Packet().eth(kLbMac, kGwMac).ipv4(kLbAddr4, kBackend4).ttl(64).tos(0x10).df().ip_id(0x1234).inner(in);
    EXPECT_FRAME(want.bytes(), r.out);
    ASSERT_GE(r.out.size(), 34u);
    EXPECT_TRUE(ipv4_header_checksum_ok({r.out.data() + 14, 20}));
    EXPECT_EQ(r.mark, 0u) << "unmarked, so it passes the program as anyone's if it comes back to lbt0";
}

TEST_F(HcTunnel, Ipv6ProbeWrappedToItsBackend)
{
    const auto in = probe6();
    const auto r = egress(in, kMark6);
    EXPECT_VERDICT(r, TC_ACT_REDIRECT);
    EXPECT_TRUE(counted(LBD_HC_ENCAP_V6));
    auto want = Packet().eth(kLbMac, kGwMac).ipv6(kLbAddr6, kBackend6).hop_limit(64).traffic_class(0x28)
                    .flow_label(0xabcde).inner(in);
    EXPECT_FRAME(want.bytes(), r.out);
    EXPECT_EQ(r.mark, 0u);
}

TEST_F(HcTunnel, UnmarkedAndOtherMarksLeftToTheNextFilter)
{
    for (uint32_t mark : {0u, 0x4c430001u, 0x4c42u, 0x1u}) {
        const auto in = probe4();
        const auto r = egress(in, mark);
        EXPECT_VERDICT(r, TC_ACT_UNSPEC) << std::hex << mark;
        EXPECT_FRAME(in.bytes(), r.out);
        EXPECT_EQ(r.mark, mark);
    }
    const auto now = tunnel_->counters();
    EXPECT_EQ(now, before_) << "not counted";
}

TEST_F(HcTunnel, MarkedButUndeliverableDropped)
{
    // A mark that names no backend (a probe of a removed target): sent on,
    // the packet would reach whatever the VIP's route leads to.
    EXPECT_VERDICT(egress(probe4(), kMarkFree), TC_ACT_SHOT);
    EXPECT_TRUE(counted(LBD_HC_DROP_NO_TARGET));
    // An IPv4 packet with an IPv6 backend's mark, and the other way round.
    EXPECT_VERDICT(egress(probe4(), kMark6), TC_ACT_SHOT);
    EXPECT_TRUE(counted(LBD_HC_DROP_FAMILY));
    EXPECT_VERDICT(egress(probe6(), kMark4), TC_ACT_SHOT);
    EXPECT_TRUE(counted(LBD_HC_DROP_FAMILY));
    // The backend is blackholed.
    EXPECT_VERDICT(egress(probe4(), kMarkHole), TC_ACT_SHOT);
    EXPECT_TRUE(counted(LBD_HC_DROP_NO_ROUTE));
    // Too big for the backend's route once wrapped: 1400 - 20 fits, one more does not.
    auto big = [](size_t ip_len) { return probe4().payload(ip_len - 40); };
    EXPECT_VERDICT(egress(big(1380), kMarkSmall), TC_ACT_REDIRECT);
    EXPECT_TRUE(counted(LBD_HC_ENCAP_V4));
    EXPECT_VERDICT(egress(big(1381), kMarkSmall), TC_ACT_SHOT);
    EXPECT_TRUE(counted(LBD_HC_DROP_TOO_BIG));
    // An IP length beyond the frame.
    EXPECT_VERDICT(egress(probe4().ip_total_length(400), kMark4), TC_ACT_SHOT);
    EXPECT_TRUE(counted(LBD_HC_DROP_MALFORMED));
}

TEST_F(HcTunnel, RemovedMarkNoLongerDelivers)
{
    tunnel_->remove(kMark4);
    EXPECT_VERDICT(egress(probe4(), kMark4), TC_ACT_SHOT);
    EXPECT_TRUE(counted(LBD_HC_DROP_NO_TARGET));
    EXPECT_NO_THROW(tunnel_->remove(kMark4)) << "removing twice is harmless";
}
