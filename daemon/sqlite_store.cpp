/* SQLite implementation of Store: one database file in WAL mode, every
 * write in a transaction, synchronous=FULL so a committed write survives a
 * power cut before the daemon responds to the client. The one exception is the
 * record of a successful login, whose loss is harmless. */
#include "daemon/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

namespace warden {
namespace {

/* Each entry moves the schema from version i to i + 1. */
const char *const kMigrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  password_hash TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  last_login INTEGER,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  first_failure INTEGER,"
    "  locked_until INTEGER"
    ") STRICT;",
    /* 1 -> 2: second factors */
    "ALTER TABLE users ADD COLUMN totp_last_used INTEGER;"
    "ALTER TABLE users ADD COLUMN totp_drift INTEGER;"
    "CREATE TABLE totp ("
    "  user TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  sealed_secret BLOB NOT NULL,"
    "  algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),"
    "  digits INTEGER NOT NULL CHECK (digits BETWEEN 6 AND 8),"
    "  period INTEGER NOT NULL CHECK (period BETWEEN 15 AND 300),"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'active')),"
    "  created INTEGER NOT NULL,"
    "  confirmed INTEGER"
    ") STRICT;"
    "CREATE TABLE recovery_codes ("
    "  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  code_hash BLOB NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  used INTEGER,"
    "  PRIMARY KEY (user, code_hash)"
    ") STRICT;",
    /* 2 -> 3: failure tallies of remote hosts and non-root callers */
    "CREATE TABLE throttle ("
    "  bucket TEXT PRIMARY KEY NOT NULL,"
    "  failures INTEGER NOT NULL,"
    "  first_failure INTEGER,"
    "  locked_until INTEGER"
    ") STRICT;",
};
static_assert(sizeof kMigrations / sizeof kMigrations[0] == kStoreSchemaVersion);

struct StatementDeleter {
    void operator()(sqlite3_stmt *s) const noexcept { sqlite3_finalize(s); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

struct DatabaseDeleter {
    void operator()(sqlite3 *db) const noexcept { sqlite3_close_v2(db); }
};
using Database = std::unique_ptr<sqlite3, DatabaseDeleter>;

/* A prepared statement kept for the life of the connection. The handle
 * resets it and clears its bindings when it goes out of scope, so no
 * value bound for one call stays in memory until the next. */
class Cached {
public:
    Cached() noexcept = default;
    Cached(sqlite3_stmt *statement, bool *in_use) noexcept : statement_(statement), in_use_(in_use) {}
    Cached(Cached &&other) noexcept
        : statement_(std::exchange(other.statement_, nullptr)), in_use_(std::exchange(other.in_use_, nullptr)) {}
    Cached &operator=(Cached &&) = delete;
    Cached(const Cached &) = delete;
    ~Cached() {
        if (!statement_)
            return;
        sqlite3_reset(statement_);
        sqlite3_clear_bindings(statement_);
        if (in_use_)
            *in_use_ = false;
        else
            sqlite3_finalize(statement_); /* a second use of a busy statement */
    }
    sqlite3_stmt *get() const noexcept { return statement_; }
    explicit operator bool() const noexcept { return statement_ != nullptr; }

private:
    sqlite3_stmt *statement_ = nullptr;
    bool *in_use_ = nullptr;
};

StoreStatus status_from(int rc) {
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return StoreStatus::kOk;
    case SQLITE_FULL:
        return StoreStatus::kFull;
    case SQLITE_CONSTRAINT:
        return StoreStatus::kExists;
    default:
        return StoreStatus::kError;
    }
}

std::optional<std::int64_t> column_optional(sqlite3_stmt *s, int column) {
    if (sqlite3_column_type(s, column) == SQLITE_NULL)
        return std::nullopt;
    return sqlite3_column_int64(s, column);
}

class SqliteStore final : public Store {
public:
    explicit SqliteStore(Database db) : db_(std::move(db)) {}
    ~SqliteStore() override {
        for (auto &[sql, entry] : statements_)
            sqlite3_finalize(entry.statement);
    }
    SqliteStore(const SqliteStore &) = delete;
    SqliteStore &operator=(const SqliteStore &) = delete;

