#include "daemon/conversation.h"

#include "daemon/log.h"
#include "daemon/totp.h"
#include "protocol/limits.h"
#include "protocol/recovery_code.h"
#include "protocol/transport.h"
#include "protocol/user_name.h"

#include <pwd.h>
#include <security/_pam_types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cstring>
#include <vector>

namespace warden {
namespace {

constexpr const char *kPasswordPrompt = "Password: ";
constexpr const char *kCodePrompt = "Verification code: ";
constexpr const char *kCombinedPrompt = "Password and verification code: ";
constexpr const char *kGenericFailure = "Authentication failed";

/* The store tally that all unknown user names share. */
constexpr const char *kUnknownUsersTally = "unknown-users";

/* A deny count no tally reaches. */
constexpr unsigned kNeverLocks = 1000000000;

/* Looks up the name of uid in the passwd database. */
bool user_name_of(uid_t uid, std::string &ret_name) {
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
    struct passwd pw;
    struct passwd *result = nullptr;
    if (getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &result) != 0 || !result)
        return false;
    ret_name = result->pw_name;
    return true;
}

/* Where the code starts in a combined answer: a recovery code typed with
 * its dash ("xxxxx-xxxxx") if the answer ends in one, otherwise the last
 * `digits` characters. */
std::size_t split_combined_answer(std::string_view both, std::size_t digits) {
    constexpr std::size_t recovery = kRecoveryCodeDisplayChars;
    std::string normalized;
    if (both.size() > recovery && both[both.size() - 6] == '-' &&
        normalize_recovery_code(both.substr(both.size() - recovery), normalized)) {
        sodium_memzero(normalized.data(), normalized.size());
        return both.size() - recovery;
    }
    return both.size() > digits ? both.size() - digits : 0;
}

std::string request_name(wire::FrameType type) {
    switch (type) {
    case wire::FrameType::kAuthenticate: return "authenticate";
    case wire::FrameType::kAccount: return "account";
    case wire::FrameType::kChangePassword: return "chauthtok";
    case wire::FrameType::kOpenSession: return "open_session";
    case wire::FrameType::kCloseSession: return "close_session";
    default: return "unexpected";
    }
}

} // namespace

uid_t caller_uid_of(const wire::Frame &request, const struct ucred &peer) {
    if (peer.uid == 0 && request.has(wire::FieldTag::kCallerUid))
        return request.get_u32(wire::FieldTag::kCallerUid);
    return peer.uid;
}

std::string_view trusted_rhost_of(const wire::Frame &request, const struct ucred &peer) {
    return peer.uid == 0 && caller_uid_of(request, peer) == 0 ? request.get(wire::FieldTag::kRhost)
                                                              : std::string_view();
}

std::string fairness_key_of(std::string_view rhost, uid_t caller_uid) {
    if (!rhost.empty())
        return "rhost:" + std::string(rhost);
    return "uid:" + std::to_string(caller_uid);
}

Conversation::Conversation(Daemon &daemon, UniqueFd fd, const struct ucred &peer)
    : daemon_(daemon), fd_(std::move(fd)), peer_(peer), config_(daemon.config()) {
    context_.peer_uid = peer.uid;
    context_.peer_pid = peer.pid;
}

void Conversation::run() noexcept {
    try {
        SecretBuffer buffer(kMaxFrameSize);
        std::size_t size = 0;
        auto bytes = std::span<std::byte>(reinterpret_cast<std::byte *>(buffer.data()), buffer.capacity());
        transport::Status status = transport::receive_frame(fd_.get(), bytes, static_cast<int>(config_->request_timeout) * 1000, size);
        if (status != transport::Status::kOk) {
            log::debug("Connection from pid {} uid {} ended before a request: {}", peer_.pid, peer_.uid,
                       transport::status_string(status));
            return;
        }
        wire::Frame request;
        wire::DecodeError error;
        if (!wire::decode(bytes.first(size), request, error)) {
            log::error("Failed to decode request from pid {} uid {}: {}", peer_.pid, peer_.uid,
                       wire::decode_error_string(error));
            send_result(PAM_SERVICE_ERR);
            return;
        }
        dispatch(request);
    } catch (const std::bad_alloc &) {
        log::error("Failed to serve pid {} uid {}: out of memory", peer_.pid, peer_.uid);
        fail_unavailable("out of memory");
    } catch (const std::exception &e) {
        log::error("Failed to serve pid {} uid {}: {}", peer_.pid, peer_.uid, e.what());
        fail_unavailable("internal error");
    }
}

void Conversation::dispatch(const wire::Frame &request) {
    using wire::FieldTag;
    context_.service = std::string(request.get(FieldTag::kService));
    context_.user = std::string(request.get(FieldTag::kUser));
    context_.rhost = std::string(trusted_rhost_of(request, peer_));
    if (peer_.uid != 0 && request.has(FieldTag::kRhost))
        log::debug("Ignored the remote host named by non-root pid {} uid {}", peer_.pid, peer_.uid);
    context_.ruser = std::string(request.get(FieldTag::kRuser));
    context_.tty = std::string(request.get(FieldTag::kTty));
    flags_ = request.get_u32(FieldTag::kFlags);
    caller_uid_ = caller_uid_of(request, peer_);

    log::debug("Request {} for user '{}' service '{}' from pid {} uid {}", request_name(request.type),
               escape_for_log(context_.user, 64), escape_for_log(context_.service, 64), peer_.pid, peer_.uid);

    switch (request.type) {
    case wire::FrameType::kAuthenticate:
        return handle_authenticate(request);
    case wire::FrameType::kAccount:
        return handle_account(request);
    case wire::FrameType::kChangePassword:
        return handle_change_password(request);
    case wire::FrameType::kOpenSession:
        return handle_session(request, true);
    case wire::FrameType::kCloseSession:
        return handle_session(request, false);
    default:
        log::error("Failed to serve pid {} uid {}: frame type {} is not a request", peer_.pid, peer_.uid,
                   static_cast<int>(request.type));
        send_result(PAM_SERVICE_ERR);
    }
}

