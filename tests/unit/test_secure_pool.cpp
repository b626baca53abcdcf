/* Unit tests of SecurePool in daemon/secure_pool.h and of SecretBuffer,
 * which allocates from it.
 *
 * Most tests use a pool of their own, so its statistics count only what
 * the test allocated. A released slot is read again by taking it back
 * from the pool, because reading it through the old pointer is a use
 * after free under AddressSanitizer. While a class has a single chunk,
 * the slot released last is the next one handed out. */
#include "daemon/secret.h"
#include "daemon/secure_pool.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifdef WARDEN_ADDRESS_SANITIZER
#include <sanitizer/asan_interface.h>
#endif

/* Last, because cmocka.h defines macros such as fail and skip. */
#include "tests/unit/unit_test.h"

namespace {

using namespace warden;

constexpr std::size_t kClassSizes[] = {64, 128, 256, 512, 1024, 2048, 4096};

bool all_bytes_are(const void *memory, std::size_t size, unsigned char value) {
    const auto *bytes = static_cast<const unsigned char *>(memory);
    return std::all_of(bytes, bytes + size, [value](unsigned char byte) { return byte == value; });
}

/* Runs action in a child process with stderr discarded, so that an
 * expected crash report does not fill the test output. Returns the
 * child's wait status, or -1 when fork or waitpid fails. */
template <typename Action> int wait_status_of_child(Action action) {
    pid_t child = fork();
    if (child == 0) {
        int null_fd = open("/dev/null", O_WRONLY);
        if (null_fd >= 0)
            dup2(null_fd, STDERR_FILENO);
        action();
        _exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child)
        return -1;
    return status;
}

bool aborted(int status) { return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT; }

void pool_slot_size_for_requests(void **) {
    const std::pair<std::size_t, std::size_t> cases[] = {
            {0, 64},     {1, 64},     {64, 64},     {65, 128},    {100, 128}, {128, 128},
            {129, 256},  {512, 512},  {513, 1024},  {2048, 2048}, {2049, 4096},
            {4095, 4096}, {4096, 4096}, {4097, 0},    {1 << 20, 0},
    };
    for (const auto &[request, expected] : cases)
        WARDEN_ASSERT_FOR(SecurePool::slot_size_for(request) == expected, "request " + std::to_string(request));
}

void pool_class_capacity_usable(void **) {
    SecurePool pool;
    for (std::size_t size : kClassSizes) {
        std::string label = "size " + std::to_string(size);
        auto *memory = static_cast<unsigned char *>(pool.allocate(size));
        WARDEN_ASSERT_FOR(memory != nullptr, label);
        WARDEN_ASSERT_FOR(reinterpret_cast<std::uintptr_t>(memory) % SecurePool::kMinSlotSize == 0, label);
        std::memset(memory, 0x5c, size);
        WARDEN_ASSERT_FOR(all_bytes_are(memory, size, 0x5c), label);

        SecurePoolStats stats = pool.stats();
        WARDEN_ASSERT_FOR(stats.slots_in_use == 1, label);
        WARDEN_ASSERT_FOR(stats.bytes_in_use == size, label);
        WARDEN_ASSERT_FOR(stats.large_allocations == 0, label);
        pool.release(memory, size);
    }
}

void pool_counts_class_size_in_use(void **) {
    SecurePool pool;
    void *small = pool.allocate(100);
    void *medium = pool.allocate(513);
    SecurePoolStats stats = pool.stats();
    assert_int_equal(stats.slots_in_use, 2);
    assert_int_equal(stats.bytes_in_use, 128 + 1024);
    assert_int_equal(stats.chunks, 2);
    pool.release(small, 100);
    pool.release(medium, 513);
    assert_int_equal(pool.stats().bytes_in_use, 0);
}

void pool_release_wipes_slot(void **) {
    SecurePool pool;
    void *first = pool.allocate(100);
    std::memset(first, 0xa5, 100);
    pool.release(first, 100);

    /* The full 128-byte slot, beyond what the first request wrote. */
    void *again = pool.allocate(128);
    assert_ptr_equal(again, first);
    assert_true(all_bytes_are(again, 128, 0));
    pool.release(again, 128);
}

void pool_release_keeps_neighbours(void **) {
    SecurePool pool;
    void *left = pool.allocate(64);
    void *right = pool.allocate(64);
    assert_int_equal(static_cast<char *>(right) - static_cast<char *>(left), 64);
    std::memset(left, 0x11, 64);
    std::memset(right, 0x22, 64);

    pool.release(left, 64);
    assert_true(all_bytes_are(right, 64, 0x22));
    pool.release(right, 64);
}

void pool_spans_many_chunks(void **) {
    SecurePool pool;
    constexpr std::size_t kSize = 4096;
    constexpr std::size_t kCount = 100;
    const std::size_t per_chunk = SecurePool::kChunkBytes / kSize;
    std::vector<unsigned char *> slots;
    for (std::size_t i = 0; i < kCount; ++i) {
        slots.push_back(static_cast<unsigned char *>(pool.allocate(kSize)));
        std::memset(slots.back(), static_cast<int>(i + 1), kSize);
    }

    SecurePoolStats stats = pool.stats();
    assert_int_equal(stats.slots_in_use, kCount);
    assert_int_equal(stats.bytes_in_use, kCount * kSize);
    assert_int_equal(stats.chunks, (kCount + per_chunk - 1) / per_chunk);
    /* No slot overlaps another, so each still contains its own pattern. */
    for (std::size_t i = 0; i < kCount; ++i)
        WARDEN_ASSERT_FOR(all_bytes_are(slots[i], kSize, static_cast<unsigned char>(i + 1)),
                          "slot " + std::to_string(i));
    std::vector<unsigned char *> sorted = slots;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i)
        WARDEN_ASSERT_FOR(sorted[i] - sorted[i - 1] >= static_cast<std::ptrdiff_t>(kSize),
                          "sorted slot " + std::to_string(i));

