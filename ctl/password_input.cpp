#include "ctl/password_input.h"

#include "ctl/command.h"
#include "protocol/limits.h"
#include "protocol/unique_fd.h"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <utility>

namespace warden::ctl {
namespace {

volatile std::sig_atomic_t g_caught_signal = 0;

void record_signal(int signal_number) {
    g_caught_signal = signal_number;
}

constexpr std::array kPromptSignals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};

/* Catches the signals that would stop or kill the process while the
 * terminal has echo off, so the echo can be restored before the signal
 * takes effect. The signals stay blocked except inside ppoll(), which
 * unblocks them atomically, so one that arrives just before the wait is
 * not lost. Signals that were ignored stay ignored. */
class SignalGuard {
public:
    SignalGuard() {
        sigset_t blocked;
        sigemptyset(&blocked);
        for (int signal_number : kPromptSignals)
            sigaddset(&blocked, signal_number);
        (void)sigprocmask(SIG_BLOCK, &blocked, &saved_mask_);
        wait_mask_ = saved_mask_;
        for (int signal_number : kPromptSignals)
            sigdelset(&wait_mask_, signal_number);

        struct sigaction action {};
        action.sa_handler = record_signal;
        sigemptyset(&action.sa_mask);
        for (std::size_t i = 0; i < kPromptSignals.size(); ++i) {
            (void)sigaction(kPromptSignals[i], nullptr, &saved_[i]);
            if (saved_[i].sa_handler != SIG_IGN)
                (void)sigaction(kPromptSignals[i], &action, nullptr);
        }
    }
    SignalGuard(const SignalGuard &) = delete;
    SignalGuard &operator=(const SignalGuard &) = delete;

    /* Restores the handlers before the mask, so a signal still pending
     * takes the effect it would have had without the guard. */
    ~SignalGuard() {
        for (std::size_t i = 0; i < kPromptSignals.size(); ++i)
            (void)sigaction(kPromptSignals[i], &saved_[i], nullptr);
        (void)sigprocmask(SIG_SETMASK, &saved_mask_, nullptr);
    }

    /* Waits until fd is readable. Returns false when a guarded signal
     * arrived first, and leaves its number in g_caught_signal. */
    bool wait_readable(int fd) {
        for (;;) {
            if (g_caught_signal != 0)
                return false;
            struct pollfd poll_fd = {fd, POLLIN, 0};
            int ready = ppoll(&poll_fd, 1, /* timeout_ts= */ nullptr, &wait_mask_);
            if (ready < 0 && errno != EINTR)
                fail(std::string("Failed to wait for input on /dev/tty: ") + std::strerror(errno));
            if (ready > 0)
                return true;
        }
    }