bool Conversation::caller_allowed() {
    if (peer_.uid == 0)
        return true;
    std::string own_name;
    if (user_name_of(peer_.uid, own_name) && own_name == context_.user)
        return true;

    daemon_.counters().peer_rejected++;
    if (audit({AuditEvent::kPeerRejected, false, AuditReason::kNone, {},
               "uid " + std::to_string(peer_.uid) + " asked about another user"},
              context_))
        log::warning("Rejected pid {} uid {}: a non-root caller may only ask about its own user, asked for '{}'",
                     peer_.pid, peer_.uid, escape_for_log(context_.user, 64));
    send_result(PAM_PERM_DENIED);
    return false;
}

Conversation::Answer Conversation::ask(const char *text, bool is_password, SecretBuffer &ret_answer) {
    if (++prompts_ > kMaxPromptsPerConversation)
        return Answer::kAbandoned;

    std::byte out[kMaxFrameSize];
    wire::FrameBuilder builder(wire::FrameType::kPrompt, out);
    builder.add_u8(wire::FieldTag::kStyle, static_cast<std::uint8_t>(wire::PromptStyle::kEchoOff));
    builder.add(wire::FieldTag::kText, text);
    if (is_password)
        builder.add_u32(wire::FieldTag::kFlags, wire::kPromptIsPassword);
    if (transport::send_frame(fd_.get(), builder.finish(), kSendTimeoutMs) != transport::Status::kOk)
        return Answer::kAbandoned;

    SecretBuffer buffer(kMaxFrameSize);
    auto bytes = std::span<std::byte>(reinterpret_cast<std::byte *>(buffer.data()), buffer.capacity());
    std::size_t size = 0;
    transport::Status status = transport::receive_frame(fd_.get(), bytes, kAnswerTimeoutMs, size);
    if (status != transport::Status::kOk) {
        log::debug("Conversation with pid {} for '{}' abandoned: {}", peer_.pid,
                   escape_for_log(context_.user, 64), transport::status_string(status));
        return Answer::kAbandoned;
    }
    wire::Frame frame;
    wire::DecodeError error;
    if (!wire::decode(bytes.first(size), frame, error) || frame.type != wire::FrameType::kAnswer) {
        log::error("Failed to read an answer from pid {} uid {}: {}", peer_.pid, peer_.uid,
                   frame.type != wire::FrameType::kAnswer && error == wire::DecodeError::kNone
                           ? "not an ANSWER frame"
                           : wire::decode_error_string(error));
        return Answer::kAbandoned;
    }
    std::string_view answer = frame.get(wire::FieldTag::kAnswer);
    ret_answer = SecretBuffer::copy_of(answer);
    buffer.clear();
    return answer.size() > kMaxSecretSize ? Answer::kOversized : Answer::kOk;
}

void Conversation::tell(wire::PromptStyle style, const std::string &text) {
    if (flags_ & wire::kFlagSilent)
        return;
    std::byte out[kMaxFrameSize];
    wire::FrameBuilder builder(wire::FrameType::kPrompt, out);
    builder.add_u8(wire::FieldTag::kStyle, static_cast<std::uint8_t>(style));
    builder.add(wire::FieldTag::kText, std::string_view(text).substr(0, kMaxPromptTextSize));
    (void)transport::send_frame(fd_.get(), builder.finish(), kSendTimeoutMs);
}

void Conversation::send_result(int pam_status, const std::string &message) {
    if (result_sent_)
        return;
    result_sent_ = true;
    if (pam_status == PAM_AUTHINFO_UNAVAIL)
        daemon_.counters().unavailable++;
    std::byte out[kMaxFrameSize];
    wire::FrameBuilder builder(wire::FrameType::kResult, out);
    builder.add_u32(wire::FieldTag::kStatus, static_cast<std::uint32_t>(pam_status));
    if (!message.empty() && !(flags_ & wire::kFlagSilent))
        builder.add(wire::FieldTag::kMessage, std::string_view(message).substr(0, kMaxPromptTextSize));
    transport::Status status = transport::send_frame(fd_.get(), builder.finish(), kSendTimeoutMs);
    if (status != transport::Status::kOk)
        log::warning("Failed to send the result to pid {} uid {}: {}", peer_.pid, peer_.uid,
                     transport::status_string(status));
}

void Conversation::fail_unavailable(const char *reason) {
    log::warning("Responding to pid {} uid {} for '{}' with PAM_AUTHINFO_UNAVAIL: {}", peer_.pid, peer_.uid,
                 escape_for_log(context_.user, 64), reason);
    send_result(PAM_AUTHINFO_UNAVAIL);
}

