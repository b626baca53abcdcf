#include "daemon/dbus_api.h"

#include "daemon/audit.h"
#include "daemon/log.h"
#include "daemon/password_hash.h"
#include "daemon/totp.h"
#include "protocol/limits.h"
#include "protocol/recovery_code.h"
#include "protocol/user_name.h"
#include "protocol/version.h"

#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <optional>
#include <vector>
#include <cstring>
#include <functional>

namespace warden {
namespace {

using namespace bus;

struct BusDeleter {
    void operator()(sd_bus *bus) const noexcept { sd_bus_flush_close_unref(bus); }
};
struct SlotDeleter {
    void operator()(sd_bus_slot *slot) const noexcept { sd_bus_slot_unref(slot); }
};
struct CredsDeleter {
    void operator()(sd_bus_creds *creds) const noexcept { sd_bus_creds_unref(creds); }
};
struct MessageDeleter {
    void operator()(sd_bus_message *m) const noexcept { sd_bus_message_unref(m); }
};

Daemon &daemon_of(void *userdata) { return *static_cast<Daemon *>(userdata); }

/* Looks up the uid of a user name in the passwd database. */
std::optional<uid_t> uid_of(const char *name) {
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
    struct passwd pw;
    struct passwd *result = nullptr;
    if (getpwnam_r(name, &pw, buffer.data(), buffer.size(), &result) != 0 || !result)
        return std::nullopt;
    return result->pw_uid;
}

/* The caller's uid and pid, for authorisation and audit. */
struct Caller {
    uid_t uid = static_cast<uid_t>(-1);
    pid_t pid = 0;
};

/* Checks the sender: uid 0, or in development mode also the uid wardend
 * runs as. Fills ret_caller either way so refusals can be audited. */
int authorize(sd_bus_message *m, Daemon &daemon, Caller &ret_caller, sd_bus_error *error) {
    sd_bus_creds *raw = nullptr;
    int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID | SD_BUS_CREDS_PID |
                                                 SD_BUS_CREDS_AUGMENT, &raw);
    std::unique_ptr<sd_bus_creds, CredsDeleter> creds(raw);
    if (r < 0)
        return sd_bus_error_setf(error, kErrorAccessDenied, "Cannot read the caller's credentials, refusing.");
    uid_t uid;
    if (sd_bus_creds_get_euid(creds.get(), &uid) < 0 && sd_bus_creds_get_uid(creds.get(), &uid) < 0)
        return sd_bus_error_setf(error, kErrorAccessDenied, "Cannot read the caller's uid, refusing.");
    pid_t pid = 0;
    (void)sd_bus_creds_get_pid(creds.get(), &pid);
    ret_caller = {uid, pid};
    if (uid == 0 || (daemon.config()->development() && uid == geteuid()))
        return 0;

    const char *member = sd_bus_message_get_member(m);
    log::warning("Refused D-Bus call {} from uid {} pid {}: only root may administer wardend",
                 member ? member : "?", uid, pid);
    AuditContext context;
    context.service = "wardenctl";
    context.peer_uid = uid;
    context.peer_pid = pid;
    audit({AuditEvent::kPeerRejected, false, AuditReason::kNone, {},
           std::string("D-Bus call ") + (member ? member : "?") + " by a non-root caller"},
          context);
    return sd_bus_error_setf(error, kErrorAccessDenied, "Only root may call %s, refusing.", member ? member : "?");
}

AuditContext admin_context(const std::string &user, const Caller &caller) {
    AuditContext context;
    context.user = user;
    context.service = "wardenctl";
    context.peer_uid = caller.uid;
    context.peer_pid = caller.pid;
    return context;
}

/* Runs a handler body, turning any exception into a bus error. */
int guarded(sd_bus_error *error, const std::function<int()> &body) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (const std::exception &e) {
        log::error("Failed to handle a D-Bus call: {}", e.what());
        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "Internal error.");
    }
}

