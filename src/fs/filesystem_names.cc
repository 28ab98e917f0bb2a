// FileSystem: names (lookup, create, link, unlink, rename, symlinks).
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

Result<Entry> FileSystem::Lookup(InodeNumber parent, std::string_view name) {
  // The kernel asks for "." and ".." only to open a file handle whose inode it no
  // longer caches (open_by_handle_at, NFS re-export).
  if (name == ".") return LookupByNumber(parent);
  if (name == "..") return LookupParentOf(parent);
  std::shared_lock ns(namespace_mu_);
  const uint64_t generation = namespace_generation_.load();
  CADCANFS_ASSIGN_OR_RETURN(const std::optional<std::string> real,
                            RealNameInView(parent, name, NameUse::kExisting));
  if (real) name = *real;
  {
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> dir, InodeOf(parent));
    if (std::optional<Entry> known = KnownChild(*dir, name)) {
      Status found = CheckFound(
          *dir, name, S_ISDIR(known->attr.st_mode) ? ObjectType::kDirectory : ObjectType::kFile);
      if (!found.ok()) inodes_.Forget(known->ino, 1);
      CADCANFS_RETURN_IF_ERROR(found);
      return *known;
    }
  }
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, names_.ResolveChild(parent, name));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  CADCANFS_RETURN_IF_ERROR(CheckFound(*child.parent, name, info.type));
  std::shared_ptr<Inode> inode = RecordInode(child, info);
  Entry entry{inode->number, AttrOf(info)};
  RememberAttr(*inode, entry.attr, generation);
  RememberChild(*child.parent, name, entry, generation);
  return entry;
}

Result<Entry> FileSystem::LookupByNumber(InodeNumber ino) {
  std::shared_ptr<Inode> inode = inodes_.Revive(ino);
  if (!inode) return Stale();
  if (Status visible = CheckVisible(*inode); !visible.ok()) {
    inodes_.Forget(ino, 1);
    return visible;
  }
  auto attr = GetAttr(ino);
  if (!attr.ok()) {
    inodes_.Forget(ino, 1);
    return attr.status().code() == Code::kNotFound ? Stale() : attr.status();
  }
  return Entry{ino, *attr};
}

Result<Entry> FileSystem::LookupParentOf(InodeNumber ino) {
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  if (inode->type != ObjectType::kDirectory) {
    return Status::Error(Code::kNotADirectory, "not a directory");
  }
  InodeNumber parent = kRootInode;
  {
    std::lock_guard lock(inode->mu);
    if (ino != kRootInode) {
      if (inode->links.empty()) return Stale();
      parent = inode->links.front().parent->number;
    }
  }
  return LookupByNumber(parent);
}

Result<Entry> FileSystem::LookupListed(InodeNumber parent, const PlainDirEntry& entry) {
  std::shared_lock ns(namespace_mu_);
  const uint64_t generation = namespace_generation_.load();
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, names_.ListedChild(parent, entry));
  // The listing's attributes, when it has them, spare a store call per entry.
  CADCANFS_ASSIGN_OR_RETURN(
      ObjectInfo info, entry.info ? PlainInfoOf(child.path, *entry.info) : StatPlain(child.path));
  std::shared_ptr<Inode> inode = RecordInode(child, info);
  Entry recorded{inode->number, AttrOf(info)};
  // As the kernel keeps them for readdirplus: the open that may follow needs no Stat.
  RememberAttr(*inode, recorded.attr, generation);
  RememberChild(*child.parent, entry.name, recorded, generation);
  return recorded;
}

void FileSystem::Forget(InodeNumber ino, uint64_t count) { inodes_.Forget(ino, count); }

