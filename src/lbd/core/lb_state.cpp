#include "lbd/core/lb_state.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <exception>
#include <thread>
#include <arpa/inet.h>
#include <cstring>
#include <stdexcept>

#include "common/maglev.h"
#include "lbd/core/scheduling.h"

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

static uint32_t lbd_algorithm_of(Algorithm a)
{
    switch (a) {
    case Algorithm::Maglev: return LBD_ALG_MAGLEV;
    case Algorithm::RoundRobin: return LBD_ALG_ROUND_ROBIN;
    case Algorithm::Weighted: return LBD_ALG_WEIGHTED;
    case Algorithm::LeastConn: return LBD_ALG_LEAST_CONN;
    case Algorithm::SourceHash: return LBD_ALG_SOURCE_HASH;
    case Algorithm::Failover: return LBD_ALG_FAILOVER;
    }
    return LBD_ALG_MAGLEV;
}

lbd_vip_meta VipState::meta() const
{
    lbd_vip_meta m{};
    m.vip_id = vip_id;
    m.algorithm = lbd_algorithm_of(algorithm);
    if (one_packet)
        m.flags |= LBD_VIP_F_ONE_PACKET;
    if (persistence) {
        m.flags |= LBD_VIP_F_PERSIST;
        m.persist_timeout_ms = uint32_t(std::clamp<int64_t>(persistence->timeout.count(), 1, UINT32_MAX));
        m.persist_prefix_v4 = uint8_t(std::clamp(persistence->netmask.value_or(32), 1, 32));
        m.persist_prefix_v6 = uint8_t(std::clamp(persistence->prefix_v6.value_or(128), 1, 128));
    }
    return m;
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

BackendState LbState::add_backend(const BackendConfig& b, bool health_checked)
{
    auto taken = ids_.take();
    if (!taken)
        throw std::runtime_error("no free backend id (max_backends reached)");
    BackendState s;
    s.address = b.address;
    s.port = b.port;
    s.weight = b.weight;
    s.sorry = b.sorry;
    s.up = !health_checked;  // unknown until its checks pass
    s.id = taken->first;
    s.gen = taken->second;
    w_.reset_backend_stats(s.id);
    write_backend(s, LBD_BE_F_VALID | (s.up ? 0 : LBD_BE_F_DOWN));
    return s;
}

std::vector<uint32_t> LbState::build_ring(const VipState& v) const
{
    // Sorry backends take the ring only when no other backend can.
    const bool any_regular = std::any_of(v.backends.begin(), v.backends.end(), [](const auto& b) {
        return !b.sorry && b.up && b.weight > 0;
    });
    std::vector<maglev::Backend> in;
    in.reserve(v.backends.size());
    for (const auto& b : v.backends) {
        const bool serves = b.up && b.sorry != any_regular;
        in.push_back({Endpoint{b.address, b.port}.str(), serves ? b.weight : 0, b.id});
    }
    return maglev::build_ring(in, ring_size_);
}

/// Nothing about the VIP's backends changed (set, weights, sorry, health):
/// its ring and member lists stay as written.
static bool backends_unchanged(const VipState& v, const VipConfig& cfg)
{
    if (v.backends.size() != cfg.backends.size() || v.health_checked != cfg.health.has_value())
        return false;
    for (const auto& c : cfg.backends) {
        const BackendState* b = v.find(c.address);
        if (!b || b->weight != c.weight || b->sorry != c.sorry || (!cfg.health && !b->up))
            return false;
    }
    return true;
}

namespace {

/// Worker threads for `builds` rings: one per CPU, none for a single ring
/// (a lone change builds on the calling thread).
size_t ring_threads(size_t builds)
{
    return builds > 1 ? std::max(1u, std::thread::hardware_concurrency()) : 0;
}

/// Builds rings on worker threads, in the order they were submitted; take()
/// waits for one. apply() writes VIP i on the calling thread while the
/// workers build the rings of the VIPs after it. No workers: take() builds.
class RingPipeline {
public:
    using Build = std::function<std::vector<uint32_t>(const VipState&)>;

    RingPipeline(Build build, size_t threads) : build_(std::move(build))
    {
        for (size_t t = 0; t < threads; t++)
            workers_.emplace_back([this] { run(); });
    }
    ~RingPipeline()
    {
        {
            std::lock_guard l(mu_);
            stop_ = true;
        }
        work_cv_.notify_all();
    }

    void submit(const VipState* v)
    {
        {
            std::lock_guard l(mu_);
            slots_.push_back(Slot{v, {}, nullptr, false});
        }
        work_cv_.notify_one();
    }

    /// The ring of the i-th VIP submitted (each taken once).
    std::vector<uint32_t> take(size_t i)
    {
        std::unique_lock l(mu_);
        if (workers_.empty()) {
            const VipState* v = slots_[i].v;
            l.unlock();
            return build_(*v);
        }
        done_cv_.wait(l, [&] { return slots_[i].ready; });
        if (slots_[i].error)
            std::rethrow_exception(slots_[i].error);
        return std::move(slots_[i].ring);
    }

private:
    struct Slot {
        const VipState* v;
        std::vector<uint32_t> ring;
        std::exception_ptr error;
        bool ready;
    };

    void run()
    {
        std::unique_lock l(mu_);
        while (true) {
            work_cv_.wait(l, [&] { return stop_ || next_ < slots_.size(); });
            if (stop_)
                return;
            Slot& s = slots_[next_++];
            l.unlock();
            std::vector<uint32_t> ring;
            std::exception_ptr error;
            try {
                ring = build_(*s.v);
            } catch (...) {
                error = std::current_exception();
            }
            l.lock();
            s.ring = std::move(ring);
            s.error = error;
            s.ready = true;
            done_cv_.notify_all();
        }
    }

    Build build_;
    std::mutex mu_;
    std::condition_variable work_cv_, done_cv_;
    std::deque<Slot> slots_;  // a deque: a Slot& stays valid while others are added
    size_t next_ = 0;
    bool stop_ = false;
    std::vector<std::jthread> workers_;  // last: joined before the rest goes
};

}  // namespace

void LbState::build_rings(const std::vector<VipState*>& vs,
                          const std::function<void(size_t, const std::vector<uint32_t>&)>& use) const
{
    const size_t threads = ring_threads(vs.size());
    RingPipeline rings([this](const VipState& v) { return build_ring(v); }, threads);
    const size_t window = 2 * threads + 2;  // rings built ahead of the one written
    size_t submitted = 0;
    for (size_t i = 0; i < vs.size(); i++) {
        for (; submitted < vs.size() && submitted <= i + window; submitted++)
            rings.submit(vs[submitted]);
        use(i, rings.take(i));
    }
}

void LbState::finish_one(Pending& p, const std::vector<uint32_t>& ring, std::vector<std::string>& log)
{
    VipState& v = *p.v;
    w_.put_ring(v.vip_id, ring);
    write_sched(v);
    if (p.added) {
        w_.put_vip(v.key(), v.meta());  // last: traffic arrives only once the ring is in place
        log.push_back("vip " + v.name + " added: " + Endpoint{v.address, v.port}.str() + " " +
                      to_string(v.protocol) + ", " + std::to_string(v.backends.size()) + " backends");
        return;
    }
    // Only after the ring no longer names them: pinned flows go on (graceful).
    for (const auto& b : p.removed) {
        ids_.retire(b.id);
        log.push_back("vip " + v.name + ": backend " + b.address.str() +
                      " removed (pinned flows finish)");
    }
    update_scheduling(v, *p.cfg, log);
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
    // Each new or changed VIP needs a ring (~1 ms at 65537 slots). With more
    // than one, worker threads build them while this thread writes the
    // VIPs before: a few rings ahead, so a large reload holds only a few.
    size_t builds = 0;
    for (const auto& c : vips) {
        auto it = vips_.find(c.name);
        builds += it == vips_.end() || !backends_unchanged(it->second, c);
    }
    const size_t threads = ring_threads(builds);
    RingPipeline rings([this](const VipState& v) { return build_ring(v); }, threads);
    const size_t window = 2 * threads + 2;
    std::deque<Pending> pending;
    size_t finished = 0;
    auto finish_next = [&] {
        finish_one(pending.front(), rings.take(finished++), log);
        pending.pop_front();
    };
    for (const auto& c : vips) {
        auto it = vips_.find(c.name);
        std::optional<Pending> p;
        if (it == vips_.end())
            p = add_vip(c);
        else
            p = update_vip(it->second, c, log);
        if (!p)
            continue;
        rings.submit(p->v);
        pending.push_back(std::move(*p));
        while (pending.size() > window)
            finish_next();
    }
    while (!pending.empty())
        finish_next();
    return log;
}

LbState::Pending LbState::add_vip(const VipConfig& cfg)
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
    v.persistence = cfg.persistence;
    v.one_packet = cfg.one_packet;
    v.vip_id = uint32_t(free_id - vip_id_used_.begin());
    *free_id = true;
    v.health_checked = cfg.health.has_value();
    for (const auto& b : cfg.backends)
        v.backends.push_back(add_backend(b, v.health_checked));
    std::sort(v.backends.begin(), v.backends.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });

    w_.reset_vip_stats(v.vip_id);
    // In vips_ from here (std::map: the address stays); its ring, sched and
    // VIP entry are written by finish_one().
    VipState& in = vips_.emplace(cfg.name, std::move(v)).first->second;
    return Pending{&in, &cfg, true, {}};
}

