#include "health/checker.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <map>
#include <utility>

namespace lbd::health {

namespace asio = boost::asio;

namespace {

using Key = std::pair<std::string, IpAddr>;

uint64_t mix(uint64_t x)  // splitmix64's finaliser
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/// How a target's coroutine waiting for its due time is resumed.
using Waiter = asio::async_result<asio::use_awaitable_t<>, void()>::handler_type;

struct Slot {
    Slot(asio::io_context& io, std::shared_ptr<const Target> t, TimePoint now)
        : target(std::move(t)),
          sm(target->config.healthy_threshold, target->config.unhealthy_threshold, now),
          ctl(ProbeControl::create(io.get_executor()))
    {
    }

    std::shared_ptr<const Target> target;
    StateMachine sm;
    std::shared_ptr<ProbeControl> ctl;
    std::optional<Waiter> waiter;  ///< set while waiting for `waiting_for`
    TimePoint waiting_for{};
    bool woken_early = false;      ///< the wait was cancelled (settings changed, removed)
    bool removed = false;
    bool probing = false;
};

void log_transition(const Target& t, const Transition& tr)
{
    auto level = tr.to == State::Down ? spdlog::level::warn : spdlog::level::info;
    spdlog::log(level, "health: vip {} backend {} {} -> {} ({})", t.vip, t.endpoint(), to_string(tr.from),
                to_string(tr.to), tr.reason);
}

}  // namespace

/// The targets wait for their due times here: one timer for all of them,
/// armed for the earliest due time, rather than one timer each (the
/// offsets are on 100 ticks per interval, so a due time has many targets).
struct HealthChecker::Core : std::enable_shared_from_this<HealthChecker::Core> {
    explicit Core(asio::io_context& c) : io(c), epoch(Clock::now()), tick(c) {}

    asio::io_context& io;
    ProbeEnv env;
    TimePoint epoch;
    ChangeCallback on_change;
    ProbeCallback on_probe;
    bool stopped = false;
    std::map<Key, std::shared_ptr<Slot>> slots;

    asio::steady_timer tick;
    std::optional<TimePoint> armed_for;
    std::map<TimePoint, std::vector<Slot*>> waiting;  ///< by due time
    std::vector<Slot*> ready;

    /// Suspends the slot's coroutine until `due` (or cancel_wait()).
    auto wait_until(Slot& s, TimePoint due)
    {
        s.woken_early = false;
        s.waiting_for = due;
        waiting[due].push_back(&s);
        if (!armed_for || due < *armed_for)
            arm();
        return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
            [&s](Waiter w) { s.waiter.emplace(std::move(w)); }, asio::use_awaitable);
    }

    /// Ends the slot's wait early (its coroutine resumes later, posted).
    void cancel_wait(Slot& s)
    {
        if (!s.waiter)
            return;
        if (auto it = waiting.find(s.waiting_for); it != waiting.end()) {
            std::erase(it->second, &s);
            if (it->second.empty())
                waiting.erase(it);
        }
        s.woken_early = true;
        auto w = std::move(*s.waiter);
        s.waiter.reset();
        asio::post(io, std::move(w));
    }

    void arm()
    {
        if (waiting.empty()) {
            armed_for.reset();
            tick.cancel();
            return;
        }
        armed_for = waiting.begin()->first;
        tick.expires_at(*armed_for);
        tick.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
            if (ec)
                return;  // re-armed, or stopped
            if (auto self = w.lock())
                self->fire();
        });
    }

    void fire()
    {
        ready.clear();
        const auto now = Clock::now();
        while (!waiting.empty() && waiting.begin()->first <= now) {
            auto& slots_due = waiting.begin()->second;
            ready.insert(ready.end(), slots_due.begin(), slots_due.end());
            waiting.erase(waiting.begin());
        }
        arm();
        // Each runs on to its next wait (a probe's I/O, or its next due time).
        auto batch = std::move(ready);
        for (Slot* s : batch) {
            if (!s->waiter)
                continue;  // cancelled by one resumed before it
            auto w = std::move(*s->waiter);
            s->waiter.reset();
            w();
        }
        ready = std::move(batch);
    }
};

Clock::duration schedule_offset(const std::string& vip, const IpAddr& address, Clock::duration interval)
{
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
    auto add = [&h](uint8_t b) {
        h ^= b;
        h *= 0x100000001b3ull;
    };
    for (char c : vip)
        add(static_cast<uint8_t>(c));
    add(0);
    add(static_cast<uint8_t>(address.family));
    for (size_t i = 0; i < address.size(); ++i)
        add(address.bytes[i]);
    // One of kScheduleTicks places per interval: the probes of many targets
    // are then due at the same instant and start on one wakeup of the loop.
    const auto tick = interval.count() / kScheduleTicks;
    if (tick <= 0)
        return Clock::duration{};
    return Clock::duration(static_cast<Clock::rep>(mix(h) % kScheduleTicks) * tick);
}

TimePoint next_due(TimePoint epoch, Clock::duration offset, Clock::duration interval, TimePoint not_before)
{
    TimePoint first = epoch + offset;
    if (not_before <= first || interval.count() <= 0)
        return std::max(first, not_before);
    auto behind = not_before - first;
    auto k = (behind.count() + interval.count() - 1) / interval.count();  // ceil
    return first + k * interval;
}

