#include "cadcanfs/store/memory_store.h"

#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "cadcanfs/common/bytes.h"

namespace cadcanfs {

namespace {

// The Linux and ext4 limits that LocalStore's callers run into, kept so that both stores
// refuse the same requests with the same errors.
constexpr size_t kNameMax = 255;                                     // NAME_MAX
constexpr size_t kSymlinkMax = 4095;                                 // PATH_MAX with its NUL
constexpr uint64_t kMaxFileSize = ((uint64_t{1} << 32) - 1) * 4096;  // ext4, 4 KiB blocks
constexpr uint64_t kMaxOffset = uint64_t{1} << 63;                   // off_t is signed
constexpr uint64_t kLinkMax = 65000;                                 // EXT4_LINK_MAX
constexpr size_t kXattrNameMax = 255;                                // XATTR_NAME_MAX
constexpr size_t kXattrSizeMax = 65536;                              // XATTR_SIZE_MAX
constexpr uint64_t kDirectorySize = 4096;  // what ext4 reports for a directory's size
constexpr time_t kRelatimeWindow = 24 * 3600;

// Space() describes a large, mostly empty filesystem: the store has no real limit, and
// callers that check free space before writing must not refuse.
constexpr uint64_t kFakeBlockSize = 4096;
constexpr uint64_t kFakeTotalBlocks = (uint64_t{1} << 40) / kFakeBlockSize;  // 1 TiB
constexpr uint64_t kFakeTotalFiles = uint64_t{1} << 32;

// File content is held in chunks of this size, and only where bytes were written.
constexpr uint64_t kChunkSize = 64 * 1024;

struct timespec Now() {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return now;
}

bool NotBefore(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec >= b.tv_nsec);
}

bool Privileged() { return geteuid() == 0; }

bool InGroup(gid_t gid) {
  if (getegid() == gid) return true;
  int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  n = getgroups(n, groups.data());
  return n > 0 && std::find(groups.begin(), groups.begin() + n, gid) != groups.begin() + n;
}

// The process umask, which the kernel applies to every LocalStore creation. umask(2) can
// only read it by changing it, which would race with other threads creating files, so
// it is read from /proc.
mode_t CurrentUmask() {
  mode_t mask = 022;
  FILE* f = fopen("/proc/self/status", "re");
  if (f == nullptr) return mask;
  char line[256];
  while (fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "Umask:", 6) == 0) {
      mask = static_cast<mode_t>(std::strtoul(line + 6, nullptr, 8) & 0777);
      break;
    }
  }
  fclose(f);
  return mask;
}

// What LocalStore returns for a failed system call: the same Code and sys_errno.
Status Errno(int e, const char* what) { return Status::FromErrno(e, what); }

// LocalStore's mapping of xattr errors.
Status XattrErrno(int e, const char* what) {
  if (e == ENODATA) return Status::Error(Code::kNotFound, "no such attribute", ENODATA);
  if (e == ENOTSUP) return Status::Error(Code::kUnsupported, "attributes unsupported", ENOTSUP);
  return Status::FromErrno(e, what);
}

// Whether `ancestor` names `path` itself or a directory above it. Store paths hold no
// "." or "..", symlinks are never followed and a directory has exactly one name, so
// the names alone decide it.
bool IsSelfOrAncestor(std::string_view ancestor, std::string_view path) {
  if (path == ancestor) return true;
  return path.size() > ancestor.size() && path.starts_with(ancestor) &&
         path[ancestor.size()] == '/';
}

// A setting under /proc/sys/fs, or `fallback` if it cannot be read.
int ProtectionSysctl(const char* name, int fallback) {
  std::string path = std::string("/proc/sys/fs/") + name;
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return fallback;
  int value = fallback;
  if (fscanf(f, "%d", &value) != 1) value = fallback;
  fclose(f);
  return value;
}

// What LocalStore refuses to open as a file, with the same codes.
Status NotARegularFile(ObjectType type) {
  if (type == ObjectType::kDirectory) {
    return Status::Error(Code::kIsADirectory, "the object is a directory", EISDIR);
  }
  return Status::Error(Code::kCorrupt, "the object is not a regular file");
}

bool ValidNsec(long nsec) {
  return (nsec >= 0 && nsec < 1000000000L) || nsec == UTIME_NOW || nsec == UTIME_OMIT;
}

bool BothOmitted(const struct timespec times[2]) {
  return times != nullptr && times[0].tv_nsec == UTIME_OMIT && times[1].tv_nsec == UTIME_OMIT;
}

// Sparse file content, like ext4's holes: truncating to a large size or writing at a
// large offset costs nothing until bytes land. Invariant: no chunk holds a byte at or
// past size(), so every byte never written (or cut off and regrown) reads as zero.
class Content {
 public:
  uint64_t size() const { return size_; }
  uint64_t stored() const { return stored_; }

