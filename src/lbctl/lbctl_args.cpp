#include "lbctl/lbctl_args.h"

#include "common/duration.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <tuple>

#include <CLI/CLI.hpp>

namespace lbctl {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kFooter = R"(Socket: --socket PATH, else $LBD_SOCKET, else /run/lbd/lbd.sock.
Exit codes: 0 done; 1 lbd refused the request (its error on stderr, nothing
changed); 2 bad command line; 3 lbd could not be reached or did not answer.
Global options (--socket, --json, --timeout) go before or after the command.
See docs/lbctl.md and docs/control-protocol.md.)";

std::string_view trim(std::string_view s)
{
    const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && blank(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && blank(s.back()))
        s.remove_suffix(1);
    return s;
}

// The subcommand chain the parser got to, e.g. "lbctl lb create".
std::string command_path(const CLI::App& app)
{
    std::string path = app.get_name();
    const CLI::App* at = &app;
    while (true) {
        const auto subs = at->get_subcommands();
        if (subs.empty())
            break;
        at = subs.front();
        path += " " + at->get_name();
    }
    return path;
}

const CLI::App& deepest(const CLI::App& app)
{
    const CLI::App* at = &app;
    while (true) {
        const auto subs = at->get_subcommands();
        if (subs.empty())
            return *at;
        at = subs.front();
    }
}

Invocation usage_error(const CLI::App& app, const std::string& message)
{
    Invocation inv;
    inv.kind = Invocation::Kind::UsageError;
    inv.exit_code = kExitUsage;
    inv.text = "lbctl: " + message + "\nRun '" + command_path(app) + " --help' for usage.\n";
    return inv;
}

// Lowercases the first letter of CLI11's messages ("A subcommand is
// required") to match the rest of lbctl's.
std::string tidy(std::string msg)
{
    if (msg.size() > 1 && std::isupper(static_cast<unsigned char>(msg[0])) &&
        !std::isupper(static_cast<unsigned char>(msg[1])))
        msg[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(msg[0])));
    return msg;
}

}  // namespace

std::optional<std::vector<std::string>> split_backends(std::string_view text)
{
    std::vector<std::string> specs;
    if (trim(text).empty())
        return specs;
    while (true) {
        const size_t comma = text.find(',');
        const std::string_view item = trim(text.substr(0, comma));
        if (item.empty())
            return std::nullopt;
        specs.emplace_back(item);
        if (comma == std::string_view::npos)
            break;
        text.remove_prefix(comma + 1);
    }
    return specs;
}

std::optional<std::chrono::milliseconds> parse_timeout(std::string_view text)
{
    if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        uint64_t s = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), s);
        // Cap at a day's worth of seconds times a thousand: anything larger is a typo.
        if (ec != std::errc{} || end != text.data() + text.size() || s == 0 || s > 86'400'000)
            return std::nullopt;
        return std::chrono::milliseconds(s * 1000);
    }
    auto d = lbd::parse_duration(text);  // rejects 0 and negatives
    if (!d || d->count() <= 0)
        return std::nullopt;
    return d;
}

std::optional<uint64_t> parse_weight(std::string_view text)
{
    if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    uint64_t w = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), w);
    if (ec != std::errc{} || end != text.data() + text.size())
        return std::nullopt;
    return w;
}

