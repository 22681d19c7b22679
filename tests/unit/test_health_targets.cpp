// `via: tunnel` health checks, the pure side: the mark range in the config.
#include <gtest/gtest.h>

#include "config_test_util.h"

#include <algorithm>

#include "lbd/core/config.h"
#include "lbd/core/reload.h"

using namespace lbd;

namespace {

using lbd::testing::config_of;
using lbd::testing::dump;
using lbd::testing::errors_of;

const std::string kDatapath = "datapath:\n  interfaces: [eth0]\n";  // lines 1-2

bool has_error(const std::vector<ConfigError>& errors, const std::string& key, const std::string& fragment)
{
    return std::any_of(errors.begin(), errors.end(), [&](const ConfigError& e) {
        return e.key == key && e.message.find(fragment) != std::string::npos;
    });
}

}  // namespace

// ------------------------------------------------------------------ config

TEST(TunnelConfig, MarkRangeParses)
{
    EXPECT_EQ(MarkRange::parse("0x4c420000/0xffff0000"), (MarkRange{0x4c420000, 0xffff0000}));
    EXPECT_EQ(MarkRange::parse("256/4294967040"), (MarkRange{256, 0xffffff00}));
    EXPECT_EQ(MarkRange::parse("0X10000/0XFFFF0000"), (MarkRange{0x10000, 0xffff0000}));
    for (const char* bad : {"", "0x10", "0x10/", "/0xff", "0x/0xff", "0x1g/0xff", "1/2/3", "0x100000000/0xff",
                            " 1/2", "-1/2"})
        EXPECT_FALSE(MarkRange::parse(bad)) << bad;
    EXPECT_EQ((MarkRange{0x4c420000, 0xffff0000}).str(), "0x4c420000/0xffff0000");

    const MarkRange r{0x7c000000, 0xfffffff0};
    EXPECT_EQ(r.capacity(), 15u);
    EXPECT_EQ(r.mark(1), 0x7c000001u);
    EXPECT_EQ(r.mark(15), 0x7c00000fu);
    EXPECT_EQ(r.problem(), "");
    EXPECT_NE((MarkRange{0x10000, 0xff00ff00}).problem().find("leading ones then zeros"), std::string::npos);
    EXPECT_NE((MarkRange{0x10000, 0xffffffff}).problem().find("no bit free"), std::string::npos);
    EXPECT_NE((MarkRange{0x10001, 0xffff0000}).problem().find("bits outside the mask"), std::string::npos);
    EXPECT_NE((MarkRange{0, 0xffff0000}).problem().find("must not be 0"), std::string::npos);
}


TEST(TunnelConfig, ProbeMarksKey)
{
    auto cfg = config_of(kDatapath + "  probe_marks: 0x7c000000/0xfffff000\n");
    EXPECT_EQ(cfg.datapath.probe_marks, (MarkRange{0x7c000000, 0xfffff000}));

    auto bad = errors_of(kDatapath + "  probe_marks: lots\n");
    ASSERT_EQ(bad.size(), 1u) << dump(bad);
    EXPECT_EQ(bad[0].str(), "3: datapath.probe_marks: 'lots' is not VALUE/MASK (such as 0x4c420000/0xffff0000)");
    auto gaps = errors_of(kDatapath + "  probe_marks: 0x10000/0xff00ff00\n");
    ASSERT_EQ(gaps.size(), 1u) << dump(gaps);
    EXPECT_EQ(gaps[0].str(), "3: datapath.probe_marks: '0x00010000/0xff00ff00': the mask must be leading ones "
                             "then zeros (such as 0xffff0000), not 0xff00ff00");
    EXPECT_TRUE(has_error(errors_of(kDatapath + "  probe_marks: 0/0xffff0000\n"), "datapath.probe_marks",
                          "must not be 0"));
    EXPECT_TRUE(has_error(errors_of(kDatapath + "  probe_marks: [1]\n"), "datapath.probe_marks", "must be"));
}


TEST(TunnelConfig, MarkRangeNeedsARestart)
{
    DatapathConfig a, b;
    EXPECT_TRUE(restart_only_changes(a, b).empty());
    b.probe_marks = {0x7c000000, 0xffffff00};
    EXPECT_EQ(restart_only_changes(a, b), std::vector<std::string>{"datapath.probe_marks"});
}
