/* libFuzzer target: the frame decoder must reject or accept any bytes
 * without reading outside them, and an accepted frame must re-encode to
 * a frame that decodes to the same fields. */
#include "protocol/wire.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

using namespace warden::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    Frame frame;
    DecodeError error;
    auto bytes = std::span<const std::byte>(reinterpret_cast<const std::byte *>(data), size);
    if (!decode(bytes, frame, error))
        return 0;

    std::byte out[4096];
    FrameBuilder builder(frame.type, out);
    for (int tag = 1; tag < kFieldCount; tag++) {
        if (frame.present & (1u << tag))
            builder.add(static_cast<FieldTag>(tag), frame.fields[tag]);
    }
    std::span<const std::byte> encoded = builder.finish();
    Frame again;
    if (encoded.empty() || !decode(encoded, again, error))
        std::abort();
    if (again.type != frame.type || again.present != frame.present)
        std::abort();
    for (int tag = 1; tag < kFieldCount; tag++) {
        if (again.fields[tag] != frame.fields[tag])
            std::abort();
    }
    return 0;
}