Result<Entry> FileSystem::MakeDir(InodeNumber parent, std::string_view name, uint32_t mode,
                                  const Caller& caller) {
  ScopedChange change(namespace_generation_);
  CADCANFS_ASSIGN_OR_RETURN(NewName added,
                            PrepareNewName(parent, name, ObjectType::kDirectory, "mkdir"));
  const ChildPath& child = added.child;
  DirId id{};
  CADCANFS_RETURN_IF_ERROR(MakeEntry(child, [&] {
    auto made = format_->MakeDirectory(child.path, mode & 07777);
    if (made.ok()) id = *made;
    return made.status();
  }));
  CADCANFS_RETURN_IF_ERROR(AssignOwner(child, caller, mode, /*is_dir=*/true));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  std::shared_ptr<Inode> inode = RecordInode(child, info);
  {
    std::lock_guard lock(inode->mu);
    inode->dir_id = id;
  }
  CADCANFS_RETURN_IF_ERROR(Audit(access::AuditOp::kCreate, added.path));
  return Entry{inode->number, AttrOf(info)};
}

Result<Entry> FileSystem::Symlink(InodeNumber parent, std::string_view name,
                                  std::string_view target, const Caller& caller) {
  ScopedChange change(namespace_generation_);
  CADCANFS_ASSIGN_OR_RETURN(NewName added,
                            PrepareNewName(parent, name, ObjectType::kSymlink, "symlink"));
  const ChildPath& child = added.child;
  CADCANFS_RETURN_IF_ERROR(MakeSymlinkEntry(child, target));
  CADCANFS_RETURN_IF_ERROR(AssignOwner(child, caller, 0777, /*is_dir=*/false));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  CADCANFS_RETURN_IF_ERROR(Audit(access::AuditOp::kCreate, added.path));
  return RecordEntry(child, info);
}

Result<Entry> FileSystem::MakeNode(InodeNumber parent, std::string_view name, uint32_t mode,
                                   uint64_t rdev, const Caller& caller) {
  ScopedChange change(namespace_generation_);
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  const ObjectType type = S_ISFIFO(mode)   ? ObjectType::kFifo
                          : S_ISSOCK(mode) ? ObjectType::kSocket
                          : S_ISCHR(mode)  ? ObjectType::kCharDevice
                          : S_ISBLK(mode)  ? ObjectType::kBlockDevice
                                           : ObjectType::kFile;
  if (type == ObjectType::kFile && !S_ISREG(mode) && (mode & S_IFMT) != 0) {
    return Status::Error(Code::kInvalidArgument, "unknown file type");
  }
  if (type != ObjectType::kFile && !store_.capabilities().special_files) {
    return Status::Error(Code::kNotPermitted, "the store keeps no special files");
  }
  CADCANFS_ASSIGN_OR_RETURN(NewName added, PrepareNewName(parent, name, type, "mknod"));
  const ChildPath& child = added.child;
  CADCANFS_RETURN_IF_ERROR(MakeEntry(child, [&] {
    // A regular file from mknod is an empty encrypted file: it needs its header.
    if (type == ObjectType::kFile) return format_->CreateFile(child.path, mode & 07777).status();
    return store_.MakeNode(child.path, type, mode & 07777, rdev);
  }));
  CADCANFS_RETURN_IF_ERROR(AssignOwner(child, caller, mode, /*is_dir=*/false));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  CADCANFS_RETURN_IF_ERROR(Audit(access::AuditOp::kCreate, added.path));
  return RecordEntry(child, info);
}

Result<Entry> FileSystem::Link(InodeNumber ino, InodeNumber new_parent, std::string_view name) {
  ScopedChange change(namespace_generation_);
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  if (inode->type == ObjectType::kDirectory) {
    return Status::Error(Code::kNotPermitted, "hard link to a directory");
  }
  CADCANFS_ASSIGN_OR_RETURN(NewName added, PrepareNewName(new_parent, name, inode->type, "link"));
  const ChildPath& child = added.child;
  // A new name for a file is a new way to write it: the file itself must be writable,
  // or a read-only case's file could be linked into a writable one and changed there.
  CADCANFS_RETURN_IF_ERROR(CheckChangeable(*inode, "link"));
  CADCANFS_ASSIGN_OR_RETURN(std::string existing, names_.PathOf(*inode));
  CADCANFS_RETURN_IF_ERROR(MakeEntry(child, [&] { return store_.Link(existing, child.path); }));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  CADCANFS_RETURN_IF_ERROR(Audit(access::AuditOp::kCreate, added.path));
  return RecordEntry(child, info);
}

