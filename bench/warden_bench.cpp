/* Benchmark driver: runs one measurement through the real libpam and the
 * PAM stack in --confdir, and prints its results as one JSON object.
 * bench/run.py starts wardend and the reference stack, calls this once per
 * scenario and writes the report.
 *
 *   warden_bench latency      --confdir DIR --service NAME (--user U | --user-prefix P)
 *                             --password-file F --baseline argon2id|yescrypt --hash-file F
 *                             --samples N [--warmup N] [--rhost H] [--clock-file F --clock-start T
 *                             [--clock-step 30]] [--totp-secret-file HEXFILE [--totp-digits 6]
 *                             [--totp-period 30]]
 *   warden_bench verify-rate  --hash-file F --password-file F --threads N [--duration S]
 *   warden_bench throughput   --confdir DIR --service NAME --user U --password-file F
 *                             --clients N [--warmup S] [--duration S] [--rhost H]
 *   warden_bench burst        --confdir DIR --service NAME --user U --password-file F
 *                             --clients N --daemon-pid PID [--refusal-seconds S] [--rhost H]
 *   warden_bench flood        --confdir DIR --service NAME --user U --password-file F --rhost H
 *                             --flood-user U --flood-rhost H --flood-clients N --samples N
 *                             [--warmup S] [--gap S] [--retry-pause S]
 *
 * Exit status: 0 when the measurement ran (failed logins are counted in
 * the output, not fatal), 1 on an error, 2 on a usage error. */
#include "bench/options.h"
#include "bench/scenarios.h"

#include <cstdio>
#include <cstring>
#include <exception>

namespace {

using warden::bench::JsonObject;
using warden::bench::Options;

struct Scenario {
    const char *name;
    JsonObject (*run)(const Options &);
};

constexpr Scenario kScenarios[] = {
        {"latency", warden::bench::run_latency},       {"verify-rate", warden::bench::run_verify_rate},
        {"throughput", warden::bench::run_throughput}, {"burst", warden::bench::run_burst},
        {"flood", warden::bench::run_flood},
};

void print_usage() {
    std::fprintf(stderr, "usage: warden_bench SCENARIO --option value ...\n"
                         "scenarios: latency, verify-rate, throughput, burst, flood "
                         "(options are listed at the top of bench/warden_bench.cpp)\n");
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage();
        return 2;
    }
    for (const Scenario &scenario : kScenarios) {
        if (std::strcmp(argv[1], scenario.name) != 0)
            continue;
        try {
            Options options(argc, argv, 2);
            JsonObject result = scenario.run(options);
            result.add("scenario", scenario.name);
            std::printf("%s\n", result.str().c_str());
            return 0;
        } catch (const warden::bench::UsageError &e) {
            std::fprintf(stderr, "warden_bench %s: %s\n", scenario.name, e.what());
            print_usage();
            return 2;
        } catch (const std::exception &e) {
            std::fprintf(stderr, "warden_bench %s: %s\n", scenario.name, e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "warden_bench: unknown scenario '%s'\n", argv[1]);
    print_usage();
    return 2;
}
