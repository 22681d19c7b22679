// The fixture of the XDP packet tests: the real program (Datapath, loaded but
// not attached), programmed by the real LbState through the real libbpf map
// writer, run on single frames with BPF_PROG_TEST_RUN.
//
// Everything happens in a private network namespace that the test process
// enters once (unshare(CLONE_NEWNET)) and that dies with it:
//
//   lbt0 02:00:00:00:00:01  198.18.60.1/24  fd00:1b:60::1/64   <-veth->  lbt1
//   next hop 198.18.60.254 / fd00:1b:60::fe = 02:00:00:00:00:fe (permanent)
//
//   198.18.61.0/24  fd00:1b:61::/64  via the next hop              (backends)
//   198.18.62.0/24  fd00:1b:62::/64  via the next hop, MTU 1400 locked (too big)
//   198.18.63.0/24  fd00:1b:63::/64  via .253 / ::fd, no neighbour (no neigh)
//   198.18.64.0/24  fd00:1b:64::/64  blackhole                     (unreachable)
//   198.18.65.0/24  on lbt1 (198.18.65.1), 198.18.65.10 = 02:00:00:00:00:65 (redirect)
//
// Each test gets a freshly loaded program (empty conntrack, zero counters),
// never pinned (Pinning::None: nothing is left in the host's bpffs, nothing
// is adopted from it), programmed with base_config(); tests change it with
// set_backends() or through st() directly.
//
// Not root: the tests skip, unless CI=true, where they fail.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lbd/core/config.h"
#include "lbd/core/lb_state.h"
#include "lbd/core/conntrack_table.h"
#include "lbd/kernel/datapath.h"
#include "packet_builder.h"

namespace lbt {

// ------------------------------------------------------------- the topology
inline const Mac kLbMac = mac("02:00:00:00:00:01");      // lbt0
inline const Mac kGwMac = mac("02:00:00:00:00:fe");      // next hop to backends
inline const Mac kClientMac = mac("02:00:00:00:00:aa");  // router toward clients
inline const lbd::IpAddr kLbAddr4 = ip("198.18.60.1");
inline const lbd::IpAddr kLbAddr6 = ip("fd00:1b:60::1");

inline const lbd::IpAddr kVip4 = ip("198.18.100.1");       // web4 :80 tcp, dns4 :53 udp
inline const lbd::IpAddr kVip6 = ip("fd00:1b:100::1");     // web6, dns6
inline const lbd::IpAddr kSmallVip4 = ip("198.18.100.2");  // backend behind MTU 1400
inline const lbd::IpAddr kSmallVip6 = ip("fd00:1b:100::2");
inline const lbd::IpAddr kNoNeighVip4 = ip("198.18.100.3");
inline const lbd::IpAddr kNoNeighVip6 = ip("fd00:1b:100::3");
inline const lbd::IpAddr kHoleVip4 = ip("198.18.100.4");
inline const lbd::IpAddr kHoleVip6 = ip("fd00:1b:100::4");
inline const lbd::IpAddr kEmptyVip4 = ip("198.18.100.5");  // no backends at all
inline const lbd::IpAddr kEmptyVip6 = ip("fd00:1b:100::5");

inline const lbd::IpAddr kClient4 = ip("198.51.100.7");
inline const lbd::IpAddr kClient6 = ip("2001:db8:c::7");

constexpr uint32_t kRingSize = 1021;
constexpr uint32_t kSeed = 0x1b5eed42;
constexpr uint32_t kMaxVips = 16;
constexpr uint32_t kMaxBackends = 64;

/// A backend list entry for a VipConfig: "198.18.61.10" or {"...", weight}.
struct Be {
    Be(const char* a, uint32_t w = 1) : addr(a), weight(w) {}
    std::string addr;
    uint32_t weight;
};
lbd::VipConfig make_vip(const std::string& name, const lbd::IpAddr& addr, uint16_t port,
                        lbd::Protocol proto, const std::vector<Be>& backends);

/// Client-side frames: Ethernet from the clients' router to lbt0.
Packet from_client();
/// A TCP SYN from `client`:`cport` to `vip`:`vport` (TTL 64, v4 with DF).
Packet tcp_syn(const lbd::IpAddr& client, uint16_t cport, const lbd::IpAddr& vip,
               uint16_t vport = 80);
/// The same flow's later segment: ACK, no SYN.
Packet tcp_ack(const lbd::IpAddr& client, uint16_t cport, const lbd::IpAddr& vip,
               uint16_t vport = 80);

const char* xdp_action_name(int action);

struct RunResult {
    int action = -1;
    Bytes out;
    /// The outer destination of an encapsulated frame (the backend).
    lbd::IpAddr outer_dst() const { return parse_frame(out).ip_dst; }
};

/// Verdict checks that print names (XDP_TX) rather than numbers.
#define EXPECT_ACTION(result, want) \
    EXPECT_STREQ(::lbt::xdp_action_name((result).action), ::lbt::xdp_action_name(want))
#define ASSERT_ACTION(result, want) \
    ASSERT_STREQ(::lbt::xdp_action_name((result).action), ::lbt::xdp_action_name(want))

/// gtest helper: equal frames, or a hex dump of both with differences marked.
::testing::AssertionResult frames_equal(const Bytes& expected, const Bytes& got);
#define EXPECT_FRAME(expected, got) EXPECT_TRUE(::lbt::frames_equal((expected), (got)))

/// Counters before an action; delta() and verdict_is() after it.
class CounterWatch {
public:
    explicit CounterWatch(const lbd::Datapath& dp);
    uint64_t delta(lbd_counter c) const;
    /// Exactly `n` packets got verdict reason `c` and none got another
    /// verdict reason (the per-packet counters from tx to icmp_too_big_sent).
    ::testing::AssertionResult verdicts_are(lbd_counter c, uint64_t n = 1) const;

private:
    const lbd::Datapath& dp_;
    std::vector<uint64_t> before_;
};

class XdpTest : public ::testing::Test {
protected:
    static void SetUpTestSuite();
    void SetUp() override;
    void TearDown() override;

