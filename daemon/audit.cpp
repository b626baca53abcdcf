#include "daemon/audit.h"

#include "daemon/log.h"

#include <syslog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

namespace warden {
namespace {

struct EventInfo {
    const char *name;       /* WARDEN_EVENT */
    const char *message_id;
    int success_priority;
    int failure_priority;
};

EventInfo event_info(AuditEvent event) noexcept {
    using namespace message_id;
    switch (event) {
    case AuditEvent::kAuthSuccess: return {"auth", kAuthSuccess, LOG_INFO, LOG_NOTICE};
    case AuditEvent::kAuthFailure: return {"auth", kAuthFailure, LOG_INFO, LOG_NOTICE};
    case AuditEvent::kLockout: return {"lockout", kLockout, LOG_WARNING, LOG_WARNING};
    case AuditEvent::kUnlock: return {"unlock", kUnlock, LOG_NOTICE, LOG_NOTICE};
    case AuditEvent::kPeerRejected: return {"peer_rejected", kPeerRejected, LOG_WARNING, LOG_WARNING};
    case AuditEvent::kEnroll: return {"enroll", kEnroll, LOG_NOTICE, LOG_NOTICE};
    case AuditEvent::kConfirm: return {"confirm", kConfirm, LOG_NOTICE, LOG_NOTICE};
    case AuditEvent::kRemove: return {"remove", kRemove, LOG_NOTICE, LOG_NOTICE};
    case AuditEvent::kRecoveryUsed: return {"recovery_used", kRecoveryUsed, LOG_NOTICE, LOG_NOTICE};
    case AuditEvent::kRecoveryGenerated:
        return {"recovery_generated", kRecoveryGenerated, LOG_NOTICE, LOG_NOTICE};
    case AuditEvent::kPasswordChanged:
        return {"password_changed", kPasswordChanged, LOG_NOTICE, LOG_NOTICE};
    case AuditEvent::kSessionOpen: return {"session_open", kSessionOpen, LOG_INFO, LOG_NOTICE};
    case AuditEvent::kSessionClose: return {"session_close", kSessionClose, LOG_INFO, LOG_NOTICE};
    case AuditEvent::kConfigRejected:
        return {"config_rejected", kConfigRejected, LOG_WARNING, LOG_WARNING};
    case AuditEvent::kDaemonStart: return {"daemon_start", kDaemonStart, LOG_INFO, LOG_ERR};
    case AuditEvent::kDaemonReload: return {"daemon_reload", kDaemonReload, LOG_INFO, LOG_WARNING};
    case AuditEvent::kDaemonStop: return {"daemon_stop", kDaemonStop, LOG_INFO, LOG_ERR};
    case AuditEvent::kSummary: return {"summary", kSummary, LOG_NOTICE, LOG_NOTICE};
    }
    return {"unknown", kSummary, LOG_NOTICE, LOG_NOTICE};
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
std::size_t utf8_sequence_length(std::string_view s) {
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char c = b(0);
    std::size_t n;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (s.size() < n)
        return 0;
    for (std::size_t i = 1; i < n; i++) {
        if ((b(i) & 0xc0) != 0x80)
            return 0;
    }
    /* Overlong forms, surrogates and code points above U+10FFFF. */
    if (c == 0xe0 && b(1) < 0xa0)
        return 0;
    if (c == 0xed && b(1) > 0x9f)
        return 0;
    if (c == 0xf0 && b(1) < 0x90)
        return 0;
    if (c == 0xf4 && b(1) > 0x8f)
        return 0;
    return n;
}

} // namespace

const char *audit_reason_string(AuditReason reason) noexcept {
    switch (reason) {
    case AuditReason::kNone: return "";
    case AuditReason::kPassword: return "password";
    case AuditReason::kCode: return "code";
    case AuditReason::kReplay: return "replay";
    case AuditReason::kLocked: return "locked";
    case AuditReason::kUnknownUser: return "unknown_user";
    case AuditReason::kNoSecondFactor: return "no_second_factor";
    case AuditReason::kThrottled: return "throttled";
    case AuditReason::kOversized: return "oversized";
    case AuditReason::kStoreError: return "store_error";
    case AuditReason::kKeyError: return "key_error";
    }
    return "";
}

std::string escape_for_log(std::string_view text, std::size_t max_bytes, bool escape_space) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        if (out.size() >= max_bytes) {
            out += "...";
            break;
        }
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\' && !(escape_space && c == ' ')) {
            out += static_cast<char>(c);
            i++;
            continue;
        }
        if (c >= 0x80) {
            std::size_t n = utf8_sequence_length(text.substr(i));
            /* Valid multi-byte characters pass, except the C1 controls
             * U+0080..U+009F, which some terminals obey. */
            if (n > 0 && !(c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0)) {
                out.append(text.substr(i, n));
                i += n;
                continue;
            }
        }
        char escaped[5];
        std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
        out += escaped;
        i++;
    }
    return out;
}

