#include "cadcanfs/fs/plain_format.h"

#include <algorithm>
#include <mutex>

#include "cadcanfs/common/bytes.h"

namespace cadcanfs {

namespace {

// What a plain store's entries need no state for: every directory's "id" is zero.
constexpr DirState kNoDirState{};

// Extended attributes pass through, but only the user namespace is the user's: the
// store's security.* and trusted.* attributes are not shown, as a vault shows none.
constexpr std::string_view kUserXattrPrefix = "user.";

// The unit a remote store transfers in is far larger than a page; 64 KiB keeps `cp`
// and friends from issuing page-sized writes.
constexpr uint32_t kPreferredIoSize = 64 * 1024;

}  // namespace

PlainFile::PlainFile(std::unique_ptr<StoreFile> object, uint64_t size, bool writable,
                     bool can_reserve)
    : object_(std::move(object)), size_(size), writable_(writable), can_reserve_(can_reserve) {}

uint64_t PlainFile::size() const {
  std::shared_lock lock(mu_);
  return size_;
}

std::string PlainFile::id_for_log() const {
  // The open object keeps its identity (an upgrade to writable reopens the same one):
  // one store call the first time, none after (an audited open asks every time).
  std::lock_guard id_lock(id_mu_);
  if (!id_for_log_.empty()) return id_for_log_;
  std::shared_lock lock(mu_);
  auto info = object_->Stat();
  if (!info.ok()) return "oid:unknown";  // asked again next time
  id_for_log_ = "oid:" + HexEncode(AsBytes(info->id.bytes()));
  return id_for_log_;
}

Result<size_t> PlainFile::Read(uint64_t offset, std::span<uint8_t> out) {
  std::shared_lock lock(mu_);
  if (offset >= size_ || out.empty()) return size_t{0};
  const size_t length = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - offset));
  return object_->ReadAt(offset, out.first(length));
}

Status PlainFile::Write(uint64_t offset, ByteSpan data) {
  std::unique_lock lock(mu_);
  return WriteLocked(offset, data);
}

Result<uint64_t> PlainFile::Append(ByteSpan data) {
  std::unique_lock lock(mu_);
  const uint64_t offset = size_;
  CADCANFS_RETURN_IF_ERROR(WriteLocked(offset, data));
  return offset;
}

Status PlainFile::WriteLocked(uint64_t offset, ByteSpan data) {
  if (data.empty()) return Status::Ok();
  CADCANFS_RETURN_IF_ERROR(object_->WriteAt(offset, data));
  size_ = std::max(size_, offset + data.size());
  return Status::Ok();
}

Status PlainFile::Truncate(uint64_t new_size) {
  std::unique_lock lock(mu_);
  CADCANFS_RETURN_IF_ERROR(object_->Truncate(new_size));
  size_ = new_size;
  return Status::Ok();
}

Status PlainFile::Allocate(uint64_t offset, uint64_t length, bool keep_size) {
  std::unique_lock lock(mu_);
  const uint64_t end = offset + length;
  if (!keep_size && end > size_) {
    CADCANFS_RETURN_IF_ERROR(object_->Truncate(end));
    size_ = end;
  }
  if (!can_reserve_) return Status::Ok();  // space is taken as bytes land
  return object_->Reserve(offset, length);
}

Status PlainFile::Sync() {
  std::shared_lock lock(mu_);
  return object_->Commit(std::nullopt).status();
}

Status PlainFile::Checkpoint() {
  std::shared_lock lock(mu_);
  return object_->Checkpoint();
}

Result<ObjectInfo> PlainFile::Stat() {
  std::shared_lock lock(mu_);
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, object_->Stat());
  info.size = size_;
  return info;
}

bool PlainFile::writable() const {
  std::shared_lock lock(mu_);
  return writable_;
}

Status PlainFile::UpgradeToWritable(std::unique_ptr<StoreFile> writable_object) {
  std::unique_lock lock(mu_);
  if (writable_) return Status::Ok();
  object_ = std::move(writable_object);
  writable_ = true;
  return Status::Ok();
}

Status PlainFile::SetMode(uint32_t mode) {
  std::shared_lock lock(mu_);
  return object_->SetMode(mode);
}

Status PlainFile::SetOwner(uid_t uid, gid_t gid) {
  std::shared_lock lock(mu_);
  return object_->SetOwner(uid, gid);
}