bool Conversation::verify_on_pool(const std::string &phc, std::string_view password, VerifyResult &ret_result,
                                  const std::function<void()> &meanwhile) {
    Argon2Policy policy{config_->argon2_memory_kib, config_->argon2_iterations};
    VerifyResult result = VerifyResult::kMismatch;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config_->queue_timeout);
    HashPool::Outcome outcome =
            daemon_.pool().run([&] { result = verify_password(phc, password, policy); }, deadline, fairness_key(),
                               meanwhile);
    if (outcome != HashPool::Outcome::kDone) {
        log::warning("Failed to schedule a password check for '{}' from pid {}: {}",
                     escape_for_log(context_.user, 64), peer_.pid,
                     outcome == HashPool::Outcome::kQueueFull  ? "queue full"
                     : outcome == HashPool::Outcome::kTimedOut ? "queue deadline passed"
                                                               : "daemon stopping");
        return false;
    }
    ret_result = result;
    return true;
}

std::string Conversation::fairness_key() const { return fairness_key_of(context_.rhost, caller_uid_); }

void Conversation::handle_authenticate(const wire::Frame &request) {
    using wire::FieldTag;
    if (!caller_allowed())
        return;

    bool want_password = flags_ & wire::kFlagFactorPassword;
    bool want_code = flags_ & wire::kFlagFactorTotp;
    if (!want_password && !want_code)
        want_password = want_code = true;
    bool combined = flags_ & wire::kFlagPromptCombined;

    /* What the user is asked depends on what they have enrolled. */
    UserRecord record;
    SecondFactorState factor;
    bool known = false;
    if (!load_user(record, factor, known))
        return fail_unavailable("store read failed");
    bool mfa_applies = config_->mfa_mode == MfaMode::kRequired ||
                       (config_->mfa_mode == MfaMode::kOptional && factor.enrolled());
    bool ask_code = want_code && mfa_applies;
    bool code_asked = ask_code;

    SecretBuffer password;
    SecretBuffer code;
    bool oversized = false;
    bool try_first = false;

    if (want_password) {
        if (request.has(FieldTag::kAuthtok)) {
            password = SecretBuffer::copy_of(request.get(FieldTag::kAuthtok));
            oversized = password.size() > kMaxSecretSize;
            try_first = !(flags_ & wire::kFlagAuthtokOnly);
        } else if (flags_ & wire::kFlagAuthtokOnly) {
            /* use_first_pass with nothing stacked: no prompt, nothing counted. */
            log::info("No password on the stack for '{}' with use_first_pass", escape_for_log(context_.user, 64));
            audit({AuditEvent::kAuthFailure, false, AuditReason::kPassword, {}, "no stacked password"}, context_);
            return send_result(PAM_AUTH_ERR, kGenericFailure);
        } else if (combined && ask_code) {
            SecretBuffer both;
            Answer a = ask(kCombinedPrompt, false, both);
            if (a == Answer::kAbandoned)
                return;
            oversized = a == Answer::kOversized;
            std::size_t digits = factor.totp_active ? factor.totp.digits : config_->totp_digits;
            std::size_t split = split_combined_answer(both.view(), digits);
            password = SecretBuffer::copy_of(both.view().substr(0, split));
            code = SecretBuffer::copy_of(both.view().substr(split));
            ask_code = false;
        } else {
            Answer a = ask(kPasswordPrompt, true, password);
            if (a == Answer::kAbandoned)
                return;
            oversized = a == Answer::kOversized;
        }
    }
    if (ask_code) {
        /* Both prompts are always shown, so the second never tells whether
         * the password was right. */
        Answer a = ask(kCodePrompt, false, code);
        if (a == Answer::kAbandoned)
            return;
        oversized = oversized || a == Answer::kOversized;
    }

    /* Answers can take minutes. Check them against the records as they are
     * now, so a lock, a new password or a removed factor from meanwhile
     * applies to this attempt. */
    if (!load_user(record, factor, known))
        return fail_unavailable("store read failed");
    if (!known && (flags_ & wire::kFlagPassUnknown)) {
        /* pass_unknown: the stack goes on to pam_unix or the like, which
         * alone judges this user. Warden counts, audits and throttles
         * nothing for them, so those logins neither throttle their host
         * nor read as failures. */
        log::debug("User '{}' is not enrolled; passed on to the next module", escape_for_log(context_.user, 64));
        return send_result(PAM_USER_UNKNOWN);
    }
    mfa_applies = config_->mfa_mode == MfaMode::kRequired ||
                  (config_->mfa_mode == MfaMode::kOptional && factor.enrolled());

    /* At most `deny` unjudged attempts per tally are let through at once,
     * and each is counted only once it has failed: many guesses at once
     * cannot test more than the limit, and many right answers at once
     * cannot lock anyone out. */
    TallyKeys keys = tallies(known);
    AttemptResult attempt;
    GatePlace place(daemon_.gate(), keys);
    if (!pass_gate(keys, attempt, place))
        return;
    bool counted = false;

    /* Always run one Argon2 verification, against a dummy hash when the
     * user is unknown or locked, so the time taken does not tell them
     * apart, and a locked user's password is never tested. */
    const std::string phc = known && !attempt.blocked ? record.password_hash : daemon_.dummy_hash();
    VerifyResult verdict = VerifyResult::kMismatch;

    /* The code is checked, and a valid one consumed, whatever the password
     * was: a watched code buys an attacker no second try. Its durable
     * commit runs while a worker hashes the password, so a TOTP login
     * costs no more time than a password login. */
    bool check_code = want_code && mfa_applies && code_asked;
    FactorOutcome second = FactorOutcome::kNotNeeded;
    bool second_checked = false;
    auto check_code_now = [&] {
        second = check_second_factor(factor, code.view());
        second_checked = true;
    };
    std::function<void()> meanwhile;
    if (check_code && known && !attempt.blocked)
        meanwhile = check_code_now;

    if (want_password) {
        std::string_view candidate = oversized ? std::string_view() : password.view();
        if (!verify_on_pool(phc, candidate, verdict, meanwhile))
            return fail_unavailable("hash pool unavailable");
        if (try_first && verdict == VerifyResult::kMismatch && !attempt.blocked) {
            /* try_first_pass: the stacked password failed. It is counted
             * now, so hanging up at the next prompt gains nothing, and the
             * prompt comes after the usual delay. A count that locked a
             * tally ends the attempt here. */
            if (!count_failure(keys, attempt, AuditReason::kPassword, password.view()))
                return fail_unavailable("store write failed");
            if (!known && !repeated_)
                count_unknown_name();
            if (std::find(attempt.locked_now.begin(), attempt.locked_now.end(), true) != attempt.locked_now.end())
                return refuse_attempt(AuditReason::kPassword, &keys, &attempt);
            sleep_ms(failure_delay(keys, attempt));
            Answer a = ask(kPasswordPrompt, true, password);
            if (a == Answer::kAbandoned)
                return;
            oversized = a == Answer::kOversized;
            candidate = oversized ? std::string_view() : password.view();
            /* The typed password is a second guess: it waits at the gate
             * like a new attempt, and counts when it is wrong. */
            place.release();
            if (!pass_gate(keys, attempt, place))
                return;
            if (!verify_on_pool(attempt.blocked ? daemon_.dummy_hash() : phc, candidate, verdict))
                return fail_unavailable("hash pool unavailable");
        }
    }

    if (attempt.blocked) {
        /* Refused before any check: the code is not consumed and nothing is
         * counted, so a lock cannot be extended from outside. */
        AuditReason reason = AuditReason::kLocked;
        for (std::size_t i = 0; i < keys.size(); i++) {
            if (attempt.locked[i] && keys[i].first.kind == TallyKey::Kind::kBucket)
                reason = AuditReason::kThrottled;
        }
        for (std::size_t i = 0; i < keys.size(); i++) {
            if (attempt.locked[i] && keys[i].first.kind == TallyKey::Kind::kUser)
                reason = AuditReason::kLocked;
        }
        return refuse_attempt(reason);
    }

    if (known && (verdict == VerifyResult::kUnsupported || verdict == VerifyResult::kTooCostly)) {
        log::error("Refused to verify the stored hash of user '{}': {}", context_.user,
                   verify_result_string(verdict));
        audit({AuditEvent::kAuthFailure, false, AuditReason::kStoreError, {}, verify_result_string(verdict)},
              context_);
        return fail_unavailable("stored hash refused");
    }
    if (!known) {
        /* The response matches an enrolled user with that many failures:
         * the same growing delay, and once the name's own tally is locked,
         * the short delay of a locked user and no count. */
        LockRule rule{config_->deny, config_->fail_interval, config_->unlock_time};
        unknown_name_ = daemon_.unknown_names().read(context_.user, daemon_.now(), rule);
        bool mirror_locked = !unknown_counted_ && lock_end(unknown_name_, daemon_.now(), rule).has_value();
        if (!mirror_locked) {
            if (!counted && !count_failure(keys, attempt, AuditReason::kUnknownUser, password.view()))
                return fail_unavailable("store write failed");
            if (!repeated_)
                count_unknown_name();
        }
        daemon_.counters().auth_failure++;
        audit({AuditEvent::kAuthFailure, false, AuditReason::kUnknownUser}, context_);
        report_locks(keys, attempt);
        sleep_ms(mirror_locked ? failure_delay_ms(1, config_->fail_delay) : failure_delay(keys, attempt));
        return send_result(PAM_USER_UNKNOWN, kGenericFailure);
    }

    if (check_code) {
        if (!second_checked)
            check_code_now();
        if (second == FactorOutcome::kStoreError)
            return fail_unavailable("store write failed");
        if (second == FactorOutcome::kKeyError)
            return fail_unavailable("TOTP secret could not be decrypted");
    } else if (want_code && (mfa_applies || !want_password)) {
        /* A factor enrolled while the user typed, or factors=totp with the
         * second factor off: there is no code to accept. */
        second = FactorOutcome::kMissing;
    }

    AuditReason reason = AuditReason::kNone;
    if (want_password && oversized)
        reason = AuditReason::kOversized;
    else if (want_password && verdict != VerifyResult::kMatch)
        reason = AuditReason::kPassword;
    else if (!want_password && oversized)
        reason = AuditReason::kOversized;
    else
        reason = factor_reason(second);

    if (reason != AuditReason::kNone) {
        /* A replayed code counts even with the right password: treating
         * that case apart would confirm the password to anyone who replays
         * a watched code. Parallel logins that share one code count as
         * failures for the same reason. */
        /* A failure that cannot be counted is not answered as one: the
         * answer would tell a right password from a wrong one. */
        if (!counted && !count_failure(keys, attempt, reason, password.view()))
            return fail_unavailable("store write failed");
        return refuse_attempt(reason, &keys, &attempt);
    }

    /* Upgrade a hash made at an older cost while the password is at hand. */
    std::optional<std::string> new_hash;
    Argon2Policy policy{config_->argon2_memory_kib, config_->argon2_iterations};
    if (want_password && needs_rehash(record.password_hash, policy)) {
        std::string rehashed;
        bool ok = false;
        auto rehash_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config_->queue_timeout);
        HashPool::Outcome outcome =
                daemon_.pool().run([&] { ok = hash_password(password.view(), policy, rehashed); }, rehash_deadline,
                                   fairness_key());
        if (outcome == HashPool::Outcome::kDone && ok)
            new_hash = std::move(rehashed);
        else
            log::warning("Failed to re-hash the password of user '{}' at the configured cost; keeping the old hash",
                         context_.user);
    }

    /* Success clears the user's and the caller's tallies; the remote
     * host's keeps its count, since it spans users. */
    StoreStatus st = daemon_.store().record_success(context_.user, daemon_.now(), new_hash);
    if (st == StoreStatus::kOk)
        st = settle_success(keys);
    if (st != StoreStatus::kOk) {
        log::error("Failed to record the login of user '{}': {}", context_.user, daemon_.store().last_error());
        audit({AuditEvent::kAuthFailure, false, AuditReason::kStoreError}, context_);
        return fail_unavailable("store write failed");
    }
    if (new_hash)
        log::info("Re-hashed the password of user '{}' at the configured Argon2 cost", context_.user);
    daemon_.counters().auth_success++;
    log::debug("Authenticated user '{}' for service '{}'", context_.user, escape_for_log(context_.service, 64));
    /* The factors checked, so the journal separates a password-only
     * login from one with a code. */
    std::string factors = want_password ? "password" : "";
    if (second == FactorOutcome::kAccepted)
        factors += (factors.empty() ? "" : "+") + accepted_factor_;
    audit({AuditEvent::kAuthSuccess, true, AuditReason::kNone, factors}, context_);
    send_result(PAM_SUCCESS);
}

