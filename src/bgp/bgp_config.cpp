#include "bgp/bgp_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>

#include "lbd/core/yaml_reader.h"

namespace lbd::bgp {

namespace {

constexpr Range kAs{1, UINT32_MAX};
constexpr Range kHoldTime{0, 65535};
constexpr Range kU32{0, UINT32_MAX};
constexpr Range kRestartTime{1, 4095};  // 12 bits in the capability
constexpr uint32_t kAsTrans = 23456;    // RFC 6793: never a real AS
constexpr size_t kMaxMd5 = 80;          // TCP_MD5SIG_MAXKEYLEN

const char* family_name(Family f)
{
    return f == Family::V4 ? "IPv4" : "IPv6";
}

bool unusable(const IpAddr& a)
{
    if (a == IpAddr{a.family, {}})
        return true;  // 0.0.0.0 or ::
    return a.is_v4() ? (a.bytes[0] & 0xf0) == 0xe0 : a.bytes[0] == 0xff;  // multicast
}

/// Digits only, no sign, at most `max`.
std::optional<uint32_t> number(std::string_view s, uint64_t max)
{
    if (s.empty() || s.size() > 10)
        return std::nullopt;
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v > max)
        return std::nullopt;
    return static_cast<uint32_t>(v);
}

const std::string kCommunitySyntax =
    "is not a community (A:B with 0..65535 each, or a large community A:B:C with 0..4294967295 each)";

class Reader {
public:
    Reader(YamlReader& r) : r_(r) {}

    std::optional<Community> community(const YAML::Node& n, const std::string& key)
    {
        auto s = r_.text(n, key, "a community such as 65001:100 or 65001:1:2");
        if (!s)
            return std::nullopt;
        auto c = Community::parse(*s);
        if (!c)
            r_.error(key, "'" + *s + "' " + kCommunitySyntax);
        return c;
    }

    std::optional<std::vector<Community>> communities(const YAML::Node& n, const std::string& key)
    {
        if (n.IsNull())
            return std::vector<Community>{};
        if (!n.IsSequence()) {
            r_.error(key, "must be a list of communities such as [\"65001:100\"]");
            return std::nullopt;
        }
        std::vector<Community> out;
        bool ok = true;
        for (size_t i = 0; i < n.size(); ++i) {
            auto item = at(key, i);
            r_.note_line(item, line_of(n[i]));
            if (auto c = community(n[i], item))
                out.push_back(*c);
            else
                ok = false;
        }
        if (!ok)
            return std::nullopt;
        return out;
    }

    void neighbor(const YAML::Node& node, const std::string& path, Neighbor& nb)
    {
        nb.line = line_of(node);
        r_.note_line(path, nb.line);
        auto f = r_.fields(node, path, {"address", "peer_as", "local_address", "md5_password", "passive", "families"});
        if (!f)
            return;
        if (auto n = r_.require(*f, path, "address"))
            if (auto a = r_.address(*n, path + ".address"))
                nb.address = *a;
        if (auto n = r_.require(*f, path, "peer_as"))
            r_.integer(*n, path + ".peer_as", kAs, nb.peer_as);
        if (auto n = find(*f, "local_address"))
            nb.local_address = r_.address(*n, path + ".local_address");
        if (auto n = find(*f, "md5_password"))
            if (auto s = r_.text(*n, path + ".md5_password", "a password"))
                nb.md5_password = *s;
        if (auto n = find(*f, "passive"))
            nb.passive = r_.boolean(*n, path + ".passive").value_or(false);
        if (auto n = find(*f, "families")) {
            families(*n, path + ".families", nb);
        } else {
            // The session's own family; local_address is checked against it later.
            nb.ipv4 = nb.address.is_v4();
            nb.ipv6 = !nb.address.is_v4();
        }
    }

    void families(const YAML::Node& n, const std::string& key, Neighbor& nb)
    {
        if (!n.IsSequence()) {
            r_.error(key, "must be a list of address families (ipv4, ipv6)");
            return;
        }
        for (size_t i = 0; i < n.size(); ++i) {
            auto item = at(key, i);
            r_.note_line(item, line_of(n[i]));
            auto s = r_.text(n[i], item, "ipv4 or ipv6");
            if (!s)
                continue;
            bool* flag = *s == "ipv4" ? &nb.ipv4 : *s == "ipv6" ? &nb.ipv6 : nullptr;
            if (!flag)
                r_.error(item, "unknown address family '" + *s + "' (supported: ipv4, ipv6)");
            else if (*flag)
                r_.error(item, "duplicate address family '" + *s + "'");
            else
                *flag = true;
        }
    }

