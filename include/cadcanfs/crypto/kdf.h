// Key derivation and message authentication: HKDF-SHA256, HMAC-SHA256, SHA-256
// and scrypt, all through OpenSSL 3's EVP interfaces.
//
// Thread safety: the functions are safe to call concurrently.
#ifndef CADCANFS_CRYPTO_KDF_H_
#define CADCANFS_CRYPTO_KDF_H_

#include <array>
#include <string_view>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs {

inline constexpr size_t kSha256Size = 32;
using Digest = std::array<uint8_t, kSha256Size>;

// HKDF-SHA256 (RFC 5869) with an empty salt. `info` separates the derived keys.
Result<SecretBytes> HkdfSha256(const SecretBytes& input_key, std::string_view info,
                               size_t out_size);

Digest HmacSha256(const SecretBytes& key, ByteSpan message);
Digest Sha256(ByteSpan message);

struct ScryptParams {
  uint64_t n = uint64_t{1} << 16;  // N=2^16, r=8 => 128*r*N = 64 MiB of memory
  uint32_t r = 8;
  uint32_t p = 1;
};

// scrypt (RFC 7914) of `passphrase` with `salt`, producing `out_size` bytes.
Result<SecretBytes> Scrypt(const SecretBytes& passphrase, ByteSpan salt, const ScryptParams& params,
                           size_t out_size);

}  // namespace cadcanfs

#endif  // CADCANFS_CRYPTO_KDF_H_
