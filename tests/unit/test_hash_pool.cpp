/* Unit tests of HashPool in daemon/hash_pool.h: jobs run, the queue bound
 * holds, deadlines and stop() fail waiting jobs without running them.
 *
 * A Gate job keeps the only worker busy, so the state of the queue is
 * known when each request is made. Waits are bounded so that a broken
 * pool fails the test instead of hanging it. */
#include "daemon/hash_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

/* Last, because cmocka.h defines macros such as fail and skip. */
#include "tests/unit/unit_test.h"

namespace {

using namespace warden;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Outcome = HashPool::Outcome;

/* Longest wait for something that should happen at once. */
constexpr auto kPatience = 10s;

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
        return changed_.wait_for(lock, kPatience, [this] { return started_; });
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

Clock::time_point far_deadline() { return Clock::now() + kPatience; }

/* Polls until the pool reports queued waiting jobs. */
bool wait_for_queued(const HashPool &pool, std::size_t queued) {
    auto give_up = Clock::now() + kPatience;
    while (pool.stats().queued != queued) {
        if (Clock::now() > give_up)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/* Runs a job on another thread, since run() blocks its caller. */
std::future<Outcome> run_async(HashPool &pool, std::function<void()> job, Clock::time_point deadline) {
    return std::async(std::launch::async, [&pool, job = std::move(job), deadline] { return pool.run(job, deadline); });
}

bool ready(std::future<Outcome> &future) { return future.wait_for(kPatience) == std::future_status::ready; }

void pool_runs_jobs(void **) {
    HashPool pool(2, 4);
    std::atomic<int> count{0};
    for (int i = 0; i < 10; i++)
        assert_int_equal(static_cast<int>(pool.run([&] { count++; }, far_deadline())), static_cast<int>(Outcome::kDone));
    assert_int_equal(count.load(), 10);

    HashPool::Stats stats = pool.stats();
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
    std::vector<std::future<Outcome>> results;
    for (int i = 0; i < 16; i++)
        results.push_back(run_async(pool, [&] { count++; }, far_deadline()));
    for (auto &result : results) {
        assert_true(ready(result));
        assert_int_equal(static_cast<int>(result.get()), static_cast<int>(Outcome::kDone));
    }
    assert_int_equal(count.load(), 16);
}

void pool_job_runs_on_worker_thread(void **) {
    HashPool pool(1, 1);
    std::thread::id worker;
    assert_int_equal(static_cast<int>(pool.run([&] { worker = std::this_thread::get_id(); }, far_deadline())),
                     static_cast<int>(Outcome::kDone));
    assert_true(worker != std::thread::id());
    assert_true(worker != std::this_thread::get_id());
}

void pool_queue_full(void **) {
    HashPool pool(1, 1);
    Gate gate;
    std::future<Outcome> running = run_async(pool, gate.job(), far_deadline());
    assert_true(gate.wait_started());

    std::atomic<bool> queued_ran{false};
    std::future<Outcome> queued = run_async(pool, [&] { queued_ran = true; }, far_deadline());
    assert_true(wait_for_queued(pool, 1));

    bool rejected_ran = false;
    Outcome rejected = pool.run([&] { rejected_ran = true; }, far_deadline());
    assert_int_equal(static_cast<int>(rejected), static_cast<int>(Outcome::kQueueFull));
    assert_false(rejected_ran);
    assert_int_equal(pool.stats().rejected, 1);

    gate.open();
    assert_true(ready(running));
    assert_int_equal(static_cast<int>(running.get()), static_cast<int>(Outcome::kDone));
    assert_true(ready(queued));
    assert_int_equal(static_cast<int>(queued.get()), static_cast<int>(Outcome::kDone));
    assert_true(queued_ran.load());
    assert_false(rejected_ran);
}

void pool_deadline_while_queued(void **) {
    HashPool pool(1, 1);
    Gate gate;
    std::future<Outcome> running = run_async(pool, gate.job(), far_deadline());
    assert_true(gate.wait_started());

    std::atomic<bool> late_ran{false};
    auto start = Clock::now();
    Outcome late = pool.run([&] { late_ran = true; }, start + 50ms);
    assert_int_equal(static_cast<int>(late), static_cast<int>(Outcome::kTimedOut));
    assert_true(Clock::now() - start >= 50ms);
    assert_int_equal(pool.stats().queued, 0);
    assert_int_equal(pool.stats().rejected, 1);

    gate.open();
    assert_true(ready(running));
    assert_int_equal(static_cast<int>(running.get()), static_cast<int>(Outcome::kDone));

    /* Jobs run in order, so once a later job has run the timed-out one
     * would have run too, had it stayed in the queue. */
    assert_int_equal(static_cast<int>(pool.run([] {}, far_deadline())), static_cast<int>(Outcome::kDone));
    assert_false(late_ran.load());
    assert_int_equal(pool.stats().completed, 2);
}

void pool_deadline_does_not_stop_running_job(void **) {
    HashPool pool(1, 1);
    std::atomic<bool> finished{false};
    /* The idle worker takes the job well before the deadline; the job then
     * outlasts the deadline. */
    Outcome outcome = pool.run(
            [&] {
                std::this_thread::sleep_for(400ms);
                finished = true;
            },
            Clock::now() + 200ms);
    assert_int_equal(static_cast<int>(outcome), static_cast<int>(Outcome::kDone));
    assert_true(finished.load());
}

void pool_stop_fails_queued_jobs(void **) {
    HashPool pool(1, 2);
    Gate gate;
    std::future<Outcome> running = run_async(pool, gate.job(), far_deadline());
    assert_true(gate.wait_started());

    std::atomic<int> queued_ran{0};
    std::future<Outcome> first = run_async(pool, [&] { queued_ran++; }, far_deadline());
    std::future<Outcome> second = run_async(pool, [&] { queued_ran++; }, far_deadline());
    assert_true(wait_for_queued(pool, 2));

    /* stop() joins the worker, which waits for the gate: call it aside. */
    std::thread stopper([&] { pool.stop(); });

    /* Queued jobs fail while the running one is still running. */
    assert_true(ready(first));
    assert_int_equal(static_cast<int>(first.get()), static_cast<int>(Outcome::kStopping));
    assert_true(ready(second));
    assert_int_equal(static_cast<int>(second.get()), static_cast<int>(Outcome::kStopping));

    gate.open();
    stopper.join();
    assert_true(ready(running));
    assert_int_equal(static_cast<int>(running.get()), static_cast<int>(Outcome::kDone));
    assert_int_equal(queued_ran.load(), 0);
}

void pool_run_after_stop(void **) {
    HashPool pool(1, 1);
    pool.stop();
    bool ran = false;
    assert_int_equal(static_cast<int>(pool.run([&] { ran = true; }, far_deadline())),
                     static_cast<int>(Outcome::kStopping));
    assert_false(ran);
    /* A second stop() is harmless. */
    pool.stop();
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
    };
    return cmocka_run_group_tests_name("hash_pool", tests, nullptr, nullptr);
}
