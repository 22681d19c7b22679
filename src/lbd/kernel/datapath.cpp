#include "lbd/kernel/datapath.h"
#include "lbd/core/conntrack_table.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <dirent.h>
#include <cstring>
#include <fstream>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "xdp_lb.skel.h"

namespace lbd {

namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;

std::runtime_error sys_error(const std::string& what, int err)
{
    return std::runtime_error(what + ": " + std::strerror(err < 0 ? -err : err));
}

void check(int rc, const std::string& what)
{
    if (rc < 0)
        throw sys_error(what, errno ? errno : -rc);
}

std::string read_sysctl(const std::string& path)
{
    std::ifstream f(path);
    std::string v;
    f >> v;
    return v;
}

}  // namespace

void ensure_bpffs()
{
    struct statfs st {};
    if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == kBpfFsMagic)
        return;
    mkdir("/sys/fs/bpf", 0700);
    if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0)
        throw sys_error("mounting bpffs on /sys/fs/bpf", errno);
    spdlog::info("mounted bpffs on /sys/fs/bpf (it was not mounted; in a private mount namespace "
                 "such as `ip netns exec` makes, pins would not outlive lbd)");
}

std::vector<std::string> enable_forwarding(const std::string& iface)
{
    std::vector<std::string> changed;
    for (const char* fam : {"ipv4", "ipv6"}) {
        const std::string path = std::string("/proc/sys/net/") + fam + "/conf/" + iface + "/forwarding";
        const std::string cur = read_sysctl(path);
        if (cur.empty() || cur == "1")
            continue;  // no such knob (IPv6 disabled) or already on
        std::ofstream f(path);
        f << "1\n";
        f.close();
        if (!f)
            throw std::runtime_error("cannot enable " + path);
        changed.push_back(std::string("enabled net.") + fam + ".conf." + iface +
                          ".forwarding (needed to route to backends)");
    }
    return changed;
}

std::string driver_name(const std::string& iface)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return {};
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
    ifr.ifr_data = reinterpret_cast<char*>(&info);
    const int rc = ioctl(fd, SIOCETHTOOL, &ifr);
    close(fd);
    return rc == 0 ? std::string(info.driver) : std::string();
}

// -------------------------------------------------------------- LcCounters

MapMapping::MapMapping(int map_fd, size_t bytes, const char* what)
{
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    len_ = (bytes + page - 1) / page * page;
    base_ = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
    if (base_ == MAP_FAILED) {
        base_ = nullptr;
        throw sys_error(std::string("mapping ") + what, errno);
    }
}

MapMapping::~MapMapping()
{
    if (base_)
        munmap(base_, len_);
}

LcCounters::LcCounters(int map_fd, uint32_t value_size)
    : map_(map_fd, value_size, "the least-conn counters (lc_active)"), count_(value_size / sizeof(int32_t))
{
}

int32_t* LcCounters::slot(uint32_t id) const
{
    const uint32_t k = LBD_LC_INDEX(id);
    return k < count_ ? static_cast<int32_t*>(map_.data()) + k : nullptr;
}

int32_t LcCounters::get(uint32_t id) const
{
    int32_t* p = slot(id);
    return p ? std::atomic_ref<int32_t>(*p).load(std::memory_order_relaxed) : 0;
}

void LcCounters::set(uint32_t id, int32_t n)
{
    if (int32_t* p = slot(id))
        std::atomic_ref<int32_t>(*p).store(n, std::memory_order_relaxed);
}

// ------------------------------------------------------------ BpfMapWriter

BpfMapWriter::BpfMapWriter(xdp_lb* skel, uint32_t ring_size)
    : skel_(skel), ring_size_(ring_size), ncpus_(libbpf_num_possible_cpus()),
      lc_(bpf_map__fd(skel->maps.lc_active), bpf_map__value_size(skel->maps.lc_active))
{
    // vip_filter, vip_index and vip_by_id are this program's own (not
    // pinned): they start empty and must cover every VIP already in the
    // (possibly adopted) vips map before the program sees a packet.
    for (const auto& [key, meta] : read_vips()) {
        put_vip_entry(key, meta);
        write_index(index_.add(key, meta.vip_id));
    }
    write_index({true, {}});
}

