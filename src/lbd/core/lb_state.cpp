#include "lbd/core/lb_state.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <stdexcept>

#include "common/maglev.h"

namespace lbd {

lbd_addr to_lbd_addr(const IpAddr& a)
{
    lbd_addr out{};
    std::memcpy(out.w, a.bytes.data(), a.size());
    return out;
}

static uint8_t lbd_family(const IpAddr& a) { return a.is_v4() ? LBD_AF_INET : LBD_AF_INET6; }

lbd_vip_key VipState::key() const
{
    lbd_vip_key k{};
    k.addr = to_lbd_addr(address);
    k.port = htons(port);
    k.proto = static_cast<uint8_t>(protocol);
    k.family = lbd_family(address);
    return k;
}

const BackendState* VipState::find(const IpAddr& a) const
{
    for (const auto& b : backends)
        if (b.address == a)
            return &b;
    return nullptr;
}

std::optional<std::pair<uint32_t, uint32_t>> BackendIds::take()
{
    uint32_t id;
    if (next_fresh_ < capacity_) {
        id = next_fresh_++;
    } else if (!free_.empty()) {
        id = free_.front();
        free_.pop_front();
    } else if (!retired_.empty()) {
        id = retired_.front();
        retired_.pop_front();
    } else {
        return std::nullopt;
    }
    return std::pair{id, ++gen_[id]};
}

uint32_t BackendIds::release(uint32_t id)
{
    retired_.erase(std::remove(retired_.begin(), retired_.end(), id), retired_.end());
    free_.push_back(id);
    return ++gen_[id];
}

void BackendIds::adopt(const std::map<uint32_t, lbd_backend>& entries,
                       const std::set<uint32_t>& referenced)
{
    free_.clear();
    retired_.clear();
    next_fresh_ = 1;
    for (const auto& [id, be] : entries) {
        if (id == 0 || id >= capacity_)
            continue;
        gen_[id] = std::max(gen_[id], be.gen);
        next_fresh_ = std::max(next_fresh_, id + 1);
    }
    for (uint32_t id = 1; id < next_fresh_; id++) {
        if (referenced.count(id))
            continue;
        auto e = entries.find(id);
        if (e != entries.end() && (e->second.flags & LBD_BE_F_VALID))
            retired_.push_back(id);
        else
            free_.push_back(id);
    }
}

LbState::LbState(MapWriter& writer, uint32_t ring_size, uint32_t max_vips, uint32_t max_backends)
    : w_(writer), ring_size_(ring_size), max_vips_(max_vips), ids_(max_backends),
      vip_id_used_(max_vips, false)
{
}

void LbState::write_backend(const BackendState& b, uint8_t flags)
{
    lbd_backend be{};
    be.addr = to_lbd_addr(b.address);
    be.family = lbd_family(b.address);
    be.gen = b.gen;
    be.flags = flags;
    w_.put_backend(b.id, be);
}

BackendState LbState::add_backend(const BackendConfig& b)
{
    auto taken = ids_.take();
    if (!taken)
        throw std::runtime_error("no free backend id (max_backends reached)");
    BackendState s;
    s.address = b.address;
    s.port = b.port;
    s.weight = b.weight;
    s.id = taken->first;
    s.gen = taken->second;
    w_.reset_backend_stats(s.id);
    write_backend(s, LBD_BE_F_VALID | (s.up ? 0 : LBD_BE_F_DOWN));
    return s;
}

std::vector<uint32_t> LbState::build_ring(const VipState& v) const
{
    std::vector<maglev::Backend> in;
    in.reserve(v.backends.size());
    for (const auto& b : v.backends)
        in.push_back({Endpoint{b.address, b.port}.str(), b.ring_weight(), b.id});
    return maglev::build_ring(in, ring_size_);
}

void LbState::write_ring_diff(uint32_t vip_id, const std::vector<uint32_t>* old_ring,
                              const std::vector<uint32_t>& new_ring)
{
    std::vector<uint32_t> slots, ids;
    for (uint32_t i = 0; i < new_ring.size(); i++) {
        if (old_ring && (*old_ring)[i] == new_ring[i])
            continue;
        slots.push_back(i);
        ids.push_back(new_ring[i]);
    }
    if (!slots.empty())
        w_.put_ring_slots(vip_id, slots, ids);
}

static bool same_vip_key(const VipState& v, const VipConfig& c)
{
    return v.address == c.address && v.port == c.port && v.protocol == c.protocol;
}

std::vector<std::string> LbState::apply(const std::vector<VipConfig>& vips)
{
    std::vector<std::string> log;
    std::map<std::string, const VipConfig*> want;
    for (const auto& c : vips)
        want[c.name] = &c;

    // Deletions first, so their ids and VIP keys are free for what follows.
    for (auto it = vips_.begin(); it != vips_.end();) {
        auto w = want.find(it->first);
        if (w == want.end() || !same_vip_key(it->second, *w->second)) {
            delete_vip(it->second, log);
            it = vips_.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& c : vips) {
        auto it = vips_.find(c.name);
        if (it == vips_.end())
            add_vip(c, log);
        else
            update_vip(it->second, c, log);
    }
    return log;
}

void LbState::add_vip(const VipConfig& cfg, std::vector<std::string>& log)
{
    auto free_id = std::find(vip_id_used_.begin(), vip_id_used_.end(), false);
    if (free_id == vip_id_used_.end())
        throw std::runtime_error("no free VIP id (max_vips reached)");
    VipState v;
    v.name = cfg.name;
    v.address = cfg.address;
    v.port = cfg.port;
    v.protocol = cfg.protocol;
    v.algorithm = cfg.algorithm;
    v.vip_id = uint32_t(free_id - vip_id_used_.begin());
    *free_id = true;
    for (const auto& b : cfg.backends)
        v.backends.push_back(add_backend(b));
    std::sort(v.backends.begin(), v.backends.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });

    w_.reset_vip_stats(v.vip_id);
    write_ring_diff(v.vip_id, nullptr, build_ring(v));
    lbd_vip_meta meta{};
    meta.vip_id = v.vip_id;
    meta.algorithm = LBD_ALG_MAGLEV;
    w_.put_vip(v.key(), meta);  // last: traffic arrives only once the ring is in place
    log.push_back("vip " + v.name + " added: " + Endpoint{v.address, v.port}.str() + " " +
                  to_string(v.protocol) + ", " + std::to_string(v.backends.size()) + " backends");
    vips_.emplace(v.name, std::move(v));
}

void LbState::delete_vip(const VipState& v, std::vector<std::string>& log)
{
    w_.delete_vip(v.key());  // first: no packet reaches what follows
    for (const auto& b : v.backends) {
        BackendState gone = b;
        gone.gen = ids_.release(b.id);
        write_backend(gone, 0);
    }
    vip_id_used_[v.vip_id] = false;
    log.push_back("vip " + v.name + " deleted");
}

void LbState::update_vip(VipState& v, const VipConfig& cfg, std::vector<std::string>& log)
{
    const auto old_ring = build_ring(v);
    std::vector<BackendState> next;
    std::vector<BackendState> removed;

    for (const auto& b : v.backends) {
        auto c = std::find_if(cfg.backends.begin(), cfg.backends.end(),
                              [&](const BackendConfig& x) { return x.address == b.address; });
        if (c == cfg.backends.end()) {
            removed.push_back(b);
            continue;
        }
        BackendState s = b;
        if (s.weight != c->weight) {
            log.push_back("vip " + v.name + ": backend " + b.address.str() + " weight " +
                          std::to_string(s.weight) + " -> " + std::to_string(c->weight) +
                          (c->weight == 0 ? " (draining)" : ""));
            s.weight = c->weight;
        }
        next.push_back(s);
    }
    for (const auto& c : cfg.backends) {
        if (!v.find(c.address)) {
            next.push_back(add_backend(c));
            log.push_back("vip " + v.name + ": backend " + c.address.str() + " added");
        }
    }
    std::sort(next.begin(), next.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });
    v.backends = std::move(next);

