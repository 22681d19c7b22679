// Watches the maintenance file: inotify on its directory for a prompt
// reaction, plus a poll (every second by default) that also covers a
// directory that does not exist yet or is replaced.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace lbd::bgp {

class MaintenanceWatch {
public:
    /// Starts watching `path` at once; `on_change(present)` runs on `io` at
    /// every change, not for the initial state (read present() for that).
    /// Any directory entry at `path` counts as present. An empty path is
    /// never present.
    MaintenanceWatch(boost::asio::io_context& io, std::string path, std::function<void(bool present)> on_change,
                     std::chrono::milliseconds poll = std::chrono::seconds(1));
    ~MaintenanceWatch();
    MaintenanceWatch(const MaintenanceWatch&) = delete;
    MaintenanceWatch& operator=(const MaintenanceWatch&) = delete;

    bool present() const;
    const std::string& path() const;

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace lbd::bgp
