#include "cadcanfs/fs/filesystem.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <spdlog/spdlog.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <unordered_map>

namespace cadcanfs {

namespace {

constexpr size_t kMaxPathDepth = 4096;
constexpr std::string_view kUserPrefix = "user.";
constexpr std::string_view kCapabilityXattr = "security.capability";

Status Stale() { return Status::Error(Code::kStale, "unknown inode"); }

Status ReadOnly() { return Status::Error(Code::kReadOnly, "read-only mount"); }

const ObjectId& KeyOf(const ObjectInfo& info) { return info.id; }

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
Status ApplyMetadata(Target& target, const AttrChanges& changes) {
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

bool NeedsWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }

void LogIfTampered(const Status& s, const EncryptedFile& file) {
  if (s.code() == Code::kAuthenticationFailed || s.code() == Code::kCorrupt) {
    spdlog::error("authentication failed in {}: {}", file.file_id_for_log(), s.message());
  }
}

}  // namespace

struct FileSystem::FileHandle {
  std::shared_ptr<Inode> inode;
  std::shared_ptr<EncryptedFile> file;
  bool append = false;  // O_APPEND: every write lands at the end of file
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

namespace {
Status BadHandle() { return Status::Error(Code::kBadHandle, "unknown handle"); }
}  // namespace

FileSystem::FileSystem(std::unique_ptr<Vault> vault, FsOptions options)
    : vault_(std::move(vault)),
      store_(vault_->store()),
      options_(options),
      files_(std::make_unique<HandleTable<FileHandle>>()),
      dirs_(std::make_unique<HandleTable<DirHandle>>()) {}

FileSystem::~FileSystem() = default;

// ---- helpers ----

Result<std::shared_ptr<Inode>> FileSystem::InodeOf(InodeNumber ino) {
  std::shared_ptr<Inode> inode = inodes_.Find(ino);
  if (!inode) return Stale();
  return inode;
}

Result<std::string> FileSystem::PathOf(Inode& inode) {
  std::vector<std::string> parts;
  Inode* current = &inode;
  std::shared_ptr<Inode> hold;  // keeps the parent alive while we climb
  while (current->number != kRootInode) {
    if (parts.size() > kMaxPathDepth) return Stale();
    Inode& node = *current;
    std::lock_guard lock(node.mu);
    if (node.links.empty()) return Status::Error(Code::kNotFound, "object has no name");
    parts.push_back(node.links.front().stored);
    hold = node.links.front().parent;
    current = hold.get();
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) path = JoinStorePath(path, *it);
  return path;
}

Result<std::string> FileSystem::PathOfNumber(InodeNumber ino) {
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  return PathOf(*inode);
}

Result<DirId> FileSystem::DirIdOf(Inode& dir) {
  if (dir.type != ObjectType::kDirectory) {
    return Status::Error(Code::kNotADirectory, "not a directory");
  }
  {
    std::lock_guard lock(dir.mu);
    if (dir.dir_id) return *dir.dir_id;
  }
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOf(dir));
  CADCANFS_ASSIGN_OR_RETURN(DirId id, vault_->ReadDirId(path));
  std::lock_guard lock(dir.mu);
  dir.dir_id = id;
  return id;
}

Result<FileSystem::ChildPath> FileSystem::ResolveChild(InodeNumber parent, std::string_view name) {
  CADCANFS_RETURN_IF_ERROR(ValidatePlainName(name));
  ChildPath child;
  CADCANFS_ASSIGN_OR_RETURN(child.parent, InodeOf(parent));
  CADCANFS_ASSIGN_OR_RETURN(child.dir, DirIdOf(*child.parent));
  CADCANFS_ASSIGN_OR_RETURN(child.parent_path, PathOf(*child.parent));
  CADCANFS_ASSIGN_OR_RETURN(child.name, vault_->EncryptName(child.dir, name));
  child.path = JoinStorePath(child.parent_path, child.name.stored);
  return child;
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
  if (info.type == ObjectType::kSymlink) size = SymlinkTargetLengthOfStored(info.size);
  st.st_size = static_cast<off_t>(size);
  st.st_blksize = static_cast<blksize_t>(vault_->layout().block_size());
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
  auto plain_size = vault_->layout().PlainSizeOfCipherSize(info.size);
  if (!plain_size.ok()) {
    // A write the daemon died in can leave a size no file has; opening the file
    // settles it (EncryptedFile::Open keeps the size whose last block authenticates).
    CADCANFS_ASSIGN_OR_RETURN(auto file, vault_->OpenFile(path, !options_.read_only));
    plain_size = file->size();
  }
  info.size = *plain_size;
  return info;
}

std::shared_ptr<Inode> FileSystem::RecordInode(const ChildPath& child, const ObjectInfo& info) {
  return inodes_.Record(KeyOf(info), info.type, InodeLink{child.parent, child.name.stored});
}

Entry FileSystem::RecordEntry(const ChildPath& child, const ObjectInfo& info) {
  return Entry{RecordInode(child, info)->number, AttrOf(info)};
}

Status FileSystem::MakeEntry(const ChildPath& child, const std::function<Status()>& make) {
  CADCANFS_RETURN_IF_ERROR(vault_->PrepareEntry(child.parent_path, child.name));
  Status s = make();
  // An existing entry of that name owns the sidecar; anything else leaves none behind.
  if (!s.ok() && s.code() != Code::kAlreadyExists) {
    (void)vault_->CleanupEntry(child.parent_path, child.name);
  }
  return s;
}

Status FileSystem::AssignOwner(const ChildPath& child, const Caller& caller, uint32_t mode,
                               bool is_dir) {
  if (!options_.owner_is_caller) return Status::Ok();
  // As ext4 does (inode_init_owner): what is made in a setgid directory gets the
  // directory's group, and a directory made there is setgid itself. The kernel has
  // already dropped a setgid bit the caller may not set.
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo parent, store_.Stat(child.parent_path));
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
                          const std::string& to_stored) {
  std::shared_ptr<Inode> inode = inodes_.FindByKey(key);
  if (!inode) return;
  std::lock_guard lock(inode->mu);
  std::erase_if(inode->links, [&](const InodeLink& l) {
    return l.parent == from_parent && l.stored == from_stored;
  });
  inode->links.insert(inode->links.begin(), InodeLink{to_parent, to_stored});
}

