#include "lbd/kernel/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdexcept>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

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

// ------------------------------------------------------------ BpfMapWriter

BpfMapWriter::BpfMapWriter(xdp_lb* skel, uint32_t ring_size)
    : skel_(skel), ring_size_(ring_size), ncpus_(libbpf_num_possible_cpus())
{
}

void BpfMapWriter::put_vip(const lbd_vip_key& key, const lbd_vip_meta& meta)
{
    check(bpf_map__update_elem(skel_->maps.vips, &key, sizeof key, &meta, sizeof meta, BPF_ANY),
          "writing the vips map");
}

void BpfMapWriter::delete_vip(const lbd_vip_key& key)
{
    int rc = bpf_map__delete_elem(skel_->maps.vips, &key, sizeof key, 0);
    if (rc < 0 && errno != ENOENT)
        check(rc, "deleting from the vips map");
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
}

void BpfMapWriter::reset_vip_stats(uint32_t vip_id)
{
    zero_percpu(bpf_map__fd(skel_->maps.vip_stats), vip_id, sizeof(lbd_stats));
}

void BpfMapWriter::put_ring_slots(uint32_t vip_id, std::span<const uint32_t> slots,
                                  std::span<const uint32_t> ids)
{
    std::vector<uint32_t> keys(slots.size());
    for (size_t i = 0; i < slots.size(); i++)
        keys[i] = vip_id * ring_size_ + slots[i];
    const int fd = bpf_map__fd(skel_->maps.ring);
    size_t done = 0;
    while (done < keys.size()) {
        __u32 n = uint32_t(keys.size() - done);
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int rc = bpf_map_update_batch(fd, keys.data() + done,
                                      const_cast<uint32_t*>(ids.data()) + done, &n, &opts);
        if (rc < 0 && n == 0)
            check(rc, "writing the ring map");
        done += n;
    }
}

void BpfMapWriter::put_config(const lbd_config& cfg)
{
    uint32_t zero = 0;
    check(bpf_map__update_elem(skel_->maps.config, &zero, sizeof zero, &cfg, sizeof cfg, BPF_ANY),
          "writing the config map");
}

// ---------------------------------------------------------------- Datapath

Datapath::Datapath(const DatapathConfig& cfg) : cfg_(cfg)
{
    libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
    skel_ = xdp_lb__open();
    if (!skel_)
        throw sys_error("opening the XDP program", errno);
    ncpus_ = libbpf_num_possible_cpus();

    skel_->rodata->ring_size = cfg.maglev_ring_size;
    skel_->rodata->hash_seed = cfg.hash_seed;
    const uint64_t ring_entries = uint64_t(cfg.max_vips) * cfg.maglev_ring_size;
    bpf_map__set_max_entries(skel_->maps.vips, cfg.max_vips);
    bpf_map__set_max_entries(skel_->maps.vip_stats, cfg.max_vips);
    bpf_map__set_max_entries(skel_->maps.ring, uint32_t(ring_entries));
    // Backend id 0 is never given out (lb_state.h), so a zeroed ring slot
    // names no valid backend.
    bpf_map__set_max_entries(skel_->maps.backends, cfg.max_backends + 1);
    bpf_map__set_max_entries(skel_->maps.backend_stats, cfg.max_backends + 1);
    bpf_map__set_max_entries(skel_->maps.conntrack, cfg.conntrack_size);

    if (int rc = xdp_lb__load(skel_); rc < 0) {
        const int err = errno ? errno : -rc;
        xdp_lb__destroy(skel_);
        skel_ = nullptr;
        throw sys_error("loading the XDP program (see libbpf messages above)", err);
    }
    writer_ = std::make_unique<BpfMapWriter>(skel_, cfg.maglev_ring_size);
}

Datapath::~Datapath()
{
    detach();
    if (skel_)
        xdp_lb__destroy(skel_);
}

int Datapath::prog_fd() const { return bpf_program__fd(skel_->progs.xdp_lb); }
int Datapath::neigh_events_fd() const { return bpf_map__fd(skel_->maps.neigh_events); }

std::vector<std::string> Datapath::attach()
{
    std::vector<std::string> log;
    for (const auto& iface : cfg_.interfaces) {
        const int ifindex = int(if_nametoindex(iface.c_str()));
        if (ifindex == 0) {
            detach();
            throw std::runtime_error("interface " + iface + " does not exist");
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
            detach();
            std::string hint;
            if (err == EBUSY || err == EEXIST)
                hint = " (another XDP program is attached; detach it first)";
            throw std::runtime_error("attaching XDP (" + to_string(mode) + ") to " + iface + ": " +
                                     std::strerror(err) + hint);
        }
        attached_.push_back({iface, ifindex, mode, fd});
        log.push_back("attached XDP to " + iface + " in " + to_string(mode) + " mode" + why);
    }
    return log;
}

void Datapath::detach()
{
    for (auto& a : attached_)
        if (a.link_fd >= 0)
            close(a.link_fd);
    attached_.clear();
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
