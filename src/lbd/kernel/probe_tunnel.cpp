#include "lbd/kernel/probe_tunnel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "hc_tunnel.skel.h"
#include "lbd_shared.h"

namespace lbd {

namespace {

constexpr const char* kPinName = "hc_tunnel";
constexpr std::string_view kProgName = "hc_tunnel";  // the SEC("tc") function

std::runtime_error sys_error(const std::string& what, int err)
{
    return std::runtime_error(what + ": " + std::strerror(err < 0 ? -err : err));
}

std::string hex(uint32_t v)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", v);
    return buf;
}

bpf_tc_hook egress_hook(int ifindex)
{
    bpf_tc_hook h{};
    h.sz = sizeof h;
    h.ifindex = ifindex;
    h.attach_point = BPF_TC_EGRESS;
    return h;
}

bpf_tc_opts filter_opts()
{
    bpf_tc_opts o{};
    o.sz = sizeof o;
    o.handle = kProbeTunnelHandle;
    o.priority = kProbeTunnelPriority;
    return o;
}

/// The id of the program in lbd's filter slot on IFINDEX's egress, 0 if none.
uint32_t attached_prog(int ifindex)
{
    auto hook = egress_hook(ifindex);
    auto opts = filter_opts();
    if (bpf_tc_query(&hook, &opts) != 0)
        return 0;  // ENOENT: no filter there (or no clsact qdisc at all)
    return opts.prog_id;
}

std::string prog_name(uint32_t id)
{
    const int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0)
        return {};
    bpf_prog_info info{};
    __u32 len = sizeof info;
    std::string name;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
        name = info.name;
    close(fd);
    return name;
}

uint32_t prog_id(int fd)
{
    bpf_prog_info info{};
    __u32 len = sizeof info;
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

int detach(int ifindex)
{
    auto hook = egress_hook(ifindex);
    auto opts = filter_opts();
    return bpf_tc_detach(&hook, &opts);
}

}  // namespace

ProbeTunnel::ProbeTunnel(const DatapathConfig& cfg) : cfg_(cfg), pin_(cfg.pin_path + "/" + kPinName)
{
    skel_ = hc_tunnel__open();
    if (!skel_)
        throw sys_error("opening the health-check tunnel program", errno);
    skel_->rodata->mark_value = cfg.probe_marks.value;
    skel_->rodata->mark_mask = cfg.probe_marks.mask;
    // One mark per backend probed via tunnel, and no more backends than this.
    bpf_map__set_max_entries(skel_->maps.hc_targets, cfg.max_backends + 1);
    if (int rc = hc_tunnel__load(skel_); rc < 0) {
        const int err = errno ? errno : -rc;
        hc_tunnel__destroy(skel_);
        skel_ = nullptr;
        throw sys_error("loading the health-check tunnel program (see libbpf messages above)", err);
    }
    ncpus_ = libbpf_num_possible_cpus();
}

ProbeTunnel::~ProbeTunnel()
{
    detach_all();
    if (skel_)
        hc_tunnel__destroy(skel_);
}

int ProbeTunnel::prog_fd() const
{
    return bpf_program__fd(skel_->progs.hc_tunnel);
}

void ProbeTunnel::detach_all() noexcept
{
    for (const auto& h : attached_)
        // Only our own program: never one another lbd put there since.
        if (attached_prog(h.ifindex) == h.prog_id && detach(h.ifindex) == 0)
            spdlog::info("detached the health-check tunnel from {}", h.iface);
    if (!attached_.empty())
        unlink(pin_.c_str());
    attached_.clear();
}