// ---- names ----

Result<Entry> FileSystem::Lookup(InodeNumber parent, std::string_view name) {
  // The kernel asks for "." and ".." only to open a file handle whose inode it no
  // longer caches (open_by_handle_at, NFS re-export).
  if (name == ".") return LookupByNumber(parent);
  if (name == "..") return LookupParentOf(parent);
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, ResolveChild(parent, name));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  return RecordEntry(child, info);
}

Result<Entry> FileSystem::LookupByNumber(InodeNumber ino) {
  std::shared_ptr<Inode> inode = inodes_.Revive(ino);
  if (!inode) return Stale();
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
  ChildPath child;
  CADCANFS_ASSIGN_OR_RETURN(child.parent, InodeOf(parent));
  CADCANFS_ASSIGN_OR_RETURN(child.parent_path, PathOf(*child.parent));
  child.name.stored = entry.stored_name;
  child.path = JoinStorePath(child.parent_path, entry.stored_name);
  // The listing's attributes, when it has them, spare a store call per entry.
  CADCANFS_ASSIGN_OR_RETURN(
      ObjectInfo info, entry.info ? PlainInfoOf(child.path, *entry.info) : StatPlain(child.path));
  return RecordEntry(child, info);
}

void FileSystem::Forget(InodeNumber ino, uint64_t count) { inodes_.Forget(ino, count); }

Result<Entry> FileSystem::MakeDir(InodeNumber parent, std::string_view name, uint32_t mode,
                                  const Caller& caller) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, ResolveChild(parent, name));
  DirId id{};
  CADCANFS_RETURN_IF_ERROR(MakeEntry(child, [&] {
    auto made = vault_->MakeDirectory(child.path, mode & 07777);
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
  return Entry{inode->number, AttrOf(info)};
}

Result<Entry> FileSystem::Symlink(InodeNumber parent, std::string_view name,
                                  std::string_view target, const Caller& caller) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, ResolveChild(parent, name));
  CADCANFS_RETURN_IF_ERROR(MakeSymlinkEntry(child, target));
  CADCANFS_RETURN_IF_ERROR(AssignOwner(child, caller, 0777, /*is_dir=*/false));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  return RecordEntry(child, info);
}

