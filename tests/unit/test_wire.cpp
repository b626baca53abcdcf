/* Unit tests of the frame decoder and FrameBuilder in protocol/wire.h.
 *
 * Bad frames are assembled byte by byte with RawFrame, so the decoder is
 * checked against the layout in wire.h and not against the builder. */
#include "protocol/limits.h"
#include "protocol/wire.h"

#include <array>
#include <cstring>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

/* Last, because cmocka.h defines macros such as fail and skip. */
#include "tests/unit/unit_test.h"

namespace {

using namespace warden;
using namespace warden::wire;

constexpr std::uint8_t kAuthenticate = static_cast<std::uint8_t>(FrameType::kAuthenticate);
constexpr std::uint8_t kPromptType = static_cast<std::uint8_t>(FrameType::kPrompt);
constexpr std::uint8_t kAnswerType = static_cast<std::uint8_t>(FrameType::kAnswer);
constexpr std::uint8_t kResultType = static_cast<std::uint8_t>(FrameType::kResult);
constexpr std::uint8_t kAccountType = static_cast<std::uint8_t>(FrameType::kAccount);

std::uint8_t tag_byte(FieldTag tag) { return static_cast<std::uint8_t>(tag); }

/* Frame bytes written field by field, including deliberately wrong ones. */
class RawFrame {
public:
    RawFrame(std::uint8_t version, std::uint8_t type) {
        push(version);
        push(type);
    }

    /* A field header that claims length bytes, with no value after it. */
    RawFrame &header(std::uint8_t tag, std::size_t length) {
        push(tag);
        push(static_cast<std::uint8_t>(length >> 8));
        push(static_cast<std::uint8_t>(length & 0xff));
        return *this;
    }

    RawFrame &field(std::uint8_t tag, std::string_view value) {
        header(tag, value.size());
        for (char c : value)
            push(static_cast<std::uint8_t>(c));
        return *this;
    }

    RawFrame &field(FieldTag tag, std::string_view value) { return field(tag_byte(tag), value); }

    RawFrame &u32(FieldTag tag, std::uint32_t value) {
        const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                               static_cast<char>(value >> 8), static_cast<char>(value)};
        return field(tag, std::string_view(bytes, sizeof bytes));
    }

    RawFrame &u8(FieldTag tag, std::uint8_t value) {
        const char byte = static_cast<char>(value);
        return field(tag, std::string_view(&byte, 1));
    }

    RawFrame &bytes(std::initializer_list<std::uint8_t> values) {
        for (std::uint8_t b : values)
            push(b);
        return *this;
    }

    std::span<const std::byte> span() const { return bytes_; }
    std::size_t size() const { return bytes_.size(); }

private:
    void push(std::uint8_t b) { bytes_.push_back(static_cast<std::byte>(b)); }

    std::vector<std::byte> bytes_;
};

constexpr std::uint32_t kBothFactors = kFlagFactorPassword | kFlagFactorTotp;

/* An AUTHENTICATE frame with its required fields, ready for more. */
RawFrame authenticate_frame() {
    RawFrame frame(kProtocolVersion, kAuthenticate);
    frame.field(FieldTag::kService, "sshd").field(FieldTag::kUser, "alice").u32(FieldTag::kFlags, kBothFactors);
    return frame;
}

/* Decodes data and returns the error. Also checks that decode's return
 * value agrees with the error it reports. */
DecodeError decode_error_of(std::span<const std::byte> data) {
    Frame frame;
    DecodeError error = DecodeError::kNone;
    bool ok = decode(data, frame, error);
    assert_int_equal(ok, error == DecodeError::kNone);
    return error;
}

DecodeError decode_error_of(const RawFrame &frame) { return decode_error_of(frame.span()); }

/* Asserts that frame decodes with the expected error. label names the
 * row in table-driven tests. */
void assert_decode_error(const RawFrame &frame, DecodeError expected, const std::string &label = "the frame",
                         std::source_location where = std::source_location::current()) {
    DecodeError actual = decode_error_of(frame);
    if (actual != expected)
        test::fail_at("decoding " + label + ": expected '" + decode_error_string(expected) + "', got '" +
                              decode_error_string(actual) + "'",
                      where);
}

