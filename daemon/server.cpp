#include "daemon/server.h"

#include "daemon/conversation.h"
#include "daemon/log.h"
#include "protocol/limits.h"
#include "protocol/transport.h"
#include "protocol/wire.h"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <security/_pam_types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <thread>

namespace warden {
namespace {

/* Connections that may wait without a thread. Each costs a descriptor
 * and a few hundred bytes; beyond this, new ones stay in the kernel's
 * listen backlog. */
constexpr std::size_t kMaxWaiting = 4096;
/* Connections that may wait for a slot for one source, so that one
 * source cannot fill the waiting list and keep new connections out. */
constexpr std::size_t kMaxWaitingPerSource = kMaxWaiting / 8;
/* Descriptors kept free for the store, the journal, the bus and logs. */
constexpr std::size_t kReservedFds = 128;
/* Shortest time between two lines about refused connections. */
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);

/* Raises the soft limit on open files to the hard one, so waiting
 * connections can use it; systemd starts services with a soft limit of
 * 1024. Returns the limit in force. */
std::size_t raise_open_file_limit() {
    struct rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) < 0)
        return 1024;
    if (limit.rlim_cur < limit.rlim_max) {
        struct rlimit raised = limit;
        raised.rlim_cur = std::min<rlim_t>(limit.rlim_max, 1 << 16);
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
            limit = raised;
    }
    return limit.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 16 : static_cast<std::size_t>(limit.rlim_cur);
}

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

/* Reads and wipes a request that will not be served. Closing a socket
 * with a message still unread resets it, and the client would see the
 * reset instead of the refusal. */
void discard_request(int fd) {
    std::byte request[kMaxFrameSize];
    ssize_t n = ::recv(fd, request, sizeof request, MSG_DONTWAIT);
    if (n > 0)
        sodium_memzero(request, static_cast<std::size_t>(n));
}

/* Lowers the count of key in counts, and removes the key at zero. */
template <typename Key>
void count_down(std::map<Key, unsigned> &counts, const Key &key) {
    auto it = counts.find(key);
    if (it != counts.end() && --it->second == 0)
        counts.erase(it);
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
        /* The serving loop accepts until the backlog is empty, which
         * needs a non-blocking socket; systemd passes a blocking one. */
        int flags = ::fcntl(fd, F_GETFL);
        if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
            ret_error = std::string("failed to make the socket passed by systemd non-blocking: ") +
                        std::strerror(errno);
            return false;
        }
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
    /* Set up on the first call; a reload returns here with the same
     * waiting connections. */
    if (!epoll_) {
        epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
        wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        struct epoll_event stop_event = {};
        stop_event.events = EPOLLIN;
        stop_event.data.fd = stop_fd;
        struct epoll_event wake_event = {};
        wake_event.events = EPOLLIN;
        wake_event.data.fd = wake_.get();
        if (!epoll_ || !wake_ || ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, stop_fd, &stop_event) < 0 ||
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &wake_event) < 0) {
            log::error("Failed to set up the connection loop: {}", std::strerror(errno));
            epoll_.reset();
            return;
        }
        open_file_limit_ = raise_open_file_limit();
        watch_listener(true);
    }

    struct epoll_event events[64];
    for (;;) {
        /* Wake at least every 100 ms to apply the deadlines of waiting
         * connections. */
        int n = ::epoll_wait(epoll_.get(), events, 64, unread_.empty() && ready_count_ == 0 ? -1 : 100);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log::error("Failed to wait for connections: {}", std::strerror(errno));
            return;
        }
        bool stop = false;
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == stop_fd) {
                stop = true;
            } else if (fd == wake_.get()) {
                std::uint64_t ended;
                (void)!::read(wake_.get(), &ended, sizeof ended);
            } else if (fd == listener_.get()) {
                /* Drain the backlog, so a burst of connects is not refused
                 * by the kernel while only one is taken per wake-up. */
                for (int j = 0; j < 64 && listening_ && accept_one(); j++) {
                }
            } else {
                classify(fd);
            }
        }
        if (stop)
            return;
        expire(std::chrono::steady_clock::now());
        admit();
        watch_listener(unread_.size() + ready_count_ < waiting_limit());
    }
}

void Server::close_waiting() {
    /* Connections that never got a thread: those with a request get
     * PAM_AUTHINFO_UNAVAIL, the others are closed. */
    for (auto &[fd, waiting] : unread_)
        forget_waiting(waiting);
    unread_.clear();
    for (auto &[key, line] : ready_) {
        for (Waiting &waiting : line) {
            discard_request(waiting.fd.get());
            refuse(waiting.fd.get());
            forget_waiting(waiting);
        }
    }
    ready_.clear();
    turns_.clear();
    ready_count_ = 0;
}

