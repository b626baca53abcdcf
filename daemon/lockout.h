/* Lockout arithmetic in the manner of pam_faillock: `deny` failures inside
 * `fail_interval` seconds lock for `unlock_time` seconds (0: until an admin
 * unlocks). The same rules apply to a user, to a remote host across users
 * (rhost_deny) and to a non-root caller's uid (local_deny). Pure functions
 * of the tally and the wall clock, which may jump in either direction. */
#pragma once

#include <cstdint>
#include <limits>
#include <optional>

namespace warden {

/* locked_until value of a lock that only an admin can lift. */
inline constexpr std::int64_t kLockedForever = std::numeric_limits<std::int64_t>::max();

struct Tally {
    std::uint32_t failures = 0;
    std::optional<std::int64_t> first_failure;
    std::optional<std::int64_t> locked_until;
};

struct LockRule {
    unsigned deny = 5;
    unsigned fail_interval = 900;
    unsigned unlock_time = 600;
};

/* Adds one failure at now and locks when the count reaches deny. A window
 * that ended, or that starts in the future because the clock went back,
 * starts again at now. Returns the new tally. */
Tally add_failure(const Tally &tally, std::int64_t now, const LockRule &rule) noexcept;

/* Returns the time the lock ends when the tally is locked at now, or
 * nothing. A lock that would outlast unlock_time from now (the clock went
 * back) ends at now + unlock_time instead: no one is ever locked out for
 * longer than configured. */
std::optional<std::int64_t> lock_end(const Tally &tally, std::int64_t now, const LockRule &rule) noexcept;

/* The delay before answering a failure: 250 ms doubled for each earlier
 * failure in the window, capped at max_seconds. */
unsigned failure_delay_ms(std::uint32_t failures, unsigned max_seconds) noexcept;

} // namespace warden
