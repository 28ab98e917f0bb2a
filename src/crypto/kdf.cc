#include "cadcanfs/crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdlib>
#include <memory>

namespace cadcanfs {

namespace {

struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter>;

// Algorithms are fetched once, as in gcm.cc: implicit fetches per call are slow and
// contend on OpenSSL's locks, and HKDF and HMAC run on every file open.
EVP_KDF* FetchedHkdf() {
  static EVP_KDF* kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
  return kdf;
}

const EVP_MD* FetchedSha256() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) std::abort();
    return m;
  }();
  return md;
}

KdfCtxPtr NewKdfContext(EVP_KDF* kdf) {
  if (kdf == nullptr) return nullptr;
  return KdfCtxPtr(EVP_KDF_CTX_new(kdf));
}

}  // namespace

Result<SecretBytes> HkdfSha256(const SecretBytes& input_key, std::string_view info,
                               size_t out_size) {
  KdfCtxPtr ctx = NewKdfContext(FetchedHkdf());
  if (!ctx) return Status::Error(Code::kInternal, "HKDF is unavailable");
  static char kDigest[] = "SHA256";
  // OSSL_PARAM takes non-const pointers; derivation only reads them.
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, kDigest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(input_key.data()),
                                        input_key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  SecretBytes out(out_size);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return Status::Error(Code::kInternal, "HKDF derivation failed");
  }
  return out;
}

Digest HmacSha256(const SecretBytes& key, ByteSpan message) {
  Digest out{};
  unsigned int len = 0;
  static const uint8_t kEmpty = 0;
  if (HMAC(FetchedSha256(), key.data(), static_cast<int>(key.size()),
           message.empty() ? &kEmpty : message.data(), message.size(), out.data(),
           &len) == nullptr) {
    std::abort();  // only fails on allocation failure
  }
  return out;
}

Digest Sha256(ByteSpan message) {
  Digest out{};
  static const uint8_t kEmpty = 0;
  if (EVP_Digest(message.empty() ? &kEmpty : message.data(), message.size(), out.data(), nullptr,
                 FetchedSha256(), nullptr) != 1) {
    std::abort();
  }
  return out;
}

Result<SecretBytes> Scrypt(const SecretBytes& passphrase, ByteSpan salt, const ScryptParams& params,
                           size_t out_size) {
  // scrypt runs once per passphrase unlock: fetching per call is fine here.
  EVP_KDF* scrypt = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_SCRYPT, nullptr);
  KdfCtxPtr ctx = NewKdfContext(scrypt);
  EVP_KDF_free(scrypt);
  if (!ctx) return Status::Error(Code::kInternal, "scrypt is unavailable");
  uint64_t n = params.n;
  uint32_t r = params.r;
  uint32_t p = params.p;
  // Allow twice the nominal 128*r*N so OpenSSL's own bookkeeping fits.
  uint64_t maxmem = 2 * 128 * uint64_t{r} * n + (uint64_t{1} << 20);
  static uint8_t kEmpty = 0;
  OSSL_PARAM ossl_params[] = {
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_PASSWORD,
          passphrase.empty() ? &kEmpty : const_cast<uint8_t*>(passphrase.data()),
          passphrase.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end()};
  SecretBytes out(out_size);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), ossl_params) != 1) {
    return Status::Error(Code::kInvalidArgument, "scrypt derivation failed (bad parameters?)");
  }
  return out;
}

}  // namespace cadcanfs
