#include "daemon/config.h"

#include "daemon/audit.h"

#include <ini.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>
#include <climits>
#include <cstdlib>
#include <vector>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace warden {
namespace {

/* libinih is built with a 200-byte line buffer, newline and terminator
 * included; longer lines would be split. Stay well inside it. */
constexpr std::size_t kMaxLineSize = 190;

constexpr std::uint64_t kMaxArgon2MemoryKib = 4ull * 1024 * 1024; /* 4 GiB */
constexpr std::uint64_t kMaxArgon2Iterations = 100;
constexpr unsigned kMaxSeconds = 365u * 24 * 3600;

std::string trim(std::string_view s) {
    std::size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos)
        return {};
    std::size_t e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

/* The shipped config documents values with "# ..." after them; libinih only
 * strips ';' comments inline, so strip '#' ones here. */
std::string strip_inline_comment(std::string_view value) {
    for (std::size_t i = 1; i < value.size(); i++) {
        if (value[i] == '#' && (value[i - 1] == ' ' || value[i - 1] == '\t'))
            return trim(value.substr(0, i));
    }
    return trim(value);
}

struct ParseState {
    const std::string *path;
    Config *config;
    std::vector<std::string> *problems;
    std::map<std::string, int> key_lines; /* "section.key" -> first line */
    std::set<std::string> seen;
};

std::string line_suffix(const ParseState &state, const std::string &id) {
    auto it = state.key_lines.find(id);
    return it == state.key_lines.end() ? std::string() : " (line " + std::to_string(it->second) + ")";
}

void add_problem(ParseState &state, const char *section, const char *key, const std::string &what) {
    std::string id = std::string(section) + "." + key;
    state.problems->push_back(*state.path + ": [" + section + "] " + key + ": " + what +
                              line_suffix(state, id));
}

bool parse_unsigned(const std::string &value, std::uint64_t min, std::uint64_t max, std::uint64_t &ret) {
    if (value.empty() || value.size() > 20)
        return false;
    std::uint64_t parsed = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (ec != std::errc() || end != value.data() + value.size())
        return false;
    if (parsed < min || parsed > max)
        return false;
    ret = parsed;
    return true;
}

/* Quotes a value from the file for a message: escaped and bounded, since
 * the file may hold any bytes. */
std::string quoted(const std::string &value) { return "'" + escape_for_log(value, 64) + "'"; }

std::string range_text(std::uint64_t min, std::uint64_t max) {
    return "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

void set_unsigned(ParseState &state, const char *section, const char *key, const std::string &value,
                  std::uint64_t min, std::uint64_t max, unsigned &target) {
    std::uint64_t parsed;
    if (!parse_unsigned(value, min, max, parsed)) {
        add_problem(state, section, key, "invalid value " + quoted(value) + ", " + range_text(min, max));
        return;
    }
    target = static_cast<unsigned>(parsed);
}

void set_u64(ParseState &state, const char *section, const char *key, const std::string &value,
             std::uint64_t min, std::uint64_t max, std::uint64_t &target) {
    std::uint64_t parsed;
    if (!parse_unsigned(value, min, max, parsed)) {
        add_problem(state, section, key, "invalid value " + quoted(value) + ", " + range_text(min, max));
        return;
    }
    target = parsed;
}

void set_bool(ParseState &state, const char *section, const char *key, const std::string &value,
              bool &target) {
    if (value == "true" || value == "yes" || value == "1")
        target = true;
    else if (value == "false" || value == "no" || value == "0")
        target = false;
    else
        add_problem(state, section, key, "invalid value " + quoted(value) + ", expected true or false");
}

void set_path(ParseState &state, const char *section, const char *key, const std::string &value,
              std::string &target) {
    if (value.empty() || value[0] != '/')
        add_problem(state, section, key, "invalid value " + quoted(value) + ", expected an absolute path");
    else if (value.size() > 107 && std::strcmp(key, "socket") == 0)
        add_problem(state, section, key, "path longer than 107 bytes, too long for a UNIX socket");
    else
        target = value;
}

void handle_daemon_key(ParseState &state, const char *key, const std::string &value) {
    Config &c = *state.config;
    const char *s = "daemon";
    if (!std::strcmp(key, "mode")) {
        if (value == "production")
            c.mode = DaemonMode::kProduction;
        else if (value == "development")
            c.mode = DaemonMode::kDevelopment;
        else
            add_problem(state, s, key, "invalid value " + quoted(value) + ", expected production or development");
    } else if (!std::strcmp(key, "socket")) {
        set_path(state, s, key, value, c.socket);
    } else if (!std::strcmp(key, "state_directory")) {
        set_path(state, s, key, value, c.state_directory);
    } else if (!std::strcmp(key, "key_file")) {
        set_path(state, s, key, value, c.key_file);
    } else if (!std::strcmp(key, "workers")) {
        set_unsigned(state, s, key, value, 0, 256, c.workers);
    } else if (!std::strcmp(key, "dbus")) {
        if (value == "system")
            c.dbus = true;
        else if (value == "off")
            c.dbus = false;
        else
            add_problem(state, s, key, "invalid value " + quoted(value) + ", expected system or off");
    } else if (!std::strcmp(key, "log_level")) {
        static const std::set<std::string> levels = {"trace", "debug", "info", "warning", "error"};
        if (levels.count(value))
            c.log_level = value;
        else
            add_problem(state, s, key,
                        "invalid value " + quoted(value) + ", expected trace, debug, info, warning or error");
    } else if (!std::strcmp(key, "max_connections")) {
        set_unsigned(state, s, key, value, 1, 65536, c.max_connections);
    } else if (!std::strcmp(key, "max_connections_per_peer")) {
        set_unsigned(state, s, key, value, 1, 65536, c.max_connections_per_peer);
    } else if (!std::strcmp(key, "max_conversations_per_source")) {
        set_unsigned(state, s, key, value, 1, 65536, c.max_conversations_per_source);
    } else if (!std::strcmp(key, "queue_size")) {
        set_unsigned(state, s, key, value, 1, 65536, c.queue_size);
    } else if (!std::strcmp(key, "queue_timeout")) {
        set_unsigned(state, s, key, value, 1, 300, c.queue_timeout);
    } else if (!std::strcmp(key, "request_timeout")) {
        set_unsigned(state, s, key, value, 1, 60, c.request_timeout);
    } else {
        add_problem(state, s, key, "unknown key");
    }
}

void handle_password_key(ParseState &state, const char *key, const std::string &value) {
    Config &c = *state.config;
    const char *s = "password";
    /* The floors depend on the mode, which may come later in the file; they
     * are checked once the whole file is read. */
    if (!std::strcmp(key, "argon2_memory_kib"))
        set_u64(state, s, key, value, 1, kMaxArgon2MemoryKib, c.argon2_memory_kib);
    else if (!std::strcmp(key, "argon2_iterations"))
        set_u64(state, s, key, value, 1, kMaxArgon2Iterations, c.argon2_iterations);
    else if (!std::strcmp(key, "min_length"))
        set_unsigned(state, s, key, value, 1, 512, c.min_length);
    else
        add_problem(state, s, key, "unknown key");
}

void handle_mfa_key(ParseState &state, const char *key, const std::string &value) {
    Config &c = *state.config;
    const char *s = "mfa";
    if (!std::strcmp(key, "mode")) {
        if (value == "required")
            c.mfa_mode = MfaMode::kRequired;
        else if (value == "optional")
            c.mfa_mode = MfaMode::kOptional;
        else if (value == "off")
            c.mfa_mode = MfaMode::kOff;
        else
            add_problem(state, s, key, "invalid value " + quoted(value) + ", expected required, optional or off");
    } else if (!std::strcmp(key, "totp_digits")) {
        set_unsigned(state, s, key, value, 6, 8, c.totp_digits);
    } else if (!std::strcmp(key, "totp_period")) {
        set_unsigned(state, s, key, value, 15, 300, c.totp_period);
    } else if (!std::strcmp(key, "totp_window")) {
        set_unsigned(state, s, key, value, 0, 10, c.totp_window);
    } else if (!std::strcmp(key, "totp_issuer")) {
        bool printable = std::all_of(value.begin(), value.end(),
                                     [](char ch) { return static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f; });
        if (value.empty() || value.size() > 64 || value.find(':') != std::string::npos || !printable)
            add_problem(state, s, key,
                        "invalid value " + quoted(value) + ", expected 1 to 64 printable bytes without ':'");
        else
            c.totp_issuer = value;
    } else {
        add_problem(state, s, key, "unknown key");
    }
}

void handle_lockout_key(ParseState &state, const char *key, const std::string &value) {
    Config &c = *state.config;
    const char *s = "lockout";
    if (!std::strcmp(key, "deny"))
        set_unsigned(state, s, key, value, 1, 1000, c.deny);
    else if (!std::strcmp(key, "fail_interval"))
        set_unsigned(state, s, key, value, 1, kMaxSeconds, c.fail_interval);
    else if (!std::strcmp(key, "unlock_time"))
        set_unsigned(state, s, key, value, 0, kMaxSeconds, c.unlock_time);
    else if (!std::strcmp(key, "even_deny_root"))
        set_bool(state, s, key, value, c.even_deny_root);
    else if (!std::strcmp(key, "rhost_deny"))
        set_unsigned(state, s, key, value, 1, 100000, c.rhost_deny);
    else if (!std::strcmp(key, "local_deny"))
        set_unsigned(state, s, key, value, 1, 1000, c.local_deny);
    else if (!std::strcmp(key, "fail_delay"))
        set_unsigned(state, s, key, value, 0, 30, c.fail_delay);
    else
        add_problem(state, s, key, "unknown key");
}

void handle_audit_key(ParseState &state, const char *key, const std::string &value) {
    Config &c = *state.config;
    const char *s = "audit";
    if (!std::strcmp(key, "burst"))
        set_unsigned(state, s, key, value, 1, 10000, c.audit_burst);
    else if (!std::strcmp(key, "interval"))
        set_unsigned(state, s, key, value, 1, 3600, c.audit_interval);
    else
        add_problem(state, s, key, "unknown key");
}

int ini_handler(void *user, const char *section, const char *name, const char *raw_value) {
    auto &state = *static_cast<ParseState *>(user);
    std::string id = std::string(section) + "." + name;
    if (!state.seen.insert(id).second) {
        add_problem(state, section, name, "set more than once");
        return 1;
    }
    std::string value = strip_inline_comment(raw_value ? raw_value : "");
    if (!std::strcmp(section, "daemon"))
        handle_daemon_key(state, name, value);
    else if (!std::strcmp(section, "password"))
        handle_password_key(state, name, value);
    else if (!std::strcmp(section, "mfa"))
        handle_mfa_key(state, name, value);
    else if (!std::strcmp(section, "lockout"))
        handle_lockout_key(state, name, value);
    else if (!std::strcmp(section, "audit"))
        handle_audit_key(state, name, value);
    else
        state.problems->push_back(*state.path + ": [" + section + "] " + name + ": unknown section" +
                                  line_suffix(state, id));
    return 1;
}

/* Records where each key sits and reports lines that libinih would
 * misread: NUL bytes, lines longer than its buffer, and lines that are
 * neither a section, a key, a comment nor blank. Returns the text with
 * those lines blanked, so the other lines are still checked and every
 * problem is reported at once. */
std::string scan_lines(ParseState &state, const std::string &text) {
    std::string clean;
    clean.reserve(text.size());
    std::string section;
    int number = 0;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        std::string_view line(text.data() + start, end - start);
        number++;
        std::string where = *state.path + ": line " + std::to_string(number) + ": ";
        bool usable = false;
        if (line.find('\0') != std::string_view::npos) {
            state.problems->push_back(where + "contains a NUL byte");
        } else if (line.size() > kMaxLineSize) {
            state.problems->push_back(where + "longer than " + std::to_string(kMaxLineSize) + " bytes");
        } else {
            usable = true;
            std::string t = trim(line);
            if (t.empty() || t[0] == '#' || t[0] == ';') {
                /* blank or comment */
            } else if (t[0] == '[') {
                if (t.back() != ']' || t.size() < 3) {
                    state.problems->push_back(where + "malformed section header " + quoted(t));
                    usable = false;
                } else {
                    section = t.substr(1, t.size() - 2);
                }
            } else if (std::size_t eq = t.find('='); eq != std::string::npos && eq > 0) {
                state.key_lines.emplace(section + "." + trim(t.substr(0, eq)), number);
            } else if (line[0] != ' ' && line[0] != '\t') {
                state.problems->push_back(where + "expected 'key = value', found " + quoted(t));
                usable = false;
            }
        }
        if (usable)
            clean.append(line);
        clean.push_back('\n');
        if (end == text.size())
            break;
        start = end + 1;
    }
    return clean;
}

void check_combinations(const std::string &path, const Config &c, std::vector<std::string> &problems) {
    bool dev = c.development();
    std::uint64_t min_memory = dev ? kMinDevArgon2MemoryKib : kMinArgon2MemoryKib;
    std::uint64_t min_iterations = dev ? kMinDevArgon2Iterations : kMinArgon2Iterations;
    const char *mode = dev ? "development" : "production";
    if (c.argon2_memory_kib < min_memory)
        problems.push_back(path + ": [password] argon2_memory_kib: " + std::to_string(c.argon2_memory_kib) +
                           " is below the minimum of " + std::to_string(min_memory) + " in " + mode +
                           " mode");
    if (c.argon2_iterations < min_iterations)
        problems.push_back(path + ": [password] argon2_iterations: " + std::to_string(c.argon2_iterations) +
                           " is below the minimum of " + std::to_string(min_iterations) + " in " + mode +
                           " mode");
    if (!dev && c.mfa_mode == MfaMode::kOff)
        problems.push_back(path + ": [mfa] mode: off is allowed only with [daemon] mode = development");
    if (!dev && c.min_length < 8)
        problems.push_back(path + ": [password] min_length: " + std::to_string(c.min_length) +
                           " is below the minimum of 8 in production mode");
    /* Lockout times below a minute are for tests only. */
    if (!dev && c.fail_interval < 60)
        problems.push_back(path + ": [lockout] fail_interval: " + std::to_string(c.fail_interval) +
                           " is below the minimum of 60 seconds in production mode");
    if (!dev && c.audit_interval < 10)
        problems.push_back(path + ": [audit] interval: " + std::to_string(c.audit_interval) +
                           " is below the minimum of 10 seconds in production mode");
    if (!dev && c.unlock_time != 0 && c.unlock_time < 60)
        problems.push_back(path + ": [lockout] unlock_time: " + std::to_string(c.unlock_time) +
                           " is below the minimum of 60 seconds in production mode (0 means until unlocked)");
}

/* Returns whether uid may own the files: root, or in development mode the running user. */
bool trusted_owner(const Config &c, uid_t uid) {
    return uid == 0 || (c.development() && uid == geteuid());
}

std::string owner_text(const Config &c) {
    return c.development() ? "root or the user running wardend" : "root";
}

void check_not_writable_by_others(const Config &c, const std::string &what, const std::string &file,
                                  const struct stat &st, std::vector<std::string> &problems) {
    if (!trusted_owner(c, st.st_uid))
        problems.push_back(what + ": '" + file + "' is owned by uid " + std::to_string(st.st_uid) +
                           ", expected " + owner_text(c));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        problems.push_back(what + ": '" + file + "' is writable by group or others (mode " +
                           [&] {
                               char buf[8];
                               std::snprintf(buf, sizeof buf, "%04o", st.st_mode & 07777);
                               return std::string(buf);
                           }() +
                           "), expected no write access beyond its owner");
}

/* Checks one directory above a configured file: another user who could
 * write to it could swap the file for their own. A sticky directory such
 * as /tmp is accepted, since other users may not rename or remove an
 * entry in it that they do not own. */
void check_directory(const Config &c, const std::string &what, const std::string &dir,
                     std::vector<std::string> &problems) {
    struct stat st;
    if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && !trusted_owner(c, st.st_uid))
        problems.push_back(what + ": '" + dir + "' is a symbolic link owned by uid " + std::to_string(st.st_uid) +
                           ", expected " + owner_text(c));
    if (::stat(dir.c_str(), &st) < 0)
        return;
    if (!trusted_owner(c, st.st_uid)) {
        problems.push_back(what + ": directory '" + dir + "' is owned by uid " + std::to_string(st.st_uid) +
                           ", expected " + owner_text(c));
    } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
        problems.push_back(what + ": directory '" + dir + "' is writable by group or others (mode " + mode +
                           "); run 'chmod go-w " + dir + "'");
    }
}