int check_name(const char *name, sd_bus_error *error) {
    if (!is_valid_user_name(name))
        return sd_bus_error_setf(error, kErrorInvalidArgument, "Invalid user name '%s': expected %s, refusing.",
                                 name, kUserNameRule);
    return 0;
}

/* A new hash must be Argon2id at exactly the configured cost: anything
 * else could never be verified, or would be weaker than policy. */
int check_hash(Daemon &daemon, const char *phc, sd_bus_error *error) {
    Argon2Params params;
    if (!parse_argon2id(phc, params))
        return sd_bus_error_setf(error, kErrorInvalidArgument, "The hash is not an Argon2id PHC string, refusing.");
    Argon2Policy policy = daemon.argon2_policy();
    if (params.memory_kib != policy.memory_kib || params.iterations != policy.iterations || params.parallelism != 1)
        return sd_bus_error_setf(error, kErrorInvalidArgument,
                                 "The hash must use m=%llu,t=%llu,p=1 as configured, refusing.",
                                 static_cast<unsigned long long>(policy.memory_kib),
                                 static_cast<unsigned long long>(policy.iterations));
    return 0;
}

int store_error(Daemon &daemon, StoreStatus status, const char *name, const char *what, sd_bus_error *error) {
    switch (status) {
    case StoreStatus::kNotFound:
        return sd_bus_error_setf(error, kErrorNoSuchUser, "User '%s' is not enrolled.", name);
    case StoreStatus::kExists:
        return sd_bus_error_setf(error, kErrorUserExists, "User '%s' is already enrolled, refusing.", name);
    default:
        log::error("Failed to {} user '{}': {}", what, name, daemon.store().last_error());
        return sd_bus_error_setf(error, kErrorStoreFailed, "Failed to %s user '%s': %s.", what, name,
                                 store_status_string(status));
    }
}

int method_get_password_policy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        auto c = daemon.config();
        return sd_bus_reply_method_return(m, "ttu", static_cast<std::uint64_t>(c->argon2_memory_kib),
                                          static_cast<std::uint64_t>(c->argon2_iterations), c->min_length);
    });
}

int method_add_user(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    /* The message carries a secret or a hash: sd-bus wipes it when freed. */
    (void)sd_bus_message_sensitive(m);
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        const char *phc = nullptr;
        if (int r = sd_bus_message_read(m, "ss", &name, &phc); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        if (int r = check_hash(daemon, phc, error); r < 0)
            return r;
        StoreStatus st = daemon.store().add_user(name, phc, daemon.now());
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "add", error);
        log::info("Enrolled user '{}' (by uid {})", name, caller.uid);
        audit({AuditEvent::kEnroll, true, AuditReason::kNone, "password"}, admin_context(name, caller));
        return sd_bus_reply_method_return(m, "");
    });
}

int method_set_password(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    /* The message carries a secret or a hash: sd-bus wipes it when freed. */
    (void)sd_bus_message_sensitive(m);
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        const char *phc = nullptr;
        if (int r = sd_bus_message_read(m, "ss", &name, &phc); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        if (int r = check_hash(daemon, phc, error); r < 0)
            return r;
        StoreStatus st = daemon.store().set_password(name, phc, daemon.now());
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "set the password of", error);
        log::info("Set a new password for user '{}' (by uid {})", name, caller.uid);
        audit({AuditEvent::kPasswordChanged, true}, admin_context(name, caller));
        return sd_bus_reply_method_return(m, "");
    });
}

int method_remove_user(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        if (int r = sd_bus_message_read(m, "s", &name); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        StoreStatus st = daemon.store().remove_user(name);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "remove", error);
        log::info("Removed user '{}' (by uid {})", name, caller.uid);
        audit({AuditEvent::kRemove, true, AuditReason::kNone, "user"}, admin_context(name, caller));
        return sd_bus_reply_method_return(m, "");
    });
}

