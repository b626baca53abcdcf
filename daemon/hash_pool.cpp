#include "daemon/hash_pool.h"

#include <algorithm>

namespace warden {

struct HashPool::Task {
    enum class State { kQueued, kRunning, kDone, kCancelled };
    std::function<void()> job;
    State state = State::kQueued;
    std::condition_variable finished;
};

HashPool::HashPool(unsigned workers, unsigned queue_limit) : queue_limit_(queue_limit) {
    threads_.reserve(workers);
    for (unsigned i = 0; i < workers; i++)
        threads_.emplace_back([this] { worker_loop(); });
}

HashPool::~HashPool() { stop(); }

HashPool::Outcome HashPool::run(std::function<void()> job, std::chrono::steady_clock::time_point deadline) {
    auto task = std::make_shared<Task>();
    task->job = std::move(job);

    std::unique_lock lock(mutex_);
    if (stopping_)
        return Outcome::kStopping;
    /* Waiting jobs beyond the bound are refused at once: the client gets
     * "service unavailable" instead of an unbounded wait. */
    if (queue_.size() >= queue_limit_) {
        rejected_++;
        return Outcome::kQueueFull;
    }
    queue_.push_back(task);
    work_available_.notify_one();

    while (task->state == Task::State::kQueued) {
        if (task->finished.wait_until(lock, deadline) == std::cv_status::timeout &&
            task->state == Task::State::kQueued) {
            queue_.erase(std::find(queue_.begin(), queue_.end(), task));
            task->state = Task::State::kCancelled;
            rejected_++;
            return Outcome::kTimedOut;
        }
    }
    task->finished.wait(lock, [&] { return task->state != Task::State::kRunning; });
    return task->state == Task::State::kDone ? Outcome::kDone : Outcome::kStopping;
}

void HashPool::worker_loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
        work_available_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_)
            return;
        std::shared_ptr<Task> task = queue_.front();
        queue_.pop_front();
        task->state = Task::State::kRunning;
        running_++;
        lock.unlock();
        task->job();
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
        for (auto &task : queue_) {
            task->state = Task::State::kCancelled;
            task->finished.notify_all();
        }
        queue_.clear();
    }
    work_available_.notify_all();
    for (auto &thread : threads_)
        thread.join();
    threads_.clear();
}

HashPool::Stats HashPool::stats() const {
    std::lock_guard lock(mutex_);
    return {static_cast<unsigned>(threads_.size()), queue_limit_, queue_.size(), running_, completed_,
            rejected_};
}

} // namespace warden