Result<Entry> FileSystem::MakeNode(InodeNumber parent, std::string_view name, uint32_t mode,
                                   uint64_t rdev, const Caller& caller) {
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
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, ResolveChild(parent, name));
  CADCANFS_RETURN_IF_ERROR(MakeEntry(child, [&] {
    // A regular file from mknod is an empty encrypted file: it needs its header.
    if (type == ObjectType::kFile) return vault_->CreateFile(child.path, mode & 07777).status();
    return store_.MakeNode(child.path, type, mode & 07777, rdev);
  }));
  CADCANFS_RETURN_IF_ERROR(AssignOwner(child, caller, mode, /*is_dir=*/false));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  return RecordEntry(child, info);
}

Result<Entry> FileSystem::Link(InodeNumber ino, InodeNumber new_parent, std::string_view name) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  if (inode->type == ObjectType::kDirectory) {
    return Status::Error(Code::kNotPermitted, "hard link to a directory");
  }
  CADCANFS_ASSIGN_OR_RETURN(std::string existing, PathOf(*inode));
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, ResolveChild(new_parent, name));
  CADCANFS_RETURN_IF_ERROR(MakeEntry(child, [&] { return store_.Link(existing, child.path); }));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(child.path));
  return RecordEntry(child, info);
}

Status FileSystem::MakeSymlinkEntry(const ChildPath& child, std::string_view target) {
  CADCANFS_ASSIGN_OR_RETURN(std::string stored_target,
                            vault_->names().EncryptSymlinkTarget(target));
  return MakeEntry(child, [&] { return store_.Symlink(stored_target, child.path); });
}

Status FileSystem::Unlink(InodeNumber parent, std::string_view name) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, ResolveChild(parent, name));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, store_.Stat(child.path));
  if (info.type == ObjectType::kDirectory) {
    return Status::Error(Code::kIsADirectory, "is a directory");
  }
  CADCANFS_RETURN_IF_ERROR(store_.Remove(child.path));
  (void)vault_->CleanupEntry(child.parent_path, child.name);
  DropLink(info, child.parent, child.name.stored, info.nlink <= 1);
  return Status::Ok();
}

Status FileSystem::RemoveDir(InodeNumber parent, std::string_view name) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, ResolveChild(parent, name));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, store_.Stat(child.path));
  if (info.type != ObjectType::kDirectory) {
    return Status::Error(Code::kNotADirectory, "not a directory");
  }
  CADCANFS_ASSIGN_OR_RETURN(DirId id, vault_->ReadDirId(child.path));
  CADCANFS_RETURN_IF_ERROR(vault_->RemoveDirectory(child.path, id));
  (void)vault_->CleanupEntry(child.parent_path, child.name);
  DropLink(info, child.parent, child.name.stored, true);
  return Status::Ok();
}

Status FileSystem::Rename(InodeNumber parent, std::string_view name, InodeNumber new_parent,
                          std::string_view new_name, RenameMode mode) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::unique_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ChildPath from, ResolveChild(parent, name));
  CADCANFS_ASSIGN_OR_RETURN(ChildPath to, ResolveChild(new_parent, new_name));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo from_info, store_.Stat(from.path));
  auto to_info = store_.Stat(to.path);
  if (!to_info.ok() && to_info.status().code() != Code::kNotFound) return to_info.status();
  const bool target_exists = to_info.ok();

  if (mode == RenameMode::kExchange) {
    if (!target_exists) return to_info.status();
    CADCANFS_RETURN_IF_ERROR(store_.Rename(from.path, to.path, RenameMode::kExchange));
    MoveLink(KeyOf(from_info), from.parent, from.name.stored, to.parent, to.name.stored);
    MoveLink(KeyOf(*to_info), to.parent, to.name.stored, from.parent, from.name.stored);
    return Status::Ok();
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
      CADCANFS_ASSIGN_OR_RETURN(DirId id, vault_->ReadDirId(to.path));
      CADCANFS_RETURN_IF_ERROR(vault_->ReleaseEmptyDirectory(to.path));
      released_dir = id;
    }
  }
  Status s = vault_->PrepareEntry(to.parent_path, to.name);
  if (s.ok()) s = store_.Rename(from.path, to.path, mode);
  if (!s.ok()) {
    if (released_dir) (void)vault_->RestoreDirId(to.path, *released_dir);
    return s;
  }
  if (from.name.is_long()) (void)vault_->CleanupEntry(from.parent_path, from.name);
  if (target_exists) {
    DropLink(*to_info, to.parent, to.name.stored, released_dir.has_value() || to_info->nlink <= 1);
  }
  MoveLink(KeyOf(from_info), from.parent, from.name.stored, to.parent, to.name.stored);
  return Status::Ok();
}