int method_get_totp_policy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        auto c = daemon.config();
        std::string issuer = c->totp_issuer;
        if (issuer.empty()) {
            char host[256] = {};
            if (gethostname(host, sizeof host - 1) == 0)
                issuer = host;
            if (issuer.empty())
                issuer = "Warden";
        }
        return sd_bus_reply_method_return(m, "uus", c->totp_digits, c->totp_period, issuer.c_str());
    });
}

int method_enroll_totp(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    /* The message carries a secret or a hash: sd-bus wipes it when freed. */
    (void)sd_bus_message_sensitive(m);
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        const void *bytes = nullptr;
        std::size_t size = 0;
        const char *algorithm = nullptr;
        int force = 0;
        if (int r = sd_bus_message_read(m, "s", &name); r < 0)
            return r;
        if (int r = sd_bus_message_read_array(m, 'y', &bytes, &size); r < 0)
            return r;
        if (int r = sd_bus_message_read(m, "sb", &algorithm, &force); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        auto parsed = parse_totp_algorithm(algorithm);
        if (!parsed)
            return sd_bus_error_setf(error, kErrorInvalidArgument,
                                     "Unknown TOTP algorithm '%s': expected SHA1, SHA256 or SHA512, refusing.",
                                     algorithm);
        if (size < kMinTotpSecretBytes || size > kMaxTotpSecretBytes)
            return sd_bus_error_setf(error, kErrorInvalidArgument,
                                     "A TOTP secret must be 16 to 64 bytes (128 to 512 bits), got %zu, refusing.",
                                     size);
        TotpRecord record;
        record.algorithm = totp_algorithm_name(*parsed);
        record.created = daemon.now();
        record.digits = daemon.config()->totp_digits;
        record.period = daemon.config()->totp_period;
        if (!daemon.key().seal(name, std::string_view(static_cast<const char *>(bytes), size),
                               record.sealed_secret))
            return sd_bus_error_setf(error, kErrorKeyFailed, "Failed to encrypt the secret.");
        StoreStatus st = daemon.store().put_totp(name, record, force != 0);
        if (st == StoreStatus::kExists)
            return sd_bus_error_setf(error, kErrorFactorExists,
                                     "User '%s' already has an active TOTP factor; use --force to replace it, "
                                     "refusing.",
                                     name);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "enroll", error);
        log::info("Enrolled a pending TOTP factor ({}) for user '{}' (by uid {})", record.algorithm, name,
                  caller.uid);
        audit({AuditEvent::kEnroll, true, AuditReason::kNone, "totp", "pending until confirmed"},
              admin_context(name, caller));
        return sd_bus_reply_method_return(m, "");
    });
}

