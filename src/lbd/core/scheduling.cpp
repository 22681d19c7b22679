#include "lbd/core/scheduling.h"

#include <algorithm>
#include <numeric>

namespace lbd {

std::vector<uint32_t> smooth_wrr_sequence(std::span<const uint32_t> weights, size_t max_len)
{
    std::vector<uint64_t> w(weights.begin(), weights.end());
    uint64_t g = 0;
    size_t live = 0;
    for (auto x : w) {
        g = std::gcd(g, x);
        live += x > 0;
    }
    if (g == 0 || live == 0 || max_len == 0)
        return {};
    uint64_t total = 0;
    for (auto& x : w) {
        x /= g;
        total += x;
    }
    if (total > max_len) {
        // Scale to fit, each live member keeping at least one turn.
        const uint64_t room = max_len > live ? max_len - live : 0;
        for (auto& x : w)
            if (x)
                x = std::max<uint64_t>(1, x * room / total);
        g = 0;
        for (auto x : w)
            g = std::gcd(g, x);
        total = 0;
        for (auto& x : w) {
            x /= g;
            total += x;
        }
    }
    std::vector<int64_t> current(w.size(), 0);
    std::vector<uint32_t> seq;
    seq.reserve(total);
    for (uint64_t n = 0; n < total; n++) {
        size_t best = w.size();
        for (size_t i = 0; i < w.size(); i++) {
            if (!w[i])
                continue;
            current[i] += int64_t(w[i]);
            if (best == w.size() || current[i] > current[best])
                best = i;
        }
        current[best] -= int64_t(total);
        seq.push_back(uint32_t(best));
    }
    return seq;
}

lbd_sched build_sched(Algorithm a, std::vector<SchedMember> members)
{
    lbd_sched s{};
    std::erase_if(members, [](const SchedMember& m) { return m.weight == 0; });
    if (a == Algorithm::Failover)
        std::stable_sort(members.begin(), members.end(), [](const SchedMember& x, const SchedMember& y) {
            return x.weight != y.weight ? x.weight > y.weight : x.address < y.address;
        });
    if (members.size() > LBD_SCHED_MAX_BACKENDS)
        members.resize(LBD_SCHED_MAX_BACKENDS);
    s.count = uint32_t(members.size());
    for (size_t i = 0; i < members.size(); i++) {
        s.ids[i] = members[i].id;
        s.weights[i] = members[i].weight;
    }
    if (a == Algorithm::RoundRobin) {
        for (size_t i = 0; i < members.size(); i++)
            s.seq[i] = members[i].id;
        s.seq_len = s.count;
    } else if (a == Algorithm::Weighted) {
        std::vector<uint32_t> w(s.weights, s.weights + s.count);
        const auto order = smooth_wrr_sequence(w, LBD_SCHED_SEQ_MAX);
        for (size_t i = 0; i < order.size(); i++)
            s.seq[i] = members[order[i]].id;
        s.seq_len = uint32_t(order.size());
    }
    return s;
}

}  // namespace lbd
