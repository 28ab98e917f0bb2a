// libFuzzer target: stored-name classification, base32 and name decryption.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/vault/names.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const cadcanfs::NameCipher cipher{cadcanfs::SecretBytes(64)};
  static const cadcanfs::DirId dir{};
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)cadcanfs::ClassifyStoredName(text);
  auto decoded = cadcanfs::Base32Decode(text);
  if (decoded && cadcanfs::Base32Encode(*decoded) != text) __builtin_trap();
  (void)cipher.Decrypt(dir, text);
  (void)cipher.DecryptSymlinkTarget(dir, text);
  auto encrypted = cipher.Encrypt(dir, text);
  if (encrypted.ok()) {
    auto back = cipher.Decrypt(dir, encrypted->encoded);
    if (!back.ok() || *back != text) __builtin_trap();
  }
  return 0;
}
