// The control socket: a Unix stream socket speaking docs/control-protocol.md
// (one JSON request per line, one JSON response per line) on lbd's io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace lbd {

class ControlServer {
public:
    using Handler = std::function<nlohmann::json(const nlohmann::json&)>;

    /// Binds `path` (replacing a stale socket file), mode 0660, group `group`
    /// if not empty. Throws with a clear message on failure.
    ControlServer(boost::asio::io_context& io, const std::string& path, const std::string& group,
                  Handler handler);
    ~ControlServer();
    void stop();

private:
    boost::asio::local::stream_protocol::acceptor acceptor_;
    std::string path_;
    Handler handler_;
};

}  // namespace lbd