void LbState::delete_vip(const VipState& v, std::vector<std::string>& log)
{
    w_.delete_vip(v.key());  // first: no packet reaches what follows
    if (!uses_ring(v.algorithm))
        w_.delete_sched(v.vip_id);
    for (const auto& b : v.backends) {
        BackendState gone = b;
        gone.gen = ids_.release(b.id);
        write_backend(gone, 0);
    }
    vip_id_used_[v.vip_id] = false;
    log.push_back("vip " + v.name + " deleted");
}


std::optional<LbState::Pending> LbState::update_vip(VipState& v, const VipConfig& cfg,
                                                   std::vector<std::string>& log)
{
    if (backends_unchanged(v, cfg)) {  // most VIPs of a reload: no ring to build
        update_scheduling(v, cfg, log);
        return std::nullopt;
    }
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
        if (!cfg.health && !s.up) {
            s.up = true;  // health checks removed: backends count as up
            write_backend(s, LBD_BE_F_VALID);
            log.push_back("vip " + v.name + ": backend " + b.address.str() + " up (no health checks)");
        }
        s.sorry = c->sorry;
        if (s.weight != c->weight) {
            log.push_back("vip " + v.name + ": backend " + b.address.str() + " weight " +
                          std::to_string(s.weight) + " -> " + std::to_string(c->weight) +
                          (c->weight == 0 ? " (draining)" : ""));
            s.weight = c->weight;
        }
        next.push_back(s);
    }
    v.health_checked = cfg.health.has_value();
    for (const auto& c : cfg.backends) {
        if (!v.find(c.address)) {
            next.push_back(add_backend(c, v.health_checked));
            log.push_back("vip " + v.name + ": backend " + c.address.str() + " added");
        }
    }
    std::sort(next.begin(), next.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });
    v.backends = std::move(next);
    return Pending{&v, &cfg, false, std::move(removed)};
}

