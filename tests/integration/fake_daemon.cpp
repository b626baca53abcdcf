/* A misbehaving stand-in for wardend, for the module's fail-closed tests.
 *
 *   fake_daemon SOCKET MODE
 *
 * It serves SOCKET and answers every request according to MODE:
 *   silent        accept, read the request, never answer
 *   no-accept     listen but never accept
 *   bad-version   a RESULT of PAM_SUCCESS under protocol version 2
 *   unknown-type  a frame of type 0x7f
 *   truncated     a RESULT whose field claims more bytes than were sent
 *   garbage       random bytes
 *   oversized     one 8000-byte message
 *   odd-status    a well-formed RESULT with status 12345
 *   close-mid     one PROMPT, read the answer, then hang up
 *   prompt-flood  PROMPT after PROMPT without end
 * It prints "ready" once listening. */
#include "protocol/unique_fd.h"
#include "protocol/wire.h"

#include <security/_pam_types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

using namespace warden;

namespace {

void send_bytes(int fd, const void *data, std::size_t size) { (void)send(fd, data, size, MSG_NOSIGNAL); }

void send_prompt(int fd) {
    std::byte out[256];
    wire::FrameBuilder b(wire::FrameType::kPrompt, out);
    b.add_u8(wire::FieldTag::kStyle, static_cast<std::uint8_t>(wire::PromptStyle::kEchoOff));
    b.add(wire::FieldTag::kText, "Password: ");
    auto frame = b.finish();
    send_bytes(fd, frame.data(), frame.size());
}

void serve(int fd, const std::string &mode) {
    char in[8192];
    if (recv(fd, in, sizeof in, 0) <= 0)
        return;
    if (mode == "silent") {
        std::this_thread::sleep_for(std::chrono::hours(1));
    } else if (mode == "bad-version") {
        const unsigned char frame[] = {2, 0x12, 12, 0, 4, 0, 0, 0, 0};
        send_bytes(fd, frame, sizeof frame);
    } else if (mode == "unknown-type") {
        const unsigned char frame[] = {1, 0x7f, 12, 0, 4, 0, 0, 0, 0};
        send_bytes(fd, frame, sizeof frame);
    } else if (mode == "truncated") {
        const unsigned char frame[] = {1, 0x12, 12, 0, 4, 0, 0};
        send_bytes(fd, frame, sizeof frame);
    } else if (mode == "garbage") {
        unsigned char frame[64];
        for (std::size_t i = 0; i < sizeof frame; i++)
            frame[i] = static_cast<unsigned char>(i * 37 + 11);
        send_bytes(fd, frame, sizeof frame);
    } else if (mode == "oversized") {
        static unsigned char frame[8000];
        frame[0] = 1;
        frame[1] = 0x12;
        send_bytes(fd, frame, sizeof frame);
    } else if (mode == "odd-status") {
        std::byte out[64];
        wire::FrameBuilder b(wire::FrameType::kResult, out);
        b.add_u32(wire::FieldTag::kStatus, 12345);
        auto frame = b.finish();
        send_bytes(fd, frame.data(), frame.size());
    } else if (mode == "close-mid") {
        send_prompt(fd);
        (void)recv(fd, in, sizeof in, 0);
    } else if (mode == "prompt-flood") {
        for (int i = 0; i < 1000; i++) {
            send_prompt(fd);
            if (recv(fd, in, sizeof in, 0) <= 0)
                break;
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: fake_daemon SOCKET MODE\n");
        return 2;
    }
    std::string mode = argv[2];
    UniqueFd listener(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
    unlink(argv[1]);
    if (bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0 ||
        listen(listener.get(), 16) < 0) {
        std::perror("fake_daemon: bind");
        return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    if (mode == "no-accept") {
        std::this_thread::sleep_for(std::chrono::hours(1));
        return 0;
    }
    for (;;) {
        int fd = accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        std::thread([fd, mode] {
            serve(fd, mode);
            close(fd);
        }).detach();
    }
}
