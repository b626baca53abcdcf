#include "protocol/transport.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>

namespace warden::transport {
namespace {

long long now_ms() noexcept {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline; returns kOk when ready. */
Status wait_for(int fd, short events, long long deadline) noexcept {
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return Status::kTimedOut;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, static_cast<int>(left > 60 * 60 * 1000 ? 60 * 60 * 1000 : left));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return Status::kError;
        }
        if (r == 0)
            continue; /* the loop re-checks the deadline */
        if (p.revents & events)
            return Status::kOk;
        if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
            return (p.revents & POLLHUP) ? Status::kClosed : Status::kError;
    }
}

} // namespace

const char *status_string(Status status) noexcept {
    switch (status) {
    case Status::kOk: return "ok";
    case Status::kClosed: return "connection closed by peer";
    case Status::kTimedOut: return "timed out";
    case Status::kTooLong: return "message longer than a frame";
    case Status::kError: return "socket error";
    }
    return "unknown";
}

Status send_frame(int fd, std::span<const std::byte> frame, int timeout_ms) noexcept {
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        ssize_t n = send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == static_cast<ssize_t>(frame.size()))
            return Status::kOk;
        if (n >= 0)
            return Status::kError; /* a seqpacket send is all or nothing */
        if (errno == EINTR)
            continue;
        if (errno == EPIPE || errno == ECONNRESET)
            return Status::kClosed;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return Status::kError;
        Status s = wait_for(fd, POLLOUT, deadline);
        if (s != Status::kOk)
            return s;
    }
}

Status receive_frame(int fd, std::span<std::byte> buffer, int timeout_ms, std::size_t &ret_size) noexcept {
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        /* MSG_TRUNC makes recv return the real length of a longer message. */
        ssize_t n = recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC);
        if (n > static_cast<ssize_t>(buffer.size()))
            return Status::kTooLong;
        if (n > 0) {
            ret_size = static_cast<std::size_t>(n);
            return Status::kOk;
        }
        if (n == 0)
            return Status::kClosed; /* seqpacket: a zero-length read is end of stream */
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return Status::kClosed;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return Status::kError;
        Status s = wait_for(fd, POLLIN, deadline);
        if (s == Status::kClosed) {
            /* Data may still be queued behind the hang-up; read it first. */
            n = recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC);
            if (n > static_cast<ssize_t>(buffer.size()))
                return Status::kTooLong;
            if (n > 0) {
                ret_size = static_cast<std::size_t>(n);
                return Status::kOk;
            }
            return Status::kClosed;
        }
        if (s != Status::kOk)
            return s;
    }
}

} // namespace warden::transport
