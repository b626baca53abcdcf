#include "daemon/attempt_gate.h"

namespace warden {

std::string AttemptGate::name_of(const TallyKey &key) {
    return (key.kind == TallyKey::Kind::kUser ? "user:" : "") + key.name;
}

AttemptGate::Entry AttemptGate::enter(Store &store, const TallyKeys &keys, const std::function<std::int64_t()> &now,
                                      std::chrono::steady_clock::time_point deadline, AttemptResult &ret_state) {
    std::unique_lock lock(mutex_);
    for (;;) {
        AttemptResult state;
        if (store.check_tallies(keys, now(), state) != StoreStatus::kOk)
            return Entry::kStoreError;
        ret_state = state;
        if (state.blocked)
            return Entry::kBlocked;
        bool room = true;
        for (std::size_t i = 0; i < keys.size(); i++) {
            unsigned flying = in_flight_[name_of(keys[i].first)];
            if (state.after[i].failures + flying >= keys[i].second.deny)
                room = false;
        }
        if (room) {
            for (const auto &entry : keys)
                in_flight_[name_of(entry.first)]++;
            return Entry::kEntered;
        }
        /* Wait for an attempt in flight to finish; its outcome decides
         * whether this one may go ahead or meets a lock. */
        if (changed_.wait_until(lock, deadline) == std::cv_status::timeout)
            return Entry::kTimedOut;
    }
}

void AttemptGate::leave(const TallyKeys &keys) {
    {
        std::lock_guard lock(mutex_);
        for (const auto &entry : keys) {
            auto it = in_flight_.find(name_of(entry.first));
            if (it == in_flight_.end())
                continue;
            if (--it->second == 0)
                in_flight_.erase(it);
        }
    }
    changed_.notify_all();
}

} // namespace warden