  // Copies what lies at [offset, offset + out.size()) and returns how many bytes that
  // is (fewer only at the end).
  size_t Read(uint64_t offset, MutableByteSpan out) const {
    if (offset >= size_) return 0;
    size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - offset));
    size_t done = 0;
    while (done < n) {
      uint64_t pos = offset + done;
      uint64_t index = pos / kChunkSize;
      size_t within = static_cast<size_t>(pos % kChunkSize);
      size_t take = static_cast<size_t>(std::min<uint64_t>(n - done, kChunkSize - within));
      size_t copied = 0;
      auto it = chunks_.find(index);
      if (it != chunks_.end() && within < it->second.size()) {
        copied = std::min(take, it->second.size() - within);
        std::memcpy(out.data() + done, it->second.data() + within, copied);
      }
      std::memset(out.data() + done + copied, 0, take - copied);
      done += take;
    }
    return n;
  }

  // Throws std::bad_alloc when memory runs out; what was copied until then stays.
  void Write(uint64_t offset, ByteSpan data) {
    size_t done = 0;
    while (done < data.size()) {
      uint64_t pos = offset + done;
      std::vector<uint8_t>& chunk = chunks_[pos / kChunkSize];
      size_t within = static_cast<size_t>(pos % kChunkSize);
      size_t take =
          static_cast<size_t>(std::min<uint64_t>(data.size() - done, kChunkSize - within));
      if (chunk.size() < within + take) {
        stored_ += within + take - chunk.size();
        chunk.resize(within + take);
      }
      std::memcpy(chunk.data() + within, data.data() + done, take);
      done += take;
      size_ = std::max<uint64_t>(size_, pos + take);
    }
  }

  void Resize(uint64_t size) {
    if (size < size_) {
      // Chunks that start at or after the new end go entirely; the one the end falls
      // in is cut there.
      auto first_gone = chunks_.lower_bound((size + kChunkSize - 1) / kChunkSize);
      for (auto it = first_gone; it != chunks_.end(); ++it) stored_ -= it->second.size();
      chunks_.erase(first_gone, chunks_.end());
      size_t within = static_cast<size_t>(size % kChunkSize);
      auto last = chunks_.find(size / kChunkSize);
      if (within > 0 && last != chunks_.end() && last->second.size() > within) {
        stored_ -= last->second.size() - within;
        last->second.resize(within);
        last->second.shrink_to_fit();
      }
    }
    size_ = size;
  }

 private:
  uint64_t size_ = 0;
  uint64_t stored_ = 0;  // bytes held in chunks
  std::map<uint64_t, std::vector<uint8_t>> chunks_;
};

// Bytes and objects held by one store, shared with its objects so that an object kept
// alive by an open StoreFile still counts (and uncounts itself) after the store is gone.
struct Usage {
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> objects{0};
};

// One object: what an inode is to ext4. Names (directory entries) point to it; hard
// links are several names for one Node, and an open StoreFile holds it too.
struct Node {
  Node(ObjectType type, uint64_t number, ObjectId id, std::shared_ptr<Usage> usage)
      : type(type), number(number), id(std::move(id)), usage(std::move(usage)) {
    this->usage->objects.fetch_add(1, std::memory_order_relaxed);
  }
  ~Node() {
    usage->bytes.fetch_sub(content.stored(), std::memory_order_relaxed);
    usage->objects.fetch_sub(1, std::memory_order_relaxed);
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const ObjectType type;
  const uint64_t number;  // never reused; the inode_hint
  const ObjectId id;
  const std::shared_ptr<Usage> usage;
  std::string target;  // of a kSymlink; never changes after creation

  // Guards the attributes and content below. Taken after the store's tree mutex, never
  // before it, and never two at once.
  mutable std::shared_mutex mu;
  uint32_t mode = 0;  // permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  // Names for a non-directory (0 once unlinked but open); 2 + subdirectories for a
  // directory, as on ext4.
  uint64_t nlink = 0;
  struct timespec atime {};
  struct timespec mtime {};
  struct timespec ctime {};
  uint64_t rdev = 0;
  uint64_t version = 1;  // bumped on every change but atime: the etag
  std::map<std::string, Bytes, std::less<>> xattrs;
  Content content;  // of a kFile

  // The entries of a kDirectory. Guarded by the store's tree mutex, not by `mu`.
  std::map<std::string, std::shared_ptr<Node>, std::less<>> children;
};

// A change of attributes (chmod, chown, link count, xattrs): ctime, and the etag.
// Callers hold n.mu exclusively.
void Changed(Node& n, const struct timespec& now) {
  n.ctime = now;
  ++n.version;
}

// A change of content (bytes, size, directory entries): mtime too.
void Modified(Node& n, const struct timespec& now) {
  n.mtime = now;
  Changed(n, now);
}

// What a write or truncate by an unprivileged caller does to a regular file, as
// file_remove_privs(): set-user-ID goes, and set-group-ID with group execute.
void DropPrivilegeBits(Node& n) {
  if (Privileged()) return;
  n.mode &= ~static_cast<uint32_t>(S_ISUID);
  if (n.mode & S_IXGRP) n.mode &= ~static_cast<uint32_t>(S_ISGID);
}

// Callers hold n.mu, shared at least.
ObjectInfo InfoOf(const Node& n) {
  ObjectInfo info;
  info.type = n.type;
  switch (n.type) {
    case ObjectType::kFile:
      info.size = n.content.size();
      break;
    case ObjectType::kDirectory:
      info.size = kDirectorySize;
      break;
    case ObjectType::kSymlink:
      info.size = n.target.size();
      break;
    default:
      info.size = 0;
      break;
  }
  info.mode = n.mode;
  info.uid = n.uid;
  info.gid = n.gid;
  info.nlink = n.nlink;
  info.atime = n.atime;
  info.mtime = n.mtime;
  info.ctime = n.ctime;
  info.id = n.id;
  info.inode_hint = n.number;
  info.rdev = n.rdev;
  // The number keeps two objects that replaced one another at one name apart.
  info.etag = std::to_string(n.number) + "." + std::to_string(n.version);
  return info;
}

ObjectInfo Describe(const Node& n) {
  std::shared_lock lock(n.mu);
  return InfoOf(n);
}

// Linux's default relatime: a read sets atime only when it is older than mtime or
// ctime, or a day old. Reading does not change the etag (LocalStore's ignores atime).
void TouchAtime(Node& n) {
  struct timespec now = Now();
  auto needed = [&n, &now] {
    return NotBefore(n.mtime, n.atime) || NotBefore(n.ctime, n.atime) ||
           now.tv_sec - n.atime.tv_sec >= kRelatimeWindow;
  };
  {
    std::shared_lock lock(n.mu);
    if (!needed()) return;
  }
  std::unique_lock lock(n.mu);
  if (needed()) n.atime = now;
}

// chmod(2) on an object that is no symlink.
Status Chmod(Node& n, uint32_t mode) {
  std::unique_lock lock(n.mu);
  bool privileged = Privileged();
  if (!privileged && geteuid() != n.uid) return Errno(EPERM, "chmod");
  uint32_t bits = mode & 07777;
  // As the kernel: a caller outside the file's group cannot set set-group-ID.
  if (!privileged && !InGroup(n.gid)) bits &= ~static_cast<uint32_t>(S_ISGID);
  n.mode = bits;
  Changed(n, Now());
  return Status::Ok();
}

// chown(2) without following symlinks; -1 keeps a value.
Status Chown(Node& n, uid_t uid, gid_t gid) {
  constexpr uid_t kKeepUid = static_cast<uid_t>(-1);
  constexpr gid_t kKeepGid = static_cast<gid_t>(-1);
  std::unique_lock lock(n.mu);
  bool privileged = Privileged();
  if (!privileged) {
    bool owner = geteuid() == n.uid;
    if (uid != kKeepUid && !(owner && uid == n.uid)) return Errno(EPERM, "chown");
    if (gid != kKeepGid && !(owner && (gid == n.gid || InGroup(gid)))) {
      return Errno(EPERM, "chown");
    }
  }
  // Linux clears set-user-ID (and set-group-ID with group execute) on every chown of a
  // non-directory, even by root and even when nothing changes.
  if (n.type != ObjectType::kDirectory) {
    bool drop_sgid = (n.mode & S_IXGRP) || (!privileged && !InGroup(n.gid));
    n.mode &= ~static_cast<uint32_t>(S_ISUID);
    if (drop_sgid) n.mode &= ~static_cast<uint32_t>(S_ISGID);
  }
  if (uid != kKeepUid) n.uid = uid;
  if (gid != kKeepGid) n.gid = gid;
  Changed(n, Now());
  return Status::Ok();
}

// utimensat(2) once the caller has returned early for two UTIME_OMITs and refused
// malformed nanoseconds.
Status Utimens(Node& n, const struct timespec times[2]) {
  std::unique_lock lock(n.mu);
  bool explicit_time =
      times != nullptr && ((times[0].tv_nsec != UTIME_NOW && times[0].tv_nsec != UTIME_OMIT) ||
                           (times[1].tv_nsec != UTIME_NOW && times[1].tv_nsec != UTIME_OMIT));
  if (explicit_time && !Privileged() && geteuid() != n.uid) return Errno(EPERM, "utimens");
  struct timespec now = Now();
  struct timespec* fields[2] = {&n.atime, &n.mtime};
  for (int i = 0; i < 2; ++i) {
    long nsec = times == nullptr ? UTIME_NOW : times[i].tv_nsec;
    if (nsec == UTIME_OMIT) continue;
    *fields[i] = nsec == UTIME_NOW ? now : times[i];
  }
  Changed(n, now);
  return Status::Ok();
}

class MemoryStoreFile final : public StoreFile {
 public:
  MemoryStoreFile(std::shared_ptr<Node> node, bool writable)
      : node_(std::move(node)), writable_(writable) {}

