// libFuzzer target: the vault config parser must reject or accept any input without
// crashing, anything it accepts must be within the documented limits, and it must
// serialise back to something it accepts and that serialises identically.
// Seed corpus: tests/fuzz/corpus/config/ ("accept-*" parse, "reject-*" do not).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cadcanfs/vault/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = cadcanfs::ParseConfig(text);
  if (config.ok()) {
    if (config->version < cadcanfs::kOldestFormatVersion ||
        config->version > cadcanfs::kFormatVersion || config->keys.empty() ||
        config->keys.size() > 8) {
      __builtin_trap();
    }
    for (const cadcanfs::KeyEntry& entry : config->keys) {
      if (entry.kdf && (entry.kdf->scrypt.p == 0 || entry.kdf->scrypt.p > 16)) __builtin_trap();
    }
    std::string serialized = cadcanfs::SerializeConfig(*config);
    auto again = cadcanfs::ParseConfig(serialized);
    if (!again.ok()) __builtin_trap();
    if (cadcanfs::SerializeConfig(*again) != serialized) __builtin_trap();
  }
  return 0;
}
