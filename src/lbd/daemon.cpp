#include "lbd/daemon.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lbd/control_server.h"
#include "lbd/core/controller.h"
#include "lbd/core/lb_state.h"
#include "lbd/core/overrides.h"
#include "lbd/core/reload.h"
#include "lbd/kernel/datapath.h"
#include "lbd/kernel/neigh.h"
#include "lbd/state_store.h"
#include "lbd_version.h"

namespace lbd {

namespace {

using nlohmann::json;
constexpr uint64_t kActiveFlowIdleNs = 300ull * 1000000000ull;

/// Tells systemd (Type=notify) about our state; a no-op outside systemd.
void sd_notify(const char* state)
{
    const char* path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
    socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + std::strlen(path));
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';  // abstract namespace
    const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sendto(fd, state, std::strlen(state), 0, reinterpret_cast<sockaddr*>(&sa), len);
    close(fd);
}

class DatapathStats final : public StatsSource {
public:
    explicit DatapathStats(const Datapath& dp) : dp_(dp) {}
    lbd_stats vip_stats(uint32_t id) const override { return dp_.vip_stats(id); }
    lbd_stats backend_stats(uint32_t id) const override { return dp_.backend_stats(id); }
    std::map<uint32_t, uint64_t> active_flows() const override
    {
        return dp_.active_flows(kActiveFlowIdleNs);
    }

private:
    const Datapath& dp_;
};

class Daemon {
public:
    Daemon(std::string path, Config cfg)
        : path_(std::move(path)), cfg_(std::move(cfg)), dp_(cfg_.datapath),
          state_(dp_.writer(), cfg_.datapath.maglev_ring_size, cfg_.datapath.max_vips,
                 cfg_.datapath.max_backends),
          store_(cfg_.control.state_dir), stats_(dp_),
          controller_(cfg_, overrides_, state_, stats_,
                      {[this] { persist(); }, [this] { return status(); }, [this] { return reload(); }})
    {
    }

    int run()
    {
        auto saved = store_.load();
        if (saved)
            overrides_ = overrides_from_json(saved->at("overrides"));
        if (dp_.adopted()) {
            std::vector<VipState> vips;
            if (saved && saved->contains("runtime"))
                vips = vip_states_from_json(saved->at("runtime"));
            else
                spdlog::warn("pinned maps under {} but no saved state in {}: established flows keep "
                             "their backends, new flows are scheduled afresh",
                             cfg_.datapath.pin_path, store_.path());
            for (const auto& line : state_.adopt(std::move(vips)))
                spdlog::info("{}", line);
        }
        state_.set_encap_sources(cfg_.datapath.encap_source_v4, cfg_.datapath.encap_source_v6);
        auto effective = vips_of(effective_vips(cfg_.vips, overrides_));
        Config candidate = cfg_;
        candidate.vips = effective;
        if (auto errors = validate(candidate); !errors.empty()) {
            for (const auto& e : errors)
                spdlog::error("with the live changes in {}: {}", store_.path(), e.str());
            throw std::runtime_error("the config file and the saved live changes conflict; fix the "
                                     "config or remove " + store_.path());
        }
        for (const auto& line : state_.apply(effective))
            spdlog::info("{}", line);
        persist();
        for (const auto& iface : cfg_.datapath.interfaces)
            for (const auto& line : enable_forwarding(iface))
                spdlog::info("{}", line);
        for (const auto& line : dp_.attach())
            spdlog::info("{}", line);

        NeighResolver neigh(io_, dp_.neigh_events_fd());
        ControlServer control(io_, cfg_.control.socket, cfg_.control.group,
                              [this](const json& r) { return controller_.handle(r); });
        boost::asio::signal_set stop(io_, SIGINT, SIGTERM);
        stop.async_wait([&](const boost::system::error_code& ec, int sig) {
            if (!ec) {
                spdlog::info("{} received, stopping", strsignal(sig));
                io_.stop();
            }
        });
        boost::asio::signal_set hup(io_, SIGHUP);
        std::function<void(const boost::system::error_code&, int)> on_hup =
            [&](const boost::system::error_code& ec, int) {
                if (ec)
                    return;
                reload();
                hup.async_wait(on_hup);
            };
        hup.async_wait(on_hup);

        spdlog::info("lbd {} running: {} VIPs on {} interfaces, control socket {}", LBD_VERSION,
                     state_.vips().size(), dp_.attachments().size(), cfg_.control.socket);
        sd_notify("READY=1");
        io_.run();
        sd_notify("STOPPING=1");
        control.stop();
        log_summary();
        spdlog::info("exiting; XDP stays attached and forwarding with the pinned maps under {} "
                     "(lbd --detach removes them)",
                     cfg_.datapath.pin_path);
        return 0;
    }

private:
    void persist()
    {
        store_.save({{"version", 1},
                     {"overrides", to_json(overrides_)},
                     {"runtime", to_json(state_.vips())}});
    }

