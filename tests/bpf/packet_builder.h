// A fluent builder for exact test frames, used by the XDP packet tests.
//
//   Packet().eth(client_mac, lb_mac).vlan(100)
//           .ipv4("198.51.100.7", "198.18.100.1").ttl(64).tos(0x28).df()
//           .tcp(40000, 80).syn().payload(16)
//
// The description is kept field by field and turned into bytes only by
// bytes(), so modifiers may come in any order after the layer they change.
// Every length (IPv4 total length, IPv6 payload length, UDP length) and every
// checksum (IPv4 header, TCP/UDP with pseudo header, ICMP, ICMPv6 with pseudo
// header) is computed, unless the test overrides it on purpose.
//
// A Packet without eth() starts at the IP header: that is what an ICMP error
// quotes and what an encapsulating packet carries (inner()).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/addr.h"
#include "lbd_shared.h"

namespace lbt {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

/// "02:00:00:00:00:01"; throws std::invalid_argument on anything else.
Mac mac(std::string_view text);
/// "198.18.1.1" or "fd00::1"; throws std::invalid_argument on anything else.
lbd::IpAddr ip(std::string_view text);

/// RFC 1071 one's complement sum of `data` (odd length padded with a zero
/// byte) added to `sum`, not folded, not inverted.
uint32_t csum_partial(std::span<const uint8_t> data, uint32_t sum = 0);
/// Folds a partial sum to 16 bits and inverts it: the value for the header.
uint16_t csum_fold(uint32_t sum);
/// Pseudo-header partial sum for TCP/UDP/ICMPv6 over IPv4 or IPv6.
uint32_t pseudo_header_sum(const lbd::IpAddr& src, const lbd::IpAddr& dst, uint8_t proto,
                           uint32_t upper_len);

/// TCP flag bits.
namespace tcpf {
constexpr uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;
}

class Packet {
public:
    // ------------------------------------------------------------- layer 2
    /// Ethernet header; the ethertype follows from what comes next.
    Packet& eth(const Mac& src, const Mac& dst);
    /// One more VLAN tag (the first call is the outermost tag).
    Packet& vlan(uint16_t vid, uint16_t tpid = 0x8100, uint8_t pcp = 0);
    /// Forces the innermost ethertype (e.g. with raw_l2() for LLDP).
    Packet& ethertype(uint16_t type);
    /// An ARP request as the Ethernet payload (ethertype 0x0806).
    Packet& arp_request(const Mac& sender_mac, const lbd::IpAddr& sender,
                        const lbd::IpAddr& target);
    /// Raw bytes as the Ethernet payload (no IP layer).
    Packet& raw_l2(Bytes payload);

    // ------------------------------------------------------------- layer 3
    Packet& ipv4(const lbd::IpAddr& src, const lbd::IpAddr& dst);
    Packet& ipv4(std::string_view src, std::string_view dst) { return ipv4(ip(src), ip(dst)); }
    Packet& ipv6(const lbd::IpAddr& src, const lbd::IpAddr& dst);
    Packet& ipv6(std::string_view src, std::string_view dst) { return ipv6(ip(src), ip(dst)); }
    /// IPv4 TTL or IPv6 hop limit (default 64).
    Packet& ttl(uint8_t v);
    Packet& hop_limit(uint8_t v) { return ttl(v); }
    /// IPv4 TOS or IPv6 traffic class (default 0).
    Packet& tos(uint8_t v);
    Packet& traffic_class(uint8_t v) { return tos(v); }
    /// IPv6 flow label (20 bits).
    Packet& flow_label(uint32_t v);
    /// IPv4: sets the don't-fragment bit.
    Packet& df();
    /// IPv4 identification (default 0).
    Packet& ip_id(uint16_t v);
    /// Fragment offset in BYTES (a multiple of 8) and the more-fragments bit.
    /// IPv4: in the header. IPv6: adds a fragment extension header.
    Packet& frag(uint16_t offset_bytes, bool more_fragments, uint32_t ident = 0x1234);
    /// IPv4 options (a multiple of 4 bytes, at most 40): ihl grows with them.
    Packet& ip_options(Bytes options);
    /// IPv6: one 8-byte extension header of this type (hop-by-hop,
    /// destination options or routing), in order, before the L4 header.
    Packet& ipv6_ext(uint8_t type);
    /// Overrides single header fields after computation (malformed frames).
    Packet& ip_version(uint8_t v);
    Packet& ihl(uint8_t words);
    Packet& ip_total_length(uint16_t v);
    Packet& ip_payload_length(uint16_t v) { return ip_total_length(v); }

    // ------------------------------------------------------------- layer 4
    Packet& tcp(uint16_t sport, uint16_t dport);
    Packet& tcp_flags(uint8_t flags);
    Packet& syn() { return add_tcp_flags(tcpf::SYN); }
    Packet& ack() { return add_tcp_flags(tcpf::ACK); }
    Packet& fin() { return add_tcp_flags(tcpf::FIN); }
    Packet& rst() { return add_tcp_flags(tcpf::RST); }
    Packet& psh() { return add_tcp_flags(tcpf::PSH); }
    Packet& seq(uint32_t v);
    Packet& ack_seq(uint32_t v);
    Packet& window(uint16_t v);
    /// TCP data offset override in 32-bit words (malformed frames).
    Packet& tcp_doff(uint8_t words);
    Packet& udp(uint16_t sport, uint16_t dport);
    /// UDP length field override (malformed frames).
    Packet& udp_length(uint16_t v);

