#include "lbd/core/controller.h"

#include <spdlog/spdlog.h>

#include "common/duration.h"

#include <algorithm>

#include "common/duration.h"

namespace lbd {

using nlohmann::json;

namespace {

/// A refusal: its text is the one-line error the client sees.
struct Refused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string str_arg(const json& r, const char* key)
{
    auto it = r.find(key);
    if (it == r.end() || !it->is_string() || it->get<std::string>().empty())
        throw Refused(std::string("missing '") + key + "'");
    return it->get<std::string>();
}

/// `one_packet` and `persistence` of lb.create; ranges and combinations
/// are checked by validate(), as for the config file.
void scheduling_args(const json& r, VipConfig& v)
{
    if (auto it = r.find("one_packet"); it != r.end() && !it->is_null()) {
        if (!it->is_boolean())
            throw Refused("'one_packet' must be true or false");
        v.one_packet = it->get<bool>();
    }
    auto it = r.find("persistence");
    if (it == r.end() || it->is_null())
        return;
    if (!it->is_object())
        throw Refused("'persistence' must be an object: {timeout, netmask, prefix_v6}");
    Persistence p;
    for (const auto& [key, val] : it->items()) {
        if (key == "timeout") {
            std::optional<std::chrono::milliseconds> d;
            if (val.is_string())
                d = parse_duration(val.get<std::string>());
            else if (val.is_number_unsigned())
                d = std::chrono::seconds(val.get<uint32_t>());
            if (!d)
                throw Refused("persistence timeout " + val.dump() + " is not a duration (e.g. 300s, 5m)");
            p.timeout = *d;
        } else if (key == "netmask" || key == "prefix_v6") {
            if (!val.is_number_integer())
                throw Refused("persistence " + key + " must be an integer prefix length");
            const int64_t n = val.get<int64_t>();
            (key == "netmask" ? p.netmask : p.prefix_v6) = int(std::clamp<int64_t>(n, -1, 1000));
        } else {
            throw Refused("unknown persistence key '" + key + "' (timeout, netmask, prefix_v6)");
        }
    }
    v.persistence = p;
}

std::string state_of(const BackendState& b, const json& health)
{
    if (!b.up)
        return health.is_object() ? health.value("state", "down") : "down";
    return b.weight == 0 ? "draining" : "up";
}

}  // namespace

VipConfig Controller::current(const std::string& name) const
{
    for (const auto& e : effective_vips(cfg_.vips, ov_))
        if (e.vip.name == name)
            return e.vip;
    throw Refused("no VIP named '" + name + "'");
}

VipSource Controller::source_of(const std::string& name) const
{
    for (const auto& e : effective_vips(cfg_.vips, ov_))
        if (e.vip.name == name)
            return e.source;
    return VipSource::Lbctl;
}

json Controller::list() const
{
    json vips = json::array();
    for (const auto& [name, v] : st_.vips()) {
        size_t healthy = 0;
        for (const auto& b : v.backends)
            healthy += b.up && b.weight > 0;
        vips.push_back({{"name", name},
                        {"vip", Endpoint{v.address, v.port}.str()},
                        {"protocol", to_string(v.protocol)},
                        {"algorithm", to_string(v.algorithm)},
                        {"backends", v.backends.size()},
                        {"healthy", healthy},
                        {"source", to_string(source_of(name))}});
    }
    return vips;
}

std::optional<json> Controller::show(const std::string& name) const
{
    auto it = st_.vips().find(name);
    if (it == st_.vips().end())
        return std::nullopt;
    const auto& v = it->second;
    const auto flows = stats_.active_flows();
    const auto vs = stats_.vip_stats(v.vip_id);
    // least-conn: the counters the program schedules by (docs/scheduling.md).
    std::map<uint32_t, int64_t> lc;
    if (v.algorithm == Algorithm::LeastConn) {
        std::vector<uint32_t> ids;
        for (const auto& b : v.backends)
            ids.push_back(b.id);
        lc = stats_.least_conn_active(ids);
    }
    json backends = json::array();
    for (const auto& b : v.backends) {
        const auto bs = stats_.backend_stats(b.id);
        auto f = flows.find(b.id);
        const json health = hooks_.backend_health ? hooks_.backend_health(name, b.address) : json();
        backends.push_back({{"address", b.address.str()},
                            {"port", b.port},
                            {"weight", b.weight},
                            {"state", state_of(b, health)},
                            {"sorry", b.sorry},
                            {"health", health},
                            {"active_flows", f == flows.end() ? 0 : f->second},
                            {"packets", bs.packets},
                            {"bytes", bs.bytes},
                            {"new_flows", bs.new_flows}});
        if (auto n = lc.find(b.id); n != lc.end())
            backends.back()["lc_active"] = std::max<int64_t>(n->second, 0);
    }
    json out{{"name", name},
             {"vip", Endpoint{v.address, v.port}.str()},
             {"protocol", to_string(v.protocol)},
             {"algorithm", to_string(v.algorithm)},
             {"source", to_string(source_of(name))},
             {"packets", vs.packets},
             {"bytes", vs.bytes},
             {"new_flows", vs.new_flows},
             {"backends", backends}};
    if (v.persistence) {
        json p{{"timeout", format_duration(v.persistence->timeout)}};
        if (v.address.is_v4())
            p["netmask"] = v.persistence->netmask.value_or(32);
        else
            p["prefix_v6"] = v.persistence->prefix_v6.value_or(128);
        out["persistence"] = p;
    }
    if (v.one_packet)
        out["one_packet"] = true;
    return out;
}

json Controller::commit(Overrides next, const std::string& name,
                        const std::function<void()>& before_apply)
{
    Config candidate = cfg_;
    candidate.vips = vips_of(effective_vips(cfg_.vips, next));
    auto errors = validate(candidate);
    if (!errors.empty()) {
        // Name the VIP the error is about, not a list index the client never saw.
        std::string msg = errors.front().message;
        const auto& key = errors.front().key;
        if (key.starts_with("vips[")) {
            const size_t i = std::stoul(key.substr(5));
            // The key under the VIP ("persistence.netmask"), unless the
            // message starts with its name already.
            const size_t dot = key.find("].");
            const std::string sub = dot == std::string::npos ? std::string() : key.substr(dot + 2);
            const size_t last_dot = sub.rfind('.');
            const std::string last = last_dot == std::string::npos ? sub : sub.substr(last_dot + 1);
            if (!sub.empty() && !msg.starts_with(last))
                msg = sub + ": " + msg;
            if (i < candidate.vips.size())
                msg = "vip " + candidate.vips[i].name + ": " + msg;
        } else if (key == "vips") {
            msg = "too many for the maps: " + msg;
        }
        throw Refused(msg);
    }
    ov_ = std::move(next);
    if (before_apply)
        before_apply();
    for (const auto& line : st_.apply(candidate.vips))
        spdlog::info("lbctl: {}", line);
    hooks_.persist();
    if (hooks_.applied)
        hooks_.applied();
    json out{{"ok", true}};
    if (auto v = show(name))
        out["vip"] = *v;
    return out;
}

json Controller::create(const json& r)
{
    const std::string name = str_arg(r, "name");
    for (const auto& e : effective_vips(cfg_.vips, ov_))
        if (e.vip.name == name)
            throw Refused("a VIP named '" + name + "' already exists");
    auto ep = Endpoint::parse(str_arg(r, "vip"));
    if (!ep)
        throw Refused("'" + str_arg(r, "vip") + "' is not an endpoint (ADDRESS:PORT or [ADDRESS]:PORT)");
    VipConfig v;
    v.name = name;
    v.address = ep->addr;
    v.port = ep->port;
    const std::string proto = r.value("protocol", std::string("tcp"));
    if (proto == "tcp")
        v.protocol = Protocol::Tcp;
    else if (proto == "udp")
        v.protocol = Protocol::Udp;
    else
        throw Refused("unknown protocol '" + proto + "' (tcp or udp)");
    const std::string alg = r.value("algorithm", std::string("maglev"));
    if (auto a = parse_algorithm(alg))
        v.algorithm = *a;
    else
        throw Refused("unknown algorithm '" + alg + "' (supported: " + algorithm_names() + ")");
    scheduling_args(r, v);
    for (const auto& e : effective_vips(cfg_.vips, ov_))
        if (e.vip.address == v.address && e.vip.port == v.port && e.vip.protocol == v.protocol)
            throw Refused(Endpoint{v.address, v.port}.str() + " " + proto + " is already VIP '" +
                          e.vip.name + "'");
    if (auto b = r.find("backends"); b != r.end()) {
        if (!b->is_array())
            throw Refused("'backends' must be a list of backend specs");
        for (const auto& spec : *b) {
            if (!spec.is_string())
                throw Refused("'backends' must be a list of backend specs");
            auto p = parse_backend_spec(spec.get<std::string>());
            if (auto* err = std::get_if<std::string>(&p))
                throw Refused(*err);
            const auto& s = std::get<BackendSpec>(p);
            if (s.port && *s.port != v.port)
                throw Refused("backend port " + std::to_string(*s.port) + " must equal the VIP's port " +
                              std::to_string(v.port) + " (DSR keeps the port)");
            v.backends.push_back({.address = s.address, .port = v.port, .weight = s.weight.value_or(1)});
        }
    }
    Overrides next = ov_;
    next.deleted.erase(name);
    next.vips[name] = v;
    return commit(std::move(next), name);
}

json Controller::add_backend(const json& r)
{
    const std::string name = str_arg(r, "name");
    VipConfig v = current(name);
    auto p = parse_backend_spec(str_arg(r, "backend"));
    if (auto* err = std::get_if<std::string>(&p))
        throw Refused(*err);
    const auto& s = std::get<BackendSpec>(p);
    if (s.port && *s.port != v.port)
        throw Refused("backend port " + std::to_string(*s.port) + " must equal the VIP's port " +
                      std::to_string(v.port) + " (DSR keeps the port)");
    for (const auto& b : v.backends)
        if (b.address == s.address)
            throw Refused("backend " + s.address.str() + " is already in '" + name + "'");
    v.backends.push_back({.address = s.address, .port = v.port, .weight = s.weight.value_or(1)});
    Overrides next = ov_;
    next.vips[name] = v;
    return commit(std::move(next), name);
}

/// The backend of `v` that `text` names (an address, or an endpoint/spec).
static std::vector<BackendConfig>::iterator find_backend(VipConfig& v, const std::string& text)
{
    auto p = parse_backend_spec(text);
    if (auto* err = std::get_if<std::string>(&p))
        throw Refused(*err);
    const auto& s = std::get<BackendSpec>(p);
    if (s.port && *s.port != v.port)
        throw Refused("backend " + text + " is not in '" + v.name + "' (its port is " +
                      std::to_string(v.port) + ")");
    auto it = std::find_if(v.backends.begin(), v.backends.end(),
                           [&](const BackendConfig& b) { return b.address == s.address; });
    if (it == v.backends.end())
        throw Refused("backend " + s.address.str() + " is not in '" + v.name + "'");
    return it;
}

json Controller::set_weight(const json& r)
{
    const std::string name = str_arg(r, "name");
    VipConfig v = current(name);
    auto it = find_backend(v, str_arg(r, "backend"));
    auto w = r.find("weight");
    if (w == r.end() || !w->is_number_integer() || w->get<int64_t>() < 0 || w->get<int64_t>() > 65535)
        throw Refused("'weight' must be an integer between 0 and 65535");
    it->weight = w->get<uint32_t>();
    Overrides next = ov_;
    next.vips[name] = v;
    return commit(std::move(next), name);
}

json Controller::remove_backend(const json& r)
{
    const std::string name = str_arg(r, "name");
    VipConfig v = current(name);
    auto it = find_backend(v, str_arg(r, "backend"));
    const IpAddr addr = it->address;
    const bool force = r.value("force", false);
    v.backends.erase(it);
    Overrides next = ov_;
    next.vips[name] = v;
    return commit(std::move(next), name, [&] {
        if (force && st_.remove_backend(name, addr, true))
            spdlog::info("lbctl: vip {}: backend {} removed with force (pinned flows re-scheduled)",
                         name, addr.str());
    });
}

json Controller::remove_vip(const json& r)
{
    const std::string name = str_arg(r, "name");
    current(name);  // refuses an unknown name
    Overrides next = ov_;
    next.vips.erase(name);
    if (std::any_of(cfg_.vips.begin(), cfg_.vips.end(), [&](const auto& v) { return v.name == name; }))
        next.deleted.insert(name);
    return commit(std::move(next), name);
}

/// `lb.set-health`: the fields given replace those of the VIP's health
/// section (defaults where it has none); `type: none` removes it.
json Controller::set_health(const json& r)
{
    const std::string name = str_arg(r, "name");
    VipConfig v = current(name);
    const std::string type = r.value("type", std::string());
    if (type == "none") {
        v.health.reset();
    } else {
        health::HealthConfig h = v.health.value_or(health::HealthConfig{});
        if (!type.empty()) {
            auto t = health::parse_check_type(type);
            if (!t)
                throw Refused("unknown health check type '" + type +
                              "' (tcp, http, https, udp, dns, icmp, exec, or none)");
            h.type = *t;
            if (h.type != health::CheckType::Tcp)
                h.half_open = false;  // a tcp-only setting: it does not follow the checks to another type
        }
        auto duration_arg = [&](const char* key, std::chrono::milliseconds& out) {
            if (auto it = r.find(key); it != r.end()) {
                auto d = it->is_string() ? parse_duration(it->get<std::string>()) : std::nullopt;
                if (!d)
                    throw Refused(std::string("'") + key + "' must be a duration such as 500ms, 5s or 1m");
                out = *d;
            }
        };
        auto count_arg = [&](const char* key, uint32_t& out) {
            if (auto it = r.find(key); it != r.end()) {
                if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 1000)
                    throw Refused(std::string("'") + key + "' must be an integer between 0 and 1000");
                out = it->get<uint32_t>();
            }
        };
        duration_arg("interval", h.interval);
        duration_arg("timeout", h.timeout);
        count_arg("unhealthy_threshold", h.unhealthy_threshold);
        count_arg("healthy_threshold", h.healthy_threshold);
        if (auto it = r.find("port"); it != r.end()) {
            if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 65535)
                throw Refused("'port' must be between 1 and 65535");
            h.port = it->get<uint16_t>();
        }
        if (auto it = r.find("path"); it != r.end() && it->is_string())
            h.path = it->get<std::string>();
        if (auto it = r.find("host"); it != r.end() && it->is_string())
            h.host = it->get<std::string>();
        if (auto it = r.find("expect_status"); it != r.end()) {
            auto range = it->is_string() ? health::StatusRange::parse(it->get<std::string>()) : std::nullopt;
            if (!range)
                throw Refused("'expect_status' must be a code or a range such as 200-399");
            h.expect_status = *range;
        }
        if (auto it = r.find("command"); it != r.end() && it->is_array())
            h.command = it->get<std::vector<std::string>>();
        if (auto it = r.find("half_open"); it != r.end()) {
            if (!it->is_boolean())
                throw Refused("'half_open' must be true or false");
            h.half_open = it->get<bool>();
        }
        if (auto it = r.find("via"); it != r.end()) {
            const std::string via = it->is_string() ? it->get<std::string>() : std::string();
            if (via == "direct")
                h.via = health::Via::Direct;
            else if (via == "tunnel")
                h.via = health::Via::Tunnel;
            else
                throw Refused("'via' must be direct or tunnel");
        }
        v.health = h;
    }
    Overrides next = ov_;
    next.vips[name] = v;
    return commit(std::move(next), name);
}

