/* Bounds the attempts in flight for each failure tally, so that no more
 * than `deny` guesses can ever be tested in one window, even when many
 * conversations answer at once; and counts no attempt before it fails,
 * so many right answers at once never lock anyone out. */
#pragma once

#include "daemon/store.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace warden {

using TallyKeys = std::vector<std::pair<TallyKey, LockRule>>;

class AttemptGate {
public:
    enum class Entry {
        kEntered,    /* room in every tally: verify, then leave() */
        kBlocked,    /* some tally is locked: refuse without verifying */
        kTimedOut,   /* no room before the deadline */
        kStoreError, /* the tallies could not be read */
    };

    /* Waits until each tally has room (its failures plus the attempts in
     * flight stay below its deny) or is locked. On kEntered the caller
     * holds one place in each tally until leave(). ret_state holds the
     * tallies as last read. */
    Entry enter(Store &store, const TallyKeys &keys, const std::function<std::int64_t()> &now,
                std::chrono::steady_clock::time_point deadline, AttemptResult &ret_state);

    void leave(const TallyKeys &keys);

private:
    static std::string name_of(const TallyKey &key);

    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::string, unsigned> in_flight_;
};

/* Leaves the gate when it goes out of scope. */
class GatePlace {
public:
    GatePlace(AttemptGate &gate, const TallyKeys &keys) : gate_(gate), keys_(keys) {}
    GatePlace(const GatePlace &) = delete;
    GatePlace &operator=(const GatePlace &) = delete;
    ~GatePlace() {
        if (held_)
            gate_.leave(keys_);
    }
    void hold() noexcept { held_ = true; }
    /* Leaves the gate now, before a second attempt enters it again. */
    void release() {
        if (held_)
            gate_.leave(keys_);
        held_ = false;
    }

private:
    AttemptGate &gate_;
    const TallyKeys &keys_;
    bool held_ = false;
};

} // namespace warden
