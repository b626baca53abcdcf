/* Unit tests of wardend.conf parsing (parse_config_text) and of the file
 * checks in load_config and check_config_files, on files in a private
 * temporary directory. */
#include "daemon/audit.h"
#include "daemon/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

/* Last, because cmocka.h defines macros such as fail and skip. */
#include "tests/unit/unit_test.h"

namespace {

using namespace warden;
using test::contains;
using test::starts_with;

constexpr const char *kPath = "/etc/warden/wardend.conf";

struct Parsed {
    Config config;
    std::vector<std::string> problems;
};

Parsed parse(const std::string &text) {
    Parsed parsed;
    parse_config_text(kPath, text, parsed.config, parsed.problems);
    return parsed;
}

/* Asserts that problems has count entries and prints them when it does
 * not. label names the input in table-driven tests. */
void assert_problem_count(const std::vector<std::string> &problems, std::size_t count,
                          const std::string &label = "the input",
                          std::source_location where = std::source_location::current()) {
    if (problems.size() == count)
        return;
    std::string message = label + ": expected " + std::to_string(count) + " problems, got " +
                           std::to_string(problems.size());
    for (const std::string &problem : problems)
        message += "\n  " + problem;
    test::fail_at(message, where);
}

void assert_no_problems(const Parsed &parsed, const std::string &label = "the text",
                        std::source_location where = std::source_location::current()) {
    assert_problem_count(parsed.problems, 0, label, where);
}

/* Asserts exactly one problem and returns it. */
std::string single_problem(const Parsed &parsed, const std::string &label = "the text",
                           std::source_location where = std::source_location::current()) {
    assert_problem_count(parsed.problems, 1, label, where);
    return parsed.problems[0];
}

void config_defaults(void **) {
    Parsed parsed = parse("");
    assert_no_problems(parsed);
    const Config &c = parsed.config;
    assert_string_equal(c.path.c_str(), kPath);

    assert_int_equal(static_cast<int>(c.mode), static_cast<int>(DaemonMode::kProduction));
    assert_string_equal(c.socket.c_str(), "/run/warden/wardend.sock");
    assert_string_equal(c.state_directory.c_str(), "/var/lib/warden");
    assert_string_equal(c.key_file.c_str(), "/etc/warden/secret.key");
    assert_int_equal(c.workers, 0);
    assert_true(c.dbus);
    assert_string_equal(c.log_level.c_str(), "info");
    assert_int_equal(c.max_connections, 256);
    assert_int_equal(c.max_connections_per_peer, 32);
    assert_int_equal(c.max_conversations_per_source, 32);
    assert_int_equal(c.queue_size, 256);
    assert_int_equal(c.queue_timeout, 10);

    assert_int_equal(c.argon2_memory_kib, 65536);
    assert_int_equal(c.argon2_iterations, 3);
    assert_int_equal(c.min_length, 12);

    assert_int_equal(static_cast<int>(c.mfa_mode), static_cast<int>(MfaMode::kRequired));
    assert_int_equal(c.totp_digits, 6);
    assert_int_equal(c.totp_period, 30);
    assert_int_equal(c.totp_window, 1);

    assert_int_equal(c.deny, 5);
    assert_int_equal(c.fail_interval, 900);
    assert_int_equal(c.unlock_time, 600);
    assert_false(c.even_deny_root);
    assert_int_equal(c.rhost_deny, 20);
    assert_int_equal(c.local_deny, 3);

    assert_int_equal(c.audit_burst, AuditLimits{}.burst);
    assert_int_equal(c.audit_interval, AuditLimits{}.interval);
}

void config_every_key(void **) {
    Parsed parsed = parse("[daemon]\n"
                          "mode = development\n"
                          "socket = /tmp/w/wardend.sock\n"
                          "state_directory = /tmp/w/state\n"
                          "key_file = /tmp/w/secret.key\n"
                          "workers = 4\n"
                          "dbus = off\n"
                          "log_level = debug\n"
                          "max_connections = 100\n"
                          "max_connections_per_peer = 7\n"
                          "max_conversations_per_source = 5\n"
                          "queue_size = 9\n"
                          "queue_timeout = 11\n"
                          "\n"
                          "[password]\n"
                          "argon2_memory_kib = 131072\n"
                          "argon2_iterations = 4\n"
                          "min_length = 15\n"
                          "\n"
                          "[mfa]\n"
                          "mode = optional\n"
                          "totp_digits = 8\n"
                          "totp_period = 60\n"
                          "totp_window = 2\n"
                          "totp_issuer = Example Corp\n"
                          "\n"
                          "[lockout]\n"
                          "deny = 3\n"
                          "fail_interval = 120\n"
                          "unlock_time = 0\n"
                          "even_deny_root = true\n"
                          "rhost_deny = 50\n"
                          "local_deny = 2\n"
                          "fail_delay = 1\n"
                          "\n"
                          "[audit]\n"
                          "burst = 7\n"
                          "interval = 30\n");
    assert_no_problems(parsed);

    const Config &c = parsed.config;
    assert_int_equal(static_cast<int>(c.mode), static_cast<int>(DaemonMode::kDevelopment));
    assert_string_equal(c.socket.c_str(), "/tmp/w/wardend.sock");
    assert_string_equal(c.state_directory.c_str(), "/tmp/w/state");
    assert_string_equal(c.key_file.c_str(), "/tmp/w/secret.key");
    assert_int_equal(c.workers, 4);
    assert_false(c.dbus);
    assert_string_equal(c.log_level.c_str(), "debug");
    assert_int_equal(c.max_connections, 100);
    assert_int_equal(c.max_connections_per_peer, 7);
    assert_int_equal(c.max_conversations_per_source, 5);
    assert_int_equal(c.queue_size, 9);
    assert_int_equal(c.queue_timeout, 11);

    assert_int_equal(c.argon2_memory_kib, 131072);
    assert_int_equal(c.argon2_iterations, 4);
    assert_int_equal(c.min_length, 15);

    assert_int_equal(static_cast<int>(c.mfa_mode), static_cast<int>(MfaMode::kOptional));
    assert_int_equal(c.totp_digits, 8);
    assert_int_equal(c.totp_period, 60);
    assert_int_equal(c.totp_window, 2);
    assert_string_equal(c.totp_issuer.c_str(), "Example Corp");

    assert_int_equal(c.deny, 3);
    assert_int_equal(c.fail_interval, 120);
    assert_int_equal(c.unlock_time, 0);
    assert_true(c.even_deny_root);
    assert_int_equal(c.rhost_deny, 50);
    assert_int_equal(c.local_deny, 2);
    assert_int_equal(c.fail_delay, 1);

    assert_int_equal(c.audit_burst, 7);
    assert_int_equal(c.audit_interval, 30);
}

void config_unknown_key(void **) {
    Parsed parsed = parse("[daemon]\nworkers = 2\nworker = 2\n");
    std::string problem = single_problem(parsed);
    assert_true(starts_with(problem, std::string(kPath) + ": [daemon] worker: "));
    assert_true(contains(problem, "unknown key"));
    assert_true(contains(problem, "line 3"));
}

void config_unknown_section(void **) {
    Parsed parsed = parse("[daemon]\nworkers = 2\n[deamon]\nmode = development\n");
    std::string problem = single_problem(parsed);
    assert_true(starts_with(problem, std::string(kPath) + ": [deamon] mode: "));
    assert_true(contains(problem, "unknown section"));
    assert_true(contains(problem, "line 4"));
    /* The misspelt section must not switch the daemon to development mode. */
    assert_int_equal(static_cast<int>(parsed.config.mode), static_cast<int>(DaemonMode::kProduction));
}

void config_key_before_any_section(void **) {
    Parsed parsed = parse("workers = 2\n");
    std::string problem = single_problem(parsed);
    assert_true(starts_with(problem, std::string(kPath) + ": "));
    assert_true(contains(problem, "workers"));
    assert_int_equal(parsed.config.workers, 0);
}

struct RangeCase {
    const char *section;
    const char *key;
    std::uint64_t min;
    std::uint64_t max;
};

/* The accepted range of every integer key. */
const RangeCase kRanges[] = {
    {"daemon", "workers", 0, 256},
    {"daemon", "max_connections", 1, 65536},
    {"daemon", "max_connections_per_peer", 1, 65536},
    {"daemon", "max_conversations_per_source", 1, 65536},
    {"daemon", "queue_size", 1, 65536},
    {"daemon", "queue_timeout", 1, 300},
    {"password", "argon2_memory_kib", 1, 4ull * 1024 * 1024},
    {"password", "argon2_iterations", 1, 100},
    {"password", "min_length", 1, 512},
    {"mfa", "totp_digits", 6, 8},
    {"mfa", "totp_period", 15, 300},
    {"mfa", "totp_window", 0, 10},
    {"lockout", "deny", 1, 1000},
    {"lockout", "fail_interval", 1, 365u * 24 * 3600},
    {"lockout", "unlock_time", 0, 365u * 24 * 3600},
    {"lockout", "rhost_deny", 1, 100000},
    {"lockout", "local_deny", 1, 1000},
    {"lockout", "fail_delay", 0, 30},
    {"audit", "burst", 1, 10000},
    {"audit", "interval", 1, 3600},
};

void check_out_of_range(const RangeCase &range, const std::string &value) {
    std::string label = std::string("[") + range.section + "] " + range.key + " = " + value;
    Parsed parsed = parse(std::string("[") + range.section + "]\n" + range.key + " = " + value + "\n");
    std::string problem = single_problem(parsed, label);
    WARDEN_ASSERT_FOR(starts_with(problem, std::string(kPath) + ": [" + range.section + "] " + range.key + ": "),
                      label);
    WARDEN_ASSERT_FOR(contains(problem, "'" + value + "'"), label);
    WARDEN_ASSERT_FOR(contains(problem, " " + std::to_string(range.min) + " "), label);
    WARDEN_ASSERT_FOR(contains(problem, " " + std::to_string(range.max)), label);
    WARDEN_ASSERT_FOR(contains(problem, "line 2"), label);
}

void config_integer_out_of_range(void **) {
    for (const RangeCase &range : kRanges) {
        if (range.min > 0)
            check_out_of_range(range, std::to_string(range.min - 1));
        check_out_of_range(range, std::to_string(range.max + 1));
        check_out_of_range(range, "-1");
        check_out_of_range(range, "12abc");
    }
}

void config_integer_at_range_ends(void **) {
    for (const RangeCase &range : kRanges) {
        /* Development mode lowers the floors checked after parsing. */
        std::string head = "[daemon]\nmode = development\n";
        for (std::uint64_t value : {range.min, range.max}) {
            std::string line = std::string(range.key) + " = " + std::to_string(value) + "\n";
            std::string text = std::string(range.section) == "daemon"
                                       ? head + line
                                       : head + "[" + range.section + "]\n" + line;
            std::string label = std::string("[") + range.section + "] " + range.key + " = " + std::to_string(value);
            Parsed parsed = parse(text);
            /* The parser takes argon2_memory_kib down to 1, below the
             * development floor of 8192, so only that value is reported. */
            bool below_floor = std::strcmp(range.key, "argon2_memory_kib") == 0 && value < kMinDevArgon2MemoryKib;
            if (below_floor) {
                std::string problem = single_problem(parsed, label);
                WARDEN_ASSERT_FOR(contains(problem, "below the minimum"), label);
            } else {
                assert_no_problems(parsed, label);
            }
        }
    }
}

void config_totp_window_negative_and_huge(void **) {
    for (const char *value : {"-1", "-0", "18446744073709551616", "99999999999999999999999999", "1e3", "0x2"}) {
        std::string label = std::string("totp_window = ") + value;
        Parsed parsed = parse(std::string("[mfa]\ntotp_window = ") + value + "\n");
        std::string problem = single_problem(parsed, label);
        WARDEN_ASSERT_FOR(starts_with(problem, std::string(kPath) + ": [mfa] totp_window: "), label);
        WARDEN_ASSERT_FOR(contains(problem, "0 to 10"), label);
        WARDEN_ASSERT_FOR(parsed.config.totp_window == 1, label);
    }
}

void config_argon2_floor_production(void **) {
    Parsed memory = parse("[password]\nargon2_memory_kib = 16384\n");
    std::string memory_problem = single_problem(memory);
    assert_true(starts_with(memory_problem, std::string(kPath) + ": [password] argon2_memory_kib: "));
    assert_true(contains(memory_problem, std::to_string(19 * 1024)));

    Parsed iterations = parse("[password]\nargon2_iterations = 1\n");
    std::string iterations_problem = single_problem(iterations);
    assert_true(starts_with(iterations_problem, std::string(kPath) + ": [password] argon2_iterations: "));
    assert_true(contains(iterations_problem, "minimum of 2"));

    Parsed at_floor = parse("[password]\nargon2_memory_kib = 19456\nargon2_iterations = 2\n");
    assert_no_problems(at_floor);
}

void config_argon2_floor_development(void **) {
    /* The mode comes after the cost, so the floor is applied to the whole file. */
    Parsed low = parse("[password]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n"
                       "[daemon]\nmode = development\n");
    assert_no_problems(low);
    assert_int_equal(low.config.argon2_memory_kib, 8192);
    assert_int_equal(low.config.argon2_iterations, 1);

    Parsed too_low = parse("[daemon]\nmode = development\n[password]\nargon2_memory_kib = 8191\n");
    std::string problem = single_problem(too_low);
    assert_true(starts_with(problem, std::string(kPath) + ": [password] argon2_memory_kib: "));
    assert_true(contains(problem, "8192"));
}

void config_mfa_off(void **) {
    Parsed production = parse("[mfa]\nmode = off\n");
    std::string problem = single_problem(production);
    assert_true(starts_with(problem, std::string(kPath) + ": [mfa] mode: "));
    assert_true(contains(problem, "development"));

    Parsed development = parse("[daemon]\nmode = development\n[mfa]\nmode = off\n");
    assert_no_problems(development);
    assert_int_equal(static_cast<int>(development.config.mfa_mode), static_cast<int>(MfaMode::kOff));
}

void config_production_audit_interval_floor(void **) {
    Parsed production = parse("[audit]\ninterval = 9\n");
    std::string problem = single_problem(production);
    assert_true(starts_with(problem, std::string(kPath) + ": [audit] interval: "));

    Parsed at_floor = parse("[audit]\ninterval = 10\n");
    assert_no_problems(at_floor);

    Parsed development = parse("[daemon]\nmode = development\n[audit]\ninterval = 1\n");
    assert_no_problems(development);
}

void config_production_lockout_floor(void **) {
    Parsed production = parse("[lockout]\nfail_interval = 1\nunlock_time = 1\n");
    assert_problem_count(production.problems, 2);

    Parsed development = parse("[daemon]\nmode = development\n[lockout]\nfail_interval = 1\nunlock_time = 1\n");
    assert_no_problems(development);
}

void config_bad_enumerations(void **) {
    const char *lines[] = {
        "[daemon]\nmode = prod\n",         "[daemon]\ndbus = session\n",
        "[daemon]\nlog_level = verbose\n", "[mfa]\nmode = sometimes\n",
        "[lockout]\neven_deny_root = maybe\n", "[daemon]\nsocket = run/wardend.sock\n",
        "[mfa]\ntotp_issuer = a:b\n",
    };
    for (const char *text : lines) {
        Parsed parsed = parse(text);
        std::string problem = single_problem(parsed, text);
        WARDEN_ASSERT_FOR(starts_with(problem, std::string(kPath) + ": ["), text);
        WARDEN_ASSERT_FOR(contains(problem, "line 2"), text);
    }
}

void config_value_escaped_in_message(void **) {
    /* A problem message quotes the value from the file, which must not
     * carry terminal escapes or line breaks to the administrator's screen. */
    Parsed parsed = parse("[daemon]\nmode = \x1b[2Jproduction\x7f\n");
    std::string problem = single_problem(parsed);
    assert_true(contains(problem, "'\\x1b[2Jproduction\\x7f'"));
    assert_true(problem.find('\x1b') == std::string::npos);
    assert_true(problem.find('\x7f') == std::string::npos);
}

void config_socket_path_too_long(void **) {
    std::string path = "/" + std::string(107, 's');
    Parsed parsed = parse("[daemon]\nsocket = " + path + "\n");
    std::string problem = single_problem(parsed);
    assert_true(starts_with(problem, std::string(kPath) + ": [daemon] socket: "));
    assert_string_equal(parsed.config.socket.c_str(), "/run/warden/wardend.sock");
}

void config_nul_byte(void **) {
    const std::string text("[daemon]\nworkers = 2\0\n", 22);
    Parsed parsed = parse(text);
    std::string problem = single_problem(parsed);
    assert_true(starts_with(problem, std::string(kPath) + ": line 2: "));
    assert_true(contains(problem, "NUL"));
}

void config_line_over_200_bytes(void **) {
    std::string line = "# " + std::string(199, 'c');
    assert_int_equal(line.size(), 201);
    Parsed parsed = parse("[daemon]\n" + line + "\n");
    std::string problem = single_problem(parsed);
    assert_true(starts_with(problem, std::string(kPath) + ": line 2: "));
    assert_true(contains(problem, "longer than"));
}

void config_line_of_one_megabyte(void **) {
    std::string text = "[daemon]\nworkers = " + std::string(1024 * 1024, '9') + "\n";
    Parsed parsed = parse(text);
    std::string problem = single_problem(parsed);
    assert_true(starts_with(problem, std::string(kPath) + ": line 2: "));
    assert_int_equal(parsed.config.workers, 0);
}

void config_long_value_never_truncated(void **) {
    /* Around the line limit each line is either parsed whole or reported
     * as too long at its own line. A value is never cut short. */
    for (std::size_t length = 190; length <= 210; length++) {
        std::string prefix = "state_directory = /";
        std::string value = "/" + std::string(length - prefix.size(), 'd');
        std::string line = prefix.substr(0, prefix.size() - 1) + value;
        assert_int_equal(line.size(), length);
        std::string label = "a line of " + std::to_string(length) + " bytes";
        Parsed parsed = parse("[daemon]\n" + line + "\nworkers = 2\n");
        if (parsed.problems.empty()) {
            WARDEN_ASSERT_FOR(parsed.config.state_directory == value, label);
            WARDEN_ASSERT_FOR(parsed.config.workers == 2, label);
        } else {
            assert_problem_count(parsed.problems, 1, label);
            WARDEN_ASSERT_FOR(starts_with(parsed.problems[0], std::string(kPath) + ": line 2: "), label);
        }
    }
}

void config_truncated_file(void **) {
    Parsed section = parse("[daem");
    std::string section_problem = single_problem(section);
    assert_true(starts_with(section_problem, std::string(kPath) + ": line 1: "));

    Parsed key = parse("[daemon]\nwork");
    std::string key_problem = single_problem(key);
    assert_true(starts_with(key_problem, std::string(kPath) + ": line 2: "));

    Parsed value = parse("[daemon]\nworkers =");
    std::string value_problem = single_problem(value);
    assert_true(starts_with(value_problem, std::string(kPath) + ": [daemon] workers: "));
}

void config_key_set_twice(void **) {
    Parsed parsed = parse("[daemon]\nworkers = 2\nworkers = 3\n");
    std::string problem = single_problem(parsed);
    assert_true(starts_with(problem, std::string(kPath) + ": [daemon] workers: "));
    assert_true(contains(problem, "more than once"));
}

void config_same_key_in_two_sections(void **) {
    /* [daemon] mode and [mfa] mode are different keys. */
    Parsed parsed = parse("[daemon]\nmode = development\n[mfa]\nmode = off\n");
    assert_no_problems(parsed);
}

void config_comment_after_value(void **) {
    Parsed hash = parse("[daemon]\nworkers = 4 # one per core\n[mfa]\ntotp_issuer = Example\t# shown in the app\n");
    assert_no_problems(hash);
    assert_int_equal(hash.config.workers, 4);
    assert_string_equal(hash.config.totp_issuer.c_str(), "Example");

    Parsed semicolon = parse("[daemon]\nworkers = 4 ; one per core\n");
    assert_no_problems(semicolon);
    assert_int_equal(semicolon.config.workers, 4);

    /* A '#' inside a word is part of the value. */
    Parsed inside = parse("[mfa]\ntotp_issuer = Team#1\n");
    assert_no_problems(inside);
    assert_string_equal(inside.config.totp_issuer.c_str(), "Team#1");
}

void config_comment_lines(void **) {
    Parsed parsed = parse("# wardend.conf\n; another comment\n\n[daemon]\n  # indented comment\nworkers = 3\n");
    assert_no_problems(parsed);
    assert_int_equal(parsed.config.workers, 3);
}

void config_several_problems(void **) {
    Parsed parsed = parse("[daemon]\n"
                          "workers = 1000\n"
                          "colour = blue\n"
                          "[password]\n"
                          "argon2_iterations = 1\n"
                          "[mfa]\n"
                          "mode = off\n"
                          "totp_window = 11\n"
                          "[extra]\n"
                          "key = value\n"
                          "[lockout]\n"
                          "even_deny_root = perhaps\n");
    /* The seven problems: workers, colour, argon2_iterations, [mfa] mode,
     * totp_window, [extra] key and even_deny_root. */
    assert_problem_count(parsed.problems, 7);
    for (const std::string &problem : parsed.problems)
        WARDEN_ASSERT_FOR(starts_with(problem, std::string(kPath) + ": ["), problem);
}

void config_problems_beside_bad_lines(void **) {
    /* A NUL byte or an overlong line must not hide the problems on the
     * other lines, so that one run of --check-config lists them all. */
    const std::string text = std::string("[daemon]\n"
                                         "workers = 2\0\n"
                                         "colour = blue\n",
                                         36) +
                             "# " + std::string(300, 'c') + "\n" + "queue_timeout = 0\n";
    Parsed parsed = parse(text);
    assert_problem_count(parsed.problems, 4);
}

/* load_config and check_config_files on real files. */

/* Temporary directories not yet removed. A failed assertion leaves the
 * test by longjmp and skips ~TempDir, so the group teardown removes what
 * is left here. */
std::set<std::string> live_directories;

void remove_directory(const std::string &path) {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
    live_directories.erase(path);
}

int remove_live_directories(void **) {
    while (!live_directories.empty())
        remove_directory(*live_directories.begin());
    return 0;
}

struct TempDir {
    std::string path;