json Controller::handle(const json& r)
{
    try {
        if (!r.is_object())
            throw Refused("a request must be a JSON object");
        const std::string cmd = str_arg(r, "cmd");
        if (cmd == "status") {
            json out = hooks_.status();
            out["ok"] = true;
            return out;
        }
        if (cmd == "lb.list")
            return {{"ok", true}, {"vips", list()}};
        if (cmd == "lb.show") {
            auto v = show(str_arg(r, "name"));
            if (!v)
                throw Refused("no VIP named '" + str_arg(r, "name") + "'");
            return {{"ok", true}, {"vip", *v}};
        }
        if (cmd == "lb.create")
            return create(r);
        if (cmd == "lb.add-backend")
            return add_backend(r);
        if (cmd == "lb.set-weight")
            return set_weight(r);
        if (cmd == "lb.remove-backend")
            return remove_backend(r);
        if (cmd == "lb.delete")
            return remove_vip(r);
        if (cmd == "lb.set-health")
            return set_health(r);
        if (cmd == "reload")
            return hooks_.reload();
        if (cmd == "bgp.status" && hooks_.bgp_status)
            return hooks_.bgp_status();
        if (cmd == "maintenance" && hooks_.maintenance) {
            auto on = r.find("on");
            if (on == r.end() || !on->is_boolean())
                throw Refused("'on' must be true or false");
            return hooks_.maintenance(on->get<bool>());
        }
        throw Refused("unknown command '" + cmd + "'");
    } catch (const Refused& e) {
        return {{"ok", false}, {"error", e.what()}};
    } catch (const std::exception& e) {
        spdlog::error("control request failed: {}", e.what());
        return {{"ok", false}, {"error", std::string("internal error: ") + e.what()}};
    }
}

}  // namespace lbd