/* Checks every directory that opening file passes through. The path is
 * walked one name at a time as the kernel does, into each symbolic link
 * met on the way. A link, or a directory on the way, that another user
 * controls could send wardend to a file of that user's choice. */
void check_parent_directories(const Config &c, const std::string &what, const std::string &file,
                              std::vector<std::string> &problems) {
    constexpr int kMaxLinks = 40;
    std::string path = file;
    if (path.empty() || path[0] != '/') {
        char *cwd = ::getcwd(nullptr, 0);
        path = std::string(cwd ? cwd : "") + "/" + path;
        std::free(cwd);
    }
    std::deque<std::string> names;
    auto push_front_names = [&names](const std::string &text) {
        std::vector<std::string> parts;
        std::stringstream in(text);
        for (std::string part; std::getline(in, part, '/');) {
            if (!part.empty() && part != ".")
                parts.push_back(part);
        }
        names.insert(names.begin(), parts.begin(), parts.end());
    };
    push_front_names(path);

    std::string current = "/";
    check_directory(c, what, current, problems);
    int links = 0;
    while (!names.empty()) {
        std::string name = names.front();
        names.pop_front();
        if (name == "..") {
            std::size_t slash = current.rfind('/');
            current = slash == 0 ? std::string("/") : current.substr(0, slash);
            continue;
        }
        std::string next = current == "/" ? "/" + name : current + "/" + name;
        struct stat st;
        if (::lstat(next.c_str(), &st) < 0)
            return; /* a missing file or directory gets its own problem */
        if (S_ISLNK(st.st_mode)) {
            if (!trusted_owner(c, st.st_uid))
                problems.push_back(what + ": '" + next + "' is a symbolic link owned by uid " +
                                   std::to_string(st.st_uid) + ", expected " + owner_text(c));
            if (++links > kMaxLinks) {
                problems.push_back(what + ": '" + file + "' passes through more than 40 symbolic links");
                return;
            }
            std::string target(PATH_MAX, '\0');
            ssize_t length = ::readlink(next.c_str(), target.data(), target.size());
            if (length < 0)
                return;
            target.resize(static_cast<std::size_t>(length));
            if (!target.empty() && target[0] == '/') {
                current = "/";
            }
            push_front_names(target);
            continue;
        }
        if (names.empty())
            return; /* the file itself has checks of its own */
        check_directory(c, what, next, problems);
        current = next;
    }
}

} // namespace

