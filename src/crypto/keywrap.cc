#include "cadcanfs/crypto/keywrap.h"

#include <openssl/evp.h>

#include <climits>
#include <memory>

#include "cipher_ctx.h"

namespace cadcanfs {

namespace {

using crypto_internal::CipherCtxPtr;

const EVP_CIPHER* FetchedWrap(size_t kek_size) {
  static EVP_CIPHER* wrap128 = EVP_CIPHER_fetch(nullptr, "AES-128-WRAP", nullptr);
  static EVP_CIPHER* wrap192 = EVP_CIPHER_fetch(nullptr, "AES-192-WRAP", nullptr);
  static EVP_CIPHER* wrap256 = EVP_CIPHER_fetch(nullptr, "AES-256-WRAP", nullptr);
  switch (kek_size) {
    case 16:
      return wrap128;
    case 24:
      return wrap192;
    case 32:
      return wrap256;
    default:
      return nullptr;
  }
}

// Runs one wrap (enc=1) or unwrap (enc=0) into `out`, returning the output length or -1.
int RunWrap(const SecretBytes& kek, ByteSpan in, uint8_t* out, int enc) {
  const EVP_CIPHER* cipher = FetchedWrap(kek.size());
  if (cipher == nullptr || in.size() > INT_MAX) return -1;
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return -1;
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  int len = 0, final_len = 0;
  if (EVP_CipherInit_ex2(ctx.get(), cipher, kek.data(), nullptr, enc, nullptr) != 1 ||
      EVP_CipherUpdate(ctx.get(), out, &len, in.data(), static_cast<int>(in.size())) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), out + len, &final_len) != 1) {
    return -1;
  }
  return len + final_len;
}

}  // namespace

Result<Bytes> AesKeyWrap(const SecretBytes& kek, const SecretBytes& key) {
  if (key.size() < 16 || key.size() % 8 != 0) {
    return Status::Error(Code::kInvalidArgument, "key wrap input must be a multiple of 8 bytes");
  }
  Bytes out(key.size() + kKeyWrapOverhead);
  int n = RunWrap(kek, key.span(), out.data(), 1);
  if (n != static_cast<int>(out.size())) {
    return Status::Error(Code::kInternal, "AES key wrap failed");
  }
  return out;
}

Result<SecretBytes> AesKeyUnwrap(const SecretBytes& kek, ByteSpan wrapped) {
  if (wrapped.size() < 24 || wrapped.size() % 8 != 0) {
    return Status::Error(Code::kAuthenticationFailed, "wrapped key has a bad length");
  }
  SecretBytes out(wrapped.size() - kKeyWrapOverhead);
  int n = RunWrap(kek, wrapped, out.data(), 0);
  if (n != static_cast<int>(out.size())) {
    return Status::Error(Code::kAuthenticationFailed, "AES key unwrap integrity check failed");
  }
  return out;
}

}  // namespace cadcanfs
