#include "cadcanfs/crypto/secret.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace cadcanfs {

namespace {
std::atomic<size_t> g_live_secrets{0};

size_t RoundUpToPages(size_t size) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (size + page - 1) / page * page;
}
}  // namespace

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size == 0) return;
  mapped_ = RoundUpToPages(size);
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  data_ = static_cast<uint8_t*>(p);
  // Best effort: both calls fail harmlessly where they are not allowed.
  (void)madvise(data_, mapped_, MADV_DONTDUMP);
  (void)madvise(data_, mapped_, MADV_DONTFORK);
  locked_ = mlock(data_, mapped_) == 0;
  g_live_secrets.fetch_add(1, std::memory_order_relaxed);
}

SecretBytes SecretBytes::CopyOf(std::span<const uint8_t> data) {
  SecretBytes secret(data.size());
  if (!data.empty()) std::memcpy(secret.data_, data.data(), data.size());
  return secret;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(other.data_), size_(other.size_), mapped_(other.mapped_), locked_(other.locked_) {
  other.data_ = nullptr;
  other.size_ = other.mapped_ = 0;
  other.locked_ = false;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = other.data_;
    size_ = other.size_;
    mapped_ = other.mapped_;
    locked_ = other.locked_;
    other.data_ = nullptr;
    other.size_ = other.mapped_ = 0;
    other.locked_ = false;
  }
  return *this;
}

SecretBytes::~SecretBytes() { Release(); }

void SecretBytes::Release() {
  if (data_ == nullptr) return;
  OPENSSL_cleanse(data_, mapped_);
  if (locked_) munlock(data_, mapped_);
  munmap(data_, mapped_);
  data_ = nullptr;
  size_ = mapped_ = 0;
  locked_ = false;
  g_live_secrets.fetch_sub(1, std::memory_order_relaxed);
}

size_t SecretBytes::LiveCount() { return g_live_secrets.load(std::memory_order_relaxed); }

}  // namespace cadcanfs
