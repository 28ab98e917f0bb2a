// ForwardingStore and ForwardingStoreFile: decorators that pass every call to another
// store or file, so a test can override just the calls it wants to fail or observe
// (CryFS-style layers).
#ifndef CADCANFS_TESTS_TESTING_FORWARDING_STORE_H_
#define CADCANFS_TESTS_TESTING_FORWARDING_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "cadcanfs/store/store.h"

namespace cadcanfs::testing {

class ForwardingStoreFile : public StoreFile {
 public:
  explicit ForwardingStoreFile(std::unique_ptr<StoreFile> base) : base_(std::move(base)) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    return base_->ReadAt(offset, out);
  }
  Status WriteAt(uint64_t offset, ByteSpan data) override { return base_->WriteAt(offset, data); }
  Status Truncate(uint64_t size) override { return base_->Truncate(size); }
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    return base_->Commit(std::move(if_match_etag));
  }
  Status Checkpoint() override { return base_->Checkpoint(); }
  Status Abort() override { return base_->Abort(); }
  Result<uint64_t> Size() override { return base_->Size(); }
  Result<ObjectInfo> Stat() override { return base_->Stat(); }
  Status Reserve(uint64_t offset, uint64_t length) override {
    return base_->Reserve(offset, length);
  }
  void Prefetch(uint64_t offset, uint64_t length) override { base_->Prefetch(offset, length); }
  Status SetMode(uint32_t mode) override { return base_->SetMode(mode); }
  Status SetOwner(uid_t uid, gid_t gid) override { return base_->SetOwner(uid, gid); }
  Status SetTimes(const struct timespec times[2]) override { return base_->SetTimes(times); }

 protected:
  StoreFile& base() { return *base_; }

 private:
  std::unique_ptr<StoreFile> base_;
};

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store& base) : base_(base) {}

  StoreCapabilities capabilities() const override { return base_.capabilities(); }
  Result<ObjectInfo> Stat(std::string_view path) override { return base_.Stat(path); }
  Result<std::vector<DirEntry>> List(std::string_view dir) override { return base_.List(dir); }
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    return base_.Open(path, options);
  }
  Result<Bytes> ReadSmall(std::string_view path, size_t max_size) override {
    return base_.ReadSmall(path, max_size);
  }
  Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive) override {
    return base_.WriteAtomic(path, data, exclusive);
  }
  Status MakeDir(std::string_view path, uint32_t mode) override {
    return base_.MakeDir(path, mode);
  }
  Status RemoveDir(std::string_view path) override { return base_.RemoveDir(path); }
  Status Remove(std::string_view path) override { return base_.Remove(path); }
  Status Rename(std::string_view from, std::string_view to, RenameMode mode) override {
    return base_.Rename(from, to, mode);
  }
  Status SyncDir(std::string_view dir) override { return base_.SyncDir(dir); }
  Status Symlink(std::string_view target, std::string_view path) override {
    return base_.Symlink(target, path);
  }
  Result<std::string> ReadLink(std::string_view path) override { return base_.ReadLink(path); }
  Status Link(std::string_view existing, std::string_view new_path) override {
    return base_.Link(existing, new_path);
  }
  Status MakeNode(std::string_view path, ObjectType type, uint32_t mode, uint64_t rdev) override {
    return base_.MakeNode(path, type, mode, rdev);
  }
  Status SetMode(std::string_view path, uint32_t mode) override {
    return base_.SetMode(path, mode);
  }
  Status SetOwner(std::string_view path, uid_t uid, gid_t gid) override {
    return base_.SetOwner(path, uid, gid);
  }
  Status SetTimes(std::string_view path, const struct timespec times[2]) override {
    return base_.SetTimes(path, times);
  }
  Result<StoreSpace> Space() override { return base_.Space(); }
  Result<std::vector<std::string>> PollChanges() override { return base_.PollChanges(); }
  Result<Bytes> GetXattr(std::string_view path, std::string_view name) override {
    return base_.GetXattr(path, name);
  }
  Status SetXattr(std::string_view path, std::string_view name, ByteSpan value,
                  int flags) override {
    return base_.SetXattr(path, name, value, flags);
  }
  Result<std::vector<std::string>> ListXattrs(std::string_view path) override {
    return base_.ListXattrs(path);
  }
  Status RemoveXattr(std::string_view path, std::string_view name) override {
    return base_.RemoveXattr(path, name);
  }

 private:
  Store& base_;
};

}  // namespace cadcanfs::testing

#endif  // CADCANFS_TESTS_TESTING_FORWARDING_STORE_H_
