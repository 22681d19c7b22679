// lbd: the load balancer daemon. Reads its YAML config, loads and attaches the
// XDP program, programs VIPs, backends and Maglev rings, and runs until
// SIGTERM or SIGINT. It does not daemonise: systemd (or the lab) supervises.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <spdlog/spdlog.h>
#include <string>
#include <unistd.h>

#include "lbd/core/config.h"
#include "lbd/core/lb_state.h"
#include "lbd/core/reload.h"
#include "lbd/kernel/datapath.h"
#include "lbd/kernel/neigh.h"
#include "lbd_version.h"

namespace {

const char* const kUsage = R"(usage: lbd --config FILE
       lbd --check-config FILE
       lbd --version | --help

lbd is an XDP layer-4 load balancer. With --config it loads the XDP program,
attaches it to the configured interfaces, programs every VIP's backends and
Maglev ring, and forwards until SIGTERM or SIGINT; then it detaches.
SIGHUP re-reads the config file and applies the difference live (VIPs,
backends, weights, encap sources); a config with errors, or one that changes
a key needing a restart, is refused and the running state is kept.

  --config FILE        run with this YAML config (see etc/lbd.yaml)
  --check-config FILE  validate FILE, print every error with its line, exit
                       0 if valid and 2 if not; nothing is loaded or attached
  --log-level LEVEL    trace, debug, info (default), warn, error
  --version            print the version
  --help               print this help

Exit status: 0 after a clean stop, 1 on a runtime error (load or attach
failed: nothing is left attached), 2 on a bad command line or config.
)";

std::optional<lbd::Config> load(const std::string& path)
{
    auto res = lbd::load_config_file(path);
    if (auto* errs = std::get_if<std::vector<lbd::ConfigError>>(&res)) {
        for (const auto& e : *errs)
            std::fprintf(stderr, "%s\n", e.str(path).c_str());
        std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), errs->size(),
                     errs->size() == 1 ? "" : "s");
        return std::nullopt;
    }
    return std::get<lbd::Config>(std::move(res));
}

void log_summary(const lbd::Datapath& dp, const lbd::LbState& st)
{
    const auto c = dp.counters();
    std::string line;
    for (unsigned i = 0; i < c.size(); i++)
        if (c[i])
            line += std::string(" ") + lbd_counter_name(i) + "=" + std::to_string(c[i]);
    spdlog::info("counters:{}", line.empty() ? " (none)" : line);
    for (const auto& [name, v] : st.vips()) {
        const auto s = dp.vip_stats(v.vip_id);
        spdlog::info("vip {}: packets={} bytes={} new_flows={}", name, s.packets, s.bytes,
                     s.new_flows);
        for (const auto& b : v.backends) {
            const auto bs = dp.backend_stats(b.id);
            spdlog::info("vip {}: backend {} weight={} packets={} bytes={} new_flows={}", name,
                         b.address.str(), b.weight, bs.packets, bs.bytes, bs.new_flows);
        }
    }
}

/// SIGHUP: re-read the file, apply only what changed, or refuse and keep running.
void reload(const std::string& path, lbd::Config& running, lbd::LbState& state)
{
    spdlog::info("reloading {}", path);
    auto next = load(path);
    if (!next) {
        spdlog::error("reload refused: {} has errors (see above); running state unchanged", path);
        return;
    }
    const auto keys = lbd::restart_only_changes(running.datapath, next->datapath);
    if (!keys.empty()) {
        std::string list;
        for (const auto& k : keys)
            list += (list.empty() ? "" : ", ") + k;
        spdlog::error("reload refused: {} changed, which needs a restart; running state unchanged",
                      list);
        return;
    }
    if (next->datapath.encap_source_v4 != running.datapath.encap_source_v4 ||
        next->datapath.encap_source_v6 != running.datapath.encap_source_v6) {
        state.set_encap_sources(next->datapath.encap_source_v4, next->datapath.encap_source_v6);
        spdlog::info("encap sources updated");
    }
    const auto changes = state.apply(next->vips);
    for (const auto& line : changes)
        spdlog::info("{}", line);
    spdlog::info("reload applied: {} change{}", changes.size(), changes.size() == 1 ? "" : "s");
    running = std::move(*next);
}

int run(const std::string& path, lbd::Config cfg)
{
    lbd::ensure_bpffs();
    lbd::Datapath dp(cfg.datapath);
    lbd::LbState state(dp.writer(), cfg.datapath.maglev_ring_size, cfg.datapath.max_vips,
                       cfg.datapath.max_backends);
    state.set_encap_sources(cfg.datapath.encap_source_v4, cfg.datapath.encap_source_v6);
    for (const auto& line : state.apply(cfg.vips))
        spdlog::info("{}", line);
    for (const auto& iface : cfg.datapath.interfaces)
        for (const auto& line : lbd::enable_forwarding(iface))
            spdlog::info("{}", line);
    for (const auto& line : dp.attach())
        spdlog::info("{}", line);

    boost::asio::io_context io;
    lbd::NeighResolver neigh(io, dp.neigh_events_fd());
    boost::asio::signal_set stop_signals(io, SIGINT, SIGTERM);
    stop_signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (!ec) {
            spdlog::info("{} received, stopping", strsignal(sig));
            io.stop();
        }
    });
    boost::asio::signal_set hup(io, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_hup =
        [&](const boost::system::error_code& ec, int) {
            if (ec)
                return;
            try {
                reload(path, cfg, state);
            } catch (const std::exception& e) {
                spdlog::error("reload failed while applying: {}", e.what());
            }
            hup.async_wait(on_hup);
        };
    hup.async_wait(on_hup);
    spdlog::info("lbd {} running: {} VIPs on {} interfaces", LBD_VERSION, state.vips().size(),
                 dp.attachments().size());
    io.run();

    log_summary(dp, state);
    dp.detach();
    spdlog::info("detached; bye");
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
    std::string config, check, level = "info";
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "lbd: %s needs a value\n%s", a.c_str(), kUsage);
                std::exit(2);
            }
            out = argv[++i];
        };
        if (a == "--config")
            value(config);
        else if (a == "--check-config")
            value(check);
        else if (a == "--log-level")
            value(level);
        else if (a == "--version") {
            std::printf("lbd %s\n", LBD_VERSION);
            return 0;
        } else if (a == "--help" || a == "-h") {
            std::printf("%s", kUsage);
            return 0;
        } else {
            std::fprintf(stderr, "lbd: unknown argument '%s'\n%s", a.c_str(), kUsage);
            return 2;
        }
    }
    const auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off") {
        std::fprintf(stderr, "lbd: unknown log level '%s'\n", level.c_str());
        return 2;
    }
    spdlog::set_level(lvl);

    if (!check.empty()) {
        auto cfg = load(check);
        if (!cfg)
            return 2;
        std::printf("%s: ok (%zu VIPs)\n", check.c_str(), cfg->vips.size());
        return 0;
    }
    if (config.empty()) {
        std::fprintf(stderr, "lbd: --config FILE is required\n%s", kUsage);
        return 2;
    }
    auto cfg = load(config);
    if (!cfg)
        return 2;
    try {
        return run(config, std::move(*cfg));
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
}
