#include "bench/scenarios.h"

#include "bench/credentials.h"
#include "bench/pam_login.h"

#include <security/_pam_types.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <latch>
#include <thread>

namespace warden::bench {
namespace {

/* The confdir, service and remote host shared by every scenario. */
LoginRequest base_request(const Options &options) {
    LoginRequest request;
    request.confdir = options.text("confdir");
    request.service = options.text("service");
    request.rhost = options.text("rhost", "");
    return request;
}

/* Writes the development-mode test clock that wardend reads
 * (WARDEN_TEST_CLOCK_FILE). A rename makes the update atomic. */
void write_test_clock(const std::string &path, std::int64_t unix_time) {
    std::string temporary = path + ".new";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << unix_time << "\n";
        if (!out)
            throw std::runtime_error("failed to write the test clock '" + temporary + "'");
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0)
        throw std::runtime_error("failed to rename the test clock into '" + path + "'");
}

struct ProcStatus {
    long rss_kib = 0;
    long hwm_kib = 0;
    long threads = 0;
};

/* Reads VmRSS, VmHWM and Threads of pid from /proc; zeros if it is gone. */
ProcStatus read_proc_status(long pid) {
    ProcStatus status;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        auto value_of = [&](const char *key) { return std::atol(line.c_str() + std::strlen(key)); };
        if (line.rfind("VmRSS:", 0) == 0)
            status.rss_kib = value_of("VmRSS:");
        else if (line.rfind("VmHWM:", 0) == 0)
            status.hwm_kib = value_of("VmHWM:");
        else if (line.rfind("Threads:", 0) == 0)
            status.threads = value_of("Threads:");
    }
    return status;
}

void sleep_seconds(double seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

/* One finished login as a concurrent client saw it. */
struct Attempt {
    double end_offset; /* seconds from the scenario's start to the result */
    double seconds;    /* pam_start_confdir to pam_end */
    int status;
};

} // namespace

JsonObject run_latency(const Options &options) {
    LoginRequest request = base_request(options);
    std::string user = options.text("user", "");
    std::string user_prefix = options.text("user-prefix", "");
    if (user.empty() == user_prefix.empty())
        throw UsageError("give exactly one of --user and --user-prefix");
    std::string password = read_text_file(options.text("password-file"));
    std::string baseline = options.text("baseline");
    std::unique_ptr<HashCheck> check = make_hash_check(baseline, read_text_file(options.text("hash-file")), password);
    long samples = options.number("samples");
    long warmup = options.number("warmup", 3);
    bool with_totp = options.has("totp-secret-file");
    std::string secret = with_totp ? decode_hex(read_text_file(options.text("totp-secret-file"))) : std::string();
    auto digits = static_cast<unsigned>(options.number("totp-digits", 6));
    auto period = static_cast<unsigned>(options.number("totp-period", 30));
    std::string clock_file = options.text("clock-file", "");
    std::int64_t clock_start = options.number("clock-start", 0);
    std::int64_t clock_step = options.number("clock-step", 30);
    options.reject_unused();

    std::vector<double> hash, auth, total, auth_overhead, total_overhead, first_prompt, after_answers_overhead;
    std::map<int, std::uint64_t> codes;
    std::uint64_t hash_mismatches = 0;
    for (long i = 0; i < warmup + samples; i++) {
        request.user = user.empty() ? user_prefix + std::to_string(i) : user;
        request.answers = {password};
        /* A later test clock for every login, because each TOTP code is
         * accepted once, and because SQLite writes nothing for a login
         * whose last_login second is unchanged, which no real login
         * pattern would get. Without a clock file, TOTP logins need a
         * fresh user each. */
        std::int64_t now = clock_file.empty() ? std::time(nullptr) : clock_start + clock_step * (i + 1);
        if (!clock_file.empty())
            write_test_clock(clock_file, now);
        if (with_totp)
            request.answers.push_back(totp_code(secret, now, digits, period));

        Clock::time_point hash_start = Clock::now();
        bool matched = check->verify();
        double hash_seconds = seconds_between(hash_start, Clock::now());
        LoginOutcome login = run_login(request);
        if (i < warmup)
            continue;

        codes[login.status]++;
        if (!matched)
            hash_mismatches++;
        hash.push_back(hash_seconds);
        if (login.status != PAM_SUCCESS)
            continue;
        auth.push_back(login.auth_seconds);
        total.push_back(login.total_seconds);
        auth_overhead.push_back(login.auth_seconds - hash_seconds);
        total_overhead.push_back(login.total_seconds - hash_seconds);
        first_prompt.push_back(login.first_prompt_seconds);
        after_answers_overhead.push_back(login.after_answers_seconds - hash_seconds);
    }

    JsonObject result;
    result.add("baseline", baseline)
            .add("totp", with_totp ? 1 : 0)
            .add("hash", summarize(hash))
            .add("auth", summarize(auth))
            .add("total", summarize(total))
            .add("auth_overhead", summarize(auth_overhead))
            .add("total_overhead", summarize(total_overhead))
            .add("first_prompt", summarize(first_prompt))
            .add("after_answers_overhead", summarize(after_answers_overhead))
            .add("codes", codes)
            .add("hash_mismatches", hash_mismatches);
    return result;
}