void assert_decodes(const RawFrame &frame, const std::string &label = "the frame",
                    std::source_location where = std::source_location::current()) {
    assert_decode_error(frame, DecodeError::kNone, label, where);
}

std::string repeat(char c, std::size_t count) { return std::string(count, c); }

void assert_view_equal(std::string_view actual, std::string_view expected) {
    assert_int_equal(actual.size(), expected.size());
    assert_memory_equal(actual.data(), expected.data(), expected.size());
}

/* Frames too short or too long for the header check. */

void wire_empty_frame(void **) {
    assert_int_equal(static_cast<int>(decode_error_of(std::span<const std::byte>())),
                     static_cast<int>(DecodeError::kTooShort));
}

void wire_one_byte_frame(void **) {
    const std::byte one[1] = {std::byte{kProtocolVersion}};
    assert_int_equal(static_cast<int>(decode_error_of(one)), static_cast<int>(DecodeError::kTooShort));
}

void wire_frame_over_4096_bytes(void **) {
    /* The size check comes before any field is read. */
    RawFrame frame(kProtocolVersion, kAuthenticate);
    frame.field(FieldTag::kService, repeat('s', kMaxFrameSize + 1 - kHeaderSize - kFieldHeaderSize));
    assert_int_equal(frame.size(), kMaxFrameSize + 1);
    assert_decode_error(frame, DecodeError::kTooLong);
}

void wire_frame_of_4096_bytes_passes_size_check(void **) {
    RawFrame frame(kProtocolVersion, kAuthenticate);
    frame.field(FieldTag::kService, repeat('s', kMaxFrameSize - kHeaderSize - kFieldHeaderSize));
    assert_int_equal(frame.size(), kMaxFrameSize);
    assert_decode_error(frame, DecodeError::kFieldTooLong);
}

void wire_header_only_frame(void **) {
    assert_decode_error(RawFrame(kProtocolVersion, kAuthenticate), DecodeError::kMissingField);
    assert_decode_error(RawFrame(kProtocolVersion, kAnswerType), DecodeError::kMissingField);
}

/* Header fields. */

void wire_unknown_version(void **) {
    for (std::uint8_t version : {0, 2, 0xff}) {
        RawFrame frame(version, kAuthenticate);
        frame.field(FieldTag::kService, "sshd").field(FieldTag::kUser, "alice").u32(FieldTag::kFlags, 0);
        assert_decode_error(frame, DecodeError::kBadVersion, "version " + std::to_string(version));
    }
}

void wire_unknown_type(void **) {
    for (std::uint8_t type : {0x00, 0x06, 0x0f, 0x13, 0xff}) {
        RawFrame frame(kProtocolVersion, type);
        frame.field(FieldTag::kAnswer, "x");
        assert_decode_error(frame, DecodeError::kUnknownType, "type " + std::to_string(type));
    }
}

/* Field headers and lengths. */

void wire_truncated_field_header(void **) {
    RawFrame one_byte = authenticate_frame();
    one_byte.bytes({tag_byte(FieldTag::kTty)});
    assert_decode_error(one_byte, DecodeError::kTruncatedField);

    RawFrame two_bytes = authenticate_frame();
    two_bytes.bytes({tag_byte(FieldTag::kTty), 0x00});
    assert_decode_error(two_bytes, DecodeError::kTruncatedField);
}

void wire_length_beyond_received_bytes(void **) {
    RawFrame one_short = authenticate_frame();
    one_short.header(tag_byte(FieldTag::kTty), 4).bytes({'t', 't', 'y'});
    assert_decode_error(one_short, DecodeError::kTruncatedField);

    RawFrame max_length = authenticate_frame();
    max_length.header(tag_byte(FieldTag::kTty), 0xffff).bytes({'t'});
    assert_decode_error(max_length, DecodeError::kTruncatedField);

    /* A bad length on an unknown tag is still a truncation: the length is
     * checked before the tag is looked up. */
    RawFrame unknown_tag = authenticate_frame();
    unknown_tag.header(0xee, 10);
    assert_decode_error(unknown_tag, DecodeError::kTruncatedField);
}