    /// ICMP echo request (IPv4) or ICMPv6 echo request (IPv6).
    Packet& echo_request(uint16_t id, uint16_t seq);
    /// ICMP type 3 code 4 "fragmentation needed" quoting `quoted` (IP bytes).
    Packet& icmp4_frag_needed(uint16_t mtu, Bytes quoted);
    Packet& icmp4_frag_needed(uint16_t mtu, const Packet& quoted)
    {
        return icmp4_frag_needed(mtu, quoted.bytes());
    }
    /// Any ICMPv4 message: type, code, the 4 "rest of header" bytes, data.
    Packet& icmp4(uint8_t type, uint8_t code, uint32_t rest, Bytes data);
    /// ICMPv6 type 2 "packet too big" quoting `quoted` (IP bytes).
    Packet& icmp6_too_big(uint32_t mtu, Bytes quoted);
    Packet& icmp6_too_big(uint32_t mtu, const Packet& quoted)
    {
        return icmp6_too_big(mtu, quoted.bytes());
    }
    Packet& icmp6(uint8_t type, uint8_t code, uint32_t rest, Bytes data);

    /// Tunnelled payload: `inner` (a Packet that starts at its IP header, or
    /// whose L2 header is dropped) after the IP header, protocol 4 (IPv4
    /// inner) or 41 (IPv6 inner).
    Packet& inner(const Packet& inner);

    /// Overrides the IPv4 protocol / IPv6 next header of the last header.
    Packet& ip_proto(uint8_t proto);

    // ------------------------------------------------------------ payload
    /// n bytes of a fixed pattern (0x00, 0x01, ... wrapping) after L4.
    Packet& payload(size_t n);
    Packet& payload(Bytes data);

    /// Keeps only the first n bytes of the finished frame (checksums and
    /// lengths are those of the untruncated packet).
    Packet& truncate(size_t n);

    // ------------------------------------------------------------- output
    /// The frame (or, without eth(), the IP packet).
    Bytes bytes() const;
    /// Everything after the Ethernet header and its VLAN tags.
    Bytes ip_bytes() const;
    size_t size() const { return bytes().size(); }
    operator Bytes() const { return bytes(); }

    // -------------------------------------------------------- description
    enum class L4 { None, Tcp, Udp, Icmp, Inner, Raw };
    int ip_family() const { return ip_.version; }  // 0, 4 or 6
    bool is_v4() const { return ip_.version == 4; }
    const lbd::IpAddr& src() const { return ip_.src; }
    const lbd::IpAddr& dst() const { return ip_.dst; }
    uint8_t ttl_value() const { return ip_.ttl; }
    uint8_t tos_value() const { return ip_.tos; }
    bool df_value() const { return ip_.df; }
    L4 l4() const { return l4_.kind; }
    uint16_t sport() const { return l4_.sport; }
    uint16_t dport() const { return l4_.dport; }
    /// The TCP/UDP 5-tuple as the XDP program keys it (network byte order).
    lbd_flow_key flow() const;

private:
    Packet& add_tcp_flags(uint8_t f);
    void need_ip(const char* what) const;
    Bytes build_l4() const;
    uint8_t l4_proto() const;

    struct L2 {
        bool present = false;
        Mac src{}, dst{};
        std::vector<std::pair<uint16_t, uint16_t>> tags;  // tpid, tci
        std::optional<uint16_t> type;
        std::optional<Bytes> raw;
    } l2_;

    struct Ip {
        int version = 0;
        lbd::IpAddr src, dst;
        uint8_t ttl = 64, tos = 0;
        uint16_t id = 0;
        bool df = false;
        bool frag = false, mf = false;
        uint16_t frag_offset = 0;  // bytes
        uint32_t frag_ident = 0;
        uint32_t flow_label = 0;
        Bytes options;
        std::vector<uint8_t> ext;  // IPv6 extension header types, in order
        std::optional<uint8_t> proto, version_override, ihl;
        std::optional<uint16_t> length;
    } ip_;

    struct L4Desc {
        L4 kind = L4::None;
        uint16_t sport = 0, dport = 0;
        uint32_t seq = 0x01020304, ack = 0;
        uint8_t flags = 0;
        uint16_t window = 65535;
        std::optional<uint8_t> doff;
        std::optional<uint16_t> udp_len;
        uint8_t icmp_type = 0, icmp_code = 0;
        uint32_t icmp_rest = 0;
        uint8_t inner_proto = 0;
    } l4_;

    Bytes payload_;  // after the L4 header (ICMP data, inner packet, app data)
    std::optional<size_t> truncate_;
};

// ------------------------------------------------------------- inspection

/// Outer view of a frame: Ethernet (+ tags) and the IP header.
struct FrameView {
    Mac dst{}, src{};
    uint16_t ethertype = 0;  // innermost
    size_t l3_off = 0;
    int family = 0;          // 4, 6 or 0 (not IP)
    lbd::IpAddr ip_src, ip_dst;
    uint8_t proto = 0;       // IPv4 protocol / IPv6 next header
    size_t l4_off = 0;       // right after the (first) IP header
};
/// Parses as much as is there; family 0 when it is not an IP frame.
FrameView parse_frame(std::span<const uint8_t> frame);

/// Checks computed independently of the builder's own code path.
bool ipv4_header_checksum_ok(std::span<const uint8_t> ip_header);
/// ICMPv4: the sum over the whole ICMP message is 0xffff.
bool icmp4_checksum_ok(std::span<const uint8_t> icmp);
/// ICMPv6/TCP/UDP: the sum over pseudo header + message is 0xffff.
bool l4_checksum_ok(const lbd::IpAddr& src, const lbd::IpAddr& dst, uint8_t proto,
                    std::span<const uint8_t> l4);

/// A hex dump with the bytes that differ from `other` marked; for failures.
std::string hexdump(std::span<const uint8_t> data, std::span<const uint8_t> other = {});
std::string mac_str(const Mac& m);

}  // namespace lbt
