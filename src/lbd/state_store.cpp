#include "lbd/state_store.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace lbd {

namespace {

std::runtime_error sys_error(const std::string& what)
{
    return std::runtime_error(what + ": " + std::strerror(errno));
}

void write_all(int fd, const std::string& data, const std::string& path)
{
    size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw sys_error("writing " + path);
        }
        off += size_t(n);
    }
}

}  // namespace

StateStore::StateStore(std::string dir) : dir_(std::move(dir)), path_(dir_ + "/state.json")
{
    // mkdir -p, one level at a time.
    for (size_t i = 1; i <= dir_.size(); i++) {
        if (i == dir_.size() || dir_[i] == '/') {
            const std::string part = dir_.substr(0, i);
            if (mkdir(part.c_str(), 0750) != 0 && errno != EEXIST)
                throw sys_error("creating " + part);
        }
    }
}

std::optional<nlohmann::json> StateStore::load() const
{
    std::ifstream f(path_);
    if (!f) {
        if (errno == ENOENT)
            return std::nullopt;
        throw sys_error("reading " + path_);
    }
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
    } catch (const std::exception& e) {
        throw std::runtime_error(path_ + " is not valid JSON: " + e.what());
    }
}

void StateStore::save(const nlohmann::json& state) const
{
    const std::string tmp = path_ + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        throw sys_error("creating " + tmp);
    try {
        write_all(fd, state.dump(1) + "\n", tmp);
        if (fsync(fd) != 0)
            throw sys_error("syncing " + tmp);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    if (rename(tmp.c_str(), path_.c_str()) != 0)
        throw sys_error("renaming " + tmp);
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace lbd
