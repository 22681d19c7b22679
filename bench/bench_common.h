// Small helpers shared by the benchmarks in bench/ (header only: every
// bench/*.cpp is its own executable).
#pragma once

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace lbb {

/// Exit code of a benchmark that cannot run here (not root): the test
/// suites' "skipped" code.
constexpr int kSkip = 77;

inline bool is_root() { return geteuid() == 0; }

inline uint64_t now_ns()
{
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
}

/// CPU time of the calling thread (user + system), in ns: unlike wall time
/// it does not grow while other processes hold the CPU.
inline uint64_t thread_cpu_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

/// Wall and CPU time of a stretch of code.
inline uint64_t process_cpu_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct Stopwatch {
    uint64_t wall0 = now_ns(), cpu0 = thread_cpu_ns(), proc0 = process_cpu_ns();
    double wall_ms() const { return double(now_ns() - wall0) / 1e6; }
    /// This thread's CPU time.
    double cpu_ms() const { return double(thread_cpu_ns() - cpu0) / 1e6; }
    /// Every thread's of the process.
    double process_cpu_ms() const { return double(process_cpu_ns() - proc0) / 1e6; }
};

/// The q-quantile (0..1) of `v` by nearest rank; v is copied.
template <typename T>
double quantile(std::vector<T> v, double q)
{
    if (v.empty())
        return NAN;
    std::sort(v.begin(), v.end());
    size_t rank = size_t(std::ceil(q * double(v.size())));
    rank = std::clamp<size_t>(rank, 1, v.size());
    return double(v[rank - 1]);
}

/// Median: the mean of the two middle values for an even count.
template <typename T>
double median(std::vector<T> v)
{
    if (v.empty())
        return NAN;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? double(v[n / 2]) : (double(v[n / 2 - 1]) + double(v[n / 2])) / 2.0;
}

template <typename T>
double min_of(const std::vector<T>& v)
{
    return v.empty() ? NAN : double(*std::min_element(v.begin(), v.end()));
}

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), -1 if absent.
inline long proc_status_kib(const std::string& field, const std::string& pid = "self")
{
    std::ifstream f("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field + ":", 0) == 0)
            return std::stol(line.substr(field.size() + 1));
    return -1;
}

inline std::string cpu_model()
{
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("model name", 0) == 0) {
            auto p = line.find(':');
            return p == std::string::npos ? line : line.substr(p + 2);
        }
    return "unknown";
}

/// One line naming the machine: CPU, CPUs online, kernel, date.
inline std::string machine_line()
{
    utsname u{};
    uname(&u);
    char date[32];
    const time_t t = time(nullptr);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
    return cpu_model() + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " CPUs, kernel " +
           u.release + ", " + date;
}

/// "load average 0.52 0.40 0.33" (/proc/loadavg): other work on the machine
/// makes the figures noisier; the benches print it at start and end.
inline std::string load_line()
{
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    f >> a >> b >> c;
    return "load average " + a + " " + b + " " + c;
}

/// Pins the calling thread to one CPU (no migration between timed runs).
inline void pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        throw std::runtime_error("sched_setaffinity(" + std::to_string(cpu) + ") failed");
}

inline std::string fmt(const char* f, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

/// A plain text table: columns padded to their widest cell.
class Table {
public:
    explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void print(FILE* out = stdout) const
    {
        std::vector<size_t> w;
        for (const auto& r : rows_)
            for (size_t i = 0; i < r.size(); i++) {
                if (w.size() <= i)
                    w.push_back(0);
                w[i] = std::max(w[i], r[i].size());
            }
        for (size_t ri = 0; ri < rows_.size(); ri++) {
            std::string line;
            for (size_t i = 0; i < rows_[ri].size(); i++) {
                std::string cell = rows_[ri][i];
                // first column left-aligned, numbers right-aligned
                if (i == 0)
                    cell += std::string(w[i] - cell.size(), ' ');
                else
                    cell = std::string(w[i] - cell.size(), ' ') + cell;
                line += (i ? "  " : "") + cell;
            }
            std::fprintf(out, "  %s\n", line.c_str());
            if (ri == 0) {
                size_t total = 0;
                for (auto x : w)
                    total += x + 2;
                std::fprintf(out, "  %s\n", std::string(total - 2, '-').c_str());
            }
        }
    }

private:
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace lbb
