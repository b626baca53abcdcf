/* Limits shared by pam_warden.so, wardend and wardenctl. Each bound is a
 * defence: an attacker controls every string that crosses the socket. */
#pragma once

#include <cstddef>
#include <cstdint>

namespace warden {

/* Largest frame on the wire, header included. */
inline constexpr std::size_t kMaxFrameSize = 4096;

/* PAM_MAX_RESP_SIZE: the longest reply a PAM conversation may carry. A
 * longer password or code is a failed attempt, never truncated. */
inline constexpr std::size_t kMaxSecretSize = 512;

/* The module forwards at most one byte more than kMaxSecretSize, so the
 * daemon can tell an oversized answer from one at the limit. */
inline constexpr std::size_t kMaxWireSecretSize = kMaxSecretSize + 1;

/* useradd's default limit on a user name. */
inline constexpr std::size_t kMaxUserNameSize = 32;

/* Wire limits for the strings the module copies from the PAM handle. */
inline constexpr std::size_t kMaxWireUserSize = 256;
inline constexpr std::size_t kMaxServiceSize = 128;
inline constexpr std::size_t kMaxRhostSize = 255;
inline constexpr std::size_t kMaxTtySize = 128;
inline constexpr std::size_t kMaxPromptTextSize = 512;

/* Prompts in one conversation: password, code and a spare for
 * password changes (current, new, retype). */
inline constexpr int kMaxPromptsPerConversation = 4;

/* Default wait of the module for each daemon reply, in seconds. */
inline constexpr int kDefaultModuleTimeoutSeconds = 15;
inline constexpr int kMaxModuleTimeoutSeconds = 3600;

} // namespace warden
