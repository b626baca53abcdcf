/* Wire format between pam_warden.so and wardend.
 *
 * One SOCK_SEQPACKET message carries one frame of at most kMaxFrameSize bytes:
 *
 *     offset 0   u8   protocol version (kProtocolVersion)
 *     offset 1   u8   frame type (FrameType)
 *     offset 2   fields, each:
 *                u8   field tag (FieldTag)
 *                u16  length of the value, big-endian
 *                ...  value bytes
 *
 * Each frame type has a fixed set of required and optional fields. The
 * decoder rejects a frame that is short or long, has an unknown version,
 * type or tag, repeats a field, lacks a required one, carries a field that
 * the type does not allow, exceeds a field's limit, or puts a NUL into a
 * field. Integer fields are big-endian and of exact width.
 *
 * This file links no crypto and allocates nothing, so the PAM module can use it.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace warden::wire {

inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::size_t kHeaderSize = 2;
inline constexpr std::size_t kFieldHeaderSize = 3;

enum class FrameType : std::uint8_t {
    kAuthenticate = 0x01,  /* module -> daemon: start an authentication */
    kAccount = 0x02,       /* module -> daemon: account management */
    kChangePassword = 0x03, /* module -> daemon: chauthtok */
    kOpenSession = 0x04,
    kCloseSession = 0x05,
    kPrompt = 0x10,        /* daemon -> module: show text, maybe read an answer */
    kAnswer = 0x11,        /* module -> daemon: the user's reply to a prompt */
    kResult = 0x12,        /* daemon -> module: final PAM code, ends the conversation */
};

enum class FieldTag : std::uint8_t {
    kService = 1,
    kUser = 2,
    kRhost = 3,
    kRuser = 4,
    kTty = 5,
    kAuthtok = 6,     /* password the stack already holds */
    kOldAuthtok = 7,  /* current password during a change */
    kFlags = 8,       /* u32, RequestFlag bits */
    kStyle = 9,       /* u8, PromptStyle */
    kText = 10,       /* prompt or message text */
    kAnswer = 11,     /* conversation reply */
    kStatus = 12,     /* u32, a PAM return code */
    kMessage = 13,    /* user-facing text sent with a result */
    kCallerUid = 14,  /* u32, the real uid of the program that called PAM (su, sudo) */
};
inline constexpr int kFieldCount = 15; /* tags are 1..kFieldCount-1 */

/* Bits of kFlags in requests. */
enum RequestFlag : std::uint32_t {
    kFlagPromptCombined = 1u << 0,  /* one prompt: password followed by code */
    kFlagFactorPassword = 1u << 1,  /* check the password */
    kFlagFactorTotp = 1u << 2,      /* check the second factor */
    kFlagPrelimCheck = 1u << 3,     /* chauthtok PAM_PRELIM_CHECK pass */
    kFlagRequireOld = 1u << 4,      /* caller's real uid is not root */
    kFlagSilent = 1u << 5,          /* PAM_SILENT: send no informational text */
    kFlagAuthtokOnly = 1u << 6,     /* use_first_pass: never prompt for the password */
    kFlagPassUnknown = 1u << 7,     /* pass_unknown: an unknown user is no failure here */
    kFlagKnownMask = (1u << 8) - 1,
};

/* Bits of kFlags in a kPrompt. */
enum PromptFlag : std::uint32_t {
    kPromptIsPassword = 1u << 0, /* the answer is the password, so the module may set PAM_AUTHTOK */
};

/* Display style of a kPrompt. */
enum class PromptStyle : std::uint8_t {
    kEchoOff = 1,
    kEchoOn = 2,
    kErrorMessage = 3, /* shown, no answer expected */
    kTextInfo = 4,     /* shown, no answer expected */
};

enum class DecodeError {
    kNone = 0,
    kTooShort,
    kTooLong,
    kBadVersion,
    kUnknownType,
    kTruncatedField,
    kUnknownField,
    kRepeatedField,
    kFieldNotAllowed,
    kMissingField,
    kFieldTooLong,
    kEmptyField,
    kNulInField,
    kBadInteger,
    kUnknownFlags,
    kBadStyle,
};

/* Returns a short English description of a decode error for logs. */
const char *decode_error_string(DecodeError error) noexcept;

/* A decoded frame. Views point into the buffer that was decoded and are
 * valid only while that buffer is. */
struct Frame {
    FrameType type{};
    std::uint32_t present = 0; /* bit n set when field tag n was present */
    std::string_view fields[kFieldCount];

    bool has(FieldTag tag) const noexcept { return present & (1u << static_cast<int>(tag)); }
    std::string_view get(FieldTag tag) const noexcept { return fields[static_cast<int>(tag)]; }
    std::uint32_t get_u32(FieldTag tag) const noexcept;
    std::uint8_t get_u8(FieldTag tag) const noexcept;
};

/* Decodes one frame. On failure ret_error gives the reason and the frame is unusable. */
bool decode(std::span<const std::byte> data, Frame &ret_frame, DecodeError &ret_error) noexcept;

/* Builds a frame into a caller-provided buffer of kMaxFrameSize bytes.
 * Every add_* returns false once the buffer would overflow; the builder
 * then stays failed, so callers may check only finish(). */
class FrameBuilder {
public:
    FrameBuilder(FrameType type, std::span<std::byte> buffer) noexcept;

    bool add(FieldTag tag, std::string_view value) noexcept;
    bool add_u32(FieldTag tag, std::uint32_t value) noexcept;
    bool add_u8(FieldTag tag, std::uint8_t value) noexcept;

    /* Returns the encoded frame, or an empty span when any add failed. */
    std::span<const std::byte> finish() const noexcept;

private:
    std::span<std::byte> buffer_;
    std::size_t size_ = 0;
    bool failed_ = false;
};

} // namespace warden::wire
