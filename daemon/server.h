/* The listening socket and the connection threads of wardend. */
#pragma once

#include "daemon/daemon.h"
#include "protocol/unique_fd.h"

#include <sys/socket.h>

#include <condition_variable>
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

    /* Ends every open conversation that is waiting for its client and
     * waits up to grace_ms for running requests to finish. */
    void drain(int grace_ms);

    /* Removes the socket file when wardend created it. */
    void close_listener();

    std::size_t active_connections() const;

private:
    /* Accepts one waiting connection; false when none was waiting. */
    bool accept_one();
    void start_connection(UniqueFd fd, const struct ucred &peer);

    Daemon &daemon_;
    UniqueFd listener_;
    std::string socket_path_; /* set only when we created the socket */
    ino_t socket_inode_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable idle_;
    std::set<int> open_fds_;
    /* Open connections per peer: per uid for ordinary users, per pid for
     * root, since root is sshd and login serving everybody. */
    std::map<long, unsigned> per_peer_;
};

} // namespace warden
