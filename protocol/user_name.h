/* The user-name rule shared by the daemon and the admin CLI. */
#pragma once

#include <string_view>

namespace warden {

/* Describes the accepted form, for error messages. */
inline constexpr const char *kUserNameRule =
        "1 to 32 bytes of [a-z_][a-z0-9_-]* with an optional trailing '$'";

/* Returns true when name has the form useradd accepts by default. */
constexpr bool is_valid_user_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 32)
        return false;
    std::string_view body = name;
    if (body.back() == '$')
        body.remove_suffix(1);
    if (body.empty())
        return false;
    auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!lower(body[0]) && body[0] != '_')
        return false;
    for (char c : body.substr(1)) {
        if (!lower(c) && !digit(c) && c != '_' && c != '-')
            return false;
    }
    return true;
}

} // namespace warden