void LbState::update_scheduling(VipState& v, const VipConfig& cfg, std::vector<std::string>& log)
{
    const lbd_vip_meta before = v.meta();
    const Algorithm old = v.algorithm;
    v.algorithm = cfg.algorithm;
    v.persistence = cfg.persistence;
    v.one_packet = cfg.one_packet;
    const lbd_vip_meta after = v.meta();
    if (std::memcmp(&before, &after, sizeof before) == 0)
        return;
    write_sched(v);               // the new algorithm's members before it reads them
    w_.put_vip(v.key(), v.meta());
    if (!uses_ring(old) && uses_ring(v.algorithm))
        w_.delete_sched(v.vip_id);  // after: nothing reads it any more
    std::string what = "vip " + v.name + ": algorithm " + to_string(v.algorithm);
    if (v.persistence)
        what += ", persistence " + std::to_string(v.persistence->timeout.count()) + "ms";
    if (v.one_packet)
        what += ", one-packet";
    log.push_back(what);
}

std::vector<uint32_t> LbState::least_conn_backend_ids() const
{
    std::vector<uint32_t> ids;
    for (const auto& [name, v] : vips_)
        if (v.algorithm == Algorithm::LeastConn)
            for (const auto& b : v.backends)
                ids.push_back(b.id);
    return ids;
}

