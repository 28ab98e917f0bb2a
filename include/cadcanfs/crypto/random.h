// Randomness from the OpenSSL CSPRNG. Thread-safe.
#ifndef CADCANFS_CRYPTO_RANDOM_H_
#define CADCANFS_CRYPTO_RANDOM_H_

#include <cstdint>
#include <span>

#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs {

// Public randomness: nonces, file ids, directory ids, salts.
Status FillRandom(std::span<uint8_t> out);
// Key material, from OpenSSL's private DRBG so it never shares state with nonces.
Result<SecretBytes> RandomSecret(size_t size);

}  // namespace cadcanfs

#endif  // CADCANFS_CRYPTO_RANDOM_H_
