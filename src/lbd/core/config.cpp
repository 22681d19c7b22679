#include "lbd/core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <tuple>

#include "common/maglev.h"
#include "lbd/core/yaml_reader.h"
#include "lbd_shared.h"

namespace lbd {

std::string to_string(Protocol p)
{
    return p == Protocol::Tcp ? "tcp" : "udp";
}

std::string to_string(XdpMode m)
{
    switch (m) {
    case XdpMode::Native: return "native";
    case XdpMode::Generic: return "generic";
    case XdpMode::Auto: break;
    }
    return "auto";
}

namespace {
constexpr std::pair<Algorithm, std::string_view> kAlgorithms[] = {
    {Algorithm::Maglev, "maglev"},         {Algorithm::RoundRobin, "round-robin"},
    {Algorithm::Weighted, "weighted"},     {Algorithm::LeastConn, "least-conn"},
    {Algorithm::SourceHash, "source-hash"}, {Algorithm::Failover, "failover"},
};
}  // namespace

std::string to_string(Algorithm a)
{
    for (const auto& [alg, name] : kAlgorithms)
        if (alg == a)
            return std::string(name);
    return "maglev";
}

std::optional<Algorithm> parse_algorithm(std::string_view name)
{
    for (const auto& [alg, n] : kAlgorithms)
        if (n == name)
            return alg;
    return std::nullopt;
}

std::string algorithm_names()
{
    std::string out;
    for (const auto& [alg, name] : kAlgorithms)
        out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

std::optional<MarkRange> MarkRange::parse(std::string_view text)
{
    auto number = [](std::string_view t) -> std::optional<uint32_t> {
        int base = 10;
        if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
            t.remove_prefix(2);
            base = 16;
        }
        uint32_t v = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v, base);
        if (t.empty() || ec != std::errc{} || end != t.data() + t.size())
            return std::nullopt;
        return v;
    };
    auto slash = text.find('/');
    if (slash == text.npos)
        return std::nullopt;
    auto value = number(text.substr(0, slash));
    auto mask = number(text.substr(slash + 1));
    if (!value || !mask)
        return std::nullopt;
    return MarkRange{*value, *mask};
}

std::string MarkRange::str() const
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%08x/0x%08x", value, mask);
    return buf;
}

std::string MarkRange::problem() const
{
    const uint32_t free = ~mask;
    if ((free & (free + 1)) != 0)
        return "the mask must be leading ones then zeros (such as 0xffff0000), not " + str().substr(11);
    if (free == 0)
        return "the mask leaves no bit free: the range holds no mark";
    if ((value & free) != 0)
        return "the value has bits outside the mask";
    if (value == 0)
        return "the value must not be 0: the range would hold the small marks other tools use";
    return {};
}

std::string ConfigError::str(const std::string& file) const
{
    std::string out;
    if (!file.empty())
        out += file + ":";
    if (line > 0)
        out += std::to_string(line) + ":";
    if (!out.empty())
        out += " ";
    if (!key.empty())
        out += key + ": ";
    return out + message;
}

namespace {

constexpr Range kConntrackSize{1, 1u << 28};
constexpr Range kRingSize{3, 1u << 24};
constexpr Range kHashSeed{0, UINT32_MAX};
constexpr Range kMaxVips{1, 65536};
constexpr Range kMaxBackends{1, 1u << 20};
constexpr Range kPort{1, 65535};
constexpr Range kWeight{0, 65535};
constexpr Range kPersistNetmask{1, 32};
constexpr Range kPersistPrefixV6{1, 128};
constexpr std::chrono::milliseconds kPersistTimeoutMin{1000};
constexpr std::chrono::milliseconds kPersistTimeoutMax{86'400'000};
constexpr uint64_t kMaxRingSlots = 1ull << 31;  // all rings together: max_vips * ring size
constexpr int kMinEncapPrefixV4 = 8;
constexpr int kMinEncapPrefixV6 = 32;

// Top-level sections that later versions of lbd will read. Until a section
// gets a parser, its presence is an error. To add one: move it from here to
// the known keys in Loader::load and parse it there.
constexpr std::array<std::string_view, 2> kReservedSections{"health", "metrics"};

bool valid_ifname(const std::string& s)
{
    return !s.empty() && s.size() <= 15 && std::none_of(s.begin(), s.end(), [](unsigned char c) {
        return c == '/' || std::isspace(c);
    });
}

bool valid_vip_name(const std::string& s)
{
    return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '.' || c == '-';
    });
}