    StoreStatus get_user(const std::string &name, UserRecord &ret_record) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("SELECT name, password_hash, created, updated, last_login, failures,"
                              " first_failure, locked_until, totp_last_used, totp_drift FROM users WHERE name = ?1");
        if (!s)
            return StoreStatus::kError;
        sqlite3_bind_text(s.get(), 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
        int rc = sqlite3_step(s.get());
        if (rc == SQLITE_DONE)
            return StoreStatus::kNotFound;
        if (rc != SQLITE_ROW)
            return fail(rc);
        UserRecord record;
        record.name = text_column(s.get(), 0);
        record.password_hash = text_column(s.get(), 1);
        record.created = sqlite3_column_int64(s.get(), 2);
        record.updated = sqlite3_column_int64(s.get(), 3);
        record.last_login = column_optional(s.get(), 4);
        record.failures = static_cast<std::uint32_t>(sqlite3_column_int64(s.get(), 5));
        record.first_failure = column_optional(s.get(), 6);
        record.locked_until = column_optional(s.get(), 7);
        record.totp_last_used = column_optional(s.get(), 8);
        record.totp_drift = column_optional(s.get(), 9);
        ret_record = std::move(record);
        return StoreStatus::kOk;
    }

    StoreStatus add_user(const std::string &name, const std::string &hash, std::int64_t now) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("INSERT INTO users (name, password_hash, created, updated)"
                              " VALUES (?1, ?2, ?3, ?3)");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, name);
        bind_text(s.get(), 2, hash);
        sqlite3_bind_int64(s.get(), 3, now);
        return step_done(s.get());
    }

    StoreStatus set_password(const std::string &name, const std::string &hash, std::int64_t now) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("UPDATE users SET password_hash = ?2, updated = ?3 WHERE name = ?1");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, name);
        bind_text(s.get(), 2, hash);
        sqlite3_bind_int64(s.get(), 3, now);
        StoreStatus status = step_done(s.get());
        if (status == StoreStatus::kOk && sqlite3_changes(db_.get()) == 0)
            return StoreStatus::kNotFound;
        return status;
    }

    StoreStatus remove_user(const std::string &name) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("DELETE FROM users WHERE name = ?1");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, name);
        StoreStatus status = step_done(s.get());
        if (status == StoreStatus::kOk && sqlite3_changes(db_.get()) == 0)
            return StoreStatus::kNotFound;
        return status;
    }

    StoreStatus list_users(std::vector<std::string> &ret_names) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("SELECT name FROM users ORDER BY name");
        if (!s)
            return StoreStatus::kError;
        std::vector<std::string> names;
        int rc;
        while ((rc = sqlite3_step(s.get())) == SQLITE_ROW)
            names.push_back(text_column(s.get(), 0));
        if (rc != SQLITE_DONE)
            return fail(rc);
        ret_names = std::move(names);
        return StoreStatus::kOk;
    }

    StoreStatus record_success(const std::string &name, std::int64_t now,
                               const std::optional<std::string> &new_hash) override {
        std::lock_guard lock(mutex_);
        /* Committed without waiting for the disk: a power cut can lose only
         * this login's record, which leaves the failure count and the
         * earlier hash, both still correct to act on. The durable writes that
         * follow flush it with their own. */
        if (StoreStatus st = exec("PRAGMA synchronous = NORMAL"); st != StoreStatus::kOk)
            return st;
        StoreStatus status = exec("BEGIN IMMEDIATE");
        if (status == StoreStatus::kOk)
            status = finish_transaction(write_success(name, now, new_hash));
        if (StoreStatus st = exec("PRAGMA synchronous = FULL"); st != StoreStatus::kOk)
            return st;
        return status;
    }

    StoreStatus write_success(const std::string &name, std::int64_t now, const std::optional<std::string> &new_hash) {
        Cached s = prepare("UPDATE users SET last_login = ?2, failures = 0, first_failure = NULL,"
                              " locked_until = NULL WHERE name = ?1");
        StoreStatus status = s ? StoreStatus::kOk : StoreStatus::kError;
        if (status == StoreStatus::kOk) {
            bind_text(s.get(), 1, name);
            sqlite3_bind_int64(s.get(), 2, now);
            status = step_done(s.get());
            if (status == StoreStatus::kOk && sqlite3_changes(db_.get()) == 0)
                status = StoreStatus::kNotFound;
        }
        if (status == StoreStatus::kOk && new_hash) {
            Cached u = prepare("UPDATE users SET password_hash = ?2, updated = ?3 WHERE name = ?1");
            status = u ? StoreStatus::kOk : StoreStatus::kError;
            if (status == StoreStatus::kOk) {
                bind_text(u.get(), 1, name);
                bind_text(u.get(), 2, *new_hash);
                sqlite3_bind_int64(u.get(), 3, now);
                status = step_done(u.get());
            }
        }
        return status;
    }

    StoreStatus get_totp(const std::string &name, TotpRecord &ret_record) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("SELECT sealed_secret, algorithm, state, created, confirmed, digits, period"
                              " FROM totp WHERE user = ?1");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, name);
        int rc = sqlite3_step(s.get());
        if (rc == SQLITE_DONE)
            return StoreStatus::kNotFound;
        if (rc != SQLITE_ROW)
            return fail(rc);
        TotpRecord record;
        const void *blob = sqlite3_column_blob(s.get(), 0);
        int size = sqlite3_column_bytes(s.get(), 0);
        if (blob && size > 0)
            record.sealed_secret.assign(static_cast<const char *>(blob), static_cast<std::size_t>(size));
        record.algorithm = text_column(s.get(), 1);
        record.state = text_column(s.get(), 2) == "active" ? TotpState::kActive : TotpState::kPending;
        record.created = sqlite3_column_int64(s.get(), 3);
        record.confirmed = column_optional(s.get(), 4);
        record.digits = static_cast<unsigned>(sqlite3_column_int64(s.get(), 5));
        record.period = static_cast<unsigned>(sqlite3_column_int64(s.get(), 6));
        ret_record = std::move(record);
        return StoreStatus::kOk;
    }

    StoreStatus put_totp(const std::string &name, const TotpRecord &record, bool force) override {
        std::lock_guard lock(mutex_);
        if (StoreStatus st = exec("BEGIN IMMEDIATE"); st != StoreStatus::kOk)
            return st;
        StoreStatus status = user_exists(name);
        if (status == StoreStatus::kOk && !force) {
            Cached q = prepare("SELECT 1 FROM totp WHERE user = ?1 AND state = 'active'");
            if (!q) {
                status = StoreStatus::kError;
            } else {
                bind_text(q.get(), 1, name);
                int rc = sqlite3_step(q.get());
                if (rc == SQLITE_ROW)
                    status = StoreStatus::kExists;
                else if (rc != SQLITE_DONE)
                    status = fail(rc);
            }
        }
        if (status == StoreStatus::kOk) {
            Cached s = prepare("INSERT OR REPLACE INTO totp (user, sealed_secret, algorithm, state, created,"
                                  " digits, period) VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6)");
            status = s ? StoreStatus::kOk : StoreStatus::kError;
            if (s) {
                bind_text(s.get(), 1, name);
                sqlite3_bind_blob(s.get(), 2, record.sealed_secret.data(),
                                  static_cast<int>(record.sealed_secret.size()), SQLITE_TRANSIENT);
                bind_text(s.get(), 3, record.algorithm);
                sqlite3_bind_int64(s.get(), 4, record.created);
                sqlite3_bind_int64(s.get(), 5, record.digits);
                sqlite3_bind_int64(s.get(), 6, record.period);
                status = step_done(s.get());
            }
        }
        return finish_transaction(status);
    }

    StoreStatus confirm_totp(const std::string &name, std::int64_t used, std::int64_t drift,
                             std::int64_t now) override {
        std::lock_guard lock(mutex_);
        if (StoreStatus st = exec("BEGIN IMMEDIATE"); st != StoreStatus::kOk)
            return st;
        StoreStatus status = advance_step(name, used, drift);
        if (status == StoreStatus::kOk) {
            Cached s = prepare("UPDATE totp SET state = 'active', confirmed = ?2 WHERE user = ?1"
                                  " AND state = 'pending'");
            status = s ? StoreStatus::kOk : StoreStatus::kError;
            if (s) {
                bind_text(s.get(), 1, name);
                sqlite3_bind_int64(s.get(), 2, now);
                status = step_done(s.get());
                if (status == StoreStatus::kOk && sqlite3_changes(db_.get()) == 0)
                    status = StoreStatus::kNotFound;
            }
        }
        return finish_transaction(status);
    }

    StoreStatus remove_totp(const std::string &name) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("DELETE FROM totp WHERE user = ?1");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, name);
        StoreStatus status = step_done(s.get());
        if (status == StoreStatus::kOk && sqlite3_changes(db_.get()) == 0)
            return StoreStatus::kNotFound;
        return status;
    }

    StoreStatus consume_totp_step(const std::string &name, std::int64_t used, std::int64_t drift) override {
        std::lock_guard lock(mutex_);
        if (StoreStatus st = exec("BEGIN IMMEDIATE"); st != StoreStatus::kOk)
            return st;
        return finish_transaction(advance_step(name, used, drift));
    }

    StoreStatus set_recovery_codes(const std::string &name, const std::vector<std::string> &hashes,
                                   std::int64_t now) override {
        std::lock_guard lock(mutex_);
        if (StoreStatus st = exec("BEGIN IMMEDIATE"); st != StoreStatus::kOk)
            return st;
        StoreStatus status = user_exists(name);
        if (status == StoreStatus::kOk) {
            Cached d = prepare("DELETE FROM recovery_codes WHERE user = ?1");
            status = d ? StoreStatus::kOk : StoreStatus::kError;
            if (d) {
                bind_text(d.get(), 1, name);
                status = step_done(d.get());
            }
        }
        for (const std::string &hash : hashes) {
            if (status != StoreStatus::kOk)
                break;
            Cached s = prepare("INSERT INTO recovery_codes (user, code_hash, created) VALUES (?1, ?2, ?3)");
            if (!s) {
                status = StoreStatus::kError;
                break;
            }
            bind_text(s.get(), 1, name);
            sqlite3_bind_blob(s.get(), 2, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
            sqlite3_bind_int64(s.get(), 3, now);
            status = step_done(s.get());
        }
        return finish_transaction(status);
    }

    StoreStatus use_recovery_code(const std::string &name, const std::string &hash, std::int64_t now) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("UPDATE recovery_codes SET used = ?3 WHERE user = ?1 AND code_hash = ?2"
                              " AND used IS NULL");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, name);
        sqlite3_bind_blob(s.get(), 2, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int64(s.get(), 3, now);
        StoreStatus status = step_done(s.get());
        if (status == StoreStatus::kOk && sqlite3_changes(db_.get()) == 0)
            return StoreStatus::kNotFound;
        return status;
    }

    StoreStatus count_recovery_codes(const std::string &name, unsigned &ret_unused) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare("SELECT count(*) FROM recovery_codes WHERE user = ?1 AND used IS NULL");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, name);
        int rc = sqlite3_step(s.get());
        if (rc != SQLITE_ROW)
            return fail(rc);
        ret_unused = static_cast<unsigned>(sqlite3_column_int64(s.get(), 0));
        return StoreStatus::kOk;
    }

    StoreStatus get_tally(const TallyKey &key, Tally &ret_tally) override {
        std::lock_guard lock(mutex_);
        return read_tally(key, ret_tally);
    }

    StoreStatus check_tallies(const std::vector<std::pair<TallyKey, LockRule>> &keys, std::int64_t now,
                              AttemptResult &ret_result) override {
        std::lock_guard lock(mutex_);
        if (StoreStatus st = exec("BEGIN IMMEDIATE"); st != StoreStatus::kOk)
            return st;
        AttemptResult result;
        StoreStatus status = StoreStatus::kOk;
        for (const auto &[key, rule] : keys) {
            Tally tally;
            StoreStatus st = read_tally(key, tally);
            if (st == StoreStatus::kNotFound) {
                tally = Tally{};
            } else if (st != StoreStatus::kOk) {
                status = st;
                break;
            }
            std::optional<std::int64_t> end = lock_end(tally, now, rule);
            if (end && tally.locked_until && *end != *tally.locked_until) {
                /* The clock went back: keep the lock no longer than unlock_time. */
                tally.locked_until = *end;
                status = write_tally(key, tally);
                if (status != StoreStatus::kOk)
                    break;
            }
            /* A window that ended no longer counts toward the next lock. A
             * lock that ended inside its window leaves room for one more
             * attempt, whose failure locks again at once. */
            if (tally.first_failure && (*tally.first_failure > now ||
                                        now - *tally.first_failure >= static_cast<std::int64_t>(rule.fail_interval)))
                tally.failures = 0;
            else if (tally.locked_until && !end && tally.failures >= rule.deny)
                tally.failures = rule.deny - 1;
            result.locked.push_back(end.has_value());
            result.after.push_back(tally);
            if (end)
                result.blocked = true;
        }
        status = finish_transaction(status);
        if (status == StoreStatus::kOk)
            ret_result = std::move(result);
        return status;
    }

    StoreStatus add_failures(const std::vector<std::pair<TallyKey, LockRule>> &keys, std::int64_t now,
                             AttemptResult &ret_result) override {
        std::lock_guard lock(mutex_);
        if (StoreStatus st = exec("BEGIN IMMEDIATE"); st != StoreStatus::kOk)
            return st;
        AttemptResult result;
        StoreStatus status = StoreStatus::kOk;
        for (const auto &[key, rule] : keys) {
            Tally tally;
            StoreStatus st = read_tally(key, tally);
            if (st == StoreStatus::kNotFound) {
                result.after.push_back(Tally{});
                result.locked_now.push_back(false);
                continue;
            }
            if (st != StoreStatus::kOk) {
                status = st;
                break;
            }
            Tally next = add_failure(tally, now, rule);
            status = write_tally(key, next);
            if (status != StoreStatus::kOk)
                break;
            result.locked_now.push_back(next.locked_until.has_value() && !lock_end(tally, now, rule).has_value());
            result.after.push_back(next);
        }
        if (status == StoreStatus::kOk && !keys.empty())
            status = prune_buckets(now, keys.front().second.fail_interval);
        status = finish_transaction(status);
        if (status == StoreStatus::kOk)
            ret_result = std::move(result);
        return status;
    }

    StoreStatus set_lock_end(const TallyKey &key, std::int64_t until) override {
        std::lock_guard lock(mutex_);
        Cached s = prepare(key.kind == TallyKey::Kind::kUser
                                      ? "UPDATE users SET locked_until = ?2 WHERE name = ?1"
                                      : "UPDATE throttle SET locked_until = ?2 WHERE bucket = ?1");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, key.name);
        sqlite3_bind_int64(s.get(), 2, until);
        return step_done(s.get());
    }

    StoreStatus clear_tally(const TallyKey &key) override {
        bool cleared = false;
        return clear_tally(key, cleared);
    }

    StoreStatus clear_tally(const TallyKey &key, bool &ret_cleared) override {
        std::lock_guard lock(mutex_);
        ret_cleared = false;
        if (key.kind == TallyKey::Kind::kUser) {
            Tally before;
            StoreStatus st = read_tally(key, before);
            if (st != StoreStatus::kOk)
                return st;
            ret_cleared = before.failures > 0 || before.locked_until.has_value();
        }
        Cached s = prepare(key.kind == TallyKey::Kind::kUser
                                      ? "UPDATE users SET failures = 0, first_failure = NULL, locked_until = NULL"
                                        " WHERE name = ?1"
                                      : "DELETE FROM throttle WHERE bucket = ?1");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, key.name);
        StoreStatus status = step_done(s.get());
        if (status == StoreStatus::kOk && key.kind == TallyKey::Kind::kUser && sqlite3_changes(db_.get()) == 0)
            return StoreStatus::kNotFound;
        if (status == StoreStatus::kOk && key.kind == TallyKey::Kind::kBucket)
            ret_cleared = sqlite3_changes(db_.get()) > 0;
        return status;
    }

    std::string last_error() const override {
        std::lock_guard lock(error_mutex_);
        return last_error_;
    }

    /* Applies pending migrations inside one transaction each. */
    bool migrate(std::string &ret_error) {
        std::lock_guard lock(mutex_);
        int version = 0;
        {
            Cached s = prepare("PRAGMA user_version");
            if (!s || sqlite3_step(s.get()) != SQLITE_ROW) {
                ret_error = "failed to read the schema version: " + last_error_unlocked();
                return false;
            }
            version = sqlite3_column_int(s.get(), 0);
        }
        if (version > kStoreSchemaVersion) {
            ret_error = "store schema version " + std::to_string(version) +
                        " is newer than this wardend supports (" + std::to_string(kStoreSchemaVersion) + ")";
            return false;
        }
        for (; version < kStoreSchemaVersion; version++) {
            std::string sql = std::string("BEGIN IMMEDIATE;") + kMigrations[version] +
                              "PRAGMA user_version = " + std::to_string(version + 1) + ";COMMIT;";
            char *message = nullptr;
            if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
                ret_error = "failed to migrate the store to schema version " + std::to_string(version + 1) +
                            ": " + (message ? message : "unknown error");
                sqlite3_free(message);
                sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
                return false;
            }
        }
        return true;
    }

