#include "ctl/json.h"

namespace warden::json {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD"; /* U+FFFD in UTF-8 */

/* Returns the length of the well-formed UTF-8 sequence that lead starts,
 * and the range its second byte must fall in. The narrowed ranges after
 * E0, ED, F0 and F4 reject overlong forms, surrogates and code points above
 * U+10FFFF. Returns 0 for a byte that cannot start a sequence. */
int sequence_length(unsigned char lead, unsigned char &ret_low, unsigned char &ret_high) {
    ret_low = 0x80;
    ret_high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF)
        return 2;
    if (lead == 0xE0) {
        ret_low = 0xA0;
        return 3;
    }
    if (lead == 0xED) {
        ret_high = 0x9F;
        return 3;
    }
    if (lead >= 0xE1 && lead <= 0xEF)
        return 3;
    if (lead == 0xF0) {
        ret_low = 0x90;
        return 4;
    }
    if (lead == 0xF4) {
        ret_high = 0x8F;
        return 4;
    }
    if (lead >= 0xF1 && lead <= 0xF3)
        return 4;
    return 0;
}

void append_ascii(std::string &out, char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    unsigned char byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
    } else if (byte < 0x20) {
        out += "\\u00";
        out += kHex[byte >> 4];
        out += kHex[byte & 0x0F];
    } else {
        out += c;
    }
}

} // namespace

void append_string(std::string &out, std::string_view value) {
    out += '"';
    std::size_t i = 0;
    while (i < value.size()) {
        unsigned char lead = static_cast<unsigned char>(value[i]);
        if (lead < 0x80) {
            append_ascii(out, value[i]);
            ++i;
            continue;
        }
        unsigned char low = 0;
        unsigned char high = 0;
        int length = sequence_length(lead, low, high);
        if (length == 0) {
            out += kReplacementCharacter;
            ++i;
            continue;
        }
        /* Take continuation bytes while they fit. A sequence cut short is
         * replaced by one U+FFFD as a whole (the "maximal subpart" practice
         * of the Unicode standard), and decoding resumes at the byte that
         * broke it. */
        std::size_t end = i + 1;
        for (int k = 1; k < length && end < value.size(); ++k) {
            unsigned char byte = static_cast<unsigned char>(value[end]);
            unsigned char min = k == 1 ? low : 0x80;
            unsigned char max = k == 1 ? high : 0xBF;
            if (byte < min || byte > max)
                break;
            ++end;
        }
        if (end - i == static_cast<std::size_t>(length))
            out.append(value.substr(i, end - i));
        else
            out += kReplacementCharacter;
        i = end;
    }
    out += '"';
}

std::string quote(std::string_view value) {
    std::string out;
    append_string(out, value);
    return out;
}

void ObjectWriter::append_key(std::string_view key) {
    if (body_.size() > 1)
        body_ += ", ";
    append_string(body_, key);
    body_ += ": ";
}

void ObjectWriter::add(std::string_view key, std::string_view value) {
    append_key(key);
    append_string(body_, value);
}

void ObjectWriter::add(std::string_view key, std::int64_t value) {
    append_key(key);
    body_ += std::to_string(value);
}

void ObjectWriter::add(std::string_view key, std::uint64_t value) {
    append_key(key);
    body_ += std::to_string(value);
}

void ObjectWriter::add(std::string_view key, bool value) {
    append_key(key);
    body_ += value ? "true" : "false";
}

void ObjectWriter::add(std::string_view key, const std::vector<std::string> &values) {
    append_key(key);
    body_ += '[';
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0)
            body_ += ", ";
        append_string(body_, values[i]);
    }
    body_ += ']';
}

} // namespace warden::json
