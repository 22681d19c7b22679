// hc_bench: the CPU cost of tcp health checks. N targets, each probed every
// INTERVAL, against a listener on 127.0.0.1 that a child process accepts
// and closes on; reports probes per second and this process's CPU use (user
// + system, which includes the kernel's loopback TCP work done on its behalf).
//
//   hc_bench [TARGETS [SECONDS [INTERVAL]]]      defaults: 10000 10 1s
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/duration.h"
#include "health/checker.h"

using namespace lbd;
using namespace lbd::health;

namespace {

struct Cpu {
    double user = 0, sys = 0;
};

Cpu cpu_now()
{
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
    return {sec(ru.ru_utime), sec(ru.ru_stime)};
}

}  // namespace

int main(int argc, char** argv)
{
    if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
        std::puts("usage: hc_bench [TARGETS [SECONDS [INTERVAL]]]   (defaults: 10000 10 1s)");
        return 0;
    }
    int n = argc > 1 ? std::atoi(argv[1]) : 10000;
    int seconds = argc > 2 ? std::atoi(argv[2]) : 10;
    auto interval = argc > 3 ? parse_duration(argv[3]) : std::chrono::milliseconds(1000);
    if (n <= 0 || seconds <= 0 || !interval) {
        std::fputs("hc_bench: bad arguments (see --help)\n", stderr);
        return 2;
    }
    spdlog::set_level(spdlog::level::warn);

    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor.listen(4096);
    uint16_t port = acceptor.local_endpoint().port();
    pid_t child = ::fork();
    if (child == 0) {
        int fd = acceptor.native_handle();
        for (;;) {
            int c = ::accept(fd, nullptr, nullptr);
            if (c >= 0)
                ::close(c);
        }
    }
    acceptor.close();

    HealthChecker checker(io);
    uint64_t probes = 0, failed = 0;
    checker.on_probe([&](const Target&, const ProbeResult& r) {
        ++probes;
        failed += !r.ok;
    });
    std::vector<Target> targets;
    targets.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        Target t;
        t.vip = "b" + std::to_string(i);
        t.address = *IpAddr::parse("127.0.0.1");
        t.port = port;
        t.config.interval = *interval;
        t.config.timeout = *interval / 2;
        targets.push_back(std::move(t));
    }
    checker.set_targets(std::move(targets));

    // Warm up for one interval (first probes are spread over it), then measure.
    io.run_for(*interval);
    uint64_t p0 = probes, f0 = failed;
    Cpu c0 = cpu_now();
    auto w0 = std::chrono::steady_clock::now();
    io.run_for(std::chrono::seconds(seconds));
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    Cpu c1 = cpu_now();
    double user = c1.user - c0.user, sys = c1.sys - c0.sys, cpu = user + sys;
    checker.stop();
    io.run_for(std::chrono::seconds(2));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);

    double rate = static_cast<double>(probes - p0) / wall;
    std::printf("targets %d, interval %s: %.0f probes/s (%llu failed), CPU %.1f%% of one core "
                "(user %.1f%%, system %.1f%%; %.1f us per probe)\n",
                n, format_duration(*interval).c_str(), rate, static_cast<unsigned long long>(failed - f0),
                100.0 * cpu / wall, 100.0 * user / wall, 100.0 * sys / wall, rate > 0 ? 1e6 * cpu / wall / rate : 0.0);
    return 0;
}
