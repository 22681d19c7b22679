// DNS messages as the dns probe needs them: a query in wire format, and the
// header and question of a reply (RFC 1035 section 4). Pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lbd::health::dns {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxQuerySize = kHeaderSize + 255 + 4;  ///< longest name + QTYPE + QCLASS
constexpr uint16_t kClassIn = 1;

enum Rcode : uint8_t { NoError = 0, FormErr = 1, ServFail = 2, NxDomain = 3, NotImp = 4, Refused = 5 };

/// "NOERROR", "NXDOMAIN", ..., "RCODE11".
std::string rcode_name(uint8_t rcode);

/// Writes a standard query (RD set, one question, class IN) for `name`
/// ("example.org", "example.org." or ".") into `out`. Returns its size, or 0
/// when `name` is not a DNS name or `out` is too small.
size_t encode_query(std::span<uint8_t> out, uint16_t id, std::string_view name, uint16_t qtype);

struct Header {
    uint16_t id = 0;
    bool qr = false;  ///< a response
    uint8_t opcode = 0;
    bool aa = false, tc = false, rd = false, ra = false;
    uint8_t rcode = 0;
    uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
};

std::optional<Header> parse_header(std::span<const uint8_t> msg);

struct Question {
    std::string name;  ///< dotted, no trailing dot; "." for the root
    uint16_t qtype = 0;
    uint16_t qclass = 0;
};

/// The first question of `msg` (compression pointers followed, bounded).
std::optional<Question> parse_question(std::span<const uint8_t> msg);

/// True when `reply` is the response to `query`: same id, QR set, same
/// opcode, and the same question (names compared case-insensitively).
bool answers(std::span<const uint8_t> query, std::span<const uint8_t> reply);

}  // namespace lbd::health::dns
