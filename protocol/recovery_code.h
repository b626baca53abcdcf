/* Recovery codes: ten single-use codes per user, each 10 characters of
 * Crockford's base32 alphabet (50 bits), shown as two groups of five,
 * "7k2mq-x9d4t". Typing is forgiving: case, dashes and spaces are ignored,
 * and the look-alikes i/l become 1 and o becomes 0. */
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace warden {

inline constexpr std::string_view kRecoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";
inline constexpr std::size_t kRecoveryCodeChars = 10;
inline constexpr std::size_t kRecoveryCodeCount = 10;
/* The displayed form: five characters, a dash, five characters. */
inline constexpr std::size_t kRecoveryCodeDisplayChars = kRecoveryCodeChars + 1;

/* Normalises a typed code into ret_code (10 lower-case characters).
 * Returns false when it is not a recovery code. */
inline bool normalize_recovery_code(std::string_view typed, std::string &ret_code) {
    std::string out;
    for (char c : typed) {
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
        if (c == 'i' || c == 'l')
            c = '1';
        else if (c == 'o')
            c = '0';
        if (kRecoveryAlphabet.find(c) == std::string_view::npos)
            return false;
        out.push_back(c);
        if (out.size() > kRecoveryCodeChars)
            return false;
    }
    if (out.size() != kRecoveryCodeChars)
        return false;
    ret_code = std::move(out);
    return true;
}

/* Formats a normalised code for display. */
inline std::string format_recovery_code(std::string_view code) {
    return std::string(code.substr(0, 5)) + "-" + std::string(code.substr(5));
}

} // namespace warden
