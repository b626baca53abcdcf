/* One client connection: a request frame from pam_warden.so, the prompts
 * it needs, and one RESULT. State lives in the connection and is bound to
 * the peer's credentials from SO_PEERCRED. */
#pragma once

#include "daemon/audit.h"
#include "daemon/daemon.h"
#include "daemon/secret.h"
#include "protocol/unique_fd.h"
#include "protocol/wire.h"

#include <sys/socket.h>

#include <functional>
#include <string>

namespace warden {

/* How long the daemon waits for a human to answer a prompt. The wait for
 * the request itself is [daemon] request_timeout. */
inline constexpr int kAnswerTimeoutMs = 5 * 60 * 1000;
inline constexpr int kSendTimeoutMs = 5 * 1000;

/* Whose tighter limit applies to a request: a set-uid program's real uid
 * (kCallerUid), trusted only from root peers; any other peer's own uid. */
uid_t caller_uid_of(const wire::Frame &request, const struct ucred &peer);

/* The remote host of a request, from root peers acting for root only
 * (sshd, login). A non-root caller could name any host, to throttle it or
 * to have fail2ban ban it. su or sudo may name the local host, which would
 * make every local user one source. Such claims are dropped. */
std::string_view trusted_rhost_of(const wire::Frame &request, const struct ucred &peer);

/* The source a request is served fairly against: remote logins share by
 * host, local ones by the caller's uid. The hash queue and the wait for
 * a connection slot both take turns between these keys. */
std::string fairness_key_of(std::string_view rhost, uid_t caller_uid);

class Conversation {
public:
    Conversation(Daemon &daemon, UniqueFd fd, const struct ucred &peer);

    /* Serves the connection to its end. Never throws. */
    void run() noexcept;

private:
    enum class Answer { kOk, kOversized, kAbandoned };

    /* Outcome of the second factor. */
    enum class FactorOutcome {
        kNotNeeded,  /* not asked: mode off, or optional without a factor */
        kAccepted,   /* a valid TOTP code or unused recovery code, now consumed */
        kMissing,    /* required, but the user has no confirmed factor */
        kEmpty,      /* no code given */
        kWrong,      /* not a valid code */
        kReplay,     /* a TOTP step at or before the last accepted one */
        kStoreError, /* the use could not be recorded, so the code is refused */
        kKeyError,   /* the secret did not decrypt under the host key */
    };

    struct SecondFactorState {
        TotpRecord totp;
        bool totp_active = false;
        unsigned recovery_left = 0;
        bool enrolled() const noexcept { return totp_active || recovery_left > 0; }
    };

    /* The tallies a failure of this request counts toward, with their rules. */
    std::vector<std::pair<TallyKey, LockRule>> tallies(bool known) const;
    /* Reads the user and their second factor; false after a store error. */
    bool load_user(UserRecord &ret_record, SecondFactorState &ret_factor, bool &ret_known);
    /* Waits at the attempt gate. Returns false after answering
     * PAM_AUTHINFO_UNAVAIL (timeout or store error); true when the
     * attempt may go ahead or attempt.blocked says it is locked. */
    bool pass_gate(const TallyKeys &keys, AttemptResult &attempt, GatePlace &place);
    /* The wait before a failure is answered, from the counts after it. */
    /* Returns the delay before responding to a failure, from the tallies in
     * attempt and, for a name that is not enrolled, its in-memory tally. */
    unsigned failure_delay(const TallyKeys &keys, const AttemptResult &attempt) const;
    /* Counts a failure of an unknown name in its in-memory tally, once per
     * request, unless that tally is locked. */
    void count_unknown_name();
    /* Logs and audits each lock that this attempt's count started. */
    void report_locks(const std::vector<std::pair<TallyKey, LockRule>> &keys, const AttemptResult &attempt);
    /* Audits a failed attempt, waits the failure delay and sends PAM_AUTH_ERR. */
    void refuse_attempt(AuditReason reason, const std::vector<std::pair<TallyKey, LockRule>> *keys = nullptr,
                        const AttemptResult *attempt = nullptr);
    /* Counts a failed attempt in every tally, unless it repeats a recent
     * wrong password. Returns false when the store could not count it. */
    bool count_failure(const TallyKeys &keys, AttemptResult &attempt, AuditReason reason, std::string_view password);
    /* Clears the caller's tally after a success. */
    StoreStatus settle_success(const TallyKeys &keys);
    static void sleep_ms(unsigned ms);

    StoreStatus load_second_factor(SecondFactorState &ret_state);
    FactorOutcome check_second_factor(const SecondFactorState &factor, std::string_view code);
    static AuditReason factor_reason(FactorOutcome outcome) noexcept;

    void dispatch(const wire::Frame &request);
    void handle_authenticate(const wire::Frame &request);
    void handle_account(const wire::Frame &request);
    void handle_change_password(const wire::Frame &request);
    void handle_session(const wire::Frame &request, bool open);

    /* Applies the caller rule: root may ask about anyone, any other uid
     * only about the user it belongs to. Sends PAM_PERM_DENIED and audits
     * when the rule fails. */
    bool caller_allowed();

    /* Sends a prompt and reads the reply into ret_answer. */
    Answer ask(const char *text, bool is_password, SecretBuffer &ret_answer);
    void tell(wire::PromptStyle style, const std::string &text);
    void send_result(int pam_status, const std::string &message = {});

    /* Runs a password check on the hash pool. Returns false when the pool
     * could not run it (queue full, deadline, shutdown). */
    bool verify_on_pool(const std::string &phc, std::string_view password, VerifyResult &ret_result,
                        const std::function<void()> &meanwhile = {});

    void fail_unavailable(const char *reason);
    std::string fairness_key() const;

    Daemon &daemon_;
    UniqueFd fd_;
    struct ucred peer_;
    std::shared_ptr<const Config> config_;
    AuditContext context_;
    std::uint32_t flags_ = 0;
    uid_t caller_uid_ = 0; /* whose tighter limit applies: see dispatch() */
    Tally unknown_name_;   /* in-memory tally of an unknown user name */
    bool unknown_counted_ = false;
    bool repeated_ = false; /* the last count_failure saw a repeated wrong password */
    std::string accepted_factor_; /* "totp" or "recovery" once a code was accepted */
    int prompts_ = 0;
    bool result_sent_ = false;
};

} // namespace warden