/// Model checks. A check that reads a key the loader already reported (or a
/// key under one) is skipped: the model holds a default there, not the value.
class Validator {
    const ControlConfig* cfg_control_ = nullptr;

public:
    explicit Validator(std::set<std::string, std::less<>> failed = {}) : failed_(std::move(failed)) {}

    std::vector<ConfigError> run(const Config& cfg)
    {
        cfg_control_ = &cfg.control;
        datapath(cfg.datapath);
        const auto& dp = cfg.datapath;
        if (!bad("datapath.max_vips") && cfg.vips.size() > dp.max_vips)
            error("vips", 0, std::to_string(cfg.vips.size()) + " VIPs but datapath.max_vips is " +
                                 std::to_string(dp.max_vips));
        size_t backends = 0;
        for (const auto& vip : cfg.vips)
            backends += vip.backends.size();
        if (!bad("datapath.max_backends") && backends > dp.max_backends)
            error("vips", 0, std::to_string(backends) + " backends in total but datapath.max_backends is " +
                                 std::to_string(dp.max_backends));
        vips(cfg.vips);
        probe_marks(cfg);
        if (cfg.bgp.enabled) {
            std::vector<bgp::VipRoute> routes;
            for (const auto& v : cfg.vips)
                routes.push_back({v.name, v.address, v.bgp});
            for (auto& e : bgp::validate_bgp(cfg.bgp, "bgp", routes, failed_))
                errors_.push_back(std::move(e));
        }
        return std::move(errors_);
    }

private:
    std::set<std::string, std::less<>> failed_;
    std::vector<ConfigError> errors_;

    bool bad(std::string_view key) const
    {
        for (size_t i = 0; i <= key.size(); ++i)
            if ((i == key.size() || key[i] == '.' || key[i] == '[') && failed_.contains(key.substr(0, i)))
                return true;
        return false;
    }

    void error(std::string key, int line, std::string message)
    {
        errors_.push_back({std::move(key), line, std::move(message)});
    }

    /// True when the value is known and in range.
    bool range(const std::string& key, uint64_t v, Range r, int line = 0)
    {
        if (bad(key))
            return false;
        if (v >= r.lo && v <= r.hi)
            return true;
        error(key, line, range_message(r));
        return false;
    }

    void datapath(const DatapathConfig& dp)
    {
        if (!bad("datapath.interfaces")) {
            if (dp.interfaces.empty())
                error("datapath.interfaces", 0, "must list at least one interface");
            std::set<std::string_view> seen;
            for (size_t i = 0; i < dp.interfaces.size(); ++i) {
                const auto& name = dp.interfaces[i];
                auto key = at("datapath.interfaces", i);
                if (bad(key))
                    continue;
                if (!valid_ifname(name))
                    error(key, 0, "'" + name + "' is not an interface name (1 to 15 characters, no '/' or whitespace)");
                else if (!seen.insert(name).second)
                    error(key, 0, "duplicate interface '" + name + "'");
            }
        }
        range("datapath.conntrack_size", dp.conntrack_size, kConntrackSize);
        bool ring_ok = range("datapath.maglev_ring_size", dp.maglev_ring_size, kRingSize);
        if (ring_ok && !maglev::is_prime(dp.maglev_ring_size)) {
            error("datapath.maglev_ring_size", 0, "must be a prime number (e.g. 65537 or 131071)");
            ring_ok = false;
        }
        bool vips_ok = range("datapath.max_vips", dp.max_vips, kMaxVips);
        range("datapath.max_backends", dp.max_backends, kMaxBackends);
        if (ring_ok && vips_ok && uint64_t{dp.maglev_ring_size} * dp.max_vips > kMaxRingSlots)
            error("datapath.maglev_ring_size", 0,
                  "maglev_ring_size * max_vips = " + std::to_string(uint64_t{dp.maglev_ring_size} * dp.max_vips) +
                      " ring slots, more than the limit of " + std::to_string(kMaxRingSlots) +
                      "; lower maglev_ring_size or datapath.max_vips");

        if (!bad("datapath.pin_path")) {
            const auto& p = dp.pin_path;
            if (!p.starts_with('/'))
                error("datapath.pin_path", 0, "must be an absolute path");
            else if (p == "/.." || p.ends_with("/..") || p.find("/../") != p.npos)
                error("datapath.pin_path", 0, "must not contain '..'");
        }
        for (auto [key, path] : {std::pair{"control.socket", &cfg_control_->socket},
                                 std::pair{"control.state_dir", &cfg_control_->state_dir}})
            if (!bad(key) && !path->starts_with('/'))
                error(key, 0, "must be an absolute path");
        if (!bad("control.group") && cfg_control_->group.find_first_of(" /:\n") != std::string::npos)
            error("control.group", 0, "'" + cfg_control_->group + "' is not a group name");
        if (!bad("datapath.probe_marks"))
            if (auto why = dp.probe_marks.problem(); !why.empty())
                error("datapath.probe_marks", 0, "'" + dp.probe_marks.str() + "': " + why);
        encap_source("datapath.encap_source_v4", dp.encap_source_v4, Family::V4, kMinEncapPrefixV4);
        encap_source("datapath.encap_source_v6", dp.encap_source_v6, Family::V6, kMinEncapPrefixV6);
    }