void BpfMapWriter::put_vip_entry(const lbd_vip_key& key, const lbd_vip_meta& meta)
{
    const lbd_vip_entry e{key, meta};
    check(bpf_map__update_elem(skel_->maps.vip_by_id, &meta.vip_id, sizeof meta.vip_id, &e, sizeof e, BPF_ANY),
          "writing the vip_by_id map");
}

void BpfMapWriter::write_index(const VipIndex::Change& c)
{
    for (uint32_t b : c.buckets) {
        const uint32_t v = index_.slot(b);
        check(bpf_map__update_elem(skel_->maps.vip_index, &b, sizeof b, &v, sizeof v, BPF_ANY),
              "writing the vip_index map");
    }
    if (c.bitmap) {
        const uint32_t zero = 0;
        check(bpf_map__update_elem(skel_->maps.vip_filter, &zero, sizeof zero, &index_.bits(),
                                   sizeof(lbd_vip_filter), BPF_ANY),
              "writing the vip_filter map");
    }
}

void BpfMapWriter::put_vip(const lbd_vip_key& key, const lbd_vip_meta& meta)
{
    // What the index will point at first, then the hash (a bucket of several
    // VIPs sends the program there), then the index and the bitmap: a new
    // VIP's first packet finds all of it.
    put_vip_entry(key, meta);
    check(bpf_map__update_elem(skel_->maps.vips, &key, sizeof key, &meta, sizeof meta, BPF_ANY),
          "writing the vips map");
    write_index(index_.add(key, meta.vip_id));
}

void BpfMapWriter::delete_vip(const lbd_vip_key& key)
{
    // The reverse: the index and bitmap stop leading to it, then the hash
    // entry and the entry by id go.
    const auto id = index_.id_of(key);
    write_index(index_.remove(key));
    int rc = bpf_map__delete_elem(skel_->maps.vips, &key, sizeof key, 0);
    if (rc < 0 && errno != ENOENT)
        check(rc, "deleting from the vips map");
    if (id) {
        const lbd_vip_entry none{};
        check(bpf_map__update_elem(skel_->maps.vip_by_id, &*id, sizeof *id, &none, sizeof none, BPF_ANY),
              "clearing the vip_by_id map");
    }
}

void BpfMapWriter::put_backend(uint32_t id, const lbd_backend& be)
{
    check(bpf_map__update_elem(skel_->maps.backends, &id, sizeof id, &be, sizeof be, BPF_ANY),
          "writing the backends map");
}

void BpfMapWriter::zero_percpu(int fd, uint32_t idx, size_t value_size)
{
    std::vector<uint8_t> zero(size_t(ncpus_) * ((value_size + 7) & ~size_t(7)), 0);
    check(bpf_map_update_elem(fd, &idx, zero.data(), BPF_ANY), "zeroing statistics");
}

void BpfMapWriter::reset_backend_stats(uint32_t id)
{
    zero_percpu(bpf_map__fd(skel_->maps.backend_stats), id, sizeof(lbd_stats));
    lc_.set(id, 0);
}

void BpfMapWriter::reset_vip_stats(uint32_t vip_id)
{
    zero_percpu(bpf_map__fd(skel_->maps.vip_stats), vip_id, sizeof(lbd_stats));
    // Round-robin cursors start staggered, CPU k at position k, so that CPUs
    // that each see a few new flows do not all send them to the first member.
    std::vector<uint64_t> cursors(static_cast<size_t>(ncpus_));  // per-CPU values are 8-byte slots
    for (int cpu = 0; cpu < ncpus_; cpu++)
        cursors[size_t(cpu)] = uint32_t(cpu);
    check(bpf_map_update_elem(bpf_map__fd(skel_->maps.sched_cursor), &vip_id, cursors.data(), BPF_ANY),
          "starting the round-robin cursors");
}

void BpfMapWriter::put_sched(uint32_t vip_id, const lbd_sched& s)
{
    check(bpf_map__update_elem(skel_->maps.sched, &vip_id, sizeof vip_id, &s, sizeof s, BPF_ANY),
          "writing the sched map");
}

