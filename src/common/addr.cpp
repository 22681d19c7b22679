#include "common/addr.h"

#include <arpa/inet.h>

#include <charconv>

namespace lbd {

namespace {

/// Digits only, 1..65535; no sign, no spaces.
std::optional<uint16_t> parse_port(std::string_view s)
{
    if (s.empty() || s.size() > 5)
        return std::nullopt;
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v == 0 || v > 65535)
        return std::nullopt;
    return static_cast<uint16_t>(v);
}

/// Prefix length 0..max, digits only (from_chars on unsigned takes no sign).
std::optional<int> parse_len(std::string_view s, unsigned max)
{
    if (s.empty() || s.size() > 3)
        return std::nullopt;
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v > max)
        return std::nullopt;
    return static_cast<int>(v);
}

bool bit_set(const IpAddr& a, int bit)
{
    return (a.bytes[bit / 8] >> (7 - bit % 8)) & 1;
}

}  // namespace

std::optional<IpAddr> IpAddr::parse(std::string_view text)
{
    // inet_pton already rejects spaces, brackets and zone ids; NUL would truncate.
    if (text.empty() || text.size() > INET6_ADDRSTRLEN || text.find('\0') != text.npos)
        return std::nullopt;
    std::string s(text);
    IpAddr a;
    if (s.find(':') != s.npos) {
        a.family = Family::V6;
        if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1)
            return std::nullopt;
    } else {
        a.family = Family::V4;
        if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1)
            return std::nullopt;
    }
    return a;
}

std::string IpAddr::str() const
{
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

std::optional<Prefix> Prefix::parse(std::string_view text)
{
    auto slash = text.find('/');
    if (slash == text.npos)
        return std::nullopt;
    auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr)
        return std::nullopt;
    auto len = parse_len(text.substr(slash + 1), addr->is_v4() ? 32 : 128);
    if (!len)
        return std::nullopt;
    for (int bit = *len; bit < static_cast<int>(addr->size()) * 8; ++bit)
        if (bit_set(*addr, bit))
            return std::nullopt;
    return Prefix{*addr, *len};
}

std::string Prefix::str() const
{
    return addr.str() + "/" + std::to_string(len);
}

bool Prefix::contains(const IpAddr& a) const
{
    if (a.family != addr.family)
        return false;
    int full = len / 8;
    for (int i = 0; i < full; ++i)
        if (a.bytes[i] != addr.bytes[i])
            return false;
    if (len % 8 == 0)
        return true;
    uint8_t mask = static_cast<uint8_t>(0xff00 >> (len % 8));
    return (a.bytes[full] & mask) == (addr.bytes[full] & mask);
}

std::optional<Endpoint> Endpoint::parse(std::string_view text)
{
    std::string_view host, port;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == text.npos)
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == text.npos)
            return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    auto addr = IpAddr::parse(host);
    auto p = parse_port(port);
    if (!addr || !p)
        return std::nullopt;
    // IPv6 must be bracketed and IPv4 must not be.
    if (addr->is_v4() == text.starts_with('['))
        return std::nullopt;
    return Endpoint{*addr, *p};
}

std::string Endpoint::str() const
{
    auto p = std::to_string(port);
    return addr.is_v4() ? addr.str() + ":" + p : "[" + addr.str() + "]:" + p;
}

}  // namespace lbd