    /// Every backend probed `via: tunnel` needs a mark of its own.
    void probe_marks(const Config& cfg)
    {
        const auto& r = cfg.datapath.probe_marks;
        if (bad("datapath.probe_marks") || !r.problem().empty())
            return;
        std::set<IpAddr> tunnelled;
        for (const auto& vip : cfg.vips)
            if (vip.health && vip.health->via == health::Via::Tunnel)
                for (const auto& be : vip.backends)
                    tunnelled.insert(be.address);
        if (tunnelled.size() > r.capacity())
            error("datapath.probe_marks", 0,
                  std::to_string(tunnelled.size()) + " backends are probed via tunnel, but " + r.str() +
                      " holds " + std::to_string(r.capacity()) + " marks (one per backend)");
    }

    void encap_source(const std::string& key, const std::optional<Prefix>& p, Family family, int min_len)
    {
        if (!p || bad(key))
            return;
        const char* name = family == Family::V4 ? "IPv4" : "IPv6";
        if (p->addr.family != family)
            error(key, 0, "must be an " + std::string(name) + " prefix");
        else if (p->len < min_len)
            error(key, 0, "an " + std::string(name) + " prefix must be at least /" + std::to_string(min_len));
    }

    void vips(const std::vector<VipConfig>& vips)
    {
        std::map<std::string_view, size_t> names;
        std::map<std::tuple<IpAddr, uint16_t, Protocol>, size_t> endpoints;
        for (size_t i = 0; i < vips.size(); ++i) {
            const auto& vip = vips[i];
            auto path = at("vips", i);
            if (!bad(path + ".name")) {
                if (!valid_vip_name(vip.name))
                    error(path + ".name", vip.line,
                          "'" + vip.name + "' is not a valid VIP name (1 to 63 characters from A-Z a-z 0-9 _ . -)");
                else if (auto [it, fresh] = names.emplace(vip.name, i); !fresh)
                    error(path + ".name", vip.line,
                          "duplicate VIP name '" + vip.name + "' (also vips[" + std::to_string(it->second) + "])");
            }
            bool port_ok = range(path + ".port", vip.port, kPort, vip.line);
            if (port_ok && !bad(path + ".address") && !bad(path + ".protocol")) {
                auto [it, fresh] = endpoints.emplace(std::tuple{vip.address, vip.port, vip.protocol}, i);
                if (!fresh)
                    error(path, vip.line,
                          "same VIP as vips[" + std::to_string(it->second) + "] (" + vips[it->second].name +
                              "): address, port and protocol must be unique");
            }
            backends(vip, path, port_ok);
            if (vip.health)
                for (auto& e : health::validate_health(*vip.health, path + ".health", failed_))
                    errors_.push_back(std::move(e));
            scheduling(vip, path);
        }
    }

