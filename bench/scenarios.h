/* The measurements of the benchmark driver. Each reads its options, runs
 * against services the runner has started, and returns one JSON object of
 * results. Durations are in seconds and memory in KiB. */
#pragma once

#include "bench/options.h"
#include "bench/stats.h"

namespace warden::bench {

/* Sequential logins, each paired with an in-process check of the same
 * stored hash, so both see the same machine load. */
JsonObject run_latency(const Options &options);

/* In-process hash checks on several threads: the machine's real parallel
 * hash rate, including memory-bandwidth contention. */
JsonObject run_verify_rate(const Options &options);

/* Logins from many concurrent clients, each starting its next login as
 * soon as one ends. Counts the successes per second in a fixed window. */
JsonObject run_throughput(const Options &options);

/* Many clients that each start one login at the same moment, with the
 * daemon's memory and thread count sampled from /proc meanwhile. */
JsonObject run_burst(const Options &options);

/* A legitimate login measured while other clients keep sending wrong
 * passwords from another remote host. */
JsonObject run_flood(const Options &options);

} // namespace warden::bench