void BpfMapWriter::delete_sched(uint32_t vip_id)
{
    static const lbd_sched empty{};  // an array: no entry to delete
    check(bpf_map__update_elem(skel_->maps.sched, &vip_id, sizeof vip_id, &empty, sizeof empty, BPF_ANY),
          "clearing the sched map entry");
}

void BpfMapWriter::put_backend_weight(uint32_t id, uint32_t weight)
{
    check(bpf_map__update_elem(skel_->maps.backend_weight, &id, sizeof id, &weight, sizeof weight, BPF_ANY),
          "writing the backend_weight map");
}

void BpfMapWriter::put_ring(uint32_t vip_id, std::span<const uint32_t> ring)
{
    if (ring.size() != ring_size_)
        throw std::logic_error("ring of " + std::to_string(ring.size()) + " slots for a map of " +
                               std::to_string(ring_size_));
    // One value per VIP (bpf/maps.h): the whole ring is one copy into the map.
    check(bpf_map__update_elem(skel_->maps.ring, &vip_id, sizeof vip_id, ring.data(),
                               ring.size_bytes(), BPF_ANY),
          "writing the ring map");
}

void BpfMapWriter::put_config(const lbd_config& cfg)
{
    uint32_t zero = 0;
    check(bpf_map__update_elem(skel_->maps.config, &zero, sizeof zero, &cfg, sizeof cfg, BPF_ANY),
          "writing the config map");
}

std::map<uint32_t, lbd_backend> BpfMapWriter::read_backends() const
{
    std::map<uint32_t, lbd_backend> out;
    const int fd = bpf_map__fd(skel_->maps.backends);
    const uint32_t n = bpf_map__max_entries(skel_->maps.backends);
    static const lbd_backend zero{};
    for (uint32_t id = 0; id < n; id++) {
        lbd_backend be{};
        if (bpf_map_lookup_elem(fd, &id, &be) == 0 && std::memcmp(&be, &zero, sizeof be) != 0)
            out.emplace(id, be);
    }
    return out;
}

std::vector<std::pair<lbd_vip_key, lbd_vip_meta>> BpfMapWriter::read_vips() const
{
    std::vector<std::pair<lbd_vip_key, lbd_vip_meta>> out;
    const int fd = bpf_map__fd(skel_->maps.vips);
    lbd_vip_key key{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        key = next;
        prev = &key;
        lbd_vip_meta meta{};
        if (bpf_map_lookup_elem(fd, &key, &meta) == 0)
            out.emplace_back(key, meta);
    }
    return out;
}

// ---------------------------------------------------------------- Datapath

namespace {

/// The maps that outlive lbd (pinned); the ring buffer and its rate limiter
/// belong to one program load.
std::vector<bpf_map*> pinned_maps(xdp_lb* skel)
{
    auto& m = skel->maps;
    return {m.vips, m.ring, m.backends, m.conntrack, m.config, m.meta,
            m.vip_stats, m.backend_stats, m.counters,
            m.sched, m.sched_cursor, m.lc_active, m.backend_weight, m.persist};
}

bool path_exists(const std::string& p)
{
    struct stat st {};
    return stat(p.c_str(), &st) == 0;
}

/// Where libbpf looks for the kernel's config (for __kconfig externs).
bool kernel_config_readable()
{
    struct utsname u {};
    if (uname(&u) == 0 && access((std::string("/boot/config-") + u.release).c_str(), R_OK) == 0)
        return true;
    return access("/proc/config.gz", R_OK) == 0;
}

lbd_meta wanted_meta(const DatapathConfig& cfg)
{
    lbd_meta m{};
    m.abi_version = LBD_ABI_VERSION;
    m.ring_size = cfg.maglev_ring_size;
    m.hash_seed = cfg.hash_seed;
    m.max_vips = cfg.max_vips;
    m.max_backends = cfg.max_backends;
    m.conntrack_size = cfg.conntrack_size;
    return m;
}

}  // namespace