private:
    static std::string text_column(sqlite3_stmt *s, int column) {
        const unsigned char *text = sqlite3_column_text(s, column);
        int size = sqlite3_column_bytes(s, column);
        return text ? std::string(reinterpret_cast<const char *>(text), static_cast<std::size_t>(size))
                    : std::string();
    }

    /* Binds a value, or NULL when there is none. Out of line, because GCC
     * 12 inlines it into callers and then warns, wrongly, that an empty
     * optional's payload may be read. */
    [[gnu::noinline]] static void bind_optional(sqlite3_stmt *s, int index, const std::optional<std::int64_t> &value) {
        if (value.has_value())
            sqlite3_bind_int64(s, index, *value);
        else
            sqlite3_bind_null(s, index);
    }

    static void bind_text(sqlite3_stmt *s, int index, const std::string &value) {
        sqlite3_bind_text(s, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    }

    /* Returns the statement for sql, prepared on first use. Callers pass
     * string literals, so the address identifies the text. */
    Cached prepare(const char *sql) {
        CacheEntry &entry = statements_[sql];
        bool reuse = !entry.in_use;
        sqlite3_stmt *s = reuse ? entry.statement : nullptr;
        if (!s) {
            int rc = sqlite3_prepare_v3(db_.get(), sql, -1, reuse ? SQLITE_PREPARE_PERSISTENT : 0, &s, nullptr);
            if (rc != SQLITE_OK) {
                fail(rc);
                return {};
            }
            if (reuse)
                entry.statement = s;
        }
        if (!reuse)
            return {s, nullptr};
        entry.in_use = true;
        return {s, &entry.in_use};
    }

    StoreStatus step_done(sqlite3_stmt *s) {
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
            return fail(rc);
        return StoreStatus::kOk;
    }

    StoreStatus exec(const char *sql) {
        int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
        return rc == SQLITE_OK ? StoreStatus::kOk : fail(rc);
    }

    StoreStatus read_tally(const TallyKey &key, Tally &ret_tally) {
        bool user = key.kind == TallyKey::Kind::kUser;
        Cached s = prepare(user ? "SELECT failures, first_failure, locked_until FROM users WHERE name = ?1"
                                   : "SELECT failures, first_failure, locked_until FROM throttle WHERE bucket = ?1");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, key.name);
        int rc = sqlite3_step(s.get());
        if (rc == SQLITE_DONE) {
            if (user)
                return StoreStatus::kNotFound;
            ret_tally = Tally{};
            return StoreStatus::kOk;
        }
        if (rc != SQLITE_ROW)
            return fail(rc);
        Tally tally;
        tally.failures = static_cast<std::uint32_t>(sqlite3_column_int64(s.get(), 0));
        tally.first_failure = column_optional(s.get(), 1);
        tally.locked_until = column_optional(s.get(), 2);
        ret_tally = tally;
        return StoreStatus::kOk;
    }

    StoreStatus write_tally(const TallyKey &key, const Tally &tally) {
        bool user = key.kind == TallyKey::Kind::kUser;
        Cached s = prepare(user ? "UPDATE users SET failures = ?2, first_failure = ?3, locked_until = ?4"
                                     " WHERE name = ?1"
                                   : "INSERT INTO throttle (bucket, failures, first_failure, locked_until)"
                                     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (bucket) DO UPDATE SET"
                                     " failures = ?2, first_failure = ?3, locked_until = ?4");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, key.name);
        sqlite3_bind_int64(s.get(), 2, tally.failures);
        bind_optional(s.get(), 3, tally.first_failure);
        bind_optional(s.get(), 4, tally.locked_until);
        return step_done(s.get());
    }

    /* Forgets remote-host and caller tallies whose window and lock both
     * ended, so the table does not grow with every host ever seen. */
    StoreStatus prune_buckets(std::int64_t now, unsigned window) {
        Cached s = prepare("DELETE FROM throttle WHERE (locked_until IS NULL OR locked_until <= ?1)"
                              " AND (first_failure IS NULL OR first_failure <= ?1 - ?2)");
        if (!s)
            return StoreStatus::kError;
        sqlite3_bind_int64(s.get(), 1, now);
        sqlite3_bind_int64(s.get(), 2, window);
        return step_done(s.get());
    }

    StoreStatus user_exists(const std::string &name) {
        Cached s = prepare("SELECT 1 FROM users WHERE name = ?1");
        if (!s)
            return StoreStatus::kError;
        bind_text(s.get(), 1, name);
        int rc = sqlite3_step(s.get());
        if (rc == SQLITE_ROW)
            return StoreStatus::kOk;
        return rc == SQLITE_DONE ? StoreStatus::kNotFound : fail(rc);
    }

    /* Moves the user's TOTP watermark to `used`, the start time of the
     * accepted step; the caller holds a write transaction, so the check and
     * the update cannot interleave with another login's. A time rather
     * than a step number keeps the watermark valid across periods. */
    StoreStatus advance_step(const std::string &name, std::int64_t used, std::optional<std::int64_t> drift) {
        Cached q = prepare("SELECT totp_last_used FROM users WHERE name = ?1");
        if (!q)
            return StoreStatus::kError;
        bind_text(q.get(), 1, name);
        int rc = sqlite3_step(q.get());
        if (rc == SQLITE_DONE)
            return StoreStatus::kNotFound;
        if (rc != SQLITE_ROW)
            return fail(rc);
        std::optional<std::int64_t> last = column_optional(q.get(), 0);
        if (last && used <= *last)
            return StoreStatus::kReplay;
        Cached u = prepare(drift ? "UPDATE users SET totp_last_used = ?2, totp_drift = ?3 WHERE name = ?1"
                                    : "UPDATE users SET totp_last_used = ?2 WHERE name = ?1");
        if (!u)
            return StoreStatus::kError;
        bind_text(u.get(), 1, name);
        sqlite3_bind_int64(u.get(), 2, used);
        if (drift)
            sqlite3_bind_int64(u.get(), 3, *drift);
        return step_done(u.get());
    }

    StoreStatus finish_transaction(StoreStatus status) {
        if (status == StoreStatus::kOk) {
            StoreStatus commit = exec("COMMIT");
            if (commit == StoreStatus::kOk)
                return StoreStatus::kOk;
            status = commit;
        }
        sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        return status;
    }

    StoreStatus fail(int rc) {
        std::lock_guard lock(error_mutex_);
        last_error_ = std::string(sqlite3_errstr(rc)) + ": " + sqlite3_errmsg(db_.get());
        return status_from(rc) == StoreStatus::kOk ? StoreStatus::kError : status_from(rc);
    }

    std::string last_error_unlocked() const { return sqlite3_errmsg(db_.get()); }

    struct CacheEntry {
        sqlite3_stmt *statement = nullptr;
        bool in_use = false;
    };

    Database db_;
    std::map<const char *, CacheEntry> statements_;
    std::mutex mutex_; /* one writer or reader at a time on the connection */
    mutable std::mutex error_mutex_;
    std::string last_error_;
};

} // namespace