std::size_t Server::waiting_limit() const {
    std::size_t slots = daemon_.config()->max_connections;
    std::size_t spare = open_file_limit_ > slots + kReservedFds ? open_file_limit_ - slots - kReservedFds : 0;
    return std::max<std::size_t>(1, std::min(kMaxWaiting, spare));
}

void Server::watch_listener(bool on) {
    if (on == listening_)
        return;
    struct epoll_event event = {};
    event.events = EPOLLIN;
    event.data.fd = listener_.get();
    if (::epoll_ctl(epoll_.get(), on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listener_.get(), &event) < 0) {
        log::error("Failed to {} the listening socket: {}", on ? "watch" : "pause", std::strerror(errno));
        return;
    }
    listening_ = on;
    if (!on)
        log::warning("{} connections wait for a slot; new ones stay in the listen backlog until some end",
                     unread_.size() + ready_count_);
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

    auto config = daemon_.config();
    long peer_key = peer.uid == 0 ? -static_cast<long>(peer.pid) - 1 : static_cast<long>(peer.uid);
    {
        std::lock_guard lock(mutex_);
        unsigned &from_peer = per_peer_[peer_key];
        if (from_peer >= config->max_connections_per_peer) {
            daemon_.counters().connections_refused++;
            /* One line per interval at most: a peer that reconnects in a
             * loop must not fill the disk with warnings. */
            auto now = std::chrono::steady_clock::now();
            bool due = refusal_logged_at_ == std::chrono::steady_clock::time_point{} ||
                       now - refusal_logged_at_ >= kRefusalLogInterval;
            if (due) {
                log::warning("Refused a connection from pid {} uid {}: {} connections open, {} from this peer{}",
                             peer.pid, peer.uid, open_fds_.size() + unread_.size() + ready_count_, from_peer,
                             refusals_unlogged_ > 0
                                     ? fmt::format("; {} more refused since the last such line", refusals_unlogged_)
                                     : std::string());
                refusal_logged_at_ = now;
                refusals_unlogged_ = 0;
            } else {
                refusals_unlogged_++;
            }
            if (from_peer == 0)
                per_peer_.erase(peer_key);
            refuse(fd.get());
            return true;
        }
        from_peer++;
    }

    struct epoll_event event = {};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.fd = fd.get();
    Waiting waiting{std::move(fd), peer, peer_key, std::chrono::steady_clock::now(), {}};
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, waiting.fd.get(), &event) < 0) {
        log::error("Failed to watch a connection from pid {} uid {}: {}", peer.pid, peer.uid, std::strerror(errno));
        forget_waiting(waiting);
        return true;
    }
    int raw = waiting.fd.get();
    unread_.emplace(raw, std::move(waiting));
    return true;
}

void Server::classify(int fd) {
    auto it = unread_.find(fd);
    if (it == unread_.end())
        return;
    Waiting &waiting = it->second;

    /* A look at the request, which may carry a password: the copy is
     * wiped at once, and only the remote host and caller are kept. */
    std::byte peeked[kMaxFrameSize];
    ssize_t n = ::recv(fd, peeked, sizeof peeked, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    if (n <= 0) {
        log::debug("Connection from pid {} uid {} ended before a request", waiting.peer.pid, waiting.peer.uid);
        forget_waiting(waiting);
        unread_.erase(it);
        return;
    }
    wire::Frame request;
    wire::DecodeError error;
    /* A request that does not decode is still served, under the peer's
     * uid, so its conversation can respond with a clear error. */
    if (wire::decode(std::span<const std::byte>(peeked, static_cast<std::size_t>(n)), request, error))
        waiting.key = fairness_key_of(trusted_rhost_of(request, waiting.peer), caller_uid_of(request, waiting.peer));
    else
        waiting.key = fairness_key_of({}, waiting.peer.uid);
    request = wire::Frame{};
    sodium_memzero(peeked, static_cast<std::size_t>(n));

    std::deque<Waiting> &line = ready_[waiting.key];
    if (line.size() >= kMaxWaitingPerSource) {
        daemon_.counters().connections_refused++;
        daemon_.counters().unavailable++;
        log::debug("Refused a connection from pid {} uid {}: {} connections of '{}' already wait for a slot",
                   waiting.peer.pid, waiting.peer.uid, line.size(), escape_for_log(waiting.key, 160));
        discard_request(fd);
        refuse(fd);
        forget_waiting(waiting);
        unread_.erase(it);
        return;
    }
    if (line.empty())
        turns_.push_back(waiting.key);
    line.push_back(std::move(waiting));
    ready_count_++;
    unread_.erase(it);
}

void Server::expire(std::chrono::steady_clock::time_point now) {
    auto config = daemon_.config();
    auto request_limit = std::chrono::seconds(config->request_timeout);
    for (auto it = unread_.begin(); it != unread_.end();) {
        if (now - it->second.since < request_limit) {
            ++it;
            continue;
        }
        log::debug("Connection from pid {} uid {} ended before a request: timed out", it->second.peer.pid,
                   it->second.peer.uid);
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->first, nullptr);
        forget_waiting(it->second);
        it = unread_.erase(it);
    }
    /* The oldest of each line is at its front. */
    auto slot_limit = std::chrono::seconds(config->queue_timeout);
    for (auto it = ready_.begin(); it != ready_.end();) {
        std::deque<Waiting> &line = it->second;
        while (!line.empty() && now - line.front().since >= slot_limit) {
            Waiting &waiting = line.front();
            daemon_.counters().connections_refused++;
            daemon_.counters().unavailable++;
            unsigned running = 0;
            {
                std::lock_guard lock(mutex_);
                auto active = active_per_key_.find(waiting.key);
                running = active == active_per_key_.end() ? 0 : active->second;
            }
            std::string why = running >= config->max_conversations_per_source
                                      ? fmt::format("source '{}' already runs {} conversations "
                                                    "(max_conversations_per_source)",
                                                    escape_for_log(waiting.key, 160), running)
                                      : fmt::format("all {} slots are in use (max_connections)",
                                                    config->max_connections);
            log::warning("Responding to pid {} uid {} with PAM_AUTHINFO_UNAVAIL: timed out after {} s waiting for a "
                         "conversation slot: {}",
                         waiting.peer.pid, waiting.peer.uid, config->queue_timeout, why);
            discard_request(waiting.fd.get());
            refuse(waiting.fd.get());
            forget_waiting(waiting);
            line.pop_front();
            ready_count_--;
        }
        if (line.empty()) {
            turns_.erase(std::find(turns_.begin(), turns_.end(), it->first));
            it = ready_.erase(it);
        } else {
            ++it;
        }
    }
}