bool Conversation::load_user(UserRecord &ret_record, SecondFactorState &ret_factor, bool &ret_known) {
    /* A name that useradd would reject cannot be enrolled; it takes the
     * unknown-user path so the answer looks the same. */
    ret_known = false;
    ret_factor = SecondFactorState{};
    if (!is_valid_user_name(context_.user))
        return true;
    StoreStatus st = daemon_.store().get_user(context_.user, ret_record);
    if (st == StoreStatus::kOk) {
        ret_known = true;
        st = load_second_factor(ret_factor);
    }
    if (st != StoreStatus::kOk && st != StoreStatus::kNotFound) {
        log::error("Failed to read user '{}' from the store: {}", context_.user, daemon_.store().last_error());
        audit({AuditEvent::kAuthFailure, false, AuditReason::kStoreError}, context_);
        return false;
    }
    return true;
}

StoreStatus Conversation::load_second_factor(SecondFactorState &ret_state) {
    SecondFactorState state;
    StoreStatus st = daemon_.store().get_totp(context_.user, state.totp);
    if (st == StoreStatus::kOk)
        state.totp_active = state.totp.state == TotpState::kActive;
    else if (st != StoreStatus::kNotFound)
        return st;
    st = daemon_.store().count_recovery_codes(context_.user, state.recovery_left);
    if (st != StoreStatus::kOk)
        return st;
    ret_state = std::move(state);
    return StoreStatus::kOk;
}

