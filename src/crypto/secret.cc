#include "cadcanfs/crypto/secret.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace cadcanfs {

namespace {

std::atomic<size_t> g_live_secrets{0};

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

size_t RoundUp(size_t size, size_t unit) { return (size + unit - 1) / unit * unit; }

// Anonymous memory that stays out of core dumps and forked children, locked where the
// RLIMIT_MEMLOCK allows. Aborts if it cannot be mapped: a process that cannot hold
// its keys safely must not go on.
uint8_t* MapProtected(size_t bytes, bool& locked) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  // Best effort: both calls fail harmlessly where they are not allowed.
  (void)madvise(p, bytes, MADV_DONTDUMP);
  (void)madvise(p, bytes, MADV_DONTFORK);
  locked = mlock(p, bytes) == 0;
  return static_cast<uint8_t*>(p);
}

// Small secrets (file keys, derived keys) are carved from shared protected chunks.
// A mapping per secret costs about ten system calls to make and free, and every file
// open makes a few secrets; a reused slot costs a lock and a wipe. Slots come in
// power-of-two classes and are wiped on release, then kept for reuse; chunks are
// never returned, so a page that held a secret never leaves our protection.
class SecretArena {
 public:
  static constexpr size_t kLargestSlot = 4096;

  struct Slot {
    uint8_t* data;
    size_t capacity;
    bool locked;
  };

  static SecretArena& Get() {
    static SecretArena* arena = new SecretArena();  // never destroyed: secrets may outlive statics
    return *arena;
  }

  Slot Allocate(size_t size) {
    const size_t cls = ClassOf(size);
    std::lock_guard lock(mu_);
    FreeSlot* head = free_[cls];
    if (head != nullptr) {
      free_[cls] = head->next;
      const bool locked = head->locked;
      std::memset(head, 0, sizeof(FreeSlot));  // a new secret reads as zeros
      return Slot{reinterpret_cast<uint8_t*>(head), SlotSize(cls), locked};
    }
    const size_t bytes = SlotSize(cls);
    if (chunk_ == nullptr || chunk_used_ + bytes > kChunkBytes) {
      chunk_ = MapProtected(kChunkBytes, chunk_locked_);
      chunk_used_ = 0;
    }
    uint8_t* data = chunk_ + chunk_used_;
    chunk_used_ += bytes;
    return Slot{data, bytes, chunk_locked_};
  }

  // Wipes the slot and keeps it for the next secret of its class.
  void Release(uint8_t* data, size_t capacity, bool locked) {
    OPENSSL_cleanse(data, capacity);
    std::lock_guard lock(mu_);
    auto* slot = reinterpret_cast<FreeSlot*>(data);
    const size_t cls = ClassOf(capacity);
    slot->next = free_[cls];
    slot->locked = locked;
    free_[cls] = slot;
  }

 private:
  static constexpr size_t kSmallestSlot = 32;
  static constexpr size_t kClassCount = 8;  // 32 B .. 4 KiB
  static constexpr size_t kChunkBytes = 64 * 1024;

  // A released slot holds only this bookkeeping (no key bytes).
  struct FreeSlot {
    FreeSlot* next;
    bool locked;
  };
  static_assert(sizeof(FreeSlot) <= kSmallestSlot);

  static size_t SlotSize(size_t cls) { return kSmallestSlot << cls; }
  static size_t ClassOf(size_t size) {
    size_t cls = 0;
    while (SlotSize(cls) < size) ++cls;
    return cls;
  }

  std::mutex mu_;
  std::array<FreeSlot*, kClassCount> free_{};  // guarded by mu_
  uint8_t* chunk_ = nullptr;                   // guarded by mu_
  size_t chunk_used_ = 0;                      // guarded by mu_
  bool chunk_locked_ = false;                  // guarded by mu_
};

}  // namespace

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size == 0) return;
  if (size <= SecretArena::kLargestSlot) {
    SecretArena::Slot slot = SecretArena::Get().Allocate(size);
    data_ = slot.data;
    mapped_ = slot.capacity;
    locked_ = slot.locked;
  } else {
    mapped_ = RoundUp(size, PageSize());
    data_ = MapProtected(mapped_, locked_);
  }
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
  if (mapped_ <= SecretArena::kLargestSlot) {
    SecretArena::Get().Release(data_, mapped_, locked_);
  } else {
    OPENSSL_cleanse(data_, mapped_);
    if (locked_) munlock(data_, mapped_);
    munmap(data_, mapped_);
  }
  data_ = nullptr;
  size_ = mapped_ = 0;
  locked_ = false;
  g_live_secrets.fetch_sub(1, std::memory_order_relaxed);
}

size_t SecretBytes::LiveCount() { return g_live_secrets.load(std::memory_order_relaxed); }

}  // namespace cadcanfs
