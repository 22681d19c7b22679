#include "lbd/control_server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lbd {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

constexpr size_t kMaxLine = 1 << 20;

asio::awaitable<void> session(stream_protocol::socket sock, ControlServer::Handler& handler)
{
    asio::streambuf buf(kMaxLine);
    try {
        for (;;) {
            const size_t n = co_await asio::async_read_until(sock, buf, '\n', asio::use_awaitable);
            std::string line(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + n);
            buf.consume(n);
            nlohmann::json resp;
            try {
                resp = handler(nlohmann::json::parse(line));
            } catch (const nlohmann::json::parse_error&) {
                resp = {{"ok", false}, {"error", "request is not valid JSON"}};
            }
            const std::string out = resp.dump() + "\n";
            co_await asio::async_write(sock, asio::buffer(out), asio::use_awaitable);
        }
    } catch (const boost::system::system_error&) {
        // peer closed, line too long, or shutting down: drop the connection
    }
}

}  // namespace

ControlServer::ControlServer(asio::io_context& io, const std::string& path, const std::string& group,
                             Handler handler)
    : acceptor_(io), path_(path), handler_(std::move(handler))
{
    // The directory (e.g. /run/lbd) may not exist yet.
    if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0)
        mkdir(path.substr(0, slash).c_str(), 0755);
    ::unlink(path.c_str());  // a stale socket from an earlier lbd
    boost::system::error_code ec;
    acceptor_.open(stream_protocol(), ec);
    if (!ec)
        acceptor_.bind(stream_protocol::endpoint(path), ec);
    if (!ec)
        acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw std::runtime_error("control socket " + path + ": " + ec.message());
    gid_t gid = 0;
    if (!group.empty()) {
        const struct group* g = getgrnam(group.c_str());
        if (!g)
            throw std::runtime_error("control.group: no group named '" + group + "'");
        gid = g->gr_gid;
    }
    if (chown(path.c_str(), 0, gid) != 0 || chmod(path.c_str(), 0660) != 0)
        throw std::runtime_error("control socket " + path + ": " + std::strerror(errno));

    asio::co_spawn(
        io,
        [this]() -> asio::awaitable<void> {
            for (;;) {
                boost::system::error_code ec;
                auto sock = co_await acceptor_.async_accept(
                    asio::redirect_error(asio::use_awaitable, ec));
                if (ec == asio::error::operation_aborted || !acceptor_.is_open())
                    co_return;
                if (!ec)
                    asio::co_spawn(acceptor_.get_executor(), session(std::move(sock), handler_),
                                   asio::detached);
            }
        },
        asio::detached);
}

ControlServer::~ControlServer()
{
    stop();
}

void ControlServer::stop()
{
    if (acceptor_.is_open()) {
        boost::system::error_code ec;
        acceptor_.close(ec);
        ::unlink(path_.c_str());
    }
}

}  // namespace lbd
