// BgpSpeaker against a fake ExaBGP (tests/integration/lib/bgp_fake_exabgp.py,
// which acknowledges commands and reports them as sent): what is sent and
// when, restart after a crash, stop with and without acknowledgements,
// reconfigure, foreign connections. No root, no BGP.
#include "bgp/supervisor.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace lbd;
using namespace lbd::bgp;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string source_dir()
{
#ifdef LBD_SOURCE_DIR
    return LBD_SOURCE_DIR;
#else
    return fs::path(__FILE__).parent_path().parent_path().parent_path().string();
#endif
}

IpAddr ip(const char* s)
{
    return *IpAddr::parse(s);
}

class Speaker : public testing::Test {
protected:
    fs::path dir;
    fs::path fake;
    fs::path log;
    boost::asio::io_context io;
    spdlog::level::level_enum saved_level = spdlog::get_level();

    void SetUp() override
    {
        if (::access("/usr/bin/python3", X_OK) != 0)
            GTEST_SKIP() << "python3 not installed";
        std::string tmpl = (fs::temp_directory_path() / "bgp-speaker.XXXXXX").string();
        ASSERT_TRUE(::mkdtemp(tmpl.data()));
        dir = tmpl;
        // A copy, so the script is executable whatever the checkout did with modes.
        fake = dir / "fake_exabgp";
        fs::copy_file(fs::path(source_dir()) / "tests/integration/lib/bgp_fake_exabgp.py", fake);
        fs::permissions(fake, fs::perms::owner_all);
        log = dir / "commands.log";
        ::setenv("FAKE_EXABGP_LOG", log.c_str(), 1);
        ::unsetenv("FAKE_EXABGP_MODE");
        spdlog::set_level(spdlog::level::warn);
    }

    void TearDown() override
    {
        spdlog::set_level(saved_level);
        ::unsetenv("FAKE_EXABGP_LOG");
        ::unsetenv("FAKE_EXABGP_MODE");
        if (!dir.empty())
            fs::remove_all(dir);
    }

    BgpConfig config()
    {
        BgpConfig c;
        c.enabled = true;
        c.exabgp = fake.string();
        c.local_as = 65001;
        c.local_address = ip("198.18.0.2");
        c.router_id = c.local_address;
        Neighbor nb;
        nb.address = ip("198.18.0.1");
        nb.peer_as = 65000;
        nb.ipv4 = true;
        c.neighbors.push_back(nb);
        c.med = 100;
        c.hold_down = 300ms;
        return c;
    }

    SpeakerOptions options()
    {
        SpeakerOptions o;
        o.relay = {fake.string(), "relay"};
        o.runtime_dir = (dir / "run").string();
        o.backoff_min = 100ms;
        o.backoff_max = 400ms;
        return o;
    }

    static PolicyInputs inputs(uint32_t healthy)
    {
        PolicyInputs in;
        in.vips.push_back({"web", ip("198.18.1.100"), healthy, {}});
        return in;
    }

    std::vector<std::string> commands()
    {
        std::vector<std::string> out;
        std::ifstream f(log);
        for (std::string line; std::getline(f, line);)
            out.push_back(line);
        return out;
    }

    template <class Pred>
    bool run_until(Pred pred, std::chrono::milliseconds limit = 5s)
    {
        auto end = std::chrono::steady_clock::now() + limit;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > end)
                return false;
            if (io.stopped())
                io.restart();
            io.run_for(10ms);
        }
        return true;
    }

    static bool sent(BgpSpeaker& sp)
    {
        auto s = sp.status();
        return s.exabgp_running && s.prefixes.size() == 1 && s.prefixes[0].sent_to.size() == 1;
    }

    void stop(BgpSpeaker& sp)
    {
        bool stopped = false;
        sp.stop([&] { stopped = true; });
        ASSERT_TRUE(run_until([&] { return stopped; }));
    }
};

const std::string kAnnounce = "neighbor 198.18.0.1 announce route 198.18.1.100/32 next-hop self med 100";
const std::string kWithdraw = "neighbor 198.18.0.1 withdraw route 198.18.1.100/32";

}  // namespace

TEST_F(Speaker, AnnouncesOnceWithdrawsHoldsDownAndStops)
{
    BgpSpeaker sp(io, config(), options());
    auto in = inputs(1);
    sp.update(in);
    sp.start();
    ASSERT_TRUE(run_until([&] { return sent(sp); })) << format_status(sp.status(), Clock::now());
    auto s = sp.status();
    ASSERT_EQ(s.neighbors.size(), 1u);
    EXPECT_EQ(s.neighbors[0].state, "established");
    EXPECT_TRUE(s.api_connected);
    EXPECT_EQ(commands(), std::vector<std::string>{kAnnounce});

    in.vips[0].healthy = 0;
    sp.update(in);
    sp.update(in);  // nothing new: nothing sent
    ASSERT_TRUE(run_until([&] { return commands().size() == 2; }));
    EXPECT_EQ(commands()[1], kWithdraw);
    EXPECT_EQ(sp.status().prefixes[0].state.reason, "vip web: 0 healthy backends < quorum 1");

    in.vips[0].healthy = 1;
    auto t0 = std::chrono::steady_clock::now();
    sp.update(in);
    ASSERT_TRUE(run_until([&] { return commands().size() == 3; }));
    auto held = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(held, 300ms);
    EXPECT_LT(held, 3s);
    EXPECT_EQ(commands()[2], kAnnounce);

    auto stop_start = std::chrono::steady_clock::now();
    stop(sp);
    EXPECT_LT(std::chrono::steady_clock::now() - stop_start, 2500ms);  // confirmed: no 3 s timeout
    EXPECT_EQ(commands().back(), kWithdraw);
    EXPECT_FALSE(sp.status().exabgp_running);
    EXPECT_FALSE(fs::exists(dir / "run" / "api.sock"));
    EXPECT_FALSE(fs::exists(dir / "run" / "exabgp.conf"));
}

