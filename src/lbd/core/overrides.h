// Live changes made through lbctl, and how they combine with the config file.
// Pure: JSON text in and out, no files, no sockets.
//
// The running VIP set is the config file's VIPs, minus those lbctl deleted,
// with every VIP lbctl created or changed replaced by lbctl's version (a
// whole VIP at a time). Reloading the config keeps lbctl's versions.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lbd/core/config.h"
#include "lbd/core/lb_state.h"

namespace lbd {

struct Overrides {
    std::map<std::string, VipConfig> vips;  // created or changed by lbctl
    std::set<std::string> deleted;          // config VIPs deleted by lbctl
};

enum class VipSource { Config, Lbctl, ConfigAndLbctl };
std::string to_string(VipSource s);

struct EffectiveVip {
    VipConfig vip;
    VipSource source;
};

/// The VIPs lbd should serve: config order first, then lbctl-only VIPs by name.
std::vector<EffectiveVip> effective_vips(const std::vector<VipConfig>& config, const Overrides& o);
std::vector<VipConfig> vips_of(const std::vector<EffectiveVip>& e);

/// A backend as lbctl writes it: "A", "A:PORT", "A:PORT:WEIGHT", "[A6]:PORT:WEIGHT"
/// (an IPv6 address without brackets takes no port). A missing port is the
/// VIP's, a missing weight 1. Returns an error message instead on bad input.
struct BackendSpec {
    IpAddr address;
    std::optional<uint16_t> port;
    std::optional<uint32_t> weight;
};
std::variant<BackendSpec, std::string> parse_backend_spec(const std::string& text);

nlohmann::json to_json(const VipConfig& v);
VipConfig vip_from_json(const nlohmann::json& j);  // throws on bad input
nlohmann::json to_json(const Overrides& o);
Overrides overrides_from_json(const nlohmann::json& j);

/// What lbd saves next to the overrides so a restarted lbd can adopt the
/// pinned maps: every VIP's id and every backend's id and generation.
nlohmann::json to_json(const std::map<std::string, VipState>& vips);
std::vector<VipState> vip_states_from_json(const nlohmann::json& j);

}  // namespace lbd
