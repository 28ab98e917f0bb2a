// FileSystem: attributes (getattr, setattr, truncate, statfs).
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "cadcanfs/fs/filesystem.h"
#include "filesystem_internal.h"

namespace cadcanfs {

using namespace fs_internal;  // NOLINT: the core's own helpers

Result<struct stat> FileSystem::GetAttr(InodeNumber ino) { return GetAttr(ino, std::nullopt); }

Result<struct stat> FileSystem::GetAttr(InodeNumber ino, std::optional<HandleId> fh) {
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  std::shared_ptr<FileHandle> handle = fh ? files_->Get(*fh) : nullptr;
  if (!handle || handle->inode != inode) CADCANFS_RETURN_IF_ERROR(CheckVisible(*inode));
  std::shared_ptr<FileContent> file;
  {
    std::lock_guard lock(inode->mu);
    file = inode->file;
  }
  // An open file answers from its descriptor: right even after its last unlink.
  if (file) {
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, file->Stat());
    return AttrOf(info);
  }
  if (auto orphan = OrphanInfo(*inode)) return AttrOf(*orphan);
  std::shared_lock ns(namespace_mu_);
  const uint64_t generation = namespace_generation_.load();
  if (std::optional<struct stat> cached = CachedAttr(*inode)) return *cached;
  CADCANFS_ASSIGN_OR_RETURN(std::string path, names_.PathOf(*inode));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(path));
  if (ino != kRootInode && KeyOf(info) != inode->key) {
    return Status::Error(Code::kNotFound, "name now refers to another object");
  }
  struct stat attr = AttrOf(info);
  RememberAttr(*inode, attr, generation);
  return attr;
}

Status FileSystem::PrepareToServe() {
  CADCANFS_RETURN_IF_ERROR(GetAttr(kRootInode).status());
  std::shared_lock ns(namespace_mu_);
  return names_.DirStateOf(*inodes_.root()).status();
}

Status FileSystem::TruncateInode(Inode& inode, uint64_t size, std::optional<HandleId> fh) {
  if (inode.type == ObjectType::kDirectory) {
    return Status::Error(Code::kIsADirectory, "is a directory");
  }
  if (fh) {
    if (auto handle = files_->Get(*fh); handle && handle->file->writable()) {
      return handle->file->Truncate(size);
    }
  }
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<FileContent> file, AcquireFile(inode, true));
  Status s = file->Truncate(size);
  ReleaseFile(inode);
  return s;
}

Result<struct stat> FileSystem::SetAttr(InodeNumber ino, const AttrChanges& changes,
                                        std::optional<HandleId> fh) {
  ScopedChange change(namespace_generation_);
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  // A truncate through a handle opened for writing keeps the access it was opened with.
  const bool through_writer = fh && changes.size && !changes.mode && !changes.uid && !changes.gid &&
                              !changes.atime && !changes.mtime;
  CADCANFS_RETURN_IF_ERROR(through_writer ? CheckVisible(*inode)
                                          : CheckChangeable(*inode, "setattr"));
  if (changes.size) {
    CADCANFS_RETURN_IF_ERROR(CheckFileSize(*changes.size, 0));
    CADCANFS_RETURN_IF_ERROR(TruncateInode(*inode, *changes.size, fh));
    std::string file_id;
    if (audit_enabled()) {
      std::lock_guard lock(inode->mu);
      if (inode->file) file_id = inode->file->id_for_log();
    }
    CADCANFS_RETURN_IF_ERROR(AuditInode(access::AuditOp::kTruncate, *inode, file_id));
  }
  const AttrChanges kept = WhatTheStoreKeeps(changes);
  if (kept.mode || kept.uid || kept.gid || kept.atime || kept.mtime) {
    // An open file is changed through its open object: that needs no path walk and
    // works after its last name was removed (fchmod on an open, unlinked file). A store
    // without metadata calls on an open object (OneDrive) is changed by path.
    std::shared_ptr<FileContent> file;
    if (store_.capabilities().handle_attributes) {
      std::lock_guard lock(inode->mu);
      file = inode->file;
    }
    if (file) {
      CADCANFS_RETURN_IF_ERROR(ApplyMetadata(*file, kept));
    } else if (OrphanInfo(*inode)) {
      ApplyToOrphan(*inode, kept);
    } else {
      std::shared_lock ns(namespace_mu_);
      CADCANFS_ASSIGN_OR_RETURN(std::string path, names_.PathOf(*inode));
      StorePathMetadata target{store_, path};
      CADCANFS_RETURN_IF_ERROR(ApplyMetadata(target, kept));
    }
  }
  return GetAttr(ino);
}

// A store without modes and owners (OneDrive) accepts chmod and chown and ignores them,
// as rclone and onedriver do: `cp -a`, `rsync -a` and editors that restore a file's
// mode after saving must keep working there. Times are kept where the store has them.
AttrChanges FileSystem::WhatTheStoreKeeps(const AttrChanges& changes) const {
  if (store_.capabilities().posix_attributes) return changes;
  AttrChanges kept = changes;
  kept.mode.reset();
  kept.uid.reset();
  kept.gid.reset();
  return kept;
}

void FileSystem::ApplyToOrphan(Inode& inode, const AttrChanges& changes) {
  std::lock_guard lock(inode.mu);
  if (!inode.orphan) return;
  ObjectInfo& info = *inode.orphan;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  auto resolve = [&](const struct timespec& t) { return t.tv_nsec == UTIME_NOW ? now : t; };
  if (changes.mode) info.mode = *changes.mode & 07777;
  if (changes.uid) info.uid = *changes.uid;
  if (changes.gid) info.gid = *changes.gid;
  if (changes.atime && changes.atime->tv_nsec != UTIME_OMIT) info.atime = resolve(*changes.atime);
  if (changes.mtime && changes.mtime->tv_nsec != UTIME_OMIT) info.mtime = resolve(*changes.mtime);
  info.ctime = now;
}

Result<struct statvfs> FileSystem::StatFs() {
  CADCANFS_ASSIGN_OR_RETURN(StoreSpace space, store_.Space());
  struct statvfs sv {};
  sv.f_bsize = space.block_size;
  sv.f_frsize = space.block_size;
  sv.f_blocks = space.total_blocks;
  sv.f_bfree = space.free_blocks;
  sv.f_bavail = space.available_blocks;
  sv.f_files = space.total_files;
  sv.f_ffree = space.free_files;
  sv.f_favail = space.free_files;
  sv.f_namemax = kMaxPlainNameLength;
  return sv;
}

}  // namespace cadcanfs
