#include "pam_module/client.h"

#include "protocol/limits.h"
#include "protocol/transport.h"
#include "protocol/unique_fd.h"

#include <poll.h>
#include <time.h>
#include <security/pam_ext.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace warden::module {
namespace {

/* A stack buffer that is wiped when it goes out of scope. */
template <std::size_t N> struct WipedBuffer {
    std::byte bytes[N];
    ~WipedBuffer() { explicit_bzero(bytes, sizeof bytes); }
};

/* Connects to the daemon's socket, waiting at most timeout_ms when its
 * backlog is full. Returns an invalid fd and logs on failure. */
UniqueFd connect_daemon(pam_handle_t *pamh, const char *path, int timeout_ms) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        pam_syslog(pamh, LOG_ERR, "Failed to create a socket: %m");
        return fd;
    }
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::size_t length = std::strlen(path);
    if (length >= sizeof addr.sun_path) {
        pam_syslog(pamh, LOG_ERR, "Socket path '%s' is too long", path);
        return UniqueFd();
    }
    std::memcpy(addr.sun_path, path, length + 1);
    /* A UNIX socket whose backlog is full answers EAGAIN and never
     * completes the connect later, so try again until the timeout. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (::connect(fd.get(), reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) == 0)
            return fd;
        if (errno != EAGAIN && errno != EINTR) {
            pam_syslog(pamh, LOG_ERR, "Failed to connect to wardend at '%s': %m", path);
            return UniqueFd();
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long waited = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (waited >= timeout_ms) {
            pam_syslog(pamh, LOG_ERR, "Failed to connect to wardend at '%s': timed out with its queue full", path);
            return UniqueFd();
        }
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, nullptr);
    }
}

/* Checks that the daemon end of the socket belongs to root, or to the
 * user this process runs as: anything else listening on the path could
 * answer "success" for any user. */
bool daemon_is_trusted(pam_handle_t *pamh, int fd, const char *path) {
    struct ucred peer = {};
    socklen_t size = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) < 0) {
        pam_syslog(pamh, LOG_ERR, "Failed to read the credentials of '%s': %m", path);
        return false;
    }
    if (peer.uid == 0 || peer.uid == geteuid())
        return true;
    pam_syslog(pamh, LOG_CRIT, "The process behind '%s' runs as uid %u, not root; refusing to trust it", path,
               static_cast<unsigned>(peer.uid));
    return false;
}

/* Shows one message through the application's conversation function and
 * returns its reply in ret_reply (malloc'd, caller wipes and frees). */
int converse(pam_handle_t *pamh, int style, const char *text, char **ret_reply) {
    const struct pam_conv *conv = nullptr;
    int r = pam_get_item(pamh, PAM_CONV, reinterpret_cast<const void **>(&conv));
    if (r != PAM_SUCCESS || !conv || !conv->conv)
        return PAM_CONV_ERR;
    struct pam_message message = {style, text};
    const struct pam_message *messages[1] = {&message};
    struct pam_response *responses = nullptr;
    r = conv->conv(1, messages, &responses, conv->appdata_ptr);
    char *reply = nullptr;
    if (responses) {
        reply = responses[0].resp;
        std::free(responses);
    }
    if (r != PAM_SUCCESS) {
        if (reply) {
            explicit_bzero(reply, std::strlen(reply));
            std::free(reply);
        }
        return PAM_CONV_ERR;
    }
    *ret_reply = reply;
    return PAM_SUCCESS;
}

int pam_style(wire::PromptStyle style) {
    switch (style) {
    case wire::PromptStyle::kEchoOn: return PAM_PROMPT_ECHO_ON;
    case wire::PromptStyle::kErrorMessage: return PAM_ERROR_MSG;
    case wire::PromptStyle::kTextInfo: return PAM_TEXT_INFO;
    case wire::PromptStyle::kEchoOff: break;
    }
    return PAM_PROMPT_ECHO_OFF;
}

/* Codes the daemon may end a conversation with; anything else is treated
 * as a broken daemon. */
bool is_expected_result(int status) {
    switch (status) {
    case PAM_SUCCESS:
    case PAM_AUTH_ERR:
    case PAM_USER_UNKNOWN:
    case PAM_AUTHINFO_UNAVAIL:
    case PAM_PERM_DENIED:
    case PAM_SERVICE_ERR:
    case PAM_AUTHTOK_ERR:
    case PAM_ACCT_EXPIRED:
    case PAM_MAXTRIES:
    case PAM_CRED_INSUFFICIENT:
        return true;
    default:
        return false;
    }
}