    void section(const YAML::Node& node, const std::string& path, BgpConfig& cfg)
    {
        auto key = [&](std::string_view name) { return path + "." + std::string(name); };
        auto f = r_.fields(node, path,
                           {"exabgp", "local_as", "router_id", "local_address", "hold_time", "neighbors", "next_hop",
                            "next_hop_v6", "med", "communities", "maintenance_file", "maintenance_action",
                            "maintenance_med", "maintenance_community", "withdraw_quorum", "hold_down",
                            "graceful_restart"});
        if (!f)
            return;
        if (auto n = find(*f, "exabgp"))
            if (auto s = r_.text(*n, key("exabgp"), "a path"))
                cfg.exabgp = *s;
        if (auto n = r_.require(*f, path, "local_as"))
            r_.integer(*n, key("local_as"), kAs, cfg.local_as);
        if (auto n = r_.require(*f, path, "local_address"))
            if (auto a = r_.address(*n, key("local_address")))
                cfg.local_address = *a;
        if (auto n = find(*f, "router_id")) {
            if (auto a = r_.address(*n, key("router_id")))
                cfg.router_id = *a;
        } else if (cfg.local_address.is_v4()) {
            cfg.router_id = cfg.local_address;
        }
        if (auto n = find(*f, "hold_time"))
            r_.integer(*n, key("hold_time"), kHoldTime, cfg.hold_time);
        if (auto n = r_.require(*f, path, "neighbors")) {
            if (!n->IsSequence()) {
                if (!n->IsNull())
                    r_.error(key("neighbors"), "must be a list of neighbors");
            } else {
                for (size_t i = 0; i < n->size(); ++i)
                    neighbor((*n)[i], at(key("neighbors"), i), cfg.neighbors.emplace_back());
            }
        }
        if (auto n = find(*f, "next_hop"))
            if (auto s = r_.text(*n, key("next_hop"), "self or an IPv4 address")) {
                if (*s == "self")
                    cfg.next_hop = {};
                else if (auto a = IpAddr::parse(*s))
                    cfg.next_hop.address = *a;
                else
                    r_.error(key("next_hop"), "must be self or an IP address, not '" + *s + "'");
            }
        if (auto n = find(*f, "next_hop_v6"))
            cfg.next_hop_v6 = r_.address(*n, key("next_hop_v6"));
        if (auto n = find(*f, "med")) {
            uint32_t v = 0;
            r_.integer(*n, key("med"), kU32, v);
            cfg.med = v;
        }
        if (auto n = find(*f, "communities"))
            if (auto c = communities(*n, key("communities")))
                cfg.communities = std::move(*c);
        if (auto n = find(*f, "maintenance_file")) {
            if (n->IsNull())
                cfg.maintenance_file.clear();
            else if (auto s = r_.text(*n, key("maintenance_file"), "a path"))
                cfg.maintenance_file = *s;
        }
        if (auto n = find(*f, "maintenance_action"))
            if (auto s = r_.text(*n, key("maintenance_action"), "withdraw or depref")) {
                if (*s == "withdraw")
                    cfg.maintenance_action = MaintenanceAction::Withdraw;
                else if (*s == "depref")
                    cfg.maintenance_action = MaintenanceAction::Depref;
                else
                    r_.error(key("maintenance_action"), "must be withdraw or depref, not '" + *s + "'");
            }
        if (auto n = find(*f, "maintenance_med"))
            r_.integer(*n, key("maintenance_med"), kU32, cfg.maintenance_med);
        if (auto n = find(*f, "maintenance_community"))
            cfg.maintenance_community = community(*n, key("maintenance_community"));
        if (auto n = find(*f, "withdraw_quorum"))
            r_.integer(*n, key("withdraw_quorum"), kU32, cfg.withdraw_quorum);
        if (auto n = find(*f, "hold_down")) {
            if (n->IsScalar() && (n->Scalar() == "0" || n->Scalar() == "0s" || n->Scalar() == "0ms"))
                cfg.hold_down = std::chrono::milliseconds{0};
            else if (auto d = r_.duration(*n, key("hold_down")))
                cfg.hold_down = *d;
        }
        if (auto n = find(*f, "graceful_restart")) {
            uint32_t v = 0;
            r_.integer(*n, key("graceful_restart"), kRestartTime, v);
            cfg.graceful_restart = v;
        }
    }

