/* pam_warden.so: a thin relay between the PAM stack and wardend. It holds
 * no crypto, no config file, no policy and no state; it parses its
 * arguments, forwards the request and the user's answers over a UNIX
 * socket, and maps the daemon's verdict to a PAM code. Every entry point
 * catches everything: no exception, abort or exit may reach the host
 * process (sshd, login, sudo, a screen locker). */
#include "pam_module/args.h"
#include "pam_module/client.h"

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <syslog.h>
#include <unistd.h>

#define WARDEN_EXPORT extern "C" __attribute__((visibility("default")))

namespace warden::module {
namespace {

void log_unknown_argument(void *context, const char *argument) {
    pam_syslog(static_cast<pam_handle_t *>(context), LOG_WARNING, "Unknown argument '%.64s', ignoring", argument);
}

/* Parses the stack line; logs and returns false when it is broken. */
bool load_args(pam_handle_t *pamh, int argc, const char **argv, Args &ret_args) {
    ArgsError error = parse_args(argc, argv, ret_args, log_unknown_argument, pamh);
    if (error.index >= 0) {
        pam_syslog(pamh, LOG_ERR, "Invalid argument '%.64s': %s", argv[error.index], error.reason);
        return false;
    }
    return true;
}

std::uint32_t factor_flags(const Args &args) {
    std::uint32_t flags = 0;
    if (args.factor_password)
        flags |= wire::kFlagFactorPassword;
    if (args.factor_totp)
        flags |= wire::kFlagFactorTotp;
    if (args.combined)
        flags |= wire::kFlagPromptCombined;
    if (args.pass_unknown)
        flags |= wire::kFlagPassUnknown;
    return flags;
}

int authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    Args args;
    if (!load_args(pamh, argc, argv, args))
        return PAM_SERVICE_ERR;
    const char *user = nullptr;
    int r = pam_get_user(pamh, &user, nullptr);
    if (r != PAM_SUCCESS)
        return r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : r;

    Request request{wire::FrameType::kAuthenticate, factor_flags(args)};
    if (flags & PAM_SILENT)
        request.flags |= wire::kFlagSilent;
    if ((args.use_first_pass || args.try_first_pass) && args.factor_password) {
        const void *token = nullptr;
        if (pam_get_item(pamh, PAM_AUTHTOK, &token) == PAM_SUCCESS && token)
            request.authtok = static_cast<const char *>(token);
        if (args.use_first_pass)
            request.flags |= wire::kFlagAuthtokOnly;
    }
    r = run_request(pamh, args, request, /* set_authtok= */ true);
    if (args.debug)
        pam_syslog(pamh, LOG_DEBUG, "authenticate for '%.64s': %s", user, pam_strerror(pamh, r));
    return r;
}

int simple_request(pam_handle_t *pamh, int flags, int argc, const char **argv, wire::FrameType type,
                   const char *what) {
    Args args;
    if (!load_args(pamh, argc, argv, args))
        return PAM_SERVICE_ERR;
    const char *user = nullptr;
    int r = pam_get_user(pamh, &user, nullptr);
    if (r != PAM_SUCCESS)
        return r;
    Request request{type, 0};
    if (flags & PAM_SILENT)
        request.flags |= wire::kFlagSilent;
    r = run_request(pamh, args, request, /* set_authtok= */ false);
    if (args.debug)
        pam_syslog(pamh, LOG_DEBUG, "%s for '%.64s': %s", what, user, pam_strerror(pamh, r));
    return r;
}

int change_password(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    Args args;
    if (!load_args(pamh, argc, argv, args))
        return PAM_SERVICE_ERR;
    /* Warden passwords do not expire, so there is nothing to change when
     * the application only asks for expired tokens. */
    if (flags & PAM_CHANGE_EXPIRED_AUTHTOK)
        return PAM_IGNORE;
    const char *user = nullptr;
    int r = pam_get_user(pamh, &user, nullptr);
    if (r != PAM_SUCCESS)
        return r;

    Request request{wire::FrameType::kChangePassword, 0};
    if (flags & PAM_SILENT)
        request.flags |= wire::kFlagSilent;
    if (flags & PAM_PRELIM_CHECK) {
        request.flags |= wire::kFlagPrelimCheck;
    } else {
        /* passwd is set-uid root: the daemon sees uid 0, so tell it that a
         * user, not root, is asking and must give the current password. */
        if (getuid() != 0)
            request.flags |= wire::kFlagRequireOld;
        if (args.use_first_pass || args.try_first_pass) {
            const void *token = nullptr;
            if (pam_get_item(pamh, PAM_AUTHTOK, &token) == PAM_SUCCESS && token)
                request.authtok = static_cast<const char *>(token);
            const void *old = nullptr;
            if (pam_get_item(pamh, PAM_OLDAUTHTOK, &old) == PAM_SUCCESS && old)
                request.old_authtok = static_cast<const char *>(old);
        }
    }
    r = run_request(pamh, args, request, /* set_authtok= */ false);
    if (args.debug)
        pam_syslog(pamh, LOG_DEBUG, "chauthtok for '%.64s': %s", user, pam_strerror(pamh, r));
    return r;
}

/* Runs body and turns any escaping exception into PAM_SERVICE_ERR. */
template <typename Body> int guarded(pam_handle_t *pamh, Body body) noexcept {
    try {
        return body();
    } catch (...) {
        pam_syslog(pamh, LOG_ERR, "Internal error, failing closed");
        return PAM_SERVICE_ERR;
    }
}

} // namespace
} // namespace warden::module

using namespace warden;

WARDEN_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return module::guarded(pamh, [&] { return module::authenticate(pamh, flags, argc, argv); });
}

WARDEN_EXPORT int pam_sm_setcred(pam_handle_t *, int, int, const char **) {
    /* Warden grants no credentials beyond the authentication itself. */
    return PAM_SUCCESS;
}

WARDEN_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return module::guarded(pamh, [&] {
        return module::simple_request(pamh, flags, argc, argv, wire::FrameType::kAccount, "account");
    });
}

WARDEN_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return module::guarded(pamh, [&] {
        return module::simple_request(pamh, flags, argc, argv, wire::FrameType::kOpenSession, "open_session");
    });
}

WARDEN_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return module::guarded(pamh, [&] {
        return module::simple_request(pamh, flags, argc, argv, wire::FrameType::kCloseSession, "close_session");
    });
}

WARDEN_EXPORT int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return module::guarded(pamh, [&] { return module::change_password(pamh, flags, argc, argv); });
}