bool add_item(pam_handle_t *pamh, wire::FrameBuilder &builder, int item, wire::FieldTag tag, std::size_t limit) {
    const void *value = nullptr;
    if (pam_get_item(pamh, item, &value) != PAM_SUCCESS || !value)
        return true;
    const char *text = static_cast<const char *>(value);
    std::size_t length = strnlen(text, limit + 1);
    if (length > limit)
        length = limit; /* context strings are informational; cut, never refuse */
    return builder.add(tag, std::string_view(text, length));
}

/* Holds the password reply until the result is known, then wipes it. */
struct PendingPassword {
    char *value = nullptr;
    ~PendingPassword() { reset(); }
    void reset() {
        if (value) {
            explicit_bzero(value, std::strlen(value));
            std::free(value);
            value = nullptr;
        }
    }
};

} // namespace

int run_request(pam_handle_t *pamh, const Args &args, const Request &request, bool set_authtok) {
    const int timeout_ms = args.timeout_seconds * 1000;
    const char *user = nullptr;
    int r = pam_get_item(pamh, PAM_USER, reinterpret_cast<const void **>(&user));
    if (r != PAM_SUCCESS || !user || !*user)
        return PAM_USER_UNKNOWN;
    const char *service = nullptr;
    if (pam_get_item(pamh, PAM_SERVICE, reinterpret_cast<const void **>(&service)) != PAM_SUCCESS || !service ||
        !*service)
        service = "unknown";

    WipedBuffer<kMaxFrameSize> out;
    wire::FrameBuilder builder(request.type, out.bytes);
    std::size_t user_length = strnlen(user, kMaxWireUserSize + 1);
    if (user_length > kMaxWireUserSize) {
        pam_syslog(pamh, LOG_NOTICE, "User name longer than %zu bytes, refusing", kMaxWireUserSize);
        return PAM_USER_UNKNOWN;
    }
    builder.add(wire::FieldTag::kService, std::string_view(service, strnlen(service, kMaxServiceSize)));
    builder.add(wire::FieldTag::kUser, std::string_view(user, user_length));
    builder.add_u32(wire::FieldTag::kFlags, request.flags);
    add_item(pamh, builder, PAM_RHOST, wire::FieldTag::kRhost, kMaxRhostSize);
    add_item(pamh, builder, PAM_RUSER, wire::FieldTag::kRuser, kMaxWireUserSize);
    add_item(pamh, builder, PAM_TTY, wire::FieldTag::kTty, kMaxTtySize);
    /* A set-uid program such as su or sudo reaches the daemon as root. Its
     * real uid identifies the user who is guessing, for that user's rate limit. */
    builder.add_u32(wire::FieldTag::kCallerUid, static_cast<std::uint32_t>(getuid()));
    /* An oversized password is cut to one byte past the limit, which the
     * daemon counts as a failed attempt, never as a shorter password. */
    if (request.authtok)
        builder.add(wire::FieldTag::kAuthtok,
                    std::string_view(request.authtok, strnlen(request.authtok, kMaxWireSecretSize)));
    if (request.old_authtok)
        builder.add(wire::FieldTag::kOldAuthtok,
                    std::string_view(request.old_authtok, strnlen(request.old_authtok, kMaxWireSecretSize)));
    std::span<const std::byte> frame = builder.finish();
    if (frame.empty()) {
        pam_syslog(pamh, LOG_ERR, "Failed to encode the request: it exceeds %zu bytes", kMaxFrameSize);
        return PAM_SERVICE_ERR;
    }

    UniqueFd fd = connect_daemon(pamh, args.socket, timeout_ms);
    if (!fd || !daemon_is_trusted(pamh, fd.get(), args.socket))
        return PAM_AUTHINFO_UNAVAIL;
    transport::Status status = transport::send_frame(fd.get(), frame, timeout_ms);
    if (status != transport::Status::kOk) {
        pam_syslog(pamh, LOG_ERR, "Failed to send the request to wardend: %s", transport::status_string(status));
        return PAM_AUTHINFO_UNAVAIL;
    }

    PendingPassword password;
    WipedBuffer<kMaxFrameSize> in;
    int answered = 0;
    for (int rounds = 0; rounds < 2 * kMaxPromptsPerConversation + 4; rounds++) {
        std::size_t size = 0;
        status = transport::receive_frame(fd.get(), in.bytes, timeout_ms, size);
        if (status != transport::Status::kOk) {
            pam_syslog(pamh, LOG_ERR, "Failed to read from wardend: %s", transport::status_string(status));
            return PAM_AUTHINFO_UNAVAIL;
        }
        wire::Frame reply;
        wire::DecodeError error;
        if (!wire::decode(std::span<const std::byte>(in.bytes, size), reply, error)) {
            pam_syslog(pamh, LOG_ERR, "Failed to decode a frame from wardend: %s", wire::decode_error_string(error));
            return PAM_AUTHINFO_UNAVAIL;
        }

        if (reply.type == wire::FrameType::kResult) {
            int result = static_cast<int>(reply.get_u32(wire::FieldTag::kStatus));
            if (!is_expected_result(result)) {
                pam_syslog(pamh, LOG_ERR, "wardend sent an unexpected result code %d", result);
                return PAM_AUTHINFO_UNAVAIL;
            }
            std::string_view message = reply.get(wire::FieldTag::kMessage);
            if (!message.empty() && result != PAM_SUCCESS) {
                char text[kMaxPromptTextSize + 1];
                std::memcpy(text, message.data(), message.size());
                text[message.size()] = '\0';
                char *ignored = nullptr;
                if (converse(pamh, PAM_ERROR_MSG, text, &ignored) == PAM_SUCCESS && ignored)
                    std::free(ignored);
            }
            /* The password typed at the daemon's prompt becomes PAM_AUTHTOK:
             * after a success for modules that reuse it, and for a user
             * Warden does not know so that pam_unix try_first_pass can
             * check it without asking again. It replaces a stacked token,
             * which the daemon's prompt shows was not the one that counted. */
            if ((result == PAM_SUCCESS || result == PAM_USER_UNKNOWN) && set_authtok && password.value)
                (void)pam_set_item(pamh, PAM_AUTHTOK, password.value);
            return result;
        }
        if (reply.type != wire::FrameType::kPrompt) {
            pam_syslog(pamh, LOG_ERR, "wardend sent an unexpected frame type %d", static_cast<int>(reply.type));
            return PAM_AUTHINFO_UNAVAIL;
        }

        auto style = static_cast<wire::PromptStyle>(reply.get_u8(wire::FieldTag::kStyle));
        std::string_view prompt = reply.get(wire::FieldTag::kText);
        char text[kMaxPromptTextSize + 1];
        std::memcpy(text, prompt.data(), prompt.size());
        text[prompt.size()] = '\0';
        bool informational = style == wire::PromptStyle::kErrorMessage || style == wire::PromptStyle::kTextInfo;
        if (!informational && ++answered > kMaxPromptsPerConversation)
            break;
        char *answer = nullptr;
        r = converse(pamh, pam_style(style), text, &answer);
        if (informational) {
            if (answer) {
                explicit_bzero(answer, std::strlen(answer));
                std::free(answer);
            }
            continue; /* informational: no answer goes back */
        }
        if (r != PAM_SUCCESS) {
            pam_syslog(pamh, LOG_ERR, "The application's conversation failed");
            return PAM_CONV_ERR;
        }

        const char *value = answer ? answer : "";
        WipedBuffer<kMaxFrameSize> answer_frame;
        wire::FrameBuilder answer_builder(wire::FrameType::kAnswer, answer_frame.bytes);
        answer_builder.add(wire::FieldTag::kAnswer, std::string_view(value, strnlen(value, kMaxWireSecretSize)));
        std::span<const std::byte> encoded = answer_builder.finish();
        bool is_password = reply.get_u32(wire::FieldTag::kFlags) & wire::kPromptIsPassword;
        if (is_password && answer) {
            password.reset();
            password.value = answer;
        } else if (answer) {
            explicit_bzero(answer, std::strlen(answer));
            std::free(answer);
        }
        status = transport::send_frame(fd.get(), encoded, timeout_ms);
        if (status != transport::Status::kOk) {
            pam_syslog(pamh, LOG_ERR, "Failed to send an answer to wardend: %s", transport::status_string(status));
            return PAM_AUTHINFO_UNAVAIL;
        }
    }
    pam_syslog(pamh, LOG_ERR, "wardend sent more prompts than a conversation allows");
    return PAM_AUTHINFO_UNAVAIL;
}

} // namespace warden::module
