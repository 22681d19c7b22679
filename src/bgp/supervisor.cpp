#include "bgp/supervisor.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "bgp/exabgp.h"

extern char** environ;

namespace lbd::bgp {

namespace asio = boost::asio;
using stream_protocol = asio::local::stream_protocol;

namespace {

constexpr auto kKillAfter = std::chrono::seconds(3);  // SIGTERM, then SIGKILL

std::string errno_text(int e)
{
    return std::strerror(e);
}

std::runtime_error sys_error(const std::string& what)
{
    return std::runtime_error(what + ": " + errno_text(errno));
}

/// "exited with status 1", "killed by signal 9".
std::string exit_text(int status)
{
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "killed by signal " + std::to_string(WTERMSIG(status));
    return "ended (status " + std::to_string(status) + ")";
}

/// The parent of `pid` from /proc, 0 if unknown.
pid_t parent_of(pid_t pid)
{
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(f, stat);
    auto paren = stat.rfind(')');  // the command name may hold spaces and parens
    if (paren == stat.npos)
        return 0;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &ppid) != 2)
        return 0;
    return ppid;
}

/// The caller's environment without exabgp settings, then ExaBGP's own.
std::vector<std::string> child_environment()
{
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view v(*e);
        if (v.size() >= 7 && strncasecmp(v.data(), "exabgp", 6) == 0 && (v[6] == '.' || v[6] == '_'))
            continue;
        env.emplace_back(v);
    }
    for (auto& v : exabgp::environment())
        env.push_back(std::move(v));
    return env;
}

struct Spawned {
    pid_t pid = -1;
    int pidfd = -1;
    int out = -1;  ///< read ends of the child's stdout and stderr
    int err = -1;
};

/// Starts argv (no shell, no PATH lookup). The child gets its own process
/// group (a terminal's Ctrl-C reaches lbd, which then withdraws and stops
/// ExaBGP in order), SIGTERM when the thread that started it dies, stdin from
/// /dev/null and stdout/stderr into pipes. Throws when exec fails.
Spawned spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env)
{
    std::vector<char*> av, ev;
    for (const auto& a : argv)
        av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    for (const auto& e : env)
        ev.push_back(const_cast<char*>(e.c_str()));
    ev.push_back(nullptr);

    int out[2], err[2], report[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        throw sys_error("pipe");
    if (::pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]), ::close(out[1]);
        throw sys_error("pipe");
    }
    if (::pipe2(report, O_CLOEXEC) != 0) {
        ::close(out[0]), ::close(out[1]), ::close(err[0]), ::close(err[1]);
        throw sys_error("pipe");
    }
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = ::getpid();
    pid_t pid = devnull < 0 ? -1 : ::fork();
    int start_errno = errno;  // of open or fork, when pid < 0
    if (pid == 0) {
        // Async-signal-safe calls only from here to execve.
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent)
            ::_exit(127);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; ++s)
            ::sigaction(s, &dfl, nullptr);
        if (::dup2(devnull, STDIN_FILENO) < 0 || ::dup2(out[1], STDOUT_FILENO) < 0 ||
            ::dup2(err[1], STDERR_FILENO) < 0)
            ::_exit(127);
        ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);  // nothing else of lbd's leaks
        ::execve(av[0], av.data(), ev.data());
        int e = errno;
        [[maybe_unused]] auto n = ::write(report[1], &e, sizeof e);
        ::_exit(127);
    }
    ::close(out[1]), ::close(err[1]), ::close(report[1]);
    if (devnull >= 0)
        ::close(devnull);
    auto fail = [&](const std::string& what) {
        ::close(out[0]), ::close(err[0]);
        return std::runtime_error(what);
    };
    if (pid < 0) {
        ::close(report[0]);
        throw fail("cannot start " + argv[0] + ": " + errno_text(start_errno));
    }
    int exec_errno = 0;
    ssize_t n;
    do
        n = ::read(report[0], &exec_errno, sizeof exec_errno);  // EOF once execve succeeded
    while (n < 0 && errno == EINTR);
    ::close(report[0]);
    if (n == sizeof exec_errno) {
        ::waitpid(pid, nullptr, 0);
        throw fail("cannot execute " + argv[0] + ": " + errno_text(exec_errno));
    }
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
        int e = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw fail("pidfd_open: " + errno_text(e));
    }
    return {pid, pidfd, out[0], err[0]};
}

