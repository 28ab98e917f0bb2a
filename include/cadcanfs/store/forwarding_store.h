// ForwardingStore and ForwardingStoreFile: decorators that pass every call on to the
// store or file they wrap, so that a decorator (staging, caching, a test's injected
// fault) overrides only the calls it changes, as CryFS stacks its layers.
#ifndef CADCANFS_STORE_FORWARDING_STORE_H_
#define CADCANFS_STORE_FORWARDING_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "cadcanfs/store/store.h"

namespace cadcanfs {

class ForwardingStoreFile : public StoreFile {
 public:
  explicit ForwardingStoreFile(std::shared_ptr<StoreFile> base) : base_(std::move(base)) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override;
  Status WriteAt(uint64_t offset, ByteSpan data) override;
  Status Truncate(uint64_t size) override;
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override;
  Status Checkpoint() override;
  Status Abort() override;
  Result<uint64_t> Size() override;
  Result<ObjectInfo> Stat() override;
  Status Reserve(uint64_t offset, uint64_t length) override;
  void Prefetch(uint64_t offset, uint64_t length) override;
  Status SetMode(uint32_t mode) override;
  Status SetOwner(uid_t uid, gid_t gid) override;
  Status SetTimes(const struct timespec times[2]) override;
  std::string ResumeState() override;
  uint64_t ResumeUpload(std::string_view state) override;

 protected:
  StoreFile& base() const { return *base_; }
  // For work that may outlive a call (a read cache's background fetches).
  const std::shared_ptr<StoreFile>& shared_base() const { return base_; }

 private:
  const std::shared_ptr<StoreFile> base_;
};

class ForwardingStore : public Store {
 public:
  // Owns `base`.
  explicit ForwardingStore(std::unique_ptr<Store> base) : owned_(std::move(base)), base_(*owned_) {}
  // A view of `base`, which must outlive this store (tests remount over one store).
  explicit ForwardingStore(Store& base) : base_(base) {}

  StoreCapabilities capabilities() const override;
  Result<ObjectInfo> Stat(std::string_view path) override;
  Result<std::vector<DirEntry>> List(std::string_view dir) override;
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override;
  Result<Bytes> ReadSmall(std::string_view path, size_t max_size) override;
  Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive = false) override;
  Status MakeDir(std::string_view path, uint32_t mode) override;
  Status RemoveDir(std::string_view path) override;
  Status Remove(std::string_view path) override;
  Status Rename(std::string_view from, std::string_view to, RenameMode mode) override;
  Status SyncDir(std::string_view dir) override;
  Status Symlink(std::string_view target, std::string_view path) override;
  Result<std::string> ReadLink(std::string_view path) override;
  Status Link(std::string_view existing, std::string_view new_path) override;
  Status MakeNode(std::string_view path, ObjectType type, uint32_t mode, uint64_t rdev) override;
  Status SetMode(std::string_view path, uint32_t mode) override;
  Status SetOwner(std::string_view path, uid_t uid, gid_t gid) override;
  Status SetTimes(std::string_view path, const struct timespec times[2]) override;
  Result<StoreSpace> Space() override;
  Result<Bytes> GetXattr(std::string_view path, std::string_view name) override;
  Status SetXattr(std::string_view path, std::string_view name, ByteSpan value, int flags) override;
  Result<std::vector<std::string>> ListXattrs(std::string_view path) override;
  Status RemoveXattr(std::string_view path, std::string_view name) override;
  Result<std::vector<std::string>> PollChanges() override;

 protected:
  Store& base() const { return base_; }

 private:
  const std::unique_ptr<Store> owned_;  // null for a view
  Store& base_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_FORWARDING_STORE_H_
