// HealthChecker on a real io_context against loopback listeners. No root.
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "health/checker.h"

using namespace lbd;
using namespace lbd::health;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

Target tcp_target(const std::string& vip, const char* addr, uint16_t port, uint32_t rise = 2, uint32_t fall = 3)
{
    Target t;
    t.vip = vip;
    t.address = *IpAddr::parse(addr);
    t.port = port;
    t.config.interval = 50ms;
    t.config.timeout = 40ms;
    t.config.healthy_threshold = rise;
    t.config.unhealthy_threshold = fall;
    return t;
}

bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit = 5s)
{
    auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.run_for(5ms);
        if (io.stopped())
            io.restart();
    }
    return done();
}

/// Everything the checker reports, in order.
struct Recorder {
    std::vector<std::string> events;  // "ok", "fail REASON", "FROM->TO"
    std::vector<Transition> changes;

    void attach(HealthChecker& c)
    {
        c.on_probe([this](const Target&, const ProbeResult& r) {
            events.push_back(r.ok ? "ok" : "fail " + r.reason);
        });
        c.on_change([this](const Target&, const Transition& t) {
            events.push_back(to_string(t.from) + "->" + to_string(t.to));
            changes.push_back(t);
        });
    }
};

/// Connects `n` non-blocking sockets to `ep` without waiting: with a listen
/// backlog of 0 and nobody accepting, later SYNs to it go unanswered.
struct BacklogFiller {
    std::vector<int> fds;
    BacklogFiller(const tcp::endpoint& ep, int n)
    {
        for (int i = 0; i < n; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            ::connect(fd, ep.data(), static_cast<socklen_t>(ep.size()));
            fds.push_back(fd);
        }
    }
    ~BacklogFiller()
    {
        for (int fd : fds)
            ::close(fd);
    }
};

tcp::endpoint loopback(uint16_t port = 0)
{
    return {asio::ip::make_address("127.0.0.1"), port};
}

}  // namespace

TEST(HealthSchedule, OffsetIsDeterministicAndWithinInterval)
{
    auto a = *IpAddr::parse("198.18.2.10");
    auto b = *IpAddr::parse("198.18.2.11");
    auto o1 = schedule_offset("web", a, 1s);
    EXPECT_EQ(o1, schedule_offset("web", a, 1s));
    EXPECT_NE(o1, schedule_offset("web", b, 1s));
    EXPECT_NE(o1, schedule_offset("api", a, 1s));
    EXPECT_GE(o1, Clock::duration::zero());
    EXPECT_LT(o1, 1s);
    EXPECT_EQ(schedule_offset("web", a, Clock::duration::zero()), Clock::duration::zero());
}

TEST(HealthSchedule, OffsetsAreOnTicksOfAHundredthOfTheInterval)
{
    // Many targets share each of the 100 places (one wakeup for all of
    // them), every place is used, and the places do not depend on the run
    // (fixed values: the same across restarts and builds).
    std::set<Clock::duration::rep> places;
    for (int i = 0; i < 5000; ++i) {
        IpAddr a = *IpAddr::parse("198.19.0.0");
        a.bytes[2] = static_cast<uint8_t>(i >> 8);
        a.bytes[3] = static_cast<uint8_t>(i);
        auto off = schedule_offset("web", a, 1s);
        ASSERT_EQ(off % 10ms, Clock::duration::zero()) << a.str();
        ASSERT_LT(off, 1s);
        places.insert(off.count());
    }
    EXPECT_EQ(places.size(), 100u);
    // An interval that is not a multiple of 100 clock ticks: multiples of
    // its hundredth (rounded down), still below it.
    auto odd = schedule_offset("web", *IpAddr::parse("198.18.2.10"), Clock::duration(12345));
    EXPECT_EQ(odd.count() % 123, 0);
    EXPECT_LT(odd.count(), 12345);
    EXPECT_EQ(schedule_offset("web", *IpAddr::parse("198.18.2.10"), Clock::duration(99)), Clock::duration::zero());
    EXPECT_EQ(schedule_offset("web", *IpAddr::parse("198.18.2.10"), 1s), 80ms);
    EXPECT_EQ(schedule_offset("api", *IpAddr::parse("fd00:1b::10"), 10s), 2500ms);
}

TEST(HealthSchedule, BackendsOfOneVipAreSpreadOverTheInterval)
{
    constexpr int kBackends = 2000, kBuckets = 10;
    int buckets[kBuckets] = {};
    for (int i = 0; i < kBackends; ++i) {
        IpAddr a = *IpAddr::parse("198.18.0.0");
        a.bytes[2] = static_cast<uint8_t>(i >> 8);
        a.bytes[3] = static_cast<uint8_t>(i);
        auto off = schedule_offset("web", a, 10s);
        ++buckets[off * kBuckets / 10s];
    }
    for (int n : buckets) {
        EXPECT_GT(n, kBackends / kBuckets / 2);
        EXPECT_LT(n, kBackends / kBuckets * 3 / 2);
    }
}

