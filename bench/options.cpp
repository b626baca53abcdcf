#include "bench/options.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace warden::bench {

Options::Options(int argc, char **argv, int first) {
    for (int i = first; i < argc; i += 2) {
        std::string key = argv[i];
        if (key.size() < 3 || key.compare(0, 2, "--") != 0)
            throw UsageError("expected an option starting with '--', got '" + key + "'");
        if (i + 1 >= argc)
            throw UsageError("option '" + key + "' is missing its value");
        if (!values_.emplace(key.substr(2), argv[i + 1]).second)
            throw UsageError("option '" + key + "' is given twice");
    }
}

bool Options::has(const std::string &key) const {
    used_.insert(key);
    return values_.count(key) != 0;
}

std::string Options::text(const std::string &key) const {
    used_.insert(key);
    auto it = values_.find(key);
    if (it == values_.end())
        throw UsageError("missing required option '--" + key + "'");
    return it->second;
}

std::string Options::text(const std::string &key, const std::string &fallback) const {
    return has(key) ? text(key) : fallback;
}

long Options::parse_number(const std::string &key, const std::string &value) const {
    errno = 0;
    char *end = nullptr;
    long n = std::strtol(value.c_str(), &end, 10);
    if (errno != 0 || end == value.c_str() || *end != '\0' || n < 0)
        throw UsageError("option '--" + key + "' expects a non-negative integer, got '" + value + "'");
    return n;
}

long Options::number(const std::string &key) const { return parse_number(key, text(key)); }

long Options::number(const std::string &key, long fallback) const {
    return has(key) ? number(key) : fallback;
}

double Options::decimal(const std::string &key, double fallback) const {
    if (!has(key))
        return fallback;
    std::string value = text(key);
    errno = 0;
    char *end = nullptr;
    double d = std::strtod(value.c_str(), &end);
    if (errno != 0 || end == value.c_str() || *end != '\0' || d < 0)
        throw UsageError("option '--" + key + "' expects a non-negative number, got '" + value + "'");
    return d;
}

void Options::reject_unused() const {
    for (const auto &[key, value] : values_) {
        if (!used_.count(key))
            throw UsageError("unknown option '--" + key + "' for this scenario");
    }
}

std::string read_text_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("failed to open '" + path + "': " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    std::string value = text.str();
    if (!value.empty() && value.back() == '\n')
        value.pop_back();
    return value;
}

} // namespace warden::bench