    TempDir() {
        char pattern[] = "/tmp/warden-unit-XXXXXX";
        char *created = mkdtemp(pattern);
        assert_non_null(created);
        path = created;
        live_directories.insert(path);
    }
    ~TempDir() { remove_directory(path); }
};

void write_file(const std::string &path, const std::string &content, mode_t mode) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    assert_int_equal(close(fd), 0);
    /* chmod, because open's mode is filtered by the umask. */
    assert_int_equal(chmod(path.c_str(), mode), 0);
}

/* A valid installation in a temporary directory: a 32-byte key, a state
 * directory and a config naming both, all mode 0600 or 0700. */
struct Installation {
    TempDir dir;
    std::string config_path;
    std::string key_path;
    std::string state_path;

    explicit Installation(const std::string &mode) {
        config_path = dir.path + "/wardend.conf";
        key_path = dir.path + "/secret.key";
        state_path = dir.path + "/state";
        write_file(key_path, std::string(32, 'k'), 0600);
        assert_int_equal(mkdir(state_path.c_str(), 0700), 0);
        assert_int_equal(chmod(state_path.c_str(), 0700), 0);
        write_config(mode);
    }

    void write_config(const std::string &mode, mode_t file_mode = 0600) {
        write_file(config_path,
                   "[daemon]\nmode = " + mode + "\nkey_file = " + key_path + "\nstate_directory = " + state_path +
                           "\n",
                   file_mode);
    }

