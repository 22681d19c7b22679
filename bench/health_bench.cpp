// health_bench: what tcp health checks of many backends cost lbd, and how
// punctually they start.
//
//   sudo build/bench/health_bench [--targets N] [--seconds S] [--interval D] [--half-open]
//
// lbd's own health checker (src/health, the code lbd runs) probes N backends
// (default 10,000) with tcp checks every D (default 1s) for S seconds (default
// 10) after one interval of warm-up. The backends are N addresses of a second
// network namespace (198.19.0.0/16 routed to its lo, AnyIP), behind a veth,
// where a server process accepts and closes every connection. --half-open
// uses half-open tcp checks (half_open: true: a SYN from a raw socket, the
// SYN-ACK taken as success, the prober's kernel resetting it) instead of
// full connections; the mode is printed.
//
// What is lbd's: the prober runs pinned to CPU 0 and the server to CPU 1, and
// each veth end steers what it receives to its own side's CPU (RPS), so the
// backends' half of every TCP handshake is worked on CPU 1 and not charged to
// the prober. Reported: the prober's CPU time (user and system, the kernel's
// client-side TCP work included) as a share of one core, probes per second,
// and for every probe how late it started against its due time on the
// schedule, as a share of the interval (p50, p99, max).
//
// Checks (exit 1 when one fails; time never fails it): every probe
// succeeded, and every target was probed in every interval of the window.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "health/checker.h"  // first of ours: it includes <utility> before Asio

#include <spdlog/spdlog.h>

#include "bench_common.h"
#include "bench_netns.h"
#include "common/duration.h"

using namespace lbd;
using namespace lbd::health;

namespace {

constexpr uint16_t kPort = 7000;

double cpu_seconds(const timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) / 1e6; }

/// A private mount namespace with /sys remounted, so /sys/class/net shows
/// this network namespace's devices (for their RPS settings).
std::string own_sysfs()
{
    if (unshare(CLONE_NEWNS) != 0)
        return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return std::string("making / private: ") + std::strerror(errno);
    umount2("/sys", MNT_DETACH);
    if (mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0)
        return std::string("mounting sysfs: ") + std::strerror(errno);
    return {};
}

std::string write_file(const std::string& path, const std::string& value)
{
    std::ofstream f(path);
    f << value;
    f.close();
    return f ? std::string() : "cannot write " + path;
}

[[noreturn]] void server(int ready_fd, int go_fd, int cpus)
{
    // Own network namespace; the parent moves the veth's other end in.
    auto die = [](const std::string& why) {
        std::fprintf(stderr, "health_bench server: %s\n", why.c_str());
        _exit(2);
    };
    if (unshare(CLONE_NEWNET) != 0)
        die("unshare(CLONE_NEWNET)");
    if (auto e = own_sysfs(); !e.empty())
        die(e);
    char c = 1;
    if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
        die("sync with the parent");
    for (const char* cmd : {"ip link set lo up", "ip addr add 198.18.90.2/30 dev hcb1", "ip link set hcb1 up",
                            "ip route add local 198.19.0.0/16 dev lo"})
        if (auto e = lbb::sh(cmd); !e.empty())
            die(e);
    if (cpus > 1) {
        try {
            lbb::pin_to_cpu(1);
        } catch (const std::exception& e) {
            die(e.what());
        }
        if (auto e = write_file("/sys/class/net/hcb1/queues/rx-0/rps_cpus", "2"); !e.empty())
            die(e);
    }
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kPort);
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(s, 4096) != 0)
        die("listen");
    if (write(ready_fd, &c, 1) != 1)
        die("sync with the parent");
    for (;;) {
        const int conn = accept(s, nullptr, nullptr);
        if (conn >= 0)
            close(conn);
    }
}

}  // namespace

