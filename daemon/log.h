/* Operational log of wardend: start, stop, configuration and every error
 * caught, with the ids involved. Never a password, code, secret, hash or
 * password length. Audit events go through audit.h instead. */
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace warden::log {

/* Sends the log to journald when started by systemd (JOURNAL_STREAM is
 * set) and to standard error otherwise. level is one of trace, debug,
 * info, warning, error. */
void setup(const std::string &level);
void set_level(const std::string &level);

template <typename... Args> void trace(spdlog::format_string_t<Args...> fmt, Args &&...args) {
    spdlog::trace(fmt, std::forward<Args>(args)...);
}
template <typename... Args> void debug(spdlog::format_string_t<Args...> fmt, Args &&...args) {
    spdlog::debug(fmt, std::forward<Args>(args)...);
}
template <typename... Args> void info(spdlog::format_string_t<Args...> fmt, Args &&...args) {
    spdlog::info(fmt, std::forward<Args>(args)...);
}
template <typename... Args> void warning(spdlog::format_string_t<Args...> fmt, Args &&...args) {
    spdlog::warn(fmt, std::forward<Args>(args)...);
}
template <typename... Args> void error(spdlog::format_string_t<Args...> fmt, Args &&...args) {
    spdlog::error(fmt, std::forward<Args>(args)...);
}

} // namespace warden::log