int method_confirm_totp(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    /* The message carries a secret or a hash: sd-bus wipes it when freed. */
    (void)sd_bus_message_sensitive(m);
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        const char *code = nullptr;
        if (int r = sd_bus_message_read(m, "ss", &name, &code); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        TotpRecord record;
        StoreStatus st = daemon.store().get_totp(name, record);
        if (st == StoreStatus::kOk && record.state == TotpState::kActive)
            return sd_bus_error_setf(error, kErrorNoPendingFactor,
                                     "The TOTP factor of user '%s' is already active; nothing to confirm.", name);
        if (st == StoreStatus::kNotFound)
            return sd_bus_error_setf(error, kErrorNoPendingFactor,
                                     "User '%s' has no pending TOTP factor; run 'wardenctl totp enroll %s' first.",
                                     name, name);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "read the TOTP factor of", error);
        SecretBuffer secret;
        if (!daemon.key().open(name, record.sealed_secret, secret)) {
            log::error("Failed to decrypt the pending TOTP secret of user '{}': wrong key file or altered record",
                       name);
            audit({AuditEvent::kConfirm, false, AuditReason::kKeyError, "totp"}, admin_context(name, caller));
            return sd_bus_error_setf(error, kErrorKeyFailed,
                                     "The stored secret does not decrypt under the host key; enroll again.");
        }
        auto c = daemon.config();
        TotpParams params{record.digits, record.period, c->totp_window,
                          parse_totp_algorithm(record.algorithm).value_or(TotpAlgorithm::kSha1)};
        if (std::strlen(code) != record.digits) {
            audit({AuditEvent::kConfirm, false, AuditReason::kCode, "totp"}, admin_context(name, caller));
            return sd_bus_error_setf(error, kErrorInvalidCode, "Expected a code of %u digits, got %zu characters.",
                                     record.digits, std::strlen(code));
        }
        TotpMatch match = totp_verify(secret.view(), code, daemon.now(), params);
        if (!match.matched) {
            audit({AuditEvent::kConfirm, false, AuditReason::kCode, "totp"}, admin_context(name, caller));
            return sd_bus_error_setf(error, kErrorInvalidCode,
                                     "The code does not match; check the device's clock and try the current "
                                     "code, refusing.");
        }
        st = daemon.store().confirm_totp(name, match.step * static_cast<std::int64_t>(record.period), match.offset,
                                         daemon.now());
        if (st == StoreStatus::kReplay) {
            audit({AuditEvent::kConfirm, false, AuditReason::kReplay, "totp"}, admin_context(name, caller));
            return sd_bus_error_setf(error, kErrorReplayedCode,
                                     "That code was already used; wait for the next one, refusing.");
        }
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "confirm the TOTP factor of", error);
        log::info("Confirmed the TOTP factor of user '{}' (by uid {})", name, caller.uid);
        audit({AuditEvent::kConfirm, true, AuditReason::kNone, "totp"}, admin_context(name, caller));
        return sd_bus_reply_method_return(m, "");
    });
}

int method_remove_totp(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        if (int r = sd_bus_message_read(m, "s", &name); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        UserRecord user;
        StoreStatus st = daemon.store().get_user(name, user);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "read", error);
        st = daemon.store().remove_totp(name);
        if (st == StoreStatus::kNotFound)
            return sd_bus_error_setf(error, kErrorNoFactor, "User '%s' has no TOTP factor.", name);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "remove the TOTP factor of", error);
        log::info("Removed the TOTP factor of user '{}' (by uid {})", name, caller.uid);
        audit({AuditEvent::kRemove, true, AuditReason::kNone, "totp"}, admin_context(name, caller));
        return sd_bus_reply_method_return(m, "");
    });
}

int method_set_recovery_codes(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    /* The message carries a secret or a hash: sd-bus wipes it when freed. */
    (void)sd_bus_message_sensitive(m);
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        if (int r = sd_bus_message_read(m, "s", &name); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        if (int r = sd_bus_message_enter_container(m, 'a', "s"); r < 0)
            return r;
        std::vector<std::string> hashes;
        const char *code = nullptr;
        int r;
        while ((r = sd_bus_message_read(m, "s", &code)) > 0) {
            std::string normalized;
            if (!normalize_recovery_code(code, normalized))
                return sd_bus_error_setf(error, kErrorInvalidArgument,
                                         "A recovery code is not 10 characters of the recovery alphabet, refusing.");
            hashes.push_back(daemon.key().recovery_hash(name, normalized));
            sodium_memzero(normalized.data(), normalized.size());
        }
        if (r < 0)
            return r;
        if (int rr = sd_bus_message_exit_container(m); rr < 0)
            return rr;
        std::vector<std::string> sorted = hashes;
        std::sort(sorted.begin(), sorted.end());
        if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
            return sd_bus_error_setf(error, kErrorInvalidArgument, "Two recovery codes are the same, refusing.");
        if (hashes.size() != kRecoveryCodeCount)
            return sd_bus_error_setf(error, kErrorInvalidArgument, "Expected %zu recovery codes, got %zu, refusing.",
                                     kRecoveryCodeCount, hashes.size());
        StoreStatus st = daemon.store().set_recovery_codes(name, hashes, daemon.now());
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "store recovery codes for", error);
        log::info("Generated new recovery codes for user '{}' (by uid {}); the old ones no longer work", name,
                  caller.uid);
        audit({AuditEvent::kRecoveryGenerated, true, AuditReason::kNone, "recovery"}, admin_context(name, caller));
        return sd_bus_reply_method_return(m, "");
    });
}

