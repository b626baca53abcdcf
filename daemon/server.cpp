#include "daemon/server.h"

#include "daemon/conversation.h"
#include "daemon/log.h"
#include "protocol/transport.h"
#include "protocol/wire.h"

#include <fcntl.h>
#include <poll.h>
#include <security/_pam_types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace warden {
namespace {

/* Creates the socket's directory with mode 0755, whatever the umask, so
 * non-root callers such as screen lockers can reach the socket. An
 * existing directory is left as it is. */
bool make_parent_directory(const std::string &path) {
    std::size_t slash = path.rfind('/');
    if (slash == 0 || slash == std::string::npos)
        return true;
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) == 0)
        return ::chmod(dir.c_str(), 0755) == 0;
    return errno == EEXIST;
}

/* Returns true when something accepts connections on path. */
bool socket_answers(const std::string &path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    if (!fd || path.size() >= sizeof addr.sun_path)
        return false;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return ::connect(fd.get(), reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) == 0;
}

/* Answers a connection that will not be served, so the module fails at
 * once instead of at its timeout. */
void refuse(int fd) {
    std::byte out[32];
    wire::FrameBuilder builder(wire::FrameType::kResult, out);
    builder.add_u32(wire::FieldTag::kStatus, PAM_AUTHINFO_UNAVAIL);
    (void)transport::send_frame(fd, builder.finish(), 100);
}

} // namespace

bool Server::open_listener(const Config &config, std::string &ret_error) {
    int n = sd_listen_fds(/* unset_environment= */ 1);
    if (n > 1) {
        ret_error = "systemd passed " + std::to_string(n) + " sockets, expected one";
        return false;
    }
    if (n == 1) {
        int fd = SD_LISTEN_FDS_START;
        if (sd_is_socket_unix(fd, SOCK_SEQPACKET, /* listening= */ 1, nullptr, 0) <= 0) {
            ret_error = "the socket passed by systemd is not a listening SOCK_SEQPACKET UNIX socket";
            return false;
        }
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        listener_.reset(fd);
        log::info("Using the socket passed by systemd");
        return true;
    }

    if (!make_parent_directory(config.socket)) {
        ret_error = "failed to create the directory of '" + config.socket + "': " + std::strerror(errno);
        return false;
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        ret_error = std::string("failed to create a socket: ") + std::strerror(errno);
        return false;
    }
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    if (config.socket.size() >= sizeof addr.sun_path) {
        ret_error = "socket path '" + config.socket + "' is too long";
        return false;
    }
    std::memcpy(addr.sun_path, config.socket.c_str(), config.socket.size() + 1);
    /* A socket file left by a killed daemon would make bind fail; one that
     * still answers belongs to a running wardend and is left alone. */
    struct stat st;
    if (::lstat(config.socket.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            ret_error = "'" + config.socket + "' exists and is not a socket";
            return false;
        }
        if (socket_answers(config.socket)) {
            ret_error = "another wardend is serving '" + config.socket + "'; stop it first";
            return false;
        }
        (void)::unlink(config.socket.c_str());
    }
    if (::bind(fd.get(), reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) < 0) {
        ret_error = "failed to bind '" + config.socket + "': " + std::strerror(errno);
        return false;
    }
    /* Anyone may connect: screen lockers run as the user. The caller rule
     * decides per request from SO_PEERCRED. */
    if (::chmod(config.socket.c_str(), 0666) < 0 || ::listen(fd.get(), SOMAXCONN) < 0) {
        ret_error = "failed to listen on '" + config.socket + "': " + std::strerror(errno);
        (void)::unlink(config.socket.c_str());
        return false;
    }
    if (::lstat(config.socket.c_str(), &st) == 0)
        socket_inode_ = st.st_ino;
    socket_path_ = config.socket;
    listener_ = std::move(fd);
    log::info("Listening on '{}'", config.socket);
    return true;
}

void Server::close_listener() {
    listener_.reset();
    /* Remove the socket only if it is still the one this process bound. */
    struct stat st;
    if (!socket_path_.empty() && ::lstat(socket_path_.c_str(), &st) == 0 && st.st_ino == socket_inode_)
        (void)::unlink(socket_path_.c_str());
}

void Server::serve(int stop_fd) {
    for (;;) {
        struct pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        int r = ::poll(fds, 2, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            log::error("Failed to wait for connections: {}", std::strerror(errno));
            return;
        }
        if (fds[1].revents)
            return;
        if (fds[0].revents & POLLIN) {
            /* Drain the backlog, so a burst of connects is not refused by
             * the kernel while only one is taken per wake-up. */
            for (int i = 0; i < 64 && accept_one(); i++) {
            }
        }
    }
}

bool Server::accept_one() {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log::error("Failed to accept a connection: {}", std::strerror(errno));
        if (errno == EMFILE || errno == ENFILE)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return false;
    }
    struct ucred peer = {};
    socklen_t size = sizeof peer;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &size) < 0) {
        log::error("Failed to read the credentials of a connection: {}", std::strerror(errno));
        return true;
    }
    daemon_.counters().connections++;
    start_connection(std::move(fd), peer);
    return true;
}

void Server::start_connection(UniqueFd fd, const struct ucred &peer) {
    auto config = daemon_.config();
    long peer_key = peer.uid == 0 ? -static_cast<long>(peer.pid) - 1 : static_cast<long>(peer.uid);
    {
        std::lock_guard lock(mutex_);
        if (open_fds_.size() >= config->max_connections || per_peer_[peer_key] >= config->max_connections_per_peer) {
            daemon_.counters().connections_refused++;
            log::warning("Refused a connection from pid {} uid {}: {} connections open, {} from this peer", peer.pid,
                         peer.uid, open_fds_.size(), per_peer_[peer_key]);
            if (per_peer_[peer_key] == 0)
                per_peer_.erase(peer_key);
            refuse(fd.get());
            return;
        }
        open_fds_.insert(fd.get());
        per_peer_[peer_key]++;
    }

    int raw = fd.get();
    try {
        std::thread([this, raw, peer, peer_key, fd = std::move(fd)]() mutable {
            {
                Conversation conversation(daemon_, std::move(fd), peer);
                conversation.run();
            }
            std::lock_guard lock(mutex_);
            open_fds_.erase(raw);
            if (--per_peer_[peer_key] == 0)
                per_peer_.erase(peer_key);
            idle_.notify_all();
        }).detach();
    } catch (const std::system_error &e) {
        log::error("Failed to start a thread for pid {} uid {}: {}", peer.pid, peer.uid, e.what());
        std::lock_guard lock(mutex_);
        open_fds_.erase(raw);
        if (--per_peer_[peer_key] == 0)
            per_peer_.erase(peer_key);
        /* fd was moved into the lambda that never ran; it was destroyed with it. */
    }
}

void Server::drain(int grace_ms) {
    std::unique_lock lock(mutex_);
    /* Conversations blocked on a human's answer end now; a request in the
     * middle of a hash finishes and sends its result, since only the
     * reading side is shut down. */
    for (int fd : open_fds_)
        (void)::shutdown(fd, SHUT_RD);
    idle_.wait_for(lock, std::chrono::milliseconds(grace_ms), [&] { return open_fds_.empty(); });
    if (!open_fds_.empty())
        log::warning("{} connections still open at shutdown", open_fds_.size());
}

std::size_t Server::active_connections() const {
    std::lock_guard lock(mutex_);
    return open_fds_.size();
}

} // namespace warden