    std::vector<std::string> load() {
        Config config;
        std::vector<std::string> problems;
        bool ok = load_config(config_path, config, problems);
        assert_int_equal(ok, problems.empty());
        return problems;
    }
};

/* Counts the problems that contain every one of parts. */
std::size_t count_matching(const std::vector<std::string> &problems, std::initializer_list<std::string> parts) {
    std::size_t count = 0;
    for (const std::string &problem : problems) {
        bool all = true;
        for (const std::string &part : parts)
            all = all && contains(problem, part);
        count += all ? 1 : 0;
    }
    return count;
}

void files_valid_development(void **) {
    /* Files made by the running user are trusted in development mode,
     * whether or not that user is root. */
    Installation installation("development");
    std::vector<std::string> problems = installation.load();
    assert_problem_count(problems, 0);
}

void files_valid_production(void **) {
    Installation installation("production");
    std::vector<std::string> problems = installation.load();
    if (geteuid() == 0) {
        assert_problem_count(problems, 0);
    } else {
        /* Not root: the config, the key and the state directory belong to
         * an untrusted user. */
        assert_int_equal(count_matching(problems, {"owned by uid " + std::to_string(geteuid())}), 3);
        assert_problem_count(problems, 3);
    }
}

void files_key_missing(void **) {
    Installation installation("development");
    assert_int_equal(unlink(installation.key_path.c_str()), 0);
    std::vector<std::string> problems = installation.load();
    assert_problem_count(problems, 1);
    assert_true(starts_with(problems[0], installation.config_path + ": [daemon] key_file: "));
    assert_true(contains(problems[0], installation.key_path));
    assert_true(contains(problems[0], "--generate-key"));
}

