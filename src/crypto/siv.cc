#include "cadcanfs/crypto/siv.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <climits>
#include <memory>

#include "cipher_ctx.h"

namespace cadcanfs {

namespace {

using crypto_internal::CipherCtxPtr;

const EVP_CIPHER* FetchedSiv(size_t key_size) {
  static EVP_CIPHER* siv128 = EVP_CIPHER_fetch(nullptr, "AES-128-SIV", nullptr);
  static EVP_CIPHER* siv192 = EVP_CIPHER_fetch(nullptr, "AES-192-SIV", nullptr);
  static EVP_CIPHER* siv256 = EVP_CIPHER_fetch(nullptr, "AES-256-SIV", nullptr);
  switch (key_size) {
    case 32:
      return siv128;
    case 48:
      return siv192;
    case 64:
      return siv256;
    default:
      return nullptr;
  }
}

// Initialises a context for one SIV operation and feeds the associated data.
Result<CipherCtxPtr> StartSiv(const SecretBytes& key,
                              std::initializer_list<ByteSpan> associated_data, int enc) {
  const EVP_CIPHER* cipher = FetchedSiv(key.size());
  if (cipher == nullptr) return Status::Error(Code::kInvalidArgument, "bad AES-SIV key size");
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex2(ctx.get(), cipher, key.data(), nullptr, enc, nullptr) != 1) {
    return Status::Error(Code::kInternal, "AES-SIV initialisation failed");
  }
  for (ByteSpan ad : associated_data) {
    int len = 0;
    // An empty component is still a component in RFC 5297, so pass a valid pointer.
    static const uint8_t kEmpty = 0;
    const uint8_t* p = ad.empty() ? &kEmpty : ad.data();
    if (ad.size() > INT_MAX ||
        EVP_CipherUpdate(ctx.get(), nullptr, &len, p, static_cast<int>(ad.size())) != 1) {
      return Status::Error(Code::kInternal, "AES-SIV associated data failed");
    }
  }
  return ctx;
}

}  // namespace

Result<Bytes> SivEncrypt(const SecretBytes& key, std::initializer_list<ByteSpan> associated_data,
                         ByteSpan plaintext) {
  if (plaintext.empty() || plaintext.size() > INT_MAX - kSivTagSize) {
    return Status::Error(Code::kInvalidArgument, "AES-SIV input must be 1 byte to 2 GiB long");
  }
  CADCANFS_ASSIGN_OR_RETURN(CipherCtxPtr ctx, StartSiv(key, associated_data, 1));
  Bytes out(kSivTagSize + plaintext.size());
  int len = 0;
  uint8_t* dst = out.data() + kSivTagSize;
  if (EVP_EncryptUpdate(ctx.get(), dst, &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), dst, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kSivTagSize, out.data()) != 1) {
    return Status::Error(Code::kInternal, "AES-SIV encryption failed");
  }
  return out;
}

Result<Bytes> SivDecrypt(const SecretBytes& key, std::initializer_list<ByteSpan> associated_data,
                         ByteSpan sealed) {
  if (sealed.size() <= kSivTagSize || sealed.size() > INT_MAX) {
    return Status::Error(Code::kAuthenticationFailed, "AES-SIV input has a bad length");
  }
  CADCANFS_ASSIGN_OR_RETURN(CipherCtxPtr ctx, StartSiv(key, associated_data, 0));
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kSivTagSize,
                          const_cast<uint8_t*>(sealed.data())) != 1) {
    return Status::Error(Code::kInternal, "AES-SIV tag setup failed");
  }
  const size_t n = sealed.size() - kSivTagSize;
  Bytes out(n);
  int len = 0;
  if (EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data() + kSivTagSize,
                        static_cast<int>(n)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data(), &len) != 1) {
    OPENSSL_cleanse(out.data(), n);
    return Status::Error(Code::kAuthenticationFailed, "AES-SIV tag mismatch");
  }
  return out;
}

}  // namespace cadcanfs
