// The `bgp:` section (route health injection through ExaBGP) and the `bgp:`
// key a VIP may carry. Reading and validation; everything that later ends up
// in ExaBGP's configuration or API is checked here, so nothing the operator
// writes can inject ExaBGP syntax. Pure apart from one check that the ExaBGP
// program exists and is executable.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/addr.h"
#include "lbd/core/config_error.h"

namespace lbd {
class YamlReader;
}

namespace lbd::bgp {

/// A BGP community: standard "A:B" (RFC 1997, 16 bits each) or large
/// "A:B:C" (RFC 8092, 32 bits each).
struct Community {
    bool large = false;
    uint32_t global = 0;  ///< A
    uint32_t local1 = 0;  ///< B
    uint32_t local2 = 0;  ///< C (large only)

    static std::optional<Community> parse(std::string_view text);
    std::string str() const;
    auto operator<=>(const Community&) const = default;
};

/// Where announced routes point: this speaker's session address or a fixed address.
struct NextHop {
    std::optional<IpAddr> address;  ///< unset = "self"

    bool self() const { return !address; }
    std::string str() const { return address ? address->str() : "self"; }
    bool operator==(const NextHop&) const = default;
};

enum class MaintenanceAction : uint8_t { Withdraw, Depref };
std::string to_string(MaintenanceAction a);

struct Neighbor {
    IpAddr address;
    uint32_t peer_as = 0;
    std::optional<IpAddr> local_address;  ///< unset = BgpConfig::local_address
    std::string md5_password;              ///< empty = no TCP MD5
    bool passive = false;                  ///< wait for the router to connect (ExaBGP listens on port 179)
    bool ipv4 = false;                     ///< address families carried; after reading at least one is set
    bool ipv6 = false;
    int line = 0;

    bool carries(Family f) const { return f == Family::V4 ? ipv4 : ipv6; }
    bool operator==(const Neighbor&) const = default;
};

/// Session parameters, route attributes and the announcement policy.
struct BgpConfig {
    bool enabled = false;  ///< the section is present
    std::string exabgp = "/usr/sbin/exabgp";
    uint32_t local_as = 0;
    IpAddr router_id;      ///< IPv4; defaults to local_address when that is IPv4
    IpAddr local_address;  ///< source of the sessions (a neighbor may override)
    uint32_t hold_time = 9;  ///< seconds; 0 (no keepalives) or 3..65535
    std::vector<Neighbor> neighbors;

    NextHop next_hop;                    ///< for IPv4 routes
    std::optional<IpAddr> next_hop_v6;   ///< for IPv6 routes; unset = self (IPv6 sessions only)
    std::optional<uint32_t> med;
    std::vector<Community> communities;

    std::string maintenance_file = "/etc/lb/disable";  ///< empty = no maintenance file
    MaintenanceAction maintenance_action = MaintenanceAction::Withdraw;
    uint32_t maintenance_med = 1000;                ///< depref: the MED announced instead
    std::optional<Community> maintenance_community;  ///< depref: added to the communities

    uint32_t withdraw_quorum = 1;  ///< fewer healthy backends than this: withdraw
    std::chrono::milliseconds hold_down{5000};
    std::optional<uint32_t> graceful_restart;  ///< restart time (s) offered to the routers

    bool operator==(const BgpConfig&) const = default;
    /// Same ExaBGP configuration file (sessions, program): no restart needed
    /// when only announcement attributes or the policy differ.
    bool same_sessions(const BgpConfig& o) const;
};

/// A VIP's own `bgp:` key: overrides of the global attributes and quorum.
struct VipBgp {
    std::optional<uint32_t> med;
    std::optional<std::vector<Community>> communities;  ///< replaces the global list
    std::optional<uint32_t> withdraw_quorum;            ///< 0 = never withdrawn for health

    bool operator==(const VipBgp&) const = default;
};

/// A VIP as route injection sees it (config order; errors name vips[i]).
struct VipRoute {
    std::string name;
    IpAddr address;
    VipBgp bgp;
};

/// The /32 or /128 a VIP address is announced as.
Prefix host_prefix(const IpAddr& a);

/// Reads a `bgp:` mapping at `path` into `out` (defaults for keys left out).
/// Syntax errors go to `r` with key path and line; keys whose value could not
/// be read go to r.failed. Sets out.enabled.
void read_bgp(YamlReader& r, const YAML::Node& n, const std::string& path, BgpConfig& out);

/// Reads a VIP's `bgp:` mapping (med, communities, withdraw_quorum) at `path`
/// (e.g. "vips[0].bgp").
void read_vip_bgp(YamlReader& r, const YAML::Node& n, const std::string& path, VipBgp& out);

/// Checks ranges and across fields: neighbors, AS numbers, addresses and
/// their families, next hops, hold time, MD5 passwords, communities, the
/// ExaBGP program; with `vips`, that every VIP's family has a neighbor and
/// that VIPs sharing an address agree on their attributes. Errors carry the
/// key path and line 0; checks reading a key in `failed` are skipped.
std::vector<ConfigError> validate_bgp(const BgpConfig& cfg, const std::string& path,
                                      std::span<const VipRoute> vips = {},
                                      const std::set<std::string, std::less<>>& failed = {});

/// validate_bgp with r.failed, appending to r.errors with the lines r knows.
void validate_bgp(YamlReader& r, const BgpConfig& cfg, const std::string& path,
                  std::span<const VipRoute> vips = {});

/// 1 to 80 characters from letters, digits and !$%&*+-./:<=>?@^_|~ (all of
/// which ExaBGP's tokenizer keeps inside one word).
bool valid_md5_password(std::string_view s);

}  // namespace lbd::bgp
