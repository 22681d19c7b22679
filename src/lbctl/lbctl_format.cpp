#include "lbctl/lbctl_format.h"

#include "lbctl/lbctl_args.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace lbctl {
namespace {

using json = nlohmann::ordered_json;

// One line of printable text: line breaks and tabs become spaces, other
// control characters '?', so nothing lbd sends can move the cursor.
std::string printable(std::string_view s)
{
    std::string r;
    r.reserve(s.size());
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\n' || c == '\r' || c == '\t')
            r += ' ';
        else if (u < 0x20 || u == 0x7f)
            r += '?';
        else
            r += c;
    }
    return r;
}

const json* field(const json& obj, std::string_view key)
{
    if (!obj.is_object())
        return nullptr;
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

std::optional<uint64_t> unsigned_field(const json& obj, std::string_view key)
{
    const json* v = field(obj, key);
    if (v && v->is_number_unsigned())
        return v->get<uint64_t>();
    if (v && v->is_number_integer() && v->get<int64_t>() >= 0)
        return static_cast<uint64_t>(v->get<int64_t>());
    return std::nullopt;
}

const json& array_field(const json& obj, std::string_view key)
{
    static const json empty = json::array();
    const json* v = field(obj, key);
    return v && v->is_array() ? *v : empty;
}

std::string string_field(const json& obj, std::string_view key, std::string_view fallback)
{
    const json* v = field(obj, key);
    return v && v->is_string() ? printable(v->get<std::string>()) : std::string(fallback);
}

// "1234567 (1.2 MiB)"; small counts as they are.
std::string bytes_total(const json& obj, std::string_view key)
{
    auto b = unsigned_field(obj, key);
    if (!b)
        return cell(obj, key);
    if (*b < 1024)
        return std::to_string(*b);
    return std::to_string(*b) + " (" + format_bytes(*b) + ")";
}

std::string bytes_cell(const json& obj, std::string_view key)
{
    auto b = unsigned_field(obj, key);
    return b ? format_bytes(*b) : cell(obj, key);
}

// "3 (2 up, 1 draining)"
std::string backend_summary(const json& backends)
{
    static constexpr std::array<std::string_view, 4> kStates{"up", "draining", "down", "unknown"};
    std::array<size_t, kStates.size()> counts{};
    size_t other = 0;
    for (const auto& be : backends) {
        const std::string state = string_field(be, "state", "");
        size_t i = 0;
        while (i < kStates.size() && kStates[i] != state)
            ++i;
        if (i < kStates.size())
            ++counts[i];
        else
            ++other;
    }
    std::string parts;
    for (size_t i = 0; i < kStates.size(); ++i)
        if (counts[i])
            parts += (parts.empty() ? "" : ", ") + std::to_string(counts[i]) + " " + std::string(kStates[i]);
    if (other)
        parts += (parts.empty() ? "" : ", ") + std::to_string(other) + " other";
    std::string s = std::to_string(backends.size());
    if (!parts.empty())
        s += " (" + parts + ")";
    return s;
}

std::string dump(const json& j)
{
    return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

std::string cell(const json& obj, std::string_view key)
{
    const json* v = field(obj, key);
    if (!v)
        return "-";
    if (v->is_string())
        return printable(v->get<std::string>());
    if (v->is_number() || v->is_boolean())
        return v->dump();
    return "-";
}

std::string format_table(const std::vector<std::vector<std::string>>& rows)
{
    std::vector<size_t> widths;
    for (const auto& row : rows) {
        if (row.size() > widths.size())
            widths.resize(row.size(), 0);
        for (size_t i = 0; i < row.size(); ++i)
            widths[i] = std::max(widths[i], row[i].size());
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size())
                line.append(widths[i] - row[i].size() + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        out += line + "\n";
    }
    return out;
}

std::string format_fields(const std::vector<std::pair<std::string, std::string>>& fields)
{
    size_t width = 0;
    for (const auto& [k, v] : fields)
        width = std::max(width, k.size() + 1);
    std::string out;
    for (const auto& [k, v] : fields) {
        std::string line = k + ":";
        line.append(width - line.size() + 2, ' ');
        line += v;
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        out += line + "\n";
    }
    return out;
}

std::string format_bytes(uint64_t bytes)
{
    static constexpr std::array<const char*, 6> kUnits{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024)
        return std::to_string(bytes) + " B";
    double v = static_cast<double>(bytes) / 1024;
    size_t unit = 0;
    // Switch up before "1024.0 KiB" would show.
    while (v >= 1023.95 && unit + 1 < kUnits.size()) {
        v /= 1024;
        ++unit;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]);
    return buf;
}

std::string format_uptime(uint64_t seconds)
{
    const uint64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60, s = seconds % 60;
    std::string out;
    auto part = [&](uint64_t n, char unit) {
        if (n)
            out += (out.empty() ? "" : " ") + std::to_string(n) + unit;
    };
    part(d, 'd');
    part(h, 'h');
    part(m, 'm');
    part(s, 's');
    return out.empty() ? "0s" : out;
}

std::string format_status(const json& r)
{
    std::string daemon = "lbd " + cell(r, "version");
    if (field(r, "pid"))
        daemon += ", pid " + cell(r, "pid");
    // lbd sends the uptime with fractions of a second.
    std::optional<uint64_t> up = unsigned_field(r, "uptime_s");
    if (const json* u = field(r, "uptime_s"); !up && u && u->is_number_float() && u->get<double>() >= 0 &&
                                               u->get<double>() < 1.8e19)
        up = static_cast<uint64_t>(u->get<double>());
    std::string interfaces;
    for (const auto& itf : array_field(r, "interfaces"))
        interfaces += (interfaces.empty() ? "" : ", ") + cell(itf, "name") + " (XDP " + cell(itf, "mode") + ")";
    std::vector<std::pair<std::string, std::string>> fields{
        {"daemon", daemon},
        {"uptime", up ? format_uptime(*up) : cell(r, "uptime_s")},
        {"config file", cell(r, "config_file")},
        {"state dir", cell(r, "state_dir")},
        {"pin path", cell(r, "pin_path")},
        {"interfaces", interfaces.empty() ? "none" : interfaces},
        {"VIPs", cell(r, "vips")},
    };
    // The health-check tunnel: backends probed via tunnel, and the packet
    // counters that moved.
    if (const json* t = field(r, "probe_tunnel"); t && t->is_object()) {
        std::string tunnel = cell(*t, "marks") + " backends via tunnel (marks " + cell(*t, "mark_range") + ")";
        for (const auto& [key, v] : t->items())
            if (key != "marks" && key != "mark_range" && v.is_number_unsigned() && v.get<uint64_t>() > 0)
                tunnel += ", " + printable(key) + " " + std::to_string(v.get<uint64_t>());
        fields.emplace_back("health tunnel", tunnel);
    }
    return format_fields(fields);
}

std::string format_lb_list(const json& r)
{
    std::vector<std::vector<std::string>> rows{{"NAME", "VIP", "PROTO", "ALGORITHM", "BACKENDS", "HEALTHY", "SOURCE"}};
    for (const auto& v : array_field(r, "vips")) {
        // `backends` and `healthy` are counts; a list of backends is counted.
        const json* be = field(v, "backends");
        const std::string backends = be && be->is_array() ? std::to_string(be->size()) : cell(v, "backends");
        std::string healthy = cell(v, "healthy");
        const json* h = field(v, "healthy");
        if (h && h->is_number_integer() && backends != "-")
            healthy += "/" + backends;
        rows.push_back({cell(v, "name"), cell(v, "vip"), cell(v, "protocol"), cell(v, "algorithm"), backends, healthy,
                        cell(v, "source")});
    }
    return format_table(rows);
}

/// "round-robin, persistence 5m /24, one-packet".
static std::string algorithm_cell(const json& vip)
{
    std::string out = cell(vip, "algorithm");
    if (const json* p = field(vip, "persistence"); p && p->is_object()) {
        out += ", persistence " + cell(*p, "timeout");
        for (const char* k : {"netmask", "prefix_v6"})
            if (field(*p, k))
                out += " /" + cell(*p, k);
    }
    if (const json* o = field(vip, "one_packet"); o && o->is_boolean() && o->get<bool>())
        out += ", one-packet";
    return out;
}

std::string format_vip(const json& vip)
{
    const json& backends = array_field(vip, "backends");
    std::string out = format_fields({
        {"name", cell(vip, "name")},
        {"vip", cell(vip, "vip")},
        {"protocol", cell(vip, "protocol")},
        {"algorithm", algorithm_cell(vip)},
        {"source", cell(vip, "source")},
        {"packets", cell(vip, "packets")},
        {"bytes", bytes_total(vip, "bytes")},
        {"new flows", cell(vip, "new_flows")},
        {"backends", backend_summary(backends)},
    });
    std::vector<std::vector<std::string>> rows{{"ADDRESS", "PORT", "WEIGHT", "STATE", "ACTIVE", "PACKETS", "BYTES"}};
    for (const auto& be : backends)
        rows.push_back({cell(be, "address"), cell(be, "port"), cell(be, "weight"), cell(be, "state"),
                        cell(be, "active_flows"), cell(be, "packets"), bytes_cell(be, "bytes")});
    // least-conn VIPs: the program's own counters (docs/scheduling.md), after ACTIVE.
    if (std::any_of(backends.begin(), backends.end(), [](const json& be) { return field(be, "lc_active"); })) {
        rows[0].insert(rows[0].begin() + 5, "LC-ACTIVE");
        for (size_t i = 0; i < backends.size(); i++)
            rows[i + 1].insert(rows[i + 1].begin() + 5, cell(backends[i], "lc_active"));
    }
    return out + "\n" + format_table(rows);
}

std::string format_reload(const json& r)
{
    const json& changes = array_field(r, "changes");
    if (changes.empty())
        return "reloaded: no changes\n";
    std::string out;
    for (const auto& c : changes)
        out += (c.is_string() ? printable(c.get<std::string>()) : printable(c.dump())) + "\n";
    return out;
}

std::optional<json> parse_response(std::string_view line, std::string& why)
{
    json r = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (r.is_discarded()) {
        why = "not JSON";
        return std::nullopt;
    }
    if (!r.is_object() || !r.contains("ok") || !r["ok"].is_boolean()) {
        why = "not an object with a boolean \"ok\"";
        return std::nullopt;
    }
    return r;
}

std::string connect_error(std::string_view socket, int err)
{
    std::string msg = "lbctl: cannot connect to " + std::string(socket) + ": " + std::strerror(err);
    switch (err) {
    case ENOENT:
    case ECONNREFUSED:
        msg += " (is lbd running?)";
        break;
    case EACCES:
    case EPERM:
        msg += " (run as root or as a member of lbd's control group)";
        break;
    case ENAMETOOLONG:
        msg += " (a Unix socket path has at most 107 bytes)";
        break;
    default:
        break;
    }
    return msg + "\n";
}

Output render(const json& request, const json& response, bool json_out)
{
    Output o;
    const json* okv = field(response, "ok");
    const bool ok = okv && okv->is_boolean() && okv->get<bool>();
    if (json_out)
        o.out = dump(response);
    if (!ok) {
        o.exit_code = kExitRefused;
        const std::string error = string_field(response, "error", "lbd refused the request without saying why");
        o.err = "lbctl: " + error + "\n";
        // A refused reload comes with every error, the first of them already
        // in "error": list them unless that one is all there is.
        const json& errors = array_field(response, "errors");
        const bool only_the_one = errors.size() == 1 && errors[0].is_string() &&
                                  error.find(printable(errors[0].get<std::string>())) != std::string::npos;
        if (!json_out && !only_the_one)
            for (const auto& e : errors)
                o.err += "  " + (e.is_string() ? printable(e.get<std::string>()) : printable(e.dump())) + "\n";
        return o;
    }
    o.exit_code = kExitOk;
    if (json_out)
        return o;

    const std::string cmd = string_field(request, "cmd", "");
    const std::string name = "'" + string_field(request, "name", "") + "'";
    const std::string backend = string_field(request, "backend", "");
    const json* vip = field(response, "vip");
    const auto vip_text = [&] { return vip ? "\n" + format_vip(*vip) : std::string(); };

    if (cmd == "status") {
        o.out = format_status(response);
    } else if (cmd == "lb.list") {
        o.out = format_lb_list(response);
    } else if (cmd == "lb.show") {
        o.out = vip ? format_vip(*vip) : dump(response);
    } else if (cmd == "lb.create") {
        o.out = "created VIP " + name + "\n" + vip_text();
    } else if (cmd == "lb.add-backend") {
        o.out = "added backend " + backend + " to " + name + "\n" + vip_text();
    } else if (cmd == "lb.set-weight") {
        const std::string w = cell(request, "weight");
        o.out = "set the weight of backend " + backend + " in " + name + " to " + w +
                (w == "0" ? " (draining: no new flows)" : "") + "\n" + vip_text();
    } else if (cmd == "lb.remove-backend") {
        const json* f = field(request, "force");
        const bool force = f && f->is_boolean() && f->get<bool>();
        o.out = "removed backend " + backend + " from " + name +
                (force ? " (its pinned flows re-scheduled to the other backends)" : " (flows pinned to it finish)") + "\n" + vip_text();
    } else if (cmd == "lb.set-health") {
        o.out = "changed the health checks of " + name + "\n" + vip_text();
    } else if (cmd == "lb.delete") {
        o.out = "deleted VIP " + name + "\n";
    } else if (cmd == "reload") {
        o.out = format_reload(response);
    } else if (cmd == "bgp.status") {
        o.out = string_field(response, "text", dump(response));
        if (!o.out.empty() && o.out.back() != '\n')
            o.out += "\n";
    } else if (cmd == "maintenance") {
        const json* on = field(response, "maintenance");
        o.out = std::string("maintenance ") + (on && on->is_boolean() && on->get<bool>() ? "on: created " : "off: removed ") +
                string_field(response, "file", "") + "\n";
    } else {
        o.out = dump(response);
    }
    return o;
}

}  // namespace lbctl