    json status() const
    {
        json ifaces = json::array();
        for (const auto& a : dp_.attachments())
            ifaces.push_back({{"name", a.iface}, {"mode", to_string(a.mode)}});
        const auto up = std::chrono::steady_clock::now() - started_;
        return {{"version", LBD_VERSION},
                {"pid", getpid()},
                {"uptime_s", std::chrono::duration<double>(up).count()},
                {"config_file", path_},
                {"state_dir", cfg_.control.state_dir},
                {"pin_path", cfg_.datapath.pin_path},
                {"interfaces", ifaces},
                {"vips", state_.vips().size()}};
    }

    /// SIGHUP and `lbctl reload`: apply the config file's difference, or refuse.
    json reload()
    {
        spdlog::info("reloading {}", path_);
        auto refuse = [&](std::vector<std::string> errors) {
            for (const auto& e : errors)
                spdlog::error("reload: {}", e);
            spdlog::error("reload refused; running state unchanged");
            return json{{"ok", false}, {"error", "reload refused: " + errors.front()}, {"errors", errors}};
        };
        auto res = load_config_file(path_);
        if (auto* errs = std::get_if<std::vector<ConfigError>>(&res)) {
            std::vector<std::string> lines;
            for (const auto& e : *errs)
                lines.push_back(e.str(path_));
            return refuse(lines);
        }
        Config next = std::get<Config>(std::move(res));
        auto keys = restart_only_changes(cfg_.datapath, next.datapath);
        if (next.control.socket != cfg_.control.socket || next.control.group != cfg_.control.group ||
            next.control.state_dir != cfg_.control.state_dir)
            keys.push_back("control");
        if (!keys.empty()) {
            std::string list;
            for (const auto& k : keys)
                list += (list.empty() ? "" : ", ") + k;
            return refuse({list + " changed, which needs a restart"});
        }
        Config candidate = next;
        candidate.vips = vips_of(effective_vips(next.vips, overrides_));
        if (auto errs = validate(candidate); !errs.empty()) {
            std::vector<std::string> lines;
            for (const auto& e : errs)
                lines.push_back("with the live changes: " + e.str());
            return refuse(lines);
        }
        if (next.datapath.encap_source_v4 != cfg_.datapath.encap_source_v4 ||
            next.datapath.encap_source_v6 != cfg_.datapath.encap_source_v6) {
            state_.set_encap_sources(next.datapath.encap_source_v4, next.datapath.encap_source_v6);
            spdlog::info("encap sources updated");
        }
        json changes = json::array();
        for (const auto& line : state_.apply(candidate.vips)) {
            spdlog::info("{}", line);
            changes.push_back(line);
        }
        cfg_ = std::move(next);
        persist();
        spdlog::info("reload applied: {} change{}", changes.size(), changes.size() == 1 ? "" : "s");
        return {{"ok", true}, {"changes", changes}};
    }

    void log_summary() const
    {
        const auto c = dp_.counters();
        std::string line;
        for (unsigned i = 0; i < c.size(); i++)
            if (c[i])
                line += std::string(" ") + lbd_counter_name(i) + "=" + std::to_string(c[i]);
        spdlog::info("counters:{}", line.empty() ? " (none)" : line);
        for (const auto& [name, v] : state_.vips()) {
            const auto s = dp_.vip_stats(v.vip_id);
            spdlog::info("vip {}: packets={} bytes={} new_flows={}", name, s.packets, s.bytes, s.new_flows);
            for (const auto& b : v.backends) {
                const auto bs = dp_.backend_stats(b.id);
                spdlog::info("vip {}: backend {} weight={} packets={} bytes={} new_flows={}", name,
                             b.address.str(), b.weight, bs.packets, bs.bytes, bs.new_flows);
            }
        }
    }

    std::string path_;
    Config cfg_;
    boost::asio::io_context io_;
    Datapath dp_;
    LbState state_;
    StateStore store_;
    Overrides overrides_;
    DatapathStats stats_;
    Controller controller_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace

int run_daemon(const std::string& config_path, Config cfg)
{
    ensure_bpffs();
    Daemon d(config_path, std::move(cfg));
    return d.run();
}

int detach_datapath(const std::string& pin_path)
{
    for (const auto& line : Datapath::remove_pins(pin_path))
        spdlog::info("{}", line);
    return 0;
}

}  // namespace lbd