    void vip(const YAML::Node& node, const std::string& path, VipBgp& out)
    {
        auto f = r_.fields(node, path, {"med", "communities", "withdraw_quorum"});
        if (!f)
            return;
        if (auto n = find(*f, "med")) {
            uint32_t v = 0;
            r_.integer(*n, path + ".med", kU32, v);
            out.med = v;
        }
        if (auto n = find(*f, "communities"))
            out.communities = communities(*n, path + ".communities");
        if (auto n = find(*f, "withdraw_quorum")) {
            uint32_t v = 0;
            r_.integer(*n, path + ".withdraw_quorum", kU32, v);
            out.withdraw_quorum = v;
        }
    }

private:
    YamlReader& r_;
};

/// Cross-field and range checks (see validate_bgp).
class Validator {
public:
    Validator(const std::string& path, const std::set<std::string, std::less<>>& failed)
        : path_(path), failed_(failed)
    {
    }

    std::vector<ConfigError> run(const BgpConfig& cfg, std::span<const VipRoute> vips)
    {
        exabgp(cfg.exabgp);
        if (ok("local_as"))
            as_number(key("local_as"), cfg.local_as);
        if (ok("local_address") && unusable(cfg.local_address))
            error(key("local_address"), "'" + cfg.local_address.str() + "' cannot be a session address");
        if (ok("router_id") && ok("local_address")) {
            if (!cfg.router_id.is_v4())
                error(key("router_id"), "must be an IPv4 address (a BGP identifier is 32 bits)");
            else if (cfg.router_id == IpAddr{})
                error(key("router_id"),
                      "must be a non-zero IPv4 address (it defaults to local_address only when that is IPv4)");
        }
        if (ok("hold_time") && ((cfg.hold_time > 0 && cfg.hold_time < 3) || cfg.hold_time > 65535))
            error(key("hold_time"), "must be 0 (no keepalives) or between 3 and 65535 seconds");
        neighbors(cfg);
        next_hops(cfg);
        if (ok("maintenance_file"))
            maintenance_file(cfg.maintenance_file);
        if (cfg.maintenance_action == MaintenanceAction::Depref && ok("maintenance_med") &&
            ok("maintenance_action")) {
            if (cfg.med && ok("med") && *cfg.med >= cfg.maintenance_med)
                error(key("maintenance_med"), "must be greater than med (" + std::to_string(*cfg.med) +
                                                  ") for depref to make this node less preferred");
            for (size_t i = 0; i < vips.size(); ++i)
                if (auto med = vips[i].bgp.med; med && *med >= cfg.maintenance_med && !bad(vip_key(i, "med")))
                    error(vip_key(i, "med"), "must be less than " + key("maintenance_med") + " (" +
                                                 std::to_string(cfg.maintenance_med) + ") for depref to work");
        }
        if (cfg.graceful_restart && ok("graceful_restart") &&
            (*cfg.graceful_restart < kRestartTime.lo || *cfg.graceful_restart > kRestartTime.hi))
            error(key("graceful_restart"), range_message(kRestartTime) + " seconds");
        vip_checks(cfg, vips);
        return std::move(errors_);
    }

private:
    const std::string& path_;
    const std::set<std::string, std::less<>>& failed_;
    std::vector<ConfigError> errors_;

    std::string key(std::string_view name) const { return path_ + "." + std::string(name); }
    static std::string vip_key(size_t i, std::string_view name)
    {
        return at("vips", i) + ".bgp" + (name.empty() ? "" : "." + std::string(name));
    }

    bool bad(std::string_view k) const
    {
        for (size_t i = 0; i <= k.size(); ++i)
            if ((i == k.size() || k[i] == '.' || k[i] == '[') && failed_.contains(k.substr(0, i)))
                return true;
        return false;
    }
    bool ok(std::string_view name) const { return !bad(key(name)); }

    void error(std::string k, std::string message) { errors_.push_back({std::move(k), 0, std::move(message)}); }

    void as_number(const std::string& k, uint32_t as)
    {
        if (as == 0)
            error(k, range_message(kAs));
        else if (as == kAsTrans)
            error(k, "23456 is AS_TRANS (RFC 6793), not a usable AS number");
    }