Result<FileSystem::NewName> FileSystem::PrepareNewName(InodeNumber parent, std::string_view name,
                                                       ObjectType type, std::string_view attempt) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  NewName added{std::shared_lock(namespace_mu_), {}, {}};
  CADCANFS_ASSIGN_OR_RETURN(const std::optional<std::string> real,
                            RealNameInView(parent, name, NameUse::kNew));
  if (real) name = *real;
  CADCANFS_ASSIGN_OR_RETURN(added.child, names_.ResolveChild(parent, name));
  CADCANFS_RETURN_IF_ERROR(CheckEntryChange(*added.child.parent, name, type, attempt, &added.path));
  return added;
}

Status FileSystem::MakeSymlinkEntry(const ChildPath& child, std::string_view target) {
  CADCANFS_ASSIGN_OR_RETURN(std::string stored_target, format_->EncodeSymlinkTarget(target));
  return MakeEntry(child, [&] { return store_.Symlink(stored_target, child.path); });
}

Result<FileSystem::ExistingEntry> FileSystem::FindExisting(InodeNumber parent,
                                                           std::string_view name) {
  CADCANFS_ASSIGN_OR_RETURN(const std::optional<std::string> real,
                            RealNameInView(parent, name, NameUse::kExisting));
  ExistingEntry found;
  CADCANFS_ASSIGN_OR_RETURN(found.child, names_.ResolveChild(parent, real ? *real : name));
  CADCANFS_ASSIGN_OR_RETURN(found.info, store_.Stat(found.child.path));
  return found;
}

Status FileSystem::Unlink(InodeNumber parent, std::string_view name) {
  ScopedChange change(namespace_generation_);
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ExistingEntry found, FindExisting(parent, name));
  const ChildPath& child = found.child;
  const ObjectInfo& info = found.info;
  if (info.type == ObjectType::kDirectory) {
    return Status::Error(Code::kIsADirectory, "is a directory");
  }
  std::vector<std::string> path;
  CADCANFS_RETURN_IF_ERROR(
      CheckEntryChange(*child.parent, child.plain, info.type, "unlink", &path));
  CADCANFS_RETURN_IF_ERROR(store_.Remove(child.path));
  (void)format_->CleanupEntry(child.entries_dir, child.name);
  DropLink(info, child.parent, child.name.stored, info.nlink <= 1);
  return Audit(access::AuditOp::kDelete, path);
}

Status FileSystem::RemoveDir(InodeNumber parent, std::string_view name) {
  ScopedChange change(namespace_generation_);
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ExistingEntry found, FindExisting(parent, name));
  const ChildPath& child = found.child;
  const ObjectInfo& info = found.info;
  if (info.type != ObjectType::kDirectory) {
    return Status::Error(Code::kNotADirectory, "not a directory");
  }
  std::vector<std::string> path;
  CADCANFS_RETURN_IF_ERROR(
      CheckEntryChange(*child.parent, child.plain, ObjectType::kDirectory, "rmdir", &path));
  CADCANFS_ASSIGN_OR_RETURN(DirId id, format_->ReadDirState(child.path));
  CADCANFS_RETURN_IF_ERROR(format_->RemoveDirectory(child.path, id));
  (void)format_->CleanupEntry(child.entries_dir, child.name);
  DropLink(info, child.parent, child.name.stored, true);
  return Audit(access::AuditOp::kDelete, path);
}