void files_key_31_bytes(void **) {
    Installation installation("development");
    write_file(installation.key_path, std::string(31, 'k'), 0600);
    std::vector<std::string> problems = installation.load();
    assert_problem_count(problems, 1);
    assert_true(starts_with(problems[0], installation.config_path + ": [daemon] key_file: "));
    assert_true(contains(problems[0], "31"));
    assert_true(contains(problems[0], "32"));
}

void files_key_readable_by_others(void **) {
    Installation installation("development");
    assert_int_equal(chmod(installation.key_path.c_str(), 0644), 0);
    std::vector<std::string> problems = installation.load();
    assert_problem_count(problems, 1);
    assert_true(starts_with(problems[0], installation.config_path + ": [daemon] key_file: "));
    assert_true(contains(problems[0], "0600"));

    assert_int_equal(chmod(installation.key_path.c_str(), 0640), 0);
    assert_problem_count(installation.load(), 1);
}

void files_key_is_directory(void **) {
    Installation installation("development");
    assert_int_equal(unlink(installation.key_path.c_str()), 0);
    assert_int_equal(mkdir(installation.key_path.c_str(), 0700), 0);
    std::vector<std::string> problems = installation.load();
    assert_int_equal(count_matching(problems, {"[daemon] key_file: ", "not a regular file"}), 1);
}