void LbState::write_sched(const VipState& v)
{
    if (v.persistence)
        for (const auto& b : v.backends)
            w_.put_backend_weight(b.id, b.weight);
    if (uses_ring(v.algorithm))
        return;
    // The same backends as the ring would take (build_ring): up, weight > 0,
    // and sorry backends only when no regular one can serve.
    const bool any_regular = std::any_of(v.backends.begin(), v.backends.end(), [](const auto& b) {
        return !b.sorry && b.up && b.weight > 0;
    });
    std::vector<SchedMember> members;
    for (const auto& b : v.backends)
        if (b.up && b.weight > 0 && b.sorry != any_regular)
            members.push_back({b.id, b.weight, b.address});
    w_.put_sched(v.vip_id, build_sched(v.algorithm, std::move(members)));
}

bool LbState::set_health(const std::string& vip, const IpAddr& address, bool up)
{
    auto it = vips_.find(vip);
    if (it == vips_.end())
        return false;
    VipState& v = it->second;
    auto b = std::find_if(v.backends.begin(), v.backends.end(),
                          [&](const BackendState& x) { return x.address == address; });
    if (b == v.backends.end() || b->up == up)
        return false;
    b->up = up;
    if (up) {
        write_backend(*b, LBD_BE_F_VALID);  // first, so the ring never names a down backend
        w_.put_ring(v.vip_id, build_ring(v));
        write_sched(v);
    } else {
        w_.put_ring(v.vip_id, build_ring(v));  // no new flows...
        write_sched(v);
        write_backend(*b, LBD_BE_F_VALID | LBD_BE_F_DOWN);   // ...then re-schedule pinned ones
    }
    return true;
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
    BackendState gone = *b;
    v.backends.erase(b);
    w_.put_ring(v.vip_id, build_ring(v));
    write_sched(v);
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
    std::vector<VipState*> adopted;

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
        // Scheduling as the pinned program does it now; apply() then makes
        // it what the config says.
        const lbd_vip_meta pinned = it->second;
        for (Algorithm a : {Algorithm::Maglev, Algorithm::RoundRobin, Algorithm::Weighted, Algorithm::LeastConn,
                            Algorithm::SourceHash, Algorithm::Failover})
            if (lbd_algorithm_of(a) == pinned.algorithm)
                v.algorithm = a;
        v.one_packet = pinned.flags & LBD_VIP_F_ONE_PACKET;
        v.persistence.reset();
        if (pinned.flags & LBD_VIP_F_PERSIST) {
            Persistence p;
            p.timeout = std::chrono::milliseconds(pinned.persist_timeout_ms);
            if (pinned.persist_prefix_v4 != 32)
                p.netmask = pinned.persist_prefix_v4;
            if (pinned.persist_prefix_v6 != 128)
                p.prefix_v6 = pinned.persist_prefix_v6;
            v.persistence = p;
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
        adopted.push_back(&vips_.emplace(v.name, std::move(v)).first->second);
    }
    // The whole rings again: identical values change nothing for flows, and
    // a ring an earlier lbd left half-written is healed.
    build_rings(adopted, [&](size_t i, const std::vector<uint32_t>& ring) {
        w_.put_ring(adopted[i]->vip_id, ring);
        write_sched(*adopted[i]);
    });
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
