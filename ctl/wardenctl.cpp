/* wardenctl: the admin CLI of wardend, over the D-Bus API net.warden.Admin1.
 *
 * A new password never crosses the bus. wardenctl reads it, checks it
 * against the daemon's policy and the host's libpwquality settings, hashes
 * it with Argon2id at the daemon's configured cost and sends only the PHC
 * string. The daemon authorises every call itself, so this program needs
 * no privilege of its own. */

#include "ctl/admin_client.h"
#include "ctl/command.h"
#include "ctl/json.h"
#include "ctl/password_input.h"
#include "daemon/password_hash.h"
#include "daemon/password_quality.h"
#include "daemon/secret.h"
#include "protocol/admin_bus.h"
#include "protocol/version.h"

#include <sodium.h>
#include <systemd/sd-bus.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warden::ctl {
namespace {

/* ---- Output ---- */

/* Formats seconds since the epoch as local ISO 8601, or "never" for 0. */
std::string format_time(std::int64_t seconds) {
    if (seconds == 0)
        return "never";
    std::time_t time = static_cast<std::time_t>(seconds);
    std::tm local{};
    char text[64];
    if (!localtime_r(&time, &local) || std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S%z", &local) == 0)
        return std::to_string(seconds);
    /* strftime writes the offset as +hhmm, but the ISO 8601 extended form is +hh:mm. */
    std::string out(text);
    out.insert(out.size() - 2, ":");
    return out;
}

enum class Format { kPlain, kTime, kLockTime, kSteps };

struct Field {
    const char *key;
    const char *label;
    Format format;
};

constexpr Field kUserFields[] = {
    {"name", "User", Format::kPlain},
    {"password", "Password", Format::kPlain},
    {"totp", "TOTP", Format::kPlain},
    {"totp_digits", "TOTP digits", Format::kPlain},
    {"totp_period", "TOTP period (s)", Format::kPlain},
    {"totp_drift", "Last TOTP drift", Format::kSteps},
    {"recovery_codes", "Recovery codes left", Format::kPlain},
    {"created", "Created", Format::kTime},
    {"updated", "Updated", Format::kTime},
    {"last_login", "Last login", Format::kTime},
    {"failures", "Failed attempts", Format::kPlain},
    {"locked_until", "Locked until", Format::kLockTime},
};

constexpr Field kStatusFields[] = {
    {"version", "Version", Format::kPlain},
    {"mode", "Mode", Format::kPlain},
    {"mfa_mode", "MFA mode", Format::kPlain},
    {"started", "Started", Format::kTime},
    {"workers", "Hash workers", Format::kPlain},
    {"queue_limit", "Queue limit", Format::kPlain},
    {"queued", "Hashes queued", Format::kPlain},
    {"running", "Hashes running", Format::kPlain},
    {"hashes", "Hashes completed", Format::kPlain},
    {"queue_rejected", "Hashes rejected (queue full)", Format::kPlain},
    {"connections", "Connections", Format::kPlain},
    {"connections_refused", "Connections refused", Format::kPlain},
    {"auth_success", "Authentications succeeded", Format::kPlain},
    {"auth_failure", "Authentications failed", Format::kPlain},
    {"peer_rejected", "Callers rejected", Format::kPlain},
    {"unavailable", "Requests answered unavailable", Format::kPlain},
};

std::string format_value(const Value &value, Format format) {
    if (const auto *text = std::get_if<std::string>(&value))
        return printable(*text);
    if (const auto *flag = std::get_if<bool>(&value))
        return *flag ? "yes" : "no";
    if (const auto *number = std::get_if<std::uint64_t>(&value))
        return std::to_string(*number);
    std::int64_t number = std::get<std::int64_t>(value);
    if (format == Format::kLockTime) {
        /* wardend sends the lock's end by its own clock, 0 when not locked. */
        if (number <= 0)
            return "not locked";
        if (number == std::numeric_limits<std::int64_t>::max())
            return "until unlocked with 'wardenctl unlock'";
        return format_time(number);
    }
    if (format == Format::kTime)
        return format_time(number);
    if (format == Format::kSteps)
        return (number > 0 ? "+" : "") + std::to_string(number) + (number == 1 || number == -1 ? " step" : " steps");
    return std::to_string(number);
}

/* Folds totp_algorithm into the totp entry, as "active (SHA1)", so that
 * the text output shows the factor on one line. */
void merge_totp_algorithm(std::vector<Property> &properties) {
    auto has_key = [](const char *key) { return [key](const Property &property) { return property.key == key; }; };
    auto state = std::find_if(properties.begin(), properties.end(), has_key("totp"));
    auto algorithm = std::find_if(properties.begin(), properties.end(), has_key("totp_algorithm"));
    if (state == properties.end() || algorithm == properties.end())
        return;
    auto *state_text = std::get_if<std::string>(&state->value);
    const auto *algorithm_text = std::get_if<std::string>(&algorithm->value);
    if (!state_text || !algorithm_text)
        return;
    *state_text += " (" + *algorithm_text + ")";
    properties.erase(algorithm);
}

/* Makes a label for a key missing from the field table, such as "New key"
 * for "new_key", so a field added by a newer daemon is still shown. */
std::string label_for_key(std::string_view key) {
    std::string label = printable(key);
    for (char &c : label) {
        if (c == '_')
            c = ' ';
    }
    if (!label.empty() && label[0] >= 'a' && label[0] <= 'z')
        label[0] = static_cast<char>(label[0] - 'a' + 'A');
    return label;
}

/* Prints "Label: value" lines, known keys in table order, then the rest. */
template <std::size_t N>
void print_properties(const std::vector<Property> &properties, const Field (&fields)[N]) {
    std::vector<std::pair<std::string, std::string>> lines;
    std::vector<bool> shown(properties.size(), false);
    for (const Field &field : fields) {
        for (std::size_t i = 0; i < properties.size(); ++i) {
            if (!shown[i] && properties[i].key == field.key) {
                lines.emplace_back(field.label, format_value(properties[i].value, field.format));
                shown[i] = true;
            }
        }
    }
    for (std::size_t i = 0; i < properties.size(); ++i) {
        if (!shown[i])
            lines.emplace_back(label_for_key(properties[i].key), format_value(properties[i].value, Format::kPlain));
    }
    std::size_t width = 0;
    for (const auto &line : lines)
        width = std::max(width, line.first.size());
    for (const auto &[label, value] : lines)
        std::printf("%s:%*s %s\n", label.c_str(), static_cast<int>(width - label.size()), "", value.c_str());
}

std::string properties_to_json(const std::vector<Property> &properties) {
    json::ObjectWriter object;
    for (const Property &property : properties)
        std::visit([&](const auto &value) { object.add(property.key, value); }, property.value);
    return object.finish();
}

struct PasswordPolicy {
    Argon2Policy argon2;
    std::uint32_t min_length;
};

PasswordPolicy get_password_policy(AdminClient &client, const std::string &action) {
    MessagePtr reply = client.call(action, "GetPasswordPolicy", nullptr);
    std::uint64_t memory_kib = 0;
    std::uint64_t iterations = 0;
    std::uint32_t min_length = 0;
    check_read(sd_bus_message_read(reply.get(), "ttu", &memory_kib, &iterations, &min_length), "GetPasswordPolicy");
    /* Check the cost against libsodium's limits before hashing, so the error
     * names the configured values and memory_kib * 1024 cannot overflow. */
    constexpr std::uint64_t kMaxMemoryKib = crypto_pwhash_argon2id_MEMLIMIT_MAX / 1024;
    if (memory_kib < crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024 || memory_kib > kMaxMemoryKib ||
        iterations < crypto_pwhash_argon2id_OPSLIMIT_MIN || iterations > crypto_pwhash_argon2id_OPSLIMIT_MAX)
        fail("Failed to " + action + ": the password policy of wardend requests Argon2id at m=" +
             std::to_string(memory_kib) + " KiB, t=" + std::to_string(iterations) +
             ", outside the limits of libsodium. Check [password] in the wardend config");
    return {{memory_kib, iterations}, min_length};
}

/* Rejects a password the daemon or the host's policy would not accept. */
void check_new_password(const SecretBuffer &password, const PasswordPolicy &policy, const std::string &user,
                        const std::string &action) {
    std::string_view view = password.view();
    std::string reason;
    if (view.empty())
        reason = "the new password is empty";
    else if (view.find('\0') != std::string_view::npos)
        reason = "the new password contains a NUL byte, which PAM cannot pass on";
    else if (view.size() < policy.min_length)
        reason = "the new password is " + std::to_string(view.size()) + " bytes long, but wardend requires at least " +
                 std::to_string(policy.min_length) + " ([password] min_length). Choose a longer one";
    else
        reason = PasswordQuality().check(view, /* old_password= */ {}, user);
    if (!reason.empty())
        fail("Failed to " + action + ": " + reason);
}

std::string hash_new_password(const SecretBuffer &password, const PasswordPolicy &policy, const std::string &action) {
    std::string phc;
    if (!hash_password(password.view(), policy.argon2, phc))
        fail("Failed to " + action + ": Argon2id hashing at m=" + std::to_string(policy.argon2.memory_kib) +
             " KiB, t=" + std::to_string(policy.argon2.iterations) +
             " failed, most likely because that much memory could not be allocated");
    return phc;
}

/* ---- Commands ---- */

/* Checks that name is enrolled, or for a new user that it is not, so the
 * command fails before the admin types a password for nothing. */
void expect_enrolled(AdminClient &client, const std::string &name, bool enrolled, const std::string &action) {
    BusError error;
    int r = 0;
    MessagePtr reply = client.try_call(error, r, "GetUser", "s", name.c_str());
    if (!reply && !error.has_name(bus::kErrorNoSuchUser))
        fail("Failed to " + action + ": " + describe_call_error(error, r), error.name());
    if (reply && !enrolled)
        fail("Failed to " + action + ": user " + quoted(name) + " is already enrolled. Use 'wardenctl user passwd " +
                     name + "' to set a new password",
             bus::kErrorUserExists);
    if (!reply && enrolled)
        fail("Failed to " + action + ": user " + quoted(name) + " is not enrolled. Use 'wardenctl user add " + name +
                     "' to enroll it",
             error.name());
}

/* Sets the password of a new user (AddUser) or of an enrolled one (SetPassword). */
void set_new_password(const Invocation &invocation, bool new_user) {
    const std::string &name = user_argument(invocation);
    const std::string action = new_user ? "add user " + quoted(name) : "set the password of user " + quoted(name);
    AdminClient client;
    PasswordPolicy policy = get_password_policy(client, action);
    expect_enrolled(client, name, /* enrolled= */ !new_user, action);

    SecretBuffer password = read_new_password(invocation.has(kOptionPasswordStdin), action);
    check_new_password(password, policy, name, action);
    std::string phc = hash_new_password(password, policy, action);
    password = SecretBuffer();

    /* The PHC string is no password, but it allows an offline guessing
     * attack, so it is wiped once sent. */
    std::optional<CommandError> error;
    try {
        client.call(action, new_user ? "AddUser" : "SetPassword", "ss", name.c_str(), phc.c_str());
    } catch (const CommandError &e) {
        error = e;
    }
    sodium_memzero(phc.data(), phc.size());
    if (error)
        throw *error;
    print_done(invocation, name,
               new_user ? "Enrolled user " + quoted(name) + "." : "Set a new password for user " + quoted(name) + ".");
}

void command_user_add(const Invocation &invocation) {
    set_new_password(invocation, /* new_user= */ true);
}

void command_user_passwd(const Invocation &invocation) {
    set_new_password(invocation, /* new_user= */ false);
}

void command_user_remove(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    AdminClient client;
    client.call("remove user " + quoted(name), "RemoveUser", "s", name.c_str());
    print_done(invocation, name, "Removed user " + quoted(name) + ".");
}

void command_unlock(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    AdminClient client;
    MessagePtr reply = client.call("unlock user " + quoted(name), "Unlock", "s", name.c_str());
    int enrolled = 0;
    int cleared = 0;
    check_read(sd_bus_message_read(reply.get(), "bb", &enrolled, &cleared), "Unlock");
    std::string text;
    if (enrolled)
        text = cleared ? "Unlocked user " + quoted(name) + " and cleared the failure count."
                       : "User " + quoted(name) + " had no failures or lock to clear.";
    else
        text = cleared ? "Cleared the limit on su, sudo and screen lockers run by " + quoted(name) +
                                 " (not enrolled)."
                       : quoted(name) + " is not enrolled and had no failures to clear.";
    if (invocation.json) {
        json::ObjectWriter object;
        object.add("ok", true);
        object.add("user", name);
        object.add("enrolled", enrolled != 0);
        object.add("cleared", cleared != 0);
        print_json(object.finish());
        return;
    }
    print_done(invocation, name, text);
}

void command_unlock_host(const Invocation &invocation) {
    const std::string &host = invocation.arguments.at(0);
    AdminClient client;
    MessagePtr reply = client.call("unthrottle remote host " + quoted(host), "UnlockHost", "s", host.c_str());
    int cleared = 0;
    check_read(sd_bus_message_read(reply.get(), "b", &cleared), "UnlockHost");
    if (invocation.json) {
        json::ObjectWriter object;
        object.add("ok", true);
        object.add("host", host);
        object.add("cleared", cleared != 0);
        print_json(object.finish());
        return;
    }
    print_done(invocation, host,
               cleared ? "Cleared the failure count of remote host " + quoted(host) + "."
                       : "Remote host " + quoted(host) + " had no failures to clear.");
}

void command_user_list(const Invocation &invocation) {
    AdminClient client;
    MessagePtr reply = client.call("list users", "ListUsers", nullptr);
    std::vector<std::string> names;
    check_read(sd_bus_message_enter_container(reply.get(), 'a', "s"), "ListUsers");
    for (;;) {
        const char *name = nullptr;
        int r = sd_bus_message_read_basic(reply.get(), 's', &name);
        check_read(r, "ListUsers");
        if (r == 0)
            break;
        names.emplace_back(name);
    }
    check_read(sd_bus_message_exit_container(reply.get()), "ListUsers");

    if (invocation.json) {
        json::ObjectWriter object;
        object.add("users", names);
        print_json(object.finish());
        return;
    }
    for (const std::string &name : names)
        std::printf("%s\n", printable(name).c_str());
}

void command_user_show(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    AdminClient client;
    MessagePtr reply = client.call("show user " + quoted(name), "GetUser", "s", name.c_str());
    std::vector<Property> properties = read_properties(reply.get(), "GetUser");
    if (invocation.json) {
        print_json(properties_to_json(properties));
        return;
    }
    merge_totp_algorithm(properties);
    print_properties(properties, kUserFields);
}

void command_status(const Invocation &invocation) {
    AdminClient client;
    MessagePtr reply = client.call("read the status of wardend", "GetStatus", nullptr);
    std::vector<Property> properties = read_properties(reply.get(), "GetStatus");
    if (invocation.json)
        print_json(properties_to_json(properties));
    else
        print_properties(properties, kStatusFields);
}

/* One row per command. A command is one or two words followed by a fixed
 * number of arguments. */
struct Command {
    std::array<const char *, 2> words; /* second word null for one-word commands */
    const char *arguments;             /* space-separated names, for messages and the help text */
    std::size_t argument_count;
    unsigned options; /* the Option bits that apply */
    void (*run)(const Invocation &);
    const char *summary;
};

constexpr unsigned kTotpEnrollOptions = kOptionAlgorithm | kOptionForce;

constexpr Command kCommands[] = {
    {{"user", "add"}, "NAME", 1, kOptionPasswordStdin, command_user_add, "Enroll NAME with a new password"},
    {{"user", "passwd"}, "NAME", 1, kOptionPasswordStdin, command_user_passwd, "Set a new password for NAME"},
    {{"user", "remove"}, "NAME", 1, 0, command_user_remove, "Remove NAME and everything stored for it"},
    {{"user", "list"}, "", 0, 0, command_user_list, "List enrolled users, one per line"},
    {{"user", "show"}, "NAME", 1, 0, command_user_show,
     "Show NAME's factors, times, failures and lock"},
    {{"totp", "enroll"}, "NAME", 1, kTotpEnrollOptions, command_totp_enroll,
     "Make and show a new TOTP secret for NAME"},
    {{"totp", "import"}, "NAME", 1, kTotpEnrollOptions | kOptionSecretStdin, command_totp_import,
     "Store NAME's existing base32 TOTP secret"},
    {{"totp", "confirm"}, "NAME CODE", 2, 0, command_totp_confirm,
     "Activate NAME's pending TOTP factor"},
    {{"totp", "remove"}, "NAME", 1, 0, command_totp_remove, "Remove NAME's TOTP factor"},
    {{"recovery", "generate"}, "NAME", 1, 0, command_recovery_generate,
     "Replace NAME's recovery codes with ten new ones"},
    {{"unlock", nullptr}, "NAME", 1, 0, command_unlock, "Lift NAME's lock and clear the failure count"},
    {{"unlock-host", nullptr}, "HOST", 1, 0, command_unlock_host,
     "Clear the failure count and throttle of a remote host"},
    {{"status", nullptr}, "", 0, 0, command_status, "Show the version, mode, workers, queue and counters"},
};

struct OptionName {
    Option option;
    const char *name;
    const char *synopsis;
};

constexpr OptionName kOptionNames[] = {
    {kOptionPasswordStdin, "--password-stdin", "[--password-stdin]"},
    {kOptionSecretStdin, "--secret-stdin", "[--secret-stdin]"},
    {kOptionAlgorithm, "--algorithm", "[--algorithm SHA1|SHA256|SHA512]"},
    {kOptionForce, "--force", "[--force]"},
};

std::string command_synopsis(const Command &command) {
    std::string text = command.words[0];
    if (command.words[1])
        text += std::string(" ") + command.words[1];
    if (*command.arguments)
        text += std::string(" ") + command.arguments;
    for (const OptionName &option : kOptionNames) {
        if (command.options & option.option)
            text += std::string(" ") + option.synopsis;
    }
    return text;
}

void print_help() {
    constexpr std::size_t kSynopsisWidth = 36;
    constexpr int kColumn = static_cast<int>(kSynopsisWidth);
    std::printf("Usage: wardenctl [--json] COMMAND [ARGUMENT...]\n\n"
                "Administer wardend, the Warden authentication daemon, over D-Bus.\n\n"
                "Commands:\n");
    for (const Command &command : kCommands) {
        std::string synopsis = command_synopsis(command);
        /* A synopsis too long for its column gets the summary on the next line. */
        if (synopsis.size() > kSynopsisWidth)
            std::printf("  %s\n  %-*s %s\n", synopsis.c_str(), kColumn, "", command.summary);
        else
            std::printf("  %-*s %s\n", kColumn, synopsis.c_str(), command.summary);
    }
    std::printf("\nOptions:\n"
                "  --json             Print one JSON object per command on standard output\n"
                "  --password-stdin   Read the new password as one line from standard input\n"
                "                     instead of asking twice on the terminal\n"
                "  --secret-stdin     Read the base32 TOTP secret as one line from standard input\n"
                "                     instead of asking on the terminal\n"
                "  --algorithm ALG    HMAC algorithm of a new TOTP factor: SHA1 (the default),\n"
                "                     SHA256 or SHA512\n"
                "  --force            Replace an active TOTP factor\n"
                "  -h, --help         Show this help and exit\n"
                "  --version          Show the version and exit\n\n"
                "A factor from 'totp enroll' or 'totp import' stays pending until 'totp confirm'\n"
                "accepts a code from it.\n"
                "The daemon is reached on the system bus, or at DBUS_SYSTEM_BUS_ADDRESS when set.\n"
                "Exit status: 0 on success, 1 when the operation failed, 2 on a usage error.\n");
}

/* Returns the name of the index-th argument in command.arguments. */
std::string argument_name(const Command &command, std::size_t index) {
    std::string_view names = command.arguments;
    for (std::size_t i = 0; i < index; ++i) {
        std::size_t space = names.find(' ');
        if (space == std::string_view::npos)
            return std::string(names);
        names.remove_prefix(space + 1);
    }
    return std::string(names.substr(0, names.find(' ')));
}

/* Finds the command the words name and checks its argument count. */
const Command &find_command(const std::vector<std::string> &words) {
    if (words.empty())
        fail_usage("Missing command");
    bool group_known = false;
    for (const Command &command : kCommands) {
        if (words[0] != command.words[0])
            continue;
        group_known = true;
        std::size_t command_word_count = command.words[1] ? 2 : 1;
        if (command.words[1] && (words.size() < 2 || words[1] != command.words[1]))
            continue;
        std::size_t supplied_count = words.size() - command_word_count;
        if (supplied_count < command.argument_count)
            fail_usage("Missing argument " + argument_name(command, supplied_count) + " for '" +
                       command_synopsis(command) + "'");
        if (supplied_count > command.argument_count)
            fail_usage("Unexpected argument " + quoted(printable(words[command_word_count + command.argument_count])) +
                       " for '" +
                       command_synopsis(command) + "'");
        return command;
    }
    if (group_known && words.size() < 2)
        fail_usage("Missing subcommand after " + quoted(printable(words[0])));
    if (group_known)
        fail_usage("Unknown command " + quoted(printable(words[0] + " " + words[1])));
    fail_usage("Unknown command " + quoted(printable(words[0])));
}

void set_algorithm(Invocation &invocation, std::string_view name) {
    std::optional<TotpAlgorithm> algorithm = parse_totp_algorithm(name);
    if (!algorithm)
        fail_usage("Invalid TOTP algorithm " + quoted(printable(name)) + ": expected SHA1, SHA256 or SHA512");
    invocation.algorithm = *algorithm;
    invocation.options |= kOptionAlgorithm;
}

enum class Action { kRun, kHelp, kVersion };

/* Splits argv into options, which may appear anywhere, and words. "--"
 * ends the options. */
Action parse_arguments(int argc, char **argv, Invocation &invocation, std::vector<std::string> &words) {
    constexpr std::string_view kAlgorithmPrefix = "--algorithm=";
    Action action = Action::kRun;
    bool options_ended = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view argument = argv[i];
        if (options_ended || argument.size() < 2 || argument[0] != '-') {
            words.emplace_back(argument);
        } else if (argument == "--") {
            options_ended = true;
        } else if (argument == "--json") {
            invocation.json = true;
        } else if (argument == "--password-stdin") {
            invocation.options |= kOptionPasswordStdin;
        } else if (argument == "--secret-stdin") {
            invocation.options |= kOptionSecretStdin;
        } else if (argument == "--force") {
            invocation.options |= kOptionForce;
        } else if (argument == "--algorithm") {
            if (i + 1 >= argc)
                fail_usage("Missing value for option --algorithm: expected SHA1, SHA256 or SHA512");
            set_algorithm(invocation, argv[++i]);
        } else if (argument.starts_with(kAlgorithmPrefix)) {
            set_algorithm(invocation, argument.substr(kAlgorithmPrefix.size()));
        } else if (argument == "--help" || argument == "-h") {
            action = Action::kHelp;
        } else if (argument == "--version") {
            if (action == Action::kRun)
                action = Action::kVersion;
        } else {
            fail_usage("Unknown option " + quoted(printable(argument)));
        }
    }
    return action;
}

/* Rejects an option given to a command that does not take it. */
void check_options(const Invocation &invocation, const Command &command) {
    for (const OptionName &option : kOptionNames) {
        if (invocation.has(option.option) && !(command.options & option.option))
            fail_usage(std::string("Option ") + option.name + " does not apply to '" + command_synopsis(command) +
                       "'");
    }
}

int run(int argc, char **argv, bool &ret_json) {
    Invocation invocation;
    std::vector<std::string> words;
    Action action = parse_arguments(argc, argv, invocation, words);
    ret_json = invocation.json;
    if (action == Action::kHelp) {
        print_help();
        return kExitSuccess;
    }
    if (action == Action::kVersion) {
        std::printf("wardenctl " WARDEN_VERSION "\n");
        return kExitSuccess;
    }

    const Command &command = find_command(words);
    check_options(invocation, command);
    std::size_t command_word_count = command.words[1] ? 2 : 1;
    invocation.arguments.assign(words.begin() + static_cast<std::ptrdiff_t>(command_word_count), words.end());

    if (sodium_init() < 0)
        fail("Failed to initialise libsodium");
    command.run(invocation);
    return kExitSuccess;
}

void report(const CommandError &error, bool json) {
    /* Local messages are built without the final period, bus messages
     * from wardend end with one. */
    std::string message = error.message;
    if (!message.empty() && message.back() != '.')
        message += '.';
    std::fprintf(stderr, "wardenctl: %s\n", message.c_str());
    if (error.exit_code == kExitUsage) {
        std::fprintf(stderr, "Try 'wardenctl --help' for more information.\n");
    } else if (json) {
        json::ObjectWriter object;
        object.add("ok", false);
        object.add("error", message);
        if (!error.bus_error.empty())
            object.add("bus_error", error.bus_error);
        print_json(object.finish());
    }
}

} // namespace
} // namespace warden::ctl

int main(int argc, char **argv) {
    using namespace warden::ctl;
    bool json = false;
    int status = kExitFailure;
    try {
        status = run(argc, argv, json);
    } catch (const CommandError &error) {
        report(error, json);
        status = error.exit_code;
    } catch (const std::bad_alloc &) {
        report({kExitFailure, "Failed to allocate memory", {}}, json);
    } catch (const std::exception &e) {
        report({kExitFailure, std::string("Unexpected internal error: ") + e.what(), {}}, json);
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        std::fprintf(stderr, "wardenctl: Failed to write to standard output: %s.\n", std::strerror(errno));
        return kExitFailure;
    }
    return status;
}
