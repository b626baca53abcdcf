/* wardenctl totp: enroll, import, confirm and remove a user's TOTP factor.
 *
 * Secrets flow only into wardend, which never returns them. wardenctl
 * makes a new secret with libsodium or reads one that the admin already
 * has, sends it once with EnrollTotp and shows it to the admin. The
 * copies that wardenctl keeps (bytes, base32, URI, QR code) are wiped
 * after use, and the bus messages that carry one are marked sensitive. */

#include "ctl/admin_client.h"
#include "ctl/command.h"
#include "ctl/json.h"
#include "ctl/password_input.h"
#include "daemon/secret.h"
#include "daemon/totp.h"

#include <langinfo.h>
#include <qrencode.h>
#include <sodium.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace warden::ctl {
namespace {

/* The parameters that wardend verifies codes with, and the issuer that
 * authenticator apps show next to the account. */
struct TotpPolicy {
    std::uint32_t digits = 0;
    std::uint32_t period = 0;
    std::string issuer;
};

TotpPolicy get_totp_policy(AdminClient &client, const std::string &action) {
    MessagePtr reply = client.call(action, "GetTotpPolicy", nullptr);
    TotpPolicy policy;
    const char *issuer = nullptr;
    check_read(sd_bus_message_read(reply.get(), "uus", &policy.digits, &policy.period, &issuer), "GetTotpPolicy");
    policy.issuer = issuer;
    return policy;
}

std::string factor_exists_message(const std::string &action, const std::string &name) {
    return "Failed to " + action + ": user " + quoted(name) +
           " already has an active TOTP factor. Pass --force to replace it, which disables the current factor "
           "at once";
}

/* Fails before any secret is made or read when name is not enrolled, or
 * has an active factor and --force was not given. wardend checks again
 * when the secret arrives. */
void check_enrollment_allowed(AdminClient &client, const std::string &name, const Invocation &invocation,
                              const std::string &action) {
    MessagePtr reply = client.call(action, "GetUser", "s", name.c_str());
    std::vector<Property> properties = read_properties(reply.get(), "GetUser");
    auto active = std::find_if(properties.begin(), properties.end(), [](const Property &property) {
        const auto *state = std::get_if<std::string>(&property.value);
        return property.key == "totp" && state && *state == "active";
    });
    if (active != properties.end() && !invocation.has(kOptionForce))
        fail(factor_exists_message(action, name), bus::kErrorFactorExists);
}

/* Prints a warning on stderr for the algorithms that some apps lack. */
void warn_about_algorithm(TotpAlgorithm algorithm) {
    if (algorithm == TotpAlgorithm::kSha1)
        return;
    std::fprintf(stderr,
                 "wardenctl: Warning: some authenticator apps support only SHA1 and show codes that do not match "
                 "a %s factor. A code from the app that 'wardenctl totp confirm' accepts shows that the app "
                 "supports it.\n",
                 totp_algorithm_name(algorithm));
}

/* Sends secret to wardend with EnrollTotp, which stores it encrypted as a
 * pending factor and replaces an active one only when force is set. */
void send_secret(AdminClient &client, const std::string &name, const SecretBuffer &secret,
                 const Invocation &invocation, const std::string &action) {
    constexpr const char *kMethod = "EnrollTotp";
    MessagePtr call = client.new_secret_call(kMethod);
    check_append(sd_bus_message_append(call.get(), "s", name.c_str()), kMethod);
    check_append(sd_bus_message_append_array(call.get(), 'y', secret.data(), secret.size()), kMethod);
    int force = invocation.has(kOptionForce) ? 1 : 0;
    check_append(sd_bus_message_append(call.get(), "sb", totp_algorithm_name(invocation.algorithm), force), kMethod);

    BusError error;
    int r = 0;
    if (client.try_send(call.get(), error, r))
        return;
    if (error.has_name(bus::kErrorFactorExists))
        fail(factor_exists_message(action, name), error.name());
    fail("Failed to " + action + ": " + describe_call_error(error, r), error.name());
}

/* Appends value to out and percent-encodes every byte outside the
 * unreserved set of RFC 3986 (A-Z, a-z, 0-9, '-', '.', '_', '~'), so that
 * an issuer or a name cannot add a ':', '?', '&' or '#' to the URI. */
void append_percent_encoded(std::string &out, std::string_view value) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (char c : value) {
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                          c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out += c;
            continue;
        }
        unsigned char byte = static_cast<unsigned char>(c);
        out += '%';
        out += kHex[byte >> 4];
        out += kHex[byte & 0x0F];
    }
}