TEST(HealthSchedule, NextDueIsOnTheGrid)
{
    TimePoint epoch{10s};
    EXPECT_EQ(next_due(epoch, 300ms, 1s, epoch), epoch + 300ms);
    EXPECT_EQ(next_due(epoch, 300ms, 1s, epoch + 300ms), epoch + 300ms);
    EXPECT_EQ(next_due(epoch, 300ms, 1s, epoch + 301ms), epoch + 1300ms);
    EXPECT_EQ(next_due(epoch, 300ms, 1s, epoch + 5500ms), epoch + 5300ms + 1s);
    // Missed slots are skipped, never made up.
    EXPECT_EQ(next_due(epoch, 0ms, 1s, epoch + 3999ms), epoch + 4s);
}

TEST(HealthChecker, TcpUpAndDownAfterExactThresholds)
{
    asio::io_context io;
    auto acceptor = std::make_unique<tcp::acceptor>(io, loopback());
    uint16_t port = acceptor->local_endpoint().port();
    HealthChecker checker(io);
    Recorder rec;
    rec.attach(checker);
    checker.set_targets({tcp_target("web", "127.0.0.1", port, 2, 3)});
    EXPECT_EQ(checker.state("web", *IpAddr::parse("127.0.0.1")), State::Unknown);

    ASSERT_TRUE(run_until(io, [&] { return rec.changes.size() == 1; }));
    EXPECT_EQ(rec.events, (std::vector<std::string>{"ok", "ok", "unknown->up"}));
    EXPECT_EQ(rec.changes[0].reason, "connected");

    acceptor.reset();  // the listener goes away: refused
    rec.events.clear();
    ASSERT_TRUE(run_until(io, [&] { return rec.changes.size() == 2; }));
    // Any successes still in flight, then exactly three failures, then down.
    while (!rec.events.empty() && rec.events.front() == "ok")
        rec.events.erase(rec.events.begin());
    EXPECT_EQ(rec.events, (std::vector<std::string>{"fail refused", "fail refused", "fail refused", "up->down"}));
    EXPECT_EQ(rec.changes[1].reason, "refused");

    tcp::acceptor again(io);
    again.open(tcp::v4());
    again.set_option(tcp::acceptor::reuse_address(true));
    again.bind(loopback(port));
    again.listen();
    rec.events.clear();
    ASSERT_TRUE(run_until(io, [&] { return rec.changes.size() == 3; }));
    while (!rec.events.empty() && rec.events.front().starts_with("fail"))
        rec.events.erase(rec.events.begin());
    EXPECT_EQ(rec.events, (std::vector<std::string>{"ok", "ok", "down->up"}));
}

TEST(HealthChecker, ProbesFollowTheInterval)
{
    asio::io_context io;
    tcp::acceptor acceptor(io, loopback());
    HealthChecker checker(io);
    std::vector<TimePoint> times;
    checker.on_probe([&](const Target&, const ProbeResult&) { times.push_back(Clock::now()); });
    auto t = tcp_target("web", "127.0.0.1", acceptor.local_endpoint().port());
    t.config.interval = 100ms;
    t.config.timeout = 50ms;
    checker.set_targets({t});
    ASSERT_TRUE(run_until(io, [&] { return times.size() >= 6; }));
    auto mean = (times.back() - times.front()) / static_cast<int>(times.size() - 1);
    EXPECT_GT(mean, 80ms);
    EXPECT_LT(mean, 130ms);
    for (size_t i = 1; i < times.size(); ++i)
        EXPECT_GT(times[i] - times[i - 1], 50ms);  // never two at once
}

TEST(HealthChecker, SetTargetsKeepsStateOfUnchangedTargets)
{
    asio::io_context io;
    tcp::acceptor acceptor(io, loopback());
    uint16_t port = acceptor.local_endpoint().port();
    HealthChecker checker(io);
    Recorder rec;
    rec.attach(checker);
    auto a = tcp_target("web", "127.0.0.1", port, 1, 1);
    auto b = tcp_target("db", "127.0.0.1", port, 1, 1);  // another VIP: another target
    checker.set_targets({a, b});
    ASSERT_TRUE(run_until(io, [&] {
        return checker.state("web", a.address) == State::Up && checker.state("db", b.address) == State::Up;
    }));
    auto changes = rec.changes.size();
    EXPECT_EQ(changes, 2u);

    // Same two plus a new one; and a duplicate of a, ignored.
    auto c = tcp_target("api", "127.0.0.1", port, 2, 1);
    auto dup = a;
    dup.port = 1;
    checker.set_targets({a, b, c, dup});
    EXPECT_EQ(checker.size(), 3u);
    EXPECT_EQ(checker.state("web", a.address), State::Up);
    EXPECT_EQ(checker.state("api", c.address), State::Unknown);
    ASSERT_TRUE(run_until(io, [&] { return checker.state("api", c.address) == State::Up; }));
    EXPECT_EQ(rec.changes.size(), changes + 1);  // only api's

    // Changed settings for b (thresholds, port): state kept; the new port refuses.
    auto b2 = b;
    b2.port = 1;
    b2.config.unhealthy_threshold = 2;
    checker.set_targets({a, b2, c});
    EXPECT_EQ(checker.state("db", b.address), State::Up);
    ASSERT_TRUE(run_until(io, [&] { return checker.state("db", b.address) == State::Down; }));
    EXPECT_EQ(rec.changes.back().reason, "refused");

    // Removed: gone from snapshot and state().
    checker.set_targets({a});
    EXPECT_EQ(checker.size(), 1u);
    EXPECT_FALSE(checker.state("db", b.address));
    auto before = rec.events.size();
    run_until(io, [] { return false; }, 300ms);
    for (size_t i = before; i < rec.events.size(); ++i)
        EXPECT_EQ(rec.events[i], "ok");  // only a's probes
}

