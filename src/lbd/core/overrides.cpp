#include "lbd/core/overrides.h"

#include <charconv>

namespace lbd {

using nlohmann::json;

std::string to_string(VipSource s)
{
    switch (s) {
    case VipSource::Config:
        return "config";
    case VipSource::Lbctl:
        return "lbctl";
    case VipSource::ConfigAndLbctl:
        return "config+lbctl";
    }
    return "?";
}

std::vector<EffectiveVip> effective_vips(const std::vector<VipConfig>& config, const Overrides& o)
{
    std::vector<EffectiveVip> out;
    std::set<std::string> seen;
    for (const auto& v : config) {
        if (o.deleted.count(v.name))
            continue;
        seen.insert(v.name);
        if (auto it = o.vips.find(v.name); it != o.vips.end())
            out.push_back({it->second, VipSource::ConfigAndLbctl});
        else
            out.push_back({v, VipSource::Config});
    }
    for (const auto& [name, v] : o.vips)
        if (!seen.count(name))
            out.push_back({v, VipSource::Lbctl});
    return out;
}

std::vector<VipConfig> vips_of(const std::vector<EffectiveVip>& e)
{
    std::vector<VipConfig> out;
    out.reserve(e.size());
    for (const auto& x : e)
        out.push_back(x.vip);
    return out;
}

static std::optional<uint64_t> number(std::string_view s)
{
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size())
        return std::nullopt;
    return v;
}

std::variant<BackendSpec, std::string> parse_backend_spec(const std::string& text)
{
    const std::string bad = "'" + text + "' is not a backend (ADDRESS, ADDRESS:PORT or ADDRESS:PORT:WEIGHT; IPv6 as [ADDRESS]:PORT)";
    BackendSpec spec;
    std::string_view rest;
    if (auto a = IpAddr::parse(text)) {  // bare IPv4 or IPv6 address
        spec.address = *a;
        return spec;
    }
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close == std::string::npos)
            return bad;
        auto a = IpAddr::parse(std::string_view(text).substr(1, close - 1));
        if (!a || a->is_v4())
            return bad;
        spec.address = *a;
        rest = std::string_view(text).substr(close + 1);
    } else {
        auto colon = text.find(':');
        auto a = IpAddr::parse(std::string_view(text).substr(0, colon));
        if (!a || !a->is_v4())
            return bad;
        spec.address = *a;
        rest = std::string_view(text).substr(colon);
    }
    if (rest.empty())
        return spec;
    if (!rest.starts_with(':'))
        return bad;
    rest.remove_prefix(1);
    auto colon = rest.find(':');
    auto port = number(rest.substr(0, colon));
    if (!port || *port < 1 || *port > 65535)
        return "'" + text + "': port must be between 1 and 65535";
    spec.port = uint16_t(*port);
    if (colon != std::string_view::npos) {
        auto w = number(rest.substr(colon + 1));
        if (!w || *w > 65535)
            return "'" + text + "': weight must be between 0 and 65535";
        spec.weight = uint32_t(*w);
    }
    return spec;
}

json to_json(const VipConfig& v)
{
    json backends = json::array();
    for (const auto& b : v.backends)
        backends.push_back({{"address", b.address.str()}, {"port", b.port}, {"weight", b.weight}});
    json out{{"name", v.name},          {"address", v.address.str()},
             {"port", v.port},          {"protocol", to_string(v.protocol)},
             {"algorithm", to_string(v.algorithm)}, {"backends", backends}};
    if (v.persistence) {
        json p{{"timeout_ms", v.persistence->timeout.count()}};
        if (v.persistence->netmask)
            p["netmask"] = *v.persistence->netmask;
        if (v.persistence->prefix_v6)
            p["prefix_v6"] = *v.persistence->prefix_v6;
        out["persistence"] = p;
    }
    if (v.one_packet)
        out["one_packet"] = true;
    return out;
}