int method_unlock(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        if (int r = sd_bus_message_read(m, "s", &name); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        bool enrolled = true;
        bool cleared = false;
        StoreStatus st = daemon.store().clear_tally({TallyKey::Kind::kUser, name}, cleared);
        std::optional<uid_t> uid = uid_of(name);
        /* A user who is not enrolled may still have run su or sudo, which
         * count against their uid's tighter limit. */
        if (st == StoreStatus::kNotFound && uid) {
            enrolled = false;
            st = StoreStatus::kOk;
        }
        /* An unknown name's in-memory tally locks like an enrolled user's,
         * and an unlock lifts both alike. */
        if (st == StoreStatus::kOk || st == StoreStatus::kNotFound)
            daemon.unknown_names().forget(name);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "unlock", error);
        /* The user's own programs (a screen locker, su, sudo) have their
         * uid's tally; an unlocked user must be able to use them too. */
        if (uid) {
            bool cleared_uid = false;
            st = daemon.store().clear_tally({TallyKey::Kind::kBucket, "uid:" + std::to_string(*uid)}, cleared_uid);
            if (st != StoreStatus::kOk)
                return store_error(daemon, st, name, "unlock", error);
            cleared = cleared || cleared_uid;
        }
        log::info("Unlocked {} '{}' and cleared its failure counts (by uid {}): {}",
                  enrolled ? "user" : "the caller limit of", name, caller.uid,
                  cleared ? "there were failures" : "there were none");
        std::string detail = enrolled ? "" : "caller limit only, not enrolled";
        if (!cleared)
            detail += std::string(detail.empty() ? "" : ", ") + "nothing to clear";
        audit({AuditEvent::kUnlock, true, AuditReason::kNone, {}, detail}, admin_context(name, caller));
        return sd_bus_reply_method_return(m, "bb", enrolled, cleared);
    });
}

/* Returns whether host looks like what sshd passes as PAM_RHOST: an IPv4
 * or IPv6 address (with an optional zone) or a host name. */
bool plausible_host(std::string_view host) {
    if (host.empty() || host.size() > kMaxRhostSize || host.front() == '-' || host.front() == '.')
        return false;
    if (std::none_of(host.begin(), host.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)); }))
        return false;
    return std::all_of(host.begin(), host.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
               ch == '-' || ch == ':' || ch == '_' || ch == '%';
    });
}

int method_unlock_host(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *rhost = nullptr;
        if (int r = sd_bus_message_read(m, "s", &rhost); r < 0)
            return r;
        std::string_view host(rhost);
        if (!plausible_host(host))
            return sd_bus_error_set(error, kErrorInvalidArgument,
                                    "Not an IP address or host name; give the host as WARDEN_RHOST shows it.");
        bool cleared = false;
        StoreStatus st =
                daemon.store().clear_tally({TallyKey::Kind::kBucket, "rhost:" + std::string(host)}, cleared);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, "-", "unthrottle a host for", error);
        log::info("Cleared the failure count of remote host '{}' (by uid {}): {}", host, caller.uid,
                  cleared ? "there were failures" : "there were none");
        AuditContext context = admin_context({}, caller);
        context.rhost = std::string(host);
        audit({AuditEvent::kUnlock, true, AuditReason::kNone, {}, cleared ? "" : "nothing to clear"}, context);
        return sd_bus_reply_method_return(m, "b", cleared);
    });
}

