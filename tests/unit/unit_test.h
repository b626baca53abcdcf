/* Helpers shared by the CMocka unit tests.
 *
 * Include this header after every other one: cmocka.h defines macros such
 * as fail and skip, which break C++ library headers read after it. */
#pragma once

#include <source_location>
#include <string>
#include <string_view>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h 1.1.5 declares its functions without extern "C". */
extern "C" {
#include <cmocka.h>
}

namespace warden::test {

inline bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

inline bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

/* Fails the running test at where, after printing message. Helpers use it
 * so that a failure names the caller's line, not the helper's. */
inline void fail_at(const std::string &message, std::source_location where) {
    print_error("%s\n", message.c_str());
    _fail(where.file_name(), static_cast<int>(where.line()));
}

/* The assert_true of a table-driven test: on failure it also prints the
 * row's label, because CMocka reports only the line of the assertion. */
inline void check_true_for(bool condition, const char *condition_text, const std::string &label,
                           std::source_location where) {
    if (!condition)
        fail_at(std::string(condition_text) + " is false for " + label, where);
}

} // namespace warden::test

#define WARDEN_ASSERT_FOR(condition, label) \
    warden::test::check_true_for(static_cast<bool>(condition), #condition, (label), std::source_location::current())