std::vector<std::string> ProbeTunnel::attach()
{
    std::vector<std::string> log = remove_pinned(cfg_.pin_path);
    const uint32_t id = prog_id(prog_fd());
    try {
        for (const auto& iface : cfg_.interfaces) {
            const int ifindex = int(if_nametoindex(iface.c_str()));
            if (ifindex == 0)
                throw std::runtime_error("interface " + iface + " does not exist");
            auto hook = egress_hook(ifindex);
            const int hrc = bpf_tc_hook_create(&hook);
            if (hrc != 0 && hrc != -EEXIST)
                throw sys_error("adding a clsact qdisc to " + iface, hrc);
            std::string replaced;
            if (uint32_t old = attached_prog(ifindex)) {
                // Our slot is taken: by an lbd that died (same program name),
                // or by something else, which is not ours to replace.
                const std::string name = prog_name(old);
                if (name != kProgName)
                    throw std::runtime_error("the egress filter of " + iface + " at priority " +
                                             std::to_string(kProbeTunnelPriority) + " handle " + hex(kProbeTunnelHandle) +
                                             " is program " +
                                             std::to_string(old) + " (" + name +
                                             "), not lbd's health-check tunnel; remove it first");
                replaced = " (replacing program " + std::to_string(old) + " an earlier lbd left)";
            }
            auto opts = filter_opts();
            opts.prog_fd = prog_fd();
            opts.flags = BPF_TC_F_REPLACE;
            if (int rc = bpf_tc_attach(&hook, &opts); rc != 0)
                throw sys_error("attaching the health-check tunnel to the egress of " + iface, rc);
            attached_.push_back({iface, ifindex, id});
            log.push_back("attached the health-check tunnel (TC egress) to " + iface + replaced);
        }
        if (!attached_.empty() && bpf_obj_pin(prog_fd(), pin_.c_str()) != 0)
            throw sys_error("pinning the health-check tunnel at " + pin_, errno);
    } catch (...) {
        detach_all();
        throw;
    }
    return log;
}

void ProbeTunnel::put(uint32_t mark, const IpAddr& backend)
{
    lbd_hc_target t{};
    std::memcpy(t.addr.w, backend.bytes.data(), backend.size());
    t.family = backend.is_v4() ? LBD_AF_INET : LBD_AF_INET6;
    if (bpf_map__update_elem(skel_->maps.hc_targets, &mark, sizeof mark, &t, sizeof t, BPF_ANY) != 0)
        throw sys_error("writing the hc_targets map", errno);
}

void ProbeTunnel::remove(uint32_t mark)
{
    if (bpf_map__delete_elem(skel_->maps.hc_targets, &mark, sizeof mark, 0) != 0 && errno != ENOENT)
        throw sys_error("deleting from the hc_targets map", errno);
}

std::vector<uint64_t> ProbeTunnel::counters() const
{
    std::vector<uint64_t> out(LBD_HC_CNT_MAX, 0), per_cpu(static_cast<size_t>(ncpus_));
    const int fd = bpf_map__fd(skel_->maps.hc_counters);
    for (uint32_t c = 0; c < LBD_HC_CNT_MAX; c++)
        if (bpf_map_lookup_elem(fd, &c, per_cpu.data()) == 0)
            for (auto v : per_cpu)
                out[c] += v;
    return out;
}

std::vector<std::string> ProbeTunnel::remove_pinned(const std::string& pin_path)
{
    const std::string pin = pin_path + "/" + kPinName;
    const int fd = bpf_obj_get(pin.c_str());
    if (fd < 0)
        return {};
    std::vector<std::string> log;
    const uint32_t id = prog_id(fd);
    close(fd);
    struct if_nameindex* ifs = id != 0 ? if_nameindex() : nullptr;
    if (ifs) {
        for (auto* i = ifs; i->if_index != 0; ++i)
            if (attached_prog(int(i->if_index)) == id && detach(int(i->if_index)) == 0)
                log.push_back(std::string("removed the health-check tunnel an earlier lbd left on ") + i->if_name);
        if_freenameindex(ifs);
    }
    if (unlink(pin.c_str()) != 0 && errno != ENOENT)
        throw sys_error("removing " + pin, errno);
    log.push_back("unpinned " + pin);
    return log;
}

}  // namespace lbd