/* Builds the key URI that authenticator apps read from a QR code:
 * otpauth://totp/ISSUER:NAME?secret=BASE32&issuer=ISSUER&algorithm=...&digits=...&period=...
 * The label repeats the issuer because older apps read it only there. */
void build_otpauth_uri(const TotpPolicy &policy, const std::string &name, std::string_view base32,
                       TotpAlgorithm algorithm, SecretString &ret_uri) {
    std::string &uri = ret_uri.str();
    /* 128 bytes hold the fixed parts and both numbers, and percent-encoding
     * at most triples the issuer, which appears twice, and the name. */
    uri.reserve(128 + 6 * policy.issuer.size() + 3 * name.size() + base32.size());
    uri += "otpauth://totp/";
    append_percent_encoded(uri, policy.issuer);
    uri += ':';
    append_percent_encoded(uri, name);
    uri += "?secret=";
    uri += base32;
    uri += "&issuer=";
    append_percent_encoded(uri, policy.issuer);
    uri += "&algorithm=";
    uri += totp_algorithm_name(algorithm);
    uri += "&digits=";
    uri += std::to_string(policy.digits);
    uri += "&period=";
    uri += std::to_string(policy.period);
}

/* Checks that the base32 text shown to the admin decodes, with the decoder
 * that 'totp import' uses, to exactly the bytes that will be stored. */
void check_round_trip(const SecretBuffer &secret, const SecretString &base32, const std::string &action) {
    SecretBuffer decoded;
    std::string error;
    bool same = decode_base32_secret(base32.str(), decoded, error) && decoded.size() == secret.size() &&
                sodium_memcmp(decoded.data(), secret.data(), secret.size()) == 0;
    if (!same)
        fail("Failed to " + action + ": the base32 form of the new secret does not decode to the same bytes" +
             (error.empty() ? std::string() : " (" + error + ")") + ". Nothing was stored");
}

/* ---- QR code ---- */

/* Frees a QR code after zeroing its modules, which encode the secret. */
struct QrCodeDeleter {
    void operator()(QRcode *code) const noexcept {
        sodium_memzero(code->data, static_cast<std::size_t>(code->width) * static_cast<std::size_t>(code->width));
        QRcode_free(code);
    }
};
using QrCodePtr = std::unique_ptr<QRcode, QrCodeDeleter>;

/* Denso Wave, the inventor of the QR code, requires a light margin (quiet
 * zone) of four modules on every side (denso-wave.com/qrcode/qrgene4-e.html). */
constexpr int kQuietZone = 4;

/* Black on white whatever the terminal's own colours, because a code drawn
 * light on dark is not part of the QR specification and some scanners
 * do not read it. */
constexpr std::string_view kBlackOnWhite = "\033[30;47m";
constexpr std::string_view kBlackBackground = "\033[40m";
constexpr std::string_view kWhiteBackground = "\033[47m";
constexpr std::string_view kResetColours = "\033[0m";

/* UTF-8 of U+2588 FULL BLOCK, U+2580 UPPER HALF BLOCK and U+2584 LOWER HALF BLOCK. */
constexpr std::string_view kFullBlock = "\xE2\x96\x88";
constexpr std::string_view kUpperHalfBlock = "\xE2\x96\x80";
constexpr std::string_view kLowerHalfBlock = "\xE2\x96\x84";

/* Returns whether the module at (x, y), counted from the outer edge of
 * the quiet zone, is dark. The least significant bit of each byte of
 * QRcode::data is set for a dark module. */
bool module_is_dark(const QRcode &code, int x, int y) {
    x -= kQuietZone;
    y -= kQuietZone;
    if (x < 0 || y < 0 || x >= code.width || y >= code.width)
        return false;
    return (code.data[static_cast<std::size_t>(y) * static_cast<std::size_t>(code.width) + static_cast<std::size_t>(x)] &
            1) != 0;
}

/* Draws two rows of modules per line with half blocks: square modules at
 * half the height of the other style. */
