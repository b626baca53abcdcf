/* Audit events: one structured journald entry per security decision, kept
 * apart from the operational log. Each event type has a fixed MESSAGE_ID,
 * documented in systemd/warden.catalog. */
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace warden {

enum class AuditEvent {
    kAuthSuccess,
    kAuthFailure,
    kLockout,
    kUnlock,
    kPeerRejected,
    kEnroll,
    kConfirm,
    kRemove,
    kRecoveryUsed,
    kRecoveryGenerated,
    kPasswordChanged,
    kSessionOpen,
    kSessionClose,
    kConfigRejected,
    kDaemonStart,
    kDaemonReload,
    kDaemonStop,
    kSummary,
};

/* MESSAGE_IDs, made once with systemd-id128 new. Never change one. */
namespace message_id {
inline constexpr const char *kAuthSuccess = "f65d1230756b4c6685e0c313f068db94";
inline constexpr const char *kAuthFailure = "c6b96dfc15f1473e9203cbf4fd5d6db8";
inline constexpr const char *kLockout = "420a1171f63a40ea80a34527e5e758f6";
inline constexpr const char *kUnlock = "94860c94b7e34c83b1f0ec3291ba161b";
inline constexpr const char *kPeerRejected = "0426f6860b8d4281b4e895aa8261bc48";
inline constexpr const char *kEnroll = "674ca47fb1404ad68ffd71f4719b6027";
inline constexpr const char *kConfirm = "e9c208972a654d709dc69933abcfce64";
inline constexpr const char *kRemove = "cca0e9b0e368492c81eb9bcd2d220619";
inline constexpr const char *kRecoveryUsed = "97394784ec4e486e9ff12605b5d63219";
inline constexpr const char *kRecoveryGenerated = "39de3ec41c974f17a910918ef4ba02fd";
inline constexpr const char *kPasswordChanged = "05d0a1092b9940ea9b409bf96e0ae2bd";
inline constexpr const char *kSessionOpen = "d89015f8b9e34bda98260527e6cd1483";
inline constexpr const char *kSessionClose = "9f476bd6c66e4f6ba1769b36d0975093";
inline constexpr const char *kConfigRejected = "31f36527981c48168c0f9bee6c6481cf";
inline constexpr const char *kDaemonStart = "c1df7c4164b6450a97c18473cd8a51dd";
inline constexpr const char *kDaemonReload = "598986f82588424ea365ffb15272ae04";
inline constexpr const char *kDaemonStop = "4fd51b1463e94d05a10da32e00efaf35";
inline constexpr const char *kSummary = "59d50cd31a3d4bab9cd013aa8047cefa";
} // namespace message_id

/* Failure reasons, the values of WARDEN_REASON. */
enum class AuditReason {
    kNone,
    kPassword,
    kCode,
    kReplay,
    kLocked,
    kUnknownUser,
    kNoSecondFactor,
    kThrottled,
    kOversized,
    kStoreError,
    kKeyError,
};

const char *audit_reason_string(AuditReason reason) noexcept;

/* The request's context and the peer's credentials. */
struct AuditContext {
    std::string user;
    std::string service;
    std::string rhost;
    std::string ruser;
    std::string tty;
    uid_t peer_uid = static_cast<uid_t>(-1);
    pid_t peer_pid = 0;
};

struct AuditRecord {
    AuditEvent event;
    bool success = false;
    AuditReason reason = AuditReason::kNone;
    std::string factor;  /* WARDEN_FACTOR: the factor enrolled, confirmed or removed, or those a login passed */
    std::string detail;  /* free text appended to MESSAGE; never a secret */
    AuditEvent summarised = AuditEvent::kAuthFailure; /* for kSummary: the event counted */
};

/* Replaces control characters, backslashes and invalid UTF-8 with \xNN
 * escapes and bounds the length, so a user-chosen string can forge
 * neither a line nor a field. With escape_space, spaces become \x20 too,
 * for values inside a key=value line. */
std::string escape_for_log(std::string_view text, std::size_t max_bytes = 256, bool escape_space = false);

/* Sends one audit entry to journald. Never throws; a failure to send is
 * reported on the operational log. Authentication failures, rejected
 * callers and sessions pass through the repeat limiter first (see
 * audit_start). Returns false when the limiter held the entry back, so a
 * caller can skip its own log line too. */
bool audit(const AuditRecord &record, const AuditContext &context) noexcept;

/* Repeat limiting of authentication failures. Within each interval, the
 * first `burst` failures with the same user, remote host and reason are
 * written one by one; the rest are counted, and when the interval ends a
 * single `summary` entry carries their number in WARDEN_COUNT. A brute
 * force therefore neither floods the journal nor goes unrecorded. */
struct AuditLimits {
    unsigned burst = 5;
    unsigned interval = 60; /* seconds */
};

/* Starts the thread that writes summaries when their interval ends. */
void audit_start(const AuditLimits &limits);
void audit_set_limits(const AuditLimits &limits);

/* Writes every pending summary and stops the thread. */
void audit_stop() noexcept;

} // namespace warden
