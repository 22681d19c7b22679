#include "health/state_machine.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace lbd::health {

std::string to_string(State s)
{
    switch (s) {
    case State::Up: return "up";
    case State::Down: return "down";
    case State::Unknown: break;
    }
    return "unknown";
}

StateMachine::StateMachine(uint32_t healthy_threshold, uint32_t unhealthy_threshold, TimePoint now)
    : healthy_(std::max(healthy_threshold, 1u)), unhealthy_(std::max(unhealthy_threshold, 1u)), since_(now)
{
}

void StateMachine::set_thresholds(uint32_t healthy_threshold, uint32_t unhealthy_threshold)
{
    healthy_ = std::max(healthy_threshold, 1u);
    unhealthy_ = std::max(unhealthy_threshold, 1u);
}

std::optional<bool> StateMachine::last_ok() const
{
    if (!checked())
        return std::nullopt;
    return last_ok_;
}

std::optional<TimePoint> StateMachine::last_check() const
{
    if (!checked())
        return std::nullopt;
    return last_check_;
}

std::optional<Transition> StateMachine::record(bool ok, std::string reason, TimePoint now)
{
    constexpr auto kMax = std::numeric_limits<uint32_t>::max();
    ++checks_;
    last_check_ = now;
    last_ok_ = ok;
    State to = state_;
    if (ok) {
        failures_ = 0;
        if (successes_ < kMax)
            ++successes_;
        if (state_ != State::Up && successes_ >= healthy_)
            to = State::Up;
    } else {
        successes_ = 0;
        if (failures_ < kMax)
            ++failures_;
        last_error_ = reason;
        if (state_ != State::Down && failures_ >= unhealthy_)
            to = State::Down;
    }
    last_reason_ = std::move(reason);
    if (to == state_)
        return std::nullopt;
    Transition t{state_, to, last_reason_};
    state_ = to;
    since_ = now;
    return t;
}

}  // namespace lbd::health