void wire_unknown_field_tag(void **) {
    for (std::uint8_t tag : {0, kFieldCount, 0x7f, 0xff}) {
        RawFrame frame = authenticate_frame();
        frame.field(tag, "x");
        assert_decode_error(frame, DecodeError::kUnknownField, "tag " + std::to_string(tag));
    }
}

void wire_field_not_allowed(void **) {
    RawFrame text_in_request = authenticate_frame();
    text_in_request.field(FieldTag::kText, "Password: ");
    assert_decode_error(text_in_request, DecodeError::kFieldNotAllowed);

    RawFrame authtok_in_account(kProtocolVersion, kAccountType);
    authtok_in_account.field(FieldTag::kService, "sshd")
            .field(FieldTag::kUser, "alice")
            .u32(FieldTag::kFlags, 0)
            .field(FieldTag::kAuthtok, "secret");
    assert_decode_error(authtok_in_account, DecodeError::kFieldNotAllowed);

    RawFrame user_in_answer(kProtocolVersion, kAnswerType);
    user_in_answer.field(FieldTag::kAnswer, "123456").field(FieldTag::kUser, "alice");
    assert_decode_error(user_in_answer, DecodeError::kFieldNotAllowed);

    RawFrame answer_in_result(kProtocolVersion, kResultType);
    answer_in_result.u32(FieldTag::kStatus, 0).field(FieldTag::kAnswer, "x");
    assert_decode_error(answer_in_result, DecodeError::kFieldNotAllowed);
}

void wire_repeated_field(void **) {
    RawFrame user_twice = authenticate_frame();
    user_twice.field(FieldTag::kUser, "root");
    assert_decode_error(user_twice, DecodeError::kRepeatedField);

    RawFrame flags_twice = authenticate_frame();
    flags_twice.u32(FieldTag::kFlags, kBothFactors);
    assert_decode_error(flags_twice, DecodeError::kRepeatedField);
}

void wire_missing_required_field(void **) {
    RawFrame no_user(kProtocolVersion, kAuthenticate);
    no_user.field(FieldTag::kService, "sshd").u32(FieldTag::kFlags, 0);
    assert_decode_error(no_user, DecodeError::kMissingField);

    RawFrame no_flags(kProtocolVersion, kAuthenticate);
    no_flags.field(FieldTag::kService, "sshd").field(FieldTag::kUser, "alice");
    assert_decode_error(no_flags, DecodeError::kMissingField);

    RawFrame no_style(kProtocolVersion, kPromptType);
    no_style.field(FieldTag::kText, "Password: ");
    assert_decode_error(no_style, DecodeError::kMissingField);

    RawFrame no_status(kProtocolVersion, kResultType);
    no_status.field(FieldTag::kMessage, "Authentication failed");
    assert_decode_error(no_status, DecodeError::kMissingField);
}

/* Field values. */

void wire_user_over_limit(void **) {
    RawFrame at_limit(kProtocolVersion, kAuthenticate);
    at_limit.field(FieldTag::kService, "sshd")
            .field(FieldTag::kUser, repeat('u', kMaxWireUserSize))
            .u32(FieldTag::kFlags, 0);
    assert_decodes(at_limit);

    RawFrame over_limit(kProtocolVersion, kAuthenticate);
    over_limit.field(FieldTag::kService, "sshd")
            .field(FieldTag::kUser, repeat('u', kMaxWireUserSize + 1))
            .u32(FieldTag::kFlags, 0);
    assert_decode_error(over_limit, DecodeError::kFieldTooLong);
}

