// The vault configuration file, "cadcanfs.conf" at the vault root.
//
// It records the format parameters and, per master key, the key id, the optional
// scrypt parameters for passphrase keys, the vault's name key wrapped under that
// master key, and an HMAC-SHA256 over the canonical encoding of all of it (the
// key-check value). It holds no usable secret. docs/vault-format.md is the spec.
//
// Thread safety: plain values; no internal synchronisation.
#ifndef CADCANFS_VAULT_CONFIG_H_
#define CADCANFS_VAULT_CONFIG_H_

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/vault/master_key.h"

namespace cadcanfs {

inline constexpr char kConfigFileName[] = "cadcanfs.conf";
// Version 2: symlink targets are no longer bound to their directory, and file headers
// may carry a pending resize (docs/vault-format.md §8). Version 1 vaults are read, and
// upgraded in place by the first writer (Vault::UpgradeFormat).
// Version 3 is version 2 with the flat layout (docs/vault-format.md §1): a vault in the
// tree layout is still written as version 2, so older builds keep reading it, and one
// in the flat layout as version 3, which older builds refuse rather than misread.
inline constexpr int kFormatVersion = 3;  // the newest this build reads
inline constexpr int kOldestFormatVersion = 1;
inline constexpr int kTreeLayoutVersion = 2;
inline constexpr int kFlatLayoutVersion = 3;
inline constexpr size_t kVaultIdSize = 16;
inline constexpr size_t kNameKeySize = 64;  // AES-256-SIV
inline constexpr uint32_t kDefaultBlockSize = 32 * 1024;
inline constexpr uint32_t kMinBlockSize = 4 * 1024;
inline constexpr uint32_t kMaxBlockSize = 1024 * 1024;

// Where a directory's entries live in the store (docs/vault-format.md §1).
enum class VaultLayout {
  // In the directory's own ciphertext directory: the ciphertext tree mirrors the
  // plaintext tree (one ciphertext folder per patient folder, as backup operators like).
  kTree,
  // Under "cadcanfs.dirs/", at a fixed depth derived from the directory id, whatever
  // the plaintext depth: for stores that limit the length of a whole path (OneDrive).
  kFlat,
};

// "tree" or "flat", as the CLI and the config spell them.
std::string_view LayoutName(VaultLayout layout);
std::optional<VaultLayout> ParseLayoutName(std::string_view name);

struct KdfParams {
  Bytes salt;  // 32 bytes
  ScryptParams scrypt;
};

struct KeyEntry {
  KekId kek_id{};
  std::optional<KdfParams> kdf;  // present when the KEK comes from a passphrase
  Bytes wrapped_name_key;        // RFC 3394 wrap of the 64-byte name key (72 bytes)
  Digest mac{};                  // HMAC-SHA256 of the canonical encoding
};

struct VaultConfig {
  int version = kTreeLayoutVersion;
  VaultLayout layout = VaultLayout::kTree;  // kFlat exactly when version is 3
  std::array<uint8_t, kVaultIdSize> vault_id{};
  uint32_t block_size = kDefaultBlockSize;
  std::vector<KeyEntry> keys;

  std::string vault_id_hex() const { return HexEncode(vault_id); }
  const KeyEntry* FindKey(const KekId& id) const;
  const KdfParams* PassphraseKdf() const;  // first entry with scrypt parameters, if any
};

// Serialises to the JSON text stored on disk.
std::string SerializeConfig(const VaultConfig& config);
// Parses strictly: unknown fields, wrong types, unsupported versions or block sizes are
// kCorrupt (or kUnsupported for a newer format version). Never throws.
Result<VaultConfig> ParseConfig(std::string_view text);

// The bytes one key entry's MAC covers (see docs/vault-format.md, "Config MAC").
std::string CanonicalConfigBytes(const VaultConfig& config, const KeyEntry& entry);

// Builds an entry for `master` that wraps `name_key` and authenticates `config`.
Result<KeyEntry> MakeKeyEntry(const VaultConfig& config, const MasterKey& master,
                              const SecretBytes& name_key, std::optional<KdfParams> kdf);

// Finds the entry for `master`, verifies its MAC and unwraps the name key.
// kWrongKey if no entry names this key; kAuthenticationFailed if the config was
// edited or the wrapped name key damaged.
Result<SecretBytes> UnlockConfig(const VaultConfig& config, const MasterKey& master);

}  // namespace cadcanfs

#endif  // CADCANFS_VAULT_CONFIG_H_