    write_ring_diff(v.vip_id, &old_ring, build_ring(v));
    // Only after the ring no longer names them: pinned flows go on (graceful).
    for (const auto& b : removed) {
        ids_.retire(b.id);
        log.push_back("vip " + v.name + ": backend " + b.address.str() +
                      " removed (pinned flows finish)");
    }
    if (v.algorithm != cfg.algorithm) {
        v.algorithm = cfg.algorithm;
        lbd_vip_meta meta{};
        meta.vip_id = v.vip_id;
        meta.algorithm = LBD_ALG_MAGLEV;
        w_.put_vip(v.key(), meta);
        log.push_back("vip " + v.name + ": algorithm " + to_string(v.algorithm));
    }
}

bool LbState::remove_backend(const std::string& vip, const IpAddr& address, bool force)
{
    auto it = vips_.find(vip);
    if (it == vips_.end())
        return false;
    VipState& v = it->second;
    auto b = std::find_if(v.backends.begin(), v.backends.end(),
                          [&](const BackendState& x) { return x.address == address; });
    if (b == v.backends.end())
        return false;
    const auto old_ring = build_ring(v);
    BackendState gone = *b;
    v.backends.erase(b);
    write_ring_diff(v.vip_id, &old_ring, build_ring(v));
    if (force) {
        gone.gen = ids_.release(gone.id);
        write_backend(gone, 0);
    } else {
        ids_.retire(gone.id);
    }
    return true;
}

