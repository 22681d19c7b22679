#include "lbd/kernel/neigh.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace lbd {

int request_neigh_resolution(int family, const lbd_addr& nexthop, int ifindex)
{
    const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct {
        nlmsghdr n;
        ndmsg ndm;
        char attrs[RTA_SPACE(16)];
    } req{};
    const size_t alen = family == AF_INET ? 4 : 16;
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(ndmsg)) + RTA_SPACE(alen);
    req.n.nlmsg_type = RTM_NEWNEIGH;
    req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    req.n.nlmsg_seq = 1;
    req.ndm.ndm_family = uint8_t(family);
    req.ndm.ndm_ifindex = ifindex;
    req.ndm.ndm_state = NUD_PERMANENT;  // ignored with NTF_USE; what iproute2 sends
    req.ndm.ndm_flags = NTF_USE;
    auto* rta = reinterpret_cast<rtattr*>(req.attrs);
    rta->rta_type = NDA_DST;
    rta->rta_len = RTA_LENGTH(alen);
    std::memcpy(RTA_DATA(rta), nexthop.w, alen);

    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    int rc = 0;
    if (sendto(fd, &req, req.n.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
        rc = -errno;
    } else {
        char buf[512];
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            rc = -errno;
        } else if (size_t(n) >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
            auto* h = reinterpret_cast<nlmsghdr*>(buf);
            if (h->nlmsg_type == NLMSG_ERROR)
                rc = static_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        }
    }
    close(fd);
    return rc;
}

NeighResolver::NeighResolver(boost::asio::io_context& io, int ringbuf_fd) : sd_(io)
{
    rb_ = ring_buffer__new(ringbuf_fd, &NeighResolver::on_event, this, nullptr);
    if (!rb_)
        throw std::runtime_error(std::string("opening the neigh_events ring buffer: ") +
                                 std::strerror(errno));
    sd_.assign(dup(ring_buffer__epoll_fd(rb_)));
    wait();
}

NeighResolver::~NeighResolver()
{
    boost::system::error_code ec;
    sd_.cancel(ec);
    sd_.close(ec);
    ring_buffer__free(rb_);
}

void NeighResolver::wait()
{
    sd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                   [this](const boost::system::error_code& ec) {
                       if (ec)
                           return;
                       ring_buffer__consume(rb_);
                       wait();
                   });
}

int NeighResolver::on_event(void* self, void* data, size_t size)
{
    if (size >= sizeof(lbd_neigh_event))
        static_cast<NeighResolver*>(self)->handle(*static_cast<lbd_neigh_event*>(data));
    return 0;
}

void NeighResolver::handle(const lbd_neigh_event& ev)
{
    const int family = ev.family == LBD_AF_INET ? AF_INET : AF_INET6;
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(family, ev.nexthop.w, text, sizeof text);
    const std::string key = std::string(text) + "%" + std::to_string(ev.ifindex);
    const auto now = std::chrono::steady_clock::now();
    auto it = recent_.find(key);
    if (it != recent_.end() && now - it->second < std::chrono::seconds(1))
        return;
    recent_[key] = now;
    if (recent_.size() > 4096)
        recent_.clear();
    requests_++;
    const int rc = request_neigh_resolution(family, ev.nexthop, int(ev.ifindex));
    if (rc < 0)
        spdlog::warn("neighbour {} (ifindex {}): resolution request failed: {}", text, ev.ifindex,
                     std::strerror(-rc));
    else
        spdlog::info("neighbour {} (ifindex {}): not resolved yet, asked the kernel to resolve it",
                     text, ev.ifindex);
}

}  // namespace lbd