/// Writes `text` to `path` (mode 0600) through a temporary file and rename.
void write_file(const std::string& path, const std::string& text)
{
    auto tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw sys_error("cannot write " + tmp);
    size_t done = 0;
    while (done < text.size()) {
        ssize_t w = ::write(fd, text.data() + done, text.size() - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            auto e = sys_error("cannot write " + tmp);
            ::close(fd);
            throw e;
        }
        done += static_cast<size_t>(w);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        throw sys_error("cannot rename " + tmp);
}

/// The relay's connection: commands out, events in.
struct Conn {
    explicit Conn(asio::io_context& io) : sock(io) {}
    stream_protocol::socket sock;
    asio::streambuf in;
    std::deque<std::string> out;
    bool writing = false;
};

/// One ExaBGP process.
struct Proc {
    explicit Proc(asio::io_context& io) : pidfd(io), out(io), err(io) {}
    pid_t pid = -1;
    asio::posix::stream_descriptor pidfd, out, err;
    asio::streambuf out_buf, err_buf;
    TimePoint started{};
    bool had_api = false;  ///< a relay of this process connected before
};

struct NeighborState {
    NeighborStatus status;
    std::set<Prefix> routes;
};

}  // namespace

class BgpSpeaker::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(asio::io_context& io, BgpConfig cfg, SpeakerOptions opts)
        : io_(io),
          cfg_(std::move(cfg)),
          opts_(std::move(opts)),
          policy_(cfg_),
          acceptor_(io),
          restart_timer_(io),
          hold_timer_(io),
          stop_timer_(io),
          kill_timer_(io),
          accept_timer_(io),
          backoff_(opts_.backoff_min)
    {
        sync_neighbors();
    }

    void start()
    {
        if (started_)
            return;
        make_runtime_dir();
        sock_path_ = dir_ + "/api.sock";
        conf_path_ = dir_ + "/exabgp.conf";
        write_config();  // also checks the relay words
        open_socket();
        started_ = true;
        accept();
        launch();
    }

    void update(PolicyInputs in)
    {
        in.running = in.running && !stopping_;
        inputs_ = std::move(in);
        refresh();
    }

    void set_maintenance(bool present)
    {
        if (inputs_.maintenance == present)
            return;
        spdlog::info("bgp: maintenance file {} {}", cfg_.maintenance_file, present ? "appeared" : "is gone");
        inputs_.maintenance = present;
        refresh();
    }

    void reconfigure(BgpConfig cfg)
    {
        if (stopping_)
            return;
        bool restart = !cfg_.same_sessions(cfg);
        cfg_ = std::move(cfg);
        policy_.set_config(cfg_);
        sync_neighbors();
        if (restart && started_) {
            spdlog::info("bgp: sessions changed, restarting ExaBGP");
            write_config();
            if (proc_) {
                restart_now_ = true;
                ::kill(proc_->pid, SIGTERM);
            } else {
                restart_timer_.cancel();
                backoff_ = opts_.backoff_min;
                launch();
            }
        }
        refresh();
    }

    BgpStatus status()
    {
        refresh();
        BgpStatus s;
        s.exabgp_running = proc_ != nullptr;
        s.exabgp_pid = proc_ ? proc_->pid : 0;
        s.exabgp_starts = starts_;
        s.last_exit = last_exit_;
        s.next_start = next_start_;
        s.api_connected = conn_ != nullptr;
        s.maintenance = inputs_.maintenance;
        s.stopping = stopping_;
        for (const auto& [addr, n] : neighbors_) {
            auto ns = n.status;
            ns.routes.assign(n.routes.begin(), n.routes.end());
            s.neighbors.push_back(std::move(ns));
        }
        for (auto& p : policy_.prefixes()) {
            PrefixStatus ps{std::move(p), {}};
            for (const auto& [addr, n] : neighbors_)
                if (n.status.state == "established" && n.routes.contains(ps.state.prefix))
                    ps.sent_to.push_back(addr);
            s.prefixes.push_back(std::move(ps));
        }
        return s;
    }

    void stop(std::function<void()> done)
    {
        if (done)
            stop_callbacks_.push_back(std::move(done));
        if (finished_) {
            finish_stop();
            return;
        }
        if (stopping_)
            return;
        stopping_ = true;
        inputs_.running = false;
        restart_timer_.cancel();
        next_start_.reset();
        if (!proc_) {
            refresh();
            finish_stop();
            return;
        }
        spdlog::info("bgp: stopping: withdrawing all prefixes");
        stop_timer_.expires_after(opts_.stop_timeout);
        stop_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec || self->closed_ || self->terminating_)
                return;
            spdlog::warn("bgp: withdrawals not confirmed by ExaBGP within {} ms; stopping it anyway",
                         self->opts_.stop_timeout.count());
            self->terminate_child();
        });
        refresh();  // sends the withdrawals; check_stop() ends the wait once they are out
    }

    /// Synchronous teardown for the destructor: no withdrawal.
    void close_now()
    {
        if (closed_)
            return;
        closed_ = true;
        boost::system::error_code ec;
        restart_timer_.cancel();
        hold_timer_.cancel();
        stop_timer_.cancel();
        kill_timer_.cancel();
        accept_timer_.cancel();
        acceptor_.close(ec);
        if (conn_)
            conn_->sock.close(ec);
        conn_.reset();
        if (proc_) {
            pid_t pid = proc_->pid;
            ::kill(pid, SIGTERM);
            int status = 0;
            bool reaped = false;
            for (int i = 0; i < 60 && !reaped; ++i) {  // up to 3 s
                reaped = ::waitpid(pid, &status, WNOHANG) == pid;
                if (!reaped)
                    ::usleep(50'000);
            }
            if (!reaped) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &status, 0);
            }
            proc_->pidfd.close(ec);
            proc_->out.close(ec);
            proc_->err.close(ec);
            proc_.reset();
        }
        remove_runtime_files();
    }

