// AES-256-GCM for content blocks: the hot path.
//
// The cipher is fetched once per process and every thread keeps one
// EVP_CIPHER_CTX. A GcmKey carries a process-unique id, so a thread that seals or
// opens many blocks under the same key re-initialises its context with only the
// nonce, not the key schedule (the "IV-only re-init" lever in
// docs/performance.md).
//
// Thread safety: GcmKey is immutable after construction and may be shared; the
// functions are safe to call concurrently.
#ifndef CADCANFS_CRYPTO_GCM_H_
#define CADCANFS_CRYPTO_GCM_H_

#include <cstdint>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"

namespace cadcanfs {

inline constexpr size_t kGcmKeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

class GcmKey {
 public:
  // REQUIRES: key.size() == kGcmKeySize.
  explicit GcmKey(SecretBytes key);
  GcmKey(GcmKey&&) noexcept = default;
  GcmKey& operator=(GcmKey&&) noexcept = default;

  const uint8_t* data() const { return key_.data(); }
  uint64_t id() const { return id_; }

 private:
  SecretBytes key_;
  uint64_t id_;
};

// Encrypts `plaintext` into `ciphertext_out` (same length; may alias) and writes the
// 16-byte tag. `aad` is authenticated but not encrypted.
Status GcmSeal(const GcmKey& key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext,
               uint8_t* ciphertext_out, uint8_t* tag_out);

// Decrypts and verifies. On a tag mismatch returns kAuthenticationFailed and leaves
// `plaintext_out` wiped, so unauthenticated bytes are never handed on.
Status GcmOpen(const GcmKey& key, ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag,
               uint8_t* plaintext_out);

}  // namespace cadcanfs

#endif  // CADCANFS_CRYPTO_GCM_H_
