#include "daemon/lockout.h"

namespace warden {

Tally add_failure(const Tally &tally, std::int64_t now, const LockRule &rule) noexcept {
    Tally next = tally;
    bool window_open = tally.first_failure && *tally.first_failure <= now &&
                       now - *tally.first_failure < static_cast<std::int64_t>(rule.fail_interval);
    if (window_open) {
        if (next.failures < UINT32_MAX)
            next.failures++;
    } else {
        next.failures = 1;
        next.first_failure = now;
    }
    if (next.failures >= rule.deny && !lock_end(tally, now, rule)) {
        next.locked_until = rule.unlock_time == 0 ? kLockedForever
                                                  : now + static_cast<std::int64_t>(rule.unlock_time);
    }
    return next;
}

std::optional<std::int64_t> lock_end(const Tally &tally, std::int64_t now, const LockRule &rule) noexcept {
    if (!tally.locked_until)
        return std::nullopt;
    std::int64_t until = *tally.locked_until;
    if (until == kLockedForever)
        return until;
    if (until <= now)
        return std::nullopt;
    std::int64_t longest = now + static_cast<std::int64_t>(rule.unlock_time);
    return until > longest ? longest : until;
}

unsigned failure_delay_ms(std::uint32_t failures, unsigned max_seconds) noexcept {
    if (failures == 0 || max_seconds == 0)
        return 0;
    unsigned cap = max_seconds * 1000;
    unsigned delay = 250;
    for (std::uint32_t i = 1; i < failures && delay < cap; i++)
        delay *= 2;
    return delay < cap ? delay : cap;
}

} // namespace warden
