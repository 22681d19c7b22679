#include "health/checker.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <map>
#include <utility>

#include "health/syn_prober.h"

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

struct Slot final : SynProber::Client, std::enable_shared_from_this<Slot> {
    Slot(std::shared_ptr<const Target> t, TimePoint now)
        : target(std::move(t)),
          sm(target->config.healthy_threshold, target->config.unhealthy_threshold, now)
    {
        reschedule();
    }

    std::shared_ptr<const Target> target;
    StateMachine sm;
    /// Bounds the probe running as a coroutine; a fresh one after an
    /// abandoned probe (whose coroutine may still be ending with the old).
    std::shared_ptr<ProbeControl> ctl;
    HealthChecker::Core* core = nullptr;
    bool half_open = false;             ///< probed by the SynProber, without a coroutine
    Clock::duration interval{}, offset{};  ///< of `target`
    TimePoint due{};                    ///< of the probe waiting or running
    TimePoint started{};                ///< of the probe running, or the last one
    uint64_t generation = 0;            ///< +1 when the target changes or goes: a result of before is dropped
    bool waiting = false;               ///< in Core::waiting under `due`
    bool probing = false;
    bool removed = false;

    /// After the target changed.
    void reschedule()
    {
        interval = std::chrono::duration_cast<Clock::duration>(target->config.interval);
        offset = schedule_offset(target->vip, target->address, interval);
        half_open = target->config.type == CheckType::Tcp && target->config.half_open;
    }

    void syn_result(ProbeResult r) override;
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
/// A due target's probe is started from the timer's handler: half-open tcp
/// probes by the SynProber directly (no coroutine, nothing allocated),
/// others as a coroutine each. Its result comes back to complete(), which
/// records it and puts the target back in line for its next due time.
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

    /// Puts the slot in line for its next due time: on its grid, after now
    /// and after its last start.
    void schedule(Slot& s, TimePoint now = Clock::now())
    {
        const auto not_before = std::max(now, s.started + Clock::duration(1));
        s.due = next_due(epoch, s.offset, s.interval, not_before);
        s.waiting = true;
        waiting[s.due].push_back(&s);
        if (!armed_for || s.due < *armed_for)
            arm();
    }

    void unschedule(Slot& s)
    {
        if (!s.waiting)
            return;
        s.waiting = false;
        if (auto it = waiting.find(s.due); it != waiting.end()) {
            std::erase(it->second, &s);
            if (it->second.empty())
                waiting.erase(it);
        }
    }

    /// Ends the slot's probe in flight, if any; its result will be dropped.
    void abandon(Slot& s)
    {
        ++s.generation;
        if (s.probing) {
            if (s.half_open)
                env.syn(io.get_executor()).cancel(s);
            else if (s.ctl) {
                s.ctl->abort();  // the coroutine ends soon; complete() drops its result
                s.ctl.reset();
            }
            s.probing = false;
        }
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
        auto batch = std::move(ready);
        for (Slot* s : batch)
            s->waiting = false;
        for (Slot* s : batch)
            if (!s->waiting && !s->probing && !s->removed && !stopped)  // not changed by one started before it
                start(*s);
        ready = std::move(batch);
    }

    /// The slot goes: its wait and its probe end. It is freed later, from
    /// the loop: the caller may be a callback of its own result.
    void drop(std::shared_ptr<Slot> s)
    {
        abandon(*s);
        unschedule(*s);
        s->removed = true;
        retired.push_back(std::move(s));
        if (retired.size() == 1)
            asio::post(io, [self = shared_from_this()] { self->retired.clear(); });
    }
    std::vector<std::shared_ptr<Slot>> retired;

    void start(Slot& s);
    void complete(Slot& s, uint64_t generation, ProbeResult r);
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

asio::awaitable<void> run_one(std::shared_ptr<HealthChecker::Core> core, std::shared_ptr<Slot> s,
                              std::shared_ptr<const Target> target, std::shared_ptr<ProbeControl> ctl,
                              uint64_t generation)
{
    if (s->generation == generation)
        s->started = Clock::now();  // co_spawn runs it after start() returned: when its I/O begins
    ProbeResult r = co_await run_probe(*target, *ctl, core->env);
    core->complete(*s, generation, std::move(r));
}

}  // namespace

void Slot::syn_result(ProbeResult r)
{
    core->complete(*this, generation, std::move(r));
}

void HealthChecker::Core::start(Slot& s)
{
    s.probing = true;
    s.started = Clock::now();
    if (s.half_open) {
        if (auto r = env.syn(io.get_executor()).start(s, *s.target, s.started))
            complete(s, s.generation, std::move(*r));  // it could not be sent: a failed probe
        return;
    }
    if (!s.ctl)
        s.ctl = ProbeControl::create(io.get_executor());
    asio::co_spawn(io, run_one(shared_from_this(), s.shared_from_this(), s.target, s.ctl, s.generation),
                   asio::detached);
}

void HealthChecker::Core::complete(Slot& s, uint64_t generation, ProbeResult r)
{
    if (stopped || s.removed || s.generation != generation)
        return;  // stopped, removed, or the settings changed meanwhile: the result is of the old ones
    s.probing = false;
    r.due = s.due;
    r.started = s.started;
    const auto target = s.target;  // a callback may change the targets
    const auto now = Clock::now();
    try {
        if (on_probe)
            on_probe(*target, r);
        if (stopped || s.removed || s.generation != generation)
            return;
        auto tr = s.sm.record(r.ok, std::move(r.reason), now);
        if (tr) {
            log_transition(*target, *tr);
            if (on_change)
                on_change(*target, *tr);
        }
    } catch (const std::exception& e) {
        spdlog::error("health: vip {} backend {}: callback failed: {}", target->vip, target->endpoint(), e.what());
    }
    if (!stopped && !s.removed && s.generation == generation && !s.waiting && !s.probing)
        schedule(s, now);
}

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
                core.abandon(*slot);
                core.unschedule(*slot);
                slot->target = std::make_shared<const Target>(std::move(t));
                slot->sm.set_thresholds(slot->target->config.healthy_threshold,
                                        slot->target->config.unhealthy_threshold);
                slot->reschedule();
                core.schedule(*slot);
            }
            next.emplace(std::move(key), std::move(slot));
            core.slots.erase(it);
            continue;
        }
        auto slot = std::make_shared<Slot>(std::make_shared<const Target>(std::move(t)), now);
        slot->core = &core;
        next.emplace(std::move(key), slot);
        core.schedule(*slot);
    }
    for (auto& [key, slot] : core.slots)  // removed
        core.drop(slot);
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
    for (auto& [key, slot] : core.slots)
        core.drop(slot);
    core.stopped = true;
    core.slots.clear();
    core.tick.cancel();
    core.env.shutdown();
}

}  // namespace lbd::health
