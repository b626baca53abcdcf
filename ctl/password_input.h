/* Reading passwords and other secrets from the terminal with echo off, or
 * as one line from standard input. */
#pragma once

#include "daemon/secret.h"

#include <string>

namespace warden::ctl {

/* Reads the new password from standard input (one line, one trailing
 * newline stripped) or from the terminal, where it is asked twice. Fails,
 * with action in the message, when the two entries differ or the password
 * is longer than a PAM conversation carries. */
SecretBuffer read_new_password(bool from_stdin, const std::string &action);

/* Reads a base32 TOTP secret as typed, without decoding it: one line from
 * standard input (one trailing newline stripped), or asked once on the
 * terminal, because a typing error shows up when the factor is confirmed. */
SecretBuffer read_totp_secret_text(bool from_stdin, const std::string &action);

} // namespace warden::ctl
