/* Credential store. The daemon talks to the Store interface only, so a
 * shared backend can replace SQLite without touching the protocol. */
#pragma once

#include "daemon/lockout.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace warden {

enum class StoreStatus {
    kOk,
    kNotFound,   /* no such user */
    kExists,     /* user already enrolled */
    kReplay,     /* a TOTP step at or before the last accepted one */
    kFull,       /* disk full: nothing was written */
    kError,      /* any other failure: nothing was written */
};

const char *store_status_string(StoreStatus status) noexcept;

struct UserRecord {
    std::string name;
    std::string password_hash; /* an Argon2id PHC string, never logged */
    std::int64_t created = 0;
    std::int64_t updated = 0;
    std::optional<std::int64_t> last_login;
    std::uint32_t failures = 0;
    std::optional<std::int64_t> first_failure;
    std::optional<std::int64_t> locked_until;
    std::optional<std::int64_t> totp_last_used; /* start time of the last accepted step; kept
                                                   when the factor is removed */
    std::optional<std::int64_t> totp_drift;     /* steps, at the last accepted code */
};

enum class TotpState { kPending, kActive };

struct TotpRecord {
    std::string sealed_secret; /* nonce and ciphertext, see HostKey::seal */
    std::string algorithm;     /* SHA1, SHA256 or SHA512 */
    unsigned digits = 6;       /* fixed at enrollment: the app was set up with them */
    unsigned period = 30;
    TotpState state = TotpState::kPending;
    std::int64_t created = 0;
    std::optional<std::int64_t> confirmed;
};

/* Whose failures a tally counts: a user's (kept with the user), or a
 * bucket such as a remote host ("rhost:192.0.2.1") or a non-root caller
 * ("uid:1000"). */
struct TallyKey {
    enum class Kind { kUser, kBucket } kind;
    std::string name;
};

/* Tallies read or updated by the store, one entry per key in order. */
struct AttemptResult {
    bool blocked = false;         /* check_tallies: some tally is locked */
    std::vector<bool> locked;     /* check_tallies: the locked ones */
    std::vector<Tally> after;     /* the tallies as read, or after counting */
    std::vector<bool> locked_now; /* add_failures: the locks this count started */
};

class Store {
public:
    virtual ~Store() = default;

    virtual StoreStatus get_user(const std::string &name, UserRecord &ret_record) = 0;
    virtual StoreStatus add_user(const std::string &name, const std::string &password_hash,
                                 std::int64_t now) = 0;
    virtual StoreStatus set_password(const std::string &name, const std::string &password_hash,
                                     std::int64_t now) = 0;
    virtual StoreStatus remove_user(const std::string &name) = 0;
    virtual StoreStatus list_users(std::vector<std::string> &ret_names) = 0;

    /* Records a successful login: clears failures and, when new_hash is set,
     * replaces the password hash, all in one transaction. A power cut may
     * lose it, though a crash of the daemon cannot. The user then keeps the
     * failure count and the old hash, which still matches the password. */
    virtual StoreStatus record_success(const std::string &name, std::int64_t now,
                                       const std::optional<std::string> &new_hash) = 0;

    virtual StoreStatus get_totp(const std::string &name, TotpRecord &ret_record) = 0;

    /* Stores a pending factor. An active one is replaced only with force;
     * otherwise kExists. */
    virtual StoreStatus put_totp(const std::string &name, const TotpRecord &record, bool force) = 0;

    /* Activates a pending factor with the step of a valid code (given as
     * its start time), in one transaction with the replay check: a step at
     * or before the user's last accepted one gives kReplay and changes
     * nothing. */
    virtual StoreStatus confirm_totp(const std::string &name, std::int64_t used, std::int64_t drift,
                                     std::int64_t now) = 0;

    virtual StoreStatus remove_totp(const std::string &name) = 0;

    /* Records an accepted TOTP step (its start time) and the drift, in one
     * transaction with the replay check (kReplay when it is not after the
     * last one). */
    virtual StoreStatus consume_totp_step(const std::string &name, std::int64_t used, std::int64_t drift) = 0;

    /* Replaces the user's recovery codes with these keyed hashes. */
    virtual StoreStatus set_recovery_codes(const std::string &name, const std::vector<std::string> &hashes,
                                           std::int64_t now) = 0;

    /* Marks one unused code as used; kNotFound when it is not an unused code. */
    virtual StoreStatus use_recovery_code(const std::string &name, const std::string &hash, std::int64_t now) = 0;

    virtual StoreStatus count_recovery_codes(const std::string &name, unsigned &ret_unused) = 0;

    /* Reads a tally; a bucket never seen, or a user's clean record, gives
     * an empty tally. kNotFound only for an unknown user. */
    virtual StoreStatus get_tally(const TallyKey &key, Tally &ret_tally) = 0;

    /* Reads the tallies at now, in one transaction: which are locked (a
     * lock that would outlast unlock_time because the clock went back is
     * shortened and rewritten) and their counts. Unknown users read as
     * empty. */
    virtual StoreStatus check_tallies(const std::vector<std::pair<TallyKey, LockRule>> &keys, std::int64_t now,
                                      AttemptResult &ret_result) = 0;

    /* Counts one failure at now in each tally, all in one transaction so
     * parallel failures lose no increment, and reports the locks this
     * started. Unknown users are skipped. */
    virtual StoreStatus add_failures(const std::vector<std::pair<TallyKey, LockRule>> &keys, std::int64_t now,
                                     AttemptResult &ret_result) = 0;

    /* Moves a lock's end, for a lock clamped after the clock went back. */
    virtual StoreStatus set_lock_end(const TallyKey &key, std::int64_t until) = 0;

    /* Clears failures and lock: wardenctl unlock, or a successful login. */
    virtual StoreStatus clear_tally(const TallyKey &key) = 0;

    /* Like clear_tally, and sets ret_cleared when the tally had a failure
     * or a lock to clear. */
    virtual StoreStatus clear_tally(const TallyKey &key, bool &ret_cleared) = 0;

    /* The last error text of the backend, for the operational log. */
    virtual std::string last_error() const = 0;
};

/* Opens or creates the SQLite store under directory, creating the
 * directory (mode 0700) and the database (mode 0600) when missing and
 * migrating the schema to the current version. On failure returns null
 * and sets ret_error. */
std::unique_ptr<Store> open_sqlite_store(const std::string &directory, std::string &ret_error);

/* Schema version this build writes. */
inline constexpr int kStoreSchemaVersion = 3;

} // namespace warden
