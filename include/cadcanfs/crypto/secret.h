// SecretBytes: the one type that holds key material.
//
// Secrets live in anonymous mappings of their own, never in the ordinary heap. Those
// pages are
//   - locked with mlock() where the RLIMIT_MEMLOCK allows it (never swapped out),
//   - excluded from core dumps (MADV_DONTDUMP) and from forked children (MADV_DONTFORK),
//   - wiped with OPENSSL_cleanse() when the secret is destroyed.
// Secrets up to 4 KiB share such pages in wiped, reused slots (a file open makes a few,
// and a mapping each would cost ~10 system calls); larger ones get their own mapping.
//
// Thread safety: like std::vector. Move-only, so a secret is never silently copied.
#ifndef CADCANFS_CRYPTO_SECRET_H_
#define CADCANFS_CRYPTO_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace cadcanfs {

class SecretBytes {
 public:
  SecretBytes() = default;
  // Zero-filled secret of `size` bytes. Aborts on allocation failure: a process that
  // cannot hold its keys safely must not go on.
  explicit SecretBytes(size_t size);
  // Copies `data` into protected memory. The caller wipes its own copy.
  static SecretBytes CopyOf(std::span<const uint8_t> data);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::span<uint8_t> mutable_span() { return {data_, size_}; }
  // Whether mlock() succeeded for this secret (it may not for unprivileged users).
  bool locked() const { return locked_; }

  // Number of SecretBytes currently alive; tests use it to check that keys are
  // released (and therefore wiped) at unmount.
  static size_t LiveCount();

 private:
  void Release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
  bool locked_ = false;
};

}  // namespace cadcanfs

#endif  // CADCANFS_CRYPTO_SECRET_H_
