/* wardenctl: the admin CLI of wardend, over the D-Bus API net.warden.Admin1.
 *
 * A new password never crosses the bus. wardenctl reads it, checks it
 * against the daemon's policy and the host's libpwquality settings, hashes
 * it with Argon2id at the daemon's configured cost and sends only the PHC
 * string. The daemon authorises every call itself, so this program needs
 * no privilege of its own. */

#include "ctl/json.h"
#include "daemon/password_hash.h"
#include "daemon/password_quality.h"
#include "daemon/secret.h"
#include "protocol/admin_bus.h"
#include "protocol/limits.h"
#include "protocol/unique_fd.h"
#include "protocol/user_name.h"
#include "protocol/version.h"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <systemd/sd-bus.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace warden::ctl {
namespace {

constexpr int kExitSuccess = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

using bus::kErrorNoSuchUser;
constexpr const char *kBusName = bus::kName;
constexpr const char *kBusPath = bus::kPath;
constexpr const char *kBusInterface = bus::kInterface;
constexpr const char *kDefaultSystemBus = "unix:path=/run/dbus/system_bus_socket";

/* A failure that ends the command. The message goes to stderr as
 * "wardenctl: MESSAGE", and bus_error names the D-Bus error behind it, if any. */
struct CommandError {
    int exit_code;
    std::string message;
    std::string bus_error;
};

[[noreturn]] void fail(std::string message, std::string bus_error = {}) {
    throw CommandError{kExitFailure, std::move(message), std::move(bus_error)};
}

[[noreturn]] void fail_usage(std::string message) {
    throw CommandError{kExitUsage, std::move(message), {}};
}

std::string quoted(std::string_view value) {
    return "'" + std::string(value) + "'";
}

/* Joins two sentences, adding the period the first may lack. Bus error
 * messages from wardend end with one, local messages do not. */
std::string join_sentences(std::string_view first, std::string_view second) {
    std::string text(first);
    if (!text.empty() && text.back() != '.')
        text += '.';
    return text + " " + std::string(second);
}

/* Replaces control bytes in a string from the daemon before it reaches the
 * terminal, so a stored value cannot send escape sequences. */
std::string printable(std::string_view value) {
    std::string out(value);
    for (char &c : out) {
        unsigned char byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7F)
            c = '?';
    }
    return out;
}

/* ---- D-Bus client ---- */