void wire_authtok_over_limit(void **) {
    RawFrame at_limit = authenticate_frame();
    at_limit.field(FieldTag::kAuthtok, repeat('p', kMaxWireSecretSize));
    assert_decodes(at_limit);

    RawFrame over_limit = authenticate_frame();
    over_limit.field(FieldTag::kAuthtok, repeat('p', kMaxWireSecretSize + 1));
    assert_decode_error(over_limit, DecodeError::kFieldTooLong);
}

void wire_other_fields_over_limit(void **) {
    struct Case {
        FieldTag tag;
        std::size_t limit;
    };
    const Case cases[] = {
        {FieldTag::kRhost, kMaxRhostSize},
        {FieldTag::kRuser, kMaxWireUserSize},
        {FieldTag::kTty, kMaxTtySize},
    };
    for (const Case &c : cases) {
        RawFrame at_limit = authenticate_frame();
        std::string label = "tag " + std::to_string(tag_byte(c.tag));
        at_limit.field(c.tag, repeat('a', c.limit));
        assert_decodes(at_limit, label);

        RawFrame over_limit = authenticate_frame();
        over_limit.field(c.tag, repeat('a', c.limit + 1));
        assert_decode_error(over_limit, DecodeError::kFieldTooLong, label);
    }

    RawFrame long_service(kProtocolVersion, kAuthenticate);
    long_service.field(FieldTag::kService, repeat('s', kMaxServiceSize + 1))
            .field(FieldTag::kUser, "alice")
            .u32(FieldTag::kFlags, 0);
    assert_decode_error(long_service, DecodeError::kFieldTooLong);

    RawFrame long_text(kProtocolVersion, kPromptType);
    long_text.u8(FieldTag::kStyle, 1).field(FieldTag::kText, repeat('t', kMaxPromptTextSize + 1));
    assert_decode_error(long_text, DecodeError::kFieldTooLong);

    RawFrame long_answer(kProtocolVersion, kAnswerType);
    long_answer.field(FieldTag::kAnswer, repeat('a', kMaxWireSecretSize + 1));
    assert_decode_error(long_answer, DecodeError::kFieldTooLong);

    RawFrame long_message(kProtocolVersion, kResultType);
    long_message.u32(FieldTag::kStatus, 7).field(FieldTag::kMessage, repeat('m', kMaxPromptTextSize + 1));
    assert_decode_error(long_message, DecodeError::kFieldTooLong);
}

void wire_empty_user(void **) {
    RawFrame frame(kProtocolVersion, kAuthenticate);
    frame.field(FieldTag::kService, "sshd").field(FieldTag::kUser, "").u32(FieldTag::kFlags, 0);
    assert_decode_error(frame, DecodeError::kEmptyField);
}

void wire_empty_service(void **) {
    RawFrame frame(kProtocolVersion, kAuthenticate);
    frame.field(FieldTag::kService, "").field(FieldTag::kUser, "alice").u32(FieldTag::kFlags, 0);
    assert_decode_error(frame, DecodeError::kEmptyField);
}

void wire_empty_optional_fields(void **) {
    /* A local login has no remote host or user, and an empty password or
     * answer is a value the daemon must see and count. */
    RawFrame request = authenticate_frame();
    request.field(FieldTag::kRhost, "").field(FieldTag::kRuser, "").field(FieldTag::kTty, "");
    request.field(FieldTag::kAuthtok, "");
    assert_decodes(request);

    RawFrame answer(kProtocolVersion, kAnswerType);
    answer.field(FieldTag::kAnswer, "");
    assert_decodes(answer);
}

void wire_nul_in_user(void **) {
    RawFrame frame(kProtocolVersion, kAuthenticate);
    frame.field(FieldTag::kService, "sshd")
            .field(FieldTag::kUser, std::string_view("root\0alice", 10))
            .u32(FieldTag::kFlags, 0);
    assert_decode_error(frame, DecodeError::kNulInField);
}

void wire_nul_in_secret(void **) {
    RawFrame authtok = authenticate_frame();
    authtok.field(FieldTag::kAuthtok, std::string_view("abc\0def", 7));
    assert_decode_error(authtok, DecodeError::kNulInField);

    RawFrame answer(kProtocolVersion, kAnswerType);
    answer.field(FieldTag::kAnswer, std::string_view("\0", 1));
    assert_decode_error(answer, DecodeError::kNulInField);
}

