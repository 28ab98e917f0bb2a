#include "cadcanfs/crypto/gcm.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <atomic>
#include <cassert>
#include <climits>
#include <cstdlib>

namespace cadcanfs {

namespace {

std::atomic<uint64_t> g_next_key_id{1};

const EVP_CIPHER* FetchedGcm() {
  // Fetched once: implicit fetches per call are slow and contend on locks.
  static EVP_CIPHER* cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) std::abort();
    return c;
  }();
  return cipher;
}

// One context per thread and direction. `key_id` remembers which key the context
// was last initialised with, so the same key needs only a new nonce.
struct ThreadContext {
  EVP_CIPHER_CTX* ctx = nullptr;
  uint64_t key_id = 0;
  ThreadContext() : ctx(EVP_CIPHER_CTX_new()) {
    if (ctx == nullptr) std::abort();
  }
  ~ThreadContext() { EVP_CIPHER_CTX_free(ctx); }
  ThreadContext(const ThreadContext&) = delete;
  ThreadContext& operator=(const ThreadContext&) = delete;
};

ThreadContext& EncryptContext() {
  thread_local ThreadContext context;
  return context;
}

ThreadContext& DecryptContext() {
  thread_local ThreadContext context;
  return context;
}

bool InitContext(ThreadContext& tc, const GcmKey& key, ByteSpan nonce, int enc) {
  if (tc.key_id != key.id()) {
    if (EVP_CipherInit_ex2(tc.ctx, FetchedGcm(), key.data(), nonce.data(), enc, nullptr) != 1) {
      tc.key_id = 0;
      return false;
    }
    tc.key_id = key.id();
    return true;
  }
  return EVP_CipherInit_ex2(tc.ctx, nullptr, nullptr, nonce.data(), enc, nullptr) == 1;
}

bool AddAad(EVP_CIPHER_CTX* ctx, ByteSpan aad) {
  if (aad.empty()) return true;
  int len = 0;
  return EVP_CipherUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1;
}

Status CryptoFailure() { return Status::Error(Code::kInternal, "AES-GCM operation failed"); }

}  // namespace

GcmKey::GcmKey(SecretBytes key)
    : key_(std::move(key)), id_(g_next_key_id.fetch_add(1, std::memory_order_relaxed)) {
  assert(key_.size() == kGcmKeySize);
}

Status GcmSeal(const GcmKey& key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext,
               uint8_t* ciphertext_out, uint8_t* tag_out) {
  if (nonce.size() != kGcmNonceSize || plaintext.size() > INT_MAX) {
    return Status::Error(Code::kInvalidArgument, "bad AES-GCM nonce or length");
  }
  ThreadContext& tc = EncryptContext();
  if (!InitContext(tc, key, nonce, 1) || !AddAad(tc.ctx, aad)) return CryptoFailure();
  int len = 0;
  if (!plaintext.empty() && EVP_EncryptUpdate(tc.ctx, ciphertext_out, &len, plaintext.data(),
                                              static_cast<int>(plaintext.size())) != 1) {
    return CryptoFailure();
  }
  int final_len = 0;
  if (EVP_EncryptFinal_ex(tc.ctx, ciphertext_out + len, &final_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(tc.ctx, EVP_CTRL_AEAD_GET_TAG, kGcmTagSize, tag_out) != 1) {
    return CryptoFailure();
  }
  return Status::Ok();
}

Status GcmOpen(const GcmKey& key, ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag,
               uint8_t* plaintext_out) {
  if (nonce.size() != kGcmNonceSize || tag.size() != kGcmTagSize || ciphertext.size() > INT_MAX) {
    return Status::Error(Code::kInvalidArgument, "bad AES-GCM nonce, tag or length");
  }
  ThreadContext& tc = DecryptContext();
  if (!InitContext(tc, key, nonce, 0) || !AddAad(tc.ctx, aad)) return CryptoFailure();
  int len = 0;
  if (!ciphertext.empty() && EVP_DecryptUpdate(tc.ctx, plaintext_out, &len, ciphertext.data(),
                                               static_cast<int>(ciphertext.size())) != 1) {
    return CryptoFailure();
  }
  if (EVP_CIPHER_CTX_ctrl(tc.ctx, EVP_CTRL_AEAD_SET_TAG, kGcmTagSize,
                          const_cast<uint8_t*>(tag.data())) != 1) {
    return CryptoFailure();
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(tc.ctx, plaintext_out + len, &final_len) != 1) {
    if (!ciphertext.empty()) OPENSSL_cleanse(plaintext_out, ciphertext.size());
    return Status::Error(Code::kAuthenticationFailed, "AES-GCM tag mismatch");
  }
  return Status::Ok();
}

}  // namespace cadcanfs
