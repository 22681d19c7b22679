// MaintenanceWatch on a temporary directory: inotify reports changes well
// inside the poll interval, and the poll covers a directory made later.
#include "bgp/maintenance_watch.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>

using namespace lbd::bgp;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir()
    {
        std::string tmpl = (fs::temp_directory_path() / "bgp-maint.XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

/// Runs `io` until `pred` holds or `limit` passes; returns the time it took.
template <class Pred>
std::chrono::milliseconds run_until(boost::asio::io_context& io, Pred pred, std::chrono::milliseconds limit = 3s)
{
    auto start = std::chrono::steady_clock::now();
    while (!pred() && std::chrono::steady_clock::now() - start < limit)
        io.run_for(10ms);
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

}  // namespace

TEST(MaintenanceWatch, InotifySeesCreateAndDelete)
{
    TempDir dir;
    auto file = dir.path / "disable";
    boost::asio::io_context io;
    std::vector<bool> seen;
    // A long poll: what is seen within it came from inotify.
    MaintenanceWatch w(io, file.string(), [&](bool present) { seen.push_back(present); }, 10s);
    EXPECT_FALSE(w.present());
    io.run_for(20ms);
    EXPECT_TRUE(seen.empty());

    std::ofstream(file).put('x');
    auto took = run_until(io, [&] { return seen.size() == 1; });
    ASSERT_EQ(seen, std::vector<bool>{true});
    EXPECT_LT(took, 500ms);
    EXPECT_TRUE(w.present());

    fs::remove(file);
    run_until(io, [&] { return seen.size() == 2; });
    EXPECT_EQ(seen, (std::vector<bool>{true, false}));

    fs::create_directory(file);  // any entry counts, and a rename into place too
    run_until(io, [&] { return seen.size() == 3; });
    fs::remove(file);
    run_until(io, [&] { return seen.size() == 4; });
    std::ofstream(dir.path / "tmp").put('x');
    fs::rename(dir.path / "tmp", file);
    run_until(io, [&] { return seen.size() == 5; });
    EXPECT_EQ(seen, (std::vector<bool>{true, false, true, false, true}));
}

TEST(MaintenanceWatch, InitialStateWithoutCallback)
{
    TempDir dir;
    auto file = dir.path / "disable";
    std::ofstream(file).put('x');
    boost::asio::io_context io;
    int calls = 0;
    MaintenanceWatch w(io, file.string(), [&](bool) { ++calls; });
    EXPECT_TRUE(w.present());
    io.run_for(50ms);
    EXPECT_EQ(calls, 0);
}

TEST(MaintenanceWatch, PollCoversDirectoryMadeLater)
{
    TempDir dir;
    auto file = dir.path / "later" / "disable";
    boost::asio::io_context io;
    std::vector<bool> seen;
    MaintenanceWatch w(io, file.string(), [&](bool present) { seen.push_back(present); }, 100ms);
    io.run_for(50ms);
    fs::create_directory(dir.path / "later");
    std::ofstream(file).put('x');
    run_until(io, [&] { return !seen.empty(); });
    EXPECT_EQ(seen, std::vector<bool>{true});
    // The poll has added the inotify watch by now; removal is seen.
    fs::remove(file);
    run_until(io, [&] { return seen.size() == 2; });
    EXPECT_EQ(seen, (std::vector<bool>{true, false}));
}

TEST(MaintenanceWatch, EmptyPathIsNeverPresent)
{
    boost::asio::io_context io;
    MaintenanceWatch w(io, "", [](bool) { FAIL(); });
    EXPECT_FALSE(w.present());
    io.run_for(20ms);
}
