/* The host's password policy through libpwquality (the library behind
 * pam_pwquality, configured by /etc/security/pwquality.conf). Used by
 * wardend for password changes and by wardenctl before it hashes. */
#pragma once

#include <mutex>
#include <string>
#include <string_view>

struct pwquality_settings;

namespace warden {

class PasswordQuality {
public:
    /* Reads /etc/security/pwquality.conf; a missing file leaves the
     * library's defaults. */
    PasswordQuality();
    ~PasswordQuality();
    PasswordQuality(const PasswordQuality &) = delete;
    PasswordQuality &operator=(const PasswordQuality &) = delete;

    /* Why /etc/security/pwquality.conf could not be read, or empty. */
    const std::string &load_error() const noexcept { return load_error_; }

    /* Returns an empty string when password passes, else the library's
     * reason, suitable to show to the user. */
    std::string check(std::string_view password, std::string_view old_password, const std::string &user) const;

private:
    pwquality_settings *settings_ = nullptr;
    std::string load_error_;
    mutable std::mutex mutex_; /* cracklib keeps global state */
};

} // namespace warden
