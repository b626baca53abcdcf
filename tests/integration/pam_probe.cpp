/* A PAM module for tests that stands before or after pam_warden.so.
 *
 *   auth optional pam_probe.so set=FILE      PAM_AUTHTOK := contents of FILE
 *   auth optional pam_probe.so record=FILE   FILE := SHA-256 hex of PAM_AUTHTOK, or "none"
 *
 * Applications cannot set PAM_AUTHTOK themselves, so a stack that needs a
 * password already on it (use_first_pass) gets it from here. It records
 * a digest, never the value. */
#include <security/pam_modules.h>
#include <sodium.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

namespace {

int probe(pam_handle_t *pamh, int argc, const char **argv) {
    for (int i = 0; i < argc; i++) {
        std::string a = argv[i];
        if (a.rfind("set=", 0) == 0) {
            std::ifstream in(a.substr(4), std::ios::binary);
            std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            if (pam_set_item(pamh, PAM_AUTHTOK, token.c_str()) != PAM_SUCCESS)
                return PAM_SERVICE_ERR;
        } else if (a.rfind("record=", 0) == 0) {
            const void *item = nullptr;
            std::string out = "none";
            if (pam_get_item(pamh, PAM_AUTHTOK, &item) == PAM_SUCCESS && item) {
                if (sodium_init() < 0)
                    return PAM_SERVICE_ERR;
                const char *token = static_cast<const char *>(item);
                unsigned char digest[crypto_hash_sha256_BYTES];
                crypto_hash_sha256(digest, reinterpret_cast<const unsigned char *>(token), std::strlen(token));
                char hex[2 * sizeof digest + 1];
                sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
                out = hex;
            }
            std::ofstream(a.substr(7)) << out << "\n";
        }
    }
    return PAM_SUCCESS;
}

} // namespace

extern "C" int pam_sm_authenticate(pam_handle_t *pamh, int, int argc, const char **argv) {
    return probe(pamh, argc, argv);
}

extern "C" int pam_sm_setcred(pam_handle_t *, int, int, const char **) { return PAM_SUCCESS; }

extern "C" int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    if (flags & PAM_PRELIM_CHECK)
        return PAM_SUCCESS;
    return probe(pamh, argc, argv);
}