void draw_with_half_blocks(const QRcode &code, std::string &out) {
    int size = code.width + 2 * kQuietZone;
    for (int y = 0; y < size; y += 2) {
        out += kBlackOnWhite;
        for (int x = 0; x < size; ++x) {
            bool top = module_is_dark(code, x, y);
            bool bottom = module_is_dark(code, x, y + 1);
            if (top && bottom)
                out += kFullBlock;
            else if (top)
                out += kUpperHalfBlock;
            else if (bottom)
                out += kLowerHalfBlock;
            else
                out += ' ';
        }
        out += kResetColours;
        out += '\n';
    }
}

/* Draws each module as two coloured spaces, for a terminal whose
 * character set has no half blocks. The colour is set only where it changes. */
void draw_with_coloured_spaces(const QRcode &code, std::string &out) {
    int size = code.width + 2 * kQuietZone;
    for (int y = 0; y < size; ++y) {
        for (int x = 0; x < size; ++x) {
            bool dark = module_is_dark(code, x, y);
            if (x == 0 || dark != module_is_dark(code, x - 1, y))
                out += dark ? kBlackBackground : kWhiteBackground;
            out += "  ";
        }
        out += kResetColours;
        out += '\n';
    }
}

/* Returns whether the character set of the user's locale is UTF-8. The
 * locale is restored afterwards, so nothing else changes behaviour. */
bool locale_is_utf8() {
    const char *current = std::setlocale(LC_CTYPE, nullptr);
    std::string saved = current ? current : "C";
    bool utf8 = std::setlocale(LC_CTYPE, "") && std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    std::setlocale(LC_CTYPE, saved.c_str());
    return utf8;
}

/* Returns the width of the terminal on standard output, or 0 when unknown. */
int terminal_columns() {
    struct winsize size {};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) < 0)
        return 0;
    return size.ws_col;
}

/* Draws the QR code of uri on the terminal and returns whether it did.
 * The secret is already stored when this runs, so a failure is only
 * reported: the admin can still type the secret. */
bool draw_qr_code(const SecretString &uri) {
    /* NOTE: libqrencode copies the URI into buffers of its own while it
     * encodes, and frees them without wiping. */
    errno = 0;
    QrCodePtr code(QRcode_encodeString(uri.str().c_str(), /* version= */ 0, QR_ECLEVEL_M, QR_MODE_8,
                                       /* casesensitive= */ 1));
    if (!code) {
        std::fprintf(stderr, "wardenctl: Failed to make the QR code: %s. Type the secret into the app instead.\n",
                     errno ? std::strerror(errno) : "unknown error");
        return false;
    }
    bool half_blocks = locale_is_utf8();
    int size = code->width + 2 * kQuietZone;
    int needed = half_blocks ? size : 2 * size;
    int columns = terminal_columns();
    if (columns > 0 && columns < needed) {
        std::printf("(The QR code needs a terminal %d columns wide, but this one has %d. Type the secret into "
                    "the app instead.)\n",
                    needed, columns);
        return false;
    }

    SecretString text;
    /* Each module takes at most 7 bytes (a colour change and two spaces),
     * and each line ends in a reset and a newline. */
    text.str().reserve(static_cast<std::size_t>(size) * (static_cast<std::size_t>(size) * 7 + 16));
    if (half_blocks)
        draw_with_half_blocks(*code, text.str());
    else
        draw_with_coloured_spaces(*code, text.str());
    print_secret(text.str());
    return true;
}

/* ---- Output ---- */

/* Prints {"secret": "...", "uri": "..."} without leaving a copy of either
 * in memory that is not wiped. */
void print_enrollment_json(const SecretString &base32, const SecretString &uri) {
    SecretString text;
    /* JSON escaping at most sextuples a byte, and base32 and the
     * percent-encoded URI need none. */
    text.str().reserve(64 + 6 * (base32.str().size() + uri.str().size()));
    std::string &out = text.str();
    out += '{';
    json::append_string(out, "secret");
    out += ": ";
    json::append_string(out, base32.str());
    out += ", ";
    json::append_string(out, "uri");
    out += ": ";
    json::append_string(out, uri.str());
    out += "}\n";
    print_secret(out);
}

void print_enrollment_text(const std::string &name, const SecretString &base32, const SecretString &uri) {
    SecretString text;
    text.str().reserve(64 + base32.str().size() + uri.str().size());
    text.str() += "Secret (base32): ";
    text.str() += base32.str();
    text.str() += "\nURI:             ";
    text.str() += uri.str();
    text.str() += "\n";
    print_secret(text.str());
    bool drawn = false;
    if (isatty(STDOUT_FILENO)) {
        std::printf("\n");
        drawn = draw_qr_code(uri);
        std::printf("\n");
    }
    std::printf("The TOTP factor of user %s is pending. Add it to an authenticator app\n"
                "by %s, then activate it with a current code from the app:\n"
                "  wardenctl totp confirm %s CODE\n",
                quoted(name).c_str(), drawn ? "scanning the QR code" : "typing the secret or opening the URI",
                name.c_str());
}