void wire_integer_of_wrong_width(void **) {
    for (std::size_t width : {0, 1, 3, 5, 8}) {
        RawFrame flags(kProtocolVersion, kAuthenticate);
        flags.field(FieldTag::kService, "sshd").field(FieldTag::kUser, "alice");
        flags.field(FieldTag::kFlags, repeat('\x01', width));
        assert_decode_error(flags, DecodeError::kBadInteger, "flags of " + std::to_string(width) + " bytes");

        RawFrame status(kProtocolVersion, kResultType);
        status.field(FieldTag::kStatus, repeat('\x01', width));
        assert_decode_error(status, DecodeError::kBadInteger, "status of " + std::to_string(width) + " bytes");
    }
    for (std::size_t width : {0, 2, 4}) {
        RawFrame style(kProtocolVersion, kPromptType);
        style.field(FieldTag::kStyle, repeat('\x01', width)).field(FieldTag::kText, "Password: ");
        assert_decode_error(style, DecodeError::kBadInteger, "style of " + std::to_string(width) + " bytes");
    }
}

void wire_unknown_request_flags(void **) {
    for (std::uint32_t flags : {kFlagKnownMask + 1, 1u << 15, 1u << 31, 0xffffffffu}) {
        RawFrame frame(kProtocolVersion, kAuthenticate);
        frame.field(FieldTag::kService, "sshd").field(FieldTag::kUser, "alice").u32(FieldTag::kFlags, flags);
        assert_decode_error(frame, DecodeError::kUnknownFlags, "flags " + std::to_string(flags));
    }

    RawFrame known(kProtocolVersion, kAuthenticate);
    known.field(FieldTag::kService, "sshd").field(FieldTag::kUser, "alice").u32(FieldTag::kFlags, kFlagKnownMask);
    assert_decodes(known);
}

void wire_unknown_prompt_flags(void **) {
    /* A PROMPT defines only kPromptIsPassword; other bits are unknown even
     * where they happen to be valid request flags. */
    RawFrame known(kProtocolVersion, kPromptType);
    known.u8(FieldTag::kStyle, 1).field(FieldTag::kText, "Password: ").u32(FieldTag::kFlags, kPromptIsPassword);
    assert_decodes(known);

    RawFrame unknown(kProtocolVersion, kPromptType);
    unknown.u8(FieldTag::kStyle, 1).field(FieldTag::kText, "Password: ").u32(FieldTag::kFlags, 1u << 1);
    assert_decode_error(unknown, DecodeError::kUnknownFlags);
}

void wire_bad_prompt_style(void **) {
    for (std::uint8_t style : {0, 5, 0xff}) {
        RawFrame frame(kProtocolVersion, kPromptType);
        frame.u8(FieldTag::kStyle, style).field(FieldTag::kText, "Password: ");
        assert_decode_error(frame, DecodeError::kBadStyle, "style " + std::to_string(style));
    }
    for (std::uint8_t style : {1, 2, 3, 4}) {
        RawFrame frame(kProtocolVersion, kPromptType);
        frame.u8(FieldTag::kStyle, style).field(FieldTag::kText, "Password: ");
        assert_decodes(frame, "style " + std::to_string(style));
    }
}

void wire_integers_are_big_endian(void **) {
    RawFrame frame(kProtocolVersion, kResultType);
    frame.field(FieldTag::kStatus, "\x01\x02\x03\x04");
    Frame decoded;
    DecodeError error = DecodeError::kNone;
    assert_true(decode(frame.span(), decoded, error));
    assert_int_equal(decoded.get_u32(FieldTag::kStatus), 0x01020304u);
}

void wire_views_point_into_buffer(void **) {
    RawFrame frame = authenticate_frame();
    Frame decoded;
    DecodeError error = DecodeError::kNone;
    assert_true(decode(frame.span(), decoded, error));
    const char *begin = reinterpret_cast<const char *>(frame.span().data());
    const char *user = decoded.get(FieldTag::kUser).data();
    assert_true(user >= begin);
    assert_true(user < begin + frame.size());
}

