#include "daemon/password_quality.h"

#include "daemon/secret.h"

#include <pwquality.h>

#include <cstring>

namespace warden {

PasswordQuality::PasswordQuality() {
    settings_ = pwquality_default_settings();
    if (settings_) {
        void *aux = nullptr;
        /* A missing or unreadable file keeps the defaults; callers log
         * load_error() and carry on. */
        int rc = pwquality_read_config(settings_, nullptr, &aux);
        if (rc != 0) {
            char buf[PWQ_MAX_ERROR_MESSAGE_LEN];
            const char *message = pwquality_strerror(buf, sizeof buf, rc, aux);
            load_error_ = message ? message : "unknown error";
        }
    }
}

PasswordQuality::~PasswordQuality() {
    if (settings_)
        pwquality_free_settings(settings_);
}

std::string PasswordQuality::check(std::string_view password, std::string_view old_password,
                                   const std::string &user) const {
    if (!settings_)
        return "The password quality library could not be initialised.";
    /* The library wants NUL-terminated strings; keep the copies in guarded memory. */
    SecretBuffer pw(password.size() + 1);
    std::copy(password.begin(), password.end(), pw.data());
    pw.data()[password.size()] = '\0';
    SecretBuffer old(old_password.size() + 1);
    std::copy(old_password.begin(), old_password.end(), old.data());
    old.data()[old_password.size()] = '\0';

    void *aux = nullptr;
    std::lock_guard lock(mutex_);
    int score = pwquality_check(settings_, pw.data(), old_password.empty() ? nullptr : old.data(),
                                user.empty() ? nullptr : user.c_str(), &aux);
    if (score >= 0)
        return {};
    char buf[PWQ_MAX_ERROR_MESSAGE_LEN];
    const char *message = pwquality_strerror(buf, sizeof buf, score, aux);
    if (score == PWQ_ERROR_CRACKLIB_CHECK && message && std::strstr(message, "error loading dictionary"))
        return "The password dictionary could not be loaded; install cracklib-runtime or set dictcheck = 0 "
               "in /etc/security/pwquality.conf.";
    return std::string("The new password fails the host's quality policy: ") +
           (message ? message : "unknown reason") + ".";
}

} // namespace warden
