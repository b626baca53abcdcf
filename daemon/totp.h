/* TOTP (RFC 6238) codes through liboath, compared in constant time, and
 * base32 secrets as authenticator apps and other tools show them. */
#pragma once

#include "daemon/secret.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace warden {

enum class TotpAlgorithm { kSha1, kSha256, kSha512 };

const char *totp_algorithm_name(TotpAlgorithm algorithm) noexcept; /* "SHA1", "SHA256", "SHA512" */
std::optional<TotpAlgorithm> parse_totp_algorithm(std::string_view name) noexcept;

/* Shortest secret accepted: 128 bits, as RFC 4226 requires. */
inline constexpr std::size_t kMinTotpSecretBytes = 16;
/* Size of the secrets wardenctl generates: 160 bits, the HMAC-SHA1 block. */
inline constexpr std::size_t kTotpSecretBytes = 20;
inline constexpr std::size_t kMaxTotpSecretBytes = 64;

struct TotpParams {
    unsigned digits = 6;
    unsigned period = 30;
    unsigned window = 1; /* accepted steps on each side of the current one */
    TotpAlgorithm algorithm = TotpAlgorithm::kSha1;
};

/* The time step that contains now. */
std::int64_t totp_step(std::int64_t now, unsigned period) noexcept;

/* Writes the code of one time step into ret_code (digits characters).
 * Returns false when liboath fails. */
bool totp_code(std::string_view secret, std::int64_t step, const TotpParams &params, std::string &ret_code);

struct TotpMatch {
    bool matched = false;
    std::int64_t step = 0; /* the matching time step */
    int offset = 0;        /* step minus the current step: the clock drift */
};

/* Checks code against every step in [now - window, now + window]. A code
 * whose length differs from params.digits or that holds anything but the
 * ASCII digits 0-9 never matches. Every candidate is computed and compared
 * with sodium_memcmp, so the time taken does not depend on where, or
 * whether, the code matched. When several steps match, the latest wins. */
TotpMatch totp_verify(std::string_view secret, std::string_view code, std::int64_t now, const TotpParams &params);

/* Decodes a base32 secret as people paste it: upper or lower case, with
 * spaces, with or without '=' padding. On failure returns false and a
 * message naming the first bad character and its position, or the length
 * problem. */
bool decode_base32_secret(std::string_view text, SecretBuffer &ret_secret, std::string &ret_error);

/* Encodes a secret as upper-case base32 without padding, for URIs. */
std::string encode_base32(std::string_view secret);

} // namespace warden
