#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace warden::bench {
namespace {

std::string quote(const std::string &text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
            out += escaped;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

/* Nearest-rank percentile of sorted samples, q in (0, 1]. */
double percentile(const std::vector<double> &sorted, double q) {
    if (sorted.empty())
        return 0;
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

} // namespace

double seconds_between(Clock::time_point start, Clock::time_point end) {
    return std::chrono::duration<double>(end - start).count();
}

Summary summarize(std::vector<double> samples) {
    Summary s;
    if (samples.empty())
        return s;
    std::sort(samples.begin(), samples.end());
    s.count = samples.size();
    s.min = samples.front();
    s.max = samples.back();
    s.median = percentile(samples, 0.5);
    s.p99 = percentile(samples, 0.99);
    s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
    return s;
}

void JsonObject::add_raw(const std::string &key, const std::string &json) {
    if (!body_.empty())
        body_ += ", ";
    body_ += quote(key) + ": " + json;
}

JsonObject &JsonObject::add(const std::string &key, double value) {
    char text[64];
    std::snprintf(text, sizeof text, "%.9g", std::isfinite(value) ? value : 0.0);
    add_raw(key, text);
    return *this;
}

JsonObject &JsonObject::add(const std::string &key, std::int64_t value) {
    add_raw(key, std::to_string(value));
    return *this;
}

JsonObject &JsonObject::add(const std::string &key, std::uint64_t value) {
    add_raw(key, std::to_string(value));
    return *this;
}

JsonObject &JsonObject::add(const std::string &key, const std::string &value) {
    add_raw(key, quote(value));
    return *this;
}

JsonObject &JsonObject::add(const std::string &key, const JsonObject &value) {
    add_raw(key, value.str());
    return *this;
}

JsonObject &JsonObject::add(const std::string &key, const Summary &value) {
    JsonObject o;
    o.add("count", static_cast<std::uint64_t>(value.count))
            .add("min", value.min)
            .add("median", value.median)
            .add("p99", value.p99)
            .add("max", value.max)
            .add("mean", value.mean);
    return add(key, o);
}

JsonObject &JsonObject::add(const std::string &key, const std::map<int, std::uint64_t> &counts) {
    JsonObject o;
    for (const auto &[code, count] : counts)
        o.add(std::to_string(code), count);
    return add(key, o);
}

} // namespace warden::bench