std::vector<std::string> LbState::adopt(std::vector<VipState> saved)
{
    std::vector<std::string> log;
    const auto entries = w_.read_backends();
    std::vector<std::pair<lbd_vip_key, lbd_vip_meta>> in_map = w_.read_vips();
    std::set<uint32_t> referenced;

    for (auto& v : saved) {
        const auto key = v.key();
        auto it = std::find_if(in_map.begin(), in_map.end(), [&](const auto& kv) {
            return std::memcmp(&kv.first, &key, sizeof key) == 0;
        });
        if (it == in_map.end() || it->second.vip_id != v.vip_id || v.vip_id >= max_vips_ ||
            vip_id_used_[v.vip_id] || vips_.count(v.name)) {
            log.push_back("vip " + v.name + ": pinned maps do not match the saved state; re-creating it");
            continue;
        }
        in_map.erase(it);
        std::vector<BackendState> kept;
        for (auto b : v.backends) {
            auto e = entries.find(b.id);
            const lbd_addr addr = to_lbd_addr(b.address);
            if (e == entries.end() || !(e->second.flags & LBD_BE_F_VALID) || e->second.gen != b.gen ||
                std::memcmp(&e->second.addr, &addr, sizeof addr) != 0 || referenced.count(b.id))
                continue;  // apply() adds it again if it is still configured
            b.up = !(e->second.flags & LBD_BE_F_DOWN);
            referenced.insert(b.id);
            kept.push_back(b);
        }
        log.push_back("vip " + v.name + ": adopted with " + std::to_string(kept.size()) + " of " +
                      std::to_string(v.backends.size()) + " backends and its connection table");
        v.backends = std::move(kept);
        vip_id_used_[v.vip_id] = true;
        // The whole ring again: identical values change nothing for flows,
        // and a ring an earlier lbd left half-written is healed.
        write_ring_diff(v.vip_id, nullptr, build_ring(v));
        vips_.emplace(v.name, std::move(v));
    }
    for (const auto& [key, meta] : in_map) {
        w_.delete_vip(key);
        log.push_back("removed a pinned VIP entry (id " + std::to_string(meta.vip_id) +
                      ") that no saved state explains");
    }
    ids_.adopt(entries, referenced);
    return log;
}

void LbState::set_encap_sources(const std::optional<Prefix>& v4, const std::optional<Prefix>& v6)
{
    lbd_config cfg{};
    auto hostmask = [](const Prefix& p) {
        lbd_addr m{};
        uint8_t* bytes = reinterpret_cast<uint8_t*>(m.w);
        const int bits = p.addr.is_v4() ? 32 : 128;
        for (int i = p.len; i < bits; i++)
            bytes[i / 8] |= uint8_t(0x80 >> (i % 8));
        return m;
    };
    if (v4) {
        cfg.flags |= LBD_CFG_F_HAVE_SRC_V4;
        cfg.src_v4_base = to_lbd_addr(v4->addr);
        cfg.src_v4_hostmask = hostmask(*v4);
    }
    if (v6) {
        cfg.flags |= LBD_CFG_F_HAVE_SRC_V6;
        cfg.src_v6_base = to_lbd_addr(v6->addr);
        cfg.src_v6_hostmask = hostmask(*v6);
    }
    w_.put_config(cfg);
}

}  // namespace lbd