Result<std::string> FileSystem::ReadLink(InodeNumber ino) {
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  std::shared_ptr<Inode> parent;
  {
    std::lock_guard lock(inode->mu);
    if (inode->links.empty()) return Status::Error(Code::kNotFound, "no name");
    parent = inode->links.front().parent;
  }
  CADCANFS_ASSIGN_OR_RETURN(DirId dir, DirIdOf(*parent));
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOf(*inode));
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, store_.ReadLink(path));
  return vault_->names().DecryptSymlinkTarget(dir, stored);
}

// ---- attributes ----

Result<struct stat> FileSystem::GetAttr(InodeNumber ino) {
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  std::shared_ptr<EncryptedFile> file;
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
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOf(*inode));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, StatPlain(path));
  if (ino != kRootInode && KeyOf(info) != inode->key) {
    return Status::Error(Code::kNotFound, "name now refers to another object");
  }
  return AttrOf(info);
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
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<EncryptedFile> file, AcquireFile(inode, true));
  Status s = file->Truncate(size);
  ReleaseFile(inode);
  return s;
}

Result<struct stat> FileSystem::SetAttr(InodeNumber ino, const AttrChanges& changes,
                                        std::optional<HandleId> fh) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  if (changes.size) {
    CADCANFS_RETURN_IF_ERROR(CheckFileSize(*changes.size, 0));
    CADCANFS_RETURN_IF_ERROR(TruncateInode(*inode, *changes.size, fh));
  }
  if (changes.mode || changes.uid || changes.gid || changes.atime || changes.mtime) {
    // An open file is changed through its open object: that needs no path walk and
    // works after its last name was removed (fchmod on an open, unlinked file).
    std::shared_ptr<EncryptedFile> file;
    {
      std::lock_guard lock(inode->mu);
      file = inode->file;
    }
    if (file) {
      CADCANFS_RETURN_IF_ERROR(ApplyMetadata(*file, changes));
    } else if (OrphanInfo(*inode)) {
      ApplyToOrphan(*inode, changes);
    } else {
      std::shared_lock ns(namespace_mu_);
      CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOf(*inode));
      StorePathMetadata target{store_, path};
      CADCANFS_RETURN_IF_ERROR(ApplyMetadata(target, changes));
    }
  }
  return GetAttr(ino);
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

// ---- files ----

Result<std::shared_ptr<EncryptedFile>> FileSystem::AcquireFile(Inode& inode, bool need_write) {
  if (inode.type != ObjectType::kFile) {
    return Status::Error(Code::kIsADirectory, "not a regular file");
  }
  if (need_write) CADCANFS_RETURN_IF_ERROR(CheckWritable());
  auto usable = [&] { return inode.file && (!need_write || inode.file->writable()); };
  {
    std::lock_guard lock(inode.mu);
    if (usable()) {  // already open: no path walk, no store call
      ++inode.open_count;
      return inode.file;
    }
  }
  std::shared_lock ns(namespace_mu_);
  // The path is taken before the inode lock, which PathOf takes itself.
  Result<std::string> path = PathOf(inode);
  std::lock_guard lock(inode.mu);
  if (inode.file && !usable()) {
    // Open read-only so far (the backing object was not writable then). Every handle
    // shares one file object, so it is made writable in place, never replaced: handles
    // on a second object would miss this one's writes and its size.
    if (!path.ok()) return path.status();
    CADCANFS_RETURN_IF_ERROR(UpgradeToWritable(inode, *path));
  } else if (!usable()) {
    // Nothing open and no name left: only a file handle of a removed file gets here,
    // and that is stale, as on ext4.
    if (!path.ok() && inode.links.empty()) return Stale();
    if (!path.ok()) return path.status();
    auto opened = vault_->OpenFile(*path, !options_.read_only);
    // A read-only backing object (chmod a-w) can still be read.
    if (!opened.ok() && !need_write && !options_.read_only &&
        opened.status().code() == Code::kPermissionDenied) {
      opened = vault_->OpenFile(*path, false);
    }
    if (!opened.ok()) return opened.status();
    inode.file = std::move(opened).value();
  }
  ++inode.open_count;
  return inode.file;
}

