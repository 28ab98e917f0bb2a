// Store: where ciphertext objects live. One interface for every backend.
//
// Paths are '/'-separated ciphertext paths relative to the store root ("" is the
// root). Only ciphertext names and ciphertext bytes ever cross this interface.
//
// Shaped for the weakest backend (OneDrive): reads are ranged; a StoreFile that
// cannot write in place (capabilities().partial_writes == false) holds what is written
// until Commit(), which makes it one new version of the object (an upload session),
// optionally only if the object is still the version the writer expects (If-Match);
// every object reports an opaque ObjectId and an eTag, and listings carry attributes.
// The local store can do more and says so in its capabilities: callers check a
// capability before a call that depends on it, not the kUnsupported it would return.
//
// The writer contract, after LevelDB's WritableFile (reading stays ranged and
// concurrent; see StoreFile):
//   WriteAt/Truncate ... Checkpoint()? ... Commit(if_match) | Abort()
// Checkpoint makes the writes survive a crash of this process without waiting for the
// backend; Commit makes them the object's new version in the backend; Abort drops
// what was not committed where the store can.
//
// Thread safety: Store methods may be called concurrently. A StoreFile may be used
// by several threads at once for ReadAt/WriteAt on distinct ranges.
#ifndef CADCANFS_STORE_STORE_H_
#define CADCANFS_STORE_STORE_H_

#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/status.h"

namespace cadcanfs {

// kOther is anything a store cannot name (it is never created by cadcanfs).
enum class ObjectType {
  kFile,
  kDirectory,
  kSymlink,
  kFifo,
  kSocket,
  kCharDevice,
  kBlockDevice,
  kOther
};

// FIFOs, sockets and device nodes: objects with no content, only a type (and a device
// number for the last two).
inline bool IsSpecialType(ObjectType type) {
  return type == ObjectType::kFifo || type == ObjectType::kSocket ||
         type == ObjectType::kCharDevice || type == ObjectType::kBlockDevice;
}

// An object's identity in its store: opaque bytes, compared whole (local: device and
// inode number; OneDrive: the item id). Never a hash, so two objects never share one.
class ObjectId {
 public:
  ObjectId() = default;
  explicit ObjectId(std::string bytes) : bytes_(std::move(bytes)) {}
  // The identity of a local object: its device and inode number.
  static ObjectId OfLocalInode(uint64_t device, uint64_t inode);

  bool empty() const { return bytes_.empty(); }
  const std::string& bytes() const { return bytes_; }
  bool operator==(const ObjectId&) const = default;

 private:
  std::string bytes_;
};

struct ObjectIdHash {
  size_t operator()(const ObjectId& id) const { return std::hash<std::string>()(id.bytes()); }
};

struct ObjectInfo {
  ObjectType type = ObjectType::kOther;
  uint64_t size = 0;
  uint32_t mode = 0;  // permission bits only
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t nlink = 1;
  struct timespec atime {};
  struct timespec mtime {};
  struct timespec ctime {};
  ObjectId id;              // identity in the store (may be empty for the store root)
  uint64_t inode_hint = 0;  // what st_ino shows: local st_ino; remote stores derive one
  uint64_t rdev = 0;        // device number of a kCharDevice or kBlockDevice
  std::string etag;         // changes whenever the object changes
};

struct DirEntry {
  std::string name;
  ObjectType type = ObjectType::kOther;
  // The entry's attributes when the listing carries them (a remote listing always does,
  // the local store reads them relative to the open directory), so that `ls -l` and
  // readdirplus need no store call per entry.
  std::optional<ObjectInfo> info;
};

struct StoreSpace {
  uint64_t block_size = 4096;
  uint64_t total_blocks = 0;
  uint64_t free_blocks = 0;
  uint64_t available_blocks = 0;
  uint64_t total_files = 0;
  uint64_t free_files = 0;
};

struct StoreCapabilities {
  bool partial_writes = false;  // WriteAt lands in place without rewriting the object
  bool symlinks = false;
  bool hard_links = false;
  bool posix_attributes = false;  // mode, owner and times are kept
  bool xattrs = false;            // extended attributes on files and directories
  bool special_files = false;     // MakeNode: FIFOs, sockets and device nodes
  // StoreFile::Reserve really reserves space (fallocate); without it, callers skip it.
  bool reserve = false;
  // StoreFile::SetMode/SetOwner/SetTimes act on the open object itself, also after its
  // last name was removed (fchmod); without it, callers change metadata by path.
  bool handle_attributes = false;
  // Names that differ only in case are one entry ("A" and "a").
  bool case_insensitive = false;
  // The longest store path the store accepts, in its own units; 0 for no limit.
  size_t max_path_length = 0;
  // Rename with RenameMode::kExchange swaps two names atomically.
  bool atomic_exchange = false;
  // Writes wait outside the store for a later commit (a staging store): close(2) must
  // reach StoreFile::Checkpoint so that a crash cannot lose a closed file.
  bool deferred_commits = false;
  // Every call is a network round trip (OneDrive): callers reuse answers they may, for
  // as long as the kernel's own caches would.
  bool remote = false;