void wire_error_strings_distinct(void **) {
    std::set<std::string> seen;
    for (int e = static_cast<int>(DecodeError::kNone); e <= static_cast<int>(DecodeError::kBadStyle); e++) {
        const char *text = decode_error_string(static_cast<DecodeError>(e));
        std::string label = "error " + std::to_string(e);
        WARDEN_ASSERT_FOR(text != nullptr, label);
        WARDEN_ASSERT_FOR(std::strlen(text) > 0, label);
        WARDEN_ASSERT_FOR(seen.insert(text).second, label);
    }
}

/* FrameBuilder round trips. */

using Buffer = std::array<std::byte, kMaxFrameSize>;

Frame decode_built(std::span<const std::byte> encoded, FrameType expected_type) {
    assert_true(encoded.size() >= kHeaderSize);
    Frame frame;
    DecodeError error = DecodeError::kNone;
    assert_true(decode(encoded, frame, error));
    assert_int_equal(static_cast<int>(error), static_cast<int>(DecodeError::kNone));
    assert_int_equal(static_cast<int>(frame.type), static_cast<int>(expected_type));
    return frame;
}

void check_request_round_trip(FrameType type, bool with_old_authtok) {
    Buffer buffer;
    FrameBuilder builder(type, buffer);
    assert_true(builder.add(FieldTag::kService, "sudo"));
    assert_true(builder.add(FieldTag::kUser, "bob"));
    assert_true(builder.add_u32(FieldTag::kFlags, kFlagFactorPassword | kFlagSilent));
    assert_true(builder.add(FieldTag::kRhost, "192.0.2.7"));
    assert_true(builder.add(FieldTag::kRuser, "carol"));
    assert_true(builder.add(FieldTag::kTty, "/dev/pts/3"));
    if (with_old_authtok)
        assert_true(builder.add(FieldTag::kOldAuthtok, "old password"));

    Frame frame = decode_built(builder.finish(), type);
    assert_view_equal(frame.get(FieldTag::kService), "sudo");
    assert_view_equal(frame.get(FieldTag::kUser), "bob");
    assert_int_equal(frame.get_u32(FieldTag::kFlags), kFlagFactorPassword | kFlagSilent);
    assert_view_equal(frame.get(FieldTag::kRhost), "192.0.2.7");
    assert_view_equal(frame.get(FieldTag::kRuser), "carol");
    assert_view_equal(frame.get(FieldTag::kTty), "/dev/pts/3");
    assert_false(frame.has(FieldTag::kAuthtok));
    assert_int_equal(frame.has(FieldTag::kOldAuthtok), with_old_authtok);
    if (with_old_authtok)
        assert_view_equal(frame.get(FieldTag::kOldAuthtok), "old password");
}

void wire_round_trip_authenticate(void **) {
    Buffer buffer;
    FrameBuilder builder(FrameType::kAuthenticate, buffer);
    assert_true(builder.add(FieldTag::kService, "sshd"));
    assert_true(builder.add(FieldTag::kUser, "alice"));
    assert_true(builder.add_u32(FieldTag::kFlags, kBothFactors | kFlagPromptCombined));
    assert_true(builder.add(FieldTag::kRhost, "198.51.100.4"));
    assert_true(builder.add(FieldTag::kAuthtok, "correct horse battery staple"));

    Frame frame = decode_built(builder.finish(), FrameType::kAuthenticate);
    assert_view_equal(frame.get(FieldTag::kService), "sshd");
    assert_view_equal(frame.get(FieldTag::kUser), "alice");
    assert_int_equal(frame.get_u32(FieldTag::kFlags), kBothFactors | kFlagPromptCombined);
    assert_view_equal(frame.get(FieldTag::kRhost), "198.51.100.4");
    assert_view_equal(frame.get(FieldTag::kAuthtok), "correct horse battery staple");
    assert_false(frame.has(FieldTag::kTty));
    assert_false(frame.has(FieldTag::kRuser));
}

