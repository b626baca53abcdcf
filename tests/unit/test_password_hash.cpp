/* Unit tests of the Argon2id hashing in daemon/password_hash.h, against
 * fixed PHC strings: some from libsodium's own tests
 * (test/default/pwhash_argon2id.c), the rest made for Warden with
 * crypto_pwhash (libsodium 1.0.18), salt "warden-test-salt", 32-byte tag.
 *
 * Each verification at m=65536 takes roughly 0.1 s (an estimate from one
 * run on a 2-CPU VM), so the file runs in about 2 s. */
#include "daemon/password_hash.h"

#include <chrono>
#include <string>
#include <string_view>

/* Last, because cmocka.h defines macros such as fail and skip. */
#include "tests/unit/unit_test.h"

namespace {

using namespace warden;

/* The password of most fixed strings. */
constexpr std::string_view kPassword = "correct horse battery staple";

/* kPassword at m=65536, t=2, p=1: below the default iteration count. */
constexpr std::string_view kHashT2 =
        "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U";
/* kPassword at the default cost, m=65536, t=3, p=1. */
constexpr std::string_view kHashDefault =
        "$argon2id$v=19$m=65536,t=3,p=1$d2FyZGVuLXRlc3Qtc2FsdA$Q7/vQliY15oRgz40MDmvBjovnVQEqg/7z9kXiTNwxO8";
/* The empty password, m=65536, t=2. */
constexpr std::string_view kHashEmpty =
        "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$xiMvN7EEFbEYD2rSBQLU6OCES36mOVbKxFrNXOFsn4U";
/* The 7 bytes "abc\0def", m=65536, t=2. */
constexpr std::string_view kHashEmbeddedNul =
        "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$RA6GjrmgBSRG+Kd7Bem/XMTo9Rl7/0ntutE2RFiXdvo";
/* "pässwörd" in NFC, m=65536, t=2. */
constexpr std::string_view kHashUnicode =
        "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$MzJn4sJWgmrwKhN2Rcio9TVbTbWEie+t3qTAL+Afu4o";
/* 1024 times 'x', m=65536, t=2. */
constexpr std::string_view kHashLong =
        "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$t9Jf6hOA3tkT1VK5xoNhysAm/V4ZLrCbfkDOLFjUf0M";
/* kPassword at m=1 GiB, t=1. */
constexpr std::string_view kHashOneGib =
        "$argon2id$v=19$m=1048576,t=1,p=1$d2FyZGVuLXRlc3Qtc2FsdA$57rzdZ9GyfkS4vCaiY53+DnIjWC1n2COpN9YtUOok2I";
/* kPassword as Argon2i, which libsodium's generic verify accepts. */
constexpr std::string_view kHashArgon2i =
        "$argon2i$v=19$m=65536,t=3,p=1$d2FyZGVuLXRlc3Qtc2FsdA$ZNa4osW+A/k+/B9YXdUbGSawk5RGGkYuVoDdlaBkMVE";
/* kPassword as sha512crypt. */
constexpr std::string_view kHashSha512Crypt =
        "$6$wardentest$E0vJ0XdnzPyU/9MxUOEaHsXbAlZCz1aLYqdNCbiDDnAM10x.t9faghSY5prQtku//wBMfdnBgQp0.Bj0Hcz4Z.";
/* Cut off after the salt. */
constexpr std::string_view kHashTruncated = "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVu";

/* From libsodium's tests: the empty password at m=4882, t=2. */
constexpr std::string_view kSodiumEmpty =
        "$argon2id$v=19$m=4882,t=2,p=1$bA81arsiXysd3WbTRzmEOw$Nm8QBM+7RH1DXo9rvp5cwKEOOOfD2g6JuxlXihoNcpE";
/* From libsodium's tests: kSodiumPassword19 at m=4096, t=19. */
constexpr std::string_view kSodiumT19 =
        "$argon2id$v=19$m=4096,t=19,p=1$PkEgMTYtYnl0ZXMgc2FsdA$ltB/ue1kPtBMBGfsysMpPigE6hiNEKZ9vs8vLNVDQGA";
constexpr std::string_view kSodiumPassword19 = "^T5H$JYt39n%K*j:W]!1s?vg!:jGi]Ax?..l7[p0v:1jHTpla9;]bUN;?bWyCbtqg ";
/* From libsodium's tests: kSodiumPasswordP3 at m=4096, t=1, p=3. */
constexpr std::string_view kSodiumP3 =
        "$argon2id$v=19$m=4096,t=1,p=3$PkEgcHJldHR5IGxvbmcgc2FsdA$HUqx5Z1b/ZypnUrvvJ5UC2Q+T6Q1WwASK/Kr9dRbGA0";
constexpr std::string_view kSodiumPasswordP3 = "K3S=KyH#)36_?]LxeR8QNKw6X=gFbxai$C%29V*";
/* From libsodium's tests: t=0 is invalid. */
constexpr std::string_view kSodiumT0 =
        "$argon2id$v=19$m=4096,t=0,p=1$X1NhbHQAAAAAAAAAAAAAAA$bWh++MKN1OiFHKgIWTLvIi1iHicmHH7+Fv3K88ifFfI";
constexpr std::string_view kSodiumT0Other =
        "$argon2id$v=19$m=4096,t=0,p=1$PkEgMTYtYnl0ZXMgc2FsdA$ltB/ue1kPtBMBGfsysMpPigE6hiNEKZ9vs8vLNVDQGA";
/* From libsodium's tests: a well-formed string that the empty password does not match. */
constexpr std::string_view kSodiumMismatch =
        "$argon2id$v=19$m=2048,t=4,p=1$SWkxaUhpY21ISDcrRnYzSw$Mbg/Eck1kpZir5T9io7C64cpffdTBaORgyriLQFgQj8";

/* The default cost of wardend.conf: 64 MiB and 3 passes. */
constexpr Argon2Policy kDefaultPolicy{65536, 3};
/* The lowest cost development mode accepts. */
constexpr Argon2Policy kLowPolicy{8192, 1};

void assert_verify(std::string_view phc, std::string_view password, const Argon2Policy &policy,
                   VerifyResult expected, std::source_location where = std::source_location::current()) {
    VerifyResult actual = verify_password(phc, password, policy);
    if (actual != expected)
        test::fail_at(std::string("verify_password: expected '") + verify_result_string(expected) + "', got '" +
                              verify_result_string(actual) + "' for " + std::string(phc),
                      where);
}

void hash_parse_default_cost(void **) {
    Argon2Params params;
    assert_true(parse_argon2id(kHashDefault, params));
    assert_int_equal(params.memory_kib, 65536);
    assert_int_equal(params.iterations, 3);
    assert_int_equal(params.parallelism, 1);
}

void hash_parse_lower_cost(void **) {
    Argon2Params params;
    assert_true(parse_argon2id(kHashT2, params));
    assert_int_equal(params.memory_kib, 65536);
    assert_int_equal(params.iterations, 2);
    assert_int_equal(params.parallelism, 1);
}

void hash_parse_three_lanes(void **) {
    Argon2Params params;
    assert_true(parse_argon2id(kSodiumP3, params));
    assert_int_equal(params.memory_kib, 4096);
    assert_int_equal(params.iterations, 1);
    assert_int_equal(params.parallelism, 3);
}

void hash_parse_rejects_other_formats(void **) {
    const std::string_view rejected[] = {
        kHashArgon2i,
        kHashSha512Crypt,
        kHashTruncated,
        kSodiumT0,
        kSodiumT0Other,
        "",
        "$argon2id$",
        /* Version 16 of Argon2, padding, a leading zero, a missing tag. */
        "$argon2id$v=16$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U",
        "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA==$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U",
        "$argon2id$v=19$m=065536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U",
        "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$",
        "$argon2id$v=19$m=65536,t=2,p=0$d2FyZGVuLXRlc3Qtc2FsdA$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U",
        "$argon2id$v=19$t=2,m=65536,p=1$d2FyZGVuLXRlc3Qtc2FsdA$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U",
    };
    for (std::string_view phc : rejected) {
        Argon2Params params;
        WARDEN_ASSERT_FOR(!parse_argon2id(phc, params), std::string(phc));
    }
}

void hash_parse_rejects_cost_beyond_library(void **) {
    /* libsodium keeps m and t in 32 bits, so a larger t is a corrupt
     * record, and the cost check must not wrap around on it. */
    Argon2Params params;
    assert_false(parse_argon2id(
            "$argon2id$v=19$m=4096,t=4503599627370496,p=1$d2FyZGVuLXRlc3Qtc2FsdA$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U",
            params));
    assert_false(parse_argon2id(
            "$argon2id$v=19$m=4096,t=4294967296,p=1$d2FyZGVuLXRlc3Qtc2FsdA$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U",
            params));
}

void hash_verify_right_password(void **) {
    assert_verify(kHashT2, kPassword, kDefaultPolicy, VerifyResult::kMatch);
    assert_verify(kHashDefault, kPassword, kDefaultPolicy, VerifyResult::kMatch);
}

void hash_verify_wrong_password(void **) {
    assert_verify(kHashT2, "correct horse battery stapl", kDefaultPolicy, VerifyResult::kMismatch);
    assert_verify(kHashT2, "correct horse battery staple\n", kDefaultPolicy, VerifyResult::kMismatch);
}

void hash_verify_empty_password(void **) {
    assert_verify(kHashEmpty, "", kDefaultPolicy, VerifyResult::kMatch);
    assert_verify(kSodiumEmpty, "", kDefaultPolicy, VerifyResult::kMatch);
}

void hash_verify_never_runs_other_algorithms(void **) {
    /* Argon2i is refused before libsodium sees it: its generic verify
     * function would accept this string with the right password. */
    assert_verify(kHashArgon2i, kPassword, kDefaultPolicy, VerifyResult::kUnsupported);
    assert_verify(kHashSha512Crypt, kPassword, kDefaultPolicy, VerifyResult::kUnsupported);
    assert_verify(kHashTruncated, kPassword, kDefaultPolicy, VerifyResult::kUnsupported);
    assert_verify(kSodiumT0, "", kDefaultPolicy, VerifyResult::kUnsupported);
    assert_verify(kSodiumT0Other, kSodiumPassword19, kDefaultPolicy, VerifyResult::kUnsupported);
}

void hash_verify_cost_above_ceiling(void **) {
    /* 1 GiB is refused without running Argon2, which would take seconds. */
    auto start = std::chrono::steady_clock::now();
    assert_verify(kHashOneGib, kPassword, kDefaultPolicy, VerifyResult::kTooCostly);
    auto elapsed = std::chrono::steady_clock::now() - start;
    assert_true(elapsed < std::chrono::milliseconds(500));

    /* Time: 4096 KiB x 19 passes is more than twice 4096 KiB x 1. */
    assert_verify(kSodiumT19, kSodiumPassword19, Argon2Policy{4096, 1}, VerifyResult::kTooCostly);
    /* Memory alone above the ceiling. */
    assert_verify(kHashT2, kPassword, Argon2Policy{65535, 100}, VerifyResult::kTooCostly);
}

void hash_verify_huge_iterations(void **) {
    /* 4096 x 2^52 wraps to 0 in 64 bits; the record must be refused, not
     * handed to libsodium and reported as a wrong password. */
    assert_verify("$argon2id$v=19$m=4096,t=4503599627370496,p=1$d2FyZGVuLXRlc3Qtc2FsdA$"
                  "vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U",
                  kPassword, kDefaultPolicy, VerifyResult::kUnsupported);
}

void hash_verify_embedded_nul(void **) {
    assert_verify(kHashEmbeddedNul, std::string_view("abc\0def", 7), kDefaultPolicy, VerifyResult::kMatch);
    assert_verify(kHashEmbeddedNul, "abc", kDefaultPolicy, VerifyResult::kMismatch);
}

void hash_verify_no_unicode_normalisation(void **) {
    /* "pässwörd" with precomposed letters (NFC), then with combining
     * diaeresis marks (NFD): the same text, different bytes. */
    const std::string_view nfc = "p\xc3\xa4ssw\xc3\xb6rd";
    const std::string_view nfd = "pa\xcc\x88sswo\xcc\x88rd";
    assert_verify(kHashUnicode, nfc, kDefaultPolicy, VerifyResult::kMatch);
    assert_verify(kHashUnicode, nfd, kDefaultPolicy, VerifyResult::kMismatch);
}

void hash_verify_long_password(void **) {
    assert_verify(kHashLong, std::string(1024, 'x'), kDefaultPolicy, VerifyResult::kMatch);
    assert_verify(kHashLong, std::string(1023, 'x'), kDefaultPolicy, VerifyResult::kMismatch);
}

void hash_verify_libsodium_vectors(void **) {
    assert_verify(kSodiumT19, kSodiumPassword19, kDefaultPolicy, VerifyResult::kMatch);
    assert_verify(kSodiumP3, kSodiumPasswordP3, kDefaultPolicy, VerifyResult::kMatch);
    assert_verify(kSodiumMismatch, "", kDefaultPolicy, VerifyResult::kMismatch);
}

void hash_needs_rehash(void **) {
    assert_true(needs_rehash(kHashT2, kDefaultPolicy));
    assert_false(needs_rehash(kHashDefault, kDefaultPolicy));
    assert_true(needs_rehash(kSodiumP3, kDefaultPolicy));
    assert_true(needs_rehash(kHashDefault, Argon2Policy{131072, 3}));
    assert_true(needs_rehash(kHashArgon2i, kDefaultPolicy));
    assert_true(needs_rehash(kHashSha512Crypt, kDefaultPolicy));
}

void hash_round_trip(void **) {
    std::string phc;
    assert_true(hash_password("new passphrase", kLowPolicy, phc));

    Argon2Params params;
    assert_true(parse_argon2id(phc, params));
    assert_int_equal(params.memory_kib, kLowPolicy.memory_kib);
    assert_int_equal(params.iterations, kLowPolicy.iterations);
    assert_int_equal(params.parallelism, 1);

    assert_verify(phc, "new passphrase", kLowPolicy, VerifyResult::kMatch);
    assert_verify(phc, "new passphrasE", kLowPolicy, VerifyResult::kMismatch);
    assert_false(needs_rehash(phc, kLowPolicy));
    assert_true(needs_rehash(phc, kDefaultPolicy));
}

void hash_random_salt(void **) {
    std::string first;
    std::string second;
    assert_true(hash_password("same password", kLowPolicy, first));
    assert_true(hash_password("same password", kLowPolicy, second));
    assert_string_not_equal(first.c_str(), second.c_str());
}

void hash_round_trip_binary_password(void **) {
    const std::string password("a\0b\xff", 4);
    std::string phc;
    assert_true(hash_password(password, kLowPolicy, phc));
    assert_verify(phc, password, kLowPolicy, VerifyResult::kMatch);
    assert_verify(phc, "a", kLowPolicy, VerifyResult::kMismatch);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_parse_default_cost),
        cmocka_unit_test(hash_parse_lower_cost),
        cmocka_unit_test(hash_parse_three_lanes),
        cmocka_unit_test(hash_parse_rejects_other_formats),
        cmocka_unit_test(hash_parse_rejects_cost_beyond_library),
        cmocka_unit_test(hash_verify_right_password),
        cmocka_unit_test(hash_verify_wrong_password),
        cmocka_unit_test(hash_verify_empty_password),
        cmocka_unit_test(hash_verify_never_runs_other_algorithms),
        cmocka_unit_test(hash_verify_cost_above_ceiling),
        cmocka_unit_test(hash_verify_huge_iterations),
        cmocka_unit_test(hash_verify_embedded_nul),
        cmocka_unit_test(hash_verify_no_unicode_normalisation),
        cmocka_unit_test(hash_verify_long_password),
        cmocka_unit_test(hash_verify_libsodium_vectors),
        cmocka_unit_test(hash_needs_rehash),
        cmocka_unit_test(hash_round_trip),
        cmocka_unit_test(hash_random_salt),
        cmocka_unit_test(hash_round_trip_binary_password),
    };
    return cmocka_run_group_tests_name("password_hash", tests, nullptr, nullptr);
}
