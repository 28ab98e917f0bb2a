// libFuzzer target: file headers and block-size arithmetic on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/vault/content.h"
#include "cadcanfs/vault/file_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const cadcanfs::MasterKey master =
      cadcanfs::MasterKey::FromBytes(cadcanfs::SecretBytes(32)).value();
  const cadcanfs::MasterKey* keys[] = {&master};
  cadcanfs::ByteSpan input(data, size);
  (void)cadcanfs::OpenFileHeader(input, keys);
  (void)cadcanfs::PeekFileId(input);
  (void)cadcanfs::PeekSlotKeyId(input, 1);
  if (size >= 8) {
    uint64_t cipher_size = 0;
    for (int i = 0; i < 8; ++i) cipher_size = (cipher_size << 8) | data[i];
    cadcanfs::BlockLayout layout(4096);
    auto plain = layout.PlainSizeOfCipherSize(cipher_size);
    if (plain.ok() && layout.CipherSizeOfPlainSize(*plain) != cipher_size) __builtin_trap();
  }
  return 0;
}