TEST_F(Speaker, RestartsExabgpAfterACrashAndAnnouncesAgain)
{
    BgpSpeaker sp(io, config(), options());
    sp.update(inputs(1));
    sp.start();
    ASSERT_TRUE(run_until([&] { return sent(sp); }));
    int first = sp.status().exabgp_pid;
    ::kill(first, SIGKILL);
    ASSERT_TRUE(run_until([&] { return sp.status().exabgp_pid != first && sent(sp); }))
        << format_status(sp.status(), Clock::now());
    auto s = sp.status();
    EXPECT_EQ(s.exabgp_starts, 2u);
    EXPECT_NE(s.last_exit.find("killed by signal 9"), std::string::npos) << s.last_exit;
    EXPECT_EQ(commands(), (std::vector<std::string>{kAnnounce, kAnnounce}));
    EXPECT_NE(::kill(first, 0), 0);  // reaped
    stop(sp);
}

TEST_F(Speaker, StopGivesUpAfterStopTimeoutWithoutAcknowledgements)
{
    ::setenv("FAKE_EXABGP_MODE", "no-ack", 1);
    auto o = options();
    o.stop_timeout = 300ms;
    BgpSpeaker sp(io, config(), o);
    sp.update(inputs(1));
    sp.start();
    ASSERT_TRUE(run_until([&] { return commands().size() == 1; }));
    int pid = sp.status().exabgp_pid;
    auto t0 = std::chrono::steady_clock::now();
    stop(sp);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 3s);
    EXPECT_EQ(commands().back(), kWithdraw);
    EXPECT_NE(::kill(pid, 0), 0);
}

TEST_F(Speaker, ReconfigureRestartsOnlyForSessionChanges)
{
    auto cfg = config();
    BgpSpeaker sp(io, cfg, options());
    sp.update(inputs(1));
    sp.start();
    ASSERT_TRUE(run_until([&] { return sent(sp); }));
    int first = sp.status().exabgp_pid;

    cfg.med = 200;  // an attribute: sent as a new announcement
    sp.reconfigure(cfg);
    const std::string med200 = "neighbor 198.18.0.1 announce route 198.18.1.100/32 next-hop self med 200";
    ASSERT_TRUE(run_until([&] { return commands().size() == 2; }));
    EXPECT_EQ(commands()[1], med200);
    EXPECT_EQ(sp.status().exabgp_pid, first);

    cfg.hold_time = 30;  // a session parameter: new configuration, new ExaBGP
    sp.reconfigure(cfg);
    ASSERT_TRUE(run_until([&] { return sp.status().exabgp_pid != first && sent(sp); }));
    EXPECT_EQ(commands().back(), med200);
    std::ifstream conf(dir / "run" / "exabgp.conf");
    std::string text((std::istreambuf_iterator<char>(conf)), {});
    EXPECT_NE(text.find("hold-time 30;"), std::string::npos);
    stop(sp);
}

TEST_F(Speaker, RefusesApiConnectionsNotFromItsExabgp)
{
    BgpSpeaker sp(io, config(), options());
    sp.update(inputs(1));
    sp.start();
    ASSERT_TRUE(run_until([&] { return sent(sp); }));

    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    auto path = (dir / "run" / "api.sock").string();
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    char c;
    ssize_t n = -1;
    ASSERT_TRUE(run_until([&] {
        n = ::recv(fd, &c, 1, MSG_DONTWAIT);
        return n == 0;  // closed by the speaker
    }));
    ::close(fd);

    // The real relay still works.
    auto in = inputs(0);
    sp.update(in);
    ASSERT_TRUE(run_until([&] { return commands().size() == 2; }));
    EXPECT_EQ(commands()[1], kWithdraw);
    stop(sp);
}

TEST_F(Speaker, ExecFailureIsReportedAndRetried)
{
    auto cfg = config();
    cfg.exabgp = (dir / "missing").string();
    BgpSpeaker sp(io, cfg, options());
    sp.update(inputs(1));
    sp.start();
    ASSERT_TRUE(run_until([&] { return sp.status().exabgp_starts == 0 && sp.status().next_start.has_value(); }));
    EXPECT_NE(sp.status().last_exit.find("cannot execute"), std::string::npos) << sp.status().last_exit;
    stop(sp);
}

TEST_F(Speaker, RelayWordsAreChecked)
{
    auto o = options();
    o.relay = {fake.string(), "relay; neighbor"};
    BgpSpeaker sp(io, config(), o);
    EXPECT_THROW(sp.start(), std::invalid_argument);
}

TEST_F(Speaker, DestructorKillsExabgp)
{
    int pid = 0;
    {
        BgpSpeaker sp(io, config(), options());
        sp.update(inputs(1));
        sp.start();
        ASSERT_TRUE(run_until([&] { return sent(sp); }));
        pid = sp.status().exabgp_pid;
    }
    EXPECT_NE(::kill(pid, 0), 0);
    EXPECT_FALSE(fs::exists(dir / "run" / "api.sock"));
}
