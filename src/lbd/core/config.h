// lbd's configuration model, its YAML loader and its validation. Pure: no
// libbpf, no sockets. Every error names the key path and the line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/addr.h"
#include "lbd/core/config_error.h"
#include "bgp/bgp_config.h"
#include "health/health_config.h"

namespace lbd {

enum class Protocol : uint8_t { Tcp = 6, Udp = 17 };
enum class XdpMode { Auto, Native, Generic };
/// How a VIP picks the backend of a new flow (docs/scheduling.md).
enum class Algorithm { Maglev, RoundRobin, Weighted, LeastConn, SourceHash, Failover };

std::string to_string(Protocol p);
std::string to_string(XdpMode m);
std::string to_string(Algorithm a);
/// "maglev", "round-robin", ...; nullopt for an unknown name.
std::optional<Algorithm> parse_algorithm(std::string_view name);
/// The names parse_algorithm() knows, for error messages: "maglev, round-robin, ...".
std::string algorithm_names();
/// Algorithms that read the VIP's Maglev ring (no limit on backends).
inline bool uses_ring(Algorithm a) { return a == Algorithm::Maglev || a == Algorithm::SourceHash; }

/// LVS-style persistence: a client's new flows go to the backend of its
/// earlier ones while it keeps sending within `timeout`.
struct Persistence {
    std::chrono::milliseconds timeout{300'000};
    std::optional<int> netmask;    // IPv4 prefix length grouping clients (default 32)
    std::optional<int> prefix_v6;  // IPv6 prefix length (default 128)
    int line = 0;
    bool operator==(const Persistence& o) const
    {
        return timeout == o.timeout && netmask == o.netmask && prefix_v6 == o.prefix_v6;
    }
};

struct BackendConfig {
    IpAddr address;
    uint16_t port = 0;     // always equal to the VIP's port after loading
    uint32_t weight = 1;   // 0 = drain
    bool sorry = false;    // serves only when no other backend of the VIP is up
    std::optional<uint16_t> health_port;  // probe this port instead of the VIP's
    int line = 0;          // 1-based line in the config file, 0 if not from a file
};

struct VipConfig {
    std::string name;
    IpAddr address;
    uint16_t port = 0;
    Protocol protocol = Protocol::Tcp;
    Algorithm algorithm = Algorithm::Maglev;
    std::optional<Persistence> persistence;  // none: each flow scheduled on its own
    bool one_packet = false;                 // UDP: every datagram scheduled, no connection table
    std::optional<health::HealthConfig> health;  // none: backends count as up
    bgp::VipBgp bgp;                              // route injection overrides
    std::vector<BackendConfig> backends;
    int line = 0;
};

/// A range of socket marks: every mark m with (m & mask) == value, m != value.
/// The mask is leading ones and the marks differ in the low bits it leaves
/// free ("0x4c420000/0xffff0000": 0x4c420001 to 0x4c42ffff).
struct MarkRange {
    uint32_t value = 0x4c420000;  // "LB"
    uint32_t mask = 0xffff0000;

    /// "0x4c420000/0xffff0000" (hex or decimal); syntax only, see problem().
    static std::optional<MarkRange> parse(std::string_view text);
    std::string str() const;
    /// Why this is not a usable range, or empty.
    std::string problem() const;
    /// How many marks it holds (value + 1 to value + capacity()).
    uint32_t capacity() const { return ~mask; }
    /// The i-th mark, 1 <= i <= capacity().
    uint32_t mark(uint32_t i) const { return value | i; }
    bool operator==(const MarkRange&) const = default;
};

struct DatapathConfig {
    std::vector<std::string> interfaces;
    XdpMode xdp_mode = XdpMode::Auto;
    uint32_t conntrack_size = 1048576;
    uint32_t maglev_ring_size = 65537;
    uint32_t hash_seed = 0x5eed;
    std::string pin_path = "/sys/fs/bpf/lbd";
    std::optional<Prefix> encap_source_v4;
    std::optional<Prefix> encap_source_v6;
    uint32_t max_vips = 256;        // sizes of the BPF maps
    uint32_t max_backends = 4096;
    MarkRange probe_marks;          // `via: tunnel` health probes (docs/health.md#via)
};

struct ControlConfig {
    std::string socket = "/run/lbd/lbd.sock";
    std::string group;                     // empty: root's group
    std::string state_dir = "/var/lib/lbd";  // where live changes persist
};

struct Config {
    DatapathConfig datapath;
    ControlConfig control;
    bgp::BgpConfig bgp;  // bgp.enabled: the section is present
    std::vector<VipConfig> vips;
};


using ConfigResult = std::variant<Config, std::vector<ConfigError>>;

/// Parses and validates YAML text. All errors found are returned, not just the first.
ConfigResult load_config_string(const std::string& yaml_text);
/// Reads FILE and calls load_config_string; an unreadable file is one error.
ConfigResult load_config_file(const std::string& path);
/// Cross-field checks on an already built model (also used for live changes later).
std::vector<ConfigError> validate(const Config& cfg);

}  // namespace lbd