void files_state_directory_0777(void **) {
    Installation installation("development");
    assert_int_equal(chmod(installation.state_path.c_str(), 0777), 0);
    std::vector<std::string> problems = installation.load();
    assert_problem_count(problems, 1);
    assert_true(starts_with(problems[0], installation.config_path + ": [daemon] state_directory: "));
    assert_true(contains(problems[0], "0777"));
}

void files_state_directory_missing(void **) {
    /* wardend creates a missing state directory itself. */
    Installation installation("development");
    assert_int_equal(rmdir(installation.state_path.c_str()), 0);
    assert_problem_count(installation.load(), 0);
}

void files_state_directory_is_file(void **) {
    Installation installation("development");
    assert_int_equal(rmdir(installation.state_path.c_str()), 0);
    write_file(installation.state_path, "", 0600);
    std::vector<std::string> problems = installation.load();
    assert_int_equal(count_matching(problems, {"[daemon] state_directory: ", "not a directory"}), 1);
}

void files_config_group_writable(void **) {
    Installation installation("development");
    installation.write_config("development", 0660);
    std::vector<std::string> problems = installation.load();
    assert_problem_count(problems, 1);
    assert_true(starts_with(problems[0], installation.config_path + ": "));
    assert_true(contains(problems[0], "0660"));
}

