/* Latency samples, their summary, and the JSON object the benchmark driver
 * prints for the runner (bench/run.py) to read. */
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace warden::bench {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point start, Clock::time_point end);

/* Order statistics of a set of durations, in seconds. Percentiles use the
 * nearest-rank method, so p99 of 100 samples is the 99th smallest. */
struct Summary {
    std::size_t count = 0;
    double min = 0;
    double median = 0;
    double p99 = 0;
    double max = 0;
    double mean = 0;
};

Summary summarize(std::vector<double> samples);

/* A flat JSON object built key by key. Values are numbers, strings or
 * nested objects, and keys are written in insertion order. */
class JsonObject {
public:
    JsonObject &add(const std::string &key, double value);
    JsonObject &add(const std::string &key, std::int64_t value);
    JsonObject &add(const std::string &key, std::uint64_t value);
    JsonObject &add(const std::string &key, int value) { return add(key, static_cast<std::int64_t>(value)); }
    JsonObject &add(const std::string &key, const std::string &value);
    JsonObject &add(const std::string &key, const char *value) { return add(key, std::string(value)); }
    JsonObject &add(const std::string &key, const JsonObject &value);
    JsonObject &add(const std::string &key, const Summary &value);
    JsonObject &add(const std::string &key, const std::map<int, std::uint64_t> &counts);

    std::string str() const { return "{" + body_ + "}"; }

private:
    void add_raw(const std::string &key, const std::string &json);
    std::string body_;
};

} // namespace warden::bench
