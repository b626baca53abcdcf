/* Memory for passwords, codes and keys: taken from SecurePool and wiped
 * with sodium_memzero on release. Secrets share chunks that have guard
 * pages and are locked in RAM, but there is no guard page between two
 * secrets in one chunk. Move-only; no conversion to std::string so a
 * secret cannot reach a log. */
#pragma once

#include "daemon/secure_pool.h"

#include <sodium.h>

#include <cstddef>
#include <cstring>
#include <string_view>
#include <utility>

namespace warden {

class SecretBuffer {
public:
    SecretBuffer() noexcept = default;

    /* Allocates capacity bytes; throws std::bad_alloc when sodium_malloc fails. */
    explicit SecretBuffer(std::size_t capacity)
        : data_(static_cast<char *>(SecurePool::instance().allocate(capacity))), capacity_(capacity) {}

    static SecretBuffer copy_of(std::string_view value) {
        SecretBuffer buffer(value.size());
        if (!value.empty())
            std::memcpy(buffer.data_, value.data(), value.size());
        buffer.size_ = value.size();
        return buffer;
    }

    SecretBuffer(SecretBuffer &&other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0)) {}
    SecretBuffer &operator=(SecretBuffer &&other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
            capacity_ = std::exchange(other.capacity_, 0);
        }
        return *this;
    }
    SecretBuffer(const SecretBuffer &) = delete;
    SecretBuffer &operator=(const SecretBuffer &) = delete;
    ~SecretBuffer() { release(); }

    char *data() noexcept { return data_; }
    const char *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }
    bool empty() const noexcept { return size_ == 0; }
    void resize(std::size_t size) noexcept { size_ = size <= capacity_ ? size : capacity_; }
    std::string_view view() const noexcept { return {data_ ? data_ : "", size_}; }

    /* Wipes the contents but keeps the allocation. */
    void clear() noexcept {
        if (data_)
            sodium_memzero(data_, capacity_);
        size_ = 0;
    }

private:
    void release() noexcept {
        if (data_)
            SecurePool::instance().release(data_, capacity_); /* the pool wipes it */
        data_ = nullptr;
        size_ = capacity_ = 0;
    }

    char *data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

} // namespace warden