void Datapath::check_pinned_meta() const
{
    const std::string path = cfg_.pin_path + "/meta";
    const std::string fix = "; the datapath pinned under " + cfg_.pin_path +
                            " was made for other settings. Run `lbd --detach --config FILE` to "
                            "remove it (this drops the connection table), then start lbd again";
    const int fd = bpf_obj_get(path.c_str());
    if (fd < 0)
        throw std::runtime_error("pinned maps under " + cfg_.pin_path + " have no readable meta map (" +
                                 std::strerror(errno) + ")" + fix);
    lbd_meta have{};
    uint32_t zero = 0;
    const int rc = bpf_map_lookup_elem(fd, &zero, &have);
    close(fd);
    if (rc < 0)
        throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno) + fix);
    const lbd_meta want = wanted_meta(cfg_);
    std::string diff;
    auto cmp = [&](const char* what, uint32_t h, uint32_t w) {
        if (h != w)
            diff += std::string(diff.empty() ? "" : ", ") + what + " " + std::to_string(h) +
                    " (config: " + std::to_string(w) + ")";
    };
    cmp("ABI version", have.abi_version, want.abi_version);
    cmp("maglev_ring_size", have.ring_size, want.ring_size);
    cmp("hash_seed", have.hash_seed, want.hash_seed);
    cmp("max_vips", have.max_vips, want.max_vips);
    cmp("max_backends", have.max_backends, want.max_backends);
    cmp("conntrack_size", have.conntrack_size, want.conntrack_size);
    if (!diff.empty())
        throw std::runtime_error("pinned maps have " + diff + fix);
}

Datapath::Datapath(const DatapathConfig& cfg, Pinning pinning) : cfg_(cfg), pinning_(pinning)
{
    libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
    if (pinning_ == Pinning::Pin && path_exists(cfg_.pin_path + "/meta")) {
        check_pinned_meta();
        adopted_ = true;
    }
    // The program reads CONFIG_HZ (bpf/clock.h). libbpf takes it from the
    // kernel's config file and fails the load when there is none; then say
    // CONFIG_HZ=0 ourselves: the program uses the coarse clock instead of
    // jiffies.
    LIBBPF_OPTS(bpf_object_open_opts, open_opts);
    if (!kernel_config_readable())
        open_opts.kconfig = "CONFIG_HZ=0\n";
    skel_ = xdp_lb__open_opts(&open_opts);
    if (!skel_)
        throw sys_error("opening the XDP program", errno);
    ncpus_ = libbpf_num_possible_cpus();

    skel_->rodata->ring_size = cfg.maglev_ring_size;
    skel_->rodata->hash_seed = cfg.hash_seed;
    bpf_map__set_max_entries(skel_->maps.vips, cfg.max_vips);
    bpf_map__set_max_entries(skel_->maps.vip_by_id, cfg.max_vips);
    bpf_map__set_max_entries(skel_->maps.vip_stats, cfg.max_vips);
    bpf_map__set_max_entries(skel_->maps.ring, cfg.max_vips);
    bpf_map__set_value_size(skel_->maps.ring, cfg.maglev_ring_size * uint32_t(sizeof(uint32_t)));
    // Backend id 0 is never given out (lb_state.h), so a zeroed ring slot
    // names no valid backend.
    bpf_map__set_max_entries(skel_->maps.backends, cfg.max_backends + 1);
    bpf_map__set_max_entries(skel_->maps.backend_stats, cfg.max_backends + 1);
    bpf_map__set_max_entries(skel_->maps.nexthops, cfg.max_backends + 1);
    const uint32_t ct_buckets = ct_buckets_for(cfg.conntrack_size);
    bpf_map__set_max_entries(skel_->maps.conntrack, ct_buckets);
    skel_->rodata->ct_buckets = ct_buckets;
    bpf_map__set_max_entries(skel_->maps.sched, cfg.max_vips);
    bpf_map__set_max_entries(skel_->maps.sched_cursor, cfg.max_vips);
    // One __s32 per backend id (LBD_LC_INDEX: id 1 is the first), rounded
    // up to a power of two for the program's mask: at most 4 MiB, the
    // kernel's limit for one value, with max_backends at its limit of 2^20.
    uint32_t lc_counters = 1;
    while (lc_counters < cfg.max_backends)
        lc_counters <<= 1;
    bpf_map__set_value_size(skel_->maps.lc_active, uint32_t(sizeof(int32_t)) * lc_counters);
    skel_->rodata->lc_mask = lc_counters - 1;
    bpf_map__set_max_entries(skel_->maps.backend_weight, cfg.max_backends + 1);
    // Persistence remembers clients (prefixes), fewer than flows.
    bpf_map__set_max_entries(skel_->maps.persist, std::max<uint32_t>(1024, cfg.conntrack_size / 4));

    if (pinning_ == Pinning::Pin) {
        if (mkdir(cfg_.pin_path.c_str(), 0700) != 0 && errno != EEXIST) {
            const int err = errno;
            xdp_lb__destroy(skel_);
            throw sys_error("creating " + cfg_.pin_path, err);
        }
        for (bpf_map* m : pinned_maps(skel_))
            bpf_map__set_pin_path(m, (cfg_.pin_path + "/" + bpf_map__name(m)).c_str());
    }
    if (int rc = xdp_lb__load(skel_); rc < 0) {
        const int err = errno ? errno : -rc;
        xdp_lb__destroy(skel_);
        skel_ = nullptr;
        throw sys_error(adopted_ ? "loading the XDP program with the pinned maps under " +
                                       cfg_.pin_path + " (see libbpf messages above)"
                                 : "loading the XDP program (see libbpf messages above)",
                        err);
    }
    ct_buckets_ = bpf_map__max_entries(skel_->maps.conntrack);
    ct_map_.emplace(bpf_map__fd(skel_->maps.conntrack), size_t(ct_buckets_) * sizeof(lbd_ct_bucket),
                    "the connection table (conntrack)");
    writer_ = std::make_unique<BpfMapWriter>(skel_, cfg.maglev_ring_size);
    if (!adopted_) {
        const lbd_meta m = wanted_meta(cfg_);
        uint32_t zero = 0;
        check(bpf_map__update_elem(skel_->maps.meta, &zero, sizeof zero, &m, sizeof m, BPF_ANY),
              "writing the meta map");
    }
}

