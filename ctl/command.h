/* Shared parts of the wardenctl commands: the parsed command line, the
 * failure that ends a command, and the output helpers. */
#pragma once

#include "daemon/totp.h"

#include <string>
#include <string_view>
#include <vector>

namespace warden::ctl {

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/* A failure that ends the command. The message goes to stderr as
 * "wardenctl: MESSAGE", and bus_error names the D-Bus error behind it, if any. */
struct CommandError {
    int exit_code;
    std::string message;
    std::string bus_error;
};

/* Throws a CommandError with exit status 1. */
[[noreturn]] void fail(std::string message, std::string bus_error = {});

/* Throws a CommandError with exit status 2. */
[[noreturn]] void fail_usage(std::string message);

/* Options that take effect only for some commands, as bits of Invocation::options. */
enum Option : unsigned {
    kOptionPasswordStdin = 1U << 0,
    kOptionSecretStdin = 1U << 1,
    kOptionAlgorithm = 1U << 2,
    kOptionForce = 1U << 3,
};

struct Invocation {
    bool json = false;
    unsigned options = 0; /* the Option bits given on the command line */
    TotpAlgorithm algorithm = TotpAlgorithm::kSha1;
    std::vector<std::string> arguments; /* the words after the command */

    bool has(Option option) const { return (options & option) != 0; }
};

std::string quoted(std::string_view value);

/* Joins two sentences, adding the period the first may lack. Bus error
 * messages from wardend end with one, local messages do not. */
std::string join_sentences(std::string_view first, std::string_view second);

/* Replaces control bytes in a string from the daemon before it reaches the
 * terminal, so a stored value cannot send escape sequences. */
std::string printable(std::string_view value);

/* Returns the first argument after checking that it is a valid user name. */
const std::string &user_argument(const Invocation &invocation);

void print_json(const std::string &object);

/* Prints text, or with --json {"ok": true, "user": USER}. */
void print_done(const Invocation &invocation, const std::string &user, const std::string &text);

/* A std::string for secret text that wardenctl has to print, such as a
 * base32 secret, an otpauth URI or recovery codes. The destructor zeroes
 * the whole buffer. A reallocation frees the old buffer without wiping it,
 * so reserve the final size before appending. */
class SecretString {
public:
    SecretString() = default;
    explicit SecretString(std::string value) : value_(std::move(value)) {}
    SecretString(const SecretString &) = delete;
    SecretString &operator=(const SecretString &) = delete;
    ~SecretString() { wipe(); }

    std::string &str() noexcept { return value_; }
    const std::string &str() const noexcept { return value_; }

    /* Zeroes every byte of the buffer, including any spare capacity, and empties it. */
    void wipe() noexcept;

private:
    std::string value_;
};

/* Writes text to standard output with write(2), after flushing stdio, so
 * that no copy of a secret stays behind in the stdio buffer. */
void print_secret(std::string_view text);

/* Commands in totp_commands.cpp and recovery_commands.cpp. */
void command_totp_enroll(const Invocation &invocation);
void command_totp_import(const Invocation &invocation);
void command_totp_confirm(const Invocation &invocation);
void command_totp_remove(const Invocation &invocation);
void command_recovery_generate(const Invocation &invocation);

} // namespace warden::ctl
