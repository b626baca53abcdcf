/* Sending and receiving whole frames on a SOCK_SEQPACKET socket with a
 * deadline. Shared by the module and the daemon; links nothing. */
#pragma once

#include <cstddef>
#include <span>

namespace warden::transport {

enum class Status {
    kOk,
    kClosed,   /* the peer closed the connection */
    kTimedOut, /* nothing arrived before the timeout */
    kTooLong,  /* the message was longer than the buffer and was dropped */
    kError,    /* a socket error; errno is set */
};

const char *status_string(Status status) noexcept;

/* Sends one frame, waiting at most timeout_ms for the socket to accept it. */
Status send_frame(int fd, std::span<const std::byte> frame, int timeout_ms) noexcept;

/* Receives one frame into buffer, waiting at most timeout_ms. A message
 * longer than the buffer is consumed and reported as kTooLong. */
Status receive_frame(int fd, std::span<std::byte> buffer, int timeout_ms, std::size_t &ret_size) noexcept;

} // namespace warden::transport
