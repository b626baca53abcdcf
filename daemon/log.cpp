#include "daemon/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>

#include <cstdio>
#include <cstdlib>

namespace warden::log {
namespace {

spdlog::level::level_enum parse_level(const std::string &level) {
    if (level == "trace")
        return spdlog::level::trace;
    if (level == "debug")
        return spdlog::level::debug;
    if (level == "warning")
        return spdlog::level::warn;
    if (level == "error")
        return spdlog::level::err;
    return spdlog::level::info;
}

} // namespace

void setup(const std::string &level) {
    std::shared_ptr<spdlog::logger> logger;
    if (std::getenv("JOURNAL_STREAM")) {
        auto sink = std::make_shared<spdlog::sinks::systemd_sink_mt>("wardend");
        logger = std::make_shared<spdlog::logger>("wardend", sink);
        logger->set_pattern("%v");
    } else {
        auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        logger = std::make_shared<spdlog::logger>("wardend", sink);
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e wardend[%P] %l: %v");
    }
    /* A failing sink must never stop the daemon: report it on stderr, which
     * systemd captures, and carry on. */
    logger->set_error_handler([](const std::string &message) {
        std::fprintf(stderr, "wardend: log sink failed: %s\n", message.c_str());
    });
    logger->set_level(parse_level(level));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
}

void set_level(const std::string &level) { spdlog::set_level(parse_level(level)); }

} // namespace warden::log
