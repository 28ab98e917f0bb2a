// The per-file header that starts every ciphertext file (192 bytes).
//
//   offset size
//   0      8    magic "cadcanfs"
//   8      2    format version (big-endian) = 1
//   10     6    pending resize: 0, or the ciphertext size the file had before (growing)
//                or will have after (shrinking) an unfinished resize (format v2; not
//                covered by the slot MACs; see docs/vault-format.md "Crash safety")
//   16     16   file id (random)
//   32     80   key slot 0
//   112    80   key slot 1
// A key slot is kek_id(8) || AES-KW(wrap key, DEK)(40) || HMAC-SHA256(header key, ...)(32),
// or 80 zero bytes when empty. Two slots let a key rotation write the new wrap next to
// the old one, so a crash at any point leaves a slot that opens (see docs/vault-format.md).
//
// Thread safety: plain values and pure functions.
#ifndef CADCANFS_VAULT_FILE_HEADER_H_
#define CADCANFS_VAULT_FILE_HEADER_H_

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/gcm.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/vault/master_key.h"

namespace cadcanfs {

inline constexpr size_t kFileHeaderSize = 192;
inline constexpr size_t kFileIdSize = 16;
inline constexpr size_t kDataKeySize = 32;
inline constexpr size_t kKeySlotSize = 80;
inline constexpr size_t kKeySlotCount = 2;
inline constexpr size_t kKeySlotOffset = 32;
inline constexpr size_t kPendingSizeOffset = 10;
inline constexpr size_t kPendingSizeLength = 6;
inline constexpr uint64_t kMaxPendingSize = (uint64_t{1} << 48) - 1;

using FileId = std::array<uint8_t, kFileIdSize>;
using HeaderBytes = std::array<uint8_t, kFileHeaderSize>;

// What a file needs once its header is open: its id and its content key.
struct FileKeys {
  FileId file_id{};
  std::shared_ptr<const GcmKey> content_key;  // HKDF(DEK, "cadcanfs v1 content")
};

// A header opened with one of the supplied master keys.
struct OpenedHeader {
  FileKeys keys;
  SecretBytes dek;
  int slot = 0;    // the slot that opened
  KekId kek_id{};  // the key that wrapped it
};

// Creates a header for a new file: fresh file id, fresh random DEK wrapped by `master`
// into slot 0. Returns the bytes to store and the opened form.
Result<std::pair<HeaderBytes, OpenedHeader>> CreateFileHeader(const MasterKey& master);

// Opens a header with whichever of `masters` wrapped it. Errors:
//   kCorrupt              wrong magic, version or reserved bits, or too short;
//   kWrongKey             no slot names a supplied key;
//   kAuthenticationFailed a slot names a supplied key but fails unwrap or MAC.
Result<OpenedHeader> OpenFileHeader(ByteSpan header, std::span<const MasterKey* const> masters);

// Produces the 80 bytes of a key slot wrapping `dek` under `master` for `file_id`.
Result<std::array<uint8_t, kKeySlotSize>> SealKeySlot(const FileId& file_id, const SecretBytes& dek,
                                                      const MasterKey& master);

// The pending-resize field of a header (0 when no resize is unfinished). It is a hint,
// not authenticated: it only says which other size to try when a block fails, and the
// block must then authenticate under that size.
uint64_t PeekPendingSize(ByteSpan header);
// The field's bytes for `cipher_size` (REQUIRES: cipher_size <= kMaxPendingSize).
std::array<uint8_t, kPendingSizeLength> EncodePendingSize(uint64_t cipher_size);

// Reads the file id without authenticating it (for fsck reports and logs).
Result<FileId> PeekFileId(ByteSpan header);
// Reads slot `index`'s key id; nullopt for an empty slot.
std::optional<KekId> PeekSlotKeyId(ByteSpan header, int index);

}  // namespace cadcanfs

#endif  // CADCANFS_VAULT_FILE_HEADER_H_
