/* The module's side of a conversation with wardend: connect, send one
 * request, relay prompts through the PAM conversation, return the result. */
#pragma once

#include "pam_module/args.h"
#include "protocol/wire.h"

#include <security/pam_modules.h>

namespace warden::module {

struct Request {
    wire::FrameType type;
    std::uint32_t flags = 0;
    const char *authtok = nullptr;     /* sent when not null */
    const char *old_authtok = nullptr; /* sent when not null */
};

/* Runs one request against the daemon. Returns the PAM code of its
 * RESULT, or PAM_AUTHINFO_UNAVAIL when the daemon is missing, silent past
 * the timeout, or sends anything malformed, and PAM_CONV_ERR when the
 * application's conversation fails. When set_authtok is true and the
 * result is PAM_SUCCESS or PAM_USER_UNKNOWN, the answer to the password
 * prompt, if one was shown, becomes PAM_AUTHTOK. */
int run_request(pam_handle_t *pamh, const Args &args, const Request &request, bool set_authtok);

} // namespace warden::module
