#include "lbd/core/health_targets.h"

#include <stdexcept>

namespace lbd {

ProbeMarks::Change ProbeMarks::assign(const std::set<IpAddr>& backends)
{
    const uint32_t capacity = range_.capacity();
    if (backends.size() > capacity)
        throw std::length_error(std::to_string(backends.size()) + " backends probed via tunnel, but " +
                                range_.str() + " holds " + std::to_string(capacity) + " marks");
    Change change;
    for (auto it = marks_.begin(); it != marks_.end();) {
        if (backends.contains(it->first)) {
            ++it;
            continue;
        }
        change.remove.push_back(it->second);
        used_.erase(it->second);
        it = marks_.erase(it);
    }
    for (const auto& b : backends) {
        if (marks_.contains(b))
            continue;
        // There is a free index: fewer backends than marks.
        uint32_t i = last_;
        do
            i = i >= capacity ? 1 : i + 1;
        while (used_.contains(range_.mark(i)));
        last_ = i;
        const uint32_t mark = range_.mark(i);
        used_.insert(mark);
        marks_.emplace(b, mark);
        change.put.emplace_back(mark, b);
    }
    return change;
}

std::optional<uint32_t> ProbeMarks::mark_of(const IpAddr& backend) const
{
    auto it = marks_.find(backend);
    if (it == marks_.end())
        return std::nullopt;
    return it->second;
}

std::set<IpAddr> tunnel_backends(const std::vector<VipConfig>& vips)
{
    std::set<IpAddr> out;
    for (const auto& v : vips)
        if (v.health && v.health->via == health::Via::Tunnel)
            for (const auto& b : v.backends)
                out.insert(b.address);
    return out;
}

std::vector<health::Target> health_targets(const std::vector<VipConfig>& vips, const ProbeMarks& marks)
{
    std::vector<health::Target> targets;
    for (const auto& v : vips) {
        if (!v.health)
            continue;
        for (const auto& b : v.backends) {
            health::Target t;
            t.vip = v.name;
            t.address = b.address;
            t.port = b.health_port.value_or(b.port);
            t.config = *v.health;
            if (v.health->via == health::Via::Tunnel) {
                t.tunnel_to = v.address;
                t.mark = marks.mark_of(b.address);
            }
            targets.push_back(std::move(t));
        }
    }
    return targets;
}

}  // namespace lbd
