/* In-process password checks that a login's latency is compared with, and
 * the TOTP codes the benchmark types. */
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace warden::bench {

/* One password check against a stored hash, with no daemon and no PAM. */
class HashCheck {
public:
    virtual ~HashCheck() = default;
    /* Returns true when the password matches the hash. */
    virtual bool verify() = 0;
};

/* kind is "argon2id" (crypto_pwhash_argon2id_str_verify, as wardend calls
 * it) or "yescrypt" (libxcrypt's crypt_rn, as pam_unix calls crypt).
 * Throws std::runtime_error on any other kind. */
std::unique_ptr<HashCheck> make_hash_check(const std::string &kind, const std::string &stored_hash,
                                           const std::string &password);

/* The RFC 6238 code of secret (raw bytes, HMAC-SHA1) for the time step
 * that contains unix_time, computed with liboath. */
std::string totp_code(const std::string &secret, std::int64_t unix_time, unsigned digits, unsigned period);

/* Decodes hexadecimal text into bytes. Throws std::runtime_error when the
 * text is not an even number of hex digits. */
std::string decode_hex(const std::string &hex);

} // namespace warden::bench
