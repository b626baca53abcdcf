#include "daemon/daemon.h"

#include "daemon/log.h"
#include "daemon/password_quality.h"
#include "daemon/secret.h"
#include "protocol/limits.h"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>

namespace warden {

Daemon::Daemon(std::shared_ptr<const Config> config, std::unique_ptr<Store> store, HostKey key,
               std::string dummy_hash)
    : config_(std::move(config)), store_(std::move(store)), key_(std::move(key)), dummy_hash_(std::move(dummy_hash)),
      start_time_(std::time(nullptr)) {
    if (config_->development()) {
        if (const char *path = secure_getenv("WARDEN_TEST_CLOCK_FILE")) {
            clock_file_ = path;
            log::warning("Reading the time from '{}' (development mode test clock)", clock_file_);
        }
    }
    pool_ = std::make_unique<HashPool>(config_->effective_workers(), config_->queue_size);
    quality_ = std::make_unique<PasswordQuality>();
    if (!quality_->load_error().empty())
        log::warning("Failed to read /etc/security/pwquality.conf: {}; using libpwquality's defaults",
                     quality_->load_error());
}

Daemon::~Daemon() { pool_->stop(); }

std::shared_ptr<const Config> Daemon::config() const {
    std::lock_guard lock(config_mutex_);
    return config_;
}

void Daemon::set_config(std::shared_ptr<const Config> config) {
    std::lock_guard lock(config_mutex_);
    config_ = std::move(config);
}

std::string Daemon::dummy_hash() const {
    std::lock_guard lock(config_mutex_);
    return dummy_hash_;
}

void Daemon::set_dummy_hash(std::string hash) {
    std::lock_guard lock(config_mutex_);
    dummy_hash_ = std::move(hash);
}

Argon2Policy Daemon::argon2_policy() const {
    auto c = config();
    return {c->argon2_memory_kib, c->argon2_iterations};
}

std::string Daemon::check_new_password(std::string_view password, std::string_view old_password,
                                       const std::string &user) const {
    auto c = config();
    if (password.empty())
        return "The new password is empty.";
    if (password.size() > kMaxSecretSize)
        return "The new password is longer than " + std::to_string(kMaxSecretSize) + " bytes.";
    if (password.size() < c->min_length)
        return "The new password is shorter than " + std::to_string(c->min_length) + " bytes.";
    return quality_->check(password, old_password, user);
}

std::int64_t Daemon::now() const {
    if (!clock_file_.empty()) {
        std::ifstream in(clock_file_);
        long long value = 0;
        if (in >> value)
            return value;
        log::error("Failed to read the test clock from '{}', using the real time", clock_file_);
    }
    return std::time(nullptr);
}

namespace {

/* Remembered wrong passwords per user, and users tracked at once. */
constexpr std::size_t kRecentPerUser = 8;
constexpr std::size_t kRecentUsers = 4096;
/* Unknown names whose failures are remembered at once, about 2 MiB. */
constexpr std::size_t kUnknownNames = 16384;

} // namespace

RecentFailures::RecentFailures() : key_(crypto_generichash_KEYBYTES, '\0') {
    randombytes_buf(key_.data(), key_.size());
}

bool RecentFailures::seen_before(const std::string &user, std::string_view password, std::int64_t now,
                                 unsigned interval) {
    unsigned char digest[32];
    crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char *>(password.data()),
                       password.size(), reinterpret_cast<const unsigned char *>(key_.data()), key_.size());
    std::string d(reinterpret_cast<const char *>(digest), sizeof digest);
    sodium_memzero(digest, sizeof digest);

    std::lock_guard lock(mutex_);
    if (entries_.size() >= kRecentUsers && !entries_.count(user))
        entries_.clear(); /* forget everything rather than grow without bound */
    std::deque<Entry> &list = entries_[user];
    while (!list.empty() && (now - list.front().at >= static_cast<std::int64_t>(interval) || list.front().at > now))
        list.pop_front();
    for (const Entry &e : list) {
        if (sodium_memcmp(e.digest.data(), d.data(), d.size()) == 0)
            return true;
    }
    list.push_back({std::move(d), now});
    if (list.size() > kRecentPerUser)
        list.pop_front();
    return false;
}

UnknownNameTallies::UnknownNameTallies() : key_(crypto_generichash_KEYBYTES, '\0') {
    randombytes_buf(key_.data(), key_.size());
}

std::string UnknownNameTallies::digest(std::string_view name) const {
    unsigned char out[16];
    crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char *>(name.data()), name.size(),
                       reinterpret_cast<const unsigned char *>(key_.data()), key_.size());
    return std::string(reinterpret_cast<const char *>(out), sizeof out);
}

Tally UnknownNameTallies::read(std::string_view name, std::int64_t now, const LockRule &rule) {
    std::string d = digest(name);
    std::lock_guard lock(mutex_);
    auto it = tallies_.find(d);
    if (it == tallies_.end())
        return {};
    /* A lock that ended, like an enrolled user's, leaves a fresh tally. */
    if (it->second.locked_until && !lock_end(it->second, now, rule)) {
        tallies_.erase(it);
        return {};
    }
    return it->second;
}

Tally UnknownNameTallies::add_failure(std::string_view name, std::int64_t now, const LockRule &rule) {
    std::string d = digest(name);
    std::lock_guard lock(mutex_);
    if (tallies_.size() >= kUnknownNames && !tallies_.count(d)) {
        /* Forget the name whose window began first. Clearing the whole
         * table would lift every unknown name's lock at once, while
         * enrolled users' locks stay: a sign of who is enrolled. */
        auto oldest = std::min_element(tallies_.begin(), tallies_.end(), [](const auto &a, const auto &b) {
            return a.second.first_failure.value_or(0) < b.second.first_failure.value_or(0);
        });
        tallies_.erase(oldest);
    }
    Tally &tally = tallies_[d];
    tally = warden::add_failure(tally, now, rule);
    return tally;
}

void UnknownNameTallies::forget(std::string_view name) {
    std::string d = digest(name);
    std::lock_guard lock(mutex_);
    tallies_.erase(d);
}

bool make_dummy_hash(const Argon2Policy &policy, std::string &ret_hash) {
    SecretBuffer random(32);
    randombytes_buf(random.data(), random.capacity());
    random.resize(random.capacity());
    return hash_password(random.view(), policy, ret_hash);
}

} // namespace warden
