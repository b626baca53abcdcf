/* A minimal JSON writer for wardenctl --json: one flat object per command,
 * whose values are strings, integers, booleans or arrays of strings. */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace warden::json {

/* Appends value to out as a quoted JSON string. Quotes, backslashes and
 * control characters are escaped (controls as \u00XX). The input may be
 * arbitrary bytes: each ill-formed UTF-8 sequence becomes U+FFFD, so the
 * output is always valid UTF-8 and valid JSON. */
void append_string(std::string &out, std::string_view value);

/* Returns value as a quoted JSON string, escaped as append_string does. */
std::string quote(std::string_view value);

/* Builds one JSON object with keys in insertion order. Keys are not
 * checked for duplicates, so each caller adds every key once. */
class ObjectWriter {
public:
    void add(std::string_view key, std::string_view value);
    void add(std::string_view key, const char *value) { add(key, std::string_view(value)); }
    void add(std::string_view key, std::int64_t value);
    void add(std::string_view key, std::uint64_t value);
    void add(std::string_view key, bool value);
    void add(std::string_view key, const std::vector<std::string> &values);

    /* Returns the object text, without a trailing newline. */
    std::string finish() const { return body_ + "}"; }

private:
    void append_key(std::string_view key);

    std::string body_ = "{";
};

} // namespace warden::json