    /// algorithm, persistence and one_packet, and how they combine.
    void scheduling(const VipConfig& vip, const std::string& path)
    {
        const std::string alg = to_string(vip.algorithm);
        const bool alg_ok = !bad(path + ".algorithm");
        if (vip.one_packet && !bad(path + ".one_packet")) {
            if (!bad(path + ".protocol") && vip.protocol != Protocol::Udp)
                error(path + ".one_packet", vip.line,
                      "one_packet applies to UDP VIPs only: the packets of a TCP connection must all reach "
                      "one backend");
            else if (alg_ok && vip.algorithm == Algorithm::LeastConn)
                error(path + ".one_packet", vip.line,
                      "one_packet does not combine with least-conn: without a connection table there are no "
                      "active flows to count (use round-robin or weighted)");
        }
        if (alg_ok && !uses_ring(vip.algorithm) && vip.backends.size() > LBD_SCHED_MAX_BACKENDS)
            error(path + ".backends", vip.line,
                  std::to_string(vip.backends.size()) + " backends, but " + alg + " schedules at most " +
                      std::to_string(LBD_SCHED_MAX_BACKENDS) +
                      " per VIP (maglev and source-hash have no such limit)");
        if (!vip.persistence || bad(path + ".persistence"))
            return;
        const auto& p = *vip.persistence;
        const std::string pp = path + ".persistence";
        if (!bad(pp + ".timeout") && (p.timeout < kPersistTimeoutMin || p.timeout > kPersistTimeoutMax))
            error(pp + ".timeout", p.line, "must be between 1s and 24h");
        const bool family_ok = !bad(path + ".address");
        if (p.netmask) {
            if (family_ok && !vip.address.is_v4())
                error(pp + ".netmask", p.line, "netmask applies to IPv4 VIPs; this VIP is IPv6: use prefix_v6");
            else
                range(pp + ".netmask", uint64_t(std::max(*p.netmask, 0)), kPersistNetmask, p.line);
        }
        if (p.prefix_v6) {
            if (family_ok && vip.address.is_v4())
                error(pp + ".prefix_v6", p.line, "prefix_v6 applies to IPv6 VIPs; this VIP is IPv4: use netmask");
            else
                range(pp + ".prefix_v6", uint64_t(std::max(*p.prefix_v6, 0)), kPersistPrefixV6, p.line);
        }
    }

    void backends(const VipConfig& vip, const std::string& vip_path, bool vip_port_ok)
    {
        std::map<IpAddr, size_t> seen;
        for (size_t j = 0; j < vip.backends.size(); ++j) {
            const auto& be = vip.backends[j];
            auto path = at(vip_path + ".backends", j);
            if (!bad(path + ".address")) {
                if (!bad(vip_path + ".address") && be.address.family != vip.address.family)
                    error(path + ".address", be.line,
                          std::string("backend is ") + (be.address.is_v4() ? "IPv4" : "IPv6") + " but the VIP is " +
                              (vip.address.is_v4() ? "IPv4" : "IPv6") +
                              ": lbd encapsulates IPv4 in IPv4 and IPv6 in IPv6 only");
                else if (auto [it, fresh] = seen.emplace(be.address, j); !fresh)
                    error(path + ".address", be.line,
                          "duplicate backend " + be.address.str() + " (also backends[" + std::to_string(it->second) +
                              "])");
            }
            if (vip_port_ok && !bad(path + ".port") && be.port != vip.port)
                error(path + ".port", be.line,
                      "must equal the VIP's port " + std::to_string(vip.port) +
                          ": with direct server return the backend receives the VIP's port");
            range(path + ".weight", be.weight, kWeight, be.line);
        }
    }
};

/// Builds the model from the YAML tree, checking what the model cannot hold:
/// unknown keys, types, required keys, syntax of addresses and numbers.
class Loader : public YamlReader {
public:
    Config cfg;

    void load(const YAML::Node& root)
    {
        std::optional<Fields> f = Fields{};
        if (!root.IsNull()) {
            lines_.emplace("", line_of(root));
            f = fields(root, "", {"datapath", "control", "bgp", "vips"}, kReservedSections);
        }
        if (!f)
            return;
        for (auto name : kReservedSections)
            if (find(*f, name))
                error(std::string(name), "not supported by this version of lbd");
        if (auto n = require(*f, "", "datapath"))
            datapath(*n);
        if (auto n = find(*f, "control"))
            control(*n);
        if (auto n = find(*f, "bgp"))
            bgp::read_bgp(*this, *n, "bgp", cfg.bgp);
        if (auto n = find(*f, "vips"); n && !n->IsNull()) {
            if (!n->IsSequence())
                error("vips", "must be a list of VIPs");
            else
                for (size_t i = 0; i < n->size(); ++i)
                    vip((*n)[i], i);
        }
    }

private:
    void prefix(const Fields& f, std::string_view name, std::optional<Prefix>& out)
    {
        auto key = "datapath." + std::string(name);
        if (auto n = find(f, name))
            if (auto s = text(*n, key, "a prefix")) {
                out = Prefix::parse(*s);
                if (!out)
                    error(key, "'" + *s + "' is not a prefix (ADDRESS/LENGTH with the host bits zero)");
            }
    }