    void exabgp(const std::string& p)
    {
        if (!ok("exabgp"))
            return;
        struct stat st {};
        if (!p.starts_with('/'))
            error(key("exabgp"), "must be an absolute path, not '" + p + "'");
        else if (::stat(p.c_str(), &st) != 0)
            error(key("exabgp"), "'" + p + "' does not exist (install exabgp or set the path)");
        else if (!S_ISREG(st.st_mode) || ::access(p.c_str(), X_OK) != 0)
            error(key("exabgp"), "'" + p + "' is not an executable file");
    }

    void maintenance_file(const std::string& p)
    {
        if (p.empty())
            return;
        if (!p.starts_with('/'))
            error(key("maintenance_file"), "must be an absolute path");
        else if (p.ends_with('/') || p.find('\0') != p.npos || p.find('\n') != p.npos)
            error(key("maintenance_file"), "must name a file (no trailing '/', no newline)");
    }

    void neighbors(const BgpConfig& cfg)
    {
        auto base = key("neighbors");
        if (bad(base))
            return;
        if (cfg.neighbors.empty()) {
            error(base, "must list at least one neighbor");
            return;
        }
        std::map<IpAddr, size_t> seen;
        for (size_t i = 0; i < cfg.neighbors.size(); ++i) {
            const auto& nb = cfg.neighbors[i];
            auto p = at(base, i);
            auto k = [&](std::string_view name) { return p + "." + std::string(name); };
            bool addr_ok = !bad(k("address"));
            if (addr_ok) {
                if (unusable(nb.address))
                    error(k("address"), "'" + nb.address.str() + "' cannot be a neighbor address");
                else if (auto [it, fresh] = seen.emplace(nb.address, i); !fresh)
                    error(k("address"),
                          "duplicate neighbor " + nb.address.str() + " (also neighbors[" + std::to_string(it->second) + "])");
            }
            if (!bad(k("peer_as")))
                as_number(k("peer_as"), nb.peer_as);
            const IpAddr& local = nb.local_address ? *nb.local_address : cfg.local_address;
            auto local_key = nb.local_address ? k("local_address") : key("local_address");
            if (addr_ok && !bad(local_key)) {
                if (local.family != nb.address.family)
                    error(nb.local_address ? local_key : k("address"),
                          std::string(family_name(nb.address.family)) + " neighbor needs an " +
                              family_name(nb.address.family) + " local address (" + local.str() +
                              " is not): set " + k("local_address"));
                else if (local == nb.address)
                    error(k("address"), "is the local address itself");
                else if (nb.local_address && unusable(local))
                    error(local_key, "'" + local.str() + "' cannot be a session address");
            }
            if (!bad(k("md5_password")) && !nb.md5_password.empty() && !valid_md5_password(nb.md5_password))
                error(k("md5_password"), "must be 1 to 80 characters from letters, digits and !$%&*+-./:<=>?@^_|~");
            if (!bad(k("families"))) {
                if (!nb.ipv4 && !nb.ipv6)
                    error(k("families"), "must list ipv4, ipv6 or both");
                if (addr_ok && nb.ipv6 && nb.address.is_v4() && !cfg.next_hop_v6 && ok("next_hop_v6"))
                    error(k("families"), "IPv6 routes over an IPv4 session need an explicit IPv6 next hop: set " +
                                             key("next_hop_v6"));
                if (addr_ok && nb.ipv4 && !nb.address.is_v4() && cfg.next_hop.self() && ok("next_hop"))
                    error(k("families"), "IPv4 routes over an IPv6 session need an explicit IPv4 next hop: set " +
                                             key("next_hop") + " to an address");
            }
        }
    }

    void next_hops(const BgpConfig& cfg)
    {
        if (ok("next_hop") && cfg.next_hop.address) {
            if (!cfg.next_hop.address->is_v4())
                error(key("next_hop"), "must be self or an IPv4 address (IPv6 routes use next_hop_v6)");
            else if (unusable(*cfg.next_hop.address))
                error(key("next_hop"), "'" + cfg.next_hop.str() + "' cannot be a next hop");
        }
        if (ok("next_hop_v6") && cfg.next_hop_v6) {
            if (cfg.next_hop_v6->is_v4())
                error(key("next_hop_v6"), "must be an IPv6 address");
            else if (unusable(*cfg.next_hop_v6))
                error(key("next_hop_v6"), "'" + cfg.next_hop_v6->str() + "' cannot be a next hop");
        }
    }

