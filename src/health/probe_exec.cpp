// exec: run the command (argv, no shell) in its own process group with
// LBD_BACKEND_ADDRESS, LBD_BACKEND_PORT and LBD_VIP_NAME set; healthy iff it
// exits 0 within the timeout. At the deadline the whole group gets SIGKILL.
// The exit is awaited on a pidfd, so the loop never blocks, and the child is
// always reaped. When it exits, what is left of its group is killed too.
#include "health/probe_util.h"  // first: it includes <utility> before Asio

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>


extern char** environ;

namespace lbd::health::detail {

namespace asio = boost::asio;

namespace {

std::string exit_reason(int status)
{
    if (WIFEXITED(status))
        return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const char* abbrev = sigabbrev_np(WTERMSIG(status));
        return "killed by " + (abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(WTERMSIG(status)));
    }
    return "status " + std::to_string(status);
}

/// Spawns the command; returns the pid or -errno.
pid_t spawn(const Target& t)
{
    const auto& cmd = t.config.command;
    std::vector<char*> argv;
    argv.reserve(cmd.size() + 1);
    for (const auto& a : cmd)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    std::string vars[] = {
        "LBD_BACKEND_ADDRESS=" + t.address.str(),
        "LBD_BACKEND_PORT=" + std::to_string(t.probe_port()),
        "LBD_VIP_NAME=" + t.vip,
    };
    std::vector<char*> envp;
    for (char** e = environ; e && *e; ++e) {
        std::string_view v(*e);
        if (!v.starts_with("LBD_BACKEND_ADDRESS=") && !v.starts_with("LBD_BACKEND_PORT=") &&
            !v.starts_with("LBD_VIP_NAME="))
            envp.push_back(*e);
    }
    for (auto& v : vars)
        envp.push_back(v.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // other probes' sockets
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -rc;
}

void kill_group(pid_t pid)
{
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);  // in case it left its group
}

}  // namespace

asio::awaitable<ProbeResult> probe_exec(const Target& t, ProbeControl& ctl)
{
    if (t.config.command.empty() || t.config.command[0].empty())
        co_return ProbeResult{false, "no command"};
    pid_t pid = spawn(t);
    if (pid < 0)
        co_return ProbeResult{false, "cannot run " + t.config.command[0] + ": " + std::strerror(-pid)};
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
        int err = errno;
        kill_group(pid);
        ::waitpid(pid, nullptr, 0);  // SIGKILLed: returns at once
        co_return ProbeResult{false, std::string("pidfd_open: ") + std::strerror(err)};
    }
    asio::posix::stream_descriptor exited(co_await asio::this_coro::executor, pidfd);
    auto guard = ctl.on_stop([pid] { kill_group(pid); });
    boost::system::error_code ec;
    for (;;) {
        co_await exited.async_wait(asio::posix::descriptor_base::wait_read,
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            kill_group(pid);
            ::waitpid(pid, nullptr, 0);
            co_return ProbeResult{false, io_reason(ec, ctl, t)};
        }
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
            co_return ProbeResult{false, std::string("waitid: ") + std::strerror(errno)};
        if (info.si_pid != pid)
            continue;  // not exited yet
        kill_group(pid);  // the leader is a zombie, so its group id is still ours
        int status = 0;
        if (::waitpid(pid, &status, 0) != pid)
            co_return ProbeResult{false, std::string("waitpid: ") + std::strerror(errno)};
        co_return ProbeResult{WIFEXITED(status) && WEXITSTATUS(status) == 0, exit_reason(status)};
    }
}

}  // namespace lbd::health::detail