int method_list_users(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        std::vector<std::string> names;
        StoreStatus st = daemon.store().list_users(names);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, "*", "list", error);
        sd_bus_message *raw = nullptr;
        if (int r = sd_bus_message_new_method_return(m, &raw); r < 0)
            return r;
        std::unique_ptr<sd_bus_message, MessageDeleter> reply(raw);
        if (int r = sd_bus_message_open_container(reply.get(), 'a', "s"); r < 0)
            return r;
        for (const std::string &name : names) {
            if (int r = sd_bus_message_append(reply.get(), "s", name.c_str()); r < 0)
                return r;
        }
        if (int r = sd_bus_message_close_container(reply.get()); r < 0)
            return r;
        return sd_bus_send(nullptr, reply.get(), nullptr);
    });
}

/* Appends one {sv} entry to an open a{sv} container. */
template <typename T> int append_entry(sd_bus_message *reply, const char *key, const char *type, T value) {
    int r = sd_bus_message_open_container(reply, 'e', "sv");
    if (r >= 0)
        r = sd_bus_message_append(reply, "s", key);
    if (r >= 0)
        r = sd_bus_message_open_container(reply, 'v', type);
    if (r >= 0)
        r = sd_bus_message_append(reply, type, value);
    if (r >= 0)
        r = sd_bus_message_close_container(reply);
    if (r >= 0)
        r = sd_bus_message_close_container(reply);
    return r;
}

int method_get_user(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        const char *name = nullptr;
        if (int r = sd_bus_message_read(m, "s", &name); r < 0)
            return r;
        if (int r = check_name(name, error); r < 0)
            return r;
        UserRecord record;
        StoreStatus st = daemon.store().get_user(name, record);
        if (st != StoreStatus::kOk)
            return store_error(daemon, st, name, "read", error);

        TotpRecord totp;
        StoreStatus totp_status = daemon.store().get_totp(name, totp);
        if (totp_status != StoreStatus::kOk && totp_status != StoreStatus::kNotFound)
            return store_error(daemon, totp_status, name, "read", error);
        const char *totp_state = totp_status == StoreStatus::kNotFound ? "none"
                                 : totp.state == TotpState::kActive   ? "active"
                                                                      : "pending";
        unsigned recovery_left = 0;
        if (StoreStatus rs = daemon.store().count_recovery_codes(name, recovery_left); rs != StoreStatus::kOk)
            return store_error(daemon, rs, name, "read", error);

        Argon2Params params;
        std::string algorithm = "unsupported";
        if (parse_argon2id(record.password_hash, params))
            algorithm = "argon2id m=" + std::to_string(params.memory_kib) + " t=" + std::to_string(params.iterations) +
                        " p=" + std::to_string(params.parallelism);

        sd_bus_message *raw = nullptr;
        if (int r = sd_bus_message_new_method_return(m, &raw); r < 0)
            return r;
        std::unique_ptr<sd_bus_message, MessageDeleter> reply(raw);
        sd_bus_message *p = reply.get();
        int r = sd_bus_message_open_container(p, 'a', "{sv}");
        if (r >= 0)
            r = append_entry(p, "name", "s", record.name.c_str());
        if (r >= 0)
            r = append_entry(p, "password", "s", algorithm.c_str());
        if (r >= 0)
            r = append_entry(p, "created", "x", record.created);
        if (r >= 0)
            r = append_entry(p, "updated", "x", record.updated);
        if (r >= 0)
            r = append_entry(p, "last_login", "x", record.last_login.value_or(0));
        if (r >= 0)
            r = append_entry(p, "failures", "u", record.failures);
        /* The lock's end by the daemon's clock, as logins see it; 0 when
         * there is no lock in force. */
        auto c = daemon.config();
        Tally tally{record.failures, record.first_failure, record.locked_until};
        std::int64_t lock = lock_end(tally, daemon.now(), {c->deny, c->fail_interval, c->unlock_time}).value_or(0);
        if (r >= 0)
            r = append_entry(p, "locked_until", "x", lock);
        if (r >= 0)
            r = append_entry(p, "totp", "s", totp_state);
        if (r >= 0 && totp_status == StoreStatus::kOk)
            r = append_entry(p, "totp_algorithm", "s", totp.algorithm.c_str());
        if (r >= 0 && totp_status == StoreStatus::kOk)
            r = append_entry(p, "totp_digits", "u", totp.digits);
        if (r >= 0 && totp_status == StoreStatus::kOk)
            r = append_entry(p, "totp_period", "u", totp.period);
        if (r >= 0 && record.totp_drift)
            r = append_entry(p, "totp_drift", "x", *record.totp_drift);
        if (r >= 0)
            r = append_entry(p, "recovery_codes", "u", recovery_left);
        if (r >= 0)
            r = sd_bus_message_close_container(p);
        if (r < 0)
            return r;
        return sd_bus_send(nullptr, p, nullptr);
    });
}