void files_config_missing(void **) {
    TempDir dir;
    Config config;
    std::vector<std::string> problems;
    std::string path = dir.path + "/absent.conf";
    assert_false(load_config(path, config, problems));
    assert_problem_count(problems, 1);
    assert_true(starts_with(problems[0], path + ": "));
}

void files_config_too_large(void **) {
    Installation installation("development");
    std::string text = "[daemon]\nmode = development\n";
    while (text.size() <= kMaxConfigSize)
        text += "# padding padding padding padding padding padding padding padding\n";
    write_file(installation.config_path, text, 0600);
    std::vector<std::string> problems = installation.load();
    assert_problem_count(problems, 1);
    assert_true(contains(problems[0], std::to_string(kMaxConfigSize)));
}

void files_owned_by_other_user(void **) {
    if (geteuid() != 0) {
        print_message("skipped: changing a file's owner needs root\n");
        skip();
    }
    /* Development mode trusts root and the running user (root here), never
     * a third user. */
    Installation installation("development");
    assert_int_equal(chown(installation.key_path.c_str(), 65534, 65534), 0);
    assert_int_equal(chown(installation.state_path.c_str(), 65534, 65534), 0);
    std::vector<std::string> problems = installation.load();
    assert_problem_count(problems, 2);
    assert_int_equal(count_matching(problems, {"[daemon] key_file: ", "owned by uid 65534"}), 1);
    assert_int_equal(count_matching(problems, {"[daemon] state_directory: ", "owned by uid 65534"}), 1);
}