void Server::admit() {
    auto config = daemon_.config();
    while (ready_count_ > 0) {
        /* The key whose turn it is starts its oldest connection and goes
         * to the back of the line if it has more. A key that already runs
         * max_conversations_per_source conversations is passed over, so
         * one remote host, or one local user running su or sudo many
         * times, cannot hold every slot. */
        std::string key;
        {
            std::lock_guard lock(mutex_);
            if (open_fds_.size() >= config->max_connections)
                return;
            for (std::size_t tries = turns_.size(); tries > 0 && key.empty(); tries--) {
                auto active = active_per_key_.find(turns_.front());
                if (active == active_per_key_.end() || active->second < config->max_conversations_per_source) {
                    key = turns_.front();
                    turns_.pop_front();
                } else {
                    turns_.push_back(turns_.front());
                    turns_.pop_front();
                }
            }
            if (key.empty())
                return;
            active_per_key_[key]++;
        }
        std::deque<Waiting> &line = ready_[key];
        Waiting waiting = std::move(line.front());
        line.pop_front();
        ready_count_--;
        if (line.empty())
            ready_.erase(key);
        else
            turns_.push_back(key);
        start_connection(std::move(waiting));
    }
}

void Server::forget_waiting(const Waiting &waiting) {
    std::lock_guard lock(mutex_);
    count_down(per_peer_, waiting.peer_key);
}

void Server::release_slot(int fd, long peer_key, const std::string &key) {
    open_fds_.erase(fd);
    count_down(per_peer_, peer_key);
    count_down(active_per_key_, key);
}

void Server::start_connection(Waiting waiting) {
    int raw = waiting.fd.get();
    {
        std::lock_guard lock(mutex_);
        open_fds_.insert(raw);
    }
    struct ucred peer = waiting.peer;
    long peer_key = waiting.peer_key;
    std::string key = waiting.key;
    try {
        std::thread([this, raw, peer, peer_key, key, fd = std::move(waiting.fd)]() mutable {
            {
                Conversation conversation(daemon_, std::move(fd), peer);
                conversation.run();
            }
            {
                std::lock_guard lock(mutex_);
                release_slot(raw, peer_key, key);
                /* Under the lock, so that drain() cannot return and the
                 * server go away before this thread is done with it. */
                std::uint64_t one = 1;
                (void)!::write(wake_.get(), &one, sizeof one);
                idle_.notify_all();
            }
        }).detach();
    } catch (const std::system_error &e) {
        log::error("Failed to start a thread for pid {} uid {}: {}", peer.pid, peer.uid, e.what());
        std::lock_guard lock(mutex_);
        release_slot(raw, peer_key, key);
        /* fd was moved into the lambda that never ran; it was destroyed with it. */
    }
}

void Server::drain(int grace_ms) {
    close_waiting();
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
