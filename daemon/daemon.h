/* State shared by every connection and the admin API of one wardend. */
#pragma once

#include "daemon/attempt_gate.h"
#include "daemon/config.h"
#include "daemon/hash_pool.h"
#include "daemon/host_key.h"
#include "daemon/lockout.h"
#include "daemon/password_hash.h"
#include "daemon/store.h"

#include <atomic>
#include <deque>
#include <map>
#include <string_view>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace warden {

struct Counters {
    std::atomic<std::uint64_t> auth_success{0};
    std::atomic<std::uint64_t> auth_failure{0};
    std::atomic<std::uint64_t> peer_rejected{0};
    std::atomic<std::uint64_t> unavailable{0}; /* requests answered PAM_AUTHINFO_UNAVAIL */
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> connections_refused{0};
};

class PasswordQuality;

/* Keyed hashes of recent wrong passwords per user, so a client that
 * re-sends the same wrong password is counted once. The key is random per
 * process and never leaves memory; the passwords themselves are not kept. */
class RecentFailures {
public:
    RecentFailures();

    /* Returns true when password failed for user within the last
     * interval seconds; otherwise remembers it and returns false. */
    bool seen_before(const std::string &user, std::string_view password, std::int64_t now, unsigned interval);

private:
    struct Entry {
        std::string digest;
        std::int64_t at;
    };
    std::mutex mutex_;
    std::string key_;
    std::map<std::string, std::deque<Entry>> entries_;
};

/* Failure tallies of names that are not enrolled, kept in memory under a keyed
 * hash of the name. They follow the lockout rule of enrolled users, so an
 * unknown name gets its response after the same growing delay, and with the same
 * lock, as an enrolled one. Without them the delay would tell the two
 * apart. */
class UnknownNameTallies {
public:
    UnknownNameTallies();

    /* Returns the tally of name at now, for check before an attempt. */
    Tally read(std::string_view name, std::int64_t now, const LockRule &rule);
    /* Counts one failure of name at now and returns the new tally. */
    Tally add_failure(std::string_view name, std::int64_t now, const LockRule &rule);
    /* Forgets the tally of name, as wardenctl unlock does for enrolled users. */
    void forget(std::string_view name);

private:
    std::string digest(std::string_view name) const;

    std::mutex mutex_;
    std::string key_;
    std::map<std::string, Tally> tallies_;
};

class Daemon {
public:
    Daemon(std::shared_ptr<const Config> config, std::unique_ptr<Store> store, HostKey key, std::string dummy_hash);
    ~Daemon();

    /* The config in force. A reload swaps it; holders of the old one keep it
     * alive until they are done. */
    std::shared_ptr<const Config> config() const;
    void set_config(std::shared_ptr<const Config> config);

    Store &store() noexcept { return *store_; }
    HashPool &pool() noexcept { return *pool_; }
    Counters &counters() noexcept { return counters_; }
    RecentFailures &recent_failures() noexcept { return recent_failures_; }
    UnknownNameTallies &unknown_names() noexcept { return unknown_names_; }
    AttemptGate &gate() noexcept { return gate_; }
    /* The hash unknown and locked users are checked against. */
    std::string dummy_hash() const;
    void set_dummy_hash(std::string hash);
    const HostKey &key() const noexcept { return key_; }
    Argon2Policy argon2_policy() const;

    /* Checks a new password against min_length, the 512-byte limit and the
     * host's libpwquality settings. Returns an empty string when it is
     * acceptable, else a message for the user. */
    std::string check_new_password(std::string_view password, std::string_view old_password,
                                   const std::string &user) const;

    /* Seconds since the epoch. In development mode the variable
     * WARDEN_TEST_CLOCK_FILE may name a file holding the time to use, so
     * tests can replay fixed TOTP vectors; production ignores it. */
    std::int64_t now() const;

    std::int64_t start_time() const noexcept { return start_time_; }

private:
    mutable std::mutex config_mutex_;
    std::shared_ptr<const Config> config_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<HashPool> pool_;
    std::unique_ptr<PasswordQuality> quality_;
    HostKey key_;
    std::string dummy_hash_;
    std::string clock_file_;
    Counters counters_;
    RecentFailures recent_failures_;
    UnknownNameTallies unknown_names_;
    AttemptGate gate_;
    std::int64_t start_time_;
};

/* Makes the hash that unknown users are checked against: a random password
 * at the configured cost, so their failures take as long as real ones. */
bool make_dummy_hash(const Argon2Policy &policy, std::string &ret_hash);

} // namespace warden
