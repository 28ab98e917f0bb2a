// Name encryption: AES-256-SIV under the vault's name key, with the parent
// directory's random 16-byte id as associated data, encoded as lowercase unpadded
// base32 (safe on case-insensitive stores such as OneDrive).
//
// Deterministic, so a lookup can encrypt the name it is asked for. The directory id
// makes the same name in two directories encrypt differently, and because children
// are bound to their own directory's id (stored in that directory), renaming or
// moving a directory never rewrites its children.
//
// Encodings longer than 255 bytes are stored as "lng-" + base32(SHA-256(encoding))
// with a sidecar "lng-<hash>.name" beside it holding the full encoding.
//
// Thread safety: NameCipher is immutable after construction; safe to share.
#ifndef CADCANFS_VAULT_NAMES_H_
#define CADCANFS_VAULT_NAMES_H_

#include <array>
#include <string>
#include <string_view>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs {

inline constexpr char kDirIdFileName[] = "cadcanfs.dirid";
// The vault's single-writer lock (cadcanfs/fs/vault_lock.h), in the vault root.
inline constexpr char kLockFileName[] = "cadcanfs.lock";
// The flat layout's directory of directories (docs/vault-format.md §1), at the root.
inline constexpr char kFlatDirsName[] = "cadcanfs.dirs";
inline constexpr size_t kDirIdSize = 16;
inline constexpr size_t kMaxPlainNameLength = 255;
inline constexpr size_t kMaxStoredNameLength = 255;
inline constexpr char kLongNamePrefix[] = "lng-";
inline constexpr char kSidecarSuffix[] = ".name";
inline constexpr char kTempPrefix[] = ".cadcanfs-tmp-";
// Symlink targets must fit PATH_MAX once encrypted and encoded.
inline constexpr size_t kMaxSymlinkTargetLength = 2500;
// Stored extended attributes are "user.cc." + base32(SIV(name)); the stored name
// must fit XATTR_NAME_MAX (255).
inline constexpr char kStoredXattrPrefix[] = "user.cc.";
inline constexpr size_t kMaxXattrNameLength = 130;
inline constexpr size_t kXattrValueOverhead = 33;  // nonce 16 + SIV tag 16 + marker 1

using DirId = std::array<uint8_t, kDirIdSize>;

struct EncryptedName {
  std::string encoded;  // base32(SIV(name)): the full ciphertext name
  std::string stored;   // the directory entry's name: `encoded`, or the long-name hash form
  bool is_long() const { return stored != encoded; }
};

enum class StoredNameKind {
  kEncrypted,        // a base32 encoding
  kLongName,         // "lng-<hash>"
  kLongNameSidecar,  // "lng-<hash>.name"
  kDirId,            // "cadcanfs.dirid"
  // Vault-root metadata: "cadcanfs.conf" and the writer lock "cadcanfs.lock". Both
  // are plaintext by design and hold no secret; neither belongs below the root.
  kConfig,
  kFlatDirs,  // "cadcanfs.dirs": where a flat vault keeps every directory's entries
  kTemp,      // an interrupted atomic replace
  kUnknown,   // nothing cadcanfs writes
};

StoredNameKind ClassifyStoredName(std::string_view stored);
// A stored symlink target's plaintext length follows from its stored length alone,
// so stat needs no decryption.
uint64_t SymlinkTargetLengthOfStored(uint64_t stored_length);
std::string LongStoredName(std::string_view encoded);
std::string SidecarName(std::string_view long_stored);

// Checks a plaintext name the way ext4 would: kInvalidArgument for "", ".", "..",
// '/' or NUL, kNameTooLong beyond 255 bytes.
Status ValidatePlainName(std::string_view name);

class NameCipher {
 public:
  // REQUIRES: name_key.size() == 64.
  explicit NameCipher(SecretBytes name_key) : key_(std::move(name_key)) {}

  Result<EncryptedName> Encrypt(const DirId& dir, std::string_view name) const;
  // kAuthenticationFailed if `encoded` was not produced for this directory and key.
  Result<std::string> Decrypt(const DirId& dir, std::string_view encoded) const;

  // Symlink targets use SIV with a random nonce component (so equal targets do not
  // show). They are not bound to the link's directory (format v2), so a symlink can be
  // renamed, exchanged and hard-linked into any directory. kNameTooLong past
  // kMaxSymlinkTargetLength.
  Result<std::string> EncryptSymlinkTarget(std::string_view target) const;
  // Opens a stored target. Format v1 bound targets to the id of the directory holding
  // the link; such a target is opened with `dir`, and `directory_bound` (if given) says
  // so, for the upgrade that re-seals them.
  Result<std::string> DecryptSymlinkTarget(const DirId& dir, std::string_view stored,
                                           bool* directory_bound = nullptr) const;

  // Extended attributes: "user.<a>" is stored as "user.cc." + base32(SIV(a)),
  // deterministic so a get can find it; kUnsupported for other namespaces. Values use
  // a random nonce and are bound to their stored name.
  Result<std::string> EncryptXattrName(std::string_view name) const;
  // The plaintext "user.<a>" for a stored name; kInvalidArgument if it is not ours.
  Result<std::string> DecryptXattrName(std::string_view stored) const;
  Result<Bytes> SealXattrValue(std::string_view stored_name, ByteSpan value) const;
  Result<Bytes> OpenXattrValue(std::string_view stored_name, ByteSpan sealed) const;

 private:
  SecretBytes key_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_VAULT_NAMES_H_
