#include "protocol/wire.h"

#include "protocol/limits.h"

#include <algorithm>
#include <cstring>

namespace warden::wire {
namespace {

enum class Kind { kString, kSecret, kU32, kU8 };

struct FieldRule {
    Kind kind;
    std::size_t max_size;
    bool allow_empty;
};

/* Indexed by tag. Tag 0 is unused. */
constexpr FieldRule kFieldRules[kFieldCount] = {
    {Kind::kString, 0, false},                  /* 0: invalid */
    {Kind::kString, kMaxServiceSize, false},    /* service */
    {Kind::kString, kMaxWireUserSize, false},   /* user */
    {Kind::kString, kMaxRhostSize, true},       /* rhost */
    {Kind::kString, kMaxWireUserSize, true},    /* ruser */
    {Kind::kString, kMaxTtySize, true},         /* tty */
    {Kind::kSecret, kMaxWireSecretSize, true},  /* authtok */
    {Kind::kSecret, kMaxWireSecretSize, true},  /* old authtok */
    {Kind::kU32, 4, false},                     /* flags */
    {Kind::kU8, 1, false},                      /* style */
    {Kind::kString, kMaxPromptTextSize, true},  /* text */
    {Kind::kSecret, kMaxWireSecretSize, true},  /* answer */
    {Kind::kU32, 4, false},                     /* status */
    {Kind::kString, kMaxPromptTextSize, true},  /* message */
    {Kind::kU32, 4, false},                     /* caller uid */
};

constexpr std::uint32_t bit(FieldTag tag) { return 1u << static_cast<int>(tag); }

struct TypeRule {
    FrameType type;
    std::uint32_t required;
    std::uint32_t optional;
};

constexpr std::uint32_t kContext =
        bit(FieldTag::kRhost) | bit(FieldTag::kRuser) | bit(FieldTag::kTty) | bit(FieldTag::kCallerUid);

constexpr TypeRule kTypeRules[] = {
    {FrameType::kAuthenticate, bit(FieldTag::kService) | bit(FieldTag::kUser) | bit(FieldTag::kFlags),
     kContext | bit(FieldTag::kAuthtok)},
    {FrameType::kAccount, bit(FieldTag::kService) | bit(FieldTag::kUser) | bit(FieldTag::kFlags),
     kContext},
    {FrameType::kChangePassword, bit(FieldTag::kService) | bit(FieldTag::kUser) | bit(FieldTag::kFlags),
     kContext | bit(FieldTag::kAuthtok) | bit(FieldTag::kOldAuthtok)},
    {FrameType::kOpenSession, bit(FieldTag::kService) | bit(FieldTag::kUser) | bit(FieldTag::kFlags),
     kContext},
    {FrameType::kCloseSession, bit(FieldTag::kService) | bit(FieldTag::kUser) | bit(FieldTag::kFlags),
     kContext},
    {FrameType::kPrompt, bit(FieldTag::kStyle) | bit(FieldTag::kText), bit(FieldTag::kFlags)},
    {FrameType::kAnswer, bit(FieldTag::kAnswer), 0},
    {FrameType::kResult, bit(FieldTag::kStatus), bit(FieldTag::kMessage)},
};

const TypeRule *find_type_rule(std::uint8_t type) noexcept {
    for (const TypeRule &rule : kTypeRules) {
        if (static_cast<std::uint8_t>(rule.type) == type)
            return &rule;
    }
    return nullptr;
}

std::uint32_t read_be32(const char *p) noexcept {
    auto b = reinterpret_cast<const unsigned char *>(p);
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
           std::uint32_t{b[3]};
}

bool fail(DecodeError error, DecodeError &ret_error) noexcept {
    ret_error = error;
    return false;
}

} // namespace

const char *decode_error_string(DecodeError error) noexcept {
    switch (error) {
    case DecodeError::kNone: return "no error";
    case DecodeError::kTooShort: return "frame shorter than its header";
    case DecodeError::kTooLong: return "frame longer than 4096 bytes";
    case DecodeError::kBadVersion: return "unknown protocol version";
    case DecodeError::kUnknownType: return "unknown frame type";
    case DecodeError::kTruncatedField: return "field length exceeds the bytes received";
    case DecodeError::kUnknownField: return "unknown field tag";
    case DecodeError::kRepeatedField: return "repeated field";
    case DecodeError::kFieldNotAllowed: return "field not allowed in this frame type";
    case DecodeError::kMissingField: return "required field missing";
    case DecodeError::kFieldTooLong: return "field longer than its limit";
    case DecodeError::kEmptyField: return "empty field where a value is required";
    case DecodeError::kNulInField: return "NUL byte inside a field";
    case DecodeError::kBadInteger: return "integer field of the wrong width";
    case DecodeError::kUnknownFlags: return "unknown request flag bits";
    case DecodeError::kBadStyle: return "unknown prompt style";
    }
    return "unknown decode error";
}

std::uint32_t Frame::get_u32(FieldTag tag) const noexcept {
    std::string_view v = get(tag);
    return v.size() == 4 ? read_be32(v.data()) : 0;
}

std::uint8_t Frame::get_u8(FieldTag tag) const noexcept {
    std::string_view v = get(tag);
    return v.size() == 1 ? static_cast<std::uint8_t>(v[0]) : 0;
}

bool decode(std::span<const std::byte> data, Frame &ret_frame, DecodeError &ret_error) noexcept {
    Frame frame;
    ret_error = DecodeError::kNone;

    if (data.size() < kHeaderSize)
        return fail(DecodeError::kTooShort, ret_error);
    if (data.size() > kMaxFrameSize)
        return fail(DecodeError::kTooLong, ret_error);

    const char *base = reinterpret_cast<const char *>(data.data());
    if (static_cast<std::uint8_t>(base[0]) != kProtocolVersion)
        return fail(DecodeError::kBadVersion, ret_error);

    const TypeRule *type_rule = find_type_rule(static_cast<std::uint8_t>(base[1]));
    if (!type_rule)
        return fail(DecodeError::kUnknownType, ret_error);
    frame.type = type_rule->type;

    std::size_t offset = kHeaderSize;
    while (offset < data.size()) {
        /* Only the bytes actually received count; a length is trusted
         * after it has been checked against them. */
        if (data.size() - offset < kFieldHeaderSize)
            return fail(DecodeError::kTruncatedField, ret_error);
        auto tag = static_cast<std::uint8_t>(base[offset]);
        std::size_t length = (std::size_t{static_cast<std::uint8_t>(base[offset + 1])} << 8) |
                             std::size_t{static_cast<std::uint8_t>(base[offset + 2])};
        offset += kFieldHeaderSize;
        if (length > data.size() - offset)
            return fail(DecodeError::kTruncatedField, ret_error);

        if (tag == 0 || tag >= kFieldCount)
            return fail(DecodeError::kUnknownField, ret_error);
        std::uint32_t tag_bit = 1u << tag;
        if (!((type_rule->required | type_rule->optional) & tag_bit))
            return fail(DecodeError::kFieldNotAllowed, ret_error);
        if (frame.present & tag_bit)
            return fail(DecodeError::kRepeatedField, ret_error);

        const FieldRule &rule = kFieldRules[tag];
        std::string_view value(base + offset, length);
        switch (rule.kind) {
        case Kind::kU32:
        case Kind::kU8:
            if (length != rule.max_size)
                return fail(DecodeError::kBadInteger, ret_error);
            break;
        case Kind::kString:
        case Kind::kSecret:
            if (length > rule.max_size)
                return fail(DecodeError::kFieldTooLong, ret_error);
            if (length == 0 && !rule.allow_empty)
                return fail(DecodeError::kEmptyField, ret_error);
            if (std::memchr(value.data(), '\0', value.size()))
                return fail(DecodeError::kNulInField, ret_error);
            break;
        }

        frame.present |= tag_bit;
        frame.fields[tag] = value;
        offset += length;
    }

    if ((frame.present & type_rule->required) != type_rule->required)
        return fail(DecodeError::kMissingField, ret_error);
    if (frame.has(FieldTag::kFlags)) {
        std::uint32_t known = frame.type == FrameType::kPrompt ? std::uint32_t{kPromptIsPassword} : kFlagKnownMask;
        if (frame.get_u32(FieldTag::kFlags) & ~known)
            return fail(DecodeError::kUnknownFlags, ret_error);
    }
    if (frame.has(FieldTag::kStyle)) {
        std::uint8_t style = frame.get_u8(FieldTag::kStyle);
        if (style < static_cast<std::uint8_t>(PromptStyle::kEchoOff) ||
            style > static_cast<std::uint8_t>(PromptStyle::kTextInfo))
            return fail(DecodeError::kBadStyle, ret_error);
    }

    ret_frame = frame;
    return true;
}

FrameBuilder::FrameBuilder(FrameType type, std::span<std::byte> buffer) noexcept : buffer_(buffer) {
    if (buffer_.size() < kHeaderSize) {
        failed_ = true;
        return;
    }
    buffer_[0] = std::byte{kProtocolVersion};
    buffer_[1] = static_cast<std::byte>(type);
    size_ = kHeaderSize;
}

bool FrameBuilder::add(FieldTag tag, std::string_view value) noexcept {
    std::size_t limit = std::min(buffer_.size(), kMaxFrameSize);
    if (failed_ || value.size() > 0xffff || size_ + kFieldHeaderSize + value.size() > limit) {
        failed_ = true;
        return false;
    }
    buffer_[size_] = static_cast<std::byte>(tag);
    buffer_[size_ + 1] = static_cast<std::byte>(value.size() >> 8);
    buffer_[size_ + 2] = static_cast<std::byte>(value.size() & 0xff);
    if (!value.empty())
        std::memcpy(buffer_.data() + size_ + kFieldHeaderSize, value.data(), value.size());
    size_ += kFieldHeaderSize + value.size();
    return true;
}

bool FrameBuilder::add_u32(FieldTag tag, std::uint32_t value) noexcept {
    char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                     static_cast<char>(value >> 8), static_cast<char>(value)};
    return add(tag, std::string_view(bytes, sizeof bytes));
}

bool FrameBuilder::add_u8(FieldTag tag, std::uint8_t value) noexcept {
    char byte = static_cast<char>(value);
    return add(tag, std::string_view(&byte, 1));
}

std::span<const std::byte> FrameBuilder::finish() const noexcept {
    if (failed_)
        return {};
    return buffer_.first(size_);
}

} // namespace warden::wire