namespace {

asio::awaitable<void> run_slot(std::shared_ptr<HealthChecker::Core> core, std::shared_ptr<Slot> s)
{
    auto gone = [&] { return s->removed || core->stopped; };
    TimePoint last_start{};
    std::shared_ptr<const Target> scheduled;  // the target `interval` and `offset` are of
    Clock::duration interval{}, offset{};
    while (!gone()) {
        auto target = s->target;
        if (target != scheduled) {
            scheduled = target;
            interval = std::chrono::duration_cast<Clock::duration>(target->config.interval);
            offset = schedule_offset(target->vip, target->address, interval);
        }
        auto not_before = std::max(Clock::now(), last_start + Clock::duration(1));
        const TimePoint due = next_due(core->epoch, offset, interval, not_before);
        co_await core->wait_until(*s, due);
        if (gone())
            break;
        if (s->woken_early || s->target != target)
            continue;  // rescheduled by a settings change

        last_start = Clock::now();
        s->probing = true;
        ProbeResult r = co_await run_probe(*target, *s->ctl, core->env);
        r.due = due;
        r.started = last_start;
        s->probing = false;
        if (gone())
            break;
        if (s->target != target)
            continue;  // settings changed meanwhile: the result is of the old ones
        try {
            if (core->on_probe)
                core->on_probe(*target, r);
            if (gone())
                break;
            auto tr = s->sm.record(r.ok, std::move(r.reason), Clock::now());
            if (tr) {
                log_transition(*target, *tr);
                if (core->on_change)
                    core->on_change(*target, *tr);
            }
        } catch (const std::exception& e) {
            spdlog::error("health: vip {} backend {}: callback failed: {}", target->vip, target->endpoint(), e.what());
        }
    }
}

}  // namespace

HealthChecker::HealthChecker(asio::io_context& io) : core_(std::make_shared<Core>(io)) {}

HealthChecker::~HealthChecker()
{
    stop();
}

void HealthChecker::on_change(ChangeCallback cb)
{
    core_->on_change = std::move(cb);
}

void HealthChecker::on_probe(ProbeCallback cb)
{
    core_->on_probe = std::move(cb);
}

void HealthChecker::set_targets(std::vector<Target> targets)
{
    auto& core = *core_;
    if (core.stopped)
        return;
    std::map<Key, std::shared_ptr<Slot>> next;
    auto now = Clock::now();
    for (auto& t : targets) {
        Key key{t.vip, t.address};
        if (next.contains(key)) {
            spdlog::warn("health: vip {} backend {} listed twice; the first one is used", t.vip, t.address.str());
            continue;
        }
        if (auto it = core.slots.find(key); it != core.slots.end()) {
            auto slot = it->second;
            if (*slot->target != t) {
                slot->target = std::make_shared<const Target>(std::move(t));
                slot->sm.set_thresholds(slot->target->config.healthy_threshold,
                                        slot->target->config.unhealthy_threshold);
                slot->ctl->abort();
                core.cancel_wait(*slot);
            }
            next.emplace(std::move(key), std::move(slot));
            core.slots.erase(it);
            continue;
        }
        auto slot = std::make_shared<Slot>(core.io, std::make_shared<const Target>(std::move(t)), now);
        next.emplace(std::move(key), slot);
        asio::co_spawn(core.io, run_slot(core_, slot), asio::detached);
    }
    for (auto& [key, slot] : core.slots) {  // removed
        slot->removed = true;
        core.cancel_wait(*slot);
        slot->ctl->abort();
    }
    core.slots = std::move(next);
}

std::vector<TargetStatus> HealthChecker::snapshot() const
{
    std::vector<TargetStatus> out;
    out.reserve(core_->slots.size());
    auto now = Clock::now();
    for (const auto& [key, s] : core_->slots) {
        const auto& t = *s->target;
        const auto& sm = s->sm;
        out.push_back(TargetStatus{
            .vip = t.vip,
            .address = t.address,
            .port = t.probe_port(),
            .type = t.config.type,
            .via = t.config.via,
            .half_open = t.config.type == CheckType::Tcp && t.config.half_open,
            .state = sm.state(),
            .last_check = sm.last_check(),
            .last_ok = sm.last_ok(),
            .last_reason = sm.last_reason(),
            .last_error = sm.last_error(),
            .since = sm.since(),
            .time_in_state = sm.time_in_state(now),
            .successes = sm.successes(),
            .failures = sm.failures(),
            .checks = sm.checks(),
            .probing = s->probing,
        });
    }
    return out;
}

std::optional<State> HealthChecker::state(const std::string& vip, const IpAddr& address) const
{
    auto it = core_->slots.find(Key{vip, address});
    if (it == core_->slots.end())
        return std::nullopt;
    return it->second->sm.state();
}

size_t HealthChecker::size() const
{
    return core_->slots.size();
}

void HealthChecker::stop()
{
    auto& core = *core_;
    if (core.stopped)
        return;
    core.stopped = true;
    for (auto& [key, slot] : core.slots) {
        slot->removed = true;
        core.cancel_wait(*slot);
        slot->ctl->abort();
    }
    core.slots.clear();
    core.tick.cancel();
    core.env.shutdown();
}

}  // namespace lbd::health