Conversation::FactorOutcome Conversation::check_second_factor(const SecondFactorState &factor,
                                                              std::string_view code) {
    if (!factor.enrolled())
        return FactorOutcome::kMissing;
    if (code.empty())
        return FactorOutcome::kEmpty;

    std::string recovery;
    if (code.size() == factor.totp.digits && factor.totp_active) {
        SecretBuffer secret;
        if (!daemon_.key().open(context_.user, factor.totp.sealed_secret, secret)) {
            log::error("Failed to decrypt the TOTP secret of user '{}': wrong key file or altered record",
                       context_.user);
            audit({AuditEvent::kAuthFailure, false, AuditReason::kKeyError}, context_);
            return FactorOutcome::kKeyError;
        }
        TotpParams params{factor.totp.digits, factor.totp.period, config_->totp_window,
                          parse_totp_algorithm(factor.totp.algorithm).value_or(TotpAlgorithm::kSha1)};
        TotpMatch match = totp_verify(secret.view(), code, daemon_.now(), params);
        if (!match.matched)
            return FactorOutcome::kWrong;
        std::int64_t used = match.step * static_cast<std::int64_t>(params.period);
        StoreStatus st = daemon_.store().consume_totp_step(context_.user, used, match.offset);
        if (st == StoreStatus::kReplay)
            return FactorOutcome::kReplay;
        if (st != StoreStatus::kOk) {
            log::error("Failed to record the TOTP step of user '{}': {}; refusing the code", context_.user,
                       daemon_.store().last_error());
            audit({AuditEvent::kAuthFailure, false, AuditReason::kStoreError}, context_);
            return FactorOutcome::kStoreError;
        }
        if (match.offset != 0)
            log::info("Accepted a TOTP code for user '{}' {} step(s) off the current one", context_.user,
                      match.offset);
        accepted_factor_ = "totp";
        return FactorOutcome::kAccepted;
    }
    if (factor.recovery_left > 0 && normalize_recovery_code(code, recovery)) {
        std::string hash = daemon_.key().recovery_hash(context_.user, recovery);
        sodium_memzero(recovery.data(), recovery.size());
        StoreStatus st = daemon_.store().use_recovery_code(context_.user, hash, daemon_.now());
        if (st == StoreStatus::kNotFound)
            return FactorOutcome::kWrong;
        if (st != StoreStatus::kOk) {
            log::error("Failed to mark a recovery code of user '{}' as used: {}; refusing it", context_.user,
                       daemon_.store().last_error());
            audit({AuditEvent::kAuthFailure, false, AuditReason::kStoreError}, context_);
            return FactorOutcome::kStoreError;
        }
        log::info("User '{}' used a recovery code; {} left", context_.user, factor.recovery_left - 1);
        audit({AuditEvent::kRecoveryUsed, true, AuditReason::kNone, "recovery",
               std::to_string(factor.recovery_left - 1) + " left"},
              context_);
        accepted_factor_ = "recovery";
        return FactorOutcome::kAccepted;
    }
    return FactorOutcome::kWrong;
}