  // The file open for writing and, with `truncate`, emptied (O_TRUNC), which counts as
  // its first write for a conditional Commit.
  static Result<std::unique_ptr<StoreFile>> Open(std::shared_ptr<Node> node,
                                                 const OpenOptions& options) {
    auto file = std::make_unique<MemoryStoreFile>(std::move(node), options.write);
    if (options.write && options.truncate) CADCANFS_RETURN_IF_ERROR(file->Truncate(0));
    return std::unique_ptr<StoreFile>(std::move(file));
  }

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    if (out.empty()) return size_t{0};
    if (offset >= kMaxOffset) return Errno(EINVAL, "read");
    size_t n;
    {
      std::shared_lock lock(node_->mu);
      n = node_->content.Read(offset, out);
    }
    TouchAtime(*node_);
    return n;
  }

  Status WriteAt(uint64_t offset, ByteSpan data) override {
    if (data.empty()) return Status::Ok();
    if (!writable_) return Errno(EBADF, "write");
    RememberBaseEtag();
    if (offset >= kMaxOffset || data.size() >= kMaxOffset - offset) return Errno(EINVAL, "write");
    if (offset >= kMaxFileSize) return Errno(EFBIG, "write");
    // As pwrite: what fits below the size limit lands, then the rest fails.
    ByteSpan fits =
        data.first(static_cast<size_t>(std::min<uint64_t>(data.size(), kMaxFileSize - offset)));
    std::unique_lock lock(node_->mu);
    uint64_t before = node_->content.stored();
    bool out_of_memory = false;
    try {
      node_->content.Write(offset, fits);
    } catch (const std::bad_alloc&) {
      out_of_memory = true;
    }
    node_->usage->bytes.fetch_add(node_->content.stored() - before, std::memory_order_relaxed);
    Modified(*node_, Now());
    DropPrivilegeBits(*node_);
    if (out_of_memory) return Errno(ENOSPC, "write");
    if (fits.size() < data.size()) return Errno(EFBIG, "write");
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    // ftruncate on a descriptor not open for writing is EINVAL, not EBADF.
    if (!writable_ || size >= kMaxOffset) return Errno(EINVAL, "truncate");
    if (size > kMaxFileSize) return Errno(EFBIG, "truncate");
    RememberBaseEtag();
    std::unique_lock lock(node_->mu);
    uint64_t before = node_->content.stored();
    node_->content.Resize(size);
    node_->usage->bytes.fetch_sub(before - node_->content.stored(), std::memory_order_relaxed);
    // ftruncate sets mtime and ctime even when the size stays.
    Modified(*node_, Now());
    DropPrivilegeBits(*node_);
    return Status::Ok();
  }