Status PlainFile::SetTimes(const struct timespec times[2]) {
  std::shared_lock lock(mu_);
  return object_->SetTimes(times);
}

uint32_t PlainFormat::preferred_io_size() const { return kPreferredIoSize; }

Result<DirState> PlainFormat::ReadDirState(std::string_view) { return kNoDirState; }

Result<DirState> PlainFormat::MakeDirectory(std::string_view store_path, uint32_t mode) {
  CADCANFS_RETURN_IF_ERROR(store_->MakeDir(store_path, mode));
  return kNoDirState;
}

Status PlainFormat::RemoveDirectory(std::string_view store_path, const DirState&) {
  return store_->RemoveDir(store_path);
}

Status PlainFormat::ReleaseEmptyDirectory(std::string_view store_path) {
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, store_->List(store_path));
  if (!entries.empty()) return Status::Error(Code::kNotEmpty, "directory is not empty");
  return Status::Ok();
}

Status PlainFormat::RestoreDirState(std::string_view, const DirState&) { return Status::Ok(); }

Result<DirListing> PlainFormat::ListDirectory(std::string_view store_dir, const DirState&) {
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, store_->List(store_dir));
  DirListing listing;
  listing.entries.reserve(entries.size());
  for (DirEntry& e : entries) {
    listing.entries.push_back(PlainDirEntry{e.name, e.name, e.type, std::move(e.info)});
  }
  return listing;
}

Result<EncryptedName> PlainFormat::EncodeName(const DirState&, std::string_view name) const {
  CADCANFS_RETURN_IF_ERROR(ValidatePlainName(name));
  return EncryptedName{std::string(name), std::string(name)};
}

Status PlainFormat::PrepareEntry(std::string_view, const EncryptedName&) { return Status::Ok(); }

Status PlainFormat::CleanupEntry(std::string_view, const EncryptedName&) { return Status::Ok(); }

Result<std::string> PlainFormat::DecodeStoredName(std::string_view, const DirState&,
                                                  std::string_view stored_name) {
  return std::string(stored_name);
}

Result<std::unique_ptr<FileContent>> PlainFormat::CreateFile(std::string_view store_path,
                                                             uint32_t mode) {
  OpenOptions options{
      .write = true, .create = true, .exclusive = true, .truncate = true, .mode = mode};
  CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> object, store_->Open(store_path, options));
  return std::unique_ptr<FileContent>(std::make_unique<PlainFile>(
      std::move(object), 0, /*writable=*/true, store_->capabilities().reserve));
}

Result<std::unique_ptr<FileContent>> PlainFormat::OpenFile(std::string_view store_path,
                                                           bool writable) {
  CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> object,
                            store_->Open(store_path, OpenOptions{.write = writable}));
  CADCANFS_ASSIGN_OR_RETURN(uint64_t size, object->Size());
  return std::unique_ptr<FileContent>(std::make_unique<PlainFile>(std::move(object), size, writable,
                                                                  store_->capabilities().reserve));
}

Result<std::string> PlainFormat::EncodeSymlinkTarget(std::string_view target) const {
  return std::string(target);
}

Result<std::string> PlainFormat::DecodeSymlinkTarget(const DirState&,
                                                     std::string_view stored) const {
  return std::string(stored);
}

Result<std::string> PlainFormat::EncodeXattrName(std::string_view name) const {
  if (name.substr(0, kUserXattrPrefix.size()) != kUserXattrPrefix) {
    return Status::Error(Code::kUnsupported, "only user attributes are stored");
  }
  if (name.size() == kUserXattrPrefix.size()) {
    return Status::Error(Code::kInvalidArgument, "empty attribute name");
  }
  return std::string(name);
}

Result<std::string> PlainFormat::DecodeXattrName(std::string_view stored) const {
  if (stored.substr(0, kUserXattrPrefix.size()) != kUserXattrPrefix) {
    return Status::Error(Code::kNotFound, "not a user attribute");
  }
  return std::string(stored);
}

Result<Bytes> PlainFormat::SealXattrValue(std::string_view, ByteSpan value) const {
  return Bytes(value.begin(), value.end());
}

Result<Bytes> PlainFormat::OpenXattrValue(std::string_view, ByteSpan sealed) const {
  return Bytes(sealed.begin(), sealed.end());
}

}  // namespace cadcanfs