    /* Raises signal_number under the disposition the process had before,
     * then catches it again if the process is still running (after a stop
     * and continue, or when the old handler returned). */
    void deliver(int signal_number) {
        for (std::size_t i = 0; i < kPromptSignals.size(); ++i) {
            if (kPromptSignals[i] != signal_number)
                continue;
            sigset_t only;
            sigemptyset(&only);
            sigaddset(&only, signal_number);
            struct sigaction ours {};
            (void)sigaction(signal_number, &saved_[i], &ours);
            (void)raise(signal_number);
            (void)sigprocmask(SIG_UNBLOCK, &only, nullptr);
            (void)sigprocmask(SIG_BLOCK, &only, nullptr);
            (void)sigaction(signal_number, &ours, nullptr);
        }
    }

private:
    std::array<struct sigaction, kPromptSignals.size()> saved_{};
    sigset_t saved_mask_{};
    sigset_t wait_mask_{};
};

/* Turns terminal echo off on fd while it lives. The newline still echoes,
 * so the cursor moves on after the hidden input. */
class EchoOff {
public:
    explicit EchoOff(int fd) : fd_(fd) {
        if (tcgetattr(fd_, &saved_) < 0)
            fail(std::string("Failed to read the terminal settings of /dev/tty: ") + std::strerror(errno));
        struct termios quiet = saved_;
        quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
        quiet.c_lflag |= ECHONL;
        if (tcsetattr(fd_, TCSAFLUSH, &quiet) < 0)
            fail(std::string("Failed to turn off echo on /dev/tty: ") + std::strerror(errno));
    }
    EchoOff(const EchoOff &) = delete;
    EchoOff &operator=(const EchoOff &) = delete;
    ~EchoOff() { (void)tcsetattr(fd_, TCSAFLUSH, &saved_); }

private:
    int fd_;
    struct termios saved_ {};
};

/* One line of input. At most kMaxSecretSize bytes are kept, and too_long
 * records that the line had more. */
struct SecretLine {
    SecretBuffer value{kMaxSecretSize};
    bool too_long = false;
};

enum class ReadStatus { kLine, kEndOfInput, kInterrupted };

/* Reads up to the first newline (not stored) or end of input, byte by
 * byte so nothing after the line is consumed. When signals is given, it
 * waits in SignalGuard::wait_readable and returns kInterrupted when a
 * guarded signal arrives. input_name names the input in error messages. */
ReadStatus read_line(int fd, const char *source, const char *input_name, SecretLine &line,
                     SignalGuard *signals = nullptr) {
    for (;;) {
        if (signals && !signals->wait_readable(fd))
            return ReadStatus::kInterrupted;
        char c = 0;
        ssize_t n = ::read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(std::string("Failed to read ") + input_name + " from " + source + ": " + std::strerror(errno));
        if (n == 0)
            return ReadStatus::kEndOfInput;
        if (c == '\n')
            return ReadStatus::kLine;
        if (line.value.size() < line.value.capacity()) {
            line.value.data()[line.value.size()] = c;
            line.value.resize(line.value.size() + 1);
        } else {
            /* Keep draining to the newline so the rest of the line cannot
             * reach the shell, but store nothing more. */
            line.too_long = true;
        }
        c = 0;
    }
}

/* Shows prompt on the terminal and reads one line with echo off. A signal
 * such as Ctrl-C restores the terminal and then takes the effect it had
 * before. After Ctrl-Z and fg, the prompt is shown again and input starts over. */
SecretLine prompt_secret(int tty, const char *prompt, const char *input_name) {
    SignalGuard signals;
    for (;;) {
        SecretLine line;
        ReadStatus status;
        {
            EchoOff echo_off(tty);
            (void)!::write(tty, prompt, std::strlen(prompt));
            status = read_line(tty, "/dev/tty", input_name, line, &signals);
        }
        /* Move past the prompt, which ECHONL did not do without a newline. */
        if (status != ReadStatus::kLine)
            (void)!::write(tty, "\n", 1);
        if (status != ReadStatus::kInterrupted)
            return line;
        int signal_number = g_caught_signal;
        g_caught_signal = 0;
        signals.deliver(signal_number);
    }
}

/* Opens the controlling terminal, or fails with a hint to read the secret
 * from standard input with stdin_option instead. */
UniqueFd open_terminal(const std::string &action, const char *input_name, const char *stdin_option) {
    UniqueFd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!tty)
        fail("Failed to " + action + ": cannot open the terminal /dev/tty to ask for " + input_name + " (" +
             std::strerror(errno) + "). Pass " + stdin_option + " to read it from standard input");
    return tty;
}

} // namespace

SecretBuffer read_new_password(bool from_stdin, const std::string &action) {
    constexpr const char *kInputName = "the new password";
    SecretLine line;
    if (from_stdin) {
        (void)read_line(STDIN_FILENO, "standard input", kInputName, line);
    } else {
        UniqueFd tty = open_terminal(action, kInputName, "--password-stdin");
        line = prompt_secret(tty.get(), "New password: ", kInputName);
        if (!line.too_long && !line.value.empty()) {
            SecretLine again = prompt_secret(tty.get(), "Retype new password: ", kInputName);
            if (again.too_long || again.value.size() != line.value.size() ||
                sodium_memcmp(again.value.data(), line.value.data(), line.value.size()) != 0)
                fail("Failed to " + action + ": the two passwords do not match. Nothing was changed");
        }
    }
    if (line.too_long)
        fail("Failed to " + action + ": the new password is longer than " + std::to_string(kMaxSecretSize) +
             " bytes, the maximum a PAM conversation carries (PAM_MAX_RESP_SIZE). Choose a shorter one");
    return std::move(line.value);
}

SecretBuffer read_totp_secret_text(bool from_stdin, const std::string &action) {
    constexpr const char *kInputName = "the TOTP secret";
    SecretLine line;
    if (from_stdin) {
        (void)read_line(STDIN_FILENO, "standard input", kInputName, line);
    } else {
        UniqueFd tty = open_terminal(action, kInputName, "--secret-stdin");
        line = prompt_secret(tty.get(), "TOTP secret (base32): ", kInputName);
    }
    /* The maximum secret that wardend accepts, 64 bytes, is 103 base32
     * characters, so a line over the limit cannot be a secret even with
     * spaces between groups of four. */
    if (line.too_long)
        fail("Failed to " + action + ": the TOTP secret is longer than " + std::to_string(kMaxSecretSize) +
             " characters. Expected a base32 secret of 16 to 64 bytes (26 to 103 characters)");
    return std::move(line.value);
}

} // namespace warden::ctl
