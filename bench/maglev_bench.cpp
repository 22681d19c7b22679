// maglev_bench: time to build one Maglev ring (src/common/maglev.cpp), the
// work lbd does per VIP on every backend change.
//
//   build/bench/maglev_bench [--builds N] [--ring-size M]
//
// Cases: 1,000 and 100 backends of weight 1, 1,000 backends of mixed
// weights, and the slowest weighting the config allows (one backend of
// weight 65535, the rest 1: the builder claims about one slot per round over
// all backends). Each case: one untimed build, then N timed builds; min,
// median and max wall time, and the median CPU time. Every ring is checked:
// every slot must name a backend of the set with weight > 0 (a failure makes
// the exit status 1; time never does); how far the shares are from the
// weights is reported. Needs no root.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bench_common.h"
#include "common/maglev.h"

namespace {

using lbd::maglev::Backend;

std::vector<Backend> backends(size_t n, const std::vector<uint32_t>& weights)
{
    std::vector<Backend> out;
    out.reserve(n);
    for (size_t i = 0; i < n; i++) {
        // The key LbState uses: the backend's endpoint.
        const std::string key = "10." + std::to_string(1 + i / 65536) + "." +
                                std::to_string((i / 256) % 256) + "." + std::to_string(i % 256) + ":80";
        out.push_back({key, weights[i % weights.size()], uint32_t(i + 1)});
    }
    return out;
}

/// Slot shares against the weights: returns "" or what is wrong, and the
/// largest relative deviation from the weighted share among backends whose
/// share is at least 10 slots.
std::string check_ring(const std::vector<uint32_t>& ring, const std::vector<Backend>& set,
                       uint32_t ring_size, double* worst)
{
    if (ring.size() != ring_size)
        return "ring has " + std::to_string(ring.size()) + " slots";
    std::map<uint32_t, uint64_t> count;
    for (uint32_t id : ring)
        count[id]++;
    uint64_t total_weight = 0;
    std::map<uint32_t, uint32_t> weight;
    for (const auto& b : set) {
        weight[b.id] = b.weight;
        total_weight += b.weight;
    }
    for (const auto& [id, n] : count)
        if (!weight.count(id) || weight[id] == 0)
            return std::to_string(n) + " slots name id " + std::to_string(id) + ", not a backend of weight > 0";
    *worst = 0;
    for (const auto& [id, w] : weight) {
        const double want = double(ring_size) * double(w) / double(total_weight);
        if (want < 10)
            continue;
        const double got = double(count[id]);
        *worst = std::max(*worst, std::abs(got - want) / want);
    }
    return {};
}

}  // namespace

int main(int argc, char** argv)
{
    int builds = 20;
    uint32_t ring_size = 65537;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--builds" && i + 1 < argc)
            builds = std::stoi(argv[++i]);
        else if (a == "--ring-size" && i + 1 < argc)
            ring_size = uint32_t(std::stoul(argv[++i]));
        else {
            std::printf("usage: maglev_bench [--builds N] [--ring-size M]\n");
            return a == "-h" || a == "--help" ? 0 : 2;
        }
    }
    struct Case {
        std::string name;
        std::vector<Backend> set;
        double target_ms;
    };
    std::vector<Case> cases = {
        {"1,000 backends, weight 1", backends(1000, {1}), 5},
        {"100 backends, weight 1", backends(100, {1}), 0},
        {"1,000 backends, weights 1,2,3,5,10", backends(1000, {1, 2, 3, 5, 10}), 0},
        {"1,000 backends, weights 1..100", backends(1000, [] {
             std::vector<uint32_t> w;
             for (uint32_t i = 1; i <= 100; i++)
                 w.push_back(i);
             return w;
         }()), 0},
        {"1,000 backends, one 65535, rest 1 (worst)", [] {
             auto s = backends(1000, {1});
             s[0].weight = 65535;
             return s;
         }(), 0},
    };

    std::printf("maglev_bench: %s\n", lbb::machine_line().c_str());
    std::printf("%s at start\n", lbb::load_line().c_str());
    std::printf("ring size %u, %d timed builds per case (after one untimed), wall time per build\n\n",
                ring_size, builds);
    lbb::Table t({"case", "min ms", "median ms", "max ms", "CPU median ms", "target", "worst share error",
                  "check"});
    int failures = 0;
    const uint64_t t0 = lbb::now_ns();
    for (const auto& c : cases) {
        std::vector<double> ms, cpu;
        std::vector<uint32_t> ring = lbd::maglev::build_ring(c.set, ring_size);  // warm-up
        for (int i = 0; i < builds; i++) {
            lbb::Stopwatch w;
            ring = lbd::maglev::build_ring(c.set, ring_size);
            ms.push_back(w.wall_ms());
            cpu.push_back(w.cpu_ms());
        }
        double worst = 0;
        const std::string err = check_ring(ring, c.set, ring_size, &worst);
        if (!err.empty()) {
            std::printf("CHECK FAILED: %s: %s\n", c.name.c_str(), err.c_str());
            failures++;
        }
        t.add({c.name, lbb::fmt("%.2f", lbb::min_of(ms)), lbb::fmt("%.2f", lbb::median(ms)),
               lbb::fmt("%.2f", *std::max_element(ms.begin(), ms.end())), lbb::fmt("%.2f", lbb::median(cpu)),
               c.target_ms > 0 ? "< " + lbb::fmt("%.0f", c.target_ms) + " ms" : "-",
               lbb::fmt("%.1f%%", 100 * worst), err.empty() ? "ok" : "FAILED"});
    }
    t.print();
    std::printf("  wall time; CPU: the thread's CPU time (not counting time other processes held "
                "the CPU).\n  worst share error: the largest |slots - weighted share| / weighted share over the "
                "backends owed >= 10 slots.\n\nmaglev_bench: %.1f s, %s at the end\n",
                double(lbb::now_ns() - t0) / 1e9, lbb::load_line().c_str());
    return failures ? 1 : 0;
}