AuditReason Conversation::factor_reason(FactorOutcome outcome) noexcept {
    switch (outcome) {
    case FactorOutcome::kNotNeeded:
    case FactorOutcome::kAccepted: return AuditReason::kNone;
    case FactorOutcome::kMissing:
    case FactorOutcome::kEmpty: return AuditReason::kNoSecondFactor;
    case FactorOutcome::kReplay: return AuditReason::kReplay;
    case FactorOutcome::kStoreError: return AuditReason::kStoreError;
    case FactorOutcome::kKeyError: return AuditReason::kKeyError;
    case FactorOutcome::kWrong: break;
    }
    return AuditReason::kCode;
}

std::vector<std::pair<TallyKey, LockRule>> Conversation::tallies(bool known) const {
    const Config &c = *config_;
    std::vector<std::pair<TallyKey, LockRule>> keys;
    /* Root is exempt from the user lock unless configured otherwise. */
    if (known && (context_.user != "root" || c.even_deny_root))
        keys.push_back({{TallyKey::Kind::kUser, context_.user}, {c.deny, c.fail_interval, c.unlock_time}});
    /* Logins with no remote host do not share a host bucket. */
    if (!context_.rhost.empty())
        keys.push_back({{TallyKey::Kind::kBucket, "rhost:" + context_.rhost},
                        {c.rhost_deny, c.fail_interval, c.unlock_time}});
    /* A non-root caller, or a user behind su or sudo, gets the tighter
     * local limit. */
    if (caller_uid_ != 0)
        keys.push_back({{TallyKey::Kind::kBucket, "uid:" + std::to_string(caller_uid_)},
                        {c.local_deny, c.fail_interval, c.unlock_time}});
    /* Unknown users share one tally that never locks. Writing it costs the
     * same disk sync as a known user's count, so the time to the answer
     * does not tell them apart. */
    if (!known)
        keys.push_back({{TallyKey::Kind::kBucket, kUnknownUsersTally}, {kNeverLocks, c.fail_interval, c.unlock_time}});
    return keys;
}

bool Conversation::pass_gate(const TallyKeys &keys, AttemptResult &attempt, GatePlace &place) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config_->queue_timeout);
    switch (daemon_.gate().enter(daemon_.store(), keys, [this] { return daemon_.now(); }, deadline, attempt)) {
    case AttemptGate::Entry::kEntered:
        place.hold();
        return true;
    case AttemptGate::Entry::kBlocked:
        return true;
    case AttemptGate::Entry::kTimedOut:
        fail_unavailable("too many attempts in flight for this user or host");
        return false;
    case AttemptGate::Entry::kStoreError:
        break;
    }
    log::error("Failed to read the failure tallies of user '{}': {}", escape_for_log(context_.user, 64),
               daemon_.store().last_error());
    audit({AuditEvent::kAuthFailure, false, AuditReason::kStoreError}, context_);
    fail_unavailable("store read failed");
    return false;
}

unsigned Conversation::failure_delay(const TallyKeys &keys, const AttemptResult &attempt) const {
    /* The tally that all unknown names share is left out: its count would
     * set unknown names apart from enrolled ones. */
    std::uint32_t max_failures = std::max<std::uint32_t>(1, unknown_name_.failures);
    for (std::size_t i = 0; i < attempt.after.size() && i < keys.size(); i++) {
        if (keys[i].first.kind == TallyKey::Kind::kBucket && keys[i].first.name == kUnknownUsersTally)
            continue;
        max_failures = std::max(max_failures, attempt.after[i].failures);
    }
    return failure_delay_ms(max_failures, config_->fail_delay);
}

void Conversation::count_unknown_name() {
    if (unknown_counted_)
        return;
    unknown_counted_ = true;
    LockRule rule{config_->deny, config_->fail_interval, config_->unlock_time};
    unknown_name_ = daemon_.unknown_names().add_failure(context_.user, daemon_.now(), rule);
}