    for (unsigned char *slot : slots)
        pool.release(slot, kSize);
    stats = pool.stats();
    assert_int_equal(stats.slots_in_use, 0);
    assert_int_equal(stats.bytes_in_use, 0);
    assert_int_equal(stats.chunks, 1);
    assert_int_equal(stats.spare_chunks, 1);
}

void pool_frees_empty_chunks(void **) {
    SecurePool pool;
    constexpr std::size_t kSize = 4096;
    const std::size_t per_chunk = SecurePool::kChunkBytes / kSize;
    std::vector<void *> low;
    std::vector<void *> high;
    for (std::size_t i = 0; i < per_chunk; ++i)
        low.push_back(pool.allocate(kSize));
    for (std::size_t i = 0; i < per_chunk; ++i)
        high.push_back(pool.allocate(kSize));
    assert_int_equal(pool.stats().chunks, 2);
    assert_int_equal(pool.stats().spare_chunks, 0);

    /* The first chunk to empty stays as the class's spare. */
    for (void *slot : low)
        pool.release(slot, kSize);
    assert_int_equal(pool.stats().chunks, 2);
    assert_int_equal(pool.stats().spare_chunks, 1);

    /* A second empty chunk in the class is freed. */
    for (void *slot : high)
        pool.release(slot, kSize);
    assert_int_equal(pool.stats().chunks, 1);
    assert_int_equal(pool.stats().spare_chunks, 1);

    /* The spare serves the next request without a new chunk. */
    void *slot = pool.allocate(kSize);
    assert_int_equal(pool.stats().chunks, 1);
    assert_int_equal(pool.stats().spare_chunks, 0);
    pool.release(slot, kSize);
}

void pool_keeps_one_spare_per_class(void **) {
    SecurePool pool;
    std::vector<std::pair<void *, std::size_t>> live;
    for (std::size_t size : kClassSizes)
        live.emplace_back(pool.allocate(size), size);
    assert_int_equal(pool.stats().chunks, std::size(kClassSizes));
    for (const auto &[memory, size] : live)
        pool.release(memory, size);
    SecurePoolStats stats = pool.stats();
    assert_int_equal(stats.chunks, std::size(kClassSizes));
    assert_int_equal(stats.spare_chunks, std::size(kClassSizes));
    assert_int_equal(stats.slots_in_use, 0);
}

