// IP length fields against the frame they arrive in.
//
// lbd_shared.h defines pass_malformed as "truncated or inconsistent headers".
// The length fields are trusted later (the outer header, the FIB's MTU check,
// the ICMP too-big decision), so a frame shorter than its IPv4 total length
// or IPv6 payload length, or an IP length too short for the L4 header after
// it, is malformed and passed untouched: never encapsulated, and never
// answered with an ICMP error (which a forged short packet could otherwise
// aim at any address).
#include <linux/bpf.h>

#include "fixture.h"

using namespace lbt;

namespace {

class IpLengths : public XdpTest {
protected:
    /// The frame must reach the kernel untouched, counted as malformed.
    void expect_malformed(const Packet& p)
    {
        const Bytes in = p.bytes();
        SCOPED_TRACE("input:\n" + hexdump(in));
        CounterWatch counters(dp());
        const RunResult r = run(in);
        EXPECT_ACTION(r, XDP_PASS);
        EXPECT_FRAME(in, r.out);
        EXPECT_TRUE(counters.verdicts_are(LBD_CNT_PASS_MALFORMED));
    }
};

// Lengths that agree with the frame, or leave trailing Ethernet padding, are
// fine (see also Encap.FrameWithEthernetPaddingKeepsIpLengthFromHeader).
TEST_F(IpLengths, ExactLengthsAreForwarded)
{
    for (const Packet& p : {tcp_ack(kClient4, 48000, kVip4), tcp_ack(kClient6, 48000, kVip6)}) {
        const RunResult r = run(p);
        ASSERT_ACTION(r, XDP_TX);
        EXPECT_EQ(r.out.size(), p.size() + (p.is_v4() ? 20 : 40));
    }
}

// 54-byte frame whose IPv4 header claims 1000 bytes: today encapsulated with
// an outer total length of 1020 around 40 bytes (XDP_TX, tx).
TEST_F(IpLengths, Ipv4TotalLengthBeyondTheFrameIsMalformed)
{
    expect_malformed(from_client().ipv4(kClient4, kVip4).ttl(64).tcp(48001, 80).syn().ip_total_length(1000));
}

// 54-byte frame with DF claiming 1500 bytes toward a 1500-MTU path: today
// the LB sends an ICMP fragmentation-needed (MTU 1480) from the VIP to the
// (unverified, spoofable) source address: a forged 54-byte packet makes the
// VIP send an ICMP error to any address it names.
TEST_F(IpLengths, Ipv4ShortFrameClaimingFullSizeGetsNoIcmpReply)
{
    expect_malformed(from_client().ipv4(kClient4, kVip4).ttl(64).df().tcp(48002, 80).syn().ip_total_length(1500));
}

// Total length 20 (an IP header and nothing else) with a TCP header in the
// bytes after it: today the ports are read from beyond the IP packet and it
// is encapsulated with an outer total length of 40.
TEST_F(IpLengths, Ipv4TotalLengthShorterThanTheTcpHeaderIsMalformed)
{
    expect_malformed(from_client().ipv4(kClient4, kVip4).ttl(64).df().tcp(48003, 80).syn().ip_total_length(20));
}

// 74-byte frame whose IPv6 header claims a 1000-byte payload: today
// encapsulated with an outer payload length of 1040.
TEST_F(IpLengths, Ipv6PayloadLengthBeyondTheFrameIsMalformed)
{
    expect_malformed(from_client().ipv6(kClient6, kVip6).tcp(48004, 80).syn().ip_payload_length(1000));
}

// Payload length 0 (no jumbo option: hop-by-hop headers are passed anyway)
// with a TCP header after the IPv6 header: today encapsulated.
TEST_F(IpLengths, Ipv6PayloadLengthShorterThanTheTcpHeaderIsMalformed)
{
    expect_malformed(from_client().ipv6(kClient6, kVip6).tcp(48005, 80).syn().ip_payload_length(0));
}

// IPv6 too-big decision from a lying payload length: a 74-byte frame
// claiming 1400 bytes to the MTU-1400 backend is answered with a Packet Too
// Big today.
TEST_F(IpLengths, Ipv6ShortFrameClaimingLargePayloadGetsNoPacketTooBig)
{
    expect_malformed(from_client().ipv6(kClient6, kSmallVip6).tcp(48006, 80).syn().ip_payload_length(1360));
}

}  // namespace
