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

namespace {

json health_to_json(const health::HealthConfig& h)
{
    json j{{"type", health::to_string(h.type)},
           {"interval_ms", h.interval.count()},
           {"timeout_ms", h.timeout.count()},
           {"unhealthy_threshold", h.unhealthy_threshold},
           {"healthy_threshold", h.healthy_threshold},
           {"path", h.path},
           {"expect_status", h.expect_status.str()},
           {"tls_verify", h.tls_verify},
           {"payload", h.payload},
           {"query_name", h.query_name},
           {"query_type", h.query_type},
           {"command", h.command},
           {"half_open", h.half_open},
           {"via", health::to_string(h.via)}};
    if (h.port)
        j["port"] = *h.port;
    if (h.host)
        j["host"] = *h.host;
    if (h.expect)
        j["expect"] = *h.expect;
    return j;
}

health::HealthConfig health_from_json(const json& j)
{
    health::HealthConfig h;
    auto type = health::parse_check_type(j.at("type").get<std::string>());
    if (!type)
        throw std::invalid_argument("bad health type " + j.at("type").dump());
    h.type = *type;
    h.interval = std::chrono::milliseconds(j.at("interval_ms").get<int64_t>());
    h.timeout = std::chrono::milliseconds(j.at("timeout_ms").get<int64_t>());
    h.unhealthy_threshold = j.at("unhealthy_threshold").get<uint32_t>();
    h.healthy_threshold = j.at("healthy_threshold").get<uint32_t>();
    h.path = j.value("path", std::string("/"));
    if (auto r = health::StatusRange::parse(j.value("expect_status", std::string("200-299"))))
        h.expect_status = *r;
    h.tls_verify = j.value("tls_verify", false);
    h.payload = j.value("payload", std::string());
    h.query_name = j.value("query_name", std::string());
    h.query_type = j.value("query_type", uint16_t{1});
    h.command = j.value("command", std::vector<std::string>{});
    h.half_open = j.value("half_open", false);
    h.via = j.value("via", std::string("direct")) == "tunnel" ? health::Via::Tunnel : health::Via::Direct;
    if (j.contains("port"))
        h.port = j.at("port").get<uint16_t>();
    if (j.contains("host"))
        h.host = j.at("host").get<std::string>();
    if (j.contains("expect"))
        h.expect = j.at("expect").get<std::string>();
    return h;
}

json bgp_to_json(const bgp::VipBgp& b)
{
    json j = json::object();
    if (b.med)
        j["med"] = *b.med;
    if (b.withdraw_quorum)
        j["withdraw_quorum"] = *b.withdraw_quorum;
    if (b.communities) {
        json c = json::array();
        for (const auto& x : *b.communities)
            c.push_back(x.str());
        j["communities"] = c;
    }
    return j;
}

bgp::VipBgp bgp_from_json(const json& j)
{
    bgp::VipBgp b;
    if (j.contains("med"))
        b.med = j.at("med").get<uint32_t>();
    if (j.contains("withdraw_quorum"))
        b.withdraw_quorum = j.at("withdraw_quorum").get<uint32_t>();
    if (j.contains("communities")) {
        b.communities.emplace();
        for (const auto& c : j.at("communities")) {
            auto parsed = bgp::Community::parse(c.get<std::string>());
            if (!parsed)
                throw std::invalid_argument("bad community " + c.dump());
            b.communities->push_back(*parsed);
        }
    }
    return b;
}

}  // namespace

json to_json(const VipConfig& v)
{
    json backends = json::array();
    for (const auto& b : v.backends)
    {
        json be{{"address", b.address.str()}, {"port", b.port}, {"weight", b.weight}};
        if (b.sorry)
            be["sorry"] = true;
        if (b.health_port)
            be["health_port"] = *b.health_port;
        backends.push_back(be);
    }
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
    if (v.health)
        out["health"] = health_to_json(*v.health);
    if (auto b = bgp_to_json(v.bgp); !b.empty())
        out["bgp"] = b;
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
    if (auto h = j.find("health"); h != j.end() && !h->is_null())
        v.health = health_from_json(*h);
    if (auto b = j.find("bgp"); b != j.end())
        v.bgp = bgp_from_json(*b);
    for (const auto& b : j.at("backends")) {
        BackendConfig be;
        be.address = addr_from(b.at("address"));
        be.port = b.at("port").get<uint16_t>();
        be.weight = b.at("weight").get<uint32_t>();
        be.sorry = b.value("sorry", false);
        if (b.contains("health_port"))
            be.health_port = b.at("health_port").get<uint16_t>();
        v.backends.push_back(be);
    }
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