int method_get_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
    return guarded(error, [&] {
        Daemon &daemon = daemon_of(userdata);
        Caller caller;
        if (int r = authorize(m, daemon, caller, error); r < 0)
            return r;
        auto c = daemon.config();
        HashPool::Stats stats = daemon.pool().stats();
        Counters &n = daemon.counters();
        const char *mfa = c->mfa_mode == MfaMode::kRequired   ? "required"
                          : c->mfa_mode == MfaMode::kOptional ? "optional"
                                                              : "off";
        sd_bus_message *raw = nullptr;
        if (int r = sd_bus_message_new_method_return(m, &raw); r < 0)
            return r;
        std::unique_ptr<sd_bus_message, MessageDeleter> reply(raw);
        sd_bus_message *p = reply.get();
        int r = sd_bus_message_open_container(p, 'a', "{sv}");
        if (r >= 0)
            r = append_entry(p, "version", "s", WARDEN_VERSION);
        if (r >= 0)
            r = append_entry(p, "mode", "s", c->development() ? "development" : "production");
        if (r >= 0)
            r = append_entry(p, "mfa_mode", "s", mfa);
        if (r >= 0)
            r = append_entry(p, "started", "x", daemon.start_time());
        if (r >= 0)
            r = append_entry(p, "workers", "u", stats.workers);
        if (r >= 0)
            r = append_entry(p, "queue_limit", "u", stats.queue_limit);
        if (r >= 0)
            r = append_entry(p, "queued", "t", static_cast<std::uint64_t>(stats.queued));
        if (r >= 0)
            r = append_entry(p, "running", "t", static_cast<std::uint64_t>(stats.running));
        if (r >= 0)
            r = append_entry(p, "hashes", "t", stats.completed);
        if (r >= 0)
            r = append_entry(p, "queue_rejected", "t", stats.rejected);
        if (r >= 0)
            r = append_entry(p, "connections", "t", n.connections.load());
        if (r >= 0)
            r = append_entry(p, "connections_refused", "t", n.connections_refused.load());
        if (r >= 0)
            r = append_entry(p, "auth_success", "t", n.auth_success.load());
        if (r >= 0)
            r = append_entry(p, "auth_failure", "t", n.auth_failure.load());
        if (r >= 0)
            r = append_entry(p, "peer_rejected", "t", n.peer_rejected.load());
        if (r >= 0)
            r = append_entry(p, "unavailable", "t", n.unavailable.load());
        if (r >= 0)
            r = sd_bus_message_close_container(p);
        if (r < 0)
            return r;
        return sd_bus_send(nullptr, p, nullptr);
    });
}

int property_version(sd_bus *, const char *, const char *, const char *, sd_bus_message *reply, void *,
                     sd_bus_error *) {
    return sd_bus_message_append(reply, "s", WARDEN_VERSION);
}

/* SD_BUS_VTABLE_UNPRIVILEGED turns off sd-bus's own capability check so
 * authorize() can refuse with a named error and an audit entry. */