    void vip_checks(const BgpConfig& cfg, std::span<const VipRoute> vips)
    {
        if (bad(key("neighbors")))
            return;
        std::map<IpAddr, size_t> first;
        for (size_t i = 0; i < vips.size(); ++i) {
            const auto& v = vips[i];
            auto family = v.address.family;
            bool carried = std::any_of(cfg.neighbors.begin(), cfg.neighbors.end(),
                                       [&](const Neighbor& nb) { return nb.carries(family); });
            if (!carried && !cfg.neighbors.empty())
                error(at("vips", i), "VIP " + v.name + " is " + family_name(family) + " but no neighbor in " +
                                         key("neighbors") + " carries " + (family == Family::V4 ? "ipv4" : "ipv6") +
                                         " (add it to a neighbor's families)");
            auto [it, fresh] = first.emplace(v.address, i);
            if (fresh)
                continue;
            const auto& o = vips[it->second];
            auto also = " than vips[" + std::to_string(it->second) + "] (" + o.name + ") on the same address " +
                        v.address.str() + ": VIPs sharing an address share one route";
            if (v.bgp.med != o.bgp.med && !bad(vip_key(i, "med")))
                error(vip_key(i, "med"), "differs" + also);
            if (v.bgp.communities != o.bgp.communities && !bad(vip_key(i, "communities")))
                error(vip_key(i, "communities"), "differ" + also);
        }
    }
};

}  // namespace

std::optional<Community> Community::parse(std::string_view text)
{
    std::array<std::string_view, 3> parts;
    size_t n = 0;
    while (true) {
        auto colon = text.find(':');
        if (n == parts.size())
            return std::nullopt;
        parts[n++] = text.substr(0, colon);
        if (colon == text.npos)
            break;
        text.remove_prefix(colon + 1);
    }
    if (n < 2)
        return std::nullopt;
    Community c;
    c.large = n == 3;
    uint64_t max = c.large ? UINT32_MAX : 65535;
    auto a = number(parts[0], max), b = number(parts[1], max);
    auto d = c.large ? number(parts[2], max) : std::optional<uint32_t>{0};
    if (!a || !b || !d)
        return std::nullopt;
    c.global = *a;
    c.local1 = *b;
    c.local2 = *d;
    return c;
}

std::string Community::str() const
{
    auto s = std::to_string(global) + ":" + std::to_string(local1);
    return large ? s + ":" + std::to_string(local2) : s;
}

std::string to_string(MaintenanceAction a)
{
    return a == MaintenanceAction::Depref ? "depref" : "withdraw";
}

bool BgpConfig::same_sessions(const BgpConfig& o) const
{
    return exabgp == o.exabgp && local_as == o.local_as && router_id == o.router_id &&
           local_address == o.local_address && hold_time == o.hold_time && neighbors == o.neighbors &&
           graceful_restart == o.graceful_restart;
}

Prefix host_prefix(const IpAddr& a)
{
    return Prefix{a, a.is_v4() ? 32 : 128};
}

bool valid_md5_password(std::string_view s)
{
    static constexpr std::string_view kPunct = "!$%&*+-./:<=>?@^_|~";
    return !s.empty() && s.size() <= kMaxMd5 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               kPunct.find(c) != kPunct.npos;
    });
}

void read_bgp(YamlReader& r, const YAML::Node& n, const std::string& path, BgpConfig& out)
{
    out.enabled = true;
    Reader(r).section(n, path, out);
}

void read_vip_bgp(YamlReader& r, const YAML::Node& n, const std::string& path, VipBgp& out)
{
    Reader(r).vip(n, path, out);
}

std::vector<ConfigError> validate_bgp(const BgpConfig& cfg, const std::string& path, std::span<const VipRoute> vips,
                                      const std::set<std::string, std::less<>>& failed)
{
    if (!cfg.enabled)
        return {};
    return Validator(path, failed).run(cfg, vips);
}

void validate_bgp(YamlReader& r, const BgpConfig& cfg, const std::string& path, std::span<const VipRoute> vips)
{
    for (auto& e : validate_bgp(cfg, path, vips, r.failed)) {
        e.line = r.line_for(e.key);
        r.errors.push_back(std::move(e));
    }
}

}  // namespace lbd::bgp
