#include "bench/credentials.h"

#include <crypt.h>
#include <liboath/oath.h>
#include <sodium.h>

#include <cstring>
#include <mutex>
#include <stdexcept>

namespace warden::bench {
namespace {

class Argon2idCheck : public HashCheck {
public:
    Argon2idCheck(std::string phc, std::string password) : phc_(std::move(phc)), password_(std::move(password)) {
        if (sodium_init() < 0)
            throw std::runtime_error("failed to initialise libsodium");
    }
    bool verify() override {
        return crypto_pwhash_argon2id_str_verify(phc_.c_str(), password_.data(), password_.size()) == 0;
    }

private:
    std::string phc_;
    std::string password_;
};

class YescryptCheck : public HashCheck {
public:
    YescryptCheck(std::string hash, std::string password)
        : hash_(std::move(hash)), password_(std::move(password)), data_(std::make_unique<struct crypt_data>()) {}
    bool verify() override {
        std::memset(data_.get(), 0, sizeof *data_);
        const char *result = crypt_rn(password_.c_str(), hash_.c_str(), data_.get(), sizeof *data_);
        return result && result[0] != '*' && hash_ == result;
    }

private:
    std::string hash_;
    std::string password_;
    std::unique_ptr<struct crypt_data> data_;
};

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

} // namespace

std::unique_ptr<HashCheck> make_hash_check(const std::string &kind, const std::string &stored_hash,
                                           const std::string &password) {
    if (kind == "argon2id")
        return std::make_unique<Argon2idCheck>(stored_hash, password);
    if (kind == "yescrypt")
        return std::make_unique<YescryptCheck>(stored_hash, password);
    throw std::runtime_error("unknown hash kind '" + kind + "', expected argon2id or yescrypt");
}

std::string totp_code(const std::string &secret, std::int64_t unix_time, unsigned digits, unsigned period) {
    static std::once_flag initialised;
    std::call_once(initialised, [] {
        if (oath_init() != OATH_OK)
            throw std::runtime_error("failed to initialise liboath");
    });
    char code[16] = {};
    int rc = oath_totp_generate(secret.data(), secret.size(), static_cast<time_t>(unix_time), period,
                                /* start_offset= */ 0, digits, code);
    if (rc != OATH_OK)
        throw std::runtime_error(std::string("failed to compute a TOTP code: ") + oath_strerror(rc));
    return code;
}

std::string decode_hex(const std::string &hex) {
    if (hex.size() % 2 != 0)
        throw std::runtime_error("hex secret has an odd number of digits");
    std::string bytes;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int high = hex_value(hex[i]);
        int low = hex_value(hex[i + 1]);
        if (high < 0 || low < 0)
            throw std::runtime_error("hex secret contains a character that is not a hex digit");
        bytes.push_back(static_cast<char>(high * 16 + low));
    }
    return bytes;
}

} // namespace warden::bench