JsonObject run_verify_rate(const Options &options) {
    std::string password = read_text_file(options.text("password-file"));
    std::string stored = read_text_file(options.text("hash-file"));
    long threads = options.number("threads");
    double duration = options.decimal("duration", 10);
    options.reject_unused();

    std::vector<std::uint64_t> counts(static_cast<std::size_t>(threads), 0);
    std::vector<double> last_end(static_cast<std::size_t>(threads), 0);
    std::vector<std::vector<double>> durations(static_cast<std::size_t>(threads));
    std::atomic<std::uint64_t> mismatches{0};
    Clock::time_point start = Clock::now();
    Clock::time_point deadline = start + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(duration));
    std::vector<std::thread> workers;
    for (long t = 0; t < threads; t++) {
        workers.emplace_back([&, t] {
            std::unique_ptr<HashCheck> check = make_hash_check("argon2id", stored, password);
            auto index = static_cast<std::size_t>(t);
            while (Clock::now() < deadline) {
                Clock::time_point check_start = Clock::now();
                if (!check->verify())
                    mismatches++;
                Clock::time_point check_end = Clock::now();
                counts[index]++;
                durations[index].push_back(seconds_between(check_start, check_end));
                last_end[index] = seconds_between(start, check_end);
            }
        });
    }
    for (auto &worker : workers)
        worker.join();

    /* Each thread's rate up to its last finished check, so a check cut off
     * by the deadline does not lower the figure. */
    double rate = 0;
    std::uint64_t total = 0;
    std::vector<double> all_durations;
    for (std::size_t i = 0; i < counts.size(); i++) {
        total += counts[i];
        if (last_end[i] > 0)
            rate += static_cast<double>(counts[i]) / last_end[i];
        all_durations.insert(all_durations.end(), durations[i].begin(), durations[i].end());
    }
    JsonObject result;
    result.add("threads", threads)
            .add("checks", total)
            .add("rate", rate)
            .add("check", summarize(all_durations))
            .add("mismatches", mismatches.load());
    return result;
}

JsonObject run_throughput(const Options &options) {
    LoginRequest request = base_request(options);
    request.user = options.text("user");
    request.answers = {read_text_file(options.text("password-file"))};
    long clients = options.number("clients");
    double warmup = options.decimal("warmup", 3);
    double duration = options.decimal("duration", 20);
    options.reject_unused();

    std::atomic<bool> stop{false};
    std::vector<std::vector<Attempt>> attempts(static_cast<std::size_t>(clients));
    Clock::time_point start = Clock::now();
    std::vector<std::thread> threads;
    for (long c = 0; c < clients; c++) {
        threads.emplace_back([&, c] {
            auto &mine = attempts[static_cast<std::size_t>(c)];
            while (!stop.load()) {
                LoginOutcome login = run_login(request);
                mine.push_back({seconds_between(start, Clock::now()), login.total_seconds, login.status});
            }
        });
    }
    sleep_seconds(warmup + duration);
    stop = true;
    for (auto &thread : threads)
        thread.join();

    std::vector<double> latencies;
    std::map<int, std::uint64_t> codes;
    std::uint64_t successes = 0;
    for (const auto &mine : attempts) {
        for (const Attempt &a : mine) {
            if (a.end_offset < warmup || a.end_offset > warmup + duration)
                continue;
            codes[a.status]++;
            if (a.status == PAM_SUCCESS) {
                successes++;
                latencies.push_back(a.seconds);
            }
        }
    }
    JsonObject result;
    result.add("clients", clients)
            .add("window", duration)
            .add("successes", successes)
            .add("rate", static_cast<double>(successes) / duration)
            .add("latency", summarize(latencies))
            .add("codes", codes);
    return result;
}