Datapath::~Datapath()
{
    for (auto& a : attached_)
        if (a.link_fd >= 0)
            close(a.link_fd);  // a pinned link stays attached
    if (skel_)
        xdp_lb__destroy(skel_);
}

int Datapath::prog_fd() const { return bpf_program__fd(skel_->progs.xdp_lb); }
int Datapath::neigh_events_fd() const { return bpf_map__fd(skel_->maps.neigh_events); }

std::string Datapath::clock() const
{
    const unsigned hz = skel_->kconfig ? skel_->kconfig->CONFIG_HZ : 0;
    if (hz == 0)
        return "the coarse monotonic clock on every packet (no kernel config for CONFIG_HZ)";
    return "jiffies (CONFIG_HZ=" + std::to_string(hz) +
           "), set from the coarse monotonic clock once a second per CPU";
}

std::vector<std::string> Datapath::attach()
{
    std::vector<std::string> log;
    std::vector<Attachment> made;
    auto undo = [&] {
        for (auto& a : made) {
            if (pinning_ == Pinning::Pin)
                unlink((cfg_.pin_path + "/link_" + a.iface).c_str());
            close(a.link_fd);
        }
    };
    for (const auto& iface : cfg_.interfaces) {
        const int ifindex = int(if_nametoindex(iface.c_str()));
        if (ifindex == 0) {
            undo();
            throw std::runtime_error("interface " + iface + " does not exist");
        }
        const std::string pin = cfg_.pin_path + "/link_" + iface;
        if (pinning_ == Pinning::Pin && path_exists(pin)) {
            // An earlier lbd's link: swap this program in; the interface never
            // goes without one.
            const int fd = bpf_obj_get(pin.c_str());
            bpf_link_info info{};
            __u32 len = sizeof info;
            if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                int(info.xdp.ifindex) == ifindex && bpf_link_update(fd, prog_fd(), nullptr) == 0) {
                attached_.push_back({iface, ifindex, cfg_.xdp_mode, fd});
                log.push_back("adopted the XDP link on " + iface +
                              " and swapped this program in (no packet missed)");
                continue;
            }
            if (fd >= 0)
                close(fd);
            unlink(pin.c_str());  // stale: its interface went away
        }
        XdpMode mode = cfg_.xdp_mode;
        std::string why;
        if (mode == XdpMode::Auto) {
            if (driver_name(iface) == "veth") {
                mode = XdpMode::Generic;
                why = " (auto: native XDP_TX on veth drops frames unless the peer runs an XDP "
                      "program; set xdp_mode: native if it does)";
            } else {
                mode = XdpMode::Native;
            }
        }
        auto try_attach = [&](XdpMode m) {
            LIBBPF_OPTS(bpf_link_create_opts, opts);
            opts.flags = m == XdpMode::Generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
            return bpf_link_create(prog_fd(), ifindex, BPF_XDP, &opts);
        };
        int fd = try_attach(mode);
        if (fd < 0 && cfg_.xdp_mode == XdpMode::Auto && mode == XdpMode::Native) {
            const int err = errno;
            mode = XdpMode::Generic;
            why = std::string(" (auto: native attach failed: ") + std::strerror(err) +
                  "; generic XDP is much slower)";
            fd = try_attach(mode);
        }
        if (fd < 0) {
            const int err = errno;
            undo();
            std::string hint;
            if (err == EBUSY || err == EEXIST)
                hint = " (another XDP program is attached; detach it first)";
            throw std::runtime_error("attaching XDP (" + to_string(mode) + ") to " + iface + ": " +
                                     std::strerror(err) + hint);
        }
        if (pinning_ == Pinning::Pin && bpf_obj_pin(fd, pin.c_str()) != 0) {
            const int err = errno;
            close(fd);
            undo();
            throw sys_error("pinning the XDP link at " + pin, err);
        }
        made.push_back({iface, ifindex, mode, fd});
        attached_.push_back(made.back());
        log.push_back("attached XDP to " + iface + " in " + to_string(mode) + " mode" + why);
    }
    // Links an earlier lbd pinned for interfaces this config no longer has.
    if (pinning_ == Pinning::Pin)
        if (DIR* d = opendir(cfg_.pin_path.c_str())) {
            while (dirent* e = readdir(d)) {
                const std::string name = e->d_name;
                if (!name.starts_with("link_"))
                    continue;
                const std::string iface = name.substr(5);
                if (std::find(cfg_.interfaces.begin(), cfg_.interfaces.end(), iface) ==
                    cfg_.interfaces.end()) {
                    unlink((cfg_.pin_path + "/" + name).c_str());
                    log.push_back("detached from " + iface + " (no longer configured)");
                }
            }
            closedir(d);
        }
    return log;
}

