// hc_probe: runs lbd's HealthChecker over the targets in a YAML file and
// prints one line per state change (and, with --probes, per probe result).
// Used by tests/integration/test_health_probes.sh. See --help.
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "health/checker.h"
#include "lbd/core/yaml_reader.h"

using namespace lbd;
using namespace lbd::health;

namespace {

constexpr const char* kUsage = R"(usage: hc_probe [--probes] [--quiet] TARGETS.yaml

Runs lbd's health checker over the targets in TARGETS.yaml until SIGTERM or
SIGINT (then exits 0). SIGHUP re-reads the file: unchanged targets keep their
state, new ones start unknown, removed ones stop.

Prints to stdout, one line each, flushed; TIME is seconds since start:
  TIME ready N                                   targets loaded (also after SIGHUP)
  TIME change VIP ENDPOINT FROM -> TO (REASON)   a state change
  TIME probe VIP ENDPOINT ok|fail REASON         every probe result (--probes)
The checker's own log goes to stderr (--quiet: warnings and errors only).

TARGETS.yaml:
  targets:
    - vip: web                # name (the target key is vip + address)
      address: 198.18.2.10
      port: 80                # the service port; health.port overrides it
      mark: 0x10              # optional SO_MARK
      source: 198.18.2.1      # optional source address to bind
      tunnel_to: 198.18.1.100 # optional: probe this address (the VIP) with TTL 1,
                              # for lbd's TC program to encapsulate by `mark`
      health: {type: http, interval: 500ms, timeout: 200ms, path: /healthz}
The health mapping is a VIP's health section (see docs/health.md).
Exit status: 0 after SIGTERM/SIGINT, 2 for usage or file errors.
)";

const auto kStart = std::chrono::steady_clock::now();

void emit(const std::string& text)
{
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - kStart).count();
    std::printf("%.3f %s\n", t, text.c_str());
    std::fflush(stdout);
}

/// Reads the targets file; errors as "FILE:LINE: KEY: MESSAGE" lines.
bool load(const std::string& file, std::vector<Target>& out, std::string& errors)
{
    std::ifstream in(file);
    if (!in) {
        errors = file + ": cannot open: " + std::strerror(errno) + "\n";
        return false;
    }
    std::stringstream text;
    text << in.rdbuf();
    YAML::Node root;
    try {
        root = YAML::Load(text.str());
    } catch (const YAML::Exception& e) {
        errors = file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg + "\n";
        return false;
    }
    YamlReader r;
    std::vector<Target> targets;
    if (auto f = r.fields(root, "", {"targets"})) {
        auto n = r.require(*f, "", "targets");
        if (n && !n->IsSequence())
            r.error("targets", "must be a list");
        else if (n)
            for (size_t i = 0; i < n->size(); ++i) {
                const YAML::Node& item = (*n)[i];
                auto path = at("targets", i);
                r.note_line(path, line_of(item));
                auto& t = targets.emplace_back();
                auto tf = r.fields(item, path, {"vip", "address", "port", "mark", "source", "tunnel_to", "health"});
                if (!tf)
                    continue;
                if (auto v = r.require(*tf, path, "vip"))
                    t.vip = r.text(*v, path + ".vip", "a name").value_or("");
                if (auto v = r.require(*tf, path, "address"))
                    if (auto a = r.address(*v, path + ".address"))
                        t.address = *a;
                if (auto v = find(*tf, "port"))
                    r.integer(*v, path + ".port", Range{1, 65535}, t.port);
                if (auto v = find(*tf, "mark")) {
                    uint32_t mark = 0;
                    auto before = r.errors.size();
                    r.integer(*v, path + ".mark", Range{0, UINT32_MAX}, mark);
                    if (r.errors.size() == before)
                        t.mark = mark;
                }
                if (auto v = find(*tf, "source"))
                    t.source = r.address(*v, path + ".source");
                if (auto v = find(*tf, "tunnel_to"))
                    t.tunnel_to = r.address(*v, path + ".tunnel_to");
                if (auto v = find(*tf, "health"))
                    read_health(r, *v, path + ".health", t.config);
                validate_health(r, t.config, path + ".health");
                // lbd gives the marks and the VIP; here the file must.
                if (t.config.via == health::Via::Tunnel && (!t.tunnel_to || !t.mark) &&
                    !r.failed.contains(path + ".health.via"))
                    r.error(path + ".health.via", "tunnel needs tunnel_to (the VIP) and mark");
                if (!t.config.port && t.port == 0 && t.config.type != CheckType::Icmp &&
                    !r.failed.contains(path + ".port"))
                    r.error(path + ".port", "is required (or health.port)");
            }
    }
    for (const auto& e : r.errors)
        errors += e.str(file) + "\n";
    if (!r.errors.empty())
        return false;
    out = std::move(targets);
    return true;
}

}  // namespace

int main(int argc, char** argv)
{
    bool probes = false, quiet = false;
    std::string file;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << kUsage;
            return 0;
        }
        if (a == "--probes")
            probes = true;
        else if (a == "--quiet")
            quiet = true;
        else if (!a.starts_with("-") && file.empty())
            file = a;
        else {
            std::cerr << kUsage;
            return 2;
        }
    }
    if (file.empty()) {
        std::cerr << kUsage;
        return 2;
    }
    spdlog::set_default_logger(spdlog::stderr_logger_mt("hc_probe"));
    spdlog::set_level(quiet ? spdlog::level::warn : spdlog::level::info);

    std::vector<Target> targets;
    std::string errors;
    if (!load(file, targets, errors)) {
        std::cerr << errors;
        return 2;
    }

    boost::asio::io_context io;
    HealthChecker checker(io);
    checker.on_change([](const Target& t, const Transition& tr) {
        emit("change " + t.vip + " " + t.endpoint() + " " + to_string(tr.from) + " -> " + to_string(tr.to) + " (" +
             tr.reason + ")");
    });
    if (probes)
        checker.on_probe([](const Target& t, const ProbeResult& r) {
            emit("probe " + t.vip + " " + t.endpoint() + " " + (r.ok ? "ok " : "fail ") + r.reason);
        });
    size_t n = targets.size();
    checker.set_targets(std::move(targets));
    emit("ready " + std::to_string(n));

    boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
    boost::asio::signal_set hup(io, SIGHUP);
    stop_signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec)
            return;
        checker.stop();
        hup.cancel();
    });
    std::function<void(const boost::system::error_code&, int)> on_hup = [&](const boost::system::error_code& ec,
                                                                            int) {
        if (ec)
            return;
        std::vector<Target> fresh;
        std::string errs;
        if (load(file, fresh, errs)) {
            size_t count = fresh.size();
            checker.set_targets(std::move(fresh));
            emit("ready " + std::to_string(count));
        } else {
            std::cerr << errs << "hc_probe: reload refused, targets unchanged\n";
        }
        hup.async_wait(on_hup);
    };
    hup.async_wait(on_hup);
    io.run();
    return 0;
}
