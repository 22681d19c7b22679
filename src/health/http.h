// The HTTP side of the http/https probes: the request, and the status line of
// the response. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "health/probe.h"

namespace lbd::health {

/// "HTTP/1.1 200 OK" (also "HTTP/1.0 503", no reason phrase) -> the code;
/// nullopt when it is not a status line. No CR/LF in `line`.
std::optional<int> parse_status_line(std::string_view line);

/// The status code in the first bytes of a response.
struct StatusScan {
    enum Kind { NeedMore, Bad, Status } kind = NeedMore;
    int status = 0;
};
/// NeedMore until a full first line has arrived; Bad when it is not a status
/// line or `received` reached `max` bytes without a line end.
StatusScan scan_status(std::string_view received, size_t max);

/// Host header: config.host, else the address ("[v6]" form) with ":port"
/// unless the port is the scheme's default.
std::string http_host(const Target& t, bool tls);

/// "GET <path> HTTP/1.1" with Host, User-Agent, Accept, Connection: close.
std::string http_request(const Target& t, bool tls);

}  // namespace lbd::health
