#include "health/state_machine.h"

#include <gtest/gtest.h>

using namespace lbd::health;
using namespace std::chrono_literals;

namespace {

/// A clock the test moves by hand.
struct FakeClock {
    TimePoint now{TimePoint::duration(1'000'000'000)};
    TimePoint tick(Clock::duration d = 1s) { return now += d; }
};

}  // namespace

TEST(HealthStateMachine, StartsUnknown)
{
    FakeClock clk;
    StateMachine sm(2, 3, clk.now);
    EXPECT_EQ(sm.state(), State::Unknown);
    EXPECT_EQ(sm.since(), clk.now);
    EXPECT_FALSE(sm.checked());
    EXPECT_FALSE(sm.last_ok());
    EXPECT_FALSE(sm.last_check());
    EXPECT_EQ(sm.successes(), 0u);
    EXPECT_EQ(sm.failures(), 0u);
}

TEST(HealthStateMachine, UpAfterExactlyHealthyThreshold)
{
    FakeClock clk;
    StateMachine sm(3, 2, clk.now);
    EXPECT_FALSE(sm.record(true, "connected", clk.tick()));
    EXPECT_FALSE(sm.record(true, "connected", clk.tick()));
    EXPECT_EQ(sm.state(), State::Unknown);
    auto t = sm.record(true, "connected", clk.tick());
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, (Transition{State::Unknown, State::Up, "connected"}));
    EXPECT_EQ(sm.state(), State::Up);
    EXPECT_EQ(sm.since(), clk.now);
    EXPECT_EQ(sm.successes(), 3u);
    // More successes: no more transitions, the count goes on.
    EXPECT_FALSE(sm.record(true, "connected", clk.tick()));
    EXPECT_EQ(sm.successes(), 4u);
}

TEST(HealthStateMachine, DownFromUnknownAfterExactlyUnhealthyThreshold)
{
    FakeClock clk;
    StateMachine sm(2, 3, clk.now);
    EXPECT_FALSE(sm.record(false, "refused", clk.tick()));
    EXPECT_FALSE(sm.record(false, "refused", clk.tick()));
    auto t = sm.record(false, "timeout after 2s", clk.tick());
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, (Transition{State::Unknown, State::Down, "timeout after 2s"}));
    EXPECT_EQ(sm.last_error(), "timeout after 2s");
    EXPECT_EQ(sm.failures(), 3u);
}

TEST(HealthStateMachine, UpDownUpCycle)
{
    FakeClock clk;
    StateMachine sm(2, 3, clk.now);
    sm.record(true, "ok", clk.tick());
    ASSERT_TRUE(sm.record(true, "ok", clk.tick()));
    auto up_since = sm.since();
    EXPECT_FALSE(sm.record(false, "refused", clk.tick()));
    EXPECT_FALSE(sm.record(false, "refused", clk.tick()));
    EXPECT_EQ(sm.state(), State::Up);
    EXPECT_EQ(sm.since(), up_since);
    auto down = sm.record(false, "status 503", clk.tick());
    ASSERT_TRUE(down);
    EXPECT_EQ(*down, (Transition{State::Up, State::Down, "status 503"}));
    EXPECT_EQ(sm.time_in_state(clk.now + 5s), 5s);
    EXPECT_FALSE(sm.record(true, "status 200", clk.tick()));
    EXPECT_EQ(sm.state(), State::Down);
    auto up = sm.record(true, "status 200", clk.tick());
    ASSERT_TRUE(up);
    EXPECT_EQ(*up, (Transition{State::Down, State::Up, "status 200"}));
    EXPECT_EQ(sm.last_error(), "status 503");  // kept from the last failure
    EXPECT_EQ(sm.last_reason(), "status 200");
}

TEST(HealthStateMachine, FlappingNeverReachesThresholds)
{
    FakeClock clk;
    StateMachine sm(2, 2, clk.now);
    ASSERT_TRUE(sm.record(true, "ok", clk.tick()) == std::nullopt);
    ASSERT_TRUE(sm.record(true, "ok", clk.tick()));  // up
    for (int i = 0; i < 50; ++i) {
        EXPECT_FALSE(sm.record(false, "refused", clk.tick()));
        EXPECT_FALSE(sm.record(true, "ok", clk.tick()));
    }
    EXPECT_EQ(sm.state(), State::Up);
    EXPECT_EQ(sm.successes(), 1u);
    EXPECT_EQ(sm.failures(), 0u);
    EXPECT_EQ(sm.checks(), 102u);
}

TEST(HealthStateMachine, FailureResetsSuccessCountFromDown)
{
    FakeClock clk;
    StateMachine sm(3, 1, clk.now);
    ASSERT_TRUE(sm.record(false, "refused", clk.tick()));  // down at once
    sm.record(true, "ok", clk.tick());
    sm.record(true, "ok", clk.tick());
    EXPECT_FALSE(sm.record(false, "refused", clk.tick()));  // already down
    sm.record(true, "ok", clk.tick());
    sm.record(true, "ok", clk.tick());
    EXPECT_EQ(sm.state(), State::Down);
    auto t = sm.record(true, "ok", clk.tick());
    ASSERT_TRUE(t);
    EXPECT_EQ(t->from, State::Down);
    EXPECT_EQ(t->to, State::Up);
}

TEST(HealthStateMachine, ThresholdOneIsImmediate)
{
    FakeClock clk;
    StateMachine sm(1, 1, clk.now);
    EXPECT_EQ(sm.record(true, "a", clk.tick())->to, State::Up);
    EXPECT_EQ(sm.record(false, "b", clk.tick())->to, State::Down);
    EXPECT_EQ(sm.record(true, "c", clk.tick())->to, State::Up);
}

TEST(HealthStateMachine, RecordsLastCheckAndResult)
{
    FakeClock clk;
    StateMachine sm(2, 3, clk.now);
    auto t1 = clk.tick(250ms);
    sm.record(false, "refused", t1);
    EXPECT_EQ(sm.last_check(), t1);
    EXPECT_EQ(sm.last_ok(), false);
    EXPECT_EQ(sm.last_reason(), "refused");
    auto t2 = clk.tick(250ms);
    sm.record(true, "connected", t2);
    EXPECT_EQ(sm.last_check(), t2);
    EXPECT_EQ(sm.last_ok(), true);
    EXPECT_EQ(sm.last_error(), "refused");
    EXPECT_EQ(sm.since(), clk.now - 500ms);  // still unknown since the start
}

TEST(HealthStateMachine, NewThresholdsKeepState)
{
    FakeClock clk;
    StateMachine sm(2, 5, clk.now);
    sm.record(true, "ok", clk.tick());
    sm.record(true, "ok", clk.tick());
    sm.record(false, "x", clk.tick());
    sm.record(false, "x", clk.tick());
    sm.set_thresholds(2, 3);
    EXPECT_EQ(sm.state(), State::Up);
    EXPECT_EQ(sm.failures(), 2u);
    auto t = sm.record(false, "x", clk.tick());
    ASSERT_TRUE(t);
    EXPECT_EQ(t->to, State::Down);
}

TEST(HealthStateMachine, ZeroThresholdsActAsOne)
{
    FakeClock clk;
    StateMachine sm(0, 0, clk.now);
    EXPECT_EQ(sm.healthy_threshold(), 1u);
    EXPECT_EQ(sm.record(true, "a", clk.tick())->to, State::Up);
}

TEST(HealthStateMachine, StateNames)
{
    EXPECT_EQ(to_string(State::Unknown), "unknown");
    EXPECT_EQ(to_string(State::Up), "up");
    EXPECT_EQ(to_string(State::Down), "down");
}
