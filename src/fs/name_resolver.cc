#include "cadcanfs/fs/name_resolver.h"

#include <mutex>
#include <vector>

namespace cadcanfs {

namespace {

constexpr size_t kMaxPathDepth = 4096;

Status Stale() { return Status::Error(Code::kStale, "unknown inode"); }

Status NoName() { return Status::Error(Code::kNotFound, "object has no name"); }

// The first link of a named inode: its parent and its stored name there.
Result<InodeLink> FirstLink(Inode& inode) {
  std::lock_guard lock(inode.mu);
  if (inode.links.empty()) return NoName();
  return inode.links.front();
}

}  // namespace

Result<std::string> NameResolver::PathOf(Inode& inode) { return PathOf(inode, 0); }

Result<std::string> NameResolver::PathOf(InodeNumber ino) {
  std::shared_ptr<Inode> inode = inodes_.Find(ino);
  if (!inode) return Stale();
  return PathOf(*inode, 0);
}

Result<std::string> NameResolver::EntriesDirOf(Inode& dir) {
  CADCANFS_ASSIGN_OR_RETURN(std::string entries_dir, EntriesDirOf(dir, 0));
  RememberEntriesDir(dir, entries_dir);
  return entries_dir;
}

void NameResolver::RememberEntriesDir(Inode& dir, const std::string& entries_dir) {
  // Forgotten directories leave expired entries behind: sweep them now and then.
  constexpr size_t kPruneEvery = 4096;
  std::shared_ptr<Inode> held = inodes_.Find(dir.number);
  if (!held) return;
  std::lock_guard lock(places_mu_);
  by_entries_dir_[entries_dir] = held;
  if (++places_since_prune_ < kPruneEvery) return;
  places_since_prune_ = 0;
  std::erase_if(by_entries_dir_, [](const auto& place) { return place.second.expired(); });
}

std::shared_ptr<Inode> NameResolver::DirectoryWithEntriesIn(const std::string& entries_dir) {
  std::shared_ptr<Inode> dir;
  {
    std::lock_guard lock(places_mu_);
    auto it = by_entries_dir_.find(entries_dir);
    if (it != by_entries_dir_.end()) dir = it->second.lock();
  }
  if (!dir) return nullptr;
  // A tree directory renamed since keeps its entries elsewhere now.
  auto now = EntriesDirOf(*dir, 0);
  return now.ok() && *now == entries_dir ? dir : nullptr;
}

Result<DirState> NameResolver::DirStateOf(Inode& dir) { return DirStateOf(dir, 0); }

Result<std::string> NameResolver::PathOf(Inode& inode, size_t depth) {
  if (inode.number == kRootInode) return std::string();
  if (!format_.entries_by_state()) return ClimbToRoot(inode);
  if (depth > kMaxPathDepth) return Stale();
  CADCANFS_ASSIGN_OR_RETURN(InodeLink link, FirstLink(inode));
  CADCANFS_ASSIGN_OR_RETURN(std::string dir, EntriesDirOf(*link.parent, depth + 1));
  return JoinStorePath(dir, link.stored);
}

Result<std::string> NameResolver::EntriesDirOf(Inode& dir, size_t depth) {
  if (!format_.entries_by_state()) return PathOf(dir, depth);
  CADCANFS_ASSIGN_OR_RETURN(DirState state, DirStateOf(dir, depth));
  return format_.EntriesDirOfState(state);
}

Result<DirState> NameResolver::DirStateOf(Inode& dir, size_t depth) {
  if (dir.type != ObjectType::kDirectory) {
    return Status::Error(Code::kNotADirectory, "not a directory");
  }
  {
    std::lock_guard lock(dir.mu);
    if (dir.dir_id) return *dir.dir_id;
  }
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOf(dir, depth));
  CADCANFS_ASSIGN_OR_RETURN(DirState state, format_.ReadDirState(path));
  std::lock_guard lock(dir.mu);
  dir.dir_id = state;
  return state;
}

Result<std::string> NameResolver::ClimbToRoot(Inode& inode) {
  // Iterative, not recursive: a tree can be thousands of levels deep.
  std::vector<std::string> parts;
  Inode* current = &inode;
  std::shared_ptr<Inode> hold;  // keeps the parent alive while we climb
  while (current->number != kRootInode) {
    if (parts.size() > kMaxPathDepth) return Stale();
    CADCANFS_ASSIGN_OR_RETURN(InodeLink link, FirstLink(*current));
    parts.push_back(std::move(link.stored));
    hold = std::move(link.parent);
    current = hold.get();
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) path = JoinStorePath(path, *it);
  return path;
}

Result<std::shared_ptr<Inode>> NameResolver::DirectoryInode(InodeNumber ino) {
  std::shared_ptr<Inode> inode = inodes_.Find(ino);
  if (!inode) return Stale();
  return inode;
}

Result<ChildPath> NameResolver::ResolveChild(InodeNumber parent, std::string_view name) {
  CADCANFS_RETURN_IF_ERROR(ValidatePlainName(name));
  ChildPath child;
  CADCANFS_ASSIGN_OR_RETURN(child.parent, DirectoryInode(parent));
  CADCANFS_ASSIGN_OR_RETURN(child.dir, DirStateOf(*child.parent));
  CADCANFS_ASSIGN_OR_RETURN(child.entries_dir, EntriesDirOf(*child.parent));
  CADCANFS_ASSIGN_OR_RETURN(child.name, format_.EncodeName(child.dir, name));
  child.plain = std::string(name);
  child.path = JoinStorePath(child.entries_dir, child.name.stored);
  return child;
}

Result<ChildPath> NameResolver::ListedChild(InodeNumber parent, const PlainDirEntry& entry) {
  ChildPath child;
  CADCANFS_ASSIGN_OR_RETURN(child.parent, DirectoryInode(parent));
  CADCANFS_ASSIGN_OR_RETURN(child.entries_dir, EntriesDirOf(*child.parent));
  child.name.stored = entry.stored_name;
  child.plain = entry.name;
  child.path = JoinStorePath(child.entries_dir, entry.stored_name);
  return child;
}

}  // namespace cadcanfs