  // Writes land in place: a conditional Commit checks the object as it was before
  // this handle's first write since its last Commit.
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    ObjectInfo current = Describe(*node_);
    std::lock_guard lock(commit_mu_);
    const std::string& expected = base_etag_ ? *base_etag_ : current.etag;
    if (if_match_etag && *if_match_etag != expected) {
      return Status::Error(Code::kChangedElsewhere,
                           "the object changed elsewhere since its eTag was read");
    }
    base_etag_.reset();
    return current;
  }

  // The process holds everything: there is nothing a crash of it would spare.
  Status Checkpoint() override { return Status::Ok(); }

  Status Abort() override {
    return Status::Error(Code::kUnsupported,
                         "an in-memory store writes in place and cannot undo it");
  }

  Result<uint64_t> Size() override {
    std::shared_lock lock(node_->mu);
    return node_->content.size();
  }

  Result<ObjectInfo> Stat() override { return Describe(*node_); }

  Status Reserve(uint64_t offset, uint64_t length) override {
    if (length == 0) return Status::Ok();
    if (!writable_) return Errno(EBADF, "fallocate");
    if (offset >= kMaxOffset || length >= kMaxOffset - offset) return Errno(EINVAL, "fallocate");
    if (offset + length > kMaxFileSize) return Errno(EFBIG, "fallocate");
    // Memory is taken when bytes land; there is nothing to reserve ahead.
    return Status::Ok();
  }

  void Prefetch(uint64_t, uint64_t) override {}

  Status SetMode(uint32_t mode) override { return Chmod(*node_, mode); }
  Status SetOwner(uid_t uid, gid_t gid) override { return Chown(*node_, uid, gid); }
  Status SetTimes(const struct timespec times[2]) override {
    if (BothOmitted(times)) return Status::Ok();
    if (times != nullptr && (!ValidNsec(times[0].tv_nsec) || !ValidNsec(times[1].tv_nsec))) {
      return Errno(EINVAL, "utimens");
    }
    return Utimens(*node_, times);
  }

 private:
  void RememberBaseEtag() {
    std::lock_guard lock(commit_mu_);
    if (!base_etag_) base_etag_ = Describe(*node_).etag;
  }

  const std::shared_ptr<Node> node_;
  const bool writable_;
  std::mutex commit_mu_;
  std::optional<std::string> base_etag_;  // GUARDED_BY(commit_mu_); set while uncommitted
};

class MemoryStore final : public Store {
 public:
  MemoryStore() : usage_(std::make_shared<Usage>()) {
    static std::atomic<uint64_t> next_serial{1};
    serial_ = next_serial.fetch_add(1, std::memory_order_relaxed);
    // As `cadcanfs init` and mkdtemp(3) create a vault's directory.
    root_ = NewNode(ObjectType::kDirectory, 0700);
  }

  // Tears the tree down iteratively: destroying a deep tree node by node through
  // ~Node would recurse once per level.
  ~MemoryStore() override {
    std::vector<std::shared_ptr<Node>> pending;
    pending.push_back(std::move(root_));
    while (!pending.empty()) {
      std::shared_ptr<Node> node = std::move(pending.back());
      pending.pop_back();
      for (auto& entry : node->children) pending.push_back(std::move(entry.second));
      node->children.clear();
    }
  }

  StoreCapabilities capabilities() const override { return StoreCapabilities::Full(); }

