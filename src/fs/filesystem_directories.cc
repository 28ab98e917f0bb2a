// FileSystem: directories (opendir, readdir, fsyncdir).
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

Result<HandleId> FileSystem::OpenDir(InodeNumber ino) {
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  CADCANFS_RETURN_IF_ERROR(CheckVisible(*inode));
  if (inode->type != ObjectType::kDirectory) {
    return Status::Error(Code::kNotADirectory, "not a directory");
  }
  auto handle = std::make_shared<DirHandle>();
  handle->inode = std::move(inode);
  return dirs_->Add(std::move(handle));
}

Result<std::shared_ptr<const DirSnapshot>> FileSystem::ReadDir(HandleId dh, uint64_t offset) {
  std::shared_ptr<DirHandle> handle = dirs_->Get(dh);
  if (!handle) return BadHandle();
  std::lock_guard lock(handle->mu);
  if (OrphanInfo(*handle->inode)) {
    // A removed directory lists nothing, as on ext4.
    handle->snapshot = std::make_shared<const DirSnapshot>();
  } else if (offset == 0 || !handle->snapshot) {
    std::shared_lock ns(namespace_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string entries, names_.EntriesDirOf(*handle->inode));
    CADCANFS_ASSIGN_OR_RETURN(DirState state, names_.DirStateOf(*handle->inode));
    CADCANFS_ASSIGN_OR_RETURN(DirListing listing, format_->ListDirectory(entries, state));
    if (!listing.damaged.empty()) {
      spdlog::error("directory listing skipped {} entries that failed to decrypt (run fsck)",
                    listing.damaged.size());
      AuditTamper(*handle->inode, Status::Error(Code::kAuthenticationFailed, "name"), {});
    }
    std::shared_ptr<const ViewNames> view;
    if (InPseudonymizedView()) {
      CADCANFS_ASSIGN_OR_RETURN(view, ViewNamesFromListing(*handle->inode, listing.entries));
    }
    CADCANFS_ASSIGN_OR_RETURN(DirSnapshot shown,
                              FilterListing(*handle->inode, std::move(listing.entries)));
    if (view) shown = ShowInView(*view, std::move(shown));
    handle->snapshot = std::make_shared<const DirSnapshot>(std::move(shown));
  }
  return handle->snapshot;
}

Status FileSystem::FsyncDir(InodeNumber ino) {
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  // Where the entries are: what a create, rename or unlink in it changed.
  CADCANFS_ASSIGN_OR_RETURN(std::string entries, names_.EntriesDirOf(*inode));
  return store_.SyncDir(entries);
}

void FileSystem::ReleaseDir(HandleId dh) { (void)dirs_->Take(dh); }

}  // namespace cadcanfs
