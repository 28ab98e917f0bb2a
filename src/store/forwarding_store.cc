#include "cadcanfs/store/forwarding_store.h"

namespace cadcanfs {

Result<size_t> ForwardingStoreFile::ReadAt(uint64_t offset, MutableByteSpan out) {
  return base_->ReadAt(offset, out);
}
Status ForwardingStoreFile::WriteAt(uint64_t offset, ByteSpan data) {
  return base_->WriteAt(offset, data);
}
Status ForwardingStoreFile::Truncate(uint64_t size) { return base_->Truncate(size); }
Result<ObjectInfo> ForwardingStoreFile::Commit(std::optional<std::string> if_match_etag) {
  return base_->Commit(std::move(if_match_etag));
}
Status ForwardingStoreFile::Checkpoint() { return base_->Checkpoint(); }
Status ForwardingStoreFile::Abort() { return base_->Abort(); }
Result<uint64_t> ForwardingStoreFile::Size() { return base_->Size(); }
Result<ObjectInfo> ForwardingStoreFile::Stat() { return base_->Stat(); }
Status ForwardingStoreFile::Reserve(uint64_t offset, uint64_t length) {
  return base_->Reserve(offset, length);
}
void ForwardingStoreFile::Prefetch(uint64_t offset, uint64_t length) {
  base_->Prefetch(offset, length);
}
Status ForwardingStoreFile::SetMode(uint32_t mode) { return base_->SetMode(mode); }
Status ForwardingStoreFile::SetOwner(uid_t uid, gid_t gid) { return base_->SetOwner(uid, gid); }
Status ForwardingStoreFile::SetTimes(const struct timespec times[2]) {
  return base_->SetTimes(times);
}
std::string ForwardingStoreFile::ResumeState() { return base_->ResumeState(); }
uint64_t ForwardingStoreFile::ResumeUpload(std::string_view state) {
  return base_->ResumeUpload(state);
}

StoreCapabilities ForwardingStore::capabilities() const { return base_.capabilities(); }
Result<ObjectInfo> ForwardingStore::Stat(std::string_view path) { return base_.Stat(path); }
Result<std::vector<DirEntry>> ForwardingStore::List(std::string_view dir) {
  return base_.List(dir);
}
Result<std::unique_ptr<StoreFile>> ForwardingStore::Open(std::string_view path,
                                                         const OpenOptions& options) {
  return base_.Open(path, options);
}
Result<Bytes> ForwardingStore::ReadSmall(std::string_view path, size_t max_size) {
  return base_.ReadSmall(path, max_size);
}
Status ForwardingStore::WriteAtomic(std::string_view path, ByteSpan data, bool exclusive) {
  return base_.WriteAtomic(path, data, exclusive);
}
Status ForwardingStore::MakeDir(std::string_view path, uint32_t mode) {
  return base_.MakeDir(path, mode);
}
Status ForwardingStore::RemoveDir(std::string_view path) { return base_.RemoveDir(path); }
Status ForwardingStore::Remove(std::string_view path) { return base_.Remove(path); }
Status ForwardingStore::Rename(std::string_view from, std::string_view to, RenameMode mode) {
  return base_.Rename(from, to, mode);
}
Status ForwardingStore::SyncDir(std::string_view dir) { return base_.SyncDir(dir); }
Status ForwardingStore::Symlink(std::string_view target, std::string_view path) {
  return base_.Symlink(target, path);
}
Result<std::string> ForwardingStore::ReadLink(std::string_view path) {
  return base_.ReadLink(path);
}
Status ForwardingStore::Link(std::string_view existing, std::string_view new_path) {
  return base_.Link(existing, new_path);
}
Status ForwardingStore::MakeNode(std::string_view path, ObjectType type, uint32_t mode,
                                 uint64_t rdev) {
  return base_.MakeNode(path, type, mode, rdev);
}
Status ForwardingStore::SetMode(std::string_view path, uint32_t mode) {
  return base_.SetMode(path, mode);
}
Status ForwardingStore::SetOwner(std::string_view path, uid_t uid, gid_t gid) {
  return base_.SetOwner(path, uid, gid);
}
Status ForwardingStore::SetTimes(std::string_view path, const struct timespec times[2]) {
  return base_.SetTimes(path, times);
}
Result<StoreSpace> ForwardingStore::Space() { return base_.Space(); }
Result<Bytes> ForwardingStore::GetXattr(std::string_view path, std::string_view name) {
  return base_.GetXattr(path, name);
}
Status ForwardingStore::SetXattr(std::string_view path, std::string_view name, ByteSpan value,
                                 int flags) {
  return base_.SetXattr(path, name, value, flags);
}
Result<std::vector<std::string>> ForwardingStore::ListXattrs(std::string_view path) {
  return base_.ListXattrs(path);
}
Status ForwardingStore::RemoveXattr(std::string_view path, std::string_view name) {
  return base_.RemoveXattr(path, name);
}
Result<std::vector<std::string>> ForwardingStore::PollChanges() { return base_.PollChanges(); }

}  // namespace cadcanfs