void pool_concurrent_threads(void **) {
    SecurePool pool;
    constexpr int kThreads = 4;
    constexpr int kRounds = 200000;
    constexpr std::size_t kLiveMax = 40;
    const std::size_t sizes[] = {0, 1, 33, 64, 64, 100, 200, 512, 4096, 6000};
    std::atomic<int> corrupted{0};
    std::latch start(kThreads);

    auto work = [&](int thread) {
        start.arrive_and_wait();
        std::minstd_rand random(static_cast<unsigned>(thread + 1));
        auto pattern = static_cast<unsigned char>(0x40 + thread);
        std::vector<std::pair<unsigned char *, std::size_t>> live;
        auto release_one = [&](std::size_t at) {
            auto [memory, size] = live[at];
            if (!all_bytes_are(memory, size, pattern))
                corrupted++;
            pool.release(memory, size);
            live.erase(live.begin() + static_cast<std::ptrdiff_t>(at));
        };
        for (int round = 0; round < kRounds; ++round) {
            if (live.size() == kLiveMax || (!live.empty() && random() % 3 == 0)) {
                release_one(random() % live.size());
                continue;
            }
            std::size_t size = sizes[random() % std::size(sizes)];
            auto *memory = static_cast<unsigned char *>(pool.allocate(size));
            std::memset(memory, pattern, size);
            live.emplace_back(memory, size);
        }
        while (!live.empty())
            release_one(live.size() - 1);
    };
    std::vector<std::thread> threads;
    for (int thread = 0; thread < kThreads; ++thread)
        threads.emplace_back(work, thread);
    for (std::thread &thread : threads)
        thread.join();

    assert_int_equal(corrupted.load(), 0);
    SecurePoolStats stats = pool.stats();
    assert_int_equal(stats.slots_in_use, 0);
    assert_int_equal(stats.bytes_in_use, 0);
    assert_int_equal(stats.large_allocations, 0);
    assert_int_equal(stats.chunks, stats.spare_chunks);
    assert_true(stats.chunks <= SecurePool::kClassCount);
}

void pool_oversized_falls_back(void **) {
    SecurePool pool;
    constexpr std::size_t kSize = SecurePool::kMaxSlotSize + 1;
    constexpr std::size_t kLargeSize = 1 << 20;
    auto *memory = static_cast<unsigned char *>(pool.allocate(kSize));
    auto *large = static_cast<unsigned char *>(pool.allocate(kLargeSize));
    std::memset(memory, 0x7e, kSize);
    std::memset(large, 0x7f, kLargeSize);
    assert_true(all_bytes_are(memory, kSize, 0x7e));
    assert_true(all_bytes_are(large, kLargeSize, 0x7f));

    SecurePoolStats stats = pool.stats();
    assert_int_equal(stats.large_allocations, 2);
    assert_int_equal(stats.bytes_in_use, kSize + kLargeSize);
    assert_int_equal(stats.chunks, 0);
    assert_int_equal(stats.slots_in_use, 0);

    pool.release(memory, kSize);
    pool.release(large, kLargeSize);
    stats = pool.stats();
    assert_int_equal(stats.large_allocations, 0);
    assert_int_equal(stats.bytes_in_use, 0);
}

void pool_zero_size_request(void **) {
    SecurePool pool;
    void *first = pool.allocate(0);
    void *second = pool.allocate(0);
    assert_non_null(first);
    assert_non_null(second);
    assert_ptr_not_equal(first, second);
    assert_int_equal(pool.stats().slots_in_use, 2);
    assert_int_equal(pool.stats().bytes_in_use, 2 * SecurePool::kMinSlotSize);
    pool.release(first, 0);
    pool.release(second, 0);
    assert_int_equal(pool.stats().slots_in_use, 0);
}

void pool_invalid_release_aborts(void **) {
    SecurePool pool;
    auto *memory = static_cast<char *>(pool.allocate(64));
    int twice = wait_status_of_child([&] {
        pool.release(memory, 64);
        pool.release(memory, 64);
    });
    int inside_slot = wait_status_of_child([&] { pool.release(memory + 8, 64); });
    int other_class = wait_status_of_child([&] { pool.release(memory, 128); });
    assert_true(aborted(twice));
    assert_true(aborted(inside_slot));
    assert_true(aborted(other_class));
    pool.release(memory, 64);
    assert_int_equal(pool.stats().slots_in_use, 0);
}