private:
    asio::io_context& io_;
    BgpConfig cfg_;
    SpeakerOptions opts_;
    Policy policy_;
    PolicyInputs inputs_;
    std::map<IpAddr, NeighborState> neighbors_;

    std::string dir_, sock_path_, conf_path_;
    bool own_dir_ = false;
    bool started_ = false;
    stream_protocol::acceptor acceptor_;
    std::shared_ptr<Conn> conn_;
    std::deque<std::string> in_flight_;  ///< commands sent, not yet acknowledged

    std::shared_ptr<Proc> proc_;
    uint64_t starts_ = 0;
    std::string last_exit_;
    std::optional<TimePoint> next_start_;
    asio::steady_timer restart_timer_, hold_timer_, stop_timer_, kill_timer_, accept_timer_;
    std::chrono::milliseconds backoff_;
    bool restart_now_ = false;  ///< reconfigure(): start the next ExaBGP without delay

    bool stopping_ = false;
    bool terminating_ = false;
    bool finished_ = false;
    bool closed_ = false;
    std::vector<std::function<void()>> stop_callbacks_;

    // ------------------------------------------------------------ set-up

    void make_runtime_dir()
    {
        if (opts_.runtime_dir.empty()) {
            const char* tmp = std::getenv("TMPDIR");
            std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/lbd-bgp.XXXXXX";
            if (!::mkdtemp(tmpl.data()))
                throw sys_error("cannot create a runtime directory under " + tmpl);
            dir_ = tmpl;
            own_dir_ = true;
            return;
        }
        dir_ = opts_.runtime_dir;
        if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
            throw sys_error("cannot create " + dir_);
        struct stat st {};
        if (::lstat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw std::runtime_error(dir_ + " is not a directory");
        if (st.st_uid != ::geteuid())
            throw std::runtime_error(dir_ + " belongs to another user");
        if (::chmod(dir_.c_str(), 0700) != 0)
            throw sys_error("cannot chmod " + dir_);
    }

    void open_socket()
    {
        if (sock_path_.size() >= sizeof(sockaddr_un::sun_path))
            throw std::runtime_error("socket path " + sock_path_ + " is too long");
        ::unlink(sock_path_.c_str());
        acceptor_.open(stream_protocol());
        acceptor_.bind(stream_protocol::endpoint(sock_path_));
        ::chmod(sock_path_.c_str(), 0600);
        acceptor_.listen(4);
    }

    void write_config()
    {
        auto run = opts_.relay;
        run.push_back(sock_path_);
        write_file(conf_path_, exabgp::config_text(cfg_, run));
    }

    void remove_runtime_files()
    {
        if (dir_.empty())
            return;
        ::unlink(sock_path_.c_str());
        ::unlink(conf_path_.c_str());
        ::unlink((conf_path_ + ".tmp").c_str());
        if (own_dir_)
            ::rmdir(dir_.c_str());
        dir_.clear();
    }

    void sync_neighbors()
    {
        std::map<IpAddr, NeighborState> next;
        for (const auto& nb : cfg_.neighbors) {
            auto& n = next[nb.address];
            if (auto it = neighbors_.find(nb.address); it != neighbors_.end())
                n = std::move(it->second);
            n.status.address = nb.address;
            n.status.peer_as = nb.peer_as;
        }
        neighbors_ = std::move(next);
    }

    // ------------------------------------------------------------ ExaBGP process

    void launch()
    {
        next_start_.reset();
        if (closed_ || stopping_ || proc_)
            return;
        std::vector<std::string> argv{cfg_.exabgp, conf_path_};
        Spawned sp;
        try {
            sp = spawn(argv, child_environment());
        } catch (const std::exception& e) {
            last_exit_ = e.what();
            spdlog::error("bgp: {}", e.what());
            schedule_restart();
            return;
        }
        ++starts_;
        auto p = std::make_shared<Proc>(io_);
        p->pid = sp.pid;
        p->started = Clock::now();
        p->pidfd.assign(sp.pidfd);
        p->out.assign(sp.out);
        p->err.assign(sp.err);
        proc_ = p;
        spdlog::info("bgp: started ExaBGP (pid {}): {} {}", p->pid, cfg_.exabgp, conf_path_);
        read_output(p, p->out, p->out_buf, false);
        read_output(p, p->err, p->err_buf, true);
        wait_exit(p);
    }

    void read_output(std::shared_ptr<Proc> p, asio::posix::stream_descriptor& d, asio::streambuf& buf, bool is_err)
    {
        asio::async_read_until(d, buf, '\n',
                               [self = shared_from_this(), p, &d, &buf, is_err](boost::system::error_code ec, size_t n) {
                                   if (ec)
                                       return;
                                   std::string line(asio::buffers_begin(buf.data()),
                                                    asio::buffers_begin(buf.data()) + static_cast<long>(n) - 1);
                                   buf.consume(n);
                                   if (!line.empty()) {
                                       if (is_err)
                                           spdlog::warn("exabgp: {}", line);
                                       else
                                           spdlog::info("exabgp: {}", line);
                                   }
                                   self->read_output(p, d, buf, is_err);
                               });
    }

    void wait_exit(std::shared_ptr<Proc> p)
    {
        p->pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                            [self = shared_from_this(), p](boost::system::error_code ec) {
                                if (ec || self->closed_ || self->proc_ != p)
                                    return;
                                int status = 0;
                                pid_t r = ::waitpid(p->pid, &status, WNOHANG);
                                if (r == 0) {
                                    self->wait_exit(p);
                                    return;
                                }
                                self->on_exit(p, r == p->pid ? exit_text(status) : "lost (waitpid failed)");
                            });
    }

    void on_exit(const std::shared_ptr<Proc>& p, const std::string& how)
    {
        auto ran = Clock::now() - p->started;
        last_exit_ = "pid " + std::to_string(p->pid) + " " + how + " after " + format_seconds(ran);
        bool expected = stopping_ || restart_now_;
        spdlog::log(expected ? spdlog::level::info : spdlog::level::warn, "bgp: ExaBGP {}", last_exit_);
        boost::system::error_code ignored;
        p->pidfd.close(ignored);  // its output pipes drain to EOF on their own
        proc_.reset();
        kill_timer_.cancel();
        drop_api();
        for (auto& [addr, n] : neighbors_) {
            if (n.status.state != "idle" && n.status.state != "down") {
                n.status.state = "down";
                n.status.since = Clock::now();
                n.status.last_error = "ExaBGP " + how;
            }
            n.routes.clear();
        }
        if (stopping_) {
            finish_stop();
            return;
        }
        if (restart_now_) {
            restart_now_ = false;
            backoff_ = opts_.backoff_min;
            launch();
            return;
        }
        if (ran >= opts_.stable_after)
            backoff_ = opts_.backoff_min;
        schedule_restart();
    }

    void schedule_restart()
    {
        if (closed_ || stopping_)
            return;
        auto delay = backoff_;
        backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
        next_start_ = Clock::now() + delay;
        spdlog::info("bgp: starting ExaBGP again in {} ms", delay.count());
        restart_timer_.expires_after(delay);
        restart_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec && !self->closed_)
                self->launch();
        });
    }

    void terminate_child()
    {
        if (terminating_)
            return;
        terminating_ = true;
        stop_timer_.cancel();
        if (!proc_) {
            finish_stop();
            return;
        }
        spdlog::info("bgp: stopping ExaBGP (pid {})", proc_->pid);
        ::kill(proc_->pid, SIGTERM);
        kill_timer_.expires_after(kKillAfter);
        kill_timer_.async_wait([self = shared_from_this(), p = proc_](boost::system::error_code ec) {
            if (ec || self->proc_ != p)
                return;
            spdlog::warn("bgp: ExaBGP (pid {}) ignored SIGTERM; killing it", p->pid);
            ::kill(p->pid, SIGKILL);
        });
    }

    void finish_stop()
    {
        if (!finished_) {
            finished_ = true;
            boost::system::error_code ec;
            stop_timer_.cancel();
            kill_timer_.cancel();
            hold_timer_.cancel();
            restart_timer_.cancel();
            accept_timer_.cancel();
            acceptor_.close(ec);
            drop_api();
            remove_runtime_files();
            spdlog::info("bgp: stopped");
        }
        auto callbacks = std::move(stop_callbacks_);
        stop_callbacks_.clear();
        for (auto& cb : callbacks)
            asio::post(io_, std::move(cb));
    }

    void check_stop()
    {
        if (!stopping_ || terminating_ || finished_)
            return;
        if (!in_flight_.empty())
            return;
        for (const auto& [addr, n] : neighbors_)
            if (n.status.state == "established" && !n.routes.empty())
                return;
        spdlog::info("bgp: withdrawals sent");
        terminate_child();
    }

    // ------------------------------------------------------------ API connection

    void accept()
    {
        auto c = std::make_shared<Conn>(io_);
        acceptor_.async_accept(c->sock, [self = shared_from_this(), c](boost::system::error_code ec) {
            if (self->closed_ || self->finished_ || ec == asio::error::operation_aborted)
                return;
            if (!ec) {
                self->adopt(c);
                self->accept();
                return;
            }
            spdlog::warn("bgp: accept on {}: {}", self->sock_path_, ec.message());
            self->accept_timer_.expires_after(std::chrono::milliseconds(100));  // e.g. out of descriptors
            self->accept_timer_.async_wait([self](boost::system::error_code e) {
                if (!e && !self->closed_ && !self->finished_)
                    self->accept();
            });
        });
    }

    /// A relay connected: check it is our ExaBGP's child, then bring that
    /// ExaBGP to the current state.
    void adopt(const std::shared_ptr<Conn>& c)
    {
        ucred cred{};
        socklen_t len = sizeof cred;
        boost::system::error_code ec;
        pid_t ppid = ::getsockopt(c->sock.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
                         ? parent_of(cred.pid)
                         : 0;
        if (!proc_ || ppid != proc_->pid) {
            spdlog::warn("bgp: API connection from pid {} refused: not started by our ExaBGP", cred.pid);
            c->sock.close(ec);
            return;
        }
        drop_api();
        conn_ = c;
        read_events(c);
        bool again = proc_->had_api;
        proc_->had_api = true;
        auto state = policy_.snapshot(again);
        spdlog::info("bgp: ExaBGP API connected (relay pid {}); sending {} route{}", cred.pid, state.size(),
                     state.size() == 1 ? "" : "s");
        for (const auto& change : state)
            send(exabgp::commands(cfg_, change));
        // Neighbors already up (a relay that ExaBGP restarted): end-of-RIB was sent then.
    }

    void drop_api()
    {
        if (conn_) {
            boost::system::error_code ec;
            conn_->sock.close(ec);
            conn_.reset();
        }
        in_flight_.clear();
    }

    void read_events(std::shared_ptr<Conn> c)
    {
        asio::async_read_until(c->sock, c->in, '\n', [self = shared_from_this(), c](boost::system::error_code ec, size_t n) {
            if (self->conn_ != c)
                return;
            if (ec) {
                spdlog::log(self->stopping_ ? spdlog::level::info : spdlog::level::warn,
                            "bgp: ExaBGP API connection closed ({})", ec == asio::error::eof ? "eof" : ec.message());
                self->drop_api();
                self->check_stop();
                return;
            }
            std::string line(asio::buffers_begin(c->in.data()), asio::buffers_begin(c->in.data()) + static_cast<long>(n) - 1);
            c->in.consume(n);
            self->on_message(line);
            self->read_events(c);
        });
    }

    void send(const std::vector<std::string>& lines)
    {
        if (!conn_)
            return;  // sent as a whole state once a relay connects
        for (const auto& l : lines) {
            spdlog::debug("bgp: -> {}", l);
            conn_->out.push_back(l + "\n");
            in_flight_.push_back(l);
        }
        write_next(conn_);
    }

    void write_next(std::shared_ptr<Conn> c)
    {
        if (c->writing || c->out.empty())
            return;
        c->writing = true;
        asio::async_write(c->sock, asio::buffer(c->out.front()), [self = shared_from_this(), c](boost::system::error_code ec, size_t) {
            c->writing = false;
            if (ec)
                return;  // the read side notices the closed connection
            c->out.pop_front();
            self->write_next(c);
        });
    }

    void on_message(const std::string& line)
    {
        using Kind = exabgp::Message::Kind;
        auto m = exabgp::parse(line);
        if (m.kind == Kind::Done || m.kind == Kind::Error) {
            std::string cmd;
            if (!in_flight_.empty()) {
                cmd = std::move(in_flight_.front());
                in_flight_.pop_front();
            }
            if (m.kind == Kind::Error)
                spdlog::warn("bgp: ExaBGP refused: {}", cmd.empty() ? "(unknown command)" : cmd);
            check_stop();
            return;
        }
        if (m.kind == Kind::Shutdown) {
            spdlog::info("bgp: ExaBGP is shutting down");
            return;
        }
        auto it = neighbors_.find(m.neighbor);
        if (it == neighbors_.end() || m.kind == Kind::Other)
            return;
        auto& n = it->second;
        auto now = Clock::now();
        switch (m.kind) {
        case Kind::Connected:
            n.status.state = "connected";
            n.status.since = now;
            break;
        case Kind::Up:
            n.status.state = "established";
            n.status.since = now;
            n.routes.clear();
            spdlog::info("bgp: neighbor {} established", m.neighbor.str());
            end_of_rib(m.neighbor);
            break;
        case Kind::Down:
            n.status.state = "down";
            n.status.since = now;
            n.status.last_error = m.text;
            n.routes.clear();
            spdlog::log(stopping_ ? spdlog::level::info : spdlog::level::warn, "bgp: neighbor {} down: {}",
                        m.neighbor.str(), m.text);
            break;
        case Kind::SentAnnounced:
            n.routes.insert(m.prefix);
            break;
        case Kind::SentWithdrawn:
            n.routes.erase(m.prefix);
            break;
        default:
            break;
        }
        check_stop();
    }

    /// With graceful restart ExaBGP leaves end-of-RIB to lbd (manual-eor):
    /// it goes out after the routes already queued, so a restarted speaker
    /// never tells the router "that was all" before re-announcing.
    void end_of_rib(const IpAddr& neighbor)
    {
        if (!cfg_.graceful_restart)
            return;
        for (const auto& nb : cfg_.neighbors)
            if (nb.address == neighbor)
                for (Family f : {Family::V4, Family::V6})
                    if (nb.carries(f))
                        send({exabgp::eor(neighbor, f)});
    }

    // ------------------------------------------------------------ policy

    void refresh()
    {
        if (closed_)
            return;
        auto changes = policy_.evaluate(inputs_, Clock::now());
        for (const auto& c : changes) {
            if (c.action == Action::Announce)
                spdlog::info("bgp: announce {} ({}): {}", c.prefix.str(), c.attributes.str(), c.reason);
            else
                spdlog::info("bgp: withdraw {}: {}", c.prefix.str(), c.reason);
            send(exabgp::commands(cfg_, c));
        }
        if (auto d = policy_.next_deadline()) {
            hold_timer_.expires_at(*d);
            hold_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
                if (!ec)
                    self->refresh();
            });
        } else {
            hold_timer_.cancel();
        }
        check_stop();
    }
};

