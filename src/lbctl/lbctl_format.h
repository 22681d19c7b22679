// lbctl's output: lbd's answer in, the text lbctl prints and its exit code
// out (docs/control-protocol.md, docs/lbctl.md). Pure: no sockets, no
// printing. Tolerant of what it is given: a missing or oddly typed field
// prints as "-", never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lbctl {

struct Output {
    std::string out;  // for stdout
    std::string err;  // for stderr
    int exit_code = 0;
};

/// What lbctl prints for `response`, lbd's answer to `request`: tables (or
/// `response` as JSON when `json_out`) on stdout and exit 0 on ok: true;
/// "lbctl: <error>" on stderr and exit 1 on ok: false.
Output render(const nlohmann::ordered_json& request, const nlohmann::ordered_json& response, bool json_out);

/// Parses one response line. nullopt with `why` set unless it is a JSON
/// object with a boolean "ok".
std::optional<nlohmann::ordered_json> parse_response(std::string_view line, std::string& why);

/// "lbctl: cannot connect to PATH: <strerror> (hint)\n" for connect()'s errno.
std::string connect_error(std::string_view socket, int err);

// Building blocks, exposed for the tests.

/// Columns left-aligned, two spaces apart, no trailing blanks; rows[0] is
/// the header. Every line ends in '\n'.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

/// "key:  value" lines with the values aligned.
std::string format_fields(const std::vector<std::pair<std::string, std::string>>& fields);

/// 512 -> "512 B", 1536 -> "1.5 KiB", then MiB, GiB, TiB, PiB, EiB.
std::string format_bytes(uint64_t bytes);

/// 0 -> "0s", 65 -> "1m 5s", 90061 -> "1d 1h 1m 1s" (zero units left out).
std::string format_uptime(uint64_t seconds);

/// A JSON value as a table cell: strings as they are, numbers and booleans
/// in decimal, anything else (missing, null, objects) "-".
std::string cell(const nlohmann::ordered_json& obj, std::string_view key);

std::string format_status(const nlohmann::ordered_json& response);
std::string format_lb_list(const nlohmann::ordered_json& response);
std::string format_vip(const nlohmann::ordered_json& vip);  // the "vip" object of lb.show and friends
std::string format_reload(const nlohmann::ordered_json& response);

}  // namespace lbctl
