#include "daemon/password_hash.h"

#include <sodium.h>

#include <charconv>

namespace warden {
namespace {

constexpr std::string_view kPrefix = "$argon2id$v=19$";

bool parse_number(std::string_view &s, std::string_view key, std::uint64_t &ret) {
    if (s.substr(0, key.size()) != key)
        return false;
    s.remove_prefix(key.size());
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end == s.data() || (s[0] == '0' && end - s.data() > 1))
        return false;
    s.remove_prefix(static_cast<std::size_t>(end - s.data()));
    ret = value;
    return true;
}

bool is_base64_unpadded(std::string_view s) {
    if (s.empty())
        return false;
    for (char c : s) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                  c == '/';
        if (!ok)
            return false;
    }
    return s.size() % 4 != 1;
}

} // namespace

bool parse_argon2id(std::string_view phc, Argon2Params &ret_params) noexcept {
    /* libsodium's own strings fit crypto_pwhash_argon2id_STRBYTES with
     * their terminator; anything longer is not one of them. */
    if (phc.size() >= crypto_pwhash_argon2id_STRBYTES || phc.substr(0, kPrefix.size()) != kPrefix)
        return false;
    std::string_view rest = phc.substr(kPrefix.size());
    std::uint64_t m = 0, t = 0, p = 0;
    if (!parse_number(rest, "m=", m) || !parse_number(rest, ",t=", t) || !parse_number(rest, ",p=", p))
        return false;
    if (rest.empty() || rest[0] != '$')
        return false;
    rest.remove_prefix(1);
    std::size_t dollar = rest.find('$');
    if (dollar == std::string_view::npos)
        return false;
    std::string_view salt = rest.substr(0, dollar);
    std::string_view hash = rest.substr(dollar + 1);
    /* Salt of at least 8 bytes and a tag of at least 16, as Argon2 requires. */
    if (!is_base64_unpadded(salt) || salt.size() < 11 || !is_base64_unpadded(hash) || hash.size() < 22)
        return false;
    /* libsodium keeps m and t in 32 bits; anything larger is a corrupt
     * record, and keeping both below 2^32 keeps m * t from wrapping. */
    if (t < 1 || t > UINT32_MAX || p < 1 || p > 255 || m < 8 * p || m > UINT32_MAX)
        return false;
    ret_params = {m, t, static_cast<std::uint32_t>(p)};
    return true;
}

const char *verify_result_string(VerifyResult result) noexcept {
    switch (result) {
    case VerifyResult::kMatch: return "match";
    case VerifyResult::kMismatch: return "mismatch";
    case VerifyResult::kUnsupported: return "not a valid Argon2id hash";
    case VerifyResult::kTooCostly: return "Argon2 cost above the configured ceiling";
    }
    return "unknown";
}

VerifyResult verify_password(std::string_view phc, std::string_view password,
                             const Argon2Policy &policy) {
    Argon2Params params;
    if (!parse_argon2id(phc, params))
        return VerifyResult::kUnsupported;
    if (params.memory_kib > policy.memory_kib ||
        params.memory_kib * params.iterations > 2 * policy.memory_kib * policy.iterations)
        return VerifyResult::kTooCostly;

    /* libsodium needs a NUL-terminated string. The copy contains no secret. */
    std::string stored(phc);
    /* The Argon2id-specific call: the generic crypto_pwhash_str_verify also
     * accepts Argon2i strings. */
    const char *bytes = password.empty() ? "" : password.data();
    int rc = crypto_pwhash_argon2id_str_verify(stored.c_str(), bytes, password.size());
    return rc == 0 ? VerifyResult::kMatch : VerifyResult::kMismatch;
}

bool needs_rehash(std::string_view phc, const Argon2Policy &policy) {
    std::string stored(phc);
    return crypto_pwhash_argon2id_str_needs_rehash(stored.c_str(), policy.iterations,
                                                   static_cast<std::size_t>(policy.memory_kib) * 1024) != 0;
}

bool hash_password(std::string_view password, const Argon2Policy &policy, std::string &ret_phc) {
    char out[crypto_pwhash_argon2id_STRBYTES];
    const char *bytes = password.empty() ? "" : password.data();
    int rc = crypto_pwhash_argon2id_str(out, bytes, password.size(), policy.iterations,
                                        static_cast<std::size_t>(policy.memory_kib) * 1024);
    if (rc != 0)
        return false;
    ret_phc.assign(out);
    sodium_memzero(out, sizeof out);
    return true;
}

} // namespace warden