namespace {

constexpr const char *kJournalSocket = "/run/systemd/journal/socket";

/* Sends one entry to journald in its native protocol, without blocking:
 * a journald that stops reading must not hold up logins. sd_journal_sendv
 * would wait for it. A value with a newline goes in the protocol's
 * length-prefixed form. Returns 0, or -errno. */
int send_to_journal(const struct iovec *iov, int count) {
    static const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -EBADF;
    std::string datagram;
    for (int i = 0; i < count; i++) {
        std::string_view field(static_cast<const char *>(iov[i].iov_base), iov[i].iov_len);
        std::size_t equals = field.find('=');
        std::string_view value = field.substr(equals + 1);
        if (equals == std::string_view::npos || value.find('\n') == std::string_view::npos) {
            datagram.append(field).push_back('\n');
            continue;
        }
        datagram.append(field.substr(0, equals)).push_back('\n');
        std::uint64_t size = value.size();
        for (int byte = 0; byte < 8; byte++)
            datagram.push_back(static_cast<char>((size >> (8 * byte)) & 0xff));
        datagram.append(value).push_back('\n');
    }
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, kJournalSocket, std::strlen(kJournalSocket) + 1);
    if (::sendto(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr *>(&addr),
                 sizeof addr) < 0)
        return -errno;
    return 0;
}

/* The MESSAGE of events other than authentication results. */
std::string describe(const AuditRecord &record, const std::string &user, const std::string &uid,
                     const std::string &pid, std::uint64_t count) {
    const std::string factor = record.factor.empty() ? std::string("a factor") : "factor " + record.factor;
    switch (record.event) {
    case AuditEvent::kLockout:
        return record.reason == AuditReason::kThrottled ? "throttled failed logins" : "locked user " + user;
    case AuditEvent::kUnlock: return "unlocked user " + user;
    case AuditEvent::kPeerRejected:
        return "rejected caller uid " + uid + " pid " + pid + " asking about user " + user;
    case AuditEvent::kEnroll:
        return (record.success ? "enrolled " : "failed to enroll ") + factor + " for user " + user;
    case AuditEvent::kConfirm:
        return (record.success ? "confirmed " : "failed to confirm ") + factor + " for user " + user;
    case AuditEvent::kRemove: return "removed " + factor + " of user " + user;
    case AuditEvent::kRecoveryUsed: return "user " + user + " logged in with a recovery code";
    case AuditEvent::kRecoveryGenerated: return "generated new recovery codes for user " + user;
    case AuditEvent::kPasswordChanged:
        return (record.success ? "changed the password of user " : "failed to change the password of user ") + user;
    case AuditEvent::kSessionOpen: return "opened a session for user " + user;
    case AuditEvent::kSessionClose: return "closed a session for user " + user;
    case AuditEvent::kConfigRejected: return "rejected a configuration";
    case AuditEvent::kDaemonStart: return "wardend started";
    case AuditEvent::kDaemonReload:
        return record.success ? "wardend reloaded its configuration" : "wardend kept its configuration";
    case AuditEvent::kDaemonStop: return "wardend stopped";
    case AuditEvent::kSummary:
        return std::to_string(count) + " more events like the last one for user " + user;
    case AuditEvent::kAuthSuccess:
    case AuditEvent::kAuthFailure: break;
    }
    return "audit event";
}

