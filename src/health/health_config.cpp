#include "health/health_config.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include "common/duration.h"
#include "lbd/core/yaml_reader.h"

namespace lbd::health {

namespace {

constexpr Range kPort{1, 65535};
constexpr Range kThreshold{1, 1000};
constexpr int kMinStatus = 100;
constexpr int kMaxStatus = 599;

constexpr std::array<std::pair<std::string_view, CheckType>, 7> kTypes{{
    {"tcp", CheckType::Tcp},
    {"http", CheckType::Http},
    {"https", CheckType::Https},
    {"udp", CheckType::Udp},
    {"dns", CheckType::Dns},
    {"icmp", CheckType::Icmp},
    {"exec", CheckType::Exec},
}};

constexpr std::array<std::pair<std::string_view, uint16_t>, 11> kDnsTypes{{
    {"A", 1},
    {"NS", 2},
    {"CNAME", 5},
    {"SOA", 6},
    {"PTR", 12},
    {"MX", 15},
    {"TXT", 16},
    {"AAAA", 28},
    {"SRV", 33},
    {"CAA", 257},
    {"ANY", 255},
}};

/// Keys that only some types take, with the types that take them (a mask of
/// 1 << CheckType).
struct TypedKey {
    std::string_view name;
    unsigned types;
};

constexpr unsigned bit(CheckType t)
{
    return 1u << static_cast<unsigned>(t);
}

constexpr unsigned kHttpTypes = bit(CheckType::Http) | bit(CheckType::Https);
constexpr unsigned kAllTypes = (1u << kTypes.size()) - 1;

constexpr std::array<TypedKey, 12> kTypedKeys{{
    {"port", kAllTypes & ~bit(CheckType::Icmp)},
    {"path", kHttpTypes},
    {"expect_status", kHttpTypes},
    {"host", kHttpTypes},
    {"tls_verify", bit(CheckType::Https)},
    {"payload", bit(CheckType::Udp)},
    {"expect", bit(CheckType::Udp)},
    {"query_name", bit(CheckType::Dns)},
    {"query_type", bit(CheckType::Dns)},
    {"command", bit(CheckType::Exec)},
    {"half_open", bit(CheckType::Tcp)},
    {"via", kAllTypes},
}};

std::string type_list(unsigned types)
{
    std::string out;
    for (auto [name, type] : kTypes)
        if (types & bit(type))
            out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

bool printable_no_space(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

/// Checks a DNS name as written ("example.org", "example.org.", "."); the
/// reason it is not one, or empty.
std::string dns_name_problem(std::string_view name)
{
    if (name.empty())
        return "must not be empty";
    if (name == ".")
        return {};
    if (name.ends_with('.'))
        name.remove_suffix(1);
    if (name.size() > 253)
        return "is longer than 253 characters";
    size_t start = 0;
    while (start <= name.size()) {
        size_t end = name.find('.', start);
        if (end == name.npos)
            end = name.size();
        size_t len = end - start;
        if (len == 0)
            return "has an empty label";
        if (len > 63)
            return "has a label longer than 63 characters";
        start = end + 1;
    }
    if (!printable_no_space(name))
        return "must not contain spaces or control characters";
    return {};
}

class Checks {
public:
    Checks(const std::string& path, const std::set<std::string, std::less<>>& failed)
        : path_(path), failed_(failed) {}

    std::vector<ConfigError> run(const HealthConfig& c)
    {
        bool type_ok = !bad("type");
        if (!bad("interval") && !bad("timeout") && c.timeout >= c.interval)
            error("timeout", "must be below interval (" + format_duration(c.interval) + "), not " +
                                 format_duration(c.timeout));
        if (!bad("interval") && c.interval.count() <= 0)
            error("interval", "must be positive");
        if (!bad("timeout") && c.timeout.count() <= 0)
            error("timeout", "must be positive");
        threshold("unhealthy_threshold", c.unhealthy_threshold);
        threshold("healthy_threshold", c.healthy_threshold);
        if (c.port && !bad("port") && *c.port == 0)
            error("port", range_message(kPort));
        if (!type_ok)
            return std::move(errors_);
        bool http = c.type == CheckType::Http || c.type == CheckType::Https;
        if (http && !bad("expect_status")) {
            auto r = c.expect_status;
            if (r.lo < kMinStatus || r.lo > kMaxStatus || r.hi < kMinStatus || r.hi > kMaxStatus)
                error("expect_status", "status codes must be between 100 and 599");
            else if (r.lo > r.hi)
                error("expect_status", "range " + r.str() + " is empty: the first code must not exceed the second");
        }
        if (http && !bad("path") && (!c.path.starts_with('/') || !printable_no_space(c.path)))
            error("path", "must start with '/' and contain no spaces or control characters");
        if (http && c.host && !bad("host") && (c.host->empty() || c.host->size() > 255 || !printable_no_space(*c.host)))
            error("host", "must be a host name (1 to 255 characters, no spaces or control characters)");
        if (c.type == CheckType::Udp && c.expect && !bad("expect") && c.expect->empty())
            error("expect", "must not be empty (leave it out to accept any reply)");
        if (c.type == CheckType::Dns && !bad("query_name")) {
            if (c.query_name.empty())
                error("query_name", "is required for type dns");
            else if (auto why = dns_name_problem(c.query_name); !why.empty())
                error("query_name", "'" + c.query_name + "' is not a DNS name: " + why);
        }
        if (c.type == CheckType::Tcp && c.half_open && c.via == Via::Tunnel && !bad("via") && !bad("half_open"))
            error("half_open", "does not apply with via: tunnel: a half-open check sends its SYN from one raw "
                               "socket, and probes via tunnel need a socket mark per backend (use via: direct, "
                               "or a full tcp check)");
        if (c.type == CheckType::Exec && c.via == Via::Tunnel && !bad("via"))
            error("via", "tunnel does not apply to type exec: the command runs on lbd's host, not through the "
                         "VIP (use direct)");
        if (c.type == CheckType::Exec && !bad("command")) {
            if (c.command.empty())
                error("command", "is required for type exec (a list: the program and its arguments)");
            else if (c.command[0].empty())
                error("command", "the program (first item) must not be empty");
        }
        return std::move(errors_);
    }

private:
    const std::string& path_;
    const std::set<std::string, std::less<>>& failed_;
    std::vector<ConfigError> errors_;

    std::string key(std::string_view name) const { return path_ + "." + std::string(name); }

    bool bad(std::string_view name) const
    {
        auto k = key(name);
        for (size_t i = 0; i <= k.size(); ++i)
            if ((i == k.size() || k[i] == '.' || k[i] == '[') && failed_.contains(std::string_view(k).substr(0, i)))
                return true;
        return false;
    }

    void error(std::string_view name, std::string message) { errors_.push_back({key(name), 0, std::move(message)}); }

    void threshold(std::string_view name, uint32_t v)
    {
        if (!bad(name) && (v < kThreshold.lo || v > kThreshold.hi))
            error(name, range_message(kThreshold));
    }
};

}  // namespace

std::string to_string(CheckType t)
{
    for (auto [name, type] : kTypes)
        if (type == t)
            return std::string(name);
    return "?";
}

std::string to_string(Via v)
{
    return v == Via::Tunnel ? "tunnel" : "direct";
}

std::optional<CheckType> parse_check_type(std::string_view s)
{
    for (auto [name, type] : kTypes)
        if (name == s)
            return type;
    return std::nullopt;
}

std::optional<StatusRange> StatusRange::parse(std::string_view text)
{
    auto number = [](std::string_view s) -> std::optional<uint16_t> {
        uint16_t v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc{} || end != s.data() + s.size())
            return std::nullopt;
        return v;
    };
    auto dash = text.find('-');
    auto lo = number(text.substr(0, dash));
    auto hi = dash == text.npos ? lo : number(text.substr(dash + 1));
    if (!lo || !hi)
        return std::nullopt;
    return StatusRange{*lo, *hi};
}

std::string StatusRange::str() const
{
    return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
}

std::optional<uint16_t> parse_dns_type(std::string_view s)
{
    for (auto [name, type] : kDnsTypes)
        if (std::equal(name.begin(), name.end(), s.begin(), s.end(),
                       [](char a, char b) { return a == (b >= 'a' && b <= 'z' ? b - 32 : b); }))
            return type;
    if (s.size() > 4 && (s.starts_with("TYPE") || s.starts_with("type")))
        s.remove_prefix(4);
    uint16_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v == 0)
        return std::nullopt;
    return v;
}

std::string dns_type_name(uint16_t type)
{
    for (auto [name, t] : kDnsTypes)
        if (t == type)
            return std::string(name);
    return "TYPE" + std::to_string(type);
}

void read_health(YamlReader& r, const YAML::Node& n, const std::string& path, HealthConfig& out)
{
    if (n.IsNull())  // "health:" with nothing under it: all defaults
        return;
    auto f = r.fields(n, path,
                      {"type", "port", "interval", "timeout", "unhealthy_threshold", "healthy_threshold", "path",
                       "expect_status", "host", "tls_verify", "payload", "expect", "query_name", "query_type",
                       "command", "half_open", "via"});
    if (!f)
        return;
    auto key = [&](std::string_view name) { return path + "." + std::string(name); };

    bool type_known = true;
    if (auto v = find(*f, "type"))
        if (auto s = r.text(*v, key("type"), "a check type")) {
            if (auto t = parse_check_type(*s))
                out.type = *t;
            else {
                r.error(key("type"), "unknown type '" + *s + "' (tcp, http, https, udp, dns, icmp or exec)");
                type_known = false;
            }
        }
    if (r.failed.contains(key("type")))
        type_known = false;
    if (type_known)
        for (const auto& tk : kTypedKeys)
            if (find(*f, tk.name) && !(tk.types & bit(out.type)))
                r.error(key(tk.name), "does not apply to type " + to_string(out.type) + " (only to " +
                                          type_list(tk.types) + ")");

    if (auto v = find(*f, "port")) {
        uint16_t port = 0;
        auto before = r.errors.size();
        r.integer(*v, key("port"), kPort, port);
        if (r.errors.size() == before)
            out.port = port;
    }
    if (auto v = find(*f, "interval"))
        if (auto d = r.duration(*v, key("interval")))
            out.interval = *d;
    if (auto v = find(*f, "timeout"))
        if (auto d = r.duration(*v, key("timeout")))
            out.timeout = *d;
    if (auto v = find(*f, "unhealthy_threshold"))
        r.integer(*v, key("unhealthy_threshold"), kThreshold, out.unhealthy_threshold);
    if (auto v = find(*f, "healthy_threshold"))
        r.integer(*v, key("healthy_threshold"), kThreshold, out.healthy_threshold);
    if (auto v = find(*f, "path"))
        if (auto s = r.text(*v, key("path"), "a URL path such as /healthz"))
            out.path = *s;
    if (auto v = find(*f, "expect_status"))
        if (auto s = r.text(*v, key("expect_status"), "a status code or a range such as 200-399")) {
            if (auto range = StatusRange::parse(*s))
                out.expect_status = *range;
            else
                r.error(key("expect_status"), "'" + *s + "' is not a status code or a range such as 200-399");
        }
    if (auto v = find(*f, "host"))
        if (auto s = r.text(*v, key("host"), "a host name"))
            out.host = *s;
    if (auto v = find(*f, "tls_verify"))
        if (auto b = r.boolean(*v, key("tls_verify")))
            out.tls_verify = *b;
    if (auto v = find(*f, "payload"))
        if (auto s = r.text(*v, key("payload"), "a string"))
            out.payload = *s;
    if (auto v = find(*f, "expect"))
        if (auto s = r.text(*v, key("expect"), "a string"))
            out.expect = *s;
    if (auto v = find(*f, "query_name"))
        if (auto s = r.text(*v, key("query_name"), "a DNS name"))
            out.query_name = *s;
    if (auto v = find(*f, "query_type"))
        if (auto s = r.text(*v, key("query_type"), "a DNS type such as A, AAAA, TXT or SOA")) {
            if (auto t = parse_dns_type(*s))
                out.query_type = *t;
            else
                r.error(key("query_type"),
                        "unknown DNS type '" + *s + "' (A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, CAA, ANY or a number)");
        }
    if (auto v = find(*f, "command")) {
        if (!v->IsSequence() || v->size() == 0) {
            r.error(key("command"), "must be a list: the program and its arguments (no shell)");
        } else {
            out.command.clear();
            for (size_t i = 0; i < v->size(); ++i) {
                auto k = at(key("command"), i);
                r.note_line(k, line_of((*v)[i]));
                out.command.push_back(r.text((*v)[i], k, "a string").value_or(""));
            }
        }
    }
    if (auto v = find(*f, "half_open"))
        if (auto b = r.boolean(*v, key("half_open")))
            out.half_open = *b;
    if (auto v = find(*f, "via"))
        if (auto s = r.text(*v, key("via"), "direct or tunnel")) {
            if (*s == "direct")
                out.via = Via::Direct;
            else if (*s == "tunnel")
                out.via = Via::Tunnel;
            else
                r.error(key("via"), "must be direct or tunnel, not '" + *s + "'");
        }
}

std::vector<ConfigError> validate_health(const HealthConfig& cfg, const std::string& path,
                                         const std::set<std::string, std::less<>>& failed)
{
    return Checks(path, failed).run(cfg);
}

void validate_health(YamlReader& r, const HealthConfig& cfg, const std::string& path)
{
    for (auto& e : validate_health(cfg, path, r.failed)) {
        e.line = r.line_for(e.key);
        r.errors.push_back(std::move(e));
    }
}

}  // namespace lbd::health
