/* A process-wide allocator for secrets. It takes 64 KiB chunks from
 * sodium_malloc, so each chunk has guard pages and is locked in RAM, and
 * carves each chunk into slots of one power-of-two size class. libsodium
 * 1.0.18 ignores a failed mlock, for example one above RLIMIT_MEMLOCK. */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define WARDEN_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WARDEN_ADDRESS_SANITIZER 1
#endif
#endif

namespace warden {

/* Counters of a SecurePool at one moment. */
struct SecurePoolStats {
    std::size_t chunks = 0;            /* pooled chunks held, spares included */
    std::size_t spare_chunks = 0;      /* held chunks with no slot in use */
    std::size_t slots_in_use = 0;
    std::size_t large_allocations = 0; /* requests above kMaxSlotSize, each with its own sodium_malloc */
    std::size_t bytes_in_use = 0;      /* slot sizes of live slots plus requested sizes of large allocations */
};

class SecurePool {
public:
    /* The sodium_malloc request for one chunk: 64 KiB less room for
     * sodium's 16-byte canary, so the chunk fills whole pages and its
     * slots start 64-byte aligned. */
    static constexpr std::size_t kChunkBytes = 64 * 1024 - 64;
    static constexpr std::size_t kMinSlotSize = 64;
    static constexpr std::size_t kMaxSlotSize = 4096;
    static constexpr std::size_t kClassCount = 7; /* 64, 128, ..., 4096 */

    /* The pool that SecretBuffer uses. It is never destroyed, so secrets
     * with static storage duration may outlive main(). */
    static SecurePool &instance();

    /* Throws std::runtime_error when libsodium fails to initialise. */
    SecurePool();
    /* Frees every chunk, even one with slots in use. Large allocations
     * still in use stay allocated. */
    ~SecurePool();
    SecurePool(const SecurePool &) = delete;
    SecurePool &operator=(const SecurePool &) = delete;

    /* Returns size bytes with no particular contents. A request of 0 bytes
     * takes a slot of the smallest class and returns a unique pointer.
     * Throws std::bad_alloc when sodium_malloc fails. */
    void *allocate(std::size_t size);

    /* Wipes and releases memory from allocate(size) with the same size.
     * Aborts the process on a slot that is not in use for that size, such
     * as one released twice, because the pool can no longer be trusted.
     * Memory above kMaxSlotSize goes to sodium_free unchecked. */
    void release(void *pointer, std::size_t size) noexcept;

    SecurePoolStats stats() const;

    /* Returns the slot size that serves a request of size bytes, or 0 when
     * size exceeds kMaxSlotSize. */
    static std::size_t slot_size_for(std::size_t size) noexcept;

private:
    struct Chunk {
        std::vector<std::uint16_t> free_slots; /* slot indexes, most recently released last */
        std::vector<bool> in_use;              /* by slot index, to reject a double release */
    };
    using ChunkMap = std::map<std::byte *, Chunk>; /* by address of the chunk's memory */

    static std::size_t class_index(std::size_t slot_size) noexcept;
    ChunkMap::iterator add_chunk(std::size_t index);

    mutable std::mutex mutex_;
    std::array<ChunkMap, kClassCount> classes_;
    std::array<std::size_t, kClassCount> spare_chunks_{};
    std::size_t slots_in_use_ = 0;
    std::size_t large_allocations_ = 0;
    std::size_t large_bytes_ = 0;
};

} // namespace warden
