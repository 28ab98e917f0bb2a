#include "cadcanfs/store/local_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/unique_fd.h"

namespace cadcanfs {

namespace internal {
// The object type of entry `name` of the directory `dirfd` that readdir reported with
// `d_type`; falls back to fstatat for DT_UNKNOWN. kNotFound if the entry is gone.
// Outside the anonymous namespace so that a test can force the fallback path.
Result<ObjectType> DirentType(int dirfd, const char* name, unsigned char d_type);
}  // namespace internal

namespace {

ObjectType TypeOfMode(mode_t mode) {
  if (S_ISREG(mode)) return ObjectType::kFile;
  if (S_ISDIR(mode)) return ObjectType::kDirectory;
  if (S_ISLNK(mode)) return ObjectType::kSymlink;
  if (S_ISFIFO(mode)) return ObjectType::kFifo;
  if (S_ISSOCK(mode)) return ObjectType::kSocket;
  if (S_ISCHR(mode)) return ObjectType::kCharDevice;
  if (S_ISBLK(mode)) return ObjectType::kBlockDevice;
  return ObjectType::kOther;
}

ObjectInfo InfoFromStat(const struct stat& st) {
  ObjectInfo info;
  info.type = TypeOfMode(st.st_mode);
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) info.rdev = st.st_rdev;
  info.size = static_cast<uint64_t>(st.st_size);
  info.mode = st.st_mode & 07777;
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  info.nlink = st.st_nlink;
  info.atime = st.st_atim;
  info.mtime = st.st_mtim;
  info.ctime = st.st_ctim;
  info.id = ObjectId::OfLocalInode(st.st_dev, st.st_ino);
  info.inode_hint = st.st_ino;
  // ctime moves on every change, content or metadata; the inode number tells a
  // replaced object (WriteAtomic) from an edited one within one clock tick.
  info.etag = std::to_string(st.st_ino) + "." + std::to_string(st.st_mtim.tv_sec) + "." +
              std::to_string(st.st_mtim.tv_nsec) + "." + std::to_string(st.st_size) + "." +
              std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
  return info;
}

// What config, directory id and sidecar reads, and opens of existing objects, refuse:
// a FIFO would block the caller forever, and opening a device can have side effects.
Status NotARegularFile(mode_t mode) {
  if (S_ISDIR(mode)) return Status::Error(Code::kIsADirectory, "the object is a directory", EISDIR);
  return Status::Error(Code::kCorrupt,
                       "the object is not a regular file (a FIFO, socket or device node)");
}

// Writes land in place, so a conditional Commit can only check the object as it was
// before this handle's first write since its last Commit: the eTag is remembered then.
class LocalStoreFile final : public StoreFile {
 public:
  explicit LocalStoreFile(UniqueFd fd, std::optional<std::string> base_etag = std::nullopt)
      : fd_(std::move(fd)), base_etag_(std::move(base_etag)) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    size_t total = 0;
    while (total < out.size()) {
      ssize_t n = pread(fd_.get(), out.data() + total, out.size() - total,
                        static_cast<off_t>(offset + total));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, "read");
      if (n == 0) break;
      total += static_cast<size_t>(n);
    }
    return total;
  }

  Status WriteAt(uint64_t offset, ByteSpan data) override {
    CADCANFS_RETURN_IF_ERROR(RememberBaseEtag());
    size_t total = 0;
    while (total < data.size()) {
      ssize_t n = pwrite(fd_.get(), data.data() + total, data.size() - total,
                         static_cast<off_t>(offset + total));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, "write");
      total += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    CADCANFS_RETURN_IF_ERROR(RememberBaseEtag());
    if (ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
      return Status::FromErrno(errno, "truncate");
    }
    return Status::Ok();
  }

  void Prefetch(uint64_t offset, uint64_t length) override {
    (void)posix_fadvise(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(length),
                        POSIX_FADV_WILLNEED);
  }

  Status SetMode(uint32_t mode) override {
    if (fchmod(fd_.get(), mode) != 0) return Status::FromErrno(errno, "chmod");
    return Status::Ok();
  }

  Status SetOwner(uid_t uid, gid_t gid) override {
    if (fchown(fd_.get(), uid, gid) != 0) return Status::FromErrno(errno, "chown");
    return Status::Ok();
  }

  Status SetTimes(const struct timespec times[2]) override {
    if (futimens(fd_.get(), times) != 0) return Status::FromErrno(errno, "utimens");
    return Status::Ok();
  }

  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo current, Stat());
    {
      std::lock_guard lock(commit_mu_);
      const std::string& expected = base_etag_ ? *base_etag_ : current.etag;
      if (if_match_etag && *if_match_etag != expected) {
        return Status::Error(Code::kChangedElsewhere,
                             "the object changed elsewhere since its eTag was read");
      }
      base_etag_.reset();  // writes from here on belong to the next version
    }
    if (fdatasync(fd_.get()) != 0) return Status::FromErrno(errno, "fdatasync");
    return current;
  }

  // The kernel holds what was written: a crash of this process loses nothing.
  Status Checkpoint() override { return Status::Ok(); }

  Status Abort() override {
    return Status::Error(Code::kUnsupported, "a local store writes in place and cannot undo it");
  }

  Result<uint64_t> Size() override {
    struct stat st;
    if (fstat(fd_.get(), &st) != 0) return Status::FromErrno(errno, "fstat");
    return static_cast<uint64_t>(st.st_size);
  }

  Result<ObjectInfo> Stat() override {
    struct stat st;
    if (fstat(fd_.get(), &st) != 0) return Status::FromErrno(errno, "fstat");
    return InfoFromStat(st);
  }

  Status Reserve(uint64_t offset, uint64_t length) override {
    if (length == 0) return Status::Ok();
    if (fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
      if (errno == EOPNOTSUPP) return Status::Ok();  // best effort on filesystems without it
      return Status::FromErrno(errno, "fallocate");
    }
    return Status::Ok();
  }

 private:
  Status RememberBaseEtag() {
    std::lock_guard lock(commit_mu_);
    if (base_etag_) return Status::Ok();
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, Stat());
    base_etag_ = std::move(info.etag);
    return Status::Ok();
  }

  UniqueFd fd_;
  std::mutex commit_mu_;
  std::optional<std::string> base_etag_;  // GUARDED_BY(commit_mu_); set while uncommitted
};