TEST(HealthChecker, SnapshotReportsCountsAndErrors)
{
    asio::io_context io;
    HealthChecker checker(io);
    auto t = tcp_target("web", "127.0.0.1", 1, 2, 2);  // port 1: refused
    checker.set_targets({t});
    auto s0 = checker.snapshot();
    ASSERT_EQ(s0.size(), 1u);
    EXPECT_EQ(s0[0].state, State::Unknown);
    EXPECT_FALSE(s0[0].last_check);
    ASSERT_TRUE(run_until(io, [&] { return checker.snapshot()[0].failures >= 3; }));
    auto s = checker.snapshot()[0];
    EXPECT_EQ(s.vip, "web");
    EXPECT_EQ(s.address, t.address);
    EXPECT_EQ(s.port, 1);
    EXPECT_EQ(s.type, CheckType::Tcp);
    EXPECT_EQ(s.state, State::Down);
    EXPECT_EQ(s.last_ok, false);
    EXPECT_EQ(s.last_error, "refused");
    EXPECT_EQ(s.successes, 0u);
    EXPECT_GE(s.checks, 3u);
    ASSERT_TRUE(s.last_check);
    EXPECT_GE(s.time_in_state, Clock::duration::zero());
    EXPECT_LE(s.since, *s.last_check);
}

TEST(HealthChecker, HangingBackendDelaysNoOther)
{
    asio::io_context io;
    // A listener that never accepts and has a full backlog: connects hang.
    tcp::acceptor hang(io);
    hang.open(tcp::v4());
    hang.bind(loopback());
    hang.listen(0);
    BacklogFiller fill(hang.local_endpoint(), 4);
    tcp::acceptor fine(io, loopback());
    HealthChecker checker(io);
    std::vector<TimePoint> fast;
    int timeouts = 0;
    checker.on_probe([&](const Target& t, const ProbeResult& r) {
        if (t.vip == "fast")
            fast.push_back(Clock::now());
        else if (r.reason.starts_with("timeout"))
            ++timeouts;
    });
    auto slow = tcp_target("slow", "127.0.0.1", hang.local_endpoint().port());
    slow.config.interval = 300ms;
    slow.config.timeout = 250ms;
    auto quick = tcp_target("fast", "127.0.0.1", fine.local_endpoint().port());
    checker.set_targets({slow, quick});
    ASSERT_TRUE(run_until(io, [&] { return timeouts >= 3; }));
    ASSERT_GT(fast.size(), 10u);
    for (size_t i = 1; i < fast.size(); ++i)
        EXPECT_LT(fast[i] - fast[i - 1], 150ms);  // a wait behind the 250 ms probe would show
}

TEST(HealthChecker, StopEndsRunEvenWithAProbeInFlight)
{
    asio::io_context io;
    HealthChecker checker(io);
    Target t;
    t.vip = "exec";
    t.address = *IpAddr::parse("127.0.0.1");
    t.port = 1;
    t.config.type = CheckType::Exec;
    t.config.command = {"/bin/sleep", "30"};
    t.config.interval = 1s;
    t.config.timeout = 900ms;
    checker.set_targets({t});
    ASSERT_TRUE(run_until(io, [&] { return checker.snapshot()[0].probing; }, 2s));
    checker.stop();
    EXPECT_EQ(checker.size(), 0u);
    auto start = std::chrono::steady_clock::now();
    io.run_for(5s);  // returns as soon as nothing is left
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_TRUE(io.stopped());
    errno = 0;
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // the sleep was killed and reaped
    EXPECT_EQ(errno, ECHILD);
    checker.set_targets({t});  // no-op after stop
    EXPECT_EQ(checker.size(), 0u);
}

TEST(HealthChecker, DestroyedCheckerLeavesNoWork)
{
    asio::io_context io;
    tcp::acceptor acceptor(io, loopback());
    {
        HealthChecker checker(io);
        checker.set_targets({tcp_target("web", "127.0.0.1", acceptor.local_endpoint().port())});
        io.run_for(120ms);
    }
    acceptor.close();
    auto start = std::chrono::steady_clock::now();
    io.restart();
    io.run_for(2s);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}
