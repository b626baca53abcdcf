#include "ctl/command.h"

#include "ctl/json.h"
#include "protocol/user_name.h"

#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace warden::ctl {

void fail(std::string message, std::string bus_error) {
    throw CommandError{kExitFailure, std::move(message), std::move(bus_error)};
}

void fail_usage(std::string message) {
    throw CommandError{kExitUsage, std::move(message), {}};
}

std::string quoted(std::string_view value) {
    return "'" + std::string(value) + "'";
}

std::string join_sentences(std::string_view first, std::string_view second) {
    std::string text(first);
    if (!text.empty() && text.back() != '.')
        text += '.';
    return text + " " + std::string(second);
}

std::string printable(std::string_view value) {
    std::string out(value);
    for (char &c : out) {
        unsigned char byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7F)
            c = '?';
    }
    return out;
}

const std::string &user_argument(const Invocation &invocation) {
    const std::string &name = invocation.arguments.at(0);
    if (!is_valid_user_name(name))
        fail_usage("Invalid user name " + quoted(printable(name)) + ": expected " + kUserNameRule);
    return name;
}

void print_json(const std::string &object) {
    std::printf("%s\n", object.c_str());
}

void print_done(const Invocation &invocation, const std::string &user, const std::string &text) {
    if (invocation.json) {
        json::ObjectWriter object;
        object.add("ok", true);
        object.add("user", user);
        print_json(object.finish());
    } else {
        std::printf("%s\n", text.c_str());
    }
}

void SecretString::wipe() noexcept {
    /* Growing to the capacity never reallocates, and makes the bytes past
     * the old size part of what is zeroed. */
    value_.resize(value_.capacity());
    sodium_memzero(value_.data(), value_.size());
    value_.clear();
}

void print_secret(std::string_view text) {
    if (std::fflush(stdout) != 0)
        fail(std::string("Failed to write to standard output: ") + std::strerror(errno));
    while (!text.empty()) {
        ssize_t written = ::write(STDOUT_FILENO, text.data(), text.size());
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            fail(std::string("Failed to write to standard output: ") + std::strerror(errno));
        text.remove_prefix(static_cast<std::size_t>(written));
    }
}

} // namespace warden::ctl
