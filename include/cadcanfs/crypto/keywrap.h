// AES key wrap (RFC 3394, NIST SP 800-38F "KW"), used to wrap every data key and
// the vault's name key under the master key.
//
// Chosen over AES-GCM because it is deterministic and needs no nonce: wrapping
// millions of keys under one master key has no nonce-collision bound.
//
// Thread safety: the functions are safe to call concurrently.
#ifndef CADCANFS_CRYPTO_KEYWRAP_H_
#define CADCANFS_CRYPTO_KEYWRAP_H_

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs {

inline constexpr size_t kKeyWrapOverhead = 8;

// `kek` is 16, 24 or 32 bytes; `key` is a multiple of 8 bytes, at least 16.
Result<Bytes> AesKeyWrap(const SecretBytes& kek, const SecretBytes& key);
// Returns kAuthenticationFailed when the integrity check value does not match.
Result<SecretBytes> AesKeyUnwrap(const SecretBytes& kek, ByteSpan wrapped);

}  // namespace cadcanfs

#endif  // CADCANFS_CRYPTO_KEYWRAP_H_
