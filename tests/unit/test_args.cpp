/* Unit tests of the module argument parser in pam_module/args.h. */
#include "pam_module/args.h"

#include <cstring>
#include <string>
#include <vector>

/* Last, because cmocka.h defines macros such as fail and skip. */
#include "tests/unit/unit_test.h"

namespace {

using namespace warden;
using namespace warden::module;

/* Collects the arguments passed to the unknown-argument callback. */
struct UnknownArguments {
    std::vector<std::string> seen;

    static void record(void *context, const char *argument) {
        static_cast<UnknownArguments *>(context)->seen.emplace_back(argument);
    }
};

struct Parsed {
    Args args;
    ArgsError error;
    UnknownArguments unknown;
};

Parsed parse(std::vector<const char *> argv) {
    Parsed parsed;
    parsed.error = parse_args(static_cast<int>(argv.size()), argv.data(), parsed.args, UnknownArguments::record,
                              &parsed.unknown);
    return parsed;
}

/* Asserts that argv fails at argument index with a reason. */
void assert_invalid_at(std::vector<const char *> argv, int index, const std::string &label,
                       std::source_location where = std::source_location::current()) {
    Parsed parsed = parse(argv);
    if (parsed.error.index != index)
        test::fail_at(label + ": expected an error at argument " + std::to_string(index) + ", got " +
                              std::to_string(parsed.error.index),
                      where);
    if (parsed.error.reason == nullptr || std::strlen(parsed.error.reason) == 0)
        test::fail_at(label + ": the error has no reason", where);
}

void assert_valid(const Parsed &parsed, std::source_location where = std::source_location::current()) {
    if (parsed.error.index != -1)
        test::fail_at("expected success, got an error at argument " + std::to_string(parsed.error.index) + ": " +
                              (parsed.error.reason ? parsed.error.reason : "(no reason)"),
                      where);
}

void args_defaults(void **) {
    Parsed parsed = parse({});
    assert_valid(parsed);
    assert_null(parsed.error.reason);
    assert_string_equal(parsed.args.socket, "/run/warden/wardend.sock");
    assert_int_equal(parsed.args.timeout_seconds, 15);
    assert_false(parsed.args.use_first_pass);
    assert_false(parsed.args.try_first_pass);
    assert_false(parsed.args.combined);
    assert_true(parsed.args.factor_password);
    assert_true(parsed.args.factor_totp);
    assert_false(parsed.args.debug);
    assert_false(parsed.args.pass_unknown);
    assert_int_equal(parsed.unknown.seen.size(), 0);
}

void args_every_option(void **) {
    Parsed parsed = parse({"socket=/tmp/w/wardend.sock", "timeout=30", "try_first_pass", "prompt=combined",
                           "factors=password,totp", "debug", "pass_unknown"});
    assert_valid(parsed);
    assert_string_equal(parsed.args.socket, "/tmp/w/wardend.sock");
    assert_int_equal(parsed.args.timeout_seconds, 30);
    assert_false(parsed.args.use_first_pass);
    assert_true(parsed.args.try_first_pass);
    assert_true(parsed.args.combined);
    assert_true(parsed.args.factor_password);
    assert_true(parsed.args.factor_totp);
    assert_true(parsed.args.debug);
    assert_true(parsed.args.pass_unknown);
}

void args_timeout_invalid(void **) {
    const char *values[] = {
        "timeout=", "timeout=-1", "timeout=99999999999999999999", "timeout=10s", "timeout=0",
        "timeout=3601", "timeout= 5", "timeout=+5", "timeout=0x10", "timeout=1.5",
    };
    for (const char *value : values)
        assert_invalid_at({"debug", value}, 1, value);
}

void args_timeout_range_ends(void **) {
    Parsed low = parse({"timeout=1"});
    assert_valid(low);
    assert_int_equal(low.args.timeout_seconds, 1);

    Parsed high = parse({"timeout=3600"});
    assert_valid(high);
    assert_int_equal(high.args.timeout_seconds, 3600);

    Parsed padded = parse({"timeout=007"});
    assert_valid(padded);
    assert_int_equal(padded.args.timeout_seconds, 7);
}

void args_unknown_reported_and_ignored(void **) {
    Parsed parsed = parse({"foo=bar", "timeout=5", "nullok"});
    assert_valid(parsed);
    assert_int_equal(parsed.args.timeout_seconds, 5);
    assert_int_equal(parsed.unknown.seen.size(), 2);
    assert_string_equal(parsed.unknown.seen[0].c_str(), "foo=bar");
    assert_string_equal(parsed.unknown.seen[1].c_str(), "nullok");
}

void args_unknown_without_callback(void **) {
    const char *argv[] = {"foo=bar"};
    Args args;
    ArgsError error = parse_args(1, argv, args, nullptr, nullptr);
    assert_int_equal(error.index, -1);
}

void args_prefix_is_not_a_key(void **) {
    /* "timeouts=5" is an unknown argument, not a timeout. */
    Parsed parsed = parse({"timeouts=5", "debugging"});
    assert_valid(parsed);
    assert_int_equal(parsed.args.timeout_seconds, 15);
    assert_false(parsed.args.debug);
    assert_int_equal(parsed.unknown.seen.size(), 2);
}

void args_key_twice(void **) {
    assert_invalid_at({"timeout=5", "timeout=5"}, 1, "timeout twice");
    assert_invalid_at({"timeout=5", "debug", "timeout=6"}, 2, "timeout twice, apart");
    assert_invalid_at({"socket=/a", "socket=/b"}, 1, "socket twice");
    assert_invalid_at({"prompt=separate", "prompt=combined"}, 1, "prompt twice");
    assert_invalid_at({"factors=totp", "factors=totp"}, 1, "factors twice");
    assert_invalid_at({"use_first_pass", "use_first_pass"}, 1, "use_first_pass twice");
    assert_invalid_at({"try_first_pass", "try_first_pass"}, 1, "try_first_pass twice");
    assert_invalid_at({"pass_unknown", "pass_unknown"}, 1, "pass_unknown twice");
}

void args_oversized_argument(void **) {
    std::string huge = "socket=/" + std::string(10 * 1024, 's');
    assert_invalid_at({"debug", huge.c_str()}, 1, "a 10 kB socket path");

    std::string unknown = std::string(10 * 1024, 'u');
    assert_invalid_at({unknown.c_str()}, 0, "a 10 kB unknown argument");
}

void args_socket_path(void **) {
    assert_invalid_at({"socket=relative"}, 0, "a relative path");
    assert_invalid_at({"socket="}, 0, "an empty path");

    std::string longest = "socket=/" + std::string(106, 's');
    Parsed parsed = parse({longest.c_str()});
    assert_valid(parsed);
    assert_int_equal(std::strlen(parsed.args.socket), 107);

    std::string too_long = "socket=/" + std::string(107, 's');
    assert_invalid_at({too_long.c_str()}, 0, "a path of 108 bytes");
}

void args_prompt(void **) {
    Parsed combined = parse({"prompt=combined"});
    assert_valid(combined);
    assert_true(combined.args.combined);

    Parsed separate = parse({"prompt=separate"});
    assert_valid(separate);
    assert_false(separate.args.combined);

    assert_invalid_at({"prompt=both"}, 0, "prompt=both");
    assert_invalid_at({"prompt="}, 0, "prompt=");
}

void args_factors(void **) {
    Parsed totp = parse({"factors=totp"});
    assert_valid(totp);
    assert_false(totp.args.factor_password);
    assert_true(totp.args.factor_totp);

    Parsed password = parse({"factors=password"});
    assert_valid(password);
    assert_true(password.args.factor_password);
    assert_false(password.args.factor_totp);

    Parsed both = parse({"factors=password,totp"});
    assert_valid(both);
    assert_true(both.args.factor_password);
    assert_true(both.args.factor_totp);

    Parsed reversed = parse({"factors=totp,password"});
    assert_valid(reversed);
    assert_true(reversed.args.factor_password);
    assert_true(reversed.args.factor_totp);
}

void args_factors_invalid(void **) {
    const char *values[] = {
        "factors=", "factors=totp,", "factors=,totp", "factors=totp,,password", "factors=sms",
        "factors=TOTP", "factors=password,", "factors=pass",
    };
    for (const char *value : values)
        assert_invalid_at({value}, 0, value);
}

void args_first_pass_options_exclusive(void **) {
    Parsed parsed = parse({"use_first_pass", "try_first_pass"});
    assert_int_equal(parsed.error.index, 1);
    assert_non_null(parsed.error.reason);

    Parsed use_first = parse({"use_first_pass"});
    assert_valid(use_first);
    assert_true(use_first.args.use_first_pass);
}

void args_output_untouched_on_error(void **) {
    /* The caller's Args keep their values when parsing fails, so a broken
     * stack line never leaves half of its options applied. */
    const char *argv[] = {"timeout=30", "prompt=combined", "timeout=x"};
    Args args;
    ArgsError error = parse_args(3, argv, args, nullptr, nullptr);
    assert_int_equal(error.index, 2);
    assert_int_equal(args.timeout_seconds, 15);
    assert_false(args.combined);
}

void args_null_entry_skipped(void **) {
    Parsed parsed = parse({nullptr, "timeout=9"});
    assert_valid(parsed);
    assert_int_equal(parsed.args.timeout_seconds, 9);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(args_defaults),
        cmocka_unit_test(args_every_option),
        cmocka_unit_test(args_timeout_invalid),
        cmocka_unit_test(args_timeout_range_ends),
        cmocka_unit_test(args_unknown_reported_and_ignored),
        cmocka_unit_test(args_unknown_without_callback),
        cmocka_unit_test(args_prefix_is_not_a_key),
        cmocka_unit_test(args_key_twice),
        cmocka_unit_test(args_oversized_argument),
        cmocka_unit_test(args_socket_path),
        cmocka_unit_test(args_prompt),
        cmocka_unit_test(args_factors),
        cmocka_unit_test(args_factors_invalid),
        cmocka_unit_test(args_first_pass_options_exclusive),
        cmocka_unit_test(args_output_untouched_on_error),
        cmocka_unit_test(args_null_entry_skipped),
    };
    return cmocka_run_group_tests_name("args", tests, nullptr, nullptr);
}
