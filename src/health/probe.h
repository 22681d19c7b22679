// One health probe against one backend, as a C++20 coroutine on an Asio
// io_context. Every probe is bounded by its timeout: at the deadline its
// socket (or process) is closed (or killed), which ends whatever it waits for.
#pragma once

#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "common/addr.h"
#include "health/health_config.h"
#include "health/state_machine.h"

namespace lbd::health {

class SynProber;

/// What to probe. Keyed by (vip, address) in the checker.
struct Target {
    std::string vip;
    IpAddr address;
    uint16_t port = 0;                ///< the service port; config.port overrides it for the probe
    HealthConfig config;
    std::optional<uint32_t> mark;     ///< SO_MARK on the probe's socket (needs CAP_NET_ADMIN)
    std::optional<IpAddr> source;     ///< local address to bind the probe's socket to
    /// via: tunnel: the address probed instead of `address` (the VIP). The
    /// probe's packets leave with TTL (hop limit) 1: they get anywhere only
    /// encapsulated to `address` by lbd's TC program, which `mark` tells to.
    std::optional<IpAddr> tunnel_to;

    uint16_t probe_port() const { return config.port.value_or(port); }
    /// Where the probe's packets are addressed: the backend, or the VIP via tunnel.
    const IpAddr& probe_address() const { return tunnel_to ? *tunnel_to : address; }
    /// "198.18.2.10:80", "[fd00:1b::10]:80"; only the address for icmp.
    std::string endpoint() const;
    bool operator==(const Target&) const = default;
};

struct ProbeResult {
    bool ok = false;
    std::string reason;  ///< "connected", "status 200", "refused", "timeout after 2s", ...
    /// Set by the checker (not the probe): when the probe was due on the
    /// target's schedule, and when it started.
    TimePoint due{};
    TimePoint started{};
};

/// Bounds the probes of one target, one at a time: a deadline per probe, and
/// a hook the running probe sets to end its I/O (close its socket, kill its
/// process). The deadline or abort() runs the hook. Long-lived (one per
/// target) so a probe allocates nothing for its deadline. Loop thread only.
class ProbeControl : public std::enable_shared_from_this<ProbeControl> {
    struct Private {
        explicit Private() = default;
    };

public:
    static std::shared_ptr<ProbeControl> create(const boost::asio::any_io_executor& ex);

    /// Ends the running probe now (its result is "aborted"); no-op when idle.
    void abort();
    bool timed_out() const { return timed_out_; }
    bool aborted() const { return aborted_; }
    bool stopping() const { return timed_out_ || aborted_; }

    /// Clears the hook when the probe's I/O object goes away.
    class [[nodiscard]] HookGuard {
    public:
        explicit HookGuard(ProbeControl& c) : c_(&c) {}
        HookGuard(const HookGuard&) = delete;
        HookGuard& operator=(const HookGuard&) = delete;
        ~HookGuard() { c_->hook_ = nullptr; }

    private:
        ProbeControl* c_;
    };

    /// Sets how to end the probe's I/O; runs it at once if already stopping.
    /// Declare the guard after the I/O object it closes.
    HookGuard on_stop(std::function<void()> fn);

    /// Starts a new probe (run_probe does this). `arm`: its deadline runs
    /// the hook (a timer wait); without it the probe bounds itself (the
    /// half-open prober keeps its own deadlines) and only abort() stops it.
    void begin(std::chrono::milliseconds timeout, bool arm = true);
    /// Disarms it.
    void end();

    boost::asio::any_io_executor executor() { return timer_.get_executor(); }

    /// What a probe keeps for the target's next probes: the half-open
    /// prober's source address for it, and when it was learned.
    struct Memo {
        std::optional<IpAddr> source;
        TimePoint learned{};
    };
    Memo& memo() { return memo_; }

    ProbeControl(Private, const boost::asio::any_io_executor& ex) : timer_(ex) {}

private:
    boost::asio::steady_timer timer_;
    std::function<void()> hook_;
    Memo memo_;
    uint64_t generation_ = 0;
    bool active_ = false;
    bool timed_out_ = false;
    bool aborted_ = false;

    void fire();
};

/// Long-lived things probes share: TLS client contexts, a random source.
/// One per loop; not thread-safe.
class ProbeEnv {
public:
    ProbeEnv();
    ~ProbeEnv();
    ProbeEnv(const ProbeEnv&) = delete;
    ProbeEnv& operator=(const ProbeEnv&) = delete;

    /// Opaque to callers; the https probe uses it.
    struct Tls;
    Tls& tls();
    uint64_t random();
    /// The half-open tcp prober, made on first use (its raw sockets then).
    SynProber& syn(const boost::asio::any_io_executor& ex);
    /// Closes what waits on the loop for all probes (the prober's sockets
    /// and timer), so io_context::run() can return; the probes must be done
    /// or aborted. Probes started later open them again.
    void shutdown();

private:
    std::unique_ptr<Tls> tls_;
    std::shared_ptr<SynProber> syn_;
    std::mt19937_64 rng_;
};

/// Runs the probe `t.config.type` against `t`, bounded by t.config.timeout.
/// Never throws. `t`, `ctl` and `env` must outlive the returned awaitable.
boost::asio::awaitable<ProbeResult> run_probe(const Target& t, ProbeControl& ctl, ProbeEnv& env);

}  // namespace lbd::health
