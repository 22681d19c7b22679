// IP addresses, prefixes and endpoints as the config and the CLI write them.
// Pure: no sockets. Bytes are kept in network order, as the maps want them.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lbd {

enum class Family : uint8_t { V4 = 4, V6 = 6 };

struct IpAddr {
    Family family = Family::V4;
    std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses bytes[0..3]

    /// "198.18.1.100" or "2001:db8::1" (no brackets, no zone).
    static std::optional<IpAddr> parse(std::string_view text);
    std::string str() const;
    bool is_v4() const { return family == Family::V4; }
    size_t size() const { return is_v4() ? 4 : 16; }
    auto operator<=>(const IpAddr&) const = default;
};

struct Prefix {
    IpAddr addr;  // host bits cleared
    int len = 0;

    /// "198.18.0.0/24" or "fd00:1b::/64"; host bits set is an error.
    static std::optional<Prefix> parse(std::string_view text);
    std::string str() const;
    bool contains(const IpAddr& a) const;
    auto operator<=>(const Prefix&) const = default;
};

struct Endpoint {
    IpAddr addr;
    uint16_t port = 0;

    /// "198.18.1.100:80" or "[2001:db8::1]:80".
    static std::optional<Endpoint> parse(std::string_view text);
    std::string str() const;  // same forms as parse accepts
    auto operator<=>(const Endpoint&) const = default;
};

}  // namespace lbd