JsonObject run_burst(const Options &options) {
    LoginRequest request = base_request(options);
    request.user = options.text("user");
    request.answers = {read_text_file(options.text("password-file"))};
    long clients = options.number("clients");
    long daemon_pid = options.number("daemon-pid");
    /* An "unavailable" result sooner than this was a refusal at once
     * (queue full or connection cap). A later one waited and timed out. */
    double refusal_seconds = options.decimal("refusal-seconds", 1.0);
    options.reject_unused();

    ProcStatus before = read_proc_status(daemon_pid);
    std::atomic<bool> done{false};
    ProcStatus peak;
    std::thread sampler([&] {
        while (!done.load()) {
            ProcStatus now = read_proc_status(daemon_pid);
            peak.rss_kib = std::max(peak.rss_kib, now.rss_kib);
            peak.threads = std::max(peak.threads, now.threads);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    });

    std::vector<Attempt> attempts(static_cast<std::size_t>(clients));
    std::latch gate(1);
    Clock::time_point start;
    std::vector<std::thread> threads;
    for (long c = 0; c < clients; c++) {
        threads.emplace_back([&, c] {
            gate.wait();
            LoginOutcome login = run_login(request);
            attempts[static_cast<std::size_t>(c)] = {seconds_between(start, Clock::now()), login.total_seconds,
                                                     login.status};
        });
    }
    start = Clock::now();
    gate.count_down();
    for (auto &thread : threads)
        thread.join();
    double wall = seconds_between(start, Clock::now());
    done = true;
    sampler.join();
    ProcStatus after = read_proc_status(daemon_pid);

    std::uint64_t successes = 0, refused = 0, timed_out = 0, other = 0;
    std::vector<double> success_latency;
    std::map<int, std::uint64_t> codes;
    for (const Attempt &a : attempts) {
        codes[a.status]++;
        if (a.status == PAM_SUCCESS) {
            successes++;
            success_latency.push_back(a.seconds);
        } else if (a.status == PAM_AUTHINFO_UNAVAIL) {
            (a.seconds < refusal_seconds ? refused : timed_out)++;
        } else {
            other++;
        }
    }
    JsonObject result;
    result.add("clients", clients)
            .add("wall", wall)
            .add("successes", successes)
            .add("refused", refused)
            .add("timed_out", timed_out)
            .add("other", other)
            .add("codes", codes)
            .add("success_latency", summarize(success_latency))
            .add("rss_before_kib", before.rss_kib)
            .add("threads_before", before.threads)
            .add("hwm_before_kib", before.hwm_kib)
            .add("peak_rss_kib", peak.rss_kib)
            .add("peak_threads", peak.threads)
            .add("hwm_after_kib", after.hwm_kib);
    return result;
}

JsonObject run_flood(const Options &options) {
    LoginRequest legitimate = base_request(options);
    legitimate.user = options.text("user");
    legitimate.answers = {read_text_file(options.text("password-file"))};
    LoginRequest attack = legitimate;
    attack.user = options.text("flood-user");
    attack.rhost = options.text("flood-rhost");
    long flood_clients = options.number("flood-clients");
    double retry_pause = options.decimal("retry-pause", 0.1);
    long samples = options.number("samples");
    double warmup = options.decimal("warmup", 5);
    double gap = options.decimal("gap", 0.5);
    options.reject_unused();

    std::atomic<bool> stop{false};
    std::vector<std::map<int, std::uint64_t>> flood_codes(static_cast<std::size_t>(flood_clients));
    std::vector<std::thread> threads;
    Clock::time_point start = Clock::now();
    for (long c = 0; c < flood_clients; c++) {
        threads.emplace_back([&, c] {
            LoginRequest mine = attack;
            for (std::uint64_t n = 0; !stop.load(); n++) {
                /* A new wrong password each time, so every attempt counts
                 * as a failure rather than as a client's retry. */
                mine.answers = {"wrong password " + std::to_string(c) + "-" + std::to_string(n)};
                LoginOutcome login = run_login(mine);
                flood_codes[static_cast<std::size_t>(c)][login.status]++;
                if (login.status == PAM_AUTHINFO_UNAVAIL)
                    sleep_seconds(retry_pause);
            }
        });
    }

    sleep_seconds(warmup);
    std::vector<double> latencies;
    std::vector<double> success_latencies;
    std::map<int, std::uint64_t> legitimate_codes;
    for (long i = 0; i < samples; i++) {
        LoginOutcome login = run_login(legitimate);
        legitimate_codes[login.status]++;
        latencies.push_back(login.total_seconds);
        if (login.status == PAM_SUCCESS)
            success_latencies.push_back(login.total_seconds);
        sleep_seconds(gap);
    }
    double flood_seconds = seconds_between(start, Clock::now());
    stop = true;
    for (auto &thread : threads)
        thread.join();

    std::map<int, std::uint64_t> codes;
    for (const auto &mine : flood_codes) {
        for (const auto &[code, count] : mine)
            codes[code] += count;
    }
    JsonObject result;
    result.add("flood_clients", flood_clients)
            .add("flood_seconds", flood_seconds)
            .add("flood_codes", codes)
            .add("latency", summarize(latencies))
            .add("success_latency", summarize(success_latencies))
            .add("codes", legitimate_codes);
    return result;
}

} // namespace warden::bench
