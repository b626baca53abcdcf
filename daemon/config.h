/* wardend.conf: keys, defaults and validation. */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace warden {

enum class DaemonMode { kProduction, kDevelopment };
enum class MfaMode { kRequired, kOptional, kOff };

struct Config {
    std::string path; /* file the values came from, for messages */

    /* [daemon] */
    DaemonMode mode = DaemonMode::kProduction;
    std::string socket = "/run/warden/wardend.sock";
    std::string state_directory = "/var/lib/warden";
    std::string key_file = "/etc/warden/secret.key";
    unsigned workers = 0; /* 0: one per CPU */
    bool dbus = true;
    std::string log_level = "info";
    unsigned max_connections = 256;
    unsigned max_connections_per_peer = 32;
    unsigned max_conversations_per_source = 32; /* running at once per remote host or caller uid */
    unsigned queue_size = 256;     /* hash requests waiting for a worker */
    unsigned queue_timeout = 10;   /* seconds a hash request may wait */
    unsigned request_timeout = 10; /* seconds a new connection may take to send its request */

    /* [password] */
    std::uint64_t argon2_memory_kib = 65536;
    std::uint64_t argon2_iterations = 3;
    unsigned min_length = 12;

    /* [mfa] */
    MfaMode mfa_mode = MfaMode::kRequired;
    unsigned totp_digits = 6;
    unsigned totp_period = 30;
    unsigned totp_window = 1;
    std::string totp_issuer; /* empty: the host name */

    /* [lockout] */
    unsigned deny = 5;
    unsigned fail_interval = 900;
    unsigned unlock_time = 600;
    bool even_deny_root = false;
    unsigned rhost_deny = 20;
    unsigned local_deny = 3;
    unsigned fail_delay = 4; /* seconds: the longest wait before a failure is answered */

    /* [audit] */
    unsigned audit_burst = 5;
    unsigned audit_interval = 60;

    bool development() const noexcept { return mode == DaemonMode::kDevelopment; }
    unsigned effective_workers() const noexcept;
};

/* Production floor of the Argon2 cost; development mode may go lower. */
inline constexpr std::uint64_t kMinArgon2MemoryKib = 19 * 1024;
inline constexpr std::uint64_t kMinArgon2Iterations = 2;
inline constexpr std::uint64_t kMinDevArgon2MemoryKib = 8 * 1024;
inline constexpr std::uint64_t kMinDevArgon2Iterations = 1;

/* Largest config file accepted; anything bigger is a mistake or an attack. */
inline constexpr std::size_t kMaxConfigSize = 64 * 1024;

/* Parses INI text into ret_config and appends one message per problem to
 * ret_problems, in the form "FILE: [section] key: what is wrong". Checks
 * only the text: no file system access. */
void parse_config_text(const std::string &path, const std::string &text, Config &ret_config,
                       std::vector<std::string> &ret_problems);

/* Reads and parses the config file at path, then checks what it points at:
 * the ownership and modes of the config, key file and state directory, the
 * key's size, and combinations of keys. Returns false when any problem was
 * found; every problem is in ret_problems. */
bool load_config(const std::string &path, Config &ret_config, std::vector<std::string> &ret_problems);

/* The checks of load_config that concern files other than the config. */
void check_config_files(const Config &config, std::vector<std::string> &ret_problems);

} // namespace warden