void send_entry(const AuditRecord &record, const AuditContext &context, std::uint64_t count) noexcept {
    try {
        EventInfo info = event_info(record.event);
        int priority = record.success ? info.success_priority : info.failure_priority;
        if (record.reason == AuditReason::kStoreError || record.reason == AuditReason::kKeyError)
            priority = LOG_ERR;

        /* In MESSAGE a space would start a new key=value pair, so it is
         * escaped there too. */
        std::string user = escape_for_log(context.user, 64, /* escape_space= */ true);
        std::string service = escape_for_log(context.service, 64, true);
        std::string rhost = escape_for_log(context.rhost, 128, true);
        std::string ruser = escape_for_log(context.ruser, 64, true);
        std::string tty = escape_for_log(context.tty, 64, true);
        std::string uid = context.peer_uid == static_cast<uid_t>(-1) ? "" : std::to_string(context.peer_uid);

        std::string message;
        if (record.event == AuditEvent::kAuthFailure) {
            /* The shape of pam_unix's line, so fail2ban and friends match it. */
            message = "pam_warden(" + service + ":auth): authentication failure; logname= uid=" + uid +
                      " euid=" + uid + " tty=" + tty + " ruser=" + ruser + " rhost=" + rhost +
                      " user=" + user;
        } else if (record.event == AuditEvent::kSummary && record.summarised == AuditEvent::kAuthFailure) {
            message = "pam_warden(" + service + ":auth): " + std::to_string(count) +
                      " more authentication failures; logname= uid=" + uid + " euid=" + uid + " tty=" + tty +
                      " ruser=" + ruser + " rhost=" + rhost + " user=" + user;
        } else if (record.event == AuditEvent::kAuthSuccess) {
            message = "pam_warden(" + service + ":auth): authentication success; uid=" + uid + " tty=" +
                      tty + " ruser=" + ruser + " rhost=" + rhost + " user=" + user;
        } else if (record.event == AuditEvent::kUnlock && context.user.empty()) {
            message = "cleared the failure count of remote host " + escape_for_log(context.rhost, 128);
        } else {
            message = describe(record, "'" + escape_for_log(context.user, 64) + "'", uid,
                               context.peer_pid ? std::to_string(context.peer_pid) : "?", count);
        }
        /* Authentication lines keep pam_unix's exact shape; their reason is
         * in WARDEN_REASON. */
        bool pam_shaped = record.event == AuditEvent::kAuthFailure || record.event == AuditEvent::kAuthSuccess ||
                          (record.event == AuditEvent::kSummary && record.summarised == AuditEvent::kAuthFailure);
        if (record.reason != AuditReason::kNone && !pam_shaped)
            message += std::string(" reason=") + audit_reason_string(record.reason);
        if (!record.detail.empty() && !pam_shaped)
            message += ": " + escape_for_log(record.detail, 512);

        std::string f_message = "MESSAGE=" + message;
        std::string f_id = std::string("MESSAGE_ID=") + info.message_id;
        std::string f_priority = "PRIORITY=" + std::to_string(priority);
        std::string f_event = std::string("WARDEN_EVENT=") + info.name;
        std::string f_user = "WARDEN_USER=" + escape_for_log(context.user, 64);
        std::string f_service = "WARDEN_SERVICE=" + escape_for_log(context.service, 64);
        std::string f_rhost = "WARDEN_RHOST=" + escape_for_log(context.rhost, 128);
        std::string f_tty = "WARDEN_TTY=" + escape_for_log(context.tty, 64);
        std::string f_ruser = "WARDEN_RUSER=" + escape_for_log(context.ruser, 64);
        std::string f_uid = "WARDEN_PEER_UID=" + uid;
        std::string f_pid = "WARDEN_PEER_PID=" + (context.peer_pid ? std::to_string(context.peer_pid) : "");
        std::string f_result = std::string("WARDEN_RESULT=") + (record.success ? "success" : "failure");
        std::string f_reason = std::string("WARDEN_REASON=") + audit_reason_string(record.reason);
        std::string f_factor = "WARDEN_FACTOR=" + record.factor;
        std::string f_count = "WARDEN_COUNT=" + std::to_string(count);
        std::string f_ident = "SYSLOG_IDENTIFIER=wardend";
        std::string f_facility = "SYSLOG_FACILITY=10"; /* authpriv */

        struct iovec iov[17];
        int n = 0;
        auto push = [&](const std::string &s) {
            iov[n].iov_base = const_cast<char *>(s.data());
            iov[n].iov_len = s.size();
            n++;
        };
        push(f_message);
        push(f_id);
        push(f_priority);
        push(f_event);
        push(f_result);
        push(f_ident);
        push(f_facility);
        if (!context.user.empty())
            push(f_user);
        if (!context.service.empty())
            push(f_service);
        if (!context.rhost.empty())
            push(f_rhost);
        if (!context.tty.empty())
            push(f_tty);
        if (!context.ruser.empty())
            push(f_ruser);
        if (!uid.empty())
            push(f_uid);
        if (context.peer_pid)
            push(f_pid);
        if (record.reason != AuditReason::kNone)
            push(f_reason);
        if (!record.factor.empty())
            push(f_factor);
        if (record.event == AuditEvent::kSummary)
            push(f_count);

        /* The whole entry, every field but MESSAGE first, for the
         * operational log when journald cannot take it. */
        auto whole_entry = [&] {
            /* Fields are separated by spaces, so a space inside a value is
             * escaped: a user name cannot add a field of its own. */
            std::string text;
            for (int i = 1; i < n; i++) {
                std::string_view field(static_cast<const char *>(iov[i].iov_base), iov[i].iov_len);
                for (char ch : field) {
                    if (ch == ' ')
                        text += "\\x20";
                    else
                        text.push_back(ch);
                }
                text.push_back(' ');
            }
            return text + f_message;
        };
        /* Without journald's socket, as in a container without systemd,
         * the entry goes to the operational log. */
        if (::access(kJournalSocket, F_OK) != 0) {
            log::info("audit {}", whole_entry());
            return;
        }
        /* A socket file whose journald is gone, or one that is full,
         * refuses the entry: it goes to the operational log whole, so
         * nothing of it is lost and no login waits for journald. */
        int r = send_to_journal(iov, n);
        if (r < 0)
            log::error("Failed to send audit event '{}' to journald: {}; the entry: {}", info.name, std::strerror(-r),
                       whole_entry());
    } catch (...) {
        log::error("Failed to build an audit event: out of memory");
    }
}