BgpSpeaker::BgpSpeaker(asio::io_context& io, BgpConfig cfg, SpeakerOptions opts)
    : impl_(std::make_shared<Impl>(io, std::move(cfg), std::move(opts)))
{
}

BgpSpeaker::~BgpSpeaker()
{
    impl_->close_now();
}

void BgpSpeaker::start()
{
    impl_->start();
}

void BgpSpeaker::update(PolicyInputs in)
{
    impl_->update(std::move(in));
}

void BgpSpeaker::set_maintenance(bool present)
{
    impl_->set_maintenance(present);
}

void BgpSpeaker::reconfigure(BgpConfig cfg)
{
    impl_->reconfigure(std::move(cfg));
}

BgpStatus BgpSpeaker::status()
{
    return impl_->status();
}

void BgpSpeaker::stop(std::function<void()> done)
{
    impl_->stop(std::move(done));
}

std::string format_status(const BgpStatus& s, TimePoint now)
{
    std::string out = "exabgp: ";
    if (s.exabgp_running)
        out += "running, pid " + std::to_string(s.exabgp_pid);
    else if (s.next_start)
        out += "restarting in " + format_seconds(*s.next_start - now);
    else
        out += "not running";
    out += ", started " + std::to_string(s.exabgp_starts) + " time" + (s.exabgp_starts == 1 ? "" : "s");
    out += s.api_connected ? ", api connected" : ", api not connected";
    if (!s.last_exit.empty())
        out += ", last exit: " + s.last_exit;
    if (s.maintenance)
        out += ", maintenance";
    if (s.stopping)
        out += ", stopping";
    out += "\n";
    for (const auto& n : s.neighbors) {
        out += "neighbor " + n.address.str() + " as " + std::to_string(n.peer_as) + ": " + n.state;
        if (n.since != TimePoint{})
            out += " for " + format_seconds(now - n.since);
        out += ", " + std::to_string(n.routes.size()) + " route" + (n.routes.size() == 1 ? "" : "s");
        if (!n.last_error.empty())
            out += ", last down: " + n.last_error;
        out += "\n";
    }
    for (const auto& p : s.prefixes) {
        const auto& st = p.state;
        out += "prefix " + st.prefix.str() + " [";
        for (size_t i = 0; i < st.vips.size(); ++i)
            out += (i ? " " : "") + st.vips[i];
        out += "]: ";
        out += st.action == Action::Announce ? "announce" : "withdraw";
        out += " (" + st.reason + ")";
        if (st.action == Action::Announce)
            out += " " + st.attributes.str();
        out += ", sent to";
        if (p.sent_to.empty())
            out += " none";
        for (const auto& a : p.sent_to)
            out += " " + a.str();
        out += "\n";
    }
    return out;
}

}  // namespace lbd::bgp
