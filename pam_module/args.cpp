#include "pam_module/args.h"

#include <cstring>

namespace warden::module {
namespace {

bool starts_with(const char *s, const char *prefix) { return std::strncmp(s, prefix, std::strlen(prefix)) == 0; }

/* Strict decimal seconds: digits only, 1..kMaxModuleTimeoutSeconds. */
bool parse_timeout(const char *text, int &ret) {
    if (!*text)
        return false;
    long value = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        value = value * 10 + (*p - '0');
        if (value > kMaxModuleTimeoutSeconds)
            return false;
    }
    if (value < 1)
        return false;
    ret = static_cast<int>(value);
    return true;
}

bool parse_factors(const char *text, Args &args) {
    bool password = false;
    bool totp = false;
    const char *p = text;
    while (*p) {
        const char *end = std::strchr(p, ',');
        std::size_t n = end ? static_cast<std::size_t>(end - p) : std::strlen(p);
        if (n == 8 && !std::strncmp(p, "password", 8))
            password = true;
        else if (n == 4 && !std::strncmp(p, "totp", 4))
            totp = true;
        else
            return false;
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return false;
    }
    if (!password && !totp)
        return false;
    args.factor_password = password;
    args.factor_totp = totp;
    return true;
}

} // namespace

ArgsError parse_args(int argc, const char **argv, Args &ret_args, UnknownArgumentFn on_unknown, void *context) {
    Args args;
    enum { kSocket, kTimeout, kPrompt, kFactors, kUseFirst, kTryFirst, kDebug, kPassUnknown, kCount };
    bool seen[kCount] = {};
    auto once = [&](int key) {
        if (seen[key])
            return false;
        seen[key] = true;
        return true;
    };

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!a)
            continue;
        if (std::strlen(a) > kMaxArgumentSize)
            return {i, "argument longer than 1024 bytes"};
        if (starts_with(a, "socket=")) {
            if (!once(kSocket))
                return {i, "given more than once"};
            const char *path = a + 7;
            if (path[0] != '/' || std::strlen(path) > 107)
                return {i, "expected an absolute path of at most 107 bytes"};
            args.socket = path;
        } else if (starts_with(a, "timeout=")) {
            if (!once(kTimeout))
                return {i, "given more than once"};
            if (!parse_timeout(a + 8, args.timeout_seconds))
                return {i, "expected whole seconds from 1 to 3600"};
        } else if (starts_with(a, "prompt=")) {
            if (!once(kPrompt))
                return {i, "given more than once"};
            if (!std::strcmp(a + 7, "separate"))
                args.combined = false;
            else if (!std::strcmp(a + 7, "combined"))
                args.combined = true;
            else
                return {i, "expected separate or combined"};
        } else if (starts_with(a, "factors=")) {
            if (!once(kFactors))
                return {i, "given more than once"};
            if (!parse_factors(a + 8, args))
                return {i, "expected password, totp or password,totp"};
        } else if (!std::strcmp(a, "use_first_pass")) {
            if (!once(kUseFirst))
                return {i, "given more than once"};
            args.use_first_pass = true;
        } else if (!std::strcmp(a, "try_first_pass")) {
            if (!once(kTryFirst))
                return {i, "given more than once"};
            args.try_first_pass = true;
        } else if (!std::strcmp(a, "debug")) {
            args.debug = true;
        } else if (!std::strcmp(a, "pass_unknown")) {
            if (!once(kPassUnknown))
                return {i, "given more than once"};
            args.pass_unknown = true;
        } else if (on_unknown) {
            on_unknown(context, a);
        }
    }
    if (args.use_first_pass && args.try_first_pass)
        return {argc - 1, "use_first_pass and try_first_pass exclude each other"};
    ret_args = args;
    return {};
}

} // namespace warden::module
