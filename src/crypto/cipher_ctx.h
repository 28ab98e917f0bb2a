// An owned OpenSSL cipher context, for the one-shot primitives (SIV, key wrap).
#ifndef CADCANFS_SRC_CRYPTO_CIPHER_CTX_H_
#define CADCANFS_SRC_CRYPTO_CIPHER_CTX_H_

#include <openssl/evp.h>

#include <memory>

namespace cadcanfs::crypto_internal {

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

}  // namespace cadcanfs::crypto_internal

#endif  // CADCANFS_SRC_CRYPTO_CIPHER_CTX_H_
