// libFuzzer target: the vault config parser must reject or accept any input without
// crashing, and anything it accepts must serialise back to something it accepts.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cadcanfs/vault/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = cadcanfs::ParseConfig(text);
  if (config.ok()) {
    auto again = cadcanfs::ParseConfig(cadcanfs::SerializeConfig(*config));
    if (!again.ok()) __builtin_trap();
  }
  return 0;
}
