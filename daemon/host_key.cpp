#include "daemon/host_key.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace warden {
namespace {

/* Subkeys for each use, so one primitive's output never meets another's. */
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES] = {'w', 'a', 'r', 'd', 'e', 'n', 'h', 'k'};
constexpr std::uint64_t kAeadSubkeyId = 1;
constexpr std::uint64_t kRecoverySubkeyId = 2;

static_assert(kHostKeyBytes == crypto_kdf_KEYBYTES);
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32);

} // namespace

bool HostKey::load(const std::string &path, HostKey &ret_key, std::string &ret_error) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ret_error = "failed to open key file '" + path + "': " + std::strerror(errno);
        return false;
    }
    SecretBuffer master(kHostKeyBytes + 1);
    ssize_t n = ::read(fd, master.data(), master.capacity());
    int saved = errno;
    ::close(fd);
    if (n < 0) {
        ret_error = "failed to read key file '" + path + "': " + std::strerror(saved);
        return false;
    }
    if (static_cast<std::size_t>(n) != kHostKeyBytes) {
        ret_error = "key file '" + path + "' holds " + std::to_string(n) + (n > 32 ? " or more" : "") +
                    " bytes, expected 32";
        return false;
    }
    HostKey key;
    key.aead_key_ = SecretBuffer(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    key.recovery_key_ = SecretBuffer(crypto_generichash_KEYBYTES);
    auto *m = reinterpret_cast<const unsigned char *>(master.data());
    if (crypto_kdf_derive_from_key(reinterpret_cast<unsigned char *>(key.aead_key_.data()),
                                   key.aead_key_.capacity(), kAeadSubkeyId, kKdfContext, m) != 0 ||
        crypto_kdf_derive_from_key(reinterpret_cast<unsigned char *>(key.recovery_key_.data()),
                                   key.recovery_key_.capacity(), kRecoverySubkeyId, kKdfContext, m) != 0) {
        ret_error = "failed to derive subkeys from '" + path + "'";
        return false;
    }
    key.aead_key_.resize(key.aead_key_.capacity());
    key.recovery_key_.resize(key.recovery_key_.capacity());
    ret_key = std::move(key);
    return true;
}

bool HostKey::seal(std::string_view user, std::string_view plaintext, std::string &ret_sealed) const {
    constexpr std::size_t nonce_size = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    std::string sealed(nonce_size + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
    auto *out = reinterpret_cast<unsigned char *>(sealed.data());
    randombytes_buf(out, nonce_size);
    unsigned long long length = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
            out + nonce_size, &length, reinterpret_cast<const unsigned char *>(plaintext.data()), plaintext.size(),
            reinterpret_cast<const unsigned char *>(user.data()), user.size(), nullptr, out,
            reinterpret_cast<const unsigned char *>(aead_key_.data()));
    if (rc != 0)
        return false;
    sealed.resize(nonce_size + length);
    ret_sealed = std::move(sealed);
    return true;
}

bool HostKey::open(std::string_view user, std::string_view sealed, SecretBuffer &ret_plaintext) const {
    constexpr std::size_t nonce_size = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    constexpr std::size_t tag_size = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    if (sealed.size() < nonce_size + tag_size)
        return false;
    auto *in = reinterpret_cast<const unsigned char *>(sealed.data());
    SecretBuffer plain(sealed.size() - nonce_size - tag_size);
    unsigned long long length = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<unsigned char *>(plain.data()), &length, nullptr, in + nonce_size,
            sealed.size() - nonce_size, reinterpret_cast<const unsigned char *>(user.data()), user.size(), in,
            reinterpret_cast<const unsigned char *>(aead_key_.data()));
    if (rc != 0)
        return false;
    plain.resize(length);
    ret_plaintext = std::move(plain);
    return true;
}

std::string HostKey::recovery_hash(std::string_view user, std::string_view code) const {
    crypto_generichash_state state;
    unsigned char out[32];
    const unsigned char separator = 0;
    crypto_generichash_init(&state, reinterpret_cast<const unsigned char *>(recovery_key_.data()),
                            recovery_key_.size(), sizeof out);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char *>(user.data()), user.size());
    crypto_generichash_update(&state, &separator, 1);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char *>(code.data()), code.size());
    crypto_generichash_final(&state, out, sizeof out);
    sodium_memzero(&state, sizeof state);
    return std::string(reinterpret_cast<const char *>(out), sizeof out);
}

} // namespace warden