Invocation parse_args(const std::vector<std::string>& args, const char* env_socket, std::string_view version)
{
    CLI::App app{"lbctl: the operator CLI for lbd, the XDP L4 load balancer. It sends one request to lbd's\n"
                 "control socket and prints the answer.",
                 "lbctl"};
    app.footer(kFooter);
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.set_version_flag("--version", "lbctl " + std::string(version), "Print lbctl's version and exit");
    app.require_subcommand(1);
    // Global options are accepted before or after the command.
    app.fallthrough();

    std::optional<std::string> socket_arg;
    std::string timeout_arg;
    bool json_out = false;
    app.add_option("--socket", socket_arg, "lbd's control socket (default: $LBD_SOCKET, else /run/lbd/lbd.sock)")
        ->type_name("PATH");
    app.add_flag("--json", json_out, "Print lbd's answer as JSON (raw counters) instead of tables");
    app.add_option("--timeout", timeout_arg,
                   "How long to wait for lbd, connecting and answering: 500ms, 10s, 2m or a number of "
                   "seconds (default 10s)")
        ->type_name("DURATION");

    // ---------------------------------------------------------- commands
    auto* status = app.add_subcommand(
        "status", "Show lbd: version, pid, uptime, config file, state dir, pin path, the interfaces the XDP "
                  "program is attached to with their XDP mode, and the VIP count");
    auto* reload = app.add_subcommand(
        "reload", "Make lbd re-read its config file and apply it, like SIGHUP. Prints the changes; on a bad "
                  "config prints every error and nothing changes (exit 1)");

    auto* bgp = app.add_subcommand("bgp", "Route health injection (ExaBGP under lbd)");
    bgp->require_subcommand(1);
    auto* bgp_status = bgp->add_subcommand(
        "status", "Show ExaBGP, each neighbor and its state, and each VIP prefix: announced or not, and why");
    std::string maint_arg;
    auto* maintenance = app.add_subcommand(
        "maintenance", "Create (on) or remove (off) the maintenance file: while it exists this node's VIP "
                       "prefixes are withdrawn (or announced depreferred, per bgp.maintenance_action)");
    maintenance->add_option("state", maint_arg, "on or off")->required()->check(CLI::IsMember({"on", "off"}));

    auto* lb = app.add_subcommand("lb", "Manage VIPs and their backends");
    lb->require_subcommand(1);

    auto* list = lb->add_subcommand(
        "list", "List the VIPs: address, protocol, algorithm, backends, healthy backends, and where each comes "
                "from (config, lbctl, or config+lbctl: from the config, changed by lbctl)");

    std::string name;
    auto* show = lb->add_subcommand(
        "show", "Show one VIP: its totals (packets, bytes, new flows), then each backend's port, weight, state, "
                "active flows, packets and bytes");
    show->add_option("NAME", name, "The VIP's name")->required()->type_name("");

    std::string vip, protocol, algorithm, backends_arg;
    auto* create = lb->add_subcommand(
        "create", "Create a VIP, with or without backends. lbd checks everything and creates nothing on an error. "
                  "Prints the new VIP");
    create->add_option("--name", name, "The VIP's name (unique; 1 to 63 of A-Z a-z 0-9 _ . -)")
        ->required()
        ->type_name("NAME");
    create->add_option("--vip", vip, "The VIP: ADDRESS:PORT, or [ADDRESS]:PORT for IPv6")
        ->required()
        ->type_name("ENDPOINT");
    auto* protocol_opt =
        create->add_option("--protocol", protocol, "tcp or udp (lbd's default: tcp)")->type_name("PROTO");
    auto* algorithm_opt =
        create->add_option("--algorithm", algorithm,
                           "How backends are picked: maglev, round-robin, weighted, least-conn, source-hash or "
                           "failover (lbd's default: maglev)")
            ->type_name("ALGO");
    std::string persistence_arg, netmask_arg, prefix_v6_arg;
    bool one_packet = false;
    auto* persistence_opt = create->add_option(
        "--persistence", persistence_arg,
        "Persistence: a client's new flows go to the backend of its earlier ones until it has been silent this "
        "long (300s, 5m)")->type_name("TIMEOUT");
    auto* netmask_opt = create->add_option("--persistence-netmask", netmask_arg,
                                           "With persistence: IPv4 clients grouped by this prefix length "
                                           "(default 32)")->type_name("N");
    auto* prefix_v6_opt = create->add_option("--persistence-prefix-v6", prefix_v6_arg,
                                             "With persistence: IPv6 clients grouped by this prefix length "
                                             "(default 128)")->type_name("N");
    create->add_flag("--one-packet", one_packet,
                     "UDP only: schedule every datagram on its own, with no connection table entry");
    create->add_option("--backends", backends_arg,
                       "Comma-separated backends: ADDRESS:PORT[:WEIGHT] or [ADDRESS]:PORT[:WEIGHT]; weight "
                       "defaults to 1; ADDRESS alone means the VIP's port. Leave out for a VIP without backends")
        ->type_name("SPECS")
        ->expected(0, 1);  // so that --backends="$EMPTY" means none

    std::string backend, weight_arg;
    bool force = false;
    auto* add_backend = lb->add_subcommand(
        "add-backend", "Add a backend to a VIP; it takes its share of new flows at once. Prints the VIP");
    add_backend->add_option("NAME", name, "The VIP's name")->required()->type_name("");
    add_backend
        ->add_option("--backend", backend,
                     "ADDRESS:PORT[:WEIGHT] or [ADDRESS]:PORT[:WEIGHT]; weight defaults to 1; ADDRESS alone means "
                     "the VIP's port")
        ->required()
        ->type_name("SPEC");

    std::string hc_type, hc_path, hc_expect, hc_interval, hc_timeout, hc_host, hc_via;
    std::optional<uint32_t> hc_unhealthy, hc_healthy;
    std::optional<uint16_t> hc_port;
    std::optional<bool> hc_half_open;
    auto* set_health = lb->add_subcommand(
        "set-health", "Change a VIP's health checks live (saved like every lbctl change). Options not given "
                      "keep their value; --type none removes the checks. Bad values (timeout not below "
                      "interval, zero thresholds, unknown type) are refused and nothing changes");
    set_health->add_option("NAME", name, "The VIP's name")->required()->type_name("");
    set_health->add_option("--type", hc_type, "tcp, http, https, udp, dns, icmp, exec, or none")->type_name("TYPE");
    set_health->add_option("--port", hc_port, "Probe this port (default: the VIP's)")->type_name("PORT");
    set_health->add_option("--path", hc_path, "http/https: the path to GET")->type_name("PATH");
    set_health->add_option("--expect-status", hc_expect, "http/https: a code or a range like 200-399")
        ->type_name("RANGE");
    set_health->add_option("--host", hc_host, "http/https: Host header and TLS SNI")->type_name("HOST");
    set_health->add_option("--interval", hc_interval, "Time between checks, e.g. 5s")->type_name("DURATION");
    set_health->add_option("--timeout", hc_timeout, "Time a check may take, below the interval")->type_name("DURATION");
    set_health->add_option("--unhealthy-threshold", hc_unhealthy, "Consecutive failures before down")->type_name("N");
    set_health->add_option("--healthy-threshold", hc_healthy, "Consecutive successes before up")->type_name("N");
    set_health->add_option("--via", hc_via, "direct (probe each backend's address) or tunnel (probe the VIP, "
                                            "encapsulated to each backend as client traffic is)")
        ->type_name("HOW");
    set_health->add_option("--half-open", hc_half_open, "tcp: true sends a SYN and takes the SYN-ACK as healthy "
                                                        "(no connection; needs CAP_NET_RAW, direct only)")
        ->type_name("BOOL");

    auto* set_weight = lb->add_subcommand(
        "set-weight", "Change a backend's weight: its share of new flows. Weight 0 drains it: no new flows, "
                      "established flows stay. Prints the VIP");
    set_weight->add_option("NAME", name, "The VIP's name")->required()->type_name("");
    set_weight->add_option("--backend", backend, "The backend: ADDRESS, ADDRESS:PORT or [ADDRESS]:PORT")
        ->required()
        ->type_name("BACKEND");
    set_weight->add_option("--weight", weight_arg, "The new weight, a non-negative integer; 0 drains")
        ->required()
        ->type_name("N");

    auto* remove_backend = lb->add_subcommand(
        "remove-backend", "Remove a backend from a VIP: it gets no new flows. By default gracefully: flows "
                          "pinned to it finish on it. With --force its pinned flows are re-scheduled to the other "
                          "backends at once, which breaks their connections. Prints the VIP");
    remove_backend->add_option("NAME", name, "The VIP's name")->required()->type_name("");
    remove_backend->add_option("--backend", backend, "The backend: ADDRESS, ADDRESS:PORT or [ADDRESS]:PORT")
        ->required()
        ->type_name("BACKEND");
    remove_backend->add_flag("--force", force,
                             "Re-schedule the backend's pinned flows now instead of letting them finish");

    auto* del = lb->add_subcommand("delete", "Delete a VIP with all its backends: lbd stops forwarding its traffic. A VIP from the "
                                   "config file stays deleted across reloads and restarts");
    del->add_option("NAME", name, "The VIP's name")->required()->type_name("");

    // ------------------------------------------------------------ parse
    if (args.empty()) {
        Invocation inv;
        inv.kind = Invocation::Kind::UsageError;
        inv.exit_code = kExitUsage;
        inv.text = app.help();
        return inv;
    }
    try {
        std::vector<std::string> reversed(args.rbegin(), args.rend());
        app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
        return {Invocation::Kind::Print, {}, {}, app.help(), kExitOk};
    } catch (const CLI::CallForAllHelp&) {
        return {Invocation::Kind::Print, {}, {}, app.help("", CLI::AppFormatMode::All), kExitOk};
    } catch (const CLI::CallForVersion& e) {
        return {Invocation::Kind::Print, {}, {}, std::string(e.what()) + "\n", kExitOk};
    } catch (const CLI::ParseError& e) {
        // A missing command says which ones there are.
        if (dynamic_cast<const CLI::RequiredError*>(&e) && deepest(app).get_require_subcommand_min() > 0 &&
            deepest(app).get_subcommands().empty()) {
            std::string names;
            for (const auto* sub : deepest(app).get_subcommands([](const CLI::App*) { return true; }))
                names += (names.empty() ? "" : ", ") + sub->get_name();
            // Words CLI11 could not place: the first is the unknown command.
            for (const auto& word : app.remaining(true))
                if (!word.empty() && word[0] != '-')
                    return usage_error(app, "unknown command '" + word + "' (commands of '" + command_path(app) +
                                                "': " + names + ")");
            return usage_error(app, "'" + command_path(app) + "' needs a command: " + names);
        }
        return usage_error(app, tidy(e.what()));
    }

    // ------------------------------------------------- global options
    Invocation inv;
    inv.kind = Invocation::Kind::Request;
    inv.exit_code = kExitOk;
    inv.options.json = json_out;
    if (socket_arg)
        inv.options.socket = *socket_arg;
    else if (env_socket && *env_socket)
        inv.options.socket = env_socket;
    if (inv.options.socket.empty())
        return usage_error(app, "--socket: the path is empty");
    if (!timeout_arg.empty() || app.count("--timeout")) {
        auto t = parse_timeout(timeout_arg);
        if (!t)
            return usage_error(app, "--timeout: '" + timeout_arg +
                                        "' is not a positive duration (e.g. 500ms, 10s, 2m, or seconds: 10)");
        inv.options.timeout = *t;
    }

    // ----------------------------------------------------- the request
    json& req = inv.request;
    if (status->parsed()) {
        req = {{"cmd", "status"}};
    } else if (reload->parsed()) {
        req = {{"cmd", "reload"}};
    } else if (bgp_status->parsed()) {
        req = {{"cmd", "bgp.status"}};
    } else if (maintenance->parsed()) {
        req = {{"cmd", "maintenance"}, {"on", maint_arg == "on"}};
    } else if (list->parsed()) {
        req = {{"cmd", "lb.list"}};
    } else if (show->parsed()) {
        req = {{"cmd", "lb.show"}, {"name", name}};
    } else if (create->parsed()) {
        auto specs = split_backends(backends_arg);
        if (!specs)
            return usage_error(app, "--backends: empty item in '" + backends_arg +
                                        "' (write backends separated by single commas)");
        req = {{"cmd", "lb.create"}, {"name", name}, {"vip", vip}};
        if (protocol_opt->count())
            req["protocol"] = protocol;
        if (algorithm_opt->count())
            req["algorithm"] = algorithm;
        if (persistence_opt->count() || netmask_opt->count() || prefix_v6_opt->count()) {
            json p = json::object();
            if (persistence_opt->count())
                p["timeout"] = persistence_arg;
            for (auto [opt, arg, key] : {std::tuple{netmask_opt, &netmask_arg, "netmask"},
                                         std::tuple{prefix_v6_opt, &prefix_v6_arg, "prefix_v6"}}) {
                if (!opt->count())
                    continue;
                auto n = parse_weight(*arg);  // a non-negative integer; lbd checks the range
                if (!n || *n > 1000)
                    return usage_error(app, std::string(opt->get_name()) + ": '" + *arg +
                                                "' is not a prefix length");
                p[key] = *n;
            }
            req["persistence"] = p;
        }
        if (one_packet)
            req["one_packet"] = true;
        req["backends"] = *specs;
    } else if (add_backend->parsed()) {
        req = {{"cmd", "lb.add-backend"}, {"name", name}, {"backend", backend}};
    } else if (set_health->parsed()) {
        req = {{"cmd", "lb.set-health"}, {"name", name}};
        auto put = [&](const char* key, const std::string& v) {
            if (!v.empty())
                req[key] = v;
        };
        put("type", hc_type);
        put("path", hc_path);
        put("expect_status", hc_expect);
        put("host", hc_host);
        put("interval", hc_interval);
        put("timeout", hc_timeout);
        put("via", hc_via);
        if (hc_port)
            req["port"] = *hc_port;
        if (hc_half_open)
            req["half_open"] = *hc_half_open;
        if (hc_unhealthy)
            req["unhealthy_threshold"] = *hc_unhealthy;
        if (hc_healthy)
            req["healthy_threshold"] = *hc_healthy;
    } else if (set_weight->parsed()) {
        auto w = parse_weight(weight_arg);
        if (!w)
            return usage_error(app, "--weight: '" + weight_arg + "' is not a non-negative integer");
        req = {{"cmd", "lb.set-weight"}, {"name", name}, {"backend", backend}, {"weight", *w}};
    } else if (remove_backend->parsed()) {
        req = {{"cmd", "lb.remove-backend"}, {"name", name}, {"backend", backend}, {"force", force}};
    } else if (del->parsed()) {
        req = {{"cmd", "lb.delete"}, {"name", name}};
    } else {
        return usage_error(app, "no command given");  // require_subcommand makes this unreachable
    }
    try {
        (void)req.dump();
    } catch (const json::type_error&) {
        return usage_error(app, "the arguments are not valid UTF-8");
    }
    return inv;
}

}  // namespace lbctl
