/* Unit tests of HashPool in daemon/hash_pool.h: jobs run, the queue bound
 * holds, deadlines and stop() fail waiting jobs without running them.
 *
 * A Gate job keeps the only worker busy, so the state of the queue is
 * known when each request is made.
 *
 * CMocka leaves a failed test by longjmp, which skips destructors. A
 * worker thread still blocked in a Gate, or a pool never stopped, would
 * then wait on stack memory that the next test reuses. So each test that
 * uses threads first records what it observes, then opens its gate,
 * collects every result and stops the pool, and only then asserts. */
#include "daemon/hash_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

/* Last, because cmocka.h defines macros such as fail and skip. */
#include "tests/unit/unit_test.h"

namespace {

using namespace warden;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Outcome = HashPool::Outcome;

/* Deadline of jobs that are not meant to time out. */
constexpr auto kFarDeadline = 10s;
/* Maximum wait for something that should happen at once. It is well below
 * kFarDeadline, so that reaching a deadline does not pass for a prompt
 * reaction. */
constexpr auto kPrompt = 5s;
/* Maximum wait for a run() to return. Once its job has finished, run()
 * returns by its deadline at the latest. */
constexpr auto kPatience = kFarDeadline + 5s;

/* A job that signals when it starts and then blocks until opened. */
class Gate {
public:
    std::function<void()> job() {
        return [this] {
            std::unique_lock lock(mutex_);
            started_ = true;
            changed_.notify_all();
            changed_.wait(lock, [this] { return open_; });
        };
    }

    bool wait_started() {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, kPrompt, [this] { return started_; });
    }

    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        changed_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool started_ = false;
    bool open_ = false;
};

Clock::time_point far_deadline() { return Clock::now() + kFarDeadline; }

