// lbctl: the operator CLI for lbd. Parses the command line into one request
// (lbctl_args), sends it on lbd's control socket, prints the answer
// (lbctl_format). docs/lbctl.md, docs/control-protocol.md.
#include "lbctl/lbctl_args.h"
#include "lbctl/lbctl_format.h"

#include "common/duration.h"
#include "lbd_version.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <variant>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

// An answer bigger than this is not lbd talking.
constexpr size_t kMaxAnswer = 64u << 20;

struct Failure {
    std::string message;  // complete stderr text
};

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

int remaining_ms(Clock::time_point deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error (errno).
int wait_for(int fd, short events, Clock::time_point deadline)
{
    while (true) {
        const int ms = remaining_ms(deadline);
        if (ms == 0)
            return 0;
        pollfd p{fd, events, 0};
        const int rc = ::poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (rc > 0)
            return 1;
    }
}

// One request line out, one answer line back.
std::variant<std::string, Failure> exchange(const std::string& path, const std::string& request,
                                            std::chrono::milliseconds timeout)
{
    const auto deadline = Clock::now() + timeout;
    const std::string waited = lbd::format_duration(timeout);

    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path)
        return Failure{lbctl::connect_error(path, ENAMETOOLONG)};
    std::memcpy(sa.sun_path, path.data(), path.size());

    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0)
        return Failure{lbctl::connect_error(path, errno)};

    // Connect. A Unix socket whose backlog is full says EAGAIN: lbd is busy, retry.
    while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            if (remaining_ms(deadline) == 0)
                return Failure{"lbctl: cannot connect to " + path + ": lbd did not accept within " + waited +
                               " (is it stuck?)\n"};
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        if (errno == EINPROGRESS) {
            const int rc = wait_for(fd.get(), POLLOUT, deadline);
            if (rc == 0)
                return Failure{"lbctl: cannot connect to " + path + ": lbd did not accept within " + waited +
                               " (is it stuck?)\n"};
            int err = errno;
            socklen_t len = sizeof err;
            if (rc > 0 && ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
            if (err != 0)
                return Failure{lbctl::connect_error(path, err)};
            break;
        }
        return Failure{lbctl::connect_error(path, errno)};
    }

    // Send.
    size_t sent = 0;
    while (sent < request.size()) {
        const int rc = wait_for(fd.get(), POLLOUT, deadline);
        if (rc == 0)
            return Failure{"lbctl: lbd on " + path + " did not take the request within " + waited + "\n"};
        if (rc < 0)
            return Failure{"lbctl: sending to lbd on " + path + ": " + std::strerror(errno) + "\n"};
        const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return Failure{"lbctl: sending to lbd on " + path + ": " + std::strerror(errno) + "\n"};
        sent += static_cast<size_t>(n);
    }

    // Receive one line.
    std::string answer;
    char buf[65536];
    while (true) {
        const int rc = wait_for(fd.get(), POLLIN, deadline);
        if (rc == 0)
            return Failure{"lbctl: no answer from lbd on " + path + " within " + waited +
                           " (the request may still take effect; see --timeout)\n"};
        if (rc < 0)
            return Failure{"lbctl: reading from lbd on " + path + ": " + std::strerror(errno) + "\n"};
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return Failure{"lbctl: reading from lbd on " + path + ": " + std::strerror(errno) + "\n"};
        if (n == 0)
            return Failure{"lbctl: lbd on " + path + " closed the connection without answering\n"};
        const size_t old = answer.size();
        answer.append(buf, static_cast<size_t>(n));
        if (const size_t nl = answer.find('\n', old); nl != std::string::npos) {
            answer.resize(nl);
            return answer;
        }
        if (answer.size() > kMaxAnswer)
            return Failure{"lbctl: lbd on " + path + " sent an answer of more than 64 MiB without a line end\n"};
    }
}

void put(std::FILE* f, const std::string& s)
{
    if (!s.empty())
        std::fwrite(s.data(), 1, s.size(), f);
}

}  // namespace

int main(int argc, char** argv)
{
    const std::vector<std::string> args(argv + 1, argv + argc);
    const lbctl::Invocation inv = lbctl::parse_args(args, std::getenv("LBD_SOCKET"), LBD_VERSION);
    switch (inv.kind) {
    case lbctl::Invocation::Kind::Print:
        put(stdout, inv.text);
        return inv.exit_code;
    case lbctl::Invocation::Kind::UsageError:
        put(stderr, inv.text);
        return inv.exit_code;
    case lbctl::Invocation::Kind::Request:
        break;
    }

    auto result = exchange(inv.options.socket, inv.request.dump() + "\n", inv.options.timeout);
    if (auto* f = std::get_if<Failure>(&result)) {
        put(stderr, f->message);
        return lbctl::kExitNoAnswer;
    }
    std::string why;
    const auto response = lbctl::parse_response(std::get<std::string>(result), why);
    if (!response) {
        put(stderr, "lbctl: lbd on " + inv.options.socket + " gave an answer lbctl cannot read: " + why + "\n");
        return lbctl::kExitNoAnswer;
    }
    const lbctl::Output out = lbctl::render(inv.request, *response, inv.options.json);
    put(stdout, out.out);
    std::fflush(stdout);
    put(stderr, out.err);
    return out.exit_code;
}
