#include "lbd/daemon.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bgp/maintenance_watch.h"
#include "bgp/supervisor.h"
#include "health/checker.h"
#include "lbd/control_server.h"
#include "lbd/core/controller.h"
#include "lbd/core/health_targets.h"
#include "lbd/core/lb_state.h"
#include "lbd/core/overrides.h"
#include "lbd/core/reload.h"
#include "lbd/kernel/datapath.h"
#include "lbd/kernel/neigh.h"
#include "lbd/kernel/probe_tunnel.h"
#include "lbd/state_store.h"
#include "lbd_version.h"

namespace lbd {

namespace {

using nlohmann::json;
constexpr uint64_t kActiveFlowIdleNs = 300ull * 1000000000ull;
// least-conn: how often idle flows stop counting, and after how long
// (docs/scheduling.md).
constexpr std::chrono::seconds kLeastConnReconcile{10};
constexpr uint64_t kLeastConnIdleTcpNs = 300ull * 1000000000ull;
constexpr uint64_t kLeastConnIdleUdpNs = 60ull * 1000000000ull;

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
    std::map<uint32_t, int64_t> least_conn_active(const std::vector<uint32_t>& ids) const override
    {
        return dp_.least_conn_active(ids);
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
                      {[this] { persist(); }, [this] { return status(); }, [this] { return reload(); },
                       [this] { refresh_health_targets(); update_bgp(); },
                       [this](const std::string& vip, const IpAddr& a) { return health_of(vip, a); },
                       [this] { return bgp_status(); },
                       [this](bool on) { return set_maintenance(on); }})
    {
        checker_.on_change([this](const health::Target& t, const health::Transition& tr) {
            if (state_.set_health(t.vip, t.address, tr.to == health::State::Up)) {
                spdlog::info("vip {}: backend {} {} the ring ({})", t.vip, t.address.str(),
                             tr.to == health::State::Up ? "back in" : "out of", tr.reason);
                update_bgp();
            }
        });
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
        spdlog::info("datapath clock: {}", dp_.clock());
        spdlog::info("connection table: {}{}", dp_.conntrack_summary(),
                     dp_.adopted() ? ", adopted with its flows" : "");
        // The tunnel before XDP: should XDP fail, it goes with this object.
        tunnel_ = std::make_unique<ProbeTunnel>(cfg_.datapath);
        for (const auto& line : tunnel_->attach())
            spdlog::info("{}", line);
        for (const auto& line : dp_.attach())
            spdlog::info("{}", line);
        refresh_health_targets();
        if (cfg_.bgp.enabled)
            start_bgp();

        NeighResolver neigh(io_, dp_.neigh_events_fd());
        ControlServer control(io_, cfg_.control.socket, cfg_.control.group,
                              [this](const json& r) { return controller_.handle(r); });
        boost::asio::signal_set stop(io_, SIGINT, SIGTERM);
        stop.async_wait([&](const boost::system::error_code& ec, int sig) {
            if (ec)
                return;
            spdlog::info("{} received, stopping", strsignal(sig));
            if (!speaker_) {
                io_.stop();
                return;
            }
            // Withdraw first, so routers move traffic away; then exit.
            speaker_->stop([this] {
                spdlog::info("bgp: routes withdrawn, ExaBGP stopped");
                io_.stop();
            });
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
        boost::asio::steady_timer lc_timer(io_);
        std::function<void(const boost::system::error_code&)> on_lc = [&](const boost::system::error_code& ec) {
            if (ec)
                return;
            if (size_t n = dp_.reconcile_least_conn(state_.least_conn_backend_ids(), kLeastConnIdleTcpNs,
                                                    kLeastConnIdleUdpNs))
                spdlog::debug("least-conn: {} idle flows no longer counted", n);
            lc_timer.expires_after(kLeastConnReconcile);
            lc_timer.async_wait(on_lc);
        };
        lc_timer.expires_after(kLeastConnReconcile);
        lc_timer.async_wait(on_lc);

        spdlog::info("lbd {} running: {} VIPs on {} interfaces, control socket {}", LBD_VERSION,
                     state_.vips().size(), dp_.attachments().size(), cfg_.control.socket);
        sd_notify("READY=1");
        io_.run();
        sd_notify("STOPPING=1");
        checker_.stop();
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

    void start_bgp()
    {
        bgp::SpeakerOptions opts;
        char self[4096] = {};
        const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        opts.relay = {n > 0 ? std::string(self, size_t(n)) : std::string("/usr/sbin/lbd"), "--exabgp-relay"};
        const auto slash = cfg_.control.socket.rfind('/');
        opts.runtime_dir = cfg_.control.socket.substr(0, slash == 0 ? 1 : slash) + "/exabgp";
        speaker_ = std::make_unique<bgp::BgpSpeaker>(io_, cfg_.bgp, opts);
        speaker_->start();
        watch_maintenance();
        update_bgp();
        spdlog::info("bgp: ExaBGP started for {} neighbor{}", cfg_.bgp.neighbors.size(),
                     cfg_.bgp.neighbors.size() == 1 ? "" : "s");
    }

    void watch_maintenance()
    {
        maint_.reset();
        if (cfg_.bgp.maintenance_file.empty())
            return;
        maint_ = std::make_unique<bgp::MaintenanceWatch>(io_, cfg_.bgp.maintenance_file, [this](bool present) {
            spdlog::info("bgp: maintenance file {} {}", cfg_.bgp.maintenance_file,
                         present ? "appeared" : "is gone");
            if (speaker_)
                speaker_->set_maintenance(present);
        });
        speaker_->set_maintenance(maint_->present());
    }

    /// What the route-injection policy sees: each VIP's backends able to
    /// serve new flows (up, weight > 0; sorry backends do not count).
    void update_bgp()
    {
        if (!speaker_)
            return;
        bgp::PolicyInputs in;
        in.running = true;
        in.maintenance = maint_ && maint_->present();
        std::map<std::string, bgp::VipBgp> overrides;
        for (const auto& e : effective_vips(cfg_.vips, overrides_))
            overrides[e.vip.name] = e.vip.bgp;
        for (const auto& [name, v] : state_.vips()) {
            uint32_t healthy = 0;
            for (const auto& b : v.backends)
                healthy += b.up && b.weight > 0 && !b.sorry;
            in.vips.push_back({name, v.address, healthy, overrides[name]});
        }
        speaker_->update(std::move(in));
    }

    json bgp_status()
    {
        if (!speaker_)
            return {{"ok", false}, {"error", "bgp is not configured (no bgp: section)"}};
        const auto st = speaker_->status();
        json neighbors = json::array(), prefixes = json::array();
        for (const auto& n : st.neighbors)
            neighbors.push_back({{"address", n.address.str()}, {"peer_as", n.peer_as},
                                 {"state", n.state}, {"last_error", n.last_error}});
        for (const auto& p : st.prefixes)
            prefixes.push_back({{"prefix", p.state.prefix.str()}, {"vips", p.state.vips},
                                {"announced", p.state.action == bgp::Action::Announce},
                                {"reason", p.state.reason}});
        return {{"ok", true},
                {"exabgp_running", st.exabgp_running},
                {"exabgp_pid", st.exabgp_pid},
                {"maintenance", st.maintenance},
                {"neighbors", neighbors},
                {"prefixes", prefixes},
                {"text", bgp::format_status(st, health::Clock::now())}};
    }

    json set_maintenance(bool on)
    {
        if (!speaker_ || cfg_.bgp.maintenance_file.empty())
            return {{"ok", false}, {"error", "no maintenance file: bgp is not configured"}};
        const std::string& f = cfg_.bgp.maintenance_file;
        if (on) {
            std::ofstream out(f);
            out << "maintenance set by lbctl\n";
            if (!out)
                return {{"ok", false}, {"error", "cannot create " + f + ": " + std::strerror(errno)}};
        } else if (::unlink(f.c_str()) != 0 && errno != ENOENT) {
            return {{"ok", false}, {"error", "cannot remove " + f + ": " + std::strerror(errno)}};
        }
        spdlog::info("lbctl: maintenance {} ({} {})", on ? "on" : "off", f, on ? "created" : "removed");
        return {{"ok", true}, {"maintenance", on}, {"file", f}};
    }

    /// Health-check targets for every backend of every VIP with a health
    /// section; the tunnel's map follows the backends probed via tunnel.
    void refresh_health_targets()
    {
        const auto vips = vips_of(effective_vips(cfg_.vips, overrides_));
        ProbeMarks::Change change;
        try {
            change = marks_.assign(tunnel_backends(vips));
            for (const auto& [mark, backend] : change.put) {
                tunnel_->put(mark, backend);
                spdlog::info("health: backend {} probed via tunnel, mark 0x{:08x}", backend.str(), mark);
            }
        } catch (const std::exception& e) {
            // Validation keeps the backends within the range and the map;
            // a probe without its map entry is dropped by the tunnel.
            spdlog::error("health: the tunnel's marks: {}", e.what());
        }
        // Probes of freed marks stop here, before their entries go.
        checker_.set_targets(health_targets(vips, marks_));
        for (uint32_t mark : change.remove) {
            try {
                tunnel_->remove(mark);
            } catch (const std::exception& e) {
                spdlog::error("health: {}", e.what());
            }
            spdlog::info("health: mark 0x{:08x} freed (no longer probed via tunnel)", mark);
        }
    }

    json health_of(const std::string& vip, const IpAddr& address) const
    {
        for (const auto& t : checker_.snapshot()) {
            if (t.vip != vip || t.address != address)
                continue;
            auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
            json j{{"state", health::to_string(t.state)},
                   {"type", health::to_string(t.type)},
                   {"via", health::to_string(t.via)},
                   {"half_open", t.half_open},
                   {"port", t.port},
                   {"checks", t.checks},
                   {"time_in_state_s", secs(t.time_in_state)},
                   {"last_error", t.last_error},
                   {"last_reason", t.last_reason}};
            if (t.last_check)
                j["last_check_ago_s"] = secs(health::Clock::now() - *t.last_check);
            if (auto mark = t.via == health::Via::Tunnel ? marks_.mark_of(address) : std::nullopt)
                j["mark"] = *mark;
            return j;
        }
        return nullptr;
    }

    json status() const
    {
        json ifaces = json::array();
        for (const auto& a : dp_.attachments())
            ifaces.push_back({{"name", a.iface}, {"mode", to_string(a.mode)}});
        const auto up = std::chrono::steady_clock::now() - started_;
        json tunnel = {{"marks", marks_.marks().size()}, {"mark_range", cfg_.datapath.probe_marks.str()}};
        if (tunnel_) {
            const auto c = tunnel_->counters();
            for (unsigned i = 0; i < c.size(); i++)
                tunnel[lbd_hc_counter_name(i)] = c[i];
        }
        return {{"version", LBD_VERSION},
                {"pid", getpid()},
                {"probe_tunnel", tunnel},
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
        using Clock = std::chrono::steady_clock;
        const auto t0 = Clock::now();
        auto ms = [](Clock::time_point a, Clock::time_point b) {
            return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
        };
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
        if (next.bgp.enabled != cfg_.bgp.enabled)
            keys.push_back(next.bgp.enabled ? "bgp (added)" : "bgp (removed)");
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
        const auto t_checked = Clock::now();
        json changes = json::array();
        for (const auto& line : state_.apply(candidate.vips)) {
            spdlog::info("{}", line);
            changes.push_back(line);
        }
        const auto t_applied = Clock::now();
        const bool new_watch = next.bgp.maintenance_file != cfg_.bgp.maintenance_file;
        cfg_ = std::move(next);
        persist();
        refresh_health_targets();
        if (speaker_) {
            speaker_->reconfigure(cfg_.bgp);
            if (new_watch)
                watch_maintenance();
            update_bgp();
        }
        const auto t_done = Clock::now();
        spdlog::info("reload applied: {} change{} in {} ms (read and check {} ms, maps {} ms, save and the rest {} ms)",
                     changes.size(), changes.size() == 1 ? "" : "s", ms(t0, t_done), ms(t0, t_checked),
                     ms(t_checked, t_applied), ms(t_applied, t_done));
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
        if (tunnel_) {
            const auto h = tunnel_->counters();
            line.clear();
            for (unsigned i = 0; i < h.size(); i++)
                if (h[i])
                    line += std::string(" ") + lbd_hc_counter_name(i) + "=" + std::to_string(h[i]);
            spdlog::info("health-check tunnel:{}", line.empty() ? " (none)" : line);
        }
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
    ProbeMarks marks_{cfg_.datapath.probe_marks};
    std::unique_ptr<ProbeTunnel> tunnel_;  // detached after the checker (below) stopped its probes
    health::HealthChecker checker_{io_};
    std::unique_ptr<bgp::BgpSpeaker> speaker_;
    std::unique_ptr<bgp::MaintenanceWatch> maint_;
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
    // The tunnel's filters first: its pin is how they are found.
    for (const auto& line : ProbeTunnel::remove_pinned(pin_path))
        spdlog::info("{}", line);
    for (const auto& line : Datapath::remove_pins(pin_path))
        spdlog::info("{}", line);
    return 0;
}

}  // namespace lbd