void files_several_problems(void **) {
    Installation installation("development");
    write_file(installation.key_path, std::string(16, 'k'), 0644);
    assert_int_equal(chmod(installation.state_path.c_str(), 0770), 0);
    installation.write_config("development", 0666);
    std::vector<std::string> problems = installation.load();
    /* Key size, key mode, state directory mode and config mode. */
    assert_problem_count(problems, 4);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_defaults),
        cmocka_unit_test(config_every_key),
        cmocka_unit_test(config_unknown_key),
        cmocka_unit_test(config_unknown_section),
        cmocka_unit_test(config_key_before_any_section),
        cmocka_unit_test(config_integer_out_of_range),
        cmocka_unit_test(config_integer_at_range_ends),
        cmocka_unit_test(config_totp_window_negative_and_huge),
        cmocka_unit_test(config_argon2_floor_production),
        cmocka_unit_test(config_argon2_floor_development),
        cmocka_unit_test(config_mfa_off),
        cmocka_unit_test(config_production_lockout_floor),
        cmocka_unit_test(config_production_audit_interval_floor),
        cmocka_unit_test(config_bad_enumerations),
        cmocka_unit_test(config_value_escaped_in_message),
        cmocka_unit_test(config_socket_path_too_long),
        cmocka_unit_test(config_nul_byte),
        cmocka_unit_test(config_line_over_200_bytes),
        cmocka_unit_test(config_line_of_one_megabyte),
        cmocka_unit_test(config_long_value_never_truncated),
        cmocka_unit_test(config_truncated_file),
        cmocka_unit_test(config_key_set_twice),
        cmocka_unit_test(config_same_key_in_two_sections),
        cmocka_unit_test(config_comment_after_value),
        cmocka_unit_test(config_comment_lines),
        cmocka_unit_test(config_several_problems),
        cmocka_unit_test(config_problems_beside_bad_lines),
        cmocka_unit_test(files_valid_development),
        cmocka_unit_test(files_valid_production),
        cmocka_unit_test(files_key_missing),
        cmocka_unit_test(files_key_31_bytes),
        cmocka_unit_test(files_key_readable_by_others),
        cmocka_unit_test(files_key_is_directory),
        cmocka_unit_test(files_state_directory_0777),
        cmocka_unit_test(files_state_directory_missing),
        cmocka_unit_test(files_state_directory_is_file),
        cmocka_unit_test(files_config_group_writable),
        cmocka_unit_test(files_config_missing),
        cmocka_unit_test(files_config_too_large),
        cmocka_unit_test(files_owned_by_other_user),
        cmocka_unit_test(files_several_problems),
    };
    return cmocka_run_group_tests_name("config", tests, nullptr, remove_live_directories);
}