void secret_buffer_uses_global_pool(void **) {
    SecurePool &pool = SecurePool::instance();
    SecurePoolStats before = pool.stats();
    {
        SecretBuffer frame(4096);
        SecretBuffer password = SecretBuffer::copy_of("correct horse");
        SecretBuffer empty(0);
        SecurePoolStats during = pool.stats();
        assert_int_equal(during.slots_in_use, before.slots_in_use + 3);
        assert_int_equal(during.bytes_in_use, before.bytes_in_use + 4096 + 64 + 64);
        assert_non_null(empty.data());
        assert_int_equal(empty.capacity(), 0);
        assert_true(empty.view().empty());
        assert_true(password.view() == "correct horse");

        /* A move hands over the slot without allocating. */
        SecretBuffer moved = std::move(password);
        assert_null(password.data());
        assert_true(moved.view() == "correct horse");
        assert_int_equal(pool.stats().slots_in_use, during.slots_in_use);
    }
    SecurePoolStats after = pool.stats();
    assert_int_equal(after.slots_in_use, before.slots_in_use);
    assert_int_equal(after.bytes_in_use, before.bytes_in_use);
}

void secret_buffer_clear_wipes_capacity(void **) {
    SecretBuffer buffer(300);
    std::memset(buffer.data(), 0x33, buffer.capacity());
    buffer.resize(10);
    buffer.clear();
    assert_int_equal(buffer.size(), 0);
    assert_int_equal(buffer.capacity(), 300);
    assert_true(all_bytes_are(buffer.data(), buffer.capacity(), 0));
}

void secret_buffer_release_wipes(void **) {
    const void *old_data = nullptr;
    {
        SecretBuffer code = SecretBuffer::copy_of("123456");
        old_data = code.data();
    }
    SecretBuffer again(64);
    assert_ptr_equal(again.data(), old_data);
    assert_true(all_bytes_are(again.data(), again.capacity(), 0));
}

void pool_poisons_free_memory(void **) {
#ifdef WARDEN_ADDRESS_SANITIZER
    SecurePool pool;
    auto *memory = static_cast<char *>(pool.allocate(100));
    assert_false(__asan_address_is_poisoned(memory));
    assert_false(__asan_address_is_poisoned(memory + 99));
    /* The slot's tail and the free slot after it. */
    assert_true(__asan_address_is_poisoned(memory + 100));
    assert_true(__asan_address_is_poisoned(memory + 127));
    assert_true(__asan_address_is_poisoned(memory + 128));

    /* An overflow into the tail ends a child process with a report. */
    int status = wait_status_of_child([memory] {
        volatile char *bytes = memory;
        bytes[100] = 1;
    });
    assert_int_not_equal(status, -1);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);

    pool.release(memory, 100);
    assert_true(__asan_address_is_poisoned(memory));
#else
    skip();
#endif
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_slot_size_for_requests),
        cmocka_unit_test(pool_class_capacity_usable),
        cmocka_unit_test(pool_counts_class_size_in_use),
        cmocka_unit_test(pool_release_wipes_slot),
        cmocka_unit_test(pool_release_keeps_neighbours),
        cmocka_unit_test(pool_spans_many_chunks),
        cmocka_unit_test(pool_frees_empty_chunks),
        cmocka_unit_test(pool_keeps_one_spare_per_class),
        cmocka_unit_test(pool_concurrent_threads),
        cmocka_unit_test(pool_oversized_falls_back),
        cmocka_unit_test(pool_zero_size_request),
        cmocka_unit_test(pool_invalid_release_aborts),
        cmocka_unit_test(secret_buffer_uses_global_pool),
        cmocka_unit_test(secret_buffer_clear_wipes_capacity),
        cmocka_unit_test(secret_buffer_release_wipes),
        cmocka_unit_test(pool_poisons_free_memory),
    };
    return cmocka_run_group_tests_name("secure_pool", tests, nullptr, nullptr);
}
