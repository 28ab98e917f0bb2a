// FileSystem: coherence with other writers of the store. A change another writer made
// (reported by the store's change feed, by store path) drops what the kernel caches
// about it: the directory's listing and attributes, the dentry of the name, and the
// changed object's attributes and pages. Nothing here is needed for this daemon's own
// changes: the kernel sees those as it makes them.
#include <fcntl.h>

#include <mutex>

#include "cadcanfs/fs/filesystem.h"
#include "filesystem_internal.h"

namespace cadcanfs {

void FileSystem::SetKernelInvalidator(KernelInvalidator invalidator) {
  std::lock_guard lock(invalidator_mu_);
  invalidator_ = std::move(invalidator);
}

FileSystem::KernelInvalidator FileSystem::Invalidator() {
  std::lock_guard lock(invalidator_mu_);
  return invalidator_;
}

Result<size_t> FileSystem::PollStoreChanges() {
  CADCANFS_ASSIGN_OR_RETURN(std::vector<std::string> changed, store_.PollChanges());
  for (const std::string& store_path : changed) StoreObjectChanged(store_path);
  return changed.size();
}

void FileSystem::StoreObjectChanged(std::string_view store_path) {
  NoteNamespaceChange();  // the policy caches read the store too
  KernelInvalidator invalidate = Invalidator();
  if (!invalidate.inode || !invalidate.entry) return;
  std::shared_lock ns(namespace_mu_);
  std::shared_ptr<Inode> dir = names_.DirectoryWithEntriesIn(std::string(StoreParent(store_path)));
  // A directory the kernel was never shown holds nothing the kernel caches.
  if (!dir) return;
  invalidate.inode(dir->number);
  const std::string stored(StoreBaseName(store_path));
  auto state = names_.DirStateOf(*dir);
  auto plain = state.ok() ? format_->DecodeStoredName(StoreParent(store_path), *state, stored)
                          : Result<std::string>(state.status());
  if (plain.ok()) invalidate.entry(dir->number, *plain);
  // The object itself, if it is still there and the table knows it.
  auto info = store_.Stat(store_path);
  if (!info.ok()) return;
  if (std::shared_ptr<Inode> inode = inodes_.FindByKey(info->id)) invalidate.inode(inode->number);
}

}  // namespace cadcanfs