void Conversation::report_locks(const std::vector<std::pair<TallyKey, LockRule>> &keys,
                                const AttemptResult &attempt) {
    for (std::size_t i = 0; i < keys.size() && i < attempt.locked_now.size(); i++) {
        if (!attempt.locked_now[i])
            continue;
        const Tally &tally = attempt.after[i];
        const std::string &name = keys[i].first.name;
        std::string until = *tally.locked_until == kLockedForever ? std::string("until unlocked by an admin")
                                                                  : "for " + std::to_string(config_->unlock_time) + " s";
        if (keys[i].first.kind == TallyKey::Kind::kUser) {
            log::warning("Locked user '{}' after {} failures {}", name, tally.failures, until);
            audit({AuditEvent::kLockout, false, AuditReason::kNone, {},
                   std::to_string(tally.failures) + " failures, locked " + until},
                  context_);
        } else {
            log::warning("Throttled '{}' after {} failures {}", escape_for_log(name, 160), tally.failures, until);
            audit({AuditEvent::kLockout, false, AuditReason::kThrottled, {},
                   escape_for_log(name, 160) + " throttled after " + std::to_string(tally.failures) +
                           " failures, " + until},
                  context_);
        }
    }
}

void Conversation::refuse_attempt(AuditReason reason, const std::vector<std::pair<TallyKey, LockRule>> *keys,
                                  const AttemptResult *attempt) {
    daemon_.counters().auth_failure++;
    log::debug("Authentication of user '{}' for service '{}' failed: {}", escape_for_log(context_.user, 64),
               escape_for_log(context_.service, 64), audit_reason_string(reason));
    audit({AuditEvent::kAuthFailure, false, reason}, context_);
    unsigned delay = failure_delay_ms(1, config_->fail_delay);
    if (keys && attempt) {
        report_locks(*keys, *attempt);
        delay = failure_delay(*keys, *attempt);
    }
    sleep_ms(delay);
    send_result(PAM_AUTH_ERR, kGenericFailure);
}

bool Conversation::count_failure(const TallyKeys &keys, AttemptResult &attempt, AuditReason reason,
                                 std::string_view password) {
    /* The same wrong password sent again (a client retrying) counts once,
     * for unknown names as for enrolled users. */
    repeated_ = (reason == AuditReason::kPassword || reason == AuditReason::kUnknownUser) && !password.empty() &&
                daemon_.recent_failures().seen_before(context_.user, password, daemon_.now(), config_->fail_interval);
    if (repeated_) {
        log::debug("User '{}' repeated a recent wrong password; not counted again", escape_for_log(context_.user, 64));
        attempt.locked_now.assign(keys.size(), false);
        return true;
    }
    if (daemon_.store().add_failures(keys, daemon_.now(), attempt) != StoreStatus::kOk) {
        log::error("Failed to count a failed login of user '{}': {}; responding PAM_AUTHINFO_UNAVAIL",
                   escape_for_log(context_.user, 64), daemon_.store().last_error());
        return false;
    }
    return true;
}

StoreStatus Conversation::settle_success(const TallyKeys &keys) {
    for (const auto &[key, rule] : keys) {
        if (key.kind == TallyKey::Kind::kBucket && key.name.rfind("uid:", 0) == 0) {
            StoreStatus st = daemon_.store().clear_tally(key);
            if (st != StoreStatus::kOk)
                return st;
        }
    }
    return StoreStatus::kOk;
}

