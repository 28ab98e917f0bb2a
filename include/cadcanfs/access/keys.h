// The access layer's two keys, each derived with its own HKDF label so that no key
// serves two roles:
//   case-code key = HKDF(name key, "cadcanfs v1 case-code", 32)
//   audit key     = HKDF(config-MAC key, "cadcanfs v1 audit-mac", 32)
//
// Why these roots (docs/access-policy.md, "Keys"):
//   - Case codes must stay the same across mounts *and* across master-key rotations
//     (designers keep working paths, old audit lines keep resolving), so they come
//     from the vault's name key, which rekey rewraps but never replaces. Only a holder
//     of a master key can unwrap it.
//   - The audit key must change when the master key rotates (a person who held the old
//     key must not be able to forge new audit lines), so it comes from the master key
//     itself. MasterKey keeps no copy of the KEK, only subkeys, so the audit key is
//     expanded from its config-MAC subkey (HKDF extract treats that key as input keying
//     material, not as an HMAC key, so the roles stay apart).
//
// Thread safety: the functions are safe to call concurrently.
#ifndef CADCANFS_ACCESS_KEYS_H_
#define CADCANFS_ACCESS_KEYS_H_

#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/vault/config.h"
#include "cadcanfs/vault/master_key.h"

namespace cadcanfs::access {

inline constexpr size_t kAccessKeySize = 32;

// kWrongKey / kAuthenticationFailed as UnlockConfig (the name key is unwrapped here).
Result<SecretBytes> DeriveCaseCodeKey(const VaultConfig& config, const MasterKey& master);
// Needs no vault: a key file alone is enough to verify an audit log.
Result<SecretBytes> DeriveAuditKey(const MasterKey& master);

}  // namespace cadcanfs::access

#endif  // CADCANFS_ACCESS_KEYS_H_
