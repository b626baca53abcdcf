/* The listening socket and the connection threads of wardend.
 *
 * At most max_connections conversations run at once, each on its own
 * thread. A connection beyond that costs only its descriptor: it waits
 * unread until its request arrives, and then for a free slot, up to 4,096
 * such connections. Slots go to
 * waiting sources in turn (remote host, or local caller uid), so a flood
 * from one host cannot keep another host's login from starting. The
 * request stays in the socket until its conversation reads it. */
#pragma once

#include "daemon/daemon.h"
#include "protocol/unique_fd.h"

#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>

namespace warden {

class Server {
public:
    explicit Server(Daemon &daemon) : daemon_(daemon) {}

    /* Takes the socket systemd passed (sd_listen_fds) or creates config's
     * socket path with mode 0666; callers are checked per request. */
    bool open_listener(const Config &config, std::string &ret_error);

    /* Accepts connections until stop_fd becomes readable. */
    void serve(int stop_fd);

    /* Closes the connections still waiting for a slot, ends every open
     * conversation that is waiting for its client and waits up to grace_ms
     * for running requests to finish. Called from the serving thread. */
    void drain(int grace_ms);

    /* Removes the socket file when wardend created it. */
    void close_listener();

    std::size_t active_connections() const;

private:
    /* An accepted connection without a thread: it has not sent its
     * request yet, or it waits for a free conversation slot. */
    struct Waiting {
        UniqueFd fd;
        struct ucred peer = {};
        long peer_key = 0;
        std::chrono::steady_clock::time_point since;
        std::string key; /* fairness key, known once the request arrived */
    };

    /* Accepts one waiting connection; false when none was waiting. */
    bool accept_one();
    /* Reads the fairness key of a connection whose request has arrived,
     * leaving the request in the socket for its conversation. */
    void classify(int fd);
    /* Drops connections that sent no request within request_timeout and
     * refuses those that found no slot within queue_timeout. */
    void expire(std::chrono::steady_clock::time_point now);
    /* Starts a conversation for each free slot, taking turns between keys. */
    void admit();
    void start_connection(Waiting waiting);
    void forget_waiting(const Waiting &waiting);
    /* Frees the slot of a conversation that ended or never started; the
     * caller holds mutex_. */
    void release_slot(int fd, long peer_key, const std::string &key);
    void close_waiting();
    void watch_listener(bool on);
    std::size_t waiting_limit() const;

    Daemon &daemon_;
    UniqueFd listener_;
    std::string socket_path_; /* set only when we created the socket */
    ino_t socket_inode_ = 0;

    /* Used by the serving thread only. */
    UniqueFd epoll_;
    UniqueFd wake_; /* eventfd: a conversation ended */
    bool listening_ = false;
    std::size_t open_file_limit_ = 1024;
    std::chrono::steady_clock::time_point refusal_logged_at_;
    std::uint64_t refusals_unlogged_ = 0;
    std::map<int, Waiting> unread_;
    std::map<std::string, std::deque<Waiting>> ready_;
    std::deque<std::string> turns_;
    std::size_t ready_count_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable idle_;
    std::set<int> open_fds_; /* connections with a conversation thread */
    /* Open and waiting connections per peer: per uid for ordinary users,
     * per pid for root, since root is sshd and login serving everybody. */
    std::map<long, unsigned> per_peer_;
    /* Conversations running per fairness key (remote host or caller uid). */
    std::map<std::string, unsigned> active_per_key_;
};

} // namespace warden