struct BusDeleter {
    void operator()(sd_bus *bus) const noexcept { sd_bus_flush_close_unref(bus); }
};
struct MessageDeleter {
    void operator()(sd_bus_message *message) const noexcept { sd_bus_message_unref(message); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageDeleter>;

/* An sd_bus_error that frees itself. */
struct BusError {
    sd_bus_error error = SD_BUS_ERROR_NULL;

    BusError() = default;
    BusError(const BusError &) = delete;
    BusError &operator=(const BusError &) = delete;
    ~BusError() { sd_bus_error_free(&error); }

    bool has_name(const char *name) const { return sd_bus_error_has_name(&error, name) > 0; }
    std::string name() const { return error.name ? error.name : ""; }
};

/* Turns a failed call into the text after "Failed to ...: ", with a next
 * step for the failures an admin can fix on this host. */
std::string describe_call_error(const BusError &bus_error, int r) {
    const char *bus_message = bus_error.error.message;
    std::string detail = bus_message && *bus_message ? bus_message : std::strerror(-r);
    if (bus_error.has_name(SD_BUS_ERROR_SERVICE_UNKNOWN) || bus_error.has_name(SD_BUS_ERROR_NAME_HAS_NO_OWNER))
        return std::string("wardend is not running (no process owns ") + kBusName +
               " on the system bus). Start it with 'systemctl start wardend'";
    if (bus_error.has_name(SD_BUS_ERROR_NO_REPLY) || bus_error.has_name(SD_BUS_ERROR_TIMEOUT))
        return "timed out waiting for a reply from wardend (" + detail +
               "). Check 'systemctl status wardend' and 'journalctl -u wardend'";
    if (bus_error.has_name(SD_BUS_ERROR_ACCESS_DENIED))
        return join_sentences(detail, "Run wardenctl as root");
    if (bus_error.has_name(SD_BUS_ERROR_UNKNOWN_METHOD) || bus_error.has_name(SD_BUS_ERROR_UNKNOWN_OBJECT) ||
        bus_error.has_name(SD_BUS_ERROR_UNKNOWN_INTERFACE))
        return join_sentences(detail, "The running wardend may be older than wardenctl " WARDEN_VERSION);
    return detail;
}

class AdminClient {
public:
    /* Connects to the system bus, or to DBUS_SYSTEM_BUS_ADDRESS when set. */
    AdminClient() {
        sd_bus *bus = nullptr;
        int r = sd_bus_open_system(&bus);
        bus_.reset(bus);
        if (r < 0) {
            const char *address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
            fail("Failed to connect to the system bus at " + quoted(address ? address : kDefaultSystemBus) +
                 ": " + std::strerror(-r) + ". Check that dbus is running, or set DBUS_SYSTEM_BUS_ADDRESS");
        }
    }

    /* Calls method on wardend. Returns the reply, or null with ret_error
     * and ret_r filled when the call failed. */
    template <typename... Args>
    MessagePtr try_call(BusError &ret_error, int &ret_r, const char *method, const char *types, Args... args) {
        sd_bus_message *reply = nullptr;
        ret_r = sd_bus_call_method(bus_.get(), kBusName, kBusPath, kBusInterface, method, &ret_error.error, &reply,
                                   types, args...);
        return MessagePtr(ret_r < 0 ? nullptr : reply);
    }

    /* Calls method on wardend, or fails with "Failed to ACTION: reason". */
    template <typename... Args>
    MessagePtr call(const std::string &action, const char *method, const char *types, Args... args) {
        BusError error;
        int r = 0;
        MessagePtr reply = try_call(error, r, method, types, args...);
        if (!reply)
            fail("Failed to " + action + ": " + describe_call_error(error, r), error.name());
        return reply;
    }

private:
    std::unique_ptr<sd_bus, BusDeleter> bus_;
};

void check_read(int r, const char *method) {
    if (r < 0)
        fail(std::string("Failed to read the reply of wardend to ") + method + ": " + std::strerror(-r) +
             ". wardend and wardenctl " WARDEN_VERSION " may be of different versions");
}

/* One value of an a{sv} reply, kept with its D-Bus type class. */
using Value = std::variant<std::string, std::int64_t, std::uint64_t, bool>;

struct Property {
    std::string key;
    Value value;
};

Value read_basic_value(sd_bus_message *reply, char type, const char *method) {
    union {
        const char *string;
        int boolean;
        std::uint8_t u8;
        std::int16_t i16;
        std::uint16_t u16;
        std::int32_t i32;
        std::uint32_t u32;
        std::int64_t i64;
        std::uint64_t u64;
    } raw{};
    check_read(sd_bus_message_read_basic(reply, type, &raw), method);
    switch (type) {
    case 's':
    case 'o':
    case 'g': return std::string(raw.string);
    case 'b': return raw.boolean != 0;
    case 'y': return std::uint64_t{raw.u8};
    case 'n': return std::int64_t{raw.i16};
    case 'q': return std::uint64_t{raw.u16};
    case 'i': return std::int64_t{raw.i32};
    case 'u': return std::uint64_t{raw.u32};
    case 'x': return raw.i64;
    default: return raw.u64;
    }
}

/* Reads an a{sv} reply in the order the daemon sent it. Entries whose
 * value is not a string, integer or boolean are skipped. */
std::vector<Property> read_properties(sd_bus_message *reply, const char *method) {
    std::vector<Property> properties;
    check_read(sd_bus_message_enter_container(reply, 'a', "{sv}"), method);
    for (;;) {
        int r = sd_bus_message_enter_container(reply, 'e', "sv");
        check_read(r, method);
        if (r == 0)
            break;
        const char *key = nullptr;
        check_read(sd_bus_message_read_basic(reply, 's', &key), method);
        const char *contents = nullptr;
        check_read(sd_bus_message_peek_type(reply, nullptr, &contents), method);
        check_read(sd_bus_message_enter_container(reply, 'v', contents), method);
        if (std::strlen(contents) == 1 && std::strchr("sogbynqiuxt", contents[0]))
            properties.push_back({key, read_basic_value(reply, contents[0], method)});
        else
            check_read(sd_bus_message_skip(reply, contents), method);
        check_read(sd_bus_message_exit_container(reply), method);
        check_read(sd_bus_message_exit_container(reply), method);
    }
    check_read(sd_bus_message_exit_container(reply), method);
    return properties;
}

/* ---- Output ---- */

/* Formats seconds since the epoch as local ISO 8601, or "never" for 0. */
std::string format_time(std::int64_t seconds) {
    if (seconds == 0)
        return "never";
    std::time_t time = static_cast<std::time_t>(seconds);
    std::tm local{};
    char text[64];
    if (!localtime_r(&time, &local) || std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S%z", &local) == 0)
        return std::to_string(seconds);
    /* strftime writes the offset as +hhmm, but the ISO 8601 extended form is +hh:mm. */
    std::string out(text);
    out.insert(out.size() - 2, ":");
    return out;
}

enum class Format { kPlain, kTime, kLockTime };

struct Field {
    const char *key;
    const char *label;
    Format format;
};

constexpr Field kUserFields[] = {
    {"name", "User", Format::kPlain},
    {"password", "Password", Format::kPlain},
    {"created", "Created", Format::kTime},
    {"updated", "Updated", Format::kTime},
    {"last_login", "Last login", Format::kTime},
    {"failures", "Failed attempts", Format::kPlain},
    {"locked_until", "Locked until", Format::kLockTime},
};

constexpr Field kStatusFields[] = {
    {"version", "Version", Format::kPlain},
    {"mode", "Mode", Format::kPlain},
    {"mfa_mode", "MFA mode", Format::kPlain},
    {"started", "Started", Format::kTime},
    {"workers", "Hash workers", Format::kPlain},
    {"queue_limit", "Queue limit", Format::kPlain},
    {"queued", "Hashes queued", Format::kPlain},
    {"running", "Hashes running", Format::kPlain},
    {"hashes", "Hashes completed", Format::kPlain},
    {"queue_rejected", "Hashes rejected (queue full)", Format::kPlain},
    {"connections", "Connections", Format::kPlain},
    {"connections_refused", "Connections refused", Format::kPlain},
    {"auth_success", "Authentications succeeded", Format::kPlain},
    {"auth_failure", "Authentications failed", Format::kPlain},
    {"peer_rejected", "Callers rejected", Format::kPlain},
    {"unavailable", "Requests answered unavailable", Format::kPlain},
};

std::string format_value(const Value &value, Format format) {
    if (const auto *text = std::get_if<std::string>(&value))
        return printable(*text);
    if (const auto *flag = std::get_if<bool>(&value))
        return *flag ? "yes" : "no";
    if (const auto *number = std::get_if<std::uint64_t>(&value))
        return std::to_string(*number);
    std::int64_t number = std::get<std::int64_t>(value);
    if (format == Format::kLockTime)
        return number <= std::time(nullptr) ? "not locked" : format_time(number);
    if (format == Format::kTime)
        return format_time(number);
    return std::to_string(number);
}

/* Makes a label for a key missing from the field table, such as "New key"
 * for "new_key", so a field added by a newer daemon is still shown. */
std::string label_for_key(std::string_view key) {
    std::string label = printable(key);
    for (char &c : label) {
        if (c == '_')
            c = ' ';
    }
    if (!label.empty() && label[0] >= 'a' && label[0] <= 'z')
        label[0] = static_cast<char>(label[0] - 'a' + 'A');
    return label;
}

/* Prints "Label: value" lines, known keys in table order, then the rest. */
template <std::size_t N>
void print_properties(const std::vector<Property> &properties, const Field (&fields)[N]) {
    std::vector<std::pair<std::string, std::string>> lines;
    std::vector<bool> shown(properties.size(), false);
    for (const Field &field : fields) {
        for (std::size_t i = 0; i < properties.size(); ++i) {
            if (!shown[i] && properties[i].key == field.key) {
                lines.emplace_back(field.label, format_value(properties[i].value, field.format));
                shown[i] = true;
            }
        }
    }
    for (std::size_t i = 0; i < properties.size(); ++i) {
        if (!shown[i])
            lines.emplace_back(label_for_key(properties[i].key), format_value(properties[i].value, Format::kPlain));
    }
    std::size_t width = 0;
    for (const auto &line : lines)
        width = std::max(width, line.first.size());
    for (const auto &[label, value] : lines)
        std::printf("%s:%*s %s\n", label.c_str(), static_cast<int>(width - label.size()), "", value.c_str());
}

std::string properties_to_json(const std::vector<Property> &properties) {
    json::ObjectWriter object;
    for (const Property &property : properties)
        std::visit([&](const auto &value) { object.add(property.key, value); }, property.value);
    return object.finish();
}

void print_json(const std::string &object) {
    std::printf("%s\n", object.c_str());
}

/* ---- Reading a new password ---- */

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
 * guarded signal arrives. */
ReadStatus read_line(int fd, const char *source, SecretLine &line, SignalGuard *signals = nullptr) {
    for (;;) {
        if (signals && !signals->wait_readable(fd))
            return ReadStatus::kInterrupted;
        char c = 0;
        ssize_t n = ::read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(std::string("Failed to read the new password from ") + source + ": " + std::strerror(errno));
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
SecretLine prompt_secret(int tty, const char *prompt) {
    SignalGuard signals;
    for (;;) {
        SecretLine line;
        ReadStatus status;
        {
            EchoOff echo_off(tty);
            (void)!::write(tty, prompt, std::strlen(prompt));
            status = read_line(tty, "/dev/tty", line, &signals);
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

/* Reads the new password from standard input (one line, one trailing
 * newline stripped) or from the terminal, where it is asked twice. */
SecretBuffer read_new_password(bool from_stdin, const std::string &action) {
    SecretLine line;
    if (from_stdin) {
        (void)read_line(STDIN_FILENO, "standard input", line);
    } else {
        UniqueFd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
        if (!tty)
            fail("Failed to " + action + ": cannot open the terminal /dev/tty to ask for the password (" +
                 std::strerror(errno) + "). Pass --password-stdin to read it from standard input");
        line = prompt_secret(tty.get(), "New password: ");
        if (!line.too_long && !line.value.empty()) {
            SecretLine again = prompt_secret(tty.get(), "Retype new password: ");
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

struct PasswordPolicy {
    Argon2Policy argon2;
    std::uint32_t min_length;
};

PasswordPolicy get_password_policy(AdminClient &client, const std::string &action) {
    MessagePtr reply = client.call(action, "GetPasswordPolicy", nullptr);
    std::uint64_t memory_kib = 0;
    std::uint64_t iterations = 0;
    std::uint32_t min_length = 0;
    check_read(sd_bus_message_read(reply.get(), "ttu", &memory_kib, &iterations, &min_length), "GetPasswordPolicy");
    /* Check the cost against libsodium's limits before hashing, so the error
     * names the configured values and memory_kib * 1024 cannot overflow. */
    constexpr std::uint64_t kMaxMemoryKib = crypto_pwhash_argon2id_MEMLIMIT_MAX / 1024;
    if (memory_kib < crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024 || memory_kib > kMaxMemoryKib ||
        iterations < crypto_pwhash_argon2id_OPSLIMIT_MIN || iterations > crypto_pwhash_argon2id_OPSLIMIT_MAX)
        fail("Failed to " + action + ": the password policy of wardend requests Argon2id at m=" +
             std::to_string(memory_kib) + " KiB, t=" + std::to_string(iterations) +
             ", outside the limits of libsodium. Check [password] in the wardend config");
    return {{memory_kib, iterations}, min_length};
}

/* Rejects a password the daemon or the host's policy would not accept. */
void check_new_password(const SecretBuffer &password, const PasswordPolicy &policy, const std::string &user,
                        const std::string &action) {
    std::string_view view = password.view();
    std::string reason;
    if (view.empty())
        reason = "the new password is empty";
    else if (view.find('\0') != std::string_view::npos)
        reason = "the new password contains a NUL byte, which PAM cannot pass on";
    else if (view.size() < policy.min_length)
        reason = "the new password is " + std::to_string(view.size()) + " bytes long, but wardend requires at least " +
                 std::to_string(policy.min_length) + " ([password] min_length). Choose a longer one";
    else
        reason = PasswordQuality().check(view, /* old_password= */ {}, user);
    if (!reason.empty())
        fail("Failed to " + action + ": " + reason);
}

std::string hash_new_password(const SecretBuffer &password, const PasswordPolicy &policy, const std::string &action) {
    std::string phc;
    if (!hash_password(password.view(), policy.argon2, phc))
        fail("Failed to " + action + ": Argon2id hashing at m=" + std::to_string(policy.argon2.memory_kib) +
             " KiB, t=" + std::to_string(policy.argon2.iterations) +
             " failed, most likely because that much memory could not be allocated");
    return phc;
}

/* ---- Commands ---- */

struct Invocation {
    bool json = false;
    bool password_stdin = false;
    std::vector<std::string> arguments; /* the words after the command */
};

void print_done(const Invocation &invocation, const std::string &user, const std::string &text) {
    if (invocation.json) {
        json::ObjectWriter object;
        object.add("ok", true);
        object.add("user", user);
        print_json(object.finish());
    } else {
        std::printf("%s\n", text.c_str());
    }
}

const std::string &user_argument(const Invocation &invocation) {
    const std::string &name = invocation.arguments.at(0);
    if (!is_valid_user_name(name))
        fail_usage("Invalid user name " + quoted(printable(name)) + ": expected " + kUserNameRule);
    return name;
}

/* Checks that name is enrolled, or for a new user that it is not, so the
 * command fails before the admin types a password for nothing. */
void expect_enrolled(AdminClient &client, const std::string &name, bool enrolled, const std::string &action) {
    BusError error;
    int r = 0;
    MessagePtr reply = client.try_call(error, r, "GetUser", "s", name.c_str());
    if (!reply && !error.has_name(kErrorNoSuchUser))
        fail("Failed to " + action + ": " + describe_call_error(error, r), error.name());
    if (reply && !enrolled)
        fail("Failed to " + action + ": user " + quoted(name) + " is already enrolled. Use 'wardenctl user passwd " +
                     name + "' to set a new password",
             bus::kErrorUserExists);
    if (!reply && enrolled)
        fail("Failed to " + action + ": user " + quoted(name) + " is not enrolled. Use 'wardenctl user add " + name +
                     "' to enroll it",
             error.name());
}

/* Sets the password of a new user (AddUser) or of an enrolled one (SetPassword). */
void set_new_password(const Invocation &invocation, bool new_user) {
    const std::string &name = user_argument(invocation);
    const std::string action = new_user ? "add user " + quoted(name) : "set the password of user " + quoted(name);
    AdminClient client;
    PasswordPolicy policy = get_password_policy(client, action);
    expect_enrolled(client, name, /* enrolled= */ !new_user, action);

    SecretBuffer password = read_new_password(invocation.password_stdin, action);
    check_new_password(password, policy, name, action);
    std::string phc = hash_new_password(password, policy, action);
    password = SecretBuffer();

    /* The PHC string is no password, but it allows an offline guessing
     * attack, so it is wiped once sent. */
    std::optional<CommandError> error;
    try {
        client.call(action, new_user ? "AddUser" : "SetPassword", "ss", name.c_str(), phc.c_str());
    } catch (const CommandError &e) {
        error = e;
    }
    sodium_memzero(phc.data(), phc.size());
    if (error)
        throw *error;
    print_done(invocation, name,
               new_user ? "Enrolled user " + quoted(name) + "." : "Set a new password for user " + quoted(name) + ".");
}

void command_user_add(const Invocation &invocation) {
    set_new_password(invocation, /* new_user= */ true);
}

void command_user_passwd(const Invocation &invocation) {
    set_new_password(invocation, /* new_user= */ false);
}

void command_user_remove(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    AdminClient client;
    client.call("remove user " + quoted(name), "RemoveUser", "s", name.c_str());
    print_done(invocation, name, "Removed user " + quoted(name) + ".");
}

void command_user_list(const Invocation &invocation) {
    AdminClient client;
    MessagePtr reply = client.call("list users", "ListUsers", nullptr);
    std::vector<std::string> names;
    check_read(sd_bus_message_enter_container(reply.get(), 'a', "s"), "ListUsers");
    for (;;) {
        const char *name = nullptr;
        int r = sd_bus_message_read_basic(reply.get(), 's', &name);
        check_read(r, "ListUsers");
        if (r == 0)
            break;
        names.emplace_back(name);
    }
    check_read(sd_bus_message_exit_container(reply.get()), "ListUsers");

    if (invocation.json) {
        json::ObjectWriter object;
        object.add("users", names);
        print_json(object.finish());
        return;
    }
    for (const std::string &name : names)
        std::printf("%s\n", printable(name).c_str());
}

void command_user_show(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    AdminClient client;
    MessagePtr reply = client.call("show user " + quoted(name), "GetUser", "s", name.c_str());
    std::vector<Property> properties = read_properties(reply.get(), "GetUser");
    if (invocation.json)
        print_json(properties_to_json(properties));
    else
        print_properties(properties, kUserFields);
}

void command_status(const Invocation &invocation) {
    AdminClient client;
    MessagePtr reply = client.call("read the status of wardend", "GetStatus", nullptr);
    std::vector<Property> properties = read_properties(reply.get(), "GetStatus");
    if (invocation.json)
        print_json(properties_to_json(properties));
    else
        print_properties(properties, kStatusFields);
}

/* One row per command. A command is one or two words followed by a fixed
 * number of arguments. Later groups such as "totp" or "recovery" add rows here. */
struct Command {
    std::array<const char *, 2> words; /* second word null for one-word commands */
    const char *arguments;             /* for the help text */
    std::size_t argument_count;
    bool accepts_password_stdin;
    void (*run)(const Invocation &);
    const char *summary;
};

constexpr Command kCommands[] = {
    {{"user", "add"}, "NAME", 1, true, command_user_add, "Enroll NAME with a new password"},
    {{"user", "passwd"}, "NAME", 1, true, command_user_passwd, "Set a new password for NAME"},
    {{"user", "remove"}, "NAME", 1, false, command_user_remove, "Remove NAME and everything stored for it"},
    {{"user", "list"}, "", 0, false, command_user_list, "List enrolled users, one per line"},
    {{"user", "show"}, "NAME", 1, false, command_user_show,
     "Show NAME's password hash type, times, failures and lock"},
    {{"status", nullptr}, "", 0, false, command_status, "Show the version, mode, workers, queue and counters"},
};

std::string command_synopsis(const Command &command) {
    std::string text = command.words[0];
    if (command.words[1])
        text += std::string(" ") + command.words[1];
    if (*command.arguments)
        text += std::string(" ") + command.arguments;
    if (command.accepts_password_stdin)
        text += " [--password-stdin]";
    return text;
}

void print_help() {
    std::printf("Usage: wardenctl [--json] COMMAND [ARGUMENT...]\n\n"
                "Administer wardend, the Warden authentication daemon, over D-Bus.\n\n"
                "Commands:\n");
    for (const Command &command : kCommands)
        std::printf("  %-36s %s\n", command_synopsis(command).c_str(), command.summary);
    std::printf("\nOptions:\n"
                "  --json             Print one JSON object per command on standard output\n"
                "  --password-stdin   Read the new password as one line from standard input\n"
                "                     instead of asking twice on the terminal\n"
                "  -h, --help         Show this help and exit\n"
                "  --version          Show the version and exit\n\n"
                "The daemon is reached on the system bus, or at DBUS_SYSTEM_BUS_ADDRESS when set.\n"
                "Exit status: 0 on success, 1 when the operation failed, 2 on a usage error.\n");
}

/* Finds the command the words name and checks its argument count. */
const Command &find_command(const std::vector<std::string> &words) {
    if (words.empty())
        fail_usage("Missing command");
    bool group_known = false;
    for (const Command &command : kCommands) {
        if (words[0] != command.words[0])
            continue;
        group_known = true;
        std::size_t command_word_count = command.words[1] ? 2 : 1;
        if (command.words[1] && (words.size() < 2 || words[1] != command.words[1]))
            continue;
        std::size_t supplied_count = words.size() - command_word_count;
        if (supplied_count < command.argument_count)
            fail_usage("Missing argument " + std::string(command.arguments) + " for '" + command_synopsis(command) +
                       "'");
        if (supplied_count > command.argument_count)
            fail_usage("Unexpected argument " + quoted(printable(words[command_word_count + command.argument_count])) +
                       " for '" +
                       command_synopsis(command) + "'");
        return command;
    }
    if (group_known && words.size() < 2)
        fail_usage("Missing subcommand after " + quoted(printable(words[0])));
    if (group_known)
        fail_usage("Unknown command " + quoted(printable(words[0] + " " + words[1])));
    fail_usage("Unknown command " + quoted(printable(words[0])));
}

enum class Action { kRun, kHelp, kVersion };

/* Splits argv into options, which may appear anywhere, and words. "--"
 * ends the options. */
Action parse_arguments(int argc, char **argv, Invocation &invocation, std::vector<std::string> &words) {
    Action action = Action::kRun;
    bool options_ended = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view argument = argv[i];
        if (options_ended || argument.size() < 2 || argument[0] != '-') {
            words.emplace_back(argument);
        } else if (argument == "--") {
            options_ended = true;
        } else if (argument == "--json") {
            invocation.json = true;
        } else if (argument == "--password-stdin") {
            invocation.password_stdin = true;
        } else if (argument == "--help" || argument == "-h") {
            action = Action::kHelp;
        } else if (argument == "--version") {
            if (action == Action::kRun)
                action = Action::kVersion;
        } else {
            fail_usage("Unknown option " + quoted(printable(argument)));
        }
    }
    return action;
}

int run(int argc, char **argv, bool &ret_json) {
    Invocation invocation;
    std::vector<std::string> words;
    Action action = parse_arguments(argc, argv, invocation, words);
    ret_json = invocation.json;
    if (action == Action::kHelp) {
        print_help();
        return kExitSuccess;
    }
    if (action == Action::kVersion) {
        std::printf("wardenctl " WARDEN_VERSION "\n");
        return kExitSuccess;
    }

    const Command &command = find_command(words);
    if (invocation.password_stdin && !command.accepts_password_stdin)
        fail_usage("Option --password-stdin does not apply to '" + command_synopsis(command) + "'");
    std::size_t command_word_count = command.words[1] ? 2 : 1;
    invocation.arguments.assign(words.begin() + static_cast<std::ptrdiff_t>(command_word_count), words.end());

    if (sodium_init() < 0)
        fail("Failed to initialise libsodium");
    command.run(invocation);
    return kExitSuccess;
}

void report(const CommandError &error, bool json) {
    /* Local messages are built without the final period, bus messages
     * from wardend end with one. */
    std::string message = error.message;
    if (!message.empty() && message.back() != '.')
        message += '.';
    std::fprintf(stderr, "wardenctl: %s\n", message.c_str());
    if (error.exit_code == kExitUsage) {
        std::fprintf(stderr, "Try 'wardenctl --help' for more information.\n");
    } else if (json) {
        json::ObjectWriter object;
        object.add("ok", false);
        object.add("error", message);
        if (!error.bus_error.empty())
            object.add("bus_error", error.bus_error);
        print_json(object.finish());
    }
}

} // namespace
} // namespace warden::ctl

int main(int argc, char **argv) {
    using namespace warden::ctl;
    bool json = false;
    int status = kExitFailure;
    try {
        status = run(argc, argv, json);
    } catch (const CommandError &error) {
        report(error, json);
        status = error.exit_code;
    } catch (const std::bad_alloc &) {
        report({kExitFailure, "Failed to allocate memory", {}}, json);
    } catch (const std::exception &e) {
        report({kExitFailure, std::string("Unexpected internal error: ") + e.what(), {}}, json);
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        std::fprintf(stderr, "wardenctl: Failed to write to standard output: %s.\n", std::strerror(errno));
        return kExitFailure;
    }
    return status;
}
