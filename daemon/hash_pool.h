/* A fixed set of threads that run Argon2 jobs. Argon2 is memory-hard, so
 * at most `workers` hashes run at once; other requests wait in a bounded
 * queue and give up at their deadline. Memory therefore stays near
 * workers x argon2_memory however many clients connect.
 *
 * Waiting jobs are grouped by a fairness key (the remote host, or the
 * caller's uid), and workers take one job from each group in turn. A
 * source that floods the queue therefore delays only itself, because
 * another source's job waits for at most one job per busy group. */
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace warden {

class HashPool {
public:
    enum class Outcome {
        kDone,      /* the job ran to completion */
        kQueueFull, /* rejected at once: the queue was at its bound */
        kTimedOut,  /* still waiting at the deadline: removed, never run */
        kStopping,  /* the pool is shutting down: never run */
    };

    struct Stats {
        unsigned workers;
        unsigned queue_limit;
        std::size_t queued;
        std::size_t running;
        std::uint64_t completed;
        std::uint64_t rejected;
    };

    HashPool(unsigned workers, unsigned queue_limit);
    ~HashPool();
    HashPool(const HashPool &) = delete;
    HashPool &operator=(const HashPool &) = delete;

    /* Runs job on a worker and waits for it. A job that has started always
     * finishes; the deadline only applies while it waits. When set,
     * meanwhile runs on the calling thread once a worker has taken the job,
     * so work that must wait for the job to start overlaps it instead of
     * adding to it. It does not run when the job never starts. */
    Outcome run(std::function<void()> job, std::chrono::steady_clock::time_point deadline,
                const std::string &fairness_key = {}, const std::function<void()> &meanwhile = {});

    /* Stops accepting jobs, fails queued ones with kStopping and joins the
     * workers after the running jobs end. */
    void stop();

    Stats stats() const;

private:
    struct Task;
    void worker_loop();
    std::shared_ptr<Task> take_next();
    void remove_queued(const std::shared_ptr<Task> &task);

    mutable std::mutex mutex_;
    std::condition_variable work_available_;
    /* Waiting jobs per fairness key, and the keys in the order they are served. */
    std::map<std::string, std::deque<std::shared_ptr<Task>>> queues_;
    std::deque<std::string> turns_;
    std::size_t queued_ = 0;
    std::vector<std::thread> threads_;
    unsigned queue_limit_;
    std::size_t running_ = 0;
    std::uint64_t completed_ = 0;
    std::uint64_t rejected_ = 0;
    bool stopping_ = false;
};

} // namespace warden