static Algorithm algorithm_from(const json& j)
{
    auto it = j.find("algorithm");
    if (it == j.end())
        return Algorithm::Maglev;  // saved by an lbd that knew only Maglev
    auto a = parse_algorithm(it->get<std::string>());
    if (!a)
        throw std::invalid_argument("bad algorithm " + it->dump());
    return *a;
}

static IpAddr addr_from(const json& j)
{
    auto a = IpAddr::parse(j.get<std::string>());
    if (!a)
        throw std::invalid_argument("bad address " + j.dump());
    return *a;
}

static Protocol protocol_from(const std::string& s)
{
    if (s == "tcp")
        return Protocol::Tcp;
    if (s == "udp")
        return Protocol::Udp;
    throw std::invalid_argument("bad protocol " + s);
}

VipConfig vip_from_json(const json& j)
{
    VipConfig v;
    v.name = j.at("name").get<std::string>();
    v.address = addr_from(j.at("address"));
    v.port = j.at("port").get<uint16_t>();
    v.protocol = protocol_from(j.at("protocol").get<std::string>());
    v.algorithm = algorithm_from(j);
    if (auto p = j.find("persistence"); p != j.end() && !p->is_null()) {
        Persistence ps;
        ps.timeout = std::chrono::milliseconds(p->at("timeout_ms").get<int64_t>());
        if (p->contains("netmask"))
            ps.netmask = p->at("netmask").get<int>();
        if (p->contains("prefix_v6"))
            ps.prefix_v6 = p->at("prefix_v6").get<int>();
        v.persistence = ps;
    }
    v.one_packet = j.value("one_packet", false);
    for (const auto& b : j.at("backends"))
        v.backends.push_back({addr_from(b.at("address")), b.at("port").get<uint16_t>(),
                              b.at("weight").get<uint32_t>(), 0});
    return v;
}

json to_json(const Overrides& o)
{
    json vips = json::object();
    for (const auto& [name, v] : o.vips)
        vips[name] = to_json(v);
    return {{"vips", vips}, {"deleted", o.deleted}};
}

Overrides overrides_from_json(const json& j)
{
    Overrides o;
    for (const auto& [name, v] : j.at("vips").items())
        o.vips.emplace(name, vip_from_json(v));
    for (const auto& n : j.at("deleted"))
        o.deleted.insert(n.get<std::string>());
    return o;
}

json to_json(const std::map<std::string, VipState>& vips)
{
    json out = json::array();
    for (const auto& [name, v] : vips) {
        json backends = json::array();
        for (const auto& b : v.backends)
            backends.push_back({{"address", b.address.str()}, {"port", b.port}, {"weight", b.weight},
                                {"id", b.id}, {"gen", b.gen}});
        out.push_back({{"name", name}, {"address", v.address.str()}, {"port", v.port},
                       {"protocol", to_string(v.protocol)}, {"algorithm", to_string(v.algorithm)},
                       {"vip_id", v.vip_id}, {"backends", backends}});
    }
    return out;
}

std::vector<VipState> vip_states_from_json(const json& j)
{
    std::vector<VipState> out;
    for (const auto& x : j) {
        VipState v;
        v.name = x.at("name").get<std::string>();
        v.address = addr_from(x.at("address"));
        v.port = x.at("port").get<uint16_t>();
        v.protocol = protocol_from(x.at("protocol").get<std::string>());
        v.algorithm = algorithm_from(x);
        v.vip_id = x.at("vip_id").get<uint32_t>();
        for (const auto& b : x.at("backends")) {
            BackendState s;
            s.address = addr_from(b.at("address"));
            s.port = b.at("port").get<uint16_t>();
            s.weight = b.at("weight").get<uint32_t>();
            s.id = b.at("id").get<uint32_t>();
            s.gen = b.at("gen").get<uint32_t>();
            v.backends.push_back(s);
        }
        out.push_back(std::move(v));
    }
    return out;
}

}  // namespace lbd