    /// The VIPs every test starts with.
    static std::vector<lbd::VipConfig> base_config();

    /// Runs one frame through the program (ingress ifindex = lbt0).
    RunResult run(const Bytes& frame);
    RunResult run(const Packet& p) { return run(p.bytes()); }

    lbd::Datapath& dp() { return *dp_; }
    lbd::LbState& st() { return *st_; }
    const lbd::VipState& vip(const std::string& name) const;
    /// Replaces one VIP's backends in the current config and applies it.
    void set_backends(const std::string& vip_name, const std::vector<Be>& backends);
    void apply_config(std::vector<lbd::VipConfig> cfg);

    /// What the ring map says for this flow: the backend address, or
    /// nullopt when the slot names no backend of the VIP.
    std::optional<lbd::IpAddr> ring_pick(const std::string& vip_name, const lbd_flow_key& flow);
    uint32_t ring_slot_id(uint32_t vip_id, const lbd_flow_key& flow);
    std::optional<lbd_ct_value> conntrack_entry(const lbd_flow_key& flow);
    /// `n` client ports (`from` up) whose TCP flows from `client` to port 80
    /// of `vip` share one bucket of the connection table.
    std::vector<uint16_t> ports_in_one_bucket(const lbd::IpAddr& client, const lbd::IpAddr& vip, size_t n,
                                              uint16_t from);
    uint32_t backend_id(const std::string& vip_name, const lbd::IpAddr& addr) const;

    /// The frame the program must send for `in` encapsulated toward
    /// `backend`: Ethernet lbt0 -> next hop, outer header from `outer_src`
    /// (default: lbt0's address, what the FIB picks) to the backend, TTL/TOS
    /// and DF copied from `in`, IPv6 flow label = flow hash & 0xfffff.
    Packet encapsulated(const Packet& in, const lbd::IpAddr& backend,
                        std::optional<lbd::IpAddr> outer_src = std::nullopt,
                        std::optional<lbd_flow_key> flow = std::nullopt) const;

    int ifindex() const { return ifindex_; }
    int map_fd(const std::string& name) const;

    std::vector<lbd::VipConfig> config_;

private:
    static std::string& setup_error();
    static std::string pin_path();
    std::unique_ptr<lbd::Datapath> dp_;
    std::unique_ptr<lbd::LbState> st_;
    std::vector<std::pair<std::string, int>> maps_;
    int ifindex_ = 0;
};

}  // namespace lbt
