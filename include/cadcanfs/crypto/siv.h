// AES-SIV (RFC 5297), deterministic authenticated encryption for names.
//
// The key is 32, 48 or 64 bytes (AES-128/192/256-SIV; vaults use 64). The output is
// the 16-byte synthetic IV followed by the ciphertext, as in RFC 5297. The plaintext
// must not be empty: OpenSSL's SIV provider produces no tag for an empty message, and
// names and symlink targets are never empty.
//
// Thread safety: the functions are safe to call concurrently.
#ifndef CADCANFS_CRYPTO_SIV_H_
#define CADCANFS_CRYPTO_SIV_H_

#include <initializer_list>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs {

inline constexpr size_t kSivTagSize = 16;
inline constexpr size_t kSivKeySize = 64;

// `associated_data` is the RFC 5297 vector of header components, in order.
Result<Bytes> SivEncrypt(const SecretBytes& key, std::initializer_list<ByteSpan> associated_data,
                         ByteSpan plaintext);
// Returns kAuthenticationFailed if the SIV does not verify.
Result<Bytes> SivDecrypt(const SecretBytes& key, std::initializer_list<ByteSpan> associated_data,
                         ByteSpan sealed);

}  // namespace cadcanfs

#endif  // CADCANFS_CRYPTO_SIV_H_
