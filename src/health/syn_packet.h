// The packets of a half-open tcp check, as pure functions: the SYN lbd
// sends (TCP header with its checksum over the pseudo header), the reply it
// reads back (SYN-ACK or RST), and the socket filter that lets only such
// replies into the raw socket. No sockets here: syn_prober.cpp does the I/O.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/addr.h"

namespace lbd::health::syn {

/// A TCP header of 20 bytes plus one MSS option.
constexpr size_t kSynLength = 24;
using SynPacket = std::array<uint8_t, kSynLength>;

struct SynFields {
    IpAddr source;
    IpAddr destination;
    uint16_t source_port = 0;
    uint16_t destination_port = 0;
    uint32_t seq = 0;  ///< our initial sequence number; the reply acks seq + 1
};

/// The internet checksum of a TCP segment over the pseudo header of
/// (source, destination) (IPv4 or IPv6 by their family), with the segment's
/// checksum field taken as it is: 0 in it gives the value to write there,
/// and a segment with a correct checksum gives 0.
uint16_t tcp_checksum(const IpAddr& source, const IpAddr& destination, std::span<const uint8_t> segment);

/// The SYN: flags SYN only, window 64240, option MSS (1460 for IPv4, 1440
/// for IPv6), checksum filled in.
SynPacket build_syn(const SynFields& f);

/// The SYN behind its IP header, as a raw socket with IP_HDRINCL /
/// IPV6_HDRINCL sends it: IPv4 (20 bytes: DF, ID 0, TTL 64, header
/// checksum filled in) or IPv6 (40 bytes: hop limit 64, flow label 0) by
/// the addresses' family.
struct SynDatagram {
    std::array<uint8_t, 40 + kSynLength> bytes{};
    size_t size = 0;
    std::span<const uint8_t> data() const { return {bytes.data(), size}; }
};
SynDatagram build_syn_datagram(const SynFields& f);

/// What a reply says.
struct Reply {
    IpAddr source;  ///< the backend
    uint16_t source_port = 0;
    uint16_t destination_port = 0;  ///< ours
    uint32_t ack = 0;
    bool syn_ack = false;  ///< SYN and ACK set: the port listens
    bool rst = false;      ///< RST set: nothing listens (with ACK = our seq + 1)
};

/// A TCP segment starting at its header (as an IPv6 raw socket delivers it),
/// from `source` (the sender's address, from recvmsg). nullopt if it is too
/// short, or neither SYN-ACK nor RST with ACK.
std::optional<Reply> parse_tcp(std::span<const uint8_t> segment, const IpAddr& source);

/// An IPv4 packet starting at its IP header (as an IPv4 raw socket delivers
/// it): checks the header and reads the TCP segment after it.
std::optional<Reply> parse_ipv4(std::span<const uint8_t> packet);

/// A classic BPF socket filter that accepts only TCP segments with SYN+ACK
/// or RST set whose destination port is one of `ports` (at most 64).
/// `ip_header`: the packet starts at an IPv4 header (IPv4 raw sockets);
/// otherwise at the TCP header (IPv6 raw sockets).
std::vector<sock_filter> reply_filter(std::span<const uint16_t> ports, bool ip_header);

}  // namespace lbd::health::syn
