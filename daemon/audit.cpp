#include "daemon/audit.h"

#include "daemon/log.h"

#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

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

std::string escape_for_log(std::string_view text, std::size_t max_bytes) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        if (out.size() >= max_bytes) {
            out += "...";
            break;
        }
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
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

void audit(const AuditRecord &record, const AuditContext &context) noexcept {
    try {
        EventInfo info = event_info(record.event);
        int priority = record.success ? info.success_priority : info.failure_priority;
        if (record.reason == AuditReason::kStoreError || record.reason == AuditReason::kKeyError)
            priority = LOG_ERR;

        std::string user = escape_for_log(context.user, 64);
        std::string service = escape_for_log(context.service, 64);
        std::string rhost = escape_for_log(context.rhost, 128);
        std::string ruser = escape_for_log(context.ruser, 64);
        std::string tty = escape_for_log(context.tty, 64);
        std::string uid = context.peer_uid == static_cast<uid_t>(-1) ? "" : std::to_string(context.peer_uid);

        std::string message;
        if (record.event == AuditEvent::kAuthFailure) {
            /* The shape of pam_unix's line, so fail2ban and friends match it. */
            message = "pam_warden(" + service + ":auth): authentication failure; logname= uid=" + uid +
                      " euid=" + uid + " tty=" + tty + " ruser=" + ruser + " rhost=" + rhost +
                      " user=" + user;
        } else if (record.event == AuditEvent::kAuthSuccess) {
            message = "pam_warden(" + service + ":auth): authentication success; uid=" + uid + " tty=" +
                      tty + " ruser=" + ruser + " rhost=" + rhost + " user=" + user;
        } else {
            message = std::string(info.name) + (record.success ? "" : " failed");
            if (!context.user.empty())
                message += " for user '" + user + "'";
            if (!record.factor.empty())
                message += " (factor " + record.factor + ")";
        }
        if (record.reason != AuditReason::kNone)
            message += std::string(" reason=") + audit_reason_string(record.reason);
        if (!record.detail.empty())
            message += ": " + escape_for_log(record.detail, 512);

        std::string f_message = "MESSAGE=" + message;
        std::string f_id = std::string("MESSAGE_ID=") + info.message_id;
        std::string f_priority = "PRIORITY=" + std::to_string(priority);
        std::string f_event = std::string("WARDEN_EVENT=") + info.name;
        std::string f_user = "WARDEN_USER=" + user;
        std::string f_service = "WARDEN_SERVICE=" + service;
        std::string f_rhost = "WARDEN_RHOST=" + rhost;
        std::string f_tty = "WARDEN_TTY=" + tty;
        std::string f_ruser = "WARDEN_RUSER=" + ruser;
        std::string f_uid = "WARDEN_PEER_UID=" + uid;
        std::string f_pid = "WARDEN_PEER_PID=" + (context.peer_pid ? std::to_string(context.peer_pid) : "");
        std::string f_result = std::string("WARDEN_RESULT=") + (record.success ? "success" : "failure");
        std::string f_reason = std::string("WARDEN_REASON=") + audit_reason_string(record.reason);
        std::string f_factor = "WARDEN_FACTOR=" + record.factor;
        std::string f_ident = "SYSLOG_IDENTIFIER=wardend";
        std::string f_facility = "SYSLOG_FACILITY=10"; /* authpriv */

        struct iovec iov[16];
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

        int r = sd_journal_sendv(iov, n);
        if (r < 0)
            log::error("Failed to send audit event '{}' to journald: {}", info.name, std::strerror(-r));
    } catch (...) {
        log::error("Failed to build an audit event: out of memory");
    }
}

} // namespace warden
