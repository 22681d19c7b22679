#include "health/http.h"

#include <algorithm>

namespace lbd::health {

namespace {

bool digit(char c)
{
    return c >= '0' && c <= '9';
}

}  // namespace

std::optional<int> parse_status_line(std::string_view line)
{
    // HTTP-version SP status-code [SP reason-phrase]; HTTP-version = "HTTP/" DIGIT "." DIGIT
    if (line.size() < 12 || !line.starts_with("HTTP/") || !digit(line[5]) || line[6] != '.' || !digit(line[7]) ||
        line[8] != ' ')
        return std::nullopt;
    auto code = line.substr(9, 3);
    if (!digit(code[0]) || !digit(code[1]) || !digit(code[2]))
        return std::nullopt;
    if (line.size() > 12 && line[12] != ' ')
        return std::nullopt;
    int status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    if (status < 100 || status > 599)
        return std::nullopt;
    return status;
}

StatusScan scan_status(std::string_view received, size_t max)
{
    auto nl = received.find('\n');
    if (nl == received.npos) {
        // Reject early what can never become a status line.
        constexpr std::string_view kPrefix = "HTTP/";
        auto n = std::min(received.size(), kPrefix.size());
        if (received.substr(0, n) != kPrefix.substr(0, n) || received.size() >= max)
            return {StatusScan::Bad, 0};
        return {StatusScan::NeedMore, 0};
    }
    auto line = received.substr(0, nl);
    if (line.ends_with('\r'))
        line.remove_suffix(1);
    if (auto s = parse_status_line(line))
        return {StatusScan::Status, *s};
    return {StatusScan::Bad, 0};
}

std::string http_host(const Target& t, bool tls)
{
    if (t.config.host)
        return *t.config.host;
    uint16_t port = t.probe_port();
    const IpAddr& a = t.probe_address();
    std::string host = a.is_v4() ? a.str() : "[" + a.str() + "]";
    if (port != (tls ? 443 : 80))
        host += ":" + std::to_string(port);
    return host;
}

std::string http_request(const Target& t, bool tls)
{
    std::string req;
    req.reserve(128 + t.config.path.size());
    req += "GET ";
    req += t.config.path;
    req += " HTTP/1.1\r\nHost: ";
    req += http_host(t, tls);
    req += "\r\nUser-Agent: lbd-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    return req;
}

}  // namespace lbd::health
