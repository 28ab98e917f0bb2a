// FileSystem: construction, the helpers every theme uses, and SyncAll.
#include "cadcanfs/fs/filesystem.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "filesystem_internal.h"

namespace cadcanfs {

using namespace fs_internal;  // NOLINT: the core's own helpers

bool AccessTimeUpdateDue(const struct stat& attr, const struct timespec& now) {
  constexpr time_t kDay = 24 * 60 * 60;
  auto not_after = [](const struct timespec& a, const struct timespec& b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
  };
  return not_after(attr.st_atim, attr.st_mtim) || not_after(attr.st_atim, attr.st_ctim) ||
         now.tv_sec - attr.st_atim.tv_sec >= kDay;
}

uint32_t PrivilegeBitsToClear(const struct stat& attr, uid_t caller_uid, bool in_file_group) {
  if (caller_uid == 0 || !S_ISREG(attr.st_mode)) return 0;
  uint32_t clear = attr.st_mode & S_ISUID;
  if ((attr.st_mode & S_ISGID) != 0 && ((attr.st_mode & S_IXGRP) != 0 || !in_file_group)) {
    clear |= S_ISGID;
  }
  return clear;
}

FileSystem::FileSystem(std::unique_ptr<Format> format, FsOptions options)
    : format_(std::move(format)),
      store_(format_->store()),
      options_(options),
      names_(inodes_, *format_),
      files_(std::make_unique<HandleTable<FileHandle>>()),
      dirs_(std::make_unique<HandleTable<DirHandle>>()) {}

FileSystem::~FileSystem() = default;

Result<std::shared_ptr<Inode>> FileSystem::InodeOf(InodeNumber ino) {
  std::shared_ptr<Inode> inode = inodes_.Find(ino);
  if (!inode) return Stale();
  return inode;
}

struct stat FileSystem::AttrOf(const ObjectInfo& info) const {
  struct stat st {};
  st.st_ino = info.inode_hint;
  st.st_mode = FileTypeBits(info.type) | (info.mode & 07777);
  st.st_nlink = info.nlink;
  st.st_rdev = static_cast<dev_t>(info.rdev);
  st.st_uid = options_.force_uid.value_or(info.uid);
  st.st_gid = options_.force_gid.value_or(info.gid);
  uint64_t size = info.size;
  if (info.type == ObjectType::kSymlink) size = format_->SymlinkLengthOfStored(info.size);
  st.st_size = static_cast<off_t>(size);
  st.st_blksize = static_cast<blksize_t>(format_->preferred_io_size());
  st.st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
  st.st_atim = info.atime;
  st.st_mtim = info.mtime;
  st.st_ctim = info.ctime;
  return st;
}

Result<ObjectInfo> FileSystem::StatPlain(const std::string& path) {
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, store_.Stat(path));
  return PlainInfoOf(path, std::move(info));
}

Result<ObjectInfo> FileSystem::PlainInfoOf(const std::string& path, ObjectInfo info) {
  if (info.type != ObjectType::kFile) return info;
  auto plain_size = format_->PlainSizeOfStored(info.size);
  if (!plain_size.ok()) {
    // A write the daemon died in can leave a size no file has; opening the file
    // settles it (FileContent::Open keeps the size whose last block authenticates).
    CADCANFS_ASSIGN_OR_RETURN(auto file, format_->OpenFile(path, !options_.read_only));
    plain_size = file->size();
  }
  info.size = *plain_size;
  return info;
}

std::shared_ptr<Inode> FileSystem::RecordInode(const ChildPath& child, const ObjectInfo& info) {
  return inodes_.Record(KeyOf(info), info.type,
                        InodeLink{child.parent, child.name.stored, child.plain});
}

Entry FileSystem::RecordEntry(const ChildPath& child, const ObjectInfo& info) {
  return Entry{RecordInode(child, info)->number, AttrOf(info)};
}

Status FileSystem::MakeEntry(const ChildPath& child, const std::function<Status()>& make) {
  CADCANFS_RETURN_IF_ERROR(format_->PrepareEntry(child.entries_dir, child.name));
  Status s = make();
  // An existing entry of that name owns the sidecar; anything else leaves none behind.
  if (!s.ok() && s.code() != Code::kAlreadyExists) {
    (void)format_->CleanupEntry(child.entries_dir, child.name);
  }
  return s;
}

Status FileSystem::AssignOwner(const ChildPath& child, const Caller& caller, uint32_t mode,
                               bool is_dir) {
  // A store without owners (OneDrive) shows every object as the mount's.
  if (!options_.owner_is_caller || !store_.capabilities().posix_attributes) return Status::Ok();
  // As ext4 does (inode_init_owner): what is made in a setgid directory gets the
  // directory's group, and a directory made there is setgid itself. The kernel has
  // already dropped a setgid bit the caller may not set.
  CADCANFS_ASSIGN_OR_RETURN(std::string parent_path, names_.PathOf(*child.parent));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo parent, store_.Stat(parent_path));
  const bool inherit = (parent.mode & S_ISGID) != 0;
  CADCANFS_RETURN_IF_ERROR(
      store_.SetOwner(child.path, caller.uid, inherit ? parent.gid : caller.gid));
  uint32_t wanted = mode & 07777;
  if (is_dir && inherit) wanted |= S_ISGID;
  // chown(2) cleared the setuid and setgid bits the caller created the object with.
  if ((wanted & (S_ISUID | S_ISGID)) != 0) return store_.SetMode(child.path, wanted);
  return Status::Ok();
}

Status FileSystem::CheckWritable() const { return options_.read_only ? ReadOnly() : Status::Ok(); }

Status FileSystem::CheckFileSize(uint64_t offset, uint64_t length) const {
  if (offset > options_.max_file_size || length > options_.max_file_size - offset) {
    return Status::Error(Code::kFileTooLarge, "past the mount's file size limit");
  }
  return Status::Ok();
}

void FileSystem::DropLink(const ObjectInfo& info, const std::shared_ptr<Inode>& parent,
                          const std::string& stored, bool last) {
  std::shared_ptr<Inode> inode = inodes_.FindByKey(KeyOf(info));
  if (!inode) return;
  {
    std::lock_guard lock(inode->mu);
    std::erase_if(inode->links,
                  [&](const InodeLink& l) { return l.parent == parent && l.stored == stored; });
    if (last) {
      inode->orphan = info;
      inode->orphan->nlink = 0;
    }
  }
  if (last) inodes_.Detach(*inode);
}

std::optional<ObjectInfo> FileSystem::OrphanInfo(Inode& inode) {
  std::lock_guard lock(inode.mu);
  if (!inode.links.empty()) return std::nullopt;
  return inode.orphan;
}

void FileSystem::MoveLink(const ObjectId& key, const std::shared_ptr<Inode>& from_parent,
                          const std::string& from_stored, const std::shared_ptr<Inode>& to_parent,
                          const std::string& to_stored, const std::string& to_plain) {
  std::shared_ptr<Inode> inode = inodes_.FindByKey(key);
  if (!inode) return;
  std::lock_guard lock(inode->mu);
  std::erase_if(inode->links, [&](const InodeLink& l) {
    return l.parent == from_parent && l.stored == from_stored;
  });
  inode->links.insert(inode->links.begin(), InodeLink{to_parent, to_stored, to_plain});
}

Status FileSystem::SyncAll() {
  Status first;
  for (const auto& handle : files_->All()) {
    if (!handle->file->writable()) continue;
    Status s = handle->file->Sync();
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

}  // namespace cadcanfs
