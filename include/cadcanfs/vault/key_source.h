// Where the master key comes from, in the documented order:
//   1. --key-file F: 32 raw bytes or 64 hex characters (one trailing newline allowed);
//      refused if group or others can read it.
//   2. $CREDENTIALS_DIRECTORY/cadcanfs.key (systemd LoadCredential=), same format.
//   3. --passphrase-file F: scrypt with the parameters stored in the vault config.
//
// Thread safety: the functions are safe to call concurrently.
#ifndef CADCANFS_VAULT_KEY_SOURCE_H_
#define CADCANFS_VAULT_KEY_SOURCE_H_

#include <optional>
#include <string>

#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/vault/config.h"
#include "cadcanfs/vault/master_key.h"

namespace cadcanfs {

struct KeyOptions {
  std::optional<std::string> key_file;
  std::optional<std::string> passphrase_file;
};

// A master key together with the scrypt parameters that produced it (passphrases only).
struct LoadedKey {
  MasterKey master;
  std::optional<KdfParams> kdf;
};

Result<SecretBytes> ReadKeyFile(const std::string& path);
Result<SecretBytes> ReadPassphraseFile(const std::string& path);

// Loads the key for an existing vault. kWrongKey when a passphrase matches no entry.
Result<LoadedKey> LoadKeyForVault(const KeyOptions& options, const VaultConfig& config);
// Loads the key for a new vault; a passphrase gets a fresh salt.
Result<LoadedKey> LoadKeyForNewVault(const KeyOptions& options);

// Writes 32 random bytes as 64 hex characters to a new file with mode 0600.
// kAlreadyExists if the file exists.
Status WriteNewKeyFile(const std::string& path);

}  // namespace cadcanfs

#endif  // CADCANFS_VAULT_KEY_SOURCE_H_