  // Everything a POSIX filesystem offers (the local and in-memory stores).
  static constexpr StoreCapabilities Full() {
    return StoreCapabilities{.partial_writes = true,
                             .symlinks = true,
                             .hard_links = true,
                             .posix_attributes = true,
                             .xattrs = true,
                             .special_files = true,
                             .reserve = true,
                             .handle_attributes = true,
                             .case_insensitive = false,
                             .max_path_length = 0,
                             .atomic_exchange = true};
  }
};

struct OpenOptions {
  bool write = false;
  bool create = false;
  bool exclusive = false;  // with create: fail with kAlreadyExists
  // With write: the object starts empty, as O_TRUNC. A store that cannot write in place
  // then never fetches the old content; the object itself keeps it until Commit.
  bool truncate = false;
  uint32_t mode = 0600;
};

enum class RenameMode { kReplace, kNoReplace, kExchange };

class StoreFile {
 public:
  virtual ~StoreFile() = default;
  // Reads up to out.size() bytes at `offset`; returns fewer only at the end of the object.
  virtual Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) = 0;
  virtual Status WriteAt(uint64_t offset, ByteSpan data) = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // Makes everything written durable in the store as one version of the object and
  // describes that version (local: fdatasync; remote: finish the upload). With an eTag,
  // kChangedElsewhere and nothing committed if the object is no longer that version
  // (another writer committed meanwhile). Nothing written since the last Commit is a
  // no-op that still checks the eTag. A reader returns its object's description.
  virtual Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) = 0;
  // Makes what was written survive a crash of this process without waiting for the
  // backend (close(2) of a file: the data must not be lost, nor the caller kept
  // waiting for an upload). Local and in-memory stores: nothing to do (the kernel or
  // the process holds it); a staging store seals its spill and journals the commit.
  virtual Status Checkpoint() = 0;
  // Drops what was written since the last Commit, where the store can: a remote-like
  // writer forgets its upload buffer and a staged file its staged blocks, so the
  // object reads as committed again. A store that writes in place (local, memory)
  // cannot, and returns kUnsupported having changed nothing.
  virtual Status Abort() = 0;
  virtual Result<uint64_t> Size() = 0;
  // Describes the open object; works after its last name was removed.
  virtual Result<ObjectInfo> Stat() = 0;
  // Reserves space so later writes in [offset, offset+length) cannot fail with ENOSPC.
  // Only with capabilities().reserve; elsewhere kUnsupported.
  virtual Status Reserve(uint64_t offset, uint64_t length) = 0;
  // A hint that [offset, offset+length) will be read soon: the store may start
  // fetching it in the background (local: kernel readahead into the page cache, which
  // holds only ciphertext). Never blocks on the data and never fails.
  virtual void Prefetch(uint64_t offset, uint64_t length) = 0;
  // Metadata of the open object, as the path-based Store calls below; with
  // capabilities().handle_attributes these work after its last name was removed
  // (fchmod on an open, unlinked file). Without it, use the path-based calls.
  virtual Status SetMode(uint32_t mode) = 0;
  virtual Status SetOwner(uid_t uid, gid_t gid) = 0;
  virtual Status SetTimes(const struct timespec times[2]) = 0;

  // Resumable uploads (OneDrive's upload sessions), so that a restart continues a long
  // upload instead of starting it over. ResumeState() is where this writer's upload
  // stands: opaque text, empty when there is nothing to resume; it holds a
  // pre-authenticated URL, so whoever keeps it keeps it encrypted. ResumeUpload(state),
  // on a new writer of the same object told the same size (Truncate) and not yet
  // written to, continues that upload: it returns the offset the writer needs the bytes
  // from (it takes them sequentially from there), or 0 to start over when the state is
  // not for this object and size. Stores without such uploads keep these defaults.
  virtual std::string ResumeState() { return {}; }
  virtual uint64_t ResumeUpload(std::string_view state) {
    (void)state;
    return 0;
  }
};

