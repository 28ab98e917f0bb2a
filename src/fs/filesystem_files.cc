// FileSystem: open files (open, create, read, write, fsync, fallocate, release).
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

Result<std::shared_ptr<FileContent>> FileSystem::AcquireFile(Inode& inode, bool need_write) {
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
  Result<std::string> path = names_.PathOf(inode);
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
    auto opened = format_->OpenFile(*path, OpensWritable(need_write));
    // A read-only backing object (chmod a-w) can still be read.
    if (!opened.ok() && !need_write && !options_.read_only &&
        opened.status().code() == Code::kPermissionDenied) {
      opened = format_->OpenFile(*path, false);
    }
    if (!opened.ok()) return opened.status();
    inode.file = std::move(opened).value();
    inode.cached_attr.reset();  // from now on the open file answers
  }
  ++inode.open_count;
  return inode.file;
}

bool FileSystem::OpensWritable(bool need_write) const {
  if (options_.read_only) return false;
  // Locally a writable descriptor costs nothing more, and a later writer then shares it.
  // On a remote store it starts a stage (a round trip for the object's version), which a
  // reader does not need: a writer that comes later upgrades the open file.
  return need_write || !store_.capabilities().remote;
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
  std::shared_ptr<FileContent> closing;
  std::lock_guard lock(inode.mu);
  if (inode.open_count > 0 && --inode.open_count == 0) closing = std::move(inode.file);
  // What was read before the file was opened is behind what its handles did since.
  if (closing) inode.cached_attr.reset();
}

Result<HandleId> FileSystem::Open(InodeNumber ino, int flags) {
  CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Inode> inode, InodeOf(ino));
  const bool need_write = NeedsWrite(flags);
  CADCANFS_RETURN_IF_ERROR(need_write ? CheckChangeable(*inode, "open-write")
                                      : CheckVisible(*inode));
  auto acquired = AcquireFile(*inode, need_write);
  if (!acquired.ok()) {
    AuditTamper(*inode, acquired.status(), {});
    return acquired.status();
  }
  std::shared_ptr<FileContent> file = std::move(acquired).value();
  if (flags & O_TRUNC) {
    Status s = file->Truncate(0);
    if (!s.ok()) {
      ReleaseFile(*inode);
      return s;
    }
  }
  // On record before the caller gets the file: a failed line fails the open.
  Status audited = AuditInode(need_write ? access::AuditOp::kOpenWrite : access::AuditOp::kOpenRead,
                              *inode, audit_enabled() ? file->id_for_log() : std::string());
  if (!audited.ok()) {
    ReleaseFile(*inode);
    return audited;
  }
  return AddFileHandle(std::move(inode), std::move(file), flags);
}

HandleId FileSystem::AddFileHandle(std::shared_ptr<Inode> inode, std::shared_ptr<FileContent> file,
                                   int flags) {
  auto handle = std::make_shared<FileHandle>();
  handle->inode = std::move(inode);
  handle->file = std::move(file);
  handle->append = (flags & O_APPEND) != 0;
  return files_->Add(std::move(handle));
}

Result<std::pair<Entry, HandleId>> FileSystem::Create(InodeNumber parent, std::string_view name,
                                                      uint32_t mode, int flags,
                                                      const Caller& caller) {
  ScopedChange change(namespace_generation_);
  CADCANFS_ASSIGN_OR_RETURN(NewName added,
                            PrepareNewName(parent, name, ObjectType::kFile, "create"));
  const ChildPath& child = added.child;
  std::shared_ptr<FileContent> file;
  CADCANFS_RETURN_IF_ERROR(MakeEntry(child, [&] {
    auto created = format_->CreateFile(child.path, mode & 07777);
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
  const std::string file_id = audit_enabled() ? file->id_for_log() : std::string();
  if (Status audited = Audit(access::AuditOp::kCreate, added.path, file_id); !audited.ok()) {
    ReleaseFile(*inode);
    return audited;
  }
  return std::make_pair(entry, AddFileHandle(std::move(inode), std::move(file), flags));
}

Result<size_t> FileSystem::Read(HandleId fh, uint64_t offset, std::span<uint8_t> out) {
  std::shared_ptr<FileHandle> handle = files_->Get(fh);
  if (!handle) return BadHandle();
  auto n = handle->file->Read(offset, out);
  if (!n.ok()) {
    LogIfTampered(n.status(), *handle->file);
    if (IsTamper(n.status()) && !handle->tamper_audited.exchange(true)) {
      AuditTamper(*handle->inode, n.status(), handle->file->id_for_log());
    }
  }
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
    if (IsTamper(s) && !handle->tamper_audited.exchange(true)) {
      AuditTamper(*handle->inode, s, handle->file->id_for_log());
    }
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

Status FileSystem::Flush(HandleId fh) {
  std::shared_ptr<FileHandle> handle = files_->Get(fh);
  if (!handle) return BadHandle();
  if (!handle->file->writable()) return Status::Ok();
  return handle->file->Checkpoint();
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

}  // namespace cadcanfs