  Result<ObjectInfo> Stat(std::string_view path) override {
    std::shared_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node, ResolveObject(path, "stat"));
    return Describe(*node);
  }

  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    std::shared_lock tree(mu_);
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(dir));
    CADCANFS_ASSIGN_OR_RETURN(Node * node, WalkDir(dir, "open"));
    std::vector<DirEntry> entries;
    entries.reserve(node->children.size());
    for (const auto& [name, child] : node->children) {
      DirEntry entry;
      entry.name = name;
      entry.type = child->type;
      entry.info = Describe(*child);
      entries.push_back(std::move(entry));
    }
    TouchAtime(*node);
    return entries;
  }

  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    if (!options.create) {
      std::shared_ptr<Node> node;
      {
        std::shared_lock tree(mu_);
        CADCANFS_ASSIGN_OR_RETURN(node, ResolveObject(path, "open"));
      }
      if (node->type != ObjectType::kFile) return NotARegularFile(node->type);
      return MemoryStoreFile::Open(std::move(node), options);
    }
    mode_t umask = CurrentUmask();
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
    // open(".", O_CREAT) on the root itself.
    if (parent.name.empty()) return Errno(options.exclusive ? EEXIST : EISDIR, "open");
    if (parent.name.size() > kNameMax) return Errno(ENAMETOOLONG, "open");
    std::shared_ptr<Node> node = Find(*parent.dir, parent.name);
    if (node != nullptr) {
      // open(O_CREAT | O_NOFOLLOW [| O_EXCL] | O_NONBLOCK) of an existing object.
      if (options.exclusive) return Errno(EEXIST, "open");
      if (node->type == ObjectType::kDirectory) return Errno(EISDIR, "open");
      CADCANFS_RETURN_IF_ERROR(MayCreateInSticky(*parent.dir, *node));
      if (node->type == ObjectType::kSymlink) return Errno(ELOOP, "open");
      // open(2) of a socket is ENXIO. So is a block device without a driver or a medium
      // behind it, as on most hosts; a character device (such as /dev/null) opens, and
      // is refused below as LocalStore refuses it once open.
      if (node->type == ObjectType::kSocket || node->type == ObjectType::kBlockDevice) {
        return Errno(ENXIO, "open");
      }
      if (node->type != ObjectType::kFile) return NotARegularFile(node->type);
    } else {
      node = NewNode(ObjectType::kFile, options.mode & 07777 & ~umask);
      InheritGroup(*parent.dir, *node);
      Attach(*parent.dir, parent.name, node, Now());
    }
    tree.unlock();
    return MemoryStoreFile::Open(std::move(node), options);
  }

  Result<Bytes> ReadSmall(std::string_view path, size_t max_size) override {
    std::shared_ptr<Node> node;
    {
      std::shared_lock tree(mu_);
      CADCANFS_ASSIGN_OR_RETURN(node, ResolveObject(path, "open"));
    }
    if (node->type != ObjectType::kFile) return NotARegularFile(node->type);
    Bytes out;
    {
      std::shared_lock lock(node->mu);
      if (node->content.size() > max_size) {
        return Status::Error(Code::kCorrupt, "object is larger than expected");
      }
      out.resize(static_cast<size_t>(node->content.size()));
      node->content.Read(0, out);
    }
    TouchAtime(*node);
    return out;
  }

  Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive) override {
    // The new object is filled before the tree is locked, and swapped in under the
    // lock: readers find the old object or the new one, each complete.
    std::shared_ptr<Node> node = NewNode(ObjectType::kFile, 0600 & ~CurrentUmask());
    try {
      node->content.Write(0, data);
    } catch (const std::bad_alloc&) {
      return Errno(ENOSPC, "write");
    }
    usage_->bytes.fetch_add(node->content.stored(), std::memory_order_relaxed);
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
    if (parent.name.empty()) return Status::Error(Code::kInvalidArgument, "cannot replace root");
    if (parent.name.size() > kNameMax) return Errno(ENAMETOOLONG, "rename temporary file");
    std::shared_ptr<Node> old = Find(*parent.dir, parent.name);
    if (old != nullptr) {
      if (exclusive) return Errno(EEXIST, "rename temporary file");
      if (old->type == ObjectType::kDirectory) return Errno(EISDIR, "rename temporary file");
    }
    struct timespec now = Now();
    InheritGroup(*parent.dir, *node);
    if (old != nullptr) Detach(*parent.dir, parent.name, now);
    Attach(*parent.dir, parent.name, std::move(node), now);
    return Status::Ok();
  }

  Status MakeDir(std::string_view path, uint32_t mode) override {
    mode_t umask = CurrentUmask();
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
    CADCANFS_RETURN_IF_ERROR(CheckNewName(parent, "mkdir"));
    // mkdir keeps the sticky bit but never set-user-ID or set-group-ID from `mode`.
    std::shared_ptr<Node> node = NewNode(ObjectType::kDirectory, mode & 01777 & ~umask);
    InheritGroup(*parent.dir, *node);
    Attach(*parent.dir, parent.name, std::move(node), Now());
    return Status::Ok();
  }

  Status RemoveDir(std::string_view path) override {
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
    if (parent.name.empty()) return Status::Error(Code::kBusy, "operation on the store root");
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node, Child(*parent.dir, parent.name, "rmdir"));
    if (node->type != ObjectType::kDirectory) return Errno(ENOTDIR, "rmdir");
    if (!node->children.empty()) return Errno(ENOTEMPTY, "rmdir");
    Detach(*parent.dir, parent.name, Now());
    Unlinked(*node);
    return Status::Ok();
  }

  Status Remove(std::string_view path) override {
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
    if (parent.name.empty()) return Status::Error(Code::kBusy, "operation on the store root");
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node,
                              Child(*parent.dir, parent.name, "unlink"));
    if (node->type == ObjectType::kDirectory) return Errno(EISDIR, "unlink");
    Detach(*parent.dir, parent.name, Now());
    return Status::Ok();
  }

  // renameat2(2), with its checks in the kernel's order so that a request that breaks
  // several rules gets the same error from both stores.
  Status Rename(std::string_view from, std::string_view to, RenameMode mode) override {
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent src, ResolveParent(from, "open"));
    CADCANFS_ASSIGN_OR_RETURN(Parent dst, ResolveParent(to, "open"));
    if (src.name.empty() || dst.name.empty()) return Errno(ENOENT, "rename");
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> source, Child(*src.dir, src.name, "rename"));
    if (dst.name.size() > kNameMax) return Errno(ENAMETOOLONG, "rename");
    std::shared_ptr<Node> target = Find(*dst.dir, dst.name);
    if (mode == RenameMode::kNoReplace && target != nullptr) return Errno(EEXIST, "rename");
    if (mode == RenameMode::kExchange && target == nullptr) return Errno(ENOENT, "rename");
    // A directory cannot move below itself; nor can a target be an ancestor of the
    // source (the kernel says ENOTEMPTY, as the target would have to be removed).
    if (IsSelfOrAncestor(from, StoreParent(to))) return Errno(EINVAL, "rename");
    if (IsSelfOrAncestor(to, StoreParent(from))) {
      return Errno(mode == RenameMode::kExchange ? EINVAL : ENOTEMPTY, "rename");
    }
    // Two names of one object: rename(2) succeeds and changes nothing.
    if (source == target) return Status::Ok();
    struct timespec now = Now();
    if (mode == RenameMode::kExchange) {
      Detach(*src.dir, src.name, now);
      Detach(*dst.dir, dst.name, now);
      Attach(*src.dir, src.name, std::move(target), now);
      Attach(*dst.dir, dst.name, std::move(source), now);
      return Status::Ok();
    }
    if (target != nullptr) {
      bool source_dir = source->type == ObjectType::kDirectory;
      bool target_dir = target->type == ObjectType::kDirectory;
      if (source_dir && !target_dir) return Errno(ENOTDIR, "rename");
      if (!source_dir && target_dir) return Errno(EISDIR, "rename");
      if (target_dir && !target->children.empty()) return Errno(ENOTEMPTY, "rename");
      Detach(*dst.dir, dst.name, now);
      if (target_dir) Unlinked(*target);
    }
    Detach(*src.dir, src.name, now);
    Attach(*dst.dir, dst.name, std::move(source), now);
    return Status::Ok();
  }

  Status SyncDir(std::string_view dir) override {
    std::shared_lock tree(mu_);
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(dir));
    CADCANFS_ASSIGN_OR_RETURN(Node * node, WalkDir(dir, "open"));
    (void)node;  // nothing to make durable: the check is that it is a directory
    return Status::Ok();
  }

  Status Symlink(std::string_view target, std::string_view path) override {
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
    if (parent.name.empty()) return Status::Error(Code::kBusy, "operation on the store root");
    if (target.empty()) return Errno(ENOENT, "symlink");
    if (target.size() > kSymlinkMax) return Errno(ENAMETOOLONG, "symlink");
    CADCANFS_RETURN_IF_ERROR(CheckNewName(parent, "symlink"));
    // Symlinks are always 0777; the umask does not apply.
    std::shared_ptr<Node> node = NewNode(ObjectType::kSymlink, 0777);
    node->target = std::string(target);
    InheritGroup(*parent.dir, *node);
    Attach(*parent.dir, parent.name, std::move(node), Now());
    return Status::Ok();
  }

  Result<std::string> ReadLink(std::string_view path) override {
    std::shared_ptr<Node> node;
    {
      std::shared_lock tree(mu_);
      CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
      // readlinkat(dirfd, "") of the root: LocalStore gets ENOENT.
      if (parent.name.empty()) return Errno(ENOENT, "readlink");
      CADCANFS_ASSIGN_OR_RETURN(node, Child(*parent.dir, parent.name, "readlink"));
    }
    if (node->type != ObjectType::kSymlink) return Errno(EINVAL, "readlink");
    TouchAtime(*node);
    return node->target;
  }

  Status Link(std::string_view existing, std::string_view new_path) override {
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent src, ResolveParent(existing, "open"));
    CADCANFS_ASSIGN_OR_RETURN(Parent dst, ResolveParent(new_path, "open"));
    if (src.name.empty()) return Errno(ENOENT, "link");
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node, Child(*src.dir, src.name, "link"));
    if (dst.name.empty()) return Errno(ENOENT, "link");
    if (dst.name.size() > kNameMax) return Errno(ENAMETOOLONG, "link");
    if (Find(*dst.dir, dst.name) != nullptr) return Errno(EEXIST, "link");
    if (node->type == ObjectType::kDirectory) return Errno(EPERM, "link");
    {
      std::shared_lock lock(node->mu);
      if (node->nlink >= kLinkMax) return Errno(EMLINK, "link");
    }
    Attach(*dst.dir, dst.name, std::move(node), Now());
    return Status::Ok();
  }

  Status MakeNode(std::string_view path, ObjectType type, uint32_t mode, uint64_t rdev) override {
    if (!IsSpecialType(type)) {
      return Status::Error(Code::kInvalidArgument, "not a FIFO, socket or device type", EINVAL);
    }
    bool device = type == ObjectType::kCharDevice || type == ObjectType::kBlockDevice;
    mode_t umask = CurrentUmask();
    std::unique_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
    CADCANFS_RETURN_IF_ERROR(CheckNewName(parent, "mknod"));
    // Device nodes need CAP_MKNOD; the kernel checks it after the name.
    if (device && !Privileged()) return Errno(EPERM, "mknod");
    std::shared_ptr<Node> node = NewNode(type, mode & 07777 & ~umask);
    node->rdev = device ? rdev : 0;
    InheritGroup(*parent.dir, *node);
    Attach(*parent.dir, parent.name, std::move(node), Now());
    return Status::Ok();
  }

  Status SetMode(std::string_view path, uint32_t mode) override {
    std::shared_ptr<Node> node;
    {
      std::shared_lock tree(mu_);
      CADCANFS_ASSIGN_OR_RETURN(node, ResolveObject(path, "open"));
    }
    if (node->type == ObjectType::kSymlink) return Status::Ok();  // Linux has none
    return Chmod(*node, mode);
  }

  Status SetOwner(std::string_view path, uid_t uid, gid_t gid) override {
    std::shared_ptr<Node> node;
    {
      std::shared_lock tree(mu_);
      CADCANFS_ASSIGN_OR_RETURN(node, ResolveObject(path, "chown"));
    }
    return Chown(*node, uid, gid);
  }

  Status SetTimes(std::string_view path, const struct timespec times[2]) override {
    std::shared_ptr<Node> node;
    {
      std::shared_lock tree(mu_);
      CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, "open"));
      // utimensat returns before looking the name up when both times are omitted, and
      // refuses malformed nanoseconds only once it has found the object.
      if (BothOmitted(times)) return Status::Ok();
      if (parent.name.empty()) {
        node = root_;
      } else {
        CADCANFS_ASSIGN_OR_RETURN(node, Child(*parent.dir, parent.name, "utimens"));
      }
    }
    if (times != nullptr && (!ValidNsec(times[0].tv_nsec) || !ValidNsec(times[1].tv_nsec))) {
      return Errno(EINVAL, "utimens");
    }
    return Utimens(*node, times);
  }

  Result<StoreSpace> Space() override {
    StoreSpace space;
    space.block_size = kFakeBlockSize;
    space.total_blocks = kFakeTotalBlocks;
    uint64_t used =
        (usage_->bytes.load(std::memory_order_relaxed) + kFakeBlockSize - 1) / kFakeBlockSize;
    space.free_blocks = kFakeTotalBlocks - std::min(used, kFakeTotalBlocks);
    space.available_blocks = space.free_blocks;
    space.total_files = kFakeTotalFiles;
    space.free_files = kFakeTotalFiles -
                       std::min(usage_->objects.load(std::memory_order_relaxed), kFakeTotalFiles);
    return space;
  }

  Result<Bytes> GetXattr(std::string_view path, std::string_view name) override {
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node, XattrObject(path));
    CADCANFS_RETURN_IF_ERROR(CheckXattrNameLength(name, "getxattr"));
    CADCANFS_RETURN_IF_ERROR(CheckXattrAccess(*node, name, /*write=*/false, "getxattr"));
    std::shared_lock lock(node->mu);
    auto it = node->xattrs.find(name);
    if (it == node->xattrs.end()) return XattrErrno(ENODATA, "getxattr");
    return it->second;
  }

  Status SetXattr(std::string_view path, std::string_view name, ByteSpan value,
                  int flags) override {
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node, XattrObject(path));
    if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) return XattrErrno(EINVAL, "setxattr");
    CADCANFS_RETURN_IF_ERROR(CheckXattrNameLength(name, "setxattr"));
    if (value.size() > kXattrSizeMax) return XattrErrno(E2BIG, "setxattr");
    CADCANFS_RETURN_IF_ERROR(CheckXattrAccess(*node, name, /*write=*/true, "setxattr"));
    std::unique_lock lock(node->mu);
    auto it = node->xattrs.find(name);
    if (it != node->xattrs.end() && (flags & XATTR_CREATE)) return XattrErrno(EEXIST, "setxattr");
    if (it == node->xattrs.end() && (flags & XATTR_REPLACE)) {
      return XattrErrno(ENODATA, "setxattr");
    }
    Bytes bytes(value.begin(), value.end());
    if (it != node->xattrs.end()) {
      it->second = std::move(bytes);
    } else {
      node->xattrs.emplace(std::string(name), std::move(bytes));
    }
    Changed(*node, Now());
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListXattrs(std::string_view path) override {
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node, XattrObject(path));
    bool privileged = Privileged();
    std::vector<std::string> names;
    std::shared_lock lock(node->mu);
    for (const auto& entry : node->xattrs) {
      // ext4 lists trusted.* only to CAP_SYS_ADMIN.
      if (!privileged && entry.first.starts_with("trusted.")) continue;
      names.push_back(entry.first);
    }
    return names;
  }

  Status RemoveXattr(std::string_view path, std::string_view name) override {
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node, XattrObject(path));
    CADCANFS_RETURN_IF_ERROR(CheckXattrNameLength(name, "removexattr"));
    CADCANFS_RETURN_IF_ERROR(CheckXattrAccess(*node, name, /*write=*/true, "removexattr"));
    std::unique_lock lock(node->mu);
    auto it = node->xattrs.find(name);
    if (it == node->xattrs.end()) return XattrErrno(ENODATA, "removexattr");
    node->xattrs.erase(it);
    Changed(*node, Now());
    return Status::Ok();
  }

 private:
  // A directory that holds (or is to hold) `name`; an empty name is the root itself.
  struct Parent {
    Node* dir;
    std::string_view name;
  };

  std::shared_ptr<Node> NewNode(ObjectType type, uint32_t mode) {
    uint64_t number = next_number_.fetch_add(1, std::memory_order_relaxed);
    std::string id(16, '\0');
    PutU64BE(reinterpret_cast<uint8_t*>(id.data()), serial_);
    PutU64BE(reinterpret_cast<uint8_t*>(id.data()) + 8, number);
    auto node = std::make_shared<Node>(type, number, ObjectId(std::move(id)), usage_);
    node->mode = mode;
    node->uid = geteuid();
    node->gid = getegid();
    node->atime = node->mtime = node->ctime = Now();
    // A directory links to itself ("."); Attach adds the name's link to anything else.
    node->nlink = type == ObjectType::kDirectory ? 2 : 0;
    return node;
  }

  // As the kernel creates an object in `dir`: a set-group-ID directory hands down its
  // group, and the bit itself to subdirectories. Called before the node is attached.
  static void InheritGroup(const Node& dir, Node& node) {
    uint32_t dir_mode;
    gid_t dir_gid;
    {
      std::shared_lock lock(dir.mu);
      dir_mode = dir.mode;
      dir_gid = dir.gid;
    }
    if (dir_mode & S_ISGID) {
      node.gid = dir_gid;
      if (node.type == ObjectType::kDirectory) node.mode |= S_ISGID;
    }
    constexpr uint32_t kSgidExec = S_ISGID | S_IXGRP;
    if (node.type != ObjectType::kDirectory && (node.mode & kSgidExec) == kSgidExec &&
        !Privileged() && !InGroup(dir_gid)) {
      node.mode &= ~static_cast<uint32_t>(S_ISGID);
    }
  }

  // Adds the entry `name` -> `node` to `dir`. Callers hold the tree mutex exclusively.
  static void Attach(Node& dir, std::string_view name, std::shared_ptr<Node> node,
                     const struct timespec& now) {
    bool is_dir = node->type == ObjectType::kDirectory;
    {
      std::unique_lock lock(node->mu);
      if (!is_dir) ++node->nlink;
      Changed(*node, now);
    }
    {
      std::unique_lock lock(dir.mu);
      if (is_dir) ++dir.nlink;  // the child's ".."
      Modified(dir, now);
    }
    dir.children.emplace(std::string(name), std::move(node));
  }

  // Removes the existing entry `name` from `dir`. Callers hold the tree mutex
  // exclusively.
  static void Detach(Node& dir, std::string_view name, const struct timespec& now) {
    auto it = dir.children.find(name);
    std::shared_ptr<Node> node = std::move(it->second);
    dir.children.erase(it);
    bool is_dir = node->type == ObjectType::kDirectory;
    {
      std::unique_lock lock(node->mu);
      if (!is_dir) --node->nlink;
      Changed(*node, now);
    }
    std::unique_lock lock(dir.mu);
    if (is_dir) --dir.nlink;
    Modified(dir, now);
  }

  // A directory that lost its name is gone: ext4 shows it with no links.
  static void Unlinked(Node& dir) {
    std::unique_lock lock(dir.mu);
    dir.nlink = 0;
  }

  static std::shared_ptr<Node> Find(const Node& dir, std::string_view name) {
    auto it = dir.children.find(name);
    return it == dir.children.end() ? nullptr : it->second;
  }

  // The existing entry `name` of `dir`, looked up as the kernel does.
  static Result<std::shared_ptr<Node>> Child(const Node& dir, std::string_view name,
                                             const char* what) {
    if (name.size() > kNameMax) return Errno(ENAMETOOLONG, what);
    std::shared_ptr<Node> node = Find(dir, name);
    if (node == nullptr) return Errno(ENOENT, what);
    return node;
  }

  // For creations: the name must be free (and not the root).
  static Status CheckNewName(const Parent& parent, const char* what) {
    if (parent.name.empty()) return Status::Error(Code::kBusy, "operation on the store root");
    if (parent.name.size() > kNameMax) return Errno(ENAMETOOLONG, what);
    if (Find(*parent.dir, parent.name) != nullptr) return Errno(EEXIST, what);
    return Status::Ok();
  }

  // Walks a validated path whose every component must be a directory, with the errors
  // openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) gives. Callers hold the tree mutex.
  Result<Node*> WalkDir(std::string_view path, const char* what) {
    Node* node = root_.get();
    size_t start = 0;
    while (start < path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string_view::npos) slash = path.size();
      std::string_view part = path.substr(start, slash - start);
      if (part.size() > kNameMax) return Errno(ENAMETOOLONG, what);
      auto it = node->children.find(part);
      if (it == node->children.end()) return Errno(ENOENT, what);
      Node* next = it->second.get();
      if (next->type == ObjectType::kSymlink) return Errno(ELOOP, what);
      if (next->type != ObjectType::kDirectory) return Errno(ENOTDIR, what);
      node = next;
      start = slash + 1;
    }
    return node;
  }

  // The directory holding `path` and its last component, as LocalStore's OpenParent.
  Result<Parent> ResolveParent(std::string_view path, const char* what) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    if (path.empty()) return Parent{root_.get(), std::string_view()};
    CADCANFS_ASSIGN_OR_RETURN(Node * dir, WalkDir(StoreParent(path), what));
    return Parent{dir, StoreBaseName(path)};
  }

  // The object at `path` itself, never following a symlink.
  Result<std::shared_ptr<Node>> ResolveObject(std::string_view path, const char* what) {
    CADCANFS_ASSIGN_OR_RETURN(Parent parent, ResolveParent(path, what));
    if (parent.name.empty()) return root_;
    return Child(*parent.dir, parent.name, what);
  }

  // The kernel's may_create_in_sticky(): open(O_CREAT) of an existing object in a
  // sticky directory that neither the caller nor the directory's owner owns. Symlinks,
  // sockets and devices are refused whatever the sysctls say (root included); regular
  // files and FIFOs only under fs.protected_regular and fs.protected_fifos.
  static Status MayCreateInSticky(const Node& dir, const Node& node) {
    uint32_t dir_mode;
    uid_t dir_uid;
    {
      std::shared_lock lock(dir.mu);
      dir_mode = dir.mode;
      dir_uid = dir.uid;
    }
    if (!(dir_mode & S_ISVTX)) return Status::Ok();
    bool regular = node.type == ObjectType::kFile;
    bool fifo = node.type == ObjectType::kFifo;
    int protected_regular = regular ? ProtectionSysctl("protected_regular", 0) : 0;
    int protected_fifos = fifo ? ProtectionSysctl("protected_fifos", 0) : 0;
    if (regular && protected_regular == 0) return Status::Ok();
    if (fifo && protected_fifos == 0) return Status::Ok();
    uid_t owner;
    {
      std::shared_lock lock(node.mu);
      owner = node.uid;
    }
    if (owner == dir_uid || owner == geteuid()) return Status::Ok();
    if (dir_mode & S_IWOTH) return Errno(EACCES, "open");
    if ((dir_mode & S_IWGRP) &&
        ((fifo && protected_fifos >= 2) || (regular && protected_regular >= 2))) {
      return Errno(EACCES, "open");
    }
    return Status::Ok();
  }

  // The object for an xattr call, refused for symlinks as LocalStore refuses them.
  Result<std::shared_ptr<Node>> XattrObject(std::string_view path) {
    std::shared_lock tree(mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Node> node, ResolveObject(path, "open"));
    if (node->type == ObjectType::kSymlink) {
      return Status::Error(Code::kUnsupported, "symlinks carry no user attributes", EPERM);
    }
    return node;
  }

  static Status CheckXattrNameLength(std::string_view name, const char* what) {
    if (name.empty() || name.size() > kXattrNameMax) return XattrErrno(ERANGE, what);
    return Status::Ok();
  }

  // The kernel's xattr_permission() and then the namespaces ext4 handles, in that
  // order. POSIX ACLs ("system.*") are not modelled.
  static Status CheckXattrAccess(const Node& node, std::string_view name, bool write,
                                 const char* what) {
    int refused = write ? EPERM : ENODATA;
    if (name.starts_with("trusted.") && !Privileged()) return XattrErrno(refused, what);
    // Changing security.* takes CAP_SYS_ADMIN (the commoncap LSM); reading does not.
    if (name.starts_with("security.") && write && !Privileged()) return XattrErrno(EPERM, what);
    if (name.starts_with("user.") && node.type != ObjectType::kFile &&
        node.type != ObjectType::kDirectory) {
      return XattrErrno(refused, what);
    }
    for (std::string_view prefix : {"user.", "trusted.", "security."}) {
      if (name.starts_with(prefix)) {
        if (name.size() == prefix.size()) return XattrErrno(EINVAL, what);
        return Status::Ok();
      }
    }
    return XattrErrno(ENOTSUP, what);
  }

  // Guards the tree: every directory's `children`. Attributes and content are guarded
  // by each node's own mutex, so that I/O on open files never waits for the tree.
  std::shared_mutex mu_;
  std::shared_ptr<Node> root_;
  const std::shared_ptr<Usage> usage_;
  uint64_t serial_ = 0;  // tells this store's ObjectIds from another MemoryStore's
  std::atomic<uint64_t> next_number_{1};
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace cadcanfs
