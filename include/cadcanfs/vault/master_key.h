// The master key (KEK) and the subkeys derived from it.
//
// The KEK never lives in the vault. It comes from server configuration: a key file,
// a systemd credential, or a passphrase stretched with scrypt (see key_source.h).
// Everything the vault stores is derived with HKDF-SHA256 so that no key is used in
// two roles (the gocryptfs audit's "key reuse between modes" finding):
//   kek_id   = HKDF(KEK, "cadcanfs v1 kek-id", 8)      names the key in config and headers
//   wrap key = HKDF(KEK, "cadcanfs v1 key-wrap", 32)   RFC 3394 wrap of data keys and name key
//   mac key  = HKDF(KEK, "cadcanfs v1 config-mac", 32) HMAC of the config
//   staging  = HKDF(KEK, "cadcanfs v1 staging", 32)    writes staged on local disk for a
//                                                      whole-object store (StagingStore)
//   token store = HKDF(KEK, "cadcanfs v1 token-store", 32)  the OneDrive refresh token at
//                                                      rest (graph/token_store.h)
//
// Thread safety: immutable after construction; safe to share.
#ifndef CADCANFS_VAULT_MASTER_KEY_H_
#define CADCANFS_VAULT_MASTER_KEY_H_

#include <array>
#include <string>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs {

inline constexpr size_t kMasterKeySize = 32;
inline constexpr size_t kKekIdSize = 8;
using KekId = std::array<uint8_t, kKekIdSize>;

class MasterKey {
 public:
  // REQUIRES: kek.size() == kMasterKeySize.
  static Result<MasterKey> FromBytes(SecretBytes kek);

  const KekId& id() const { return id_; }
  std::string id_hex() const { return HexEncode(id_); }
  const SecretBytes& wrap_key() const { return wrap_key_; }
  const SecretBytes& config_mac_key() const { return config_mac_key_; }
  const SecretBytes& staging_key() const { return staging_key_; }
  const SecretBytes& token_store_key() const { return token_store_key_; }

 private:
  MasterKey() = default;
  KekId id_{};
  SecretBytes wrap_key_;
  SecretBytes config_mac_key_;
  SecretBytes staging_key_;
  SecretBytes token_store_key_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_VAULT_MASTER_KEY_H_