int main(int argc, char** argv)
{
    int n = 10000, seconds = 10;
    std::chrono::milliseconds interval{1000};
    bool half_open = false;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--half-open") {
            half_open = true;
        } else if (a == "--targets" && i + 1 < argc) {
            n = std::atoi(argv[++i]);
        } else if (a == "--seconds" && i + 1 < argc) {
            seconds = std::atoi(argv[++i]);
        } else if (a == "--interval" && i + 1 < argc) {
            auto d = parse_duration(argv[++i]);
            if (!d) {
                std::fprintf(stderr, "health_bench: bad --interval\n");
                return 2;
            }
            interval = *d;
        } else {
            std::printf("usage: health_bench [--targets N] [--seconds S] [--interval D] [--half-open]\n"
                        "  defaults: 10000 targets, 10 s, interval 1s (tcp checks, timeout = interval / 2);\n"
                        "  --half-open: half-open tcp checks (SYN, SYN-ACK) instead of full connections\n");
            return a == "-h" || a == "--help" ? 0 : 2;
        }
    }
    if (n <= 0 || n > 60000 || seconds <= 0 || interval.count() <= 0) {
        std::fprintf(stderr, "health_bench: bad arguments (targets 1..60000)\n");
        return 2;
    }
    if (!lbb::is_root()) {
        std::printf("health_bench: skipped: needs root (network namespaces)\n");
        return lbb::kSkip;
    }
    spdlog::set_level(spdlog::level::warn);
    const int cpus = std::min(2, int(sysconf(_SC_NPROCESSORS_ONLN)));
    std::printf("health_bench: mode %s\nhealth_bench: %s\n%s at start\n",
                half_open ? "half-open (half_open: true)" : "full-connect (half_open: false)",
                lbb::machine_line().c_str(), lbb::load_line().c_str());

    // The prober's namespace (this process) and the server's (a child).
    if (unshare(CLONE_NEWNET) != 0) {
        std::perror("unshare(CLONE_NEWNET)");
        return 2;
    }
    if (auto e = own_sysfs(); !e.empty()) {
        std::fprintf(stderr, "health_bench: %s\n", e.c_str());
        return 2;
    }
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0)
        return 2;
    const pid_t child = fork();
    if (child == 0)
        server(ready[1], go[0], cpus);
    auto stop_child = [&] {
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
    };
    char c;
    if (read(ready[0], &c, 1) != 1) {
        stop_child();
        return 2;
    }
    for (const std::string& cmd :
         {std::string("ip link set lo up"),
          "ip link add hcb0 type veth peer name hcb1 netns " + std::to_string(child),
          std::string("ip addr add 198.18.90.1/30 dev hcb0"), std::string("ip link set hcb0 up"),
          std::string("ip route add 198.19.0.0/16 via 198.18.90.2 dev hcb0")}) {
        if (auto e = lbb::sh(cmd); !e.empty()) {
            std::fprintf(stderr, "health_bench: %s\n", e.c_str());
            stop_child();
            return 2;
        }
    }
    if (cpus > 1) {
        lbb::pin_to_cpu(0);  // throws only if CPU 0 is not ours: then the run means nothing
        if (auto e = write_file("/sys/class/net/hcb0/queues/rx-0/rps_cpus", "1"); !e.empty()) {
            std::fprintf(stderr, "health_bench: %s\n", e.c_str());
            stop_child();
            return 2;
        }
    }
    if (write(go[1], &c, 1) != 1 || read(ready[0], &c, 1) != 1) {
        std::fprintf(stderr, "health_bench: the server did not start\n");
        stop_child();
        return 2;
    }

    boost::asio::io_context io;
    HealthChecker checker(io);
    bool measuring = false;
    uint64_t probes = 0, failed = 0;
    std::string first_failure;
    std::vector<double> late;  // started - due, as a share of the interval
    late.reserve(size_t(n) * size_t(seconds + 2));
    std::vector<uint32_t> per_target(size_t(n), 0);
    checker.on_probe([&](const Target& t, const ProbeResult& r) {
        if (!measuring)
            return;
        ++probes;
        if (!r.ok) {
            ++failed;
            if (first_failure.empty())
                first_failure = t.address.str() + ": " + r.reason;
        }
        per_target[size_t(t.address.bytes[2]) * 250 + t.address.bytes[3] - 1]++;  // as made below
        late.push_back(std::chrono::duration<double>(r.started - r.due).count() /
                       std::chrono::duration<double>(interval).count());
    });
    std::vector<Target> targets;
    targets.reserve(size_t(n));
    for (int i = 0; i < n; ++i) {
        Target t;
        t.vip = "b" + std::to_string(i);
        t.address = *IpAddr::parse("198.19." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250));
        t.port = kPort;
        t.config.type = CheckType::Tcp;
        t.config.interval = interval;
        t.config.timeout = interval / 2;
        t.config.half_open = half_open;
        targets.push_back(std::move(t));
    }
    checker.set_targets(std::move(targets));

    io.run_for(interval);  // warm-up: the first probes are spread over one interval
    measuring = true;
    rusage r0{}, r1{};
    getrusage(RUSAGE_SELF, &r0);
    const auto w0 = std::chrono::steady_clock::now();
    io.run_for(std::chrono::seconds(seconds));
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    getrusage(RUSAGE_SELF, &r1);
    measuring = false;
    checker.stop();
    io.run_for(std::chrono::seconds(1));
    stop_child();

    const double user = cpu_seconds(r1.ru_utime) - cpu_seconds(r0.ru_utime);
    const double sys = cpu_seconds(r1.ru_stime) - cpu_seconds(r0.ru_stime);
    const double rate = double(probes) / wall;
    const double want_rate = double(n) / std::chrono::duration<double>(interval).count();
    const auto [lo, hi] = std::minmax_element(per_target.begin(), per_target.end());

    std::printf("\n%d backends, %s tcp checks every %s, measured for %.1f s (after one interval of warm-up)\n", n,
                half_open ? "half-open (SYN, SYN-ACK)" : "full-connect", format_duration(interval).c_str(), wall);
    lbb::Table t({"what", "value", "target"});
    t.add({"probes per second", lbb::fmt("%.0f", rate), lbb::fmt("%.0f", want_rate)});
    t.add({"prober CPU, user + system, share of one core", lbb::fmt("%.1f%%", 100 * (user + sys) / wall), "< 10%"});
    t.add({"  user (lbd's code: scheduling, probes, state machines)", lbb::fmt("%.1f%%", 100 * user / wall), "-"});
    t.add({"  system (syscalls and the client side of each handshake)", lbb::fmt("%.1f%%", 100 * sys / wall), "-"});
    t.add({"CPU per probe", lbb::fmt("%.1f us", rate > 0 ? 1e6 * (user + sys) / wall / rate : 0.0), "-"});
    t.add({"probe start after its due time, p50 (share of the interval)", lbb::fmt("%.2f%%", 100 * lbb::quantile(late, 0.5)), "-"});
    t.add({"  p99", lbb::fmt("%.2f%%", 100 * lbb::quantile(late, 0.99)), "-"});
    t.add({"  max", lbb::fmt("%.2f%%", 100 * lbb::quantile(late, 1.0)), "< 10%"});
    t.add({"probes per target (min-max)", std::to_string(*lo) + "-" + std::to_string(*hi), "-"});
    t.add({"failed probes", std::to_string(failed), "0"});
    t.print();
    std::printf("  CPU: the prober's (pinned to CPU 0) getrusage; the backends' side of each handshake runs on\n"
                "  CPU 1 (server pinned there, RPS on its veth end) and is not in it.%s The user/system split\n"
                "  is sampled per tick where the kernel has no fine-grained accounting: then only the sum is exact.\n"
                "%s at the end\n",
                cpus > 1 ? "" : " (one CPU only: it is in it here)", lbb::load_line().c_str());

    bool ok = true;
    if (failed) {
        std::printf("CHECK FAILED: %llu probes failed, the first: %s\n", static_cast<unsigned long long>(failed),
                    first_failure.c_str());
        ok = false;
    }
    // Every target probed on every interval of the window (one fewer at
    // the edges); lateness is reported above, not checked.
    const uint32_t intervals = uint32_t(wall / std::chrono::duration<double>(interval).count());
    if (*lo + 1 < intervals) {
        std::printf("CHECK FAILED: a target was probed %u times in %u intervals\n", *lo, intervals);
        ok = false;
    }
    return ok ? 0 : 1;
}
