// Rise/fall of one backend: consecutive probe results move it between
// Unknown, Up and Down. Pure: no clocks (every call takes the time), no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace lbd::health {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

enum class State : uint8_t { Unknown, Up, Down };

std::string to_string(State s);  ///< "unknown", "up", "down"

struct Transition {
    State from = State::Unknown;
    State to = State::Unknown;
    std::string reason;  ///< reason given with the result that caused it
    bool operator==(const Transition&) const = default;
};

/// A backend starts Unknown. It becomes Up after `healthy_threshold`
/// consecutive successes (from Unknown or Down) and Down after
/// `unhealthy_threshold` consecutive failures (from Unknown or Up).
class StateMachine {
public:
    StateMachine(uint32_t healthy_threshold, uint32_t unhealthy_threshold, TimePoint now);

    /// Records one probe result. Returns the transition it caused, if any.
    std::optional<Transition> record(bool ok, std::string reason, TimePoint now);

    /// New thresholds (a config change); the state and the counts stay. Takes
    /// effect with the next record().
    void set_thresholds(uint32_t healthy_threshold, uint32_t unhealthy_threshold);

    State state() const { return state_; }
    TimePoint since() const { return since_; }  ///< when the current state was entered
    Clock::duration time_in_state(TimePoint now) const { return now - since_; }
    uint32_t successes() const { return successes_; }  ///< consecutive, up to now
    uint32_t failures() const { return failures_; }    ///< consecutive, up to now
    uint64_t checks() const { return checks_; }        ///< results recorded in all
    bool checked() const { return checks_ > 0; }
    std::optional<bool> last_ok() const;
    const std::string& last_reason() const { return last_reason_; }  ///< of the last result
    const std::string& last_error() const { return last_error_; }    ///< of the last failure
    std::optional<TimePoint> last_check() const;
    uint32_t healthy_threshold() const { return healthy_; }
    uint32_t unhealthy_threshold() const { return unhealthy_; }

private:
    uint32_t healthy_;
    uint32_t unhealthy_;
    State state_ = State::Unknown;
    TimePoint since_;
    TimePoint last_check_{};
    uint32_t successes_ = 0;
    uint32_t failures_ = 0;
    uint64_t checks_ = 0;
    bool last_ok_ = false;
    std::string last_reason_;
    std::string last_error_;
};

}  // namespace lbd::health
