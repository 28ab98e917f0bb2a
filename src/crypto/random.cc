#include "cadcanfs/crypto/random.h"

#include <openssl/rand.h>

#include <climits>

namespace cadcanfs {

Status FillRandom(std::span<uint8_t> out) {
  if (out.size() > INT_MAX || RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return Status::Error(Code::kInternal, "the random number generator failed");
  }
  return Status::Ok();
}

Result<SecretBytes> RandomSecret(size_t size) {
  SecretBytes secret(size);
  if (size > INT_MAX || RAND_priv_bytes(secret.data(), static_cast<int>(size)) != 1) {
    return Status::Error(Code::kInternal, "the random number generator failed");
  }
  return secret;
}

}  // namespace cadcanfs
