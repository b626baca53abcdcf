/* wardenctl recovery: single-use recovery codes for a user who has lost
 * the TOTP device.
 *
 * wardenctl makes the codes with libsodium's random generator and sends
 * them once with SetRecoveryCodes. wardend keeps only keyed hashes, so
 * this command's output is the only place the codes are ever shown. */

#include "ctl/admin_client.h"
#include "ctl/command.h"
#include "ctl/json.h"
#include "daemon/secret.h"
#include "protocol/recovery_code.h"

#include <sodium.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace warden::ctl {
namespace {

/* Room for one code and its terminating NUL, which sd-bus needs. */
constexpr std::size_t kCodeSlot = kRecoveryCodeChars + 1;

static_assert(kRecoveryAlphabet.size() == 32, "each character must carry exactly 5 bits");

/* Fills codes with kRecoveryCodeCount NUL-terminated codes of
 * kRecoveryCodeChars characters each, in normalised form. */
void make_recovery_codes(SecretBuffer &codes) {
    for (std::size_t i = 0; i < kRecoveryCodeCount; ++i) {
        char *code = codes.data() + i * kCodeSlot;
        for (std::size_t j = 0; j < kRecoveryCodeChars; ++j)
            code[j] = kRecoveryAlphabet[randombytes_uniform(static_cast<std::uint32_t>(kRecoveryAlphabet.size()))];
        code[kRecoveryCodeChars] = '\0';
    }
    codes.resize(kRecoveryCodeCount * kCodeSlot);
}

std::string_view code_at(const SecretBuffer &codes, std::size_t index) {
    return codes.view().substr(index * kCodeSlot, kRecoveryCodeChars);
}

void send_recovery_codes(AdminClient &client, const std::string &name, const SecretBuffer &codes,
                         const std::string &action) {
    constexpr const char *kMethod = "SetRecoveryCodes";
    MessagePtr call = client.new_secret_call(kMethod);
    check_append(sd_bus_message_append(call.get(), "s", name.c_str()), kMethod);
    check_append(sd_bus_message_open_container(call.get(), 'a', "s"), kMethod);
    for (std::size_t i = 0; i < kRecoveryCodeCount; ++i)
        check_append(sd_bus_message_append_basic(call.get(), 's', codes.data() + i * kCodeSlot), kMethod);
    check_append(sd_bus_message_close_container(call.get()), kMethod);
    client.send(action, call.get());
}

/* Prints {"user": USER, "codes": [...]} with the codes in display form. */
void print_codes_json(const std::string &name, const SecretBuffer &codes) {
    SecretString text;
    /* Each code is quoted and followed by ", ". User names need no escaping. */
    text.str().reserve(64 + 2 * name.size() + kRecoveryCodeCount * (kRecoveryCodeDisplayChars + 4));
    std::string &out = text.str();
    out += '{';
    json::append_string(out, "user");
    out += ": ";
    json::append_string(out, name);
    out += ", ";
    json::append_string(out, "codes");
    out += ": [";
    for (std::size_t i = 0; i < kRecoveryCodeCount; ++i) {
        SecretString shown(format_recovery_code(code_at(codes, i)));
        if (i > 0)
            out += ", ";
        json::append_string(out, shown.str());
    }
    out += "]}\n";
    print_secret(out);
}

void print_codes_text(const std::string &name, const SecretBuffer &codes) {
    SecretString text;
    text.str().reserve(kRecoveryCodeCount * (kRecoveryCodeDisplayChars + 3));
    for (std::size_t i = 0; i < kRecoveryCodeCount; ++i) {
        SecretString shown(format_recovery_code(code_at(codes, i)));
        text.str() += "  ";
        text.str() += shown.str();
        text.str() += '\n';
    }
    std::printf("Recovery codes for user %s:\n\n", quoted(name).c_str());
    print_secret(text.str());
    std::printf("\nThese codes are shown only this once, so store them somewhere safe now. Each code works for\n"
                "one login in place of a TOTP code. Generating new codes makes all of these stop working.\n");
}

} // namespace

void command_recovery_generate(const Invocation &invocation) {
    const std::string &name = user_argument(invocation);
    const std::string action = "generate recovery codes for user " + quoted(name);
    AdminClient client;

    SecretBuffer codes(kRecoveryCodeCount * kCodeSlot);
    make_recovery_codes(codes);
    send_recovery_codes(client, name, codes, action);

    if (invocation.json)
        print_codes_json(name, codes);
    else
        print_codes_text(name, codes);
}

} // namespace warden::ctl
