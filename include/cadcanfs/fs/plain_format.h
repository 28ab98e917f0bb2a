// PlainFormat: files and names as they are in the store (format.h).
//
// This is what an office's own OneDrive folder holds, and, over a local directory
// (`cadcanfs mount --plain DIR MNT`), the vehicle that runs the whole real-mount test
// suite over a second format. Names pass through, checked only against what every
// store refuses; content passes through a PlainFile; directories keep no state.
//
// Thread safety: PlainFormat holds no mutable state; a PlainFile is safe to share as
// FileContent says.
#ifndef CADCANFS_FS_PLAIN_FORMAT_H_
#define CADCANFS_FS_PLAIN_FORMAT_H_

#include <memory>
#include <mutex>
#include <shared_mutex>

#include "cadcanfs/fs/format.h"

namespace cadcanfs {

// The pass-through file: content is the store object's bytes.
class PlainFile final : public FileContent {
 public:
  // `can_reserve`: the store's capabilities().reserve (Allocate reserves space only then).
  PlainFile(std::unique_ptr<StoreFile> object, uint64_t size, bool writable, bool can_reserve);

  uint64_t size() const override;
  std::string id_for_log() const override;
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) override;
  Status Write(uint64_t offset, ByteSpan data) override;
  Result<uint64_t> Append(ByteSpan data) override;
  Status Truncate(uint64_t new_size) override;
  Status Allocate(uint64_t offset, uint64_t length, bool keep_size) override;
  Status Sync() override;
  Status Checkpoint() override;
  Result<ObjectInfo> Stat() override;
  bool writable() const override;
  Status UpgradeToWritable(std::unique_ptr<StoreFile> writable_object) override;
  Status SetMode(uint32_t mode) override;
  Status SetOwner(uid_t uid, gid_t gid) override;
  Status SetTimes(const struct timespec times[2]) override;

 private:
  Status WriteLocked(uint64_t offset, ByteSpan data);

  mutable std::shared_mutex mu_;
  mutable std::mutex id_mu_;
  mutable std::string id_for_log_;     // GUARDED_BY(id_mu_): empty until a Stat succeeds
  std::unique_ptr<StoreFile> object_;  // GUARDED_BY(mu_)
  uint64_t size_;                      // GUARDED_BY(mu_)
  bool writable_;                      // GUARDED_BY(mu_)
  const bool can_reserve_;
};

class PlainFormat final : public Format {
 public:
  explicit PlainFormat(std::unique_ptr<Store> store) : store_(std::move(store)) {}

  Store& store() override { return *store_; }
  uint32_t preferred_io_size() const override;
  Result<uint64_t> PlainSizeOfStored(uint64_t stored_size) const override { return stored_size; }
  uint64_t SymlinkLengthOfStored(uint64_t stored_length) const override { return stored_length; }

  // A plain tree keeps a directory's entries in the directory itself.
  bool entries_by_state() const override { return false; }
  std::string EntriesDirOfState(const DirState&) const override { return {}; }
  Result<DirState> ReadDirState(std::string_view store_dir) override;
  Result<DirState> MakeDirectory(std::string_view store_path, uint32_t mode) override;
  Status RemoveDirectory(std::string_view store_path, const DirState& state) override;
  Status ReleaseEmptyDirectory(std::string_view store_path) override;
  Status RestoreDirState(std::string_view store_path, const DirState& state) override;
  Result<DirListing> ListDirectory(std::string_view store_dir, const DirState& state) override;

  Result<EncryptedName> EncodeName(const DirState& dir, std::string_view name) const override;
  Status PrepareEntry(std::string_view store_dir, const EncryptedName& name) override;
  Status CleanupEntry(std::string_view store_dir, const EncryptedName& name) override;
  Result<std::string> DecodeStoredName(std::string_view store_dir, const DirState& dir,
                                       std::string_view stored_name) override;

  Result<std::unique_ptr<FileContent>> CreateFile(std::string_view store_path,
                                                  uint32_t mode) override;
  Result<std::unique_ptr<FileContent>> OpenFile(std::string_view store_path,
                                                bool writable) override;

  Result<std::string> EncodeSymlinkTarget(std::string_view target) const override;
  Result<std::string> DecodeSymlinkTarget(const DirState& dir,
                                          std::string_view stored) const override;
  Result<std::string> EncodeXattrName(std::string_view name) const override;
  Result<std::string> DecodeXattrName(std::string_view stored) const override;
  Result<Bytes> SealXattrValue(std::string_view stored_name, ByteSpan value) const override;
  Result<Bytes> OpenXattrValue(std::string_view stored_name, ByteSpan sealed) const override;

 private:
  std::unique_ptr<Store> store_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_PLAIN_FORMAT_H_