class Store {
 public:
  virtual ~Store() = default;

  virtual StoreCapabilities capabilities() const = 0;

  virtual Result<ObjectInfo> Stat(std::string_view path) = 0;
  virtual Result<std::vector<DirEntry>> List(std::string_view dir) = 0;
  virtual Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                                  const OpenOptions& options) = 0;
  // Reads a whole small object (config, directory id, sidecar), refusing more than max_size.
  virtual Result<Bytes> ReadSmall(std::string_view path, size_t max_size) = 0;
  // Creates or replaces an object durably and atomically: readers see the old or the
  // new bytes, never a mix, even across a crash. With exclusive, kAlreadyExists if present.
  virtual Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive = false) = 0;

  virtual Status MakeDir(std::string_view path, uint32_t mode) = 0;
  virtual Status RemoveDir(std::string_view path) = 0;
  virtual Status Remove(std::string_view path) = 0;
  // RenameMode::kExchange needs capabilities().atomic_exchange (else kUnsupported).
  virtual Status Rename(std::string_view from, std::string_view to, RenameMode mode) = 0;
  // Makes directory entries (creations, renames, removals) in `dir` durable.
  virtual Status SyncDir(std::string_view dir) = 0;

  virtual Status Symlink(std::string_view target, std::string_view path) = 0;
  virtual Result<std::string> ReadLink(std::string_view path) = 0;
  virtual Status Link(std::string_view existing, std::string_view new_path) = 0;
  // Creates a FIFO, socket or device node (`type` must satisfy IsSpecialType; `rdev`
  // only for devices). kAlreadyExists if the name is taken; kUnsupported without the
  // special_files capability.
  virtual Status MakeNode(std::string_view path, ObjectType type, uint32_t mode, uint64_t rdev) = 0;

  virtual Status SetMode(std::string_view path, uint32_t mode) = 0;
  virtual Status SetOwner(std::string_view path, uid_t uid, gid_t gid) = 0;
  // UTIME_NOW and UTIME_OMIT are honoured as in utimensat(2).
  virtual Status SetTimes(std::string_view path, const struct timespec times[2]) = 0;

  virtual Result<StoreSpace> Space() = 0;

  // Extended attributes of an object (names are full, e.g. "user.x"). A missing
  // attribute is kNotFound with sys_errno ENODATA; a store without xattrs says
  // kUnsupported.
  virtual Result<Bytes> GetXattr(std::string_view path, std::string_view name) = 0;
  // flags as setxattr(2): XATTR_CREATE, XATTR_REPLACE or 0.
  virtual Status SetXattr(std::string_view path, std::string_view name, ByteSpan value,
                          int flags) = 0;
  virtual Result<std::vector<std::string>> ListXattrs(std::string_view path) = 0;
  virtual Status RemoveXattr(std::string_view path, std::string_view name) = 0;

  // The change feed (OneDrive's delta): the store paths another writer created,
  // rewrote, renamed (both names) or removed since the last call, for the filesystem
  // to drop what it and the kernel cache about them (FileSystem::StoreObjectChanged).
  // The first call starts tracking and reports nothing. kUnsupported where the store
  // cannot tell; a local directory shared with other writers needs --shared-store.
  virtual Result<std::vector<std::string>> PollChanges() {
    return Status::Error(Code::kUnsupported, "this store reports no changes");
  }
};

// A file of a store that replaces whole objects and keeps no POSIX attributes
// (OneDrive, remote-like:): it reserves no space, keeps no modes or owners
// (kUnsupported) and takes no prefetch hint.
class WholeObjectFile : public StoreFile {
 public:
  Status Reserve(uint64_t offset, uint64_t length) override;
  void Prefetch(uint64_t, uint64_t) override {}
  Status SetMode(uint32_t mode) override;
  Status SetOwner(uid_t uid, gid_t gid) override;
};

// The S_IF* file-type bits for an object type (regular file for kOther).
uint32_t FileTypeBits(ObjectType type);

// kInvalidArgument unless `path` is "" (the root) or '/'-separated components that are
// neither empty, "." nor "..", and hold no NUL.
Status ValidateStorePath(std::string_view path);

// Joins a directory path and a child name ("" + "x" = "x").
std::string JoinStorePath(std::string_view dir, std::string_view name);
// The parent directory of a store path ("a/b" -> "a", "a" -> "").
std::string_view StoreParent(std::string_view path);
// The last component of a store path.
std::string_view StoreBaseName(std::string_view path);

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_STORE_H_
