/* Argon2id password hashes: parsing, verification and hashing with libsodium. */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace warden {

struct Argon2Params {
    std::uint64_t memory_kib = 0;
    std::uint64_t iterations = 0;
    std::uint32_t parallelism = 0;
};

/* The cost new hashes get and the ceiling for stored ones. */
struct Argon2Policy {
    std::uint64_t memory_kib;
    std::uint64_t iterations;
};

/* Parses "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" strictly. Any other
 * algorithm ($argon2i$, $6$, ...) or a malformed string returns false. */
bool parse_argon2id(std::string_view phc, Argon2Params &ret_params) noexcept;

enum class VerifyResult {
    kMatch,
    kMismatch,
    kUnsupported, /* not an Argon2id string, or malformed: never verified */
    kTooCostly,   /* memory or time above the configured ceiling: never verified */
};

const char *verify_result_string(VerifyResult result) noexcept;

/* Checks password against a stored PHC string. Only Argon2id is accepted,
 * and only at a memory cost up to policy.memory_kib and a total cost
 * (memory times iterations) up to twice the policy's, so a planted hash
 * cannot make the daemon allocate or spin beyond what it was sized for. */
VerifyResult verify_password(std::string_view phc, std::string_view password,
                             const Argon2Policy &policy);

/* Returns true when phc was made with parameters other than the policy's. */
bool needs_rehash(std::string_view phc, const Argon2Policy &policy);

/* Hashes password at the policy's cost into ret_phc. Returns false when
 * libsodium fails, for example when memory cannot be allocated. */
bool hash_password(std::string_view password, const Argon2Policy &policy, std::string &ret_phc);

} // namespace warden