/* Polls until the pool reports queued waiting jobs. */
bool wait_for_queued(const HashPool &pool, std::size_t queued) {
    auto give_up = Clock::now() + kPrompt;
    while (pool.stats().queued != queued) {
        if (Clock::now() > give_up)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/* Runs a job from another thread, since run() blocks its caller. */
std::future<Outcome> run_async(HashPool &pool, std::function<void()> job, Clock::time_point deadline) {
    return std::async(std::launch::async, [&pool, job = std::move(job), deadline] { return pool.run(job, deadline); });
}

/* Returns the outcome of an asynchronous run. A run that never returns
 * means a broken pool, and its thread still uses this test's stack, so
 * the whole program stops rather than run the next test. */
Outcome collect(std::future<Outcome> &future) {
    if (future.wait_for(kPatience) != std::future_status::ready) {
        std::fprintf(stderr, "HashPool::run did not return within %lld s; stopping the tests\n",
                     static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(kPatience).count()));
        std::_Exit(EXIT_FAILURE);
    }
    return future.get();
}

/* Runs a job and waits for its outcome, stopping the program when run()
 * does not return. */
Outcome run_and_wait(HashPool &pool, std::function<void()> job, Clock::time_point deadline) {
    std::future<Outcome> future = run_async(pool, std::move(job), deadline);
    return collect(future);
}

void assert_outcome(Outcome actual, Outcome expected, std::source_location where = std::source_location::current()) {
    if (actual != expected)
        test::fail_at("expected outcome " + std::to_string(static_cast<int>(expected)) + ", got " +
                              std::to_string(static_cast<int>(actual)),
                      where);
}

/* Runs a keyed job from another thread. */
std::future<Outcome> run_keyed(HashPool &pool, std::function<void()> job, const std::string &key) {
    return std::async(std::launch::async,
                      [&pool, job = std::move(job), key] { return pool.run(job, far_deadline(), key); });
}

void pool_meanwhile_overlaps_running_job(void **) {
    /* meanwhile runs on the caller's thread while the job runs: the job
     * waits for meanwhile to start, and meanwhile for the job to start, so
     * neither could finish if they ran one after the other. */
    HashPool pool(1, 4);
    std::mutex mutex;
    std::condition_variable changed;
    bool job_started = false;
    bool meanwhile_started = false;
    std::thread::id caller;
    std::thread::id meanwhile_thread;
    bool job_saw_meanwhile = false;
    auto job = [&] {
        std::unique_lock lock(mutex);
        job_started = true;
        changed.notify_all();
        job_saw_meanwhile = changed.wait_for(lock, kPrompt, [&] { return meanwhile_started; });
    };
    bool saw_job = false;
    auto meanwhile = [&] {
        std::unique_lock lock(mutex);
        meanwhile_started = true;
        meanwhile_thread = std::this_thread::get_id();
        changed.notify_all();
        saw_job = changed.wait_for(lock, kPrompt, [&] { return job_started; });
    };
    std::future<Outcome> future = std::async(std::launch::async, [&] {
        caller = std::this_thread::get_id();
        return pool.run(job, far_deadline(), "rhost:a", meanwhile);
    });
    Outcome outcome = collect(future);
    pool.stop();

    assert_outcome(outcome, Outcome::kDone);
    assert_true(saw_job);
    assert_true(job_saw_meanwhile);
    assert_true(meanwhile_thread == caller);
}

void pool_meanwhile_skipped_when_job_never_runs(void **) {
    /* A job refused by the full queue, or still waiting at its deadline,
     * never starts, so its meanwhile must not run either: a TOTP code
     * would otherwise be consumed by a login that was never judged. */
    HashPool pool(1, 1);
    Gate gate;
    std::future<Outcome> blocker = run_keyed(pool, gate.job(), "blocker");
    bool started = gate.wait_started();
    std::atomic<int> meanwhile_runs{0};
    auto count = [&] { meanwhile_runs++; };
    std::future<Outcome> waiting = std::async(std::launch::async, [&] {
        return pool.run([] {}, Clock::now() + 200ms, "rhost:a", count);
    });
    bool queued = wait_for_queued(pool, 1);
    Outcome refused = pool.run([] {}, far_deadline(), "rhost:a", count);
    Outcome timed_out = collect(waiting);
    gate.open();
    Outcome first = collect(blocker);
    pool.stop();

    assert_true(started);
    assert_true(queued);
    assert_outcome(first, Outcome::kDone);
    assert_outcome(refused, Outcome::kQueueFull);
    assert_outcome(timed_out, Outcome::kTimedOut);
    assert_int_equal(meanwhile_runs.load(), 0);
}

void pool_meanwhile_exception_waits_for_job(void **) {
    /* The job uses the caller's stack, so an exception from meanwhile
     * reaches the caller only once the job has finished. */
    HashPool pool(1, 4);
    std::atomic<bool> job_finished{false};
    bool finished_before_throw = false;
    bool threw = false;
    auto job = [&] {
        std::this_thread::sleep_for(100ms);
        job_finished = true;
    };
    auto meanwhile = [] { throw std::runtime_error("meanwhile failed"); };
    std::future<void> future = std::async(std::launch::async, [&] {
        try {
            (void)pool.run(job, far_deadline(), "rhost:a", meanwhile);
        } catch (const std::runtime_error &) {
            threw = true;
            finished_before_throw = job_finished;
        }
    });
    bool returned = future.wait_for(kPatience) == std::future_status::ready;
    if (!returned)
        std::_Exit(EXIT_FAILURE);
    pool.stop();

    assert_true(threw);
    assert_true(finished_before_throw);
}

void pool_serves_keys_in_turn(void **) {
    /* Five jobs from a flooding source queue before one from another
     * source. The other source's job runs second, not sixth. */
    HashPool pool(1, 16);
    Gate gate;
    std::future<Outcome> blocker = run_keyed(pool, gate.job(), "blocker");
    bool started = gate.wait_started();
    std::mutex order_mutex;
    std::vector<std::string> order;
    auto record = [&](std::string name) {
        return [&, name] {
            std::lock_guard lock(order_mutex);
            order.push_back(name);
        };
    };
    std::vector<std::future<Outcome>> futures;
    bool queued = true;
    for (int i = 0; i < 5; i++) {
        futures.push_back(run_keyed(pool, record("flood" + std::to_string(i)), "rhost:flood"));
        queued = wait_for_queued(pool, static_cast<std::size_t>(i + 1)) && queued;
    }
    futures.push_back(run_keyed(pool, record("other"), "rhost:other"));
    queued = wait_for_queued(pool, 6) && queued;
    gate.open();
    Outcome first = collect(blocker);
    for (auto &future : futures)
        collect(future);
    pool.stop();

    assert_true(started);
    assert_true(queued);
    assert_outcome(first, Outcome::kDone);
    assert_int_equal(order.size(), 6);
    assert_string_equal(order[0].c_str(), "flood0");
    assert_string_equal(order[1].c_str(), "other");
    assert_string_equal(order[5].c_str(), "flood4");
}

void pool_timeout_in_keyed_queue(void **) {
    /* A timed-out job leaves its source's line. A source whose only job
     * timed out loses its turn, and the jobs left behind still run. */
    HashPool pool(1, 8);
    Gate gate;
    std::future<Outcome> blocker = run_keyed(pool, gate.job(), "blocker");
    bool started = gate.wait_started();

    std::atomic<int> timed_out_ran{0};
    std::mutex order_mutex;
    std::vector<std::string> order;
    auto record = [&](std::string name) {
        return [&, name] {
            std::lock_guard lock(order_mutex);
            order.push_back(name);
        };
    };
    auto soon = Clock::now() + 300ms;
    auto run_soon = [&](const std::string &key) {
        return std::async(std::launch::async, [&pool, &timed_out_ran, soon, key] {
            return pool.run([&timed_out_ran] { timed_out_ran++; }, soon, key);
        });
    };
    std::future<Outcome> a_first = run_soon("rhost:a");
    bool queued = wait_for_queued(pool, 1);
    std::future<Outcome> a_second = run_keyed(pool, record("a"), "rhost:a");
    queued = wait_for_queued(pool, 2) && queued;
    std::future<Outcome> b_only = run_soon("rhost:b");
    queued = wait_for_queued(pool, 3) && queued;
    std::future<Outcome> c_only = run_keyed(pool, record("c"), "rhost:c");
    queued = wait_for_queued(pool, 4) && queued;

    Outcome a_first_outcome = collect(a_first);
    Outcome b_only_outcome = collect(b_only);
    std::size_t queued_after_timeouts = pool.stats().queued;

    gate.open();
    Outcome blocker_outcome = collect(blocker);
    Outcome a_second_outcome = collect(a_second);
    Outcome c_only_outcome = collect(c_only);
    pool.stop();

    assert_true(started);
    assert_true(queued);
    assert_outcome(a_first_outcome, Outcome::kTimedOut);
    assert_outcome(b_only_outcome, Outcome::kTimedOut);
    assert_int_equal(queued_after_timeouts, 2);
    assert_outcome(blocker_outcome, Outcome::kDone);
    assert_outcome(a_second_outcome, Outcome::kDone);
    assert_outcome(c_only_outcome, Outcome::kDone);
    assert_int_equal(timed_out_ran.load(), 0);
    assert_int_equal(order.size(), 2);
    assert_string_equal(order[0].c_str(), "a");
    assert_string_equal(order[1].c_str(), "c");
}

void pool_full_queue_makes_room_for_other_key(void **) {
    /* A flood holding every place gives its newest one to a new source. */
    HashPool pool(1, 3);
    Gate gate;
    std::future<Outcome> blocker = run_keyed(pool, gate.job(), "blocker");
    bool started = gate.wait_started();
    std::vector<std::future<Outcome>> flood;
    for (int i = 0; i < 3; i++) {
        flood.push_back(run_keyed(pool, [] {}, "rhost:flood"));
        wait_for_queued(pool, static_cast<std::size_t>(i + 1));
    }
    std::atomic<bool> other_ran{false};
    std::future<Outcome> other = run_keyed(pool, [&] { other_ran = true; }, "rhost:other");
    Outcome last_flood = collect(flood[2]);
    gate.open();
    Outcome first = collect(blocker);
    Outcome other_outcome = collect(other);
    Outcome flood0 = collect(flood[0]);
    Outcome flood1 = collect(flood[1]);
    pool.stop();

    assert_true(started);
    assert_outcome(first, Outcome::kDone);
    assert_outcome(last_flood, Outcome::kQueueFull);
    assert_outcome(other_outcome, Outcome::kDone);
    assert_true(other_ran.load());
    assert_outcome(flood0, Outcome::kDone);
    assert_outcome(flood1, Outcome::kDone);
}

void pool_runs_jobs(void **) {
    HashPool pool(2, 4);
    std::atomic<int> count{0};
    std::vector<Outcome> outcomes;
    for (int i = 0; i < 10; i++)
        outcomes.push_back(run_and_wait(pool, [&] { count++; }, far_deadline()));
    HashPool::Stats stats = pool.stats();
    pool.stop();

    for (Outcome outcome : outcomes)
        assert_outcome(outcome, Outcome::kDone);
    assert_int_equal(count.load(), 10);
    assert_int_equal(stats.workers, 2);
    assert_int_equal(stats.queue_limit, 4);
    assert_int_equal(stats.completed, 10);
    assert_int_equal(stats.rejected, 0);
    assert_int_equal(stats.queued, 0);
    assert_int_equal(stats.running, 0);
}

void pool_runs_concurrent_callers(void **) {
    HashPool pool(2, 64);
    std::atomic<int> count{0};
    std::vector<std::future<Outcome>> futures;
    for (int i = 0; i < 16; i++)
        futures.push_back(run_async(pool, [&] { count++; }, far_deadline()));
    std::vector<Outcome> outcomes;
    for (auto &future : futures)
        outcomes.push_back(collect(future));
    pool.stop();

    for (Outcome outcome : outcomes)
        assert_outcome(outcome, Outcome::kDone);
    assert_int_equal(count.load(), 16);
}

void pool_job_runs_on_worker_thread(void **) {
    HashPool pool(1, 1);
    std::thread::id worker;
    Outcome outcome = run_and_wait(pool, [&] { worker = std::this_thread::get_id(); }, far_deadline());
    pool.stop();

    assert_outcome(outcome, Outcome::kDone);
    assert_true(worker != std::thread::id());
    assert_true(worker != std::this_thread::get_id());
}

void pool_queue_full(void **) {
    HashPool pool(1, 1);
    Gate gate;
    std::future<Outcome> running = run_async(pool, gate.job(), far_deadline());
    bool started = gate.wait_started();

    std::atomic<bool> queued_ran{false};
    std::future<Outcome> queued = run_async(pool, [&] { queued_ran = true; }, far_deadline());
    bool one_queued = wait_for_queued(pool, 1);

    std::atomic<bool> rejected_ran{false};
    Outcome rejected = run_and_wait(pool, [&] { rejected_ran = true; }, far_deadline());
    bool rejected_ran_before_open = rejected_ran.load();
    std::uint64_t rejected_count = pool.stats().rejected;

    gate.open();
    Outcome running_outcome = collect(running);
    Outcome queued_outcome = collect(queued);
    pool.stop();

    assert_true(started);
    assert_true(one_queued);
    assert_outcome(rejected, Outcome::kQueueFull);
    assert_false(rejected_ran_before_open);
    assert_int_equal(rejected_count, 1);
    assert_outcome(running_outcome, Outcome::kDone);
    assert_outcome(queued_outcome, Outcome::kDone);
    assert_true(queued_ran.load());
    assert_false(rejected_ran.load());
}

void pool_deadline_while_queued(void **) {
    HashPool pool(1, 1);
    Gate gate;
    std::future<Outcome> running = run_async(pool, gate.job(), far_deadline());
    bool started = gate.wait_started();

    std::atomic<bool> late_ran{false};
    auto start = Clock::now();
    Outcome late = run_and_wait(pool, [&] { late_ran = true; }, start + 50ms);
    auto waited = Clock::now() - start;
    HashPool::Stats after_deadline = pool.stats();

    gate.open();
    Outcome running_outcome = collect(running);
    /* Jobs with the same fairness key run in order, so once a later job
     * has run, the timed-out one would have run too had it stayed queued. */
    Outcome later = run_and_wait(pool, [] {}, far_deadline());
    HashPool::Stats at_end = pool.stats();
    pool.stop();

    assert_true(started);
    assert_outcome(late, Outcome::kTimedOut);
    assert_true(waited >= 50ms);
    assert_int_equal(after_deadline.queued, 0);
    assert_int_equal(after_deadline.rejected, 1);
    assert_outcome(running_outcome, Outcome::kDone);
    assert_outcome(later, Outcome::kDone);
    assert_false(late_ran.load());
    assert_int_equal(at_end.completed, 2);
}

void pool_deadline_does_not_stop_running_job(void **) {
    HashPool pool(1, 1);
    std::atomic<bool> finished{false};
    /* The idle worker takes the job well before the deadline; the job then
     * outlasts the deadline. */
    auto sleeper = [&] {
        std::this_thread::sleep_for(400ms);
        finished = true;
    };
    Outcome outcome = run_and_wait(pool, sleeper, Clock::now() + 200ms);
    pool.stop();

    assert_outcome(outcome, Outcome::kDone);
    assert_true(finished.load());
}

void pool_stop_fails_queued_jobs(void **) {
    HashPool pool(1, 2);
    Gate gate;
    std::future<Outcome> running = run_async(pool, gate.job(), far_deadline());
    bool started = gate.wait_started();

    std::atomic<int> queued_ran{0};
    std::future<Outcome> first = run_async(pool, [&] { queued_ran++; }, far_deadline());
    std::future<Outcome> second = run_async(pool, [&] { queued_ran++; }, far_deadline());
    bool two_queued = wait_for_queued(pool, 2);

    /* stop() joins the worker, which is blocked on the gate, so it needs
     * its own thread. */
    std::thread stopper([&] { pool.stop(); });

    /* The queued jobs fail while the running one is still running. */
    bool first_failed_early = first.wait_for(kPrompt) == std::future_status::ready;
    bool second_failed_early = second.wait_for(kPrompt) == std::future_status::ready;

    gate.open();
    stopper.join();
    Outcome running_outcome = collect(running);
    Outcome first_outcome = collect(first);
    Outcome second_outcome = collect(second);

    assert_true(started);
    assert_true(two_queued);
    assert_true(first_failed_early);
    assert_true(second_failed_early);
    assert_outcome(first_outcome, Outcome::kStopping);
    assert_outcome(second_outcome, Outcome::kStopping);
    assert_outcome(running_outcome, Outcome::kDone);
    assert_int_equal(queued_ran.load(), 0);
}

void pool_run_after_stop(void **) {
    HashPool pool(1, 1);
    pool.stop();
    bool ran = false;
    Outcome outcome = run_and_wait(pool, [&] { ran = true; }, Clock::now() + 100ms);
    /* A second stop() is harmless. */
    pool.stop();

    assert_outcome(outcome, Outcome::kStopping);
    assert_false(ran);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_runs_jobs),
        cmocka_unit_test(pool_runs_concurrent_callers),
        cmocka_unit_test(pool_job_runs_on_worker_thread),
        cmocka_unit_test(pool_queue_full),
        cmocka_unit_test(pool_deadline_while_queued),
        cmocka_unit_test(pool_deadline_does_not_stop_running_job),
        cmocka_unit_test(pool_stop_fails_queued_jobs),
        cmocka_unit_test(pool_run_after_stop),
        cmocka_unit_test(pool_serves_keys_in_turn),
        cmocka_unit_test(pool_full_queue_makes_room_for_other_key),
        cmocka_unit_test(pool_timeout_in_keyed_queue),
        cmocka_unit_test(pool_meanwhile_overlaps_running_job),
        cmocka_unit_test(pool_meanwhile_skipped_when_job_never_runs),
        cmocka_unit_test(pool_meanwhile_exception_waits_for_job),
    };
    return cmocka_run_group_tests_name("hash_pool", tests, nullptr, nullptr);
}