    void datapath(const YAML::Node& node)
    {
        auto f = fields(node, "datapath",
                        {"interfaces", "xdp_mode", "conntrack_size", "maglev_ring_size", "hash_seed", "pin_path",
                         "encap_source_v4", "encap_source_v6", "max_vips", "max_backends", "probe_marks"});
        if (!f)
            return;
        auto& dp = cfg.datapath;
        if (auto n = require(*f, "datapath", "interfaces")) {
            if (!n->IsSequence()) {
                error("datapath.interfaces", "must be a list of interface names");
            } else {
                for (size_t i = 0; i < n->size(); ++i) {
                    auto key = at("datapath.interfaces", i);
                    lines_.emplace(key, line_of((*n)[i]));
                    dp.interfaces.push_back(text((*n)[i], key, "an interface name").value_or(""));
                }
            }
        }
        if (auto n = find(*f, "xdp_mode"))
            if (auto s = text(*n, "datapath.xdp_mode", "auto, native or generic")) {
                if (*s == "auto")
                    dp.xdp_mode = XdpMode::Auto;
                else if (*s == "native")
                    dp.xdp_mode = XdpMode::Native;
                else if (*s == "generic")
                    dp.xdp_mode = XdpMode::Generic;
                else
                    error("datapath.xdp_mode", "must be auto, native or generic, not '" + *s + "'");
            }
        if (auto n = find(*f, "conntrack_size"))
            integer(*n, "datapath.conntrack_size", kConntrackSize, dp.conntrack_size);
        if (auto n = find(*f, "maglev_ring_size"))
            integer(*n, "datapath.maglev_ring_size", kRingSize, dp.maglev_ring_size);
        if (auto n = find(*f, "hash_seed"))
            integer(*n, "datapath.hash_seed", kHashSeed, dp.hash_seed);
        if (auto n = find(*f, "pin_path"))
            if (auto s = text(*n, "datapath.pin_path", "a path"))
                dp.pin_path = *s;
        prefix(*f, "encap_source_v4", dp.encap_source_v4);
        prefix(*f, "encap_source_v6", dp.encap_source_v6);
        if (auto n = find(*f, "max_vips"))
            integer(*n, "datapath.max_vips", kMaxVips, dp.max_vips);
        if (auto n = find(*f, "max_backends"))
            integer(*n, "datapath.max_backends", kMaxBackends, dp.max_backends);
        if (auto n = find(*f, "probe_marks"))
            if (auto s = text(*n, "datapath.probe_marks", "VALUE/MASK such as 0x4c420000/0xffff0000")) {
                if (auto r = MarkRange::parse(*s))
                    dp.probe_marks = *r;
                else
                    error("datapath.probe_marks",
                          "'" + *s + "' is not VALUE/MASK (such as 0x4c420000/0xffff0000)");
            }
    }

    void control(const YAML::Node& node)
    {
        auto f = fields(node, "control", {"socket", "group", "state_dir"});
        if (!f)
            return;
        auto& c = cfg.control;
        if (auto n = find(*f, "socket"))
            if (auto s = text(*n, "control.socket", "a path"))
                c.socket = *s;
        if (auto n = find(*f, "group"))
            if (auto s = text(*n, "control.group", "a group name"))
                c.group = *s;
        if (auto n = find(*f, "state_dir"))
            if (auto s = text(*n, "control.state_dir", "a path"))
                c.state_dir = *s;
    }