std::vector<std::string> Datapath::remove_pins(const std::string& pin_path)
{
    std::vector<std::string> log, links, maps;
    DIR* d = opendir(pin_path.c_str());
    if (!d) {
        if (errno == ENOENT)
            return {"nothing pinned under " + pin_path};
        throw sys_error("opening " + pin_path, errno);
    }
    while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..")
            continue;
        (name.starts_with("link_") ? links : maps).push_back(name);
    }
    closedir(d);
    for (const auto& group : {links, maps})
        for (const auto& name : group) {
            const std::string p = pin_path + "/" + name;
            if (unlink(p.c_str()) != 0)
                throw sys_error("removing " + p, errno);
            log.push_back(name.starts_with("link_") ? "detached XDP from " + name.substr(5)
                                                     : "unpinned " + p);
        }
    if (rmdir(pin_path.c_str()) != 0)
        throw sys_error("removing " + pin_path, errno);
    log.push_back("removed " + pin_path);
    return log;
}

namespace {

uint64_t coarse_now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace

std::string Datapath::conntrack_summary() const
{
    const uint64_t bytes = uint64_t(ct_buckets_) * sizeof(lbd_ct_bucket);
    return std::to_string(uint64_t(ct_buckets_) * LBD_CT_WAYS) + " entries (" + std::to_string(ct_buckets_) +
           " buckets of " + std::to_string(LBD_CT_WAYS) + "), " + std::to_string((bytes + (1 << 20) - 1) >> 20) +
           " MiB";
}

std::span<lbd_ct_bucket> Datapath::conntrack() const
{
    return {static_cast<lbd_ct_bucket*>(ct_map_->data()), ct_buckets_};
}

std::map<uint32_t, uint64_t> Datapath::active_flows(uint64_t idle_ns) const
{
    std::map<uint32_t, uint64_t> out;
    const uint64_t now = coarse_now_ns();
    const int bfd = bpf_map__fd(skel_->maps.backends);
    std::map<uint32_t, uint32_t> gens;
    ct_for_each(conntrack(), cfg_.hash_seed, [&](lbd_ct_entry&, const lbd_ct_entry& e) {
        const lbd_ct_value& v = e.v;
        if (now > v.last_seen && now - v.last_seen > idle_ns)
            return;
        auto g = gens.find(v.backend_id);
        if (g == gens.end()) {
            lbd_backend be{};
            g = gens.emplace(v.backend_id, bpf_map_lookup_elem(bfd, &v.backend_id, &be) == 0 ? be.gen : ~0u)
                    .first;
        }
        if (g->second == v.backend_gen)
            out[v.backend_id]++;
    });
    return out;
}

std::map<uint32_t, int64_t> Datapath::least_conn_active(const std::vector<uint32_t>& ids) const
{
    std::map<uint32_t, int64_t> out;
    for (uint32_t id : ids)
        out[id] = writer_->lc_counters().get(id);
    return out;
}

size_t Datapath::reconcile_least_conn(const std::vector<uint32_t>& ids, uint64_t tcp_idle_ns,
                                      uint64_t udp_idle_ns)
{
    if (ids.empty())
        return 0;
    const uint64_t now = coarse_now_ns();
    const int bfd = bpf_map__fd(skel_->maps.backends);
    std::map<uint32_t, uint32_t> gens;  // of the ids asked about
    std::map<uint32_t, int64_t> counts;
    for (uint32_t id : ids) {
        lbd_backend be{};
        if (bpf_map_lookup_elem(bfd, &id, &be) == 0)
            gens[id] = be.gen;
        counts[id] = 0;
    }
    // Read in place through the mapping: a table of millions in a fraction
    // of a second, no copy, no syscall per entry.
    size_t uncounted = 0;
    ct_for_each(conntrack(), cfg_.hash_seed, [&](lbd_ct_entry& slot, const lbd_ct_entry& e) {
        const lbd_ct_value& v = e.v;
        if ((v.flags & (LBD_CT_F_COUNTED | LBD_CT_F_CLOSED)) != LBD_CT_F_COUNTED)
            return;
        auto g = gens.find(v.backend_id);
        if (g == gens.end() || g->second != v.backend_gen)
            return;
        const uint64_t limit = e.key.proto == IPPROTO_UDP ? udp_idle_ns : tcp_idle_ns;
        if (now > v.last_seen && now - v.last_seen > limit) {
            ct_clear_counted(slot);
            uncounted++;
        } else {
            counts[v.backend_id]++;
        }
    });
    for (const auto& [id, n] : counts)
        writer_->lc_counters().set(id, int32_t(std::min<int64_t>(n, INT32_MAX)));
    return uncounted;
}

lbd_stats Datapath::read_stats(int fd, uint32_t idx) const
{
    std::vector<lbd_stats> per_cpu(ncpus_);
    lbd_stats sum{};
    if (bpf_map_lookup_elem(fd, &idx, per_cpu.data()) == 0) {
        for (const auto& s : per_cpu) {
            sum.packets += s.packets;
            sum.bytes += s.bytes;
            sum.new_flows += s.new_flows;
        }
    }
    return sum;
}

lbd_stats Datapath::vip_stats(uint32_t vip_id) const
{
    return read_stats(bpf_map__fd(skel_->maps.vip_stats), vip_id);
}

lbd_stats Datapath::backend_stats(uint32_t id) const
{
    return read_stats(bpf_map__fd(skel_->maps.backend_stats), id);
}

std::vector<uint64_t> Datapath::counters() const
{
    std::vector<uint64_t> out(LBD_CNT_MAX, 0), per_cpu(ncpus_);
    const int fd = bpf_map__fd(skel_->maps.counters);
    for (uint32_t c = 0; c < LBD_CNT_MAX; c++) {
        if (bpf_map_lookup_elem(fd, &c, per_cpu.data()) == 0)
            for (auto v : per_cpu)
                out[c] += v;
    }
    return out;
}

}  // namespace lbd