Status FileSystem::UpgradeToWritable(Inode& inode, const std::string& path) {
  CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> object,
                            store_.Open(path, OpenOptions{.write = true}));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, object->Stat());
  if (KeyOf(info) != inode.key) {
    return Status::Error(Code::kNotFound, "name now refers to another object");
  }
  return inode.file->UpgradeToWritable(std::move(object));
}

void FileSystem::ReleaseFile(Inode& inode) {
  std::shared_ptr<EncryptedFile> closing;
  std::lock_guard lock(inode.mu);
  if (inode.open_count > 0 && --inode.open_count == 0) closing = std::move(inode.file);
}

Result<HandleId> FileSystem::Open(InodeNumber ino, int flags) {
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  const bool need_write = NeedsWrite(flags);
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<EncryptedFile> file, AcquireFile(*inode, need_write));
  if (flags & O_TRUNC) {
    Status s = file->Truncate(0);
    if (!s.ok()) {
      ReleaseFile(*inode);
      return s;
    }
  }
  return AddFileHandle(std::move(inode), std::move(file), flags);
}

HandleId FileSystem::AddFileHandle(std::shared_ptr<Inode> inode,
                                   std::shared_ptr<EncryptedFile> file, int flags) {
  auto handle = std::make_shared<FileHandle>();
  handle->inode = std::move(inode);
  handle->file = std::move(file);
  handle->append = (flags & O_APPEND) != 0;
  return files_->Add(std::move(handle));
}

Result<std::pair<Entry, HandleId>> FileSystem::Create(InodeNumber parent, std::string_view name,
                                                      uint32_t mode, int flags,
                                                      const Caller& caller) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(ChildPath child, ResolveChild(parent, name));
  std::shared_ptr<EncryptedFile> file;
  CADCANFS_RETURN_IF_ERROR(MakeEntry(child, [&] {
    auto created = vault_->CreateFile(child.path, mode & 07777);
    if (created.ok()) file = std::move(created).value();
    return created.status();
  }));
  CADCANFS_RETURN_IF_ERROR(AssignOwner(child, caller, mode, /*is_dir=*/false));
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, file->Stat());
  std::shared_ptr<Inode> inode = RecordInode(child, info);
  {
    std::lock_guard lock(inode->mu);
    if (!inode->file) inode->file = file;
    ++inode->open_count;
    file = inode->file;
  }
  Entry entry{inode->number, AttrOf(info)};
  return std::make_pair(entry, AddFileHandle(std::move(inode), std::move(file), flags));
}

Result<size_t> FileSystem::Read(HandleId fh, uint64_t offset, std::span<uint8_t> out) {
  std::shared_ptr<FileHandle> handle = files_->Get(fh);
  if (!handle) return BadHandle();
  auto n = handle->file->Read(offset, out);
  if (!n.ok()) LogIfTampered(n.status(), *handle->file);
  return n;
}

Result<size_t> FileSystem::Write(HandleId fh, uint64_t offset, ByteSpan data) {
  std::shared_ptr<FileHandle> handle = files_->Get(fh);
  if (!handle) return BadHandle();
  if (!handle->file->writable()) return Status::Error(Code::kBadHandle, "not open for writing");
  const uint64_t end_offset = handle->append ? handle->file->size() : offset;
  CADCANFS_RETURN_IF_ERROR(CheckFileSize(end_offset, data.size()));
  Status s =
      handle->append ? handle->file->Append(data).status() : handle->file->Write(offset, data);
  if (!s.ok()) {
    LogIfTampered(s, *handle->file);
    return s;
  }
  return data.size();
}

