#include "cadcanfs/access/keys.h"

#include "cadcanfs/crypto/kdf.h"

namespace cadcanfs::access {

Result<SecretBytes> DeriveCaseCodeKey(const VaultConfig& config, const MasterKey& master) {
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes name_key, UnlockConfig(config, master));
  return HkdfSha256(name_key, "cadcanfs v1 case-code", kAccessKeySize);
}

Result<SecretBytes> DeriveAuditKey(const MasterKey& master) {
  return HkdfSha256(master.config_mac_key(), "cadcanfs v1 audit-mac", kAccessKeySize);
}

}  // namespace cadcanfs::access