void wire_round_trip_account(void **) { check_request_round_trip(FrameType::kAccount, false); }

void wire_round_trip_change_password(void **) {
    check_request_round_trip(FrameType::kChangePassword, true);
}

void wire_round_trip_open_session(void **) { check_request_round_trip(FrameType::kOpenSession, false); }

void wire_round_trip_close_session(void **) { check_request_round_trip(FrameType::kCloseSession, false); }

void wire_round_trip_prompt(void **) {
    Buffer buffer;
    FrameBuilder builder(FrameType::kPrompt, buffer);
    assert_true(builder.add_u8(FieldTag::kStyle, static_cast<std::uint8_t>(PromptStyle::kEchoOff)));
    assert_true(builder.add(FieldTag::kText, "Verification code: "));
    assert_true(builder.add_u32(FieldTag::kFlags, kPromptIsPassword));

    Frame frame = decode_built(builder.finish(), FrameType::kPrompt);
    assert_int_equal(frame.get_u8(FieldTag::kStyle), static_cast<std::uint8_t>(PromptStyle::kEchoOff));
    assert_view_equal(frame.get(FieldTag::kText), "Verification code: ");
    assert_int_equal(frame.get_u32(FieldTag::kFlags), kPromptIsPassword);
}

void wire_round_trip_answer(void **) {
    Buffer buffer;
    FrameBuilder builder(FrameType::kAnswer, buffer);
    assert_true(builder.add(FieldTag::kAnswer, "287082"));

    Frame frame = decode_built(builder.finish(), FrameType::kAnswer);
    assert_view_equal(frame.get(FieldTag::kAnswer), "287082");
}

void wire_round_trip_result(void **) {
    Buffer buffer;
    FrameBuilder builder(FrameType::kResult, buffer);
    assert_true(builder.add_u32(FieldTag::kStatus, 0xfedcba98u));
    assert_true(builder.add(FieldTag::kMessage, "Authentication failed"));

    Frame frame = decode_built(builder.finish(), FrameType::kResult);
    assert_int_equal(frame.get_u32(FieldTag::kStatus), 0xfedcba98u);
    assert_view_equal(frame.get(FieldTag::kMessage), "Authentication failed");
}

void wire_largest_request_fits(void **) {
    /* Every string at its limit and a password of PAM_MAX_RESP_SIZE plus
     * the one byte that marks it oversized still fit in one frame. */
    const std::string password(kMaxSecretSize, 'p');
    const std::string oversized(kMaxWireSecretSize, 'o');
    Buffer buffer;
    FrameBuilder builder(FrameType::kChangePassword, buffer);
    assert_true(builder.add(FieldTag::kService, repeat('s', kMaxServiceSize)));
    assert_true(builder.add(FieldTag::kUser, repeat('u', kMaxWireUserSize)));
    assert_true(builder.add_u32(FieldTag::kFlags, kFlagKnownMask));
    assert_true(builder.add(FieldTag::kRhost, repeat('h', kMaxRhostSize)));
    assert_true(builder.add(FieldTag::kRuser, repeat('r', kMaxWireUserSize)));
    assert_true(builder.add(FieldTag::kTty, repeat('t', kMaxTtySize)));
    assert_true(builder.add(FieldTag::kAuthtok, password));
    assert_true(builder.add(FieldTag::kOldAuthtok, oversized));

    Frame frame = decode_built(builder.finish(), FrameType::kChangePassword);
    assert_view_equal(frame.get(FieldTag::kAuthtok), password);
    assert_view_equal(frame.get(FieldTag::kOldAuthtok), oversized);
}

void wire_builder_overflow(void **) {
    Buffer buffer;
    FrameBuilder builder(FrameType::kAnswer, buffer);
    /* Header, one field header and the value fill exactly 4096 bytes. */
    assert_true(builder.add(FieldTag::kAnswer, repeat('a', kMaxFrameSize - kHeaderSize - kFieldHeaderSize)));
    assert_int_equal(builder.finish().size(), kMaxFrameSize);

    assert_false(builder.add(FieldTag::kMessage, ""));
    assert_true(builder.finish().empty());
}