Status FileSystem::Fsync(HandleId fh) {
  std::shared_ptr<FileHandle> handle = files_->Get(fh);
  if (!handle) return BadHandle();
  if (!handle->file->writable()) return Status::Ok();
  return handle->file->Sync();
}

Status FileSystem::Allocate(HandleId fh, int mode, uint64_t offset, uint64_t length) {
  std::shared_ptr<FileHandle> handle = files_->Get(fh);
  if (!handle) return BadHandle();
  if ((mode & ~FALLOC_FL_KEEP_SIZE) != 0) {
    return Status::Error(Code::kUnsupported, "fallocate mode");
  }
  if ((mode & FALLOC_FL_KEEP_SIZE) == 0) CADCANFS_RETURN_IF_ERROR(CheckFileSize(offset, length));
  return handle->file->Allocate(offset, length, (mode & FALLOC_FL_KEEP_SIZE) != 0);
}

void FileSystem::Release(HandleId fh) {
  std::shared_ptr<FileHandle> handle = files_->Take(fh);
  if (!handle) return;
  std::shared_ptr<Inode> inode = std::move(handle->inode);
  handle.reset();
  ReleaseFile(*inode);
}

// ---- directories ----

Result<HandleId> FileSystem::OpenDir(InodeNumber ino) {
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
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
    CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOf(*handle->inode));
    CADCANFS_ASSIGN_OR_RETURN(DirListing listing, vault_->ListDirectory(path));
    if (!listing.damaged.empty()) {
      spdlog::error("directory listing skipped {} entries that failed to decrypt (run fsck)",
                    listing.damaged.size());
    }
    handle->snapshot = std::make_shared<const DirSnapshot>(std::move(listing.entries));
  }
  return handle->snapshot;
}

Status FileSystem::FsyncDir(InodeNumber ino) {
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOfNumber(ino));
  return store_.SyncDir(path);
}

void FileSystem::ReleaseDir(HandleId dh) { (void)dirs_->Take(dh); }

// ---- extended attributes ----

Result<Bytes> FileSystem::GetXattr(InodeNumber ino, std::string_view name) {
  // The kernel asks for this on every write; answer from memory. Only user.* is stored.
  if (name == kCapabilityXattr || name.substr(0, kUserPrefix.size()) != kUserPrefix) {
    return Status::Error(Code::kNotFound, "no such attribute", ENODATA);
  }
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, vault_->names().EncryptXattrName(name));
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOfNumber(ino));
  CADCANFS_ASSIGN_OR_RETURN(Bytes sealed, store_.GetXattr(path, stored));
  return vault_->names().OpenXattrValue(stored, sealed);
}

Status FileSystem::SetXattr(InodeNumber ino, std::string_view name, ByteSpan value, int flags) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, vault_->names().EncryptXattrName(name));
  CADCANFS_ASSIGN_OR_RETURN(Bytes sealed, vault_->names().SealXattrValue(stored, value));
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOfNumber(ino));
  return store_.SetXattr(path, stored, sealed, flags);
}

Result<std::vector<std::string>> FileSystem::ListXattrs(InodeNumber ino) {
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOfNumber(ino));
  auto stored = store_.ListXattrs(path);
  if (!stored.ok()) {
    if (stored.status().code() == Code::kUnsupported) return std::vector<std::string>{};
    return stored.status();
  }
  std::vector<std::string> names;
  for (const std::string& s : *stored) {
    // Attributes that are not ours, or fail to decrypt, are not shown.
    if (auto plain = vault_->names().DecryptXattrName(s); plain.ok()) names.push_back(*plain);
  }
  return names;
}

Status FileSystem::RemoveXattr(InodeNumber ino, std::string_view name) {
  CADCANFS_RETURN_IF_ERROR(CheckWritable());
  CADCANFS_ASSIGN_OR_RETURN(std::string stored, vault_->names().EncryptXattrName(name));
  std::shared_lock ns(namespace_mu_);
  CADCANFS_ASSIGN_OR_RETURN(std::string path, PathOfNumber(ino));
  return store_.RemoveXattr(path, stored);
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
