#include "daemon/totp.h"

#include <liboath/oath.h>
#include <sodium.h>

#include <cstdlib>
#include <mutex>

namespace warden {
namespace {

constexpr std::string_view kBase32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

void init_liboath() {
    static std::once_flag once;
    std::call_once(once, [] { (void)oath_init(); });
}

int oath_flags(TotpAlgorithm algorithm) {
    switch (algorithm) {
    case TotpAlgorithm::kSha256: return OATH_TOTP_HMAC_SHA256;
    case TotpAlgorithm::kSha512: return OATH_TOTP_HMAC_SHA512;
    case TotpAlgorithm::kSha1: break;
    }
    return 0;
}

bool is_code_shaped(std::string_view code, unsigned digits) {
    if (code.size() != digits)
        return false;
    for (char c : code) {
        if (c < '0' || c > '9')
            return false;
    }
    return true;
}

} // namespace

const char *totp_algorithm_name(TotpAlgorithm algorithm) noexcept {
    switch (algorithm) {
    case TotpAlgorithm::kSha1: return "SHA1";
    case TotpAlgorithm::kSha256: return "SHA256";
    case TotpAlgorithm::kSha512: return "SHA512";
    }
    return "SHA1";
}

std::optional<TotpAlgorithm> parse_totp_algorithm(std::string_view name) noexcept {
    if (name == "SHA1" || name == "sha1")
        return TotpAlgorithm::kSha1;
    if (name == "SHA256" || name == "sha256")
        return TotpAlgorithm::kSha256;
    if (name == "SHA512" || name == "sha512")
        return TotpAlgorithm::kSha512;
    return std::nullopt;
}

std::int64_t totp_step(std::int64_t now, unsigned period) noexcept {
    if (now < 0)
        return -1;
    return now / static_cast<std::int64_t>(period);
}

bool totp_code(std::string_view secret, std::int64_t step, const TotpParams &params, std::string &ret_code) {
    init_liboath();
    if (step < 0)
        return false;
    char out[16] = {};
    /* liboath takes the time, not the step: the start of the step is exact. */
    auto at = static_cast<time_t>(step * static_cast<std::int64_t>(params.period));
    int rc = oath_totp_generate2(secret.data(), secret.size(), at, params.period, /* start_offset= */ 0,
                                 params.digits, oath_flags(params.algorithm), out);
    if (rc != OATH_OK)
        return false;
    ret_code.assign(out, params.digits);
    sodium_memzero(out, sizeof out);
    return true;
}

TotpMatch totp_verify(std::string_view secret, std::string_view code, std::int64_t now, const TotpParams &params) {
    TotpMatch match;
    bool shaped = is_code_shaped(code, params.digits);
    /* A malformed code is still compared against a well-formed dummy, so
     * its rejection takes as long as a wrong code's. */
    std::string candidate_input(params.digits, '0');
    if (shaped)
        candidate_input.assign(code);

    std::int64_t current = totp_step(now, params.period);
    int window = static_cast<int>(params.window);
    std::string expected;
    for (int offset = -window; offset <= window; offset++) {
        std::int64_t step = current + offset;
        if (step < 0 || !totp_code(secret, step, params, expected))
            continue;
        bool equal = sodium_memcmp(expected.data(), candidate_input.data(), params.digits) == 0;
        if (equal && shaped) {
            match.matched = true;
            match.step = step;
            match.offset = offset;
        }
    }
    sodium_memzero(expected.data(), expected.size());
    sodium_memzero(candidate_input.data(), candidate_input.size());
    return match;
}

bool decode_base32_secret(std::string_view text, SecretBuffer &ret_secret, std::string &ret_error) {
    init_liboath();
    /* Normalise first, so errors can point at the character as typed. */
    SecretBuffer clean(text.size() + 8);
    std::size_t length = 0;
    std::size_t padding = 0;
    for (std::size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '-')
            continue;
        if (c == '=') {
            padding++;
            continue;
        }
        if (padding) {
            ret_error = "'=' padding may only appear at the end (position " + std::to_string(i + 1) + ")";
            return false;
        }
        char upper = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
        if (kBase32Alphabet.find(upper) == std::string_view::npos) {
            std::string shown = (c >= 0x21 && c < 0x7f) ? std::string("'") + c + "'" : "a non-printing byte";
            ret_error = "invalid base32 character " + shown + " at position " + std::to_string(i + 1) +
                        " (base32 uses A-Z and 2-7)";
            return false;
        }
        clean.data()[length++] = upper;
    }
    /* Lengths mod 8 of 1, 3 and 6 cannot come from whole bytes. */
    std::size_t rest = length % 8;
    if (length == 0 || rest == 1 || rest == 3 || rest == 6) {
        ret_error = "a base32 secret of " + std::to_string(length) + " characters is impossible; check for a "
                                                                      "missing or extra character";
        return false;
    }
    std::size_t expected_padding = rest == 0 ? 0 : 8 - rest;
    if (padding != 0 && padding != expected_padding) {
        ret_error = "wrong '=' padding: " + std::to_string(padding) + " characters where " +
                    std::to_string(expected_padding) + " belong";
        return false;
    }
    for (std::size_t i = 0; i < expected_padding; i++)
        clean.data()[length++] = '=';

    char *decoded = nullptr;
    std::size_t decoded_length = 0;
    int rc = oath_base32_decode(clean.data(), length, &decoded, &decoded_length);
    if (rc != OATH_OK || !decoded) {
        ret_error = std::string("invalid base32: ") + oath_strerror(rc);
        std::free(decoded);
        return false;
    }
    SecretBuffer secret = SecretBuffer::copy_of(std::string_view(decoded, decoded_length));
    sodium_memzero(decoded, decoded_length);
    std::free(decoded);
    if (secret.size() < kMinTotpSecretBytes) {
        ret_error = "the secret is " + std::to_string(secret.size() * 8) +
                    " bits long; at least 128 bits are required";
        return false;
    }
    if (secret.size() > kMaxTotpSecretBytes) {
        ret_error = "the secret is longer than " + std::to_string(kMaxTotpSecretBytes) + " bytes";
        return false;
    }
    ret_secret = std::move(secret);
    return true;
}

std::string encode_base32(std::string_view secret) {
    std::string out;
    out.reserve((secret.size() * 8 + 4) / 5); /* no reallocation leaves partial copies behind */
    unsigned buffer = 0;
    int bits = 0;
    for (unsigned char byte : secret) {
        buffer = (buffer << 8) | byte;
        bits += 8;
        while (bits >= 5) {
            out += kBase32Alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out += kBase32Alphabet[(buffer << (5 - bits)) & 31];
    return out;
}

} // namespace warden
