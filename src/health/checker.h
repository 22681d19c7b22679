// The health checker: probes every target on its own schedule on one Asio
// io_context, runs each target's rise/fall state machine, and reports state
// changes. All on the loop's thread: call every method from that thread (or
// before the loop runs).
#pragma once

#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "health/probe.h"
#include "health/state_machine.h"

namespace lbd::health {

/// One target's state as snapshot() reports it.
struct TargetStatus {
    std::string vip;
    IpAddr address;
    uint16_t port = 0;  ///< the port probed
    CheckType type = CheckType::Tcp;
    Via via = Via::Direct;
    bool half_open = false;               ///< tcp: half-open checks
    State state = State::Unknown;
    std::optional<TimePoint> last_check;  ///< end of the last probe
    std::optional<bool> last_ok;
    std::string last_reason;              ///< of the last probe
    std::string last_error;               ///< of the last failed probe
    TimePoint since{};                    ///< when the current state was entered
    Clock::duration time_in_state{};
    uint32_t successes = 0;               ///< consecutive
    uint32_t failures = 0;                ///< consecutive
    uint64_t checks = 0;
    bool probing = false;                 ///< a probe is running now
};

/// The places in an interval where probes start.
constexpr int64_t kScheduleTicks = 100;

/// Where in each interval a target is probed: a fixed offset in
/// [0, interval), one of kScheduleTicks multiples of interval /
/// kScheduleTicks, from a hash of (vip, address), so targets are spread over
/// the interval, many share a wakeup, and keep their place across restarts.
/// 0 for an interval shorter than kScheduleTicks clock ticks.
Clock::duration schedule_offset(const std::string& vip, const IpAddr& address, Clock::duration interval);

/// The first probe time >= `not_before` on the grid epoch + offset + k * interval.
TimePoint next_due(TimePoint epoch, Clock::duration offset, Clock::duration interval, TimePoint not_before);

class HealthChecker {
public:
    using ChangeCallback = std::function<void(const Target&, const Transition&)>;
    using ProbeCallback = std::function<void(const Target&, const ProbeResult&)>;

    explicit HealthChecker(boost::asio::io_context& io);
    ~HealthChecker();  ///< stop()
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    /// Called on every state change (also Unknown -> Up/Down), after it is logged.
    void on_change(ChangeCallback cb);
    /// Called after every probe with its result (before the state machine sees it).
    void on_probe(ProbeCallback cb);

    /// The full list of targets, keyed by (vip, address); the first of
    /// duplicates wins. Unchanged targets keep their state and schedule; a
    /// target whose settings changed keeps its state (new thresholds apply
    /// from the next result), is rescheduled, and the result of a probe in
    /// flight is dropped; new targets start Unknown; removed ones stop at
    /// once (a running probe is aborted). No-op after stop().
    void set_targets(std::vector<Target> targets);

    std::vector<TargetStatus> snapshot() const;
    /// The state of one target; nullopt if there is no such target.
    std::optional<State> state(const std::string& vip, const IpAddr& address) const;
    size_t size() const;

    /// Stops all schedules and aborts running probes (exec probes still reap
    /// their killed process), so io_context::run() returns once they are done.
    void stop();

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

}  // namespace lbd::health