class LocalStore final : public Store {
 public:
  explicit LocalStore(UniqueFd root) : root_(std::move(root)) {}

  StoreCapabilities capabilities() const override { return StoreCapabilities::Full(); }

  Result<ObjectInfo> Stat(std::string_view path) override {
    CADCANFS_ASSIGN_OR_RETURN(auto parent, OpenParent(path));
    struct stat st;
    if (fstatat(parent.first.get(), parent.second.c_str(), &st,
                AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0) {
      return Status::FromErrno(errno, "stat");
    }
    return InfoFromStat(st);
  }

  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(dir, O_RDONLY | O_DIRECTORY, 0));
    DIR* d = fdopendir(fd.get());
    if (d == nullptr) return Status::FromErrno(errno, "opendir");
    fd.Release();  // closedir closes it from here on
    std::vector<DirEntry> entries;
    errno = 0;
    while (struct dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      DirEntry entry;
      entry.name = e->d_name;
      // Attributes relative to the open directory cost no path walk, and they spare
      // readdirplus and `ls -l` a Stat per entry.
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        entry.info = InfoFromStat(st);
        entry.type = entry.info->type;
      } else {
        auto type = internal::DirentType(dirfd(d), e->d_name, e->d_type);
        if (!type.ok() && type.status().code() == Code::kNotFound) {
          errno = 0;
          continue;  // removed since readdir saw it
        }
        // An entry that cannot be typed stays in the listing as kOther, so that walkers
        // count it as skipped instead of never seeing it.
        entry.type = type.ok() ? *type : ObjectType::kOther;
      }
      entries.push_back(std::move(entry));
      errno = 0;
    }
    int saved = errno;
    closedir(d);
    if (saved != 0) return Status::FromErrno(saved, "readdir");
    return entries;
  }

  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    int access = options.write ? O_RDWR : O_RDONLY;
    // Truncating on open is this handle's first write: a conditional Commit compares
    // against the object as it was before it.
    std::optional<std::string> base_etag;
    if (options.write && options.truncate) {
      access |= O_TRUNC;
      auto before = Stat(path);
      if (before.ok()) base_etag = std::move(before->etag);
    }
    if (!options.create) {
      CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(path, access));
      return std::unique_ptr<StoreFile>(
          std::make_unique<LocalStoreFile>(std::move(fd), std::move(base_etag)));
    }
    // O_NONBLOCK: O_CREAT without O_EXCL opens whatever is there, and a FIFO would
    // block; the type check below then refuses it.
    int flags = access | O_NOFOLLOW | O_CREAT | O_NONBLOCK;
    if (options.exclusive) flags |= O_EXCL;
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(path, flags, options.mode));
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "fstat");
    if (!S_ISREG(st.st_mode)) return NotARegularFile(st.st_mode);
    if (fcntl(fd.get(), F_SETFL, access) != 0) return Status::FromErrno(errno, "fcntl");
    return std::unique_ptr<StoreFile>(
        std::make_unique<LocalStoreFile>(std::move(fd), std::move(base_etag)));
  }

  Result<Bytes> ReadSmall(std::string_view path, size_t max_size) override {
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(path, O_RDONLY));
    Bytes out(max_size + 1);
    LocalStoreFile file(std::move(fd));
    CADCANFS_ASSIGN_OR_RETURN(size_t n, file.ReadAt(0, out));
    if (n > max_size) return Status::Error(Code::kCorrupt, "object is larger than expected");
    out.resize(n);
    return out;
  }

  Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive) override {
    CADCANFS_ASSIGN_OR_RETURN(auto parent, OpenParent(path));
    if (parent.second.empty()) return Status::Error(Code::kInvalidArgument, "cannot replace root");
    std::string temp = TempName();
    int fd = openat(parent.first.get(), temp.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FromErrno(errno, "create temporary file");
    LocalStoreFile file{UniqueFd(fd)};
    Status s = file.WriteAt(0, data);
    if (s.ok()) s = file.Commit(std::nullopt).status();
    if (s.ok() && renameat2(parent.first.get(), temp.c_str(), parent.first.get(),
                            parent.second.c_str(), exclusive ? RENAME_NOREPLACE : 0) != 0) {
      s = Status::FromErrno(errno, "rename temporary file");
    }
    if (!s.ok()) {
      unlinkat(parent.first.get(), temp.c_str(), 0);
      return s;
    }
    return FsyncFd(parent.first.get());
  }

  Status MakeDir(std::string_view path, uint32_t mode) override {
    return AtParent(path, "mkdir",
                    [mode](int dirfd, const char* name) { return mkdirat(dirfd, name, mode); });
  }

  Status RemoveDir(std::string_view path) override {
    return AtParent(path, "rmdir", [](int dirfd, const char* name) {
      return unlinkat(dirfd, name, AT_REMOVEDIR);
    });
  }

  Status Remove(std::string_view path) override {
    return AtParent(path, "unlink",
                    [](int dirfd, const char* name) { return unlinkat(dirfd, name, 0); });
  }

  Status Rename(std::string_view from, std::string_view to, RenameMode mode) override {
    CADCANFS_ASSIGN_OR_RETURN(auto src, OpenParent(from));
    CADCANFS_ASSIGN_OR_RETURN(auto dst, OpenParent(to));
    unsigned flags = mode == RenameMode::kNoReplace  ? RENAME_NOREPLACE
                     : mode == RenameMode::kExchange ? RENAME_EXCHANGE
                                                     : 0;
    if (renameat2(src.first.get(), src.second.c_str(), dst.first.get(), dst.second.c_str(),
                  flags) != 0) {
      return Status::FromErrno(errno, "rename");
    }
    return Status::Ok();
  }

  Status SyncDir(std::string_view dir) override {
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(dir, O_RDONLY | O_DIRECTORY, 0));
    return FsyncFd(fd.get());
  }

  Status Symlink(std::string_view target, std::string_view path) override {
    std::string t(target);
    return AtParent(path, "symlink", [&t](int dirfd, const char* name) {
      return symlinkat(t.c_str(), dirfd, name);
    });
  }

  Result<std::string> ReadLink(std::string_view path) override {
    CADCANFS_ASSIGN_OR_RETURN(auto parent, OpenParent(path));
    std::string buf(PATH_MAX, '\0');
    ssize_t n = readlinkat(parent.first.get(), parent.second.c_str(), buf.data(), buf.size());
    if (n < 0) return Status::FromErrno(errno, "readlink");
    buf.resize(static_cast<size_t>(n));
    return buf;
  }

  Status Link(std::string_view existing, std::string_view new_path) override {
    CADCANFS_ASSIGN_OR_RETURN(auto src, OpenParent(existing));
    CADCANFS_ASSIGN_OR_RETURN(auto dst, OpenParent(new_path));
    if (linkat(src.first.get(), src.second.c_str(), dst.first.get(), dst.second.c_str(), 0) != 0) {
      return Status::FromErrno(errno, "link");
    }
    return Status::Ok();
  }

  Status MakeNode(std::string_view path, ObjectType type, uint32_t mode, uint64_t rdev) override {
    if (!IsSpecialType(type)) {
      return Status::Error(Code::kInvalidArgument, "not a FIFO, socket or device type", EINVAL);
    }
    bool device = type == ObjectType::kCharDevice || type == ObjectType::kBlockDevice;
    mode_t full_mode = static_cast<mode_t>(FileTypeBits(type) | (mode & 07777));
    dev_t dev = device ? static_cast<dev_t>(rdev) : 0;
    return AtParent(path, "mknod", [full_mode, dev](int dirfd, const char* name) {
      return mknodat(dirfd, name, full_mode, dev);
    });
  }

  Status SetMode(std::string_view path, uint32_t mode) override {
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(path, O_PATH | O_NOFOLLOW, 0));
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat");
    if (S_ISLNK(st.st_mode)) return Status::Ok();  // Linux has no symlink permissions
    // chmod through /proc avoids following a name that could be swapped after the check.
    std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
    if (fchmodat(AT_FDCWD, proc.c_str(), mode, 0) != 0) return Status::FromErrno(errno, "chmod");
    return Status::Ok();
  }

  Status SetOwner(std::string_view path, uid_t uid, gid_t gid) override {
    CADCANFS_ASSIGN_OR_RETURN(auto parent, OpenParent(path));
    if (fchownat(parent.first.get(), parent.second.c_str(), uid, gid,
                 AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0) {
      return Status::FromErrno(errno, "chown");
    }
    return Status::Ok();
  }

  Status SetTimes(std::string_view path, const struct timespec times[2]) override {
    CADCANFS_ASSIGN_OR_RETURN(auto parent, OpenParent(path));
    const char* name = parent.second.empty() ? "." : parent.second.c_str();
    if (utimensat(parent.first.get(), name, times, AT_SYMLINK_NOFOLLOW) != 0) {
      return Status::FromErrno(errno, "utimens");
    }
    return Status::Ok();
  }

  Result<StoreSpace> Space() override {
    struct statvfs sv;
    if (fstatvfs(root_.get(), &sv) != 0) return Status::FromErrno(errno, "statvfs");
    StoreSpace space;
    space.block_size = sv.f_frsize;
    space.total_blocks = sv.f_blocks;
    space.free_blocks = sv.f_bfree;
    space.available_blocks = sv.f_bavail;
    space.total_files = sv.f_files;
    space.free_files = sv.f_ffree;
    return space;
  }

  Result<Bytes> GetXattr(std::string_view path, std::string_view name) override {
    CADCANFS_ASSIGN_OR_RETURN(std::string proc, ProcPathOf(path));
    std::string n(name);
    for (;;) {
      ssize_t size = getxattr(proc.c_str(), n.c_str(), nullptr, 0);
      if (size < 0) return XattrError("getxattr");
      Bytes value(static_cast<size_t>(size));
      ssize_t got = getxattr(proc.c_str(), n.c_str(), value.data(), value.size());
      if (got < 0 && errno == ERANGE) continue;  // it grew in between
      if (got < 0) return XattrError("getxattr");
      value.resize(static_cast<size_t>(got));
      return value;
    }
  }

  Status SetXattr(std::string_view path, std::string_view name, ByteSpan value,
                  int flags) override {
    CADCANFS_ASSIGN_OR_RETURN(std::string proc, ProcPathOf(path));
    std::string n(name);
    if (setxattr(proc.c_str(), n.c_str(), value.data(), value.size(), flags) != 0) {
      return XattrError("setxattr");
    }
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListXattrs(std::string_view path) override {
    CADCANFS_ASSIGN_OR_RETURN(std::string proc, ProcPathOf(path));
    for (;;) {
      ssize_t size = listxattr(proc.c_str(), nullptr, 0);
      if (size < 0) return XattrError("listxattr");
      std::string buf(static_cast<size_t>(size), '\0');
      ssize_t got = listxattr(proc.c_str(), buf.data(), buf.size());
      if (got < 0 && errno == ERANGE) continue;
      if (got < 0) return XattrError("listxattr");
      std::vector<std::string> names;
      for (size_t start = 0; start < static_cast<size_t>(got);) {
        size_t end = buf.find('\0', start);
        if (end == std::string::npos) end = static_cast<size_t>(got);
        if (end > start) names.emplace_back(buf, start, end - start);
        start = end + 1;
      }
      return names;
    }
  }

  Status RemoveXattr(std::string_view path, std::string_view name) override {
    CADCANFS_ASSIGN_OR_RETURN(std::string proc, ProcPathOf(path));
    std::string n(name);
    if (removexattr(proc.c_str(), n.c_str()) != 0) return XattrError("removexattr");
    return Status::Ok();
  }

 private:
  // The xattr calls take a path; going through /proc/self/fd of a descriptor opened
  // beneath the root keeps them from following a swapped-in symlink. The descriptor
  // stays open in `xattr_fd_` for the duration of the call on this thread.
  Result<std::string> ProcPathOf(std::string_view path) {
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(path, O_PATH | O_NOFOLLOW, 0));
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat");
    if (S_ISLNK(st.st_mode)) {
      return Status::Error(Code::kUnsupported, "symlinks carry no user attributes", EPERM);
    }
    XattrFd() = std::move(fd);
    return "/proc/self/fd/" + std::to_string(XattrFd().get());
  }

  static UniqueFd& XattrFd() {
    thread_local UniqueFd fd;
    return fd;
  }

  static Status XattrError(const char* what) {
    int e = errno;
    if (e == ENODATA) return Status::Error(Code::kNotFound, "no such attribute", ENODATA);
    if (e == ENOTSUP) return Status::Error(Code::kUnsupported, "attributes unsupported", ENOTSUP);
    return Status::FromErrno(e, what);
  }

  // Opens `path` below the root without following any symlink.
  //
  // openat2 refuses paths of PATH_MAX bytes or more, and ciphertext paths outgrow
  // plaintext ones (each encrypted name is about 1.8 times as long). A long path is
  // therefore resolved in pieces of whole components, at most kMaxResolveChunk bytes
  // each, every piece beneath the directory the previous one opened. Since store paths
  // hold no "." or ".." and symlinks are refused, every piece stays below the root.
  Result<UniqueFd> OpenBeneath(std::string_view path, int flags, uint32_t mode) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    if (path.empty()) return OpenAt2(root_.get(), ".", flags, mode);
    UniqueFd dir;
    int at = root_.get();
    std::string_view rest = path;
    while (rest.size() > kMaxResolveChunk) {
      size_t cut = rest.rfind('/', kMaxResolveChunk);
      if (cut == std::string_view::npos || cut == 0) {
        return Status::Error(Code::kNameTooLong, "a path component is too long", ENAMETOOLONG);
      }
      CADCANFS_ASSIGN_OR_RETURN(UniqueFd next,
                                OpenAt2(at, rest.substr(0, cut), O_PATH | O_DIRECTORY, 0));
      dir = std::move(next);
      at = dir.get();
      rest.remove_prefix(cut + 1);
    }
    return OpenAt2(at, rest, flags, mode);
  }

  // One openat2 of `path` (at most kMaxResolveChunk bytes) beneath `dirfd`.
  static Result<UniqueFd> OpenAt2(int dirfd, std::string_view path, int flags, uint32_t mode) {
    struct open_how how;
    std::memset(&how, 0, sizeof(how));
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    std::string p(path);
    long fd;
    do {
      fd = syscall(SYS_openat2, dirfd, p.c_str(), &how, sizeof(how));
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      // The last component being a symlink is reported as ELOOP; callers expect ext4's
      // answer for "not a directory/regular file here".
      return Status::FromErrno(errno, "open");
    }
    return UniqueFd(static_cast<int>(fd));
  }

  // Opens an existing regular file. The name is first resolved to an O_PATH descriptor
  // and typed, and only a regular file is then opened for I/O (through /proc, which
  // reopens that same inode): opening a FIFO would block forever, and opening a device
  // node can have side effects (a tape rewinds, a watchdog arms).
  Result<UniqueFd> OpenRegular(std::string_view path, int access) {
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd probe, OpenBeneath(path, O_PATH | O_NOFOLLOW, 0));
    struct stat st;
    if (fstat(probe.get(), &st) != 0) return Status::FromErrno(errno, "fstat");
    if (!S_ISREG(st.st_mode)) return NotARegularFile(st.st_mode);
    std::string proc = "/proc/self/fd/" + std::to_string(probe.get());
    int fd;
    do {
      fd = open(proc.c_str(), access | O_NONBLOCK | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return Status::FromErrno(errno, "open");
    UniqueFd out(fd);
    // Regular files ignore O_NONBLOCK; drop it anyway so the descriptor is ordinary.
    if (fcntl(out.get(), F_SETFL, access) != 0) return Status::FromErrno(errno, "fcntl");
    return out;
  }

  // Opens the parent directory of `path` and returns it with the last component.
  // For the root itself returns the root and an empty name (for AT_EMPTY_PATH use).
  Result<std::pair<UniqueFd, std::string>> OpenParent(std::string_view path) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    if (path.empty()) {
      CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath("", O_PATH | O_DIRECTORY, 0));
      return std::make_pair(std::move(fd), std::string());
    }
    CADCANFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(StoreParent(path), O_PATH | O_DIRECTORY, 0));
    return std::make_pair(std::move(fd), std::string(StoreBaseName(path)));
  }

  template <typename Op>
  Status AtParent(std::string_view path, const char* what, Op op) {
    CADCANFS_ASSIGN_OR_RETURN(auto parent, OpenParent(path));
    if (parent.second.empty()) return Status::Error(Code::kBusy, "operation on the store root");
    if (op(parent.first.get(), parent.second.c_str()) != 0) return Status::FromErrno(errno, what);
    return Status::Ok();
  }

  static Status FsyncFd(int fd) {
    // O_PATH descriptors cannot be fsynced; reopen the directory for reading.
    int rfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) return Status::FromErrno(errno, "open directory for fsync");
    int rc = fsync(rfd);
    int saved = errno;
    close(rfd);
    if (rc != 0) return Status::FromErrno(saved, "fsync directory");
    return Status::Ok();
  }

  static constexpr size_t kMaxResolveChunk = 2048;

  static std::string TempName() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::string(".cadcanfs-tmp-") + std::to_string(rng());
  }

  UniqueFd root_;
};

}  // namespace

namespace internal {

Result<ObjectType> DirentType(int dirfd, const char* name, unsigned char d_type) {
  switch (d_type) {
    case DT_REG:
      return ObjectType::kFile;
    case DT_DIR:
      return ObjectType::kDirectory;
    case DT_LNK:
      return ObjectType::kSymlink;
    case DT_FIFO:
      return ObjectType::kFifo;
    case DT_SOCK:
      return ObjectType::kSocket;
    case DT_CHR:
      return ObjectType::kCharDevice;
    case DT_BLK:
      return ObjectType::kBlockDevice;
    default:
      break;
  }
  // DT_UNKNOWN (XFS without ftype, some NFS and FUSE mounts): ask the inode itself.
  // Mapping it to kOther instead would hide files from every walker (rekey, decrypt).
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return Status::FromErrno(errno, "stat");
  return TypeOfMode(st.st_mode);
}

}  // namespace internal

Result<std::unique_ptr<Store>> OpenLocalStore(const std::string& root) {
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open vault directory");
  return std::unique_ptr<Store>(std::make_unique<LocalStore>(UniqueFd(fd)));
}

}  // namespace cadcanfs
