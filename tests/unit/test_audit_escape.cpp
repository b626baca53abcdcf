/* Unit tests of escape_for_log in daemon/audit.h.
 *
 * The rule: printable ASCII other than backslash passes, and so does
 * valid UTF-8 unless it encodes a C1 control (U+0080..U+009F). Every other
 * byte becomes \xNN with two lower-case hex digits. Once the output has reached
 * max_bytes, the rest of the input is replaced by "...". With
 * escape_space, a space becomes \x20 as well. */
#include "daemon/audit.h"

#include <string>
#include <string_view>

/* Last, because cmocka.h defines macros such as fail and skip. */
#include "tests/unit/unit_test.h"

namespace {

using namespace warden;

void assert_escaped(std::string_view input, std::string_view expected, std::size_t max_bytes = 256,
                    bool escape_space = false, std::source_location where = std::source_location::current()) {
    std::string actual = escape_for_log(input, max_bytes, escape_space);
    if (actual != expected)
        test::fail_at("escape_for_log: expected '" + std::string(expected) + "', got '" + actual + "'", where);
}

void escape_plain_text(void **) {
    assert_escaped("", "");
    assert_escaped("alice", "alice");
    assert_escaped("user name with spaces ~!@#$%^&*()[]{}'\"", "user name with spaces ~!@#$%^&*()[]{}'\"");
}

void escape_newline(void **) {
    /* A user name that would start a forged second log line. */
    assert_escaped("alice\nwardend: auth success user=root", "alice\\x0awardend: auth success user=root");
}

void escape_carriage_return(void **) { assert_escaped("a\rb", "a\\x0db"); }

void escape_terminal_sequence(void **) {
    assert_escaped("\x1b[2J\x1b[31mroot", "\\x1b[2J\\x1b[31mroot");
}

void escape_backslash(void **) {
    /* Escaped too, so that a literal "\x0a" in the input stays distinct
     * from an escaped newline. */
    assert_escaped("a\\b", "a\\x5cb");
    assert_escaped("\\x0a", "\\x5cx0a");
}

void escape_other_controls(void **) {
    assert_escaped(std::string_view("a\0b", 3), "a\\x00b");
    assert_escaped("\t", "\\x09");
    assert_escaped("\x01\x1f", "\\x01\\x1f");
    assert_escaped("del\x7f", "del\\x7f");
}

void escape_invalid_utf8(void **) {
    /* A lone byte that never starts a character. */
    assert_escaped("\xff", "\\xff");
    assert_escaped("a\xfe" "b", "a\\xfeb");
    /* A continuation byte with no lead byte. */
    assert_escaped("\x80", "\\x80");
    /* A two-byte lead byte at the end of the input. */
    assert_escaped("caf\xc3", "caf\\xc3");
    /* A lead byte followed by a character that is not a continuation. */
    assert_escaped("\xc3(", "\\xc3(");
}

void escape_overlong_utf8(void **) {
    /* '/' written in two bytes and in three. */
    assert_escaped("\xc0\xaf", "\\xc0\\xaf");
    assert_escaped("\xe0\x80\xaf", "\\xe0\\x80\\xaf");
    /* U+FFFF written in four bytes. */
    assert_escaped("\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf");
}

void escape_surrogate(void **) {
    /* U+D800, which UTF-8 must not encode. */
    assert_escaped("\xed\xa0\x80", "\\xed\\xa0\\x80");
    /* U+D7FF, just below the surrogates, is valid. */
    assert_escaped("\xed\x9f\xbf", "\xed\x9f\xbf");
}

void escape_above_unicode_range(void **) {
    /* U+110000. */
    assert_escaped("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
    /* U+10FFFF, the last code point, is valid. */
    assert_escaped("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");
}

void escape_c1_controls(void **) {
    /* NEL (U+0085) and CSI (U+009B), which some terminals obey. */
    assert_escaped("a\xc2\x85" "b", "a\\xc2\\x85b");
    assert_escaped("\xc2\x9b" "2J", "\\xc2\\x9b2J");
    assert_escaped("\xc2\x80", "\\xc2\\x80");
    /* U+00A0, the first character after them, passes. */
    assert_escaped("\xc2\xa0", "\xc2\xa0");
}

void escape_valid_utf8(void **) {
    /* é, 日本 and an emoji pass unchanged. */
    assert_escaped("jos\xc3\xa9", "jos\xc3\xa9");
    assert_escaped("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac");
    assert_escaped("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");
}

void escape_space_in_key_value_line(void **) {
    /* A user name "x rhost=10.0.0.1" must not add a field to the line
     * that log scanners parse. */
    assert_escaped("x rhost=10.0.0.1", "x\\x20rhost=10.0.0.1", 256, /* escape_space= */ true);
    assert_escaped("x rhost=10.0.0.1", "x rhost=10.0.0.1", 256, /* escape_space= */ false);
    assert_escaped("a\tb c\n", "a\\x09b\\x20c\\x0a", 256, /* escape_space= */ true);
}

void escape_length_bound(void **) {
    assert_escaped("abcdefgh", "abcdefgh", 8);
    assert_escaped("abcdefghi", "abcdefgh...", 8);
    assert_escaped(std::string(300, 'a'), std::string(256, 'a') + "...");
    assert_escaped(std::string(256, 'a'), std::string(256, 'a'));
}

void escape_length_bound_keeps_characters_whole(void **) {
    /* A character that starts below the bound is written whole, so the
     * output never ends in a cut UTF-8 sequence or a cut escape. */
    assert_escaped("ab\xe6\x97\xa5" "c", "ab\xe6\x97\xa5...", 3);
    assert_escaped("ab\ncd", "ab\\x0a...", 3);
}

void escape_length_bound_zero(void **) { assert_escaped("a", "...", 0); }

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escape_plain_text),
        cmocka_unit_test(escape_newline),
        cmocka_unit_test(escape_carriage_return),
        cmocka_unit_test(escape_terminal_sequence),
        cmocka_unit_test(escape_backslash),
        cmocka_unit_test(escape_other_controls),
        cmocka_unit_test(escape_invalid_utf8),
        cmocka_unit_test(escape_overlong_utf8),
        cmocka_unit_test(escape_surrogate),
        cmocka_unit_test(escape_above_unicode_range),
        cmocka_unit_test(escape_c1_controls),
        cmocka_unit_test(escape_valid_utf8),
        cmocka_unit_test(escape_space_in_key_value_line),
        cmocka_unit_test(escape_length_bound),
        cmocka_unit_test(escape_length_bound_keeps_characters_whole),
        cmocka_unit_test(escape_length_bound_zero),
    };
    return cmocka_run_group_tests_name("audit_escape", tests, nullptr, nullptr);
}
