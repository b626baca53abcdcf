/* Arguments of pam_warden.so from the PAM stack line. */
#pragma once

#include "protocol/limits.h"

#include <cstdint>

namespace warden::module {

inline constexpr const char *kDefaultSocket = "/run/warden/wardend.sock";
inline constexpr std::size_t kMaxArgumentSize = 1024;

struct Args {
    const char *socket = kDefaultSocket; /* points into argv */
    int timeout_seconds = kDefaultModuleTimeoutSeconds;
    bool use_first_pass = false;
    bool try_first_pass = false;
    bool combined = false;        /* prompt=combined */
    bool factor_password = true;  /* factors= */
    bool factor_totp = true;
    bool debug = false;
    bool pass_unknown = false;    /* users wardend does not know go on to the next module uncounted */
};

/* Result of parsing: kOk, or the index of the argument that is invalid. */
struct ArgsError {
    int index = -1;        /* -1: no error */
    const char *reason = nullptr;
};

/* Calls for each argument that is not recognised; it is ignored. */
using UnknownArgumentFn = void (*)(void *context, const char *argument);

/* Parses argv into ret_args. Unknown arguments are reported through
 * on_unknown and ignored; an invalid value, a repeated key or an oversized
 * argument is an error, so the module fails closed on a broken stack line. */
ArgsError parse_args(int argc, const char **argv, Args &ret_args, UnknownArgumentFn on_unknown, void *context);

} // namespace warden::module