void Conversation::sleep_ms(unsigned ms) {
    /* The caller waits; no hash worker is held. */
    if (ms > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

void Conversation::handle_account(const wire::Frame &) {
    if (!caller_allowed())
        return;
    UserRecord record;
    if (!is_valid_user_name(context_.user))
        return send_result(PAM_USER_UNKNOWN);
    StoreStatus st = daemon_.store().get_user(context_.user, record);
    if (st == StoreStatus::kNotFound)
        return send_result(PAM_USER_UNKNOWN);
    if (st != StoreStatus::kOk) {
        log::error("Failed to read user '{}' from the store: {}", context_.user, daemon_.store().last_error());
        return fail_unavailable("store read failed");
    }
    /* A locked account is refused here too, so key-based logins (where
     * PAM only runs account and session) respect the lock. */
    LockRule rule{config_->deny, config_->fail_interval, config_->unlock_time};
    Tally tally{record.failures, record.first_failure, record.locked_until};
    if ((context_.user != "root" || config_->even_deny_root) && lock_end(tally, daemon_.now(), rule)) {
        log::info("Refused account access to locked user '{}'", context_.user);
        audit({AuditEvent::kAuthFailure, false, AuditReason::kLocked, {}, "account management"}, context_);
        return send_result(PAM_PERM_DENIED, "Account locked.");
    }
    send_result(PAM_SUCCESS);
}

void Conversation::handle_change_password(const wire::Frame &request) {
    using wire::FieldTag;
    if (!caller_allowed())
        return;
    UserRecord record;
    StoreStatus st = is_valid_user_name(context_.user) ? daemon_.store().get_user(context_.user, record)
                                                      : StoreStatus::kNotFound;
    if (st == StoreStatus::kNotFound)
        return send_result(PAM_USER_UNKNOWN);
    if (st != StoreStatus::kOk) {
        log::error("Failed to read user '{}' from the store: {}", context_.user, daemon_.store().last_error());
        return fail_unavailable("store read failed");
    }
    if (flags_ & wire::kFlagPrelimCheck)
        return send_result(PAM_SUCCESS);

    /* A non-root caller, or root acting for a user who ran passwd, must
     * prove the current password first. */
    bool require_old = peer_.uid != 0 || (flags_ & wire::kFlagRequireOld);
    SecretBuffer old_password;
    if (require_old) {
        if (request.has(FieldTag::kOldAuthtok)) {
            old_password = SecretBuffer::copy_of(request.get(FieldTag::kOldAuthtok));
        } else {
            tell(wire::PromptStyle::kTextInfo, "Changing password for " + context_.user + ".");
            Answer a = ask("Current password: ", false, old_password);
            if (a == Answer::kAbandoned)
                return;
        }
        /* The current password is a guess like any other: counted first,
         * refused while locked, answered after the failure delay. */
        UserRecord fresh;
        SecondFactorState factor;
        bool known = false;
        if (!load_user(fresh, factor, known))
            return fail_unavailable("store read failed");
        if (!known)
            return send_result(PAM_USER_UNKNOWN);
        TallyKeys keys = tallies(true);
        AttemptResult attempt;
        GatePlace place(daemon_.gate(), keys);
        if (!pass_gate(keys, attempt, place))
            return;
        const std::string phc = attempt.blocked ? daemon_.dummy_hash() : fresh.password_hash;
        VerifyResult verdict = VerifyResult::kMismatch;
        std::string_view candidate = old_password.size() > kMaxSecretSize ? std::string_view() : old_password.view();
        if (!verify_on_pool(phc, candidate, verdict))
            return fail_unavailable("hash pool unavailable");
        if (!attempt.blocked && (verdict == VerifyResult::kUnsupported || verdict == VerifyResult::kTooCostly)) {
            log::error("Refused to verify the stored hash of user '{}': {}", context_.user,
                       verify_result_string(verdict));
            return fail_unavailable("stored hash refused");
        }
        if (!attempt.blocked && verdict != VerifyResult::kMatch &&
            !count_failure(keys, attempt, AuditReason::kPassword, old_password.view()))
            return fail_unavailable("store write failed");
        if (attempt.blocked || verdict != VerifyResult::kMatch) {
            daemon_.counters().auth_failure++;
            AuditReason reason = attempt.blocked ? AuditReason::kLocked : AuditReason::kPassword;
            audit({AuditEvent::kPasswordChanged, false, reason}, context_);
            if (!attempt.blocked)
                report_locks(keys, attempt);
            sleep_ms(attempt.blocked ? failure_delay_ms(1, config_->fail_delay) : failure_delay(keys, attempt));
            return send_result(PAM_AUTH_ERR, kGenericFailure);
        }
        if (settle_success(keys) != StoreStatus::kOk ||
            daemon_.store().clear_tally({TallyKey::Kind::kUser, context_.user}) != StoreStatus::kOk) {
            log::error("Failed to record the password check of user '{}': {}", context_.user,
                       daemon_.store().last_error());
            return fail_unavailable("store write failed");
        }
    }

    SecretBuffer new_password;
    if (request.has(FieldTag::kAuthtok)) {
        new_password = SecretBuffer::copy_of(request.get(FieldTag::kAuthtok));
    } else {
        if (ask("New password: ", false, new_password) == Answer::kAbandoned)
            return;
        SecretBuffer again;
        if (ask("Retype new password: ", false, again) == Answer::kAbandoned)
            return;
        if (new_password.size() != again.size() ||
            sodium_memcmp(new_password.data(), again.data(), new_password.size()) != 0)
            return send_result(PAM_AUTHTOK_ERR, "Sorry, passwords do not match.");
    }
    std::string problem = daemon_.check_new_password(new_password.view(), old_password.view(), context_.user);
    if (!problem.empty()) {
        log::info("Rejected a new password for user '{}': it fails the password policy", context_.user);
        return send_result(PAM_AUTHTOK_ERR, problem);
    }

    Argon2Policy policy{config_->argon2_memory_kib, config_->argon2_iterations};
    std::string phc;
    bool ok = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config_->queue_timeout);
    if (daemon_.pool().run([&] { ok = hash_password(new_password.view(), policy, phc); }, deadline) !=
                HashPool::Outcome::kDone ||
        !ok) {
        log::error("Failed to hash the new password of user '{}'", context_.user);
        return fail_unavailable("hashing failed");
    }
    st = daemon_.store().set_password(context_.user, phc, daemon_.now());
    if (st != StoreStatus::kOk) {
        log::error("Failed to store the new password of user '{}': {}", context_.user,
                   daemon_.store().last_error());
        audit({AuditEvent::kPasswordChanged, false, AuditReason::kStoreError}, context_);
        return fail_unavailable("store write failed");
    }
    log::info("Changed the password of user '{}' through PAM service '{}'", context_.user,
              escape_for_log(context_.service, 64));
    audit({AuditEvent::kPasswordChanged, true}, context_);
    send_result(PAM_SUCCESS);
}

void Conversation::handle_session(const wire::Frame &, bool open) {
    if (!caller_allowed())
        return;
    audit({open ? AuditEvent::kSessionOpen : AuditEvent::kSessionClose, true}, context_);
    send_result(PAM_SUCCESS);
}

} // namespace warden
