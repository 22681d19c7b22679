#include "lbd/core/reload.h"

namespace lbd {

std::vector<std::string> restart_only_changes(const DatapathConfig& a, const DatapathConfig& b)
{
    std::vector<std::string> keys;
    auto cmp = [&](bool same, const char* key) {
        if (!same)
            keys.push_back(std::string("datapath.") + key);
    };
    cmp(a.interfaces == b.interfaces, "interfaces");
    cmp(a.xdp_mode == b.xdp_mode, "xdp_mode");
    cmp(a.conntrack_size == b.conntrack_size, "conntrack_size");
    cmp(a.maglev_ring_size == b.maglev_ring_size, "maglev_ring_size");
    cmp(a.hash_seed == b.hash_seed, "hash_seed");
    cmp(a.pin_path == b.pin_path, "pin_path");
    cmp(a.max_vips == b.max_vips, "max_vips");
    cmp(a.max_backends == b.max_backends, "max_backends");
    cmp(a.probe_marks == b.probe_marks, "probe_marks");
    return keys;  // encap_source_v4/v6 and all of vips: apply live
}

}  // namespace lbd
