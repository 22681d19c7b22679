// Neighbour resolution for the datapath. When the XDP program finds a route to
// a backend but no neighbour entry for its next hop, it passes the packet to
// the kernel and posts a neigh event; this asks the kernel to resolve that
// next hop (RTM_NEWNEIGH with NTF_USE, as `ip neigh replace ... use` does).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <map>
#include <string>

#include "lbd_shared.h"

struct ring_buffer;

namespace lbd {

/// Asks the kernel to resolve `nexthop` on `ifindex`. Returns 0 or -errno.
int request_neigh_resolution(int family, const lbd_addr& nexthop, int ifindex);

class NeighResolver {
public:
    NeighResolver(boost::asio::io_context& io, int ringbuf_fd);
    ~NeighResolver();
    uint64_t requests() const { return requests_; }

private:
    static int on_event(void* self, void* data, size_t size);
    void wait();
    void handle(const lbd_neigh_event& ev);

    boost::asio::posix::stream_descriptor sd_;
    ring_buffer* rb_ = nullptr;
    std::map<std::string, std::chrono::steady_clock::time_point> recent_;
    uint64_t requests_ = 0;
};

}  // namespace lbd