void wire_builder_stays_failed(void **) {
    Buffer buffer;
    FrameBuilder builder(FrameType::kAuthenticate, buffer);
    assert_false(builder.add(FieldTag::kService, repeat('s', kMaxFrameSize)));
    /* A small field after the failed one must not revive the frame. */
    assert_false(builder.add(FieldTag::kUser, "alice"));
    assert_false(builder.add_u32(FieldTag::kFlags, 0));
    assert_true(builder.finish().empty());
}

void wire_builder_small_buffer(void **) {
    std::byte tiny[1];
    FrameBuilder header_only(FrameType::kAnswer, tiny);
    assert_true(header_only.finish().empty());

    std::byte small[8];
    FrameBuilder builder(FrameType::kAnswer, small);
    assert_true(builder.add(FieldTag::kAnswer, "abc"));
    assert_int_equal(builder.finish().size(), 8u);
    assert_false(builder.add(FieldTag::kAnswer, ""));
    assert_true(builder.finish().empty());
}

void wire_builder_value_over_64k(void **) {
    /* A value whose length does not fit the u16 length field. */
    std::vector<std::byte> large(70000);
    FrameBuilder builder(FrameType::kAnswer, large);
    assert_false(builder.add(FieldTag::kAnswer, repeat('a', 0x10000)));
    assert_true(builder.finish().empty());
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wire_empty_frame),
        cmocka_unit_test(wire_one_byte_frame),
        cmocka_unit_test(wire_frame_over_4096_bytes),
        cmocka_unit_test(wire_frame_of_4096_bytes_passes_size_check),
        cmocka_unit_test(wire_header_only_frame),
        cmocka_unit_test(wire_unknown_version),
        cmocka_unit_test(wire_unknown_type),
        cmocka_unit_test(wire_truncated_field_header),
        cmocka_unit_test(wire_length_beyond_received_bytes),
        cmocka_unit_test(wire_unknown_field_tag),
        cmocka_unit_test(wire_field_not_allowed),
        cmocka_unit_test(wire_repeated_field),
        cmocka_unit_test(wire_missing_required_field),
        cmocka_unit_test(wire_user_over_limit),
        cmocka_unit_test(wire_authtok_over_limit),
        cmocka_unit_test(wire_other_fields_over_limit),
        cmocka_unit_test(wire_empty_user),
        cmocka_unit_test(wire_empty_service),
        cmocka_unit_test(wire_empty_optional_fields),
        cmocka_unit_test(wire_nul_in_user),
        cmocka_unit_test(wire_nul_in_secret),
        cmocka_unit_test(wire_integer_of_wrong_width),
        cmocka_unit_test(wire_unknown_request_flags),
        cmocka_unit_test(wire_unknown_prompt_flags),
        cmocka_unit_test(wire_bad_prompt_style),
        cmocka_unit_test(wire_integers_are_big_endian),
        cmocka_unit_test(wire_views_point_into_buffer),
        cmocka_unit_test(wire_error_strings_distinct),
        cmocka_unit_test(wire_round_trip_authenticate),
        cmocka_unit_test(wire_round_trip_account),
        cmocka_unit_test(wire_round_trip_change_password),
        cmocka_unit_test(wire_round_trip_open_session),
        cmocka_unit_test(wire_round_trip_close_session),
        cmocka_unit_test(wire_round_trip_prompt),
        cmocka_unit_test(wire_round_trip_answer),
        cmocka_unit_test(wire_round_trip_result),
        cmocka_unit_test(wire_largest_request_fits),
        cmocka_unit_test(wire_builder_overflow),
        cmocka_unit_test(wire_builder_stays_failed),
        cmocka_unit_test(wire_builder_small_buffer),
        cmocka_unit_test(wire_builder_value_over_64k),
    };
    return cmocka_run_group_tests_name("wire", tests, nullptr, nullptr);
}