/* Prints text, or with --json {"ok": true, "user": USER, "totp": STATE}
 * and the algorithm when one is given. */
void print_factor_state(const Invocation &invocation, const std::string &name, const char *state,
                        const char *algorithm, const std::string &text) {
    if (!invocation.json) {
        std::printf("%s\n", text.c_str());
        return;
    }
    json::ObjectWriter object;
    object.add("ok", true);
    object.add("user", name);
    object.add("totp", state);
    if (algorithm)
        object.add("algorithm", algorithm);
    print_json(object.finish());
}

std::string pending_note(const std::string &name) {
    return "It stays pending until a current code from the app\nactivates it:\n  wardenctl totp confirm " + name +
           " CODE";
}

} // namespace

void command_totp_enroll(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    const std::string action = "enroll a TOTP factor for user " + quoted(name);
    AdminClient client;
    TotpPolicy policy = get_totp_policy(client, action);
    check_enrollment_allowed(client, name, invocation, action);

    SecretBuffer secret(kTotpSecretBytes);
    randombytes_buf(secret.data(), kTotpSecretBytes);
    secret.resize(kTotpSecretBytes);
    SecretString base32(encode_base32(secret.view()));
    check_round_trip(secret, base32, action);
    SecretString uri;
    build_otpauth_uri(policy, name, base32.str(), invocation.algorithm, uri);

    warn_about_algorithm(invocation.algorithm);
    send_secret(client, name, secret, invocation, action);
    secret = SecretBuffer();

    if (invocation.json)
        print_enrollment_json(base32, uri);
    else
        print_enrollment_text(name, base32, uri);
}

void command_totp_import(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    const std::string action = "import a TOTP secret for user " + quoted(name);
    AdminClient client;
    check_enrollment_allowed(client, name, invocation, action);

    SecretBuffer typed = read_totp_secret_text(invocation.has(kOptionSecretStdin), action);
    if (typed.empty())
        fail("Failed to " + action + ": the secret is empty. Expected base32 (A-Z and 2-7), as the issuer of the "
                                     "secret shows it. Nothing was stored");
    SecretBuffer secret;
    std::string error;
    if (!decode_base32_secret(typed.view(), secret, error))
        fail("Failed to " + action + ": " + error + ". Nothing was stored");
    typed = SecretBuffer();

    warn_about_algorithm(invocation.algorithm);
    send_secret(client, name, secret, invocation, action);
    secret = SecretBuffer();

    const char *algorithm = totp_algorithm_name(invocation.algorithm);
    print_factor_state(invocation, name, "pending", algorithm,
                       "Stored the TOTP secret of user " + quoted(name) + " (" + algorithm + "). " +
                           pending_note(name));
}

void command_totp_confirm(const Invocation &invocation) {
    constexpr const char *kMethod = "ConfirmTotp";
    const std::string &name = user_argument(invocation);
    const std::string action = "confirm the TOTP factor of user " + quoted(name);
    /* Apps often show a code as two groups, "123 456". */
    SecretString code(invocation.arguments.at(1));
    std::string &digits = code.str();
    digits.erase(std::remove(digits.begin(), digits.end(), ' '), digits.end());

    AdminClient client;
    MessagePtr call = client.new_secret_call(kMethod);
    check_append(sd_bus_message_append(call.get(), "ss", name.c_str(), digits.c_str()), kMethod);
    client.send(action, call.get());
    print_factor_state(invocation, name, "active", nullptr, "Activated the TOTP factor of user " + quoted(name) + ".");
}

void command_totp_remove(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    const std::string action = "remove the TOTP factor of user " + quoted(name);
    AdminClient client;
    /* RemoveTotp returns the same error for an unknown user as for a user
     * without a factor, so GetUser first reports an unknown user. */
    client.call(action, "GetUser", "s", name.c_str());
    client.call(action, "RemoveTotp", "s", name.c_str());
    print_factor_state(invocation, name, "none", nullptr, "Removed the TOTP factor of user " + quoted(name) + ".");
}

} // namespace warden::ctl