const char *store_status_string(StoreStatus status) noexcept {
    switch (status) {
    case StoreStatus::kOk: return "ok";
    case StoreStatus::kNotFound: return "not found";
    case StoreStatus::kExists: return "already exists";
    case StoreStatus::kReplay: return "replayed code";
    case StoreStatus::kFull: return "disk full";
    case StoreStatus::kError: return "store error";
    }
    return "unknown";
}

std::unique_ptr<Store> open_sqlite_store(const std::string &directory, std::string &ret_error) {
    /* A new directory is made private; an existing one keeps its mode,
     * which the config check has already vetted. */
    if (::mkdir(directory.c_str(), 0700) == 0) {
        if (::chmod(directory.c_str(), 0700) < 0) {
            ret_error = "failed to set mode 0700 on '" + directory + "': " + std::strerror(errno);
            return nullptr;
        }
    } else if (errno != EEXIST) {
        ret_error = "failed to create state directory '" + directory + "': " + std::strerror(errno);
        return nullptr;
    }

    std::string path = directory + "/warden.db";
    /* Create the file ourselves so it is 0600 from its first byte; SQLite
     * gives its -wal and -shm files the same mode. */
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        ret_error = "failed to open '" + path + "': " + std::strerror(errno);
        return nullptr;
    }
    if (::fchmod(fd, 0600) < 0) {
        ret_error = "failed to set mode 0600 on '" + path + "': " + std::strerror(errno);
        ::close(fd);
        return nullptr;
    }
    ::close(fd);

    sqlite3 *raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
    Database db(raw);
    if (rc != SQLITE_OK) {
        ret_error = "failed to open '" + path + "': " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
        return nullptr;
    }
    sqlite3_busy_timeout(db.get(), 5000);
    sqlite3_extended_result_codes(db.get(), 1);

    const char *setup = "PRAGMA journal_mode = WAL;"
                        "PRAGMA synchronous = FULL;"
                        "PRAGMA foreign_keys = ON;"
                        "PRAGMA secure_delete = ON;";
    char *message = nullptr;
    if (sqlite3_exec(db.get(), setup, nullptr, nullptr, &message) != SQLITE_OK) {
        ret_error = "failed to configure '" + path + "': " + (message ? message : "unknown error");
        sqlite3_free(message);
        return nullptr;
    }
    {
        sqlite3_stmt *check = nullptr;
        if (sqlite3_prepare_v2(db.get(), "PRAGMA quick_check", -1, &check, nullptr) == SQLITE_OK) {
            Statement guard(check);
            if (sqlite3_step(check) != SQLITE_ROW ||
                std::strcmp(reinterpret_cast<const char *>(sqlite3_column_text(check, 0)), "ok") != 0) {
                const unsigned char *text = sqlite3_column_text(check, 0);
                ret_error = "store '" + path + "' failed its integrity check: " +
                            (text ? reinterpret_cast<const char *>(text) : sqlite3_errmsg(db.get())) +
                            "; restore it from a backup";
                return nullptr;
            }
        } else {
            ret_error = "store '" + path + "' is not a valid database: " + sqlite3_errmsg(db.get());
            return nullptr;
        }
    }

    auto store = std::make_unique<SqliteStore>(std::move(db));
    if (!store->migrate(ret_error))
        return nullptr;
    return store;
}

} // namespace warden
