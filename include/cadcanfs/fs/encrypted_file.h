// EncryptedFile: random-access plaintext reads and writes over one ciphertext object.
//
// Reads decrypt only the blocks they touch; a write re-encrypts only the blocks it
// touches (plus the old last block when the file grows, to clear its last-block
// flag), so both cost O(blocks touched), never O(file), and rsync sees only those
// blocks change. Each block gets a fresh random nonce every time it is written.
//
// Thread safety: Read and Sync may run concurrently with each other; Write, Truncate
// and Allocate are serialised against everything else by an internal reader/writer lock.
// Long writes poll CancelScope between batches: a cancelled one is undone (kInterrupted).
#ifndef CADCANFS_FS_ENCRYPTED_FILE_H_
#define CADCANFS_FS_ENCRYPTED_FILE_H_

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <span>
#include <vector>

#include "cadcanfs/common/status.h"
#include "cadcanfs/fs/format.h"
#include "cadcanfs/store/store.h"
#include "cadcanfs/vault/content.h"
#include "cadcanfs/vault/file_header.h"
#include "cadcanfs/vault/master_key.h"

namespace cadcanfs {

class EncryptedFile final : public FileContent {
 public:
  // Creates a new object at `path` (exclusive) holding an empty file.
  static Result<std::unique_ptr<EncryptedFile>> Create(Store& store, std::string_view path,
                                                       const MasterKey& master, BlockLayout layout,
                                                       uint32_t mode);
  // Opens an existing object with whichever of `masters` wrapped its key.
  static Result<std::unique_ptr<EncryptedFile>> Open(Store& store, std::string_view path,
                                                     bool writable,
                                                     std::span<const MasterKey* const> masters,
                                                     BlockLayout layout);

  // `can_reserve`: the store's capabilities().reserve (Allocate reserves space only then).
  EncryptedFile(std::unique_ptr<StoreFile> object, FileKeys keys, BlockLayout layout,
                uint64_t plain_size, bool writable = true, bool can_reserve = true);

  uint64_t size() const override;
  const FileId& file_id() const { return keys_.file_id; }
  std::string id_for_log() const override;  // "fid:<hex>", safe to log

  // Reads up to out.size() bytes at `offset`; fewer only at end of file.
  // kAuthenticationFailed (with the block index in the message) on tampering.
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) override;
  // Writes at any offset; a gap past the end reads back as zeros.
  Status Write(uint64_t offset, ByteSpan data) override;
  // Writes at the current end of file, atomically with respect to other writers
  // (O_APPEND). Returns the offset the data landed at.
  Result<uint64_t> Append(ByteSpan data) override;
  Status Truncate(uint64_t new_size) override;
  // Reserves ciphertext space for plaintext [offset, offset+length) without changing
  // the size (fallocate mode 0 beyond EOF extends the file with zeros instead).
  Status Allocate(uint64_t offset, uint64_t length, bool keep_size) override;
  Status Sync() override;
  Status Checkpoint() override;
  // The ciphertext object's attributes with `size` replaced by the plaintext size.
  Result<ObjectInfo> Stat() override;
  bool writable() const override { return writable_.load(std::memory_order_acquire); }
  // Swaps the store object of a read-only file for a writable one of the same object, so
  // that every handle keeps sharing this file object.
  Status UpgradeToWritable(std::unique_ptr<StoreFile> writable_object) override;
  // The ciphertext object's metadata (mode, owner, times), reachable while it is open
  // even after its last name was removed.
  Status SetMode(uint32_t mode) override { return object_->SetMode(mode); }
  Status SetOwner(uid_t uid, gid_t gid) override { return object_->SetOwner(uid, gid); }
  Status SetTimes(const struct timespec times[2]) override { return object_->SetTimes(times); }

  // Authenticates every block; used by fsck.
  Status VerifyAllBlocks();

 private:
  // One write: plaintext [offset, end) from `data` (zeros when null), giving `new_size`.
  struct WriteSpan {
    uint64_t offset;
    uint64_t end;
    uint64_t new_size;
    const uint8_t* data;
  };
  // Sealed bytes below `below` that a growing write keeps back until its tail landed:
  // `bytes` belong at ciphertext offset `offset` (empty if nothing was held back).
  struct HeldBytes {
    uint64_t below;
    uint64_t offset;
    std::vector<uint8_t>& bytes;
  };

  // Writes `length` bytes at `offset` from `data`, or zeros when data is null.
  Status WriteRangeLocked(uint64_t offset, uint64_t length, const uint8_t* data);
  // Seals blocks [first, last] of `span` and stores them, keeping back into `held`
  // (if given) whatever lies below held->below.
  Status WriteBlocksLocked(const WriteSpan& span, uint64_t first, uint64_t last, HeldBytes* held);
  // Cuts the file to `new_size` < size().
  Status ShrinkLocked(uint64_t new_size);
  // Writes the header's pending-resize field (0 clears it).
  Status RecordPendingLocked(uint64_t cipher_size);
  // Decrypts block `index` of the current file into `out` (returns its length).
  Result<uint32_t> ReadBlockLocked(uint64_t index, uint8_t* out);

  // Asks the store for the ciphertext ahead of a read [offset, end) that continues the
  // previous one.
  void PrefetchAfter(uint64_t offset, uint64_t end);

  // The plaintext of a partial last block, kept from the write that sealed it: the
  // next appending write re-seals that block and would otherwise read and decrypt it
  // again (tar appends in 10 KiB records, split further at page edges).
  void RememberTailLocked(uint64_t index, const uint8_t* plain, uint32_t length);
  // Fills `plain` with block `index` as stored, from the remembered tail if it is that block.
  Status LoadBlockLocked(uint64_t index, uint8_t* plain);

  mutable std::shared_mutex mu_;
  std::vector<uint8_t> tail_;                  // guarded by mu_; plaintext of block tail_index_
  uint64_t tail_index_ = 0;                    // guarded by mu_
  bool tail_valid_ = false;                    // guarded by mu_
  std::atomic<uint64_t> next_sequential_{0};   // where a streaming read would go on
  std::atomic<uint64_t> prefetched_until_{0};  // ciphertext offset already requested
  std::unique_ptr<StoreFile> object_;
  FileKeys keys_;
  BlockLayout layout_;
  uint64_t plain_size_;  // guarded by mu_
  std::atomic<bool> writable_;
  const bool can_reserve_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_ENCRYPTED_FILE_H_