/* Most distinct (user, rhost, reason) keys tracked at once. Beyond it,
 * failures are written without limiting rather than forgotten. */
constexpr std::size_t kMaxTrackedKeys = 4096;

class RepeatLimiter {
public:
    void start(const AuditLimits &limits) {
        std::lock_guard lock(mutex_);
        limits_ = limits;
        if (thread_.joinable())
            return;
        stopping_ = false;
        thread_ = std::thread([this] { run(); });
    }

    void set_limits(const AuditLimits &limits) {
        std::lock_guard lock(mutex_);
        limits_ = limits;
    }

    void stop() noexcept {
        {
            std::lock_guard lock(mutex_);
            if (!thread_.joinable())
                return;
            stopping_ = true;
        }
        wake_.notify_all();
        thread_.join();
        flush(/* everything= */ true);
    }

    /* Returns true when the failure should be written now. */
    bool admit(const AuditRecord &record, const AuditContext &context) {
        std::lock_guard lock(mutex_);
        if (!thread_.joinable())
            return true;
        /* Failures repeat per user, host and reason; the other limited
         * events per user and calling uid. */
        int detail = record.event == AuditEvent::kAuthFailure ? static_cast<int>(record.reason)
                                                              : static_cast<int>(context.peer_uid);
        Key key{static_cast<int>(record.event), context.user, context.rhost, detail};
        auto now = std::chrono::steady_clock::now();
        auto it = windows_.find(key);
        if (it != windows_.end() && now - it->second.start >= std::chrono::seconds(limits_.interval)) {
            emit_summary(it->second);
            windows_.erase(it);
            it = windows_.end();
        }
        if (it == windows_.end()) {
            if (windows_.size() >= kMaxTrackedKeys)
                return true;
            windows_.emplace(key, Window{now, 1, 0, record, context});
            return true;
        }
        Window &w = it->second;
        if (w.written < limits_.burst) {
            w.written++;
            return true;
        }
        w.suppressed++;
        w.record = record;
        w.context = context;
        return false;
    }

private:
    using Key = std::tuple<int, std::string, std::string, int>;
    struct Window {
        std::chrono::steady_clock::time_point start;
        unsigned written;
        std::uint64_t suppressed;
        AuditRecord record;
        AuditContext context;
    };

    void run() {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            wake_.wait_for(lock, std::chrono::seconds(1));
            auto now = std::chrono::steady_clock::now();
            for (auto it = windows_.begin(); it != windows_.end();) {
                if (now - it->second.start >= std::chrono::seconds(limits_.interval)) {
                    emit_summary(it->second);
                    it = windows_.erase(it);
                } else {
                    ++it;
                }
            }
        }
    }

    void flush(bool everything) noexcept {
        std::lock_guard lock(mutex_);
        for (auto &entry : windows_) {
            if (everything)
                emit_summary(entry.second);
        }
        windows_.clear();
    }

    static void emit_summary(const Window &w) noexcept {
        if (w.suppressed == 0)
            return;
        AuditRecord summary = w.record;
        summary.summarised = w.record.event;
        summary.event = AuditEvent::kSummary;
        summary.success = false;
        send_entry(summary, w.context, w.suppressed);
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::thread thread_;
    bool stopping_ = false;
    AuditLimits limits_;
    std::map<Key, Window> windows_;
};

RepeatLimiter &limiter() {
    static RepeatLimiter instance;
    return instance;
}

} // namespace

bool audit(const AuditRecord &record, const AuditContext &context) noexcept {
    /* Events a caller can trigger at will are limited, so no one can
     * flood the journal and push real failures out of it. */
    bool limited = record.event == AuditEvent::kAuthFailure || record.event == AuditEvent::kPeerRejected ||
                   record.event == AuditEvent::kSessionOpen || record.event == AuditEvent::kSessionClose;
    try {
        if (limited && !limiter().admit(record, context))
            return false;
    } catch (...) {
        /* Out of memory in the limiter: write the entry unlimited. */
    }
    send_entry(record, context, 1);
    return true;
}

void audit_start(const AuditLimits &limits) {
    if (::access(kJournalSocket, F_OK) != 0)
        log::warning("journald is not running ({} is missing); audit events go to this log instead", kJournalSocket);
    limiter().start(limits);
}

void audit_set_limits(const AuditLimits &limits) { limiter().set_limits(limits); }

void audit_stop() noexcept { limiter().stop(); }

} // namespace warden
