// lbd's configuration model, its YAML loader and its validation. Pure: no
// libbpf, no sockets. Every error names the key path and the line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/addr.h"

namespace lbd {

enum class Protocol : uint8_t { Tcp = 6, Udp = 17 };
enum class XdpMode { Auto, Native, Generic };
enum class Algorithm { Maglev };

std::string to_string(Protocol p);
std::string to_string(XdpMode m);
std::string to_string(Algorithm a);

struct BackendConfig {
    IpAddr address;
    uint16_t port = 0;     // always equal to the VIP's port after loading
    uint32_t weight = 1;   // 0 = drain
    int line = 0;          // 1-based line in the config file, 0 if not from a file
};

struct VipConfig {
    std::string name;
    IpAddr address;
    uint16_t port = 0;
    Protocol protocol = Protocol::Tcp;
    Algorithm algorithm = Algorithm::Maglev;
    std::vector<BackendConfig> backends;
    int line = 0;
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
};

struct ControlConfig {
    std::string socket = "/run/lbd/lbd.sock";
    std::string group;                     // empty: root's group
    std::string state_dir = "/var/lib/lbd";  // where live changes persist
};

struct Config {
    DatapathConfig datapath;
    ControlConfig control;
    std::vector<VipConfig> vips;
};

struct ConfigError {
    std::string key;      // e.g. "vips[0].backends[1].port"
    int line = 0;         // 1-based; 0 when not known
    std::string message;
    /// "FILE:LINE: KEY: MESSAGE" (FILE and LINE left out when unknown).
    std::string str(const std::string& file = {}) const;
};

using ConfigResult = std::variant<Config, std::vector<ConfigError>>;

/// Parses and validates YAML text. All errors found are returned, not just the first.
ConfigResult load_config_string(const std::string& yaml_text);
/// Reads FILE and calls load_config_string; an unreadable file is one error.
ConfigResult load_config_file(const std::string& path);
/// Cross-field checks on an already built model (also used for live changes later).
std::vector<ConfigError> validate(const Config& cfg);

}  // namespace lbd
