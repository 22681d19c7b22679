#include "bgp/relay.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace lbd::bgp {

namespace {

enum class Copy { Ok, Eof, Failed };

/// Writes all of buf to fd.
bool write_all(int fd, const char* buf, size_t n)
{
    while (n > 0) {
        ssize_t w = ::write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

/// One read from `from`, all of it written to `to`.
Copy copy(int from, int to)
{
    char buf[16384];
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? Copy::Ok : Copy::Failed;
    if (n == 0)
        return Copy::Eof;
    return write_all(to, buf, static_cast<size_t>(n)) ? Copy::Ok : Copy::Failed;
}

}  // namespace

int run_exabgp_relay(const std::string& socket_path)
{
    std::signal(SIGPIPE, SIG_IGN);  // a closed peer is an EPIPE, handled below
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof sa.sun_path) {
        std::fprintf(stderr, "lbd relay: bad socket path '%s'\n", socket_path.c_str());
        return 1;
    }
    std::memcpy(sa.sun_path, socket_path.data(), socket_path.size());
    int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || ::connect(sock, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        std::fprintf(stderr, "lbd relay: cannot connect to %s: %s\n", socket_path.c_str(), std::strerror(errno));
        if (sock >= 0)
            ::close(sock);
        return 1;
    }

    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {sock, POLLIN, 0}};
    int status = 0;
    while (true) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            status = 1;
            break;
        }
        Copy c = Copy::Ok;
        if (fds[0].revents)
            c = copy(STDIN_FILENO, sock);  // events from ExaBGP
        if (c == Copy::Ok && fds[1].revents)
            c = copy(sock, STDOUT_FILENO);  // commands from lbd
        if (c == Copy::Eof)
            break;
        if (c == Copy::Failed) {
            status = errno == EPIPE || errno == ECONNRESET ? 0 : 1;
            if (status)
                std::fprintf(stderr, "lbd relay: %s\n", std::strerror(errno));
            break;
        }
    }
    ::close(sock);
    return status;
}

}  // namespace lbd::bgp
