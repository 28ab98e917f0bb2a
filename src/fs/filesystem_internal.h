// Internal to the filesystem core: what the theme files of FileSystem share (the open
// handle tables and small helpers). filesystem.cc holds construction and the helpers
// every theme uses; filesystem_names.cc, _attributes.cc, _files.cc, _directories.cc and
// _xattrs.cc hold one theme each, as gocryptfs splits its fusefrontend.
#ifndef CADCANFS_SRC_FS_FILESYSTEM_INTERNAL_H_
#define CADCANFS_SRC_FS_FILESYSTEM_INTERNAL_H_

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "cadcanfs/fs/filesystem.h"

namespace cadcanfs {
namespace fs_internal {
inline constexpr size_t kMaxPathDepth = 4096;
inline constexpr std::string_view kUserPrefix = "user.";
inline constexpr std::string_view kCapabilityXattr = "security.capability";

inline Status Stale() { return Status::Error(Code::kStale, "unknown inode"); }

inline Status ReadOnly() { return Status::Error(Code::kReadOnly, "read-only mount"); }

inline const ObjectId& KeyOf(const ObjectInfo& info) { return info.id; }

// The path-addressed metadata calls of a store, shaped like an open object's.
struct StorePathMetadata {
  Store& store;
  const std::string& path;
  Status SetMode(uint32_t mode) { return store.SetMode(path, mode); }
  Status SetOwner(uid_t uid, gid_t gid) { return store.SetOwner(path, uid, gid); }
  Status SetTimes(const struct timespec times[2]) { return store.SetTimes(path, times); }
};

// Applies chmod, chown and utimens changes to a target with SetMode, SetOwner and
// SetTimes (an open file or a store path).
template <typename Target>
inline Status ApplyMetadata(Target& target, const AttrChanges& changes) {
  if (changes.mode) CADCANFS_RETURN_IF_ERROR(target.SetMode(*changes.mode & 07777));
  if (changes.uid || changes.gid) {
    CADCANFS_RETURN_IF_ERROR(target.SetOwner(changes.uid.value_or(static_cast<uid_t>(-1)),
                                             changes.gid.value_or(static_cast<gid_t>(-1))));
  }
  if (changes.atime || changes.mtime) {
    struct timespec times[2];
    times[0] = changes.atime.value_or(timespec{0, UTIME_OMIT});
    times[1] = changes.mtime.value_or(timespec{0, UTIME_OMIT});
    CADCANFS_RETURN_IF_ERROR(target.SetTimes(times));
  }
  return Status::Ok();
}

inline bool NeedsWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }

inline bool IsTamper(const Status& s) {
  return s.code() == Code::kAuthenticationFailed || s.code() == Code::kCorrupt;
}

inline void LogIfTampered(const Status& s, const FileContent& file) {
  if (IsTamper(s)) {
    spdlog::error("authentication failed in {}: {}", file.id_for_log(), s.message());
  }
}

// Counts a namespace or attribute change when it leaves scope, done or not: the policy
// caches (FileSystem::CachedLookup) then stop using what they read before it.
class ScopedChange {
 public:
  explicit ScopedChange(std::atomic<uint64_t>& generation) : generation_(generation) {}
  ~ScopedChange() { generation_.fetch_add(1); }
  ScopedChange(const ScopedChange&) = delete;
  ScopedChange& operator=(const ScopedChange&) = delete;

 private:
  std::atomic<uint64_t>& generation_;
};

inline Status BadHandle() { return Status::Error(Code::kBadHandle, "unknown handle"); }

}  // namespace fs_internal

struct FileSystem::FileHandle {
  std::shared_ptr<Inode> inode;
  std::shared_ptr<FileContent> file;
  bool append = false;  // O_APPEND: every write lands at the end of file
  // One tamper line per open file: the kernel retries a failed read (readahead, then
  // the read itself), which is still one event for the reader.
  std::atomic<bool> tamper_audited{false};
};

struct FileSystem::DirHandle {
  std::shared_ptr<Inode> inode;
  std::mutex mu;
  std::shared_ptr<const DirSnapshot> snapshot;  // guarded by mu
};

// Open handles by number. The kernel hands numbers back; an unknown one is EBADF,
// never a dangling pointer.
template <typename T>
class FileSystem::HandleTable {
 public:
  HandleId Add(std::shared_ptr<T> handle) {
    std::lock_guard lock(mu_);
    HandleId id = next_++;
    handles_.emplace(id, std::move(handle));
    return id;
  }
  // On every read and write: a shared lock, so concurrent requests do not queue here.
  std::shared_ptr<T> Get(HandleId id) {
    std::shared_lock lock(mu_);
    auto it = handles_.find(id);
    return it == handles_.end() ? nullptr : it->second;
  }
  std::shared_ptr<T> Take(HandleId id) {
    std::lock_guard lock(mu_);
    auto it = handles_.find(id);
    if (it == handles_.end()) return nullptr;
    std::shared_ptr<T> handle = std::move(it->second);
    handles_.erase(it);
    return handle;
  }
  std::vector<std::shared_ptr<T>> All() {
    std::shared_lock lock(mu_);
    std::vector<std::shared_ptr<T>> all;
    for (auto& [id, h] : handles_) all.push_back(h);
    return all;
  }

 private:
  std::shared_mutex mu_;
  std::unordered_map<HandleId, std::shared_ptr<T>> handles_;
  HandleId next_ = 1;
};

}  // namespace cadcanfs

#endif  // CADCANFS_SRC_FS_FILESYSTEM_INTERNAL_H_
