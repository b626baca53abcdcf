/* The host key (/etc/warden/secret.key) and what it protects: TOTP
 * secrets sealed with XChaCha20-Poly1305, with the user name as associated
 * data so a record copied onto another user does not open, and recovery
 * codes stored as keyed BLAKE2b hashes. */
#pragma once

#include "daemon/secret.h"

#include <string>
#include <string_view>

namespace warden {

inline constexpr std::size_t kHostKeyBytes = 32;

class HostKey {
public:
    /* Reads exactly 32 bytes from path into guarded memory. */
    static bool load(const std::string &path, HostKey &ret_key, std::string &ret_error);

    /* Encrypts plaintext for user. ret_sealed holds the 24-byte nonce
     * followed by the ciphertext and its 16-byte tag. */
    bool seal(std::string_view user, std::string_view plaintext, std::string &ret_sealed) const;

    /* Decrypts what seal() made for the same user. Returns false when the
     * record was made for another user, under another key, or altered. */
    bool open(std::string_view user, std::string_view sealed, SecretBuffer &ret_plaintext) const;

    /* Keyed hash of a normalised recovery code, bound to the user. */
    std::string recovery_hash(std::string_view user, std::string_view code) const;

    bool loaded() const noexcept { return aead_key_.size() == kHostKeyBytes; }

private:
    SecretBuffer aead_key_;
    SecretBuffer recovery_key_;
};

} // namespace warden