Status FileSystem::Rename(InodeNumber parent, std::string_view name, InodeNumber new_parent,
                          std::string_view new_name, RenameMode mode) {
  ScopedChange change(namespace_generation_);
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  // Without an atomic swap in the store (OneDrive), an exchange would leave a moment
  // with one name missing: refused whole, before anything is looked up (EOPNOTSUPP).
  if (mode == RenameMode::kExchange && !store_.capabilities().atomic_exchange) {
    return Status::Error(Code::kUnsupported, "this store cannot exchange two names atomically");
  }
  std::unique_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(const std::optional<std::string> real_from,
                            RealNameInView(parent, name, NameUse::kExisting));
  CADCANFS_ASSIGN_OR_RETURN(const std::optional<std::string> real_to,
                            RealNameInView(new_parent, new_name, NameUse::kNew));
  if (real_from) name = *real_from;
  if (real_to) new_name = *real_to;
  CADCANFS_ASSIGN_OR_RETURN(ChildPath from, names_.ResolveChild(parent, name));
  CADCANFS_ASSIGN_OR_RETURN(ChildPath to, names_.ResolveChild(new_parent, new_name));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo from_info, store_.Stat(from.path));
  auto to_info = store_.Stat(to.path);
  if (!to_info.ok() && to_info.status().code() != Code::kNotFound) return to_info.status();
  const bool target_exists = to_info.ok();
  std::vector<std::string> from_path;
  std::vector<std::string> to_path;
  CADCANFS_RETURN_IF_ERROR(
      CheckEntryChange(*from.parent, name, from_info.type, "rename", &from_path));
  CADCANFS_RETURN_IF_ERROR(
      CheckEntryChange(*to.parent, new_name, from_info.type, "rename", &to_path));
  auto audit_rename = [&] {
    return Audit(access::AuditOp::kRename, from_path, {}, 0, {}, &to_path);
  };

  if (mode == RenameMode::kExchange) {
    if (!target_exists) return to_info.status();
    CADCANFS_RETURN_IF_ERROR(store_.Rename(from.path, to.path, RenameMode::kExchange));
    MoveLink(KeyOf(from_info), from.parent, from.name.stored, to.parent, to.name.stored, to.plain);
    MoveLink(KeyOf(*to_info), to.parent, to.name.stored, from.parent, from.name.stored, from.plain);
    return audit_rename();
  }
  if (target_exists && mode == RenameMode::kNoReplace) {
    return Status::Error(Code::kAlreadyExists, "target exists");
  }
  // Renaming one name of an object onto another name of the same object does nothing.
  if (target_exists && KeyOf(*to_info) == KeyOf(from_info)) return Status::Ok();

  std::optional<DirId> released_dir;
  if (target_exists) {
    const bool from_dir = from_info.type == ObjectType::kDirectory;
    const bool to_dir = to_info->type == ObjectType::kDirectory;
    if (from_dir && !to_dir) return Status::Error(Code::kNotADirectory, "not a directory");
    if (!from_dir && to_dir) return Status::Error(Code::kIsADirectory, "is a directory");
    if (to_dir) {
      CADCANFS_ASSIGN_OR_RETURN(DirId id, format_->ReadDirState(to.path));
      CADCANFS_RETURN_IF_ERROR(format_->ReleaseEmptyDirectory(to.path));
      released_dir = id;
    }
  }
  Status s = format_->PrepareEntry(to.entries_dir, to.name);
  if (s.ok()) s = store_.Rename(from.path, to.path, mode);
  if (!s.ok()) {
    if (released_dir) (void)format_->RestoreDirState(to.path, *released_dir);
    return s;
  }
  if (from.name.is_long()) (void)format_->CleanupEntry(from.entries_dir, from.name);
  if (target_exists) {
    DropLink(*to_info, to.parent, to.name.stored, released_dir.has_value() || to_info->nlink <= 1);
  }
  MoveLink(KeyOf(from_info), from.parent, from.name.stored, to.parent, to.name.stored, to.plain);
  return audit_rename();
}

Result<std::string> FileSystem::ReadLink(InodeNumber ino) {
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  CADCANFS_RETURN_IF_ERROR(CheckVisible(*inode));
  std::shared_ptr<Inode> parent;
  {
    std::lock_guard lock(inode->mu);
    if (inode->links.empty()) return Status::Error(Code::kNotFound, "no name");
    parent = inode->links.front().parent;
  }
  CADCANFS_ASSIGN_OR_RETURN(DirId dir, names_.DirStateOf(*parent));
  CADCANFS_ASSIGN_OR_RETURN(std::string path, names_.PathOf(*inode));
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, store_.ReadLink(path));
  CADCANFS_ASSIGN_OR_RETURN(std::string target, format_->DecodeSymlinkTarget(dir, stored));
  return TargetInView(*inode, std::move(target));
}

}  // namespace cadcanfs