    void vip(const YAML::Node& node, size_t i)
    {
        auto path = at("vips", i);
        auto& vip = cfg.vips.emplace_back();  // one entry per list item keeps indices == key paths
        vip.line = line_of(node);
        lines_.emplace(path, vip.line);
        auto f = fields(node, path,
                        {"name", "address", "port", "protocol", "algorithm", "persistence", "one_packet", "health", "bgp", "backends"});
        if (!f)
            return;
        if (auto n = require(*f, path, "name"))
            if (auto s = text(*n, path + ".name", "a name"))
                vip.name = *s;
        if (auto n = require(*f, path, "address"))
            if (auto a = address(*n, path + ".address"))
                vip.address = *a;
        if (auto n = require(*f, path, "port"))
            integer(*n, path + ".port", kPort, vip.port);
        if (auto n = find(*f, "protocol"))
            if (auto s = text(*n, path + ".protocol", "tcp or udp")) {
                if (*s == "tcp")
                    vip.protocol = Protocol::Tcp;
                else if (*s == "udp")
                    vip.protocol = Protocol::Udp;
                else
                    error(path + ".protocol", "must be tcp or udp, not '" + *s + "'");
            }
        if (auto n = find(*f, "algorithm"))
            if (auto s = text(*n, path + ".algorithm", "an algorithm name")) {
                if (auto a = parse_algorithm(*s))
                    vip.algorithm = *a;
                else
                    error(path + ".algorithm", "unknown algorithm '" + *s + "' (supported: " + algorithm_names() + ")");
            }
        if (auto n = find(*f, "persistence"))
            persistence(*n, path + ".persistence", vip);
        if (auto n = find(*f, "one_packet"))
            if (auto b = boolean(*n, path + ".one_packet"))
                vip.one_packet = *b;
        if (auto n = find(*f, "health"))
            health::read_health(*this, *n, path + ".health", vip.health.emplace());
        if (auto n = find(*f, "bgp"))
            bgp::read_vip_bgp(*this, *n, path + ".bgp", vip.bgp);
        if (auto n = find(*f, "backends"); n && !n->IsNull()) {
            if (!n->IsSequence())
                error(path + ".backends", "must be a list of backends");
            else
                for (size_t j = 0; j < n->size(); ++j)
                    backend((*n)[j], at(path + ".backends", j), vip);
        }
    }

    void persistence(const YAML::Node& node, const std::string& path, VipConfig& vip)
    {
        auto& p = vip.persistence.emplace();
        p.line = line_of(node);
        auto f = fields(node, path, {"timeout", "netmask", "prefix_v6"});
        if (!f)
            return;
        if (auto n = find(*f, "timeout"))
            if (auto d = duration(*n, path + ".timeout"))
                p.timeout = *d;
        if (auto n = find(*f, "netmask")) {
            int v = 0;
            integer(*n, path + ".netmask", kPersistNetmask, v);
            p.netmask = v;
        }
        if (auto n = find(*f, "prefix_v6")) {
            int v = 0;
            integer(*n, path + ".prefix_v6", kPersistPrefixV6, v);
            p.prefix_v6 = v;
        }
    }

    void backend(const YAML::Node& node, const std::string& path, VipConfig& vip)
    {
        auto& be = vip.backends.emplace_back();
        be.line = line_of(node);
        be.port = vip.port;
        lines_.emplace(path, be.line);
        auto f = fields(node, path, {"address", "port", "weight", "sorry", "health_port"});
        if (!f)
            return;
        if (auto n = require(*f, path, "address"))
            if (auto a = address(*n, path + ".address"))
                be.address = *a;
        if (auto n = find(*f, "port"))
            integer(*n, path + ".port", kPort, be.port);
        if (auto n = find(*f, "weight"))
            integer(*n, path + ".weight", kWeight, be.weight);
        if (auto n = find(*f, "sorry"))
            if (auto b = boolean(*n, path + ".sorry"))
                be.sorry = *b;
        if (auto n = find(*f, "health_port")) {
            uint16_t port = 0;
            integer(*n, path + ".health_port", kPort, port);
            if (port)
                be.health_port = port;
        }
    }
};

}  // namespace

std::vector<ConfigError> validate(const Config& cfg)
{
    return Validator().run(cfg);
}

ConfigResult load_config_string(const std::string& yaml_text)
{
    YAML::Node root;
    try {
        root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
        return std::vector<ConfigError>{{"", std::max(e.mark.line + 1, 0), e.msg}};
    }
    Loader loader;
    loader.load(root);
    auto errors = std::move(loader.errors);
    for (auto& e : Validator(std::move(loader.failed)).run(loader.cfg)) {
        if (int line = loader.line_for(e.key))
            e.line = line;
        errors.push_back(std::move(e));
    }
    if (errors.empty())
        return std::move(loader.cfg);
    std::stable_sort(errors.begin(), errors.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
    return errors;
}

ConfigResult load_config_file(const std::string& path)
{
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f)
        return std::vector<ConfigError>{{"", 0, std::string("cannot open: ") + std::strerror(errno)}};
    std::string text;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        text.append(buf, n);
    int err = std::ferror(f) ? errno : 0;
    std::fclose(f);
    if (err)
        return std::vector<ConfigError>{{"", 0, std::string("cannot read: ") + std::strerror(err)}};
    return load_config_string(text);
}

}  // namespace lbd
