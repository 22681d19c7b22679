#include "common/duration.h"

#include <gtest/gtest.h>

using namespace lbd;
using namespace std::chrono_literals;

TEST(Duration, Parses)
{
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("5s"), 5s);
    EXPECT_EQ(parse_duration("2m"), 2min);
    EXPECT_EQ(parse_duration("1h"), 1h);
    EXPECT_EQ(parse_duration("1500ms"), 1500ms);
    EXPECT_EQ(parse_duration("90s"), 90s);
}

TEST(Duration, Rejects)
{
    for (const char* s : {"", "5", "ms", "s", "-5s", "+5s", "0s", "0ms", "5 s", " 5s", "5s ", "5sec", "5S", "5d",
                          "1.5s", "5ms5", "5h1m", "0x10s", "99999999999999999999ms"})
        EXPECT_FALSE(parse_duration(s)) << s;
}

TEST(Duration, RejectsOverflow)
{
    // int64 milliseconds hold about 2.56e12 hours.
    EXPECT_TRUE(parse_duration("9223372036854775807ms"));
    EXPECT_FALSE(parse_duration("9223372036854775808ms"));
    EXPECT_FALSE(parse_duration("9223372036854776s"));
    EXPECT_TRUE(parse_duration("2562047788015h"));
    EXPECT_FALSE(parse_duration("2562047788016h"));
}

TEST(Duration, FormatsLargestExactUnit)
{
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(5s), "5s");
    EXPECT_EQ(format_duration(2min), "2m");
    EXPECT_EQ(format_duration(90s), "90s");
    EXPECT_EQ(format_duration(1h), "1h");
    EXPECT_EQ(format_duration(61min), "61m");
    EXPECT_EQ(format_duration(1ms), "1ms");
    EXPECT_EQ(format_duration(0ms), "0ms");
}

TEST(Duration, RoundTrips)
{
    for (const char* s : {"250ms", "5s", "2m", "1h", "1001ms", "36h"})
        EXPECT_EQ(format_duration(*parse_duration(s)), s);
}