unsigned Config::effective_workers() const noexcept {
    if (workers)
        return workers;
    unsigned cpus = std::thread::hardware_concurrency();
    return cpus ? cpus : 1;
}

void parse_config_text(const std::string &path, const std::string &text, Config &ret_config,
                       std::vector<std::string> &ret_problems) {
    Config config;
    config.path = path;
    ParseState state{&path, &config, &ret_problems, {}, {}};
    std::size_t before = ret_problems.size();

    std::string clean = scan_lines(state, text);
    std::size_t after_scan = ret_problems.size();
    int rc = ini_parse_string(clean.c_str(), ini_handler, &state);
    if (rc > 0 && ret_problems.size() == before)
        ret_problems.push_back(path + ": line " + std::to_string(rc) + ": syntax error");
    else if (rc < 0)
        ret_problems.push_back(path + ": could not be parsed");
    /* Floors are judged only on a file that was read whole. */
    if (after_scan == before)
        check_combinations(path, config, ret_problems);
    ret_config = config;
}

void check_config_files(const Config &c, std::vector<std::string> &problems) {
    struct stat st;

    /* lstat: wardend opens the key without following links, so a link is
     * refused here too rather than at start. */
    if (::lstat(c.key_file.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        problems.push_back(c.path + ": [daemon] key_file: '" + c.key_file +
                           "' is a symbolic link; point key_file at the file itself");
    } else if (::stat(c.key_file.c_str(), &st) < 0) {
        problems.push_back(c.path + ": [daemon] key_file: cannot open '" + c.key_file +
                           "': " + std::strerror(errno) + "; create it with 'wardend --generate-key " +
                           c.key_file + "'");
    } else {
        if (!S_ISREG(st.st_mode))
            problems.push_back(c.path + ": [daemon] key_file: '" + c.key_file + "' is not a regular file");
        if (st.st_size != 32)
            problems.push_back(c.path + ": [daemon] key_file: '" + c.key_file + "' holds " +
                               std::to_string(st.st_size) + " bytes, expected 32");
        if (!trusted_owner(c, st.st_uid))
            problems.push_back(c.path + ": [daemon] key_file: '" + c.key_file + "' is owned by uid " +
                               std::to_string(st.st_uid) + ", expected " + owner_text(c));
        if (st.st_mode & (S_IRWXG | S_IRWXO))
            problems.push_back(c.path + ": [daemon] key_file: '" + c.key_file +
                               "' is accessible by group or others, expected mode 0600 or 0400");
    }

    check_parent_directories(c, c.path + ": [daemon] key_file", c.key_file, problems);
    check_parent_directories(c, c.path + ": [daemon] state_directory", c.state_directory, problems);
    if (::stat(c.state_directory.c_str(), &st) < 0) {
        if (errno != ENOENT)
            problems.push_back(c.path + ": [daemon] state_directory: cannot inspect '" + c.state_directory +
                               "': " + std::strerror(errno));
        /* A missing directory is created with mode 0700 at start. */
    } else if (!S_ISDIR(st.st_mode)) {
        problems.push_back(c.path + ": [daemon] state_directory: '" + c.state_directory +
                           "' is not a directory");
    } else {
        check_not_writable_by_others(c, c.path + ": [daemon] state_directory", c.state_directory, st,
                                     problems);
    }
}

bool load_config(const std::string &path, Config &ret_config, std::vector<std::string> &ret_problems) {
    std::size_t before = ret_problems.size();
    Config defaults;
    defaults.path = path;

    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ret_problems.push_back(path + ": cannot open: " + std::strerror(errno));
        ret_config = defaults;
        return false;
    }
    std::string text;
    text.resize(kMaxConfigSize + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxConfigSize) {
        ret_problems.push_back(path + ": larger than " + std::to_string(kMaxConfigSize) + " bytes");
        ret_config = defaults;
        return false;
    }

    Config config;
    parse_config_text(path, text, config, ret_problems);

    struct stat st;
    if (::stat(path.c_str(), &st) == 0)
        check_not_writable_by_others(config, path, path, st, ret_problems);
    check_parent_directories(config, path, path, ret_problems);
    check_config_files(config, ret_problems);

    ret_config = config;
    return ret_problems.size() == before;
}

} // namespace warden
