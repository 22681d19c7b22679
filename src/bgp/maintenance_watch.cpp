#include "bgp/maintenance_watch.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace lbd::bgp {

namespace asio = boost::asio;

class MaintenanceWatch::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(asio::io_context& io, std::string path, std::function<void(bool)> on_change, std::chrono::milliseconds poll)
        : path_(std::move(path)), on_change_(std::move(on_change)), poll_(poll), inotify_(io), timer_(io)
    {
        auto slash = path_.rfind('/');
        dir_ = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
        present_ = exists().value_or(false);
    }

    void start()
    {
        if (path_.empty())
            return;
        int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd >= 0)
            inotify_.assign(fd);
        else
            spdlog::warn("bgp: inotify: {}; polling {} only", std::strerror(errno), path_);
        add_watch();
        wait_events();
        tick();
    }

    void close()
    {
        closed_ = true;
        boost::system::error_code ec;
        timer_.cancel();
        inotify_.close(ec);
    }

    bool present() const { return present_; }
    const std::string& path() const { return path_; }

private:
    std::string path_, dir_;
    std::function<void(bool)> on_change_;
    std::chrono::milliseconds poll_;
    asio::posix::stream_descriptor inotify_;
    asio::steady_timer timer_;
    int wd_ = -1;
    bool present_ = false;
    bool closed_ = false;
    bool warned_ = false;

    /// True/false when known; nullopt when the check itself failed.
    std::optional<bool> exists()
    {
        if (path_.empty())
            return false;
        struct stat st {};
        if (::lstat(path_.c_str(), &st) == 0)
            return true;
        if (errno == ENOENT || errno == ENOTDIR)
            return false;
        if (!warned_)
            spdlog::warn("bgp: cannot check maintenance file {}: {}", path_, std::strerror(errno));
        warned_ = true;
        return std::nullopt;
    }

    void add_watch()
    {
        if (wd_ >= 0 || !inotify_.is_open())
            return;
        wd_ = ::inotify_add_watch(inotify_.native_handle(), dir_.c_str(),
                                  IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE |
                                      IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
    }

    void wait_events()
    {
        if (!inotify_.is_open())
            return;
        inotify_.async_wait(asio::posix::stream_descriptor::wait_read,
                            [self = shared_from_this()](boost::system::error_code ec) {
                                if (ec || self->closed_)
                                    return;
                                self->drain();
                                self->check();
                                self->wait_events();
                            });
    }

    /// Reads every queued event; a watch that went away (directory deleted
    /// or moved) is added again by the poll.
    void drain()
    {
        alignas(inotify_event) char buf[4096];
        while (true) {
            ssize_t n = ::read(inotify_.native_handle(), buf, sizeof buf);
            if (n <= 0)
                return;
            for (char* p = buf; p < buf + n;) {
                auto* ev = reinterpret_cast<inotify_event*>(p);
                if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                    if (wd_ >= 0 && !(ev->mask & IN_IGNORED))
                        ::inotify_rm_watch(inotify_.native_handle(), wd_);
                    wd_ = -1;
                }
                p += sizeof(inotify_event) + ev->len;
            }
        }
    }

    void check()
    {
        auto now = exists();
        if (!now || *now == present_)
            return;
        warned_ = false;
        present_ = *now;
        if (on_change_)
            on_change_(present_);
    }

    void tick()
    {
        timer_.expires_after(poll_);
        timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec || self->closed_)
                return;
            self->add_watch();
            self->check();
            self->tick();
        });
    }
};

MaintenanceWatch::MaintenanceWatch(asio::io_context& io, std::string path, std::function<void(bool)> on_change,
                                   std::chrono::milliseconds poll)
    : impl_(std::make_shared<Impl>(io, std::move(path), std::move(on_change), poll))
{
    impl_->start();
}

MaintenanceWatch::~MaintenanceWatch()
{
    impl_->close();
}

bool MaintenanceWatch::present() const
{
    return impl_->present();
}

const std::string& MaintenanceWatch::path() const
{
    return impl_->path();
}

}  // namespace lbd::bgp
