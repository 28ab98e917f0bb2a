#include "cadcanfs/vault/master_key.h"

#include <algorithm>

#include "cadcanfs/crypto/kdf.h"

namespace cadcanfs {

Result<MasterKey> MasterKey::FromBytes(SecretBytes kek) {
  if (kek.size() != kMasterKeySize) {
    return Status::Error(Code::kInvalidArgument, "a master key must be exactly 32 bytes");
  }
  MasterKey key;
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes id, HkdfSha256(kek, "cadcanfs v1 kek-id", kKekIdSize));
  std::copy_n(id.data(), kKekIdSize, key.id_.begin());
  CADCANFS_ASSIGN_OR_RETURN(key.wrap_key_, HkdfSha256(kek, "cadcanfs v1 key-wrap", 32));
  CADCANFS_ASSIGN_OR_RETURN(key.config_mac_key_, HkdfSha256(kek, "cadcanfs v1 config-mac", 32));
  CADCANFS_ASSIGN_OR_RETURN(key.staging_key_, HkdfSha256(kek, "cadcanfs v1 staging", 32));
  CADCANFS_ASSIGN_OR_RETURN(key.token_store_key_, HkdfSha256(kek, "cadcanfs v1 token-store", 32));
  return key;
}

}  // namespace cadcanfs
