/* libFuzzer target: any config text gives a config and a list of
 * problems, never a crash, a hang or an out-of-bounds read. */
#include "daemon/config.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size > warden::kMaxConfigSize)
        return 0;
    std::string text(reinterpret_cast<const char *>(data), size);
    warden::Config config;
    std::vector<std::string> problems;
    warden::parse_config_text("fuzz.conf", text, config, problems);
    return 0;
}
