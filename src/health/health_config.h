// The `health:` section of a VIP: which probe to run against every backend,
// how often, and when a backend counts as up or down. Pure: yaml-cpp only.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lbd/core/config_error.h"

namespace lbd {
class YamlReader;
}

namespace lbd::health {

enum class CheckType : uint8_t { Tcp, Http, Https, Udp, Dns, Icmp, Exec };
enum class Via : uint8_t { Direct, Tunnel };

std::string to_string(CheckType t);
std::string to_string(Via v);
std::optional<CheckType> parse_check_type(std::string_view s);

/// An HTTP status code or an inclusive range of them ("200", "200-399").
struct StatusRange {
    uint16_t lo = 200;
    uint16_t hi = 299;

    /// "200" or "200-399"; syntax only (100..599 and lo <= hi are validated).
    static std::optional<StatusRange> parse(std::string_view text);
    bool contains(int status) const { return status >= lo && status <= hi; }
    std::string str() const;
    bool operator==(const StatusRange&) const = default;
};

/// DNS query types by name: A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, ANY,
/// or TYPEnnn; nullopt if unknown.
std::optional<uint16_t> parse_dns_type(std::string_view s);
std::string dns_type_name(uint16_t type);

struct HealthConfig {
    CheckType type = CheckType::Tcp;
    std::optional<uint16_t> port;  ///< probe port; unset = the VIP's (or the backend's) port
    std::chrono::milliseconds interval{10'000};
    std::chrono::milliseconds timeout{3'000};
    uint32_t unhealthy_threshold = 3;  ///< consecutive failures before down
    uint32_t healthy_threshold = 2;    ///< consecutive successes before up

    // http, https
    std::string path = "/";
    StatusRange expect_status;
    std::optional<std::string> host;  ///< Host header and TLS SNI; unset = the backend address
    bool tls_verify = false;          ///< https: verify the certificate (chain and host/IP)

    // udp
    std::string payload;                ///< sent as is (may be empty)
    std::optional<std::string> expect;  ///< the reply must contain it; unset = any reply

    // dns
    std::string query_name;
    uint16_t query_type = 1;  ///< A

    // exec
    std::vector<std::string> command;  ///< argv; [0] is looked up in PATH if it has no '/'

    // tcp
    bool half_open = false;  ///< a SYN from a raw socket, SYN-ACK = healthy; no connection is made

    Via via = Via::Direct;

    bool operator==(const HealthConfig&) const = default;
};

/// Reads a `health:` mapping at `path` (e.g. "vips[0].health") into `out`,
/// which holds the defaults for keys left out (a null node: all defaults). Unknown keys, keys that do not
/// apply to the type, bad values: errors in `r` with key path and line; keys
/// whose value could not be read go to r.failed.
void read_health(YamlReader& r, const YAML::Node& n, const std::string& path, HealthConfig& out);

/// Checks across fields (timeout < interval, thresholds >= 1, status range,
/// exec command, dns name, ...). Errors carry the key path, line 0. Checks
/// that read a key in `failed` (or under it) are skipped: the model holds a
/// default there, not what the file said.
std::vector<ConfigError> validate_health(const HealthConfig& cfg, const std::string& path,
                                         const std::set<std::string, std::less<>>& failed = {});

/// validate_health with r.failed, appending to r.errors with the lines r knows.
void validate_health(YamlReader& r, const HealthConfig& cfg, const std::string& path);

}  // namespace lbd::health
