#include "daemon/secure_pool.h"

#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>

#ifdef WARDEN_ADDRESS_SANITIZER
#include <sanitizer/asan_interface.h>
#endif

namespace warden {

namespace {

/* Under AddressSanitizer, free slots and the tail of each slot beyond the
 * requested size are poisoned, so an overflow into a neighbouring slot of
 * the same chunk is reported. sodium's guard pages catch only overflows
 * out of the whole chunk. */
void poison(void *memory, std::size_t size) noexcept {
#ifdef WARDEN_ADDRESS_SANITIZER
    ASAN_POISON_MEMORY_REGION(memory, size);
#else
    (void)memory;
    (void)size;
#endif
}

void unpoison(void *memory, std::size_t size) noexcept {
#ifdef WARDEN_ADDRESS_SANITIZER
    ASAN_UNPOISON_MEMORY_REGION(memory, size);
#else
    (void)memory;
    (void)size;
#endif
}

[[noreturn]] void abort_on_invalid_release(std::size_t size) noexcept {
    std::fprintf(stderr, "SecurePool::release: invalid pointer or double release for size %zu, aborting\n", size);
    std::abort();
}

std::size_t slots_per_chunk(std::size_t slot_size) noexcept { return SecurePool::kChunkBytes / slot_size; }

} // namespace

static_assert(SecurePool::kMaxSlotSize == SecurePool::kMinSlotSize << (SecurePool::kClassCount - 1));
static_assert(SecurePool::kChunkBytes % SecurePool::kMinSlotSize == 0);
static_assert(SecurePool::kChunkBytes / SecurePool::kMinSlotSize <= UINT16_MAX);

SecurePool &SecurePool::instance() {
    static SecurePool *const pool = new SecurePool();
    return *pool;
}

SecurePool::SecurePool() {
    /* sodium_malloc needs the page size that sodium_init records. */
    if (sodium_init() < 0)
        throw std::runtime_error("sodium_init failed");
}

SecurePool::~SecurePool() {
    for (ChunkMap &chunks : classes_) {
        for (auto &[memory, chunk] : chunks) {
            unpoison(memory, kChunkBytes);
            sodium_free(memory);
        }
    }
}

std::size_t SecurePool::slot_size_for(std::size_t size) noexcept {
    if (size > kMaxSlotSize)
        return 0;
    return std::bit_ceil(std::max(size, kMinSlotSize));
}

std::size_t SecurePool::class_index(std::size_t slot_size) noexcept {
    return static_cast<std::size_t>(std::countr_zero(slot_size) - std::countr_zero(kMinSlotSize));
}

void *SecurePool::allocate(std::size_t size) {
    std::size_t slot_size = slot_size_for(size);
    if (slot_size == 0) {
        void *memory = sodium_malloc(size);
        if (!memory)
            throw std::bad_alloc();
        std::lock_guard lock(mutex_);
        ++large_allocations_;
        large_bytes_ += size;
        return memory;
    }

    std::size_t index = class_index(slot_size);
    std::lock_guard lock(mutex_);
    ChunkMap &chunks = classes_[index];
    /* The lowest chunk with a free slot, so that allocations gather at low
     * addresses and chunks at high addresses can empty and be freed. */
    auto chunk = std::find_if(chunks.begin(), chunks.end(),
                              [](const auto &entry) { return !entry.second.free_slots.empty(); });
    if (chunk == chunks.end())
        chunk = add_chunk(index);
    else if (chunk->second.free_slots.size() == slots_per_chunk(slot_size))
        --spare_chunks_[index];

    std::uint16_t slot = chunk->second.free_slots.back();
    chunk->second.free_slots.pop_back();
    chunk->second.in_use[slot] = true;
    ++slots_in_use_;
    std::byte *memory = chunk->first + slot * slot_size;
    unpoison(memory, size);
    return memory;
}

SecurePool::ChunkMap::iterator SecurePool::add_chunk(std::size_t index) {
    std::size_t slot_size = kMinSlotSize << index;
    std::size_t slots = slots_per_chunk(slot_size);
    std::unique_ptr<void, void (*)(void *)> memory(sodium_malloc(kChunkBytes), sodium_free);
    if (!memory)
        throw std::bad_alloc();

    Chunk chunk;
    chunk.in_use.assign(slots, false);
    /* Reserved here so that release() never allocates. Slot 0 is at the
     * back, so it is handed out first. */
    chunk.free_slots.reserve(slots);
    for (std::size_t slot = slots; slot > 0; --slot)
        chunk.free_slots.push_back(static_cast<std::uint16_t>(slot - 1));

    auto *bytes = static_cast<std::byte *>(memory.get());
    auto inserted = classes_[index].emplace(bytes, std::move(chunk)).first;
    memory.release();
    /* sodium_malloc fills new memory with a marker byte. Free slots are
     * kept all zero instead. */
    sodium_memzero(bytes, kChunkBytes);
    poison(bytes, kChunkBytes);
    return inserted;
}

void SecurePool::release(void *pointer, std::size_t size) noexcept {
    if (!pointer)
        return;
    std::size_t slot_size = slot_size_for(size);
    if (slot_size == 0) {
        {
            std::lock_guard lock(mutex_);
            --large_allocations_;
            large_bytes_ -= size;
        }
        sodium_free(pointer); /* wipes before unmapping */
        return;
    }

    auto *memory = static_cast<std::byte *>(pointer);
    std::size_t index = class_index(slot_size);
    std::size_t slots = slots_per_chunk(slot_size);
    std::lock_guard lock(mutex_);
    ChunkMap &chunks = classes_[index];
    auto chunk = chunks.upper_bound(memory);
    if (chunk == chunks.begin())
        abort_on_invalid_release(size);
    --chunk;
    auto offset = static_cast<std::size_t>(memory - chunk->first);
    std::size_t slot = offset / slot_size;
    if (offset % slot_size != 0 || slot >= slots || !chunk->second.in_use[slot])
        abort_on_invalid_release(size);

    unpoison(memory, slot_size);
    sodium_memzero(memory, slot_size);
    poison(memory, slot_size);
    chunk->second.in_use[slot] = false;
    chunk->second.free_slots.push_back(static_cast<std::uint16_t>(slot));
    --slots_in_use_;

    /* Keep one empty chunk per class, so that a class used by one secret
     * at a time does not map and unmap a chunk on every use. */
    if (chunk->second.free_slots.size() == slots) {
        if (spare_chunks_[index] == 0) {
            ++spare_chunks_[index];
        } else {
            unpoison(chunk->first, kChunkBytes);
            sodium_free(chunk->first);
            chunks.erase(chunk);
        }
    }
}

SecurePoolStats SecurePool::stats() const {
    std::lock_guard lock(mutex_);
    SecurePoolStats stats;
    for (std::size_t index = 0; index < kClassCount; ++index) {
        std::size_t slot_size = kMinSlotSize << index;
        std::size_t slots = slots_per_chunk(slot_size);
        for (const auto &[memory, chunk] : classes_[index])
            stats.bytes_in_use += (slots - chunk.free_slots.size()) * slot_size;
        stats.chunks += classes_[index].size();
        stats.spare_chunks += spare_chunks_[index];
    }
    stats.slots_in_use = slots_in_use_;
    stats.large_allocations = large_allocations_;
    stats.bytes_in_use += large_bytes_;
    return stats;
}

} // namespace warden