const sd_bus_vtable kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_METHOD("GetPasswordPolicy", "", "ttu", method_get_password_policy, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("AddUser", "ss", "", method_add_user, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("SetPassword", "ss", "", method_set_password, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("RemoveUser", "s", "", method_remove_user, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("ListUsers", "", "as", method_list_users, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Unlock", "s", "bb", method_unlock, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("UnlockHost", "s", "b", method_unlock_host, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("GetTotpPolicy", "", "uus", method_get_totp_policy, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("EnrollTotp", "saysb", "", method_enroll_totp, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("ConfirmTotp", "ss", "", method_confirm_totp, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("RemoveTotp", "s", "", method_remove_totp, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("SetRecoveryCodes", "sas", "", method_set_recovery_codes, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("GetUser", "s", "a{sv}", method_get_user, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("GetStatus", "", "a{sv}", method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

} // namespace

struct AdminBus::State {
    std::unique_ptr<sd_bus, BusDeleter> bus;
    std::unique_ptr<sd_bus_slot, SlotDeleter> slot;
    int stop_fd = -1;
};

AdminBus::AdminBus(Daemon &daemon) : daemon_(daemon) {}

AdminBus::~AdminBus() { stop(); }

bool AdminBus::start(std::string &ret_error) {
    auto state = std::make_unique<State>();
    sd_bus *bus = nullptr;
    int r = sd_bus_open_system(&bus);
    state->bus.reset(bus);
    if (r < 0) {
        const char *address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
        ret_error = std::string("failed to connect to the system bus at '") +
                    (address ? address : "unix:path=/run/dbus/system_bus_socket") + "': " + std::strerror(-r) +
                    "; start dbus, or set [daemon] dbus = off to run without the admin API";
        return false;
    }
    sd_bus_slot *slot = nullptr;
    r = sd_bus_add_object_vtable(bus, &slot, kPath, kInterface, kVtable, &daemon_);
    state->slot.reset(slot);
    if (r < 0) {
        ret_error = std::string("failed to export ") + kPath + ": " + std::strerror(-r);
        return false;
    }
    r = sd_bus_request_name(bus, kName, 0);
    if (r < 0) {
        ret_error = std::string("failed to acquire the bus name ") + kName + ": " + std::strerror(-r);
        return false;
    }
    state->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (state->stop_fd < 0) {
        ret_error = std::string("failed to create an eventfd: ") + std::strerror(errno);
        return false;
    }
    state_ = state.release();
    thread_ = std::thread([this] {
        sd_bus *b = state_->bus.get();
        for (;;) {
            int processed = sd_bus_process(b, nullptr);
            if (processed < 0) {
                log::error("Failed to process D-Bus messages: {}; the admin API is down", std::strerror(-processed));
                return;
            }
            if (processed > 0)
                continue;
            struct pollfd fds[2] = {{sd_bus_get_fd(b), static_cast<short>(sd_bus_get_events(b)), 0},
                                    {state_->stop_fd, POLLIN, 0}};
            std::uint64_t usec = 0;
            int timeout = -1;
            if (sd_bus_get_timeout(b, &usec) > 0 && usec != UINT64_MAX)
                timeout = 100;
            if (::poll(fds, 2, timeout) < 0 && errno != EINTR) {
                log::error("Failed to wait for D-Bus messages: {}", std::strerror(errno));
                return;
            }
            if (fds[1].revents)
                return;
        }
    });
    log::info("Serving {} on the system bus", kName);
    return true;
}

void AdminBus::stop() {
    if (!state_)
        return;
    std::uint64_t one = 1;
    if (::write(state_->stop_fd, &one, sizeof one) < 0)
        log::error("Failed to signal the D-Bus thread to stop: {}", std::strerror(errno));
    if (thread_.joinable())
        thread_.join();
    ::close(state_->stop_fd);
    delete state_;
    state_ = nullptr;
}

} // namespace warden
