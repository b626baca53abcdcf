#include "daemon/hash_pool.h"

#include <pthread.h>

#include <algorithm>
#include <exception>

namespace warden {

struct HashPool::Task {
    enum class State { kQueued, kRunning, kDone, kCancelled, kEvicted };
    std::function<void()> job;
    std::string key;
    State state = State::kQueued;
    std::condition_variable finished;
};

HashPool::HashPool(unsigned workers, unsigned queue_limit) : queue_limit_(queue_limit) {
    threads_.reserve(workers);
    for (unsigned i = 0; i < workers; i++)
        threads_.emplace_back([this] { worker_loop(); });
}

HashPool::~HashPool() { stop(); }

HashPool::Outcome HashPool::run(std::function<void()> job, std::chrono::steady_clock::time_point deadline,
                                const std::string &fairness_key, const std::function<void()> &meanwhile) {
    auto task = std::make_shared<Task>();
    task->job = std::move(job);
    task->key = fairness_key;

    std::unique_lock lock(mutex_);
    if (stopping_)
        return Outcome::kStopping;
    /* Waiting jobs beyond the bound are refused at once: the client gets
     * "service unavailable" instead of an unbounded wait. */
    if (queued_ >= queue_limit_) {
        /* The bound is shared, so a flooding source could hold every place.
         * When the queue is full, the source with the most waiting jobs
         * gives up its newest one to a source with fewer. */
        auto largest = std::max_element(queues_.begin(), queues_.end(), [](const auto &a, const auto &b) {
            return a.second.size() < b.second.size();
        });
        auto mine = queues_.find(task->key);
        std::size_t mine_size = mine == queues_.end() ? 0 : mine->second.size();
        if (largest == queues_.end() || largest->second.size() <= mine_size + 1) {
            rejected_++;
            return Outcome::kQueueFull;
        }
        std::shared_ptr<Task> victim = largest->second.back();
        largest->second.pop_back();
        queued_--;
        if (largest->second.empty()) {
            turns_.erase(std::find(turns_.begin(), turns_.end(), largest->first));
            queues_.erase(largest);
        }
        victim->state = Task::State::kEvicted;
        victim->finished.notify_all();
        rejected_++;
    }
    std::deque<std::shared_ptr<Task>> &waiting = queues_[task->key];
    if (waiting.empty())
        turns_.push_back(task->key);
    waiting.push_back(task);
    queued_++;
    work_available_.notify_one();

    while (task->state == Task::State::kQueued) {
        if (task->finished.wait_until(lock, deadline) == std::cv_status::timeout &&
            task->state == Task::State::kQueued) {
            remove_queued(task);
            task->state = Task::State::kCancelled;
            rejected_++;
            return Outcome::kTimedOut;
        }
    }
    if (task->state == Task::State::kEvicted)
        return Outcome::kQueueFull;
    /* The job refers to the caller's stack, so an exception from meanwhile
     * is held until the job has finished with it. */
    std::exception_ptr failure;
    if (meanwhile && task->state != Task::State::kCancelled) {
        lock.unlock();
        try {
            meanwhile();
        } catch (...) {
            failure = std::current_exception();
        }
        lock.lock();
    }
    task->finished.wait(lock, [&] { return task->state != Task::State::kRunning; });
    if (failure)
        std::rethrow_exception(failure);
    return task->state == Task::State::kDone ? Outcome::kDone : Outcome::kStopping;
}

void HashPool::worker_loop() {
    /* Named so that top -H and ps -L tell the hash workers apart. They
     * keep the daemon's priority: a lower one would let any busy local
     * process slow every login down. */
    (void)::pthread_setname_np(::pthread_self(), "wardend-hash");
    std::unique_lock lock(mutex_);
    for (;;) {
        work_available_.wait(lock, [&] { return stopping_ || queued_ > 0; });
        if (queued_ == 0 && stopping_)
            return;
        std::shared_ptr<Task> task = take_next();
        task->state = Task::State::kRunning;
        running_++;
        task->finished.notify_all();
        lock.unlock();
        try {
            task->job();
        } catch (...) {
            /* A job reports its own result; one that throws (out of memory)
             * leaves that result unset, which its caller treats as a
             * failure. The worker lives on. */
        }
        lock.lock();
        running_--;
        completed_++;
        task->state = Task::State::kDone;
        task->finished.notify_all();
    }
}

void HashPool::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && threads_.empty())
            return;
        stopping_ = true;
        for (auto &[key, waiting] : queues_) {
            for (auto &task : waiting) {
                task->state = Task::State::kCancelled;
                task->finished.notify_all();
            }
        }
        queues_.clear();
        turns_.clear();
        queued_ = 0;
    }
    work_available_.notify_all();
    for (auto &thread : threads_)
        thread.join();
    threads_.clear();
}

HashPool::Stats HashPool::stats() const {
    std::lock_guard lock(mutex_);
    return {static_cast<unsigned>(threads_.size()), queue_limit_, queued_, running_, completed_, rejected_};
}

std::shared_ptr<HashPool::Task> HashPool::take_next() {
    /* The key whose turn it is gives up its oldest job and goes to the back
     * of the line if it has more. */
    std::string key = turns_.front();
    turns_.pop_front();
    std::deque<std::shared_ptr<Task>> &waiting = queues_[key];
    std::shared_ptr<Task> task = waiting.front();
    waiting.pop_front();
    queued_--;
    if (waiting.empty())
        queues_.erase(key);
    else
        turns_.push_back(key);
    return task;
}

void HashPool::remove_queued(const std::shared_ptr<Task> &task) {
    auto it = queues_.find(task->key);
    if (it == queues_.end())
        return;
    std::deque<std::shared_ptr<Task>> &waiting = it->second;
    auto pos = std::find(waiting.begin(), waiting.end(), task);
    if (pos == waiting.end())
        return;
    waiting.erase(pos);
    queued_--;
    if (waiting.empty()) {
        queues_.erase(it);
        turns_.erase(std::find(turns_.begin(), turns_.end(), task->key));
    }
}

} // namespace warden
