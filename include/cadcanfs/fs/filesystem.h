// FileSystem: a mounted store as inode-addressed operations, free of libfuse.
//
// Each method is one filesystem operation in POSIX terms (inode numbers, open
// handles, struct stat); the FUSE frontend decodes a request, calls one method and
// maps the Status to errno. Everything here speaks the Format and Store interfaces
// only, so a new backend or a new format touches no code in this file: the same core
// serves an encrypted vault (VaultFormat) and a plain tree (PlainFormat).
//
// Thread safety: every method may be called concurrently from the FUSE worker
// threads. Namespace changes that move whole subtrees (rename, rmdir) hold the
// namespace lock exclusively; everything that builds a store path holds it shared.
// Reads and writes on open handles take no namespace lock at all.
#ifndef CADCANFS_FS_FILESYSTEM_H_
#define CADCANFS_FS_FILESYSTEM_H_

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cadcanfs/access/audit_log.h"
#include "cadcanfs/access/policy_holder.h"
#include "cadcanfs/access/pseudonym.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/fs/format.h"
#include "cadcanfs/fs/inode_table.h"
#include "cadcanfs/fs/name_resolver.h"

namespace cadcanfs {

// The access layer a mount runs with (docs/access-policy.md, sections 7 and 8). All
// null: every caller may do everything the kernel's permission checks allow, and
// nothing is audited.
struct AccessOptions {
  std::shared_ptr<access::PolicyHolder> policy;  // decide every request from its caller
  std::shared_ptr<access::AuditLog> audit;       // one line per audited operation
  // Case codes for audit lines; null (plain folders have no vault key): "case" is "".
  std::shared_ptr<const access::CaseCoder> case_coder;
};

struct FsOptions {
  bool read_only = false;
  std::optional<uid_t> force_uid;  // report every object as owned by this user
  std::optional<gid_t> force_gid;  // ... and this group
  bool owner_is_caller = false;    // a root daemon hands new objects to the calling user
  // Other writers change the store (mount --shared-store): no answer read from it is
  // reused for a later request.
  bool shared_store = false;
  // Writes, truncates and fallocates past this size fail with EFBIG: one request must
  // not make the daemon seal terabytes of zeros.
  uint64_t max_file_size = uint64_t{256} << 30;
  AccessOptions access;
};

// Who asked (from the FUSE request).
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

// The credentials of the request a thread serves. The FUSE frontend installs one per
// request; the core reads it for policy decisions and audit lines, so the operation
// signatures need not carry it. Outside any scope the caller is uid 0, pid 0 (an
// ordinary caller under a policy without root_bypass).
struct RequestCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  std::vector<gid_t> groups;  // supplementary
  // The request came through the pseudonymized view's mountpoint: case folders show
  // as case codes, patient names inside them as the code (docs/access-policy.md 5),
  // and pseudonymized principals see their cases.
  bool pseudonymized_view = false;
  // When set, fetches `groups` on first use (it reads /proc): only requests that a
  // policy decides need them.
  std::function<std::vector<gid_t>()> fetch_groups;
};

class RequestScope {
 public:
  explicit RequestScope(RequestCredentials credentials);
  ~RequestScope();
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

  // The innermost scope's credentials on this thread, or the defaults above.
  static const RequestCredentials& Current();
  // The supplementary groups of the current request, fetched at most once.
  static const std::vector<gid_t>& CurrentGroups();

 private:
  RequestCredentials credentials_;
  bool groups_fetched_ = false;
  RequestScope* outer_;
};

// relatime, as ext4 applies it: an access updates atime only when atime is not newer
// than mtime or ctime, or is more than a day old (at `now`).
bool AccessTimeUpdateDue(const struct stat& attr, const struct timespec& now);

// The setuid and setgid bits ext4 clears when a caller without CAP_FSETID writes or
// truncates a regular file (setattr_should_drop_suidgid): setuid always, setgid when the
// group may execute or the caller is outside the file's group. `in_file_group` says
// whether the caller is in the file's group. Root keeps them.
uint32_t PrivilegeBitsToClear(const struct stat& attr, uid_t caller_uid, bool in_file_group);

struct Entry {
  InodeNumber ino = 0;
  struct stat attr {};
};

struct AttrChanges {
  std::optional<uint32_t> mode;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<uint64_t> size;
  std::optional<struct timespec> atime;  // tv_nsec may be UTIME_NOW
  std::optional<struct timespec> mtime;
};

using HandleId = uint64_t;

// One directory listing, taken when a reader starts at offset 0.
using DirSnapshot = std::vector<PlainDirEntry>;

class FileSystem {
 public:
  FileSystem(std::unique_ptr<Format> format, FsOptions options);
  ~FileSystem();

  // Reads, once before the first request, what every path walk needs first: the root's
  // attributes (kept on a remote store, so the first `ls` does not wait a round trip for
  // them) and its directory state. An error means the store's root cannot be read.
  Status PrepareToServe();

  // Names
  Result<Entry> Lookup(InodeNumber parent, std::string_view name);
  // "." of an inode number the kernel may have forgotten (a file handle), counting a
  // lookup; kStale if the object is gone or no longer remembered.
  Result<Entry> LookupByNumber(InodeNumber ino);
  // ".." of a directory, counting a lookup of the parent.
  Result<Entry> LookupParentOf(InodeNumber ino);
  // Lookup of an entry a listing already decrypted (readdirplus).
  Result<Entry> LookupListed(InodeNumber parent, const PlainDirEntry& entry);
  void Forget(InodeNumber ino, uint64_t count);
  Result<Entry> MakeDir(InodeNumber parent, std::string_view name, uint32_t mode,
                        const Caller& caller);
  Result<Entry> Symlink(InodeNumber parent, std::string_view name, std::string_view target,
                        const Caller& caller);
  // mknod(2): a FIFO, socket or device node (`mode` carries the S_IF* type), or an
  // empty regular file. kPermissionDenied (EPERM) for special files on a store without them.
  Result<Entry> MakeNode(InodeNumber parent, std::string_view name, uint32_t mode, uint64_t rdev,
                         const Caller& caller);
  Result<Entry> Link(InodeNumber ino, InodeNumber new_parent, std::string_view name);
  Status Unlink(InodeNumber parent, std::string_view name);
  Status RemoveDir(InodeNumber parent, std::string_view name);
  Status Rename(InodeNumber parent, std::string_view name, InodeNumber new_parent,
                std::string_view new_name, RenameMode mode);
  Result<std::string> ReadLink(InodeNumber ino);

  // Attributes
  Result<struct stat> GetAttr(InodeNumber ino);
  // fstat(2) through an open handle `fh` of `ino`: an open file keeps the access it was
  // opened with, so a policy reload does not hide it from its holder.
  Result<struct stat> GetAttr(InodeNumber ino, std::optional<HandleId> fh);
  // `fh` is the open handle the change came through, if any (ftruncate).
  Result<struct stat> SetAttr(InodeNumber ino, const AttrChanges& changes,
                              std::optional<HandleId> fh);
  Result<struct statvfs> StatFs();

  // Files. `flags` are open(2) flags.
  Result<HandleId> Open(InodeNumber ino, int flags);
  Result<std::pair<Entry, HandleId>> Create(InodeNumber parent, std::string_view name,
                                            uint32_t mode, int flags, const Caller& caller);
  Result<size_t> Read(HandleId fh, uint64_t offset, std::span<uint8_t> out);
  Result<size_t> Write(HandleId fh, uint64_t offset, ByteSpan data);
  Status Fsync(HandleId fh);
  // close(2) of a handle (FUSE flush): what it wrote survives a crash of the daemon.
  Status Flush(HandleId fh);
  // Whether close(2) has anything to do (Flush): the store defers its commits.
  bool wants_flush() const { return store_.capabilities().deferred_commits; }
  // fallocate(2): modes 0 and FALLOC_FL_KEEP_SIZE; anything else is kUnsupported.
  Status Allocate(HandleId fh, int mode, uint64_t offset, uint64_t length);
  void Release(HandleId fh);

  // Directories
  Result<HandleId> OpenDir(InodeNumber ino);
  // The listing for a reader at `offset` (re-read when offset is 0).
  Result<std::shared_ptr<const DirSnapshot>> ReadDir(HandleId dh, uint64_t offset);
  Status FsyncDir(InodeNumber ino);
  void ReleaseDir(HandleId dh);

  // user.* extended attributes, encrypted. Other namespaces hold nothing.
  Result<Bytes> GetXattr(InodeNumber ino, std::string_view name);
  Status SetXattr(InodeNumber ino, std::string_view name, ByteSpan value, int flags);
  Result<std::vector<std::string>> ListXattrs(InodeNumber ino);
  Status RemoveXattr(InodeNumber ino, std::string_view name);

  // Access control (docs/access-policy.md section 7): whether a policy decides requests,
  // and whether the kernel may cache answers about `ino` for other callers. False
  // without a policy: the kernel caches as it always did.
  bool policy_enabled() const { return options_.access.policy != nullptr; }
  // Entries (names) at depth 1 ... N (case depth) differ per caller; attributes do not.
  bool AnswersVaryByCaller(InodeNumber ino);
  // Listings of directories above case depth are filtered per caller.
  bool ListingVariesByCaller(InodeNumber ino);

  // Coherence with other writers of the store (filesystem_changes.cc). The FUSE
  // frontend installs what drops the kernel's caches; a store's change feed (OneDrive's
  // delta) reports each change another writer made, by store path. Both may be called
  // from any thread except a FUSE request's own (the kernel would wait on itself).
  struct KernelInvalidator {
    std::function<void(InodeNumber ino)> inode;  // attributes and cached pages
    std::function<void(InodeNumber parent, const std::string& name)> entry;  // a dentry
  };
  void SetKernelInvalidator(KernelInvalidator invalidator);
  // The object at `store_path` changed, appeared or went away.
  void StoreObjectChanged(std::string_view store_path);
  // Asks the store's change feed (Store::PollChanges) once and passes on what it
  // reports; returns how many paths changed. kUnsupported: the store has no feed.
  Result<size_t> PollStoreChanges();

  // Makes every open file durable (before unmounting on a signal).
  Status SyncAll();
  size_t inode_count() { return inodes_.size(); }

 private:
  struct FileHandle;
  struct DirHandle;
  template <typename T>
  class HandleTable;

  Result<std::shared_ptr<Inode>> InodeOf(InodeNumber ino);
  // Store Stat with a file's size turned into its plaintext size.
  Result<ObjectInfo> StatPlain(const std::string& path);
  // `info` of the object at `path` with a file's size turned into its plaintext size.
  Result<ObjectInfo> PlainInfoOf(const std::string& path, ObjectInfo info);
  // Records a new or found object as an inode (counting one kernel lookup).
  std::shared_ptr<Inode> RecordInode(const ChildPath& child, const ObjectInfo& info);
  // RecordInode plus the reply.
  Entry RecordEntry(const ChildPath& child, const ObjectInfo& info);
  // REQUIRES: namespace_mu_ held. Creates the entry `child` with `make`, writing a
  // long name's sidecar first and removing it again if `make` fails.
  Status MakeEntry(const ChildPath& child, const std::function<Status()>& make);
  // Where every operation that adds a name starts: the mount is writable, the name
  // resolves under `parent` (held under the namespace lock), and the caller may add an
  // entry of `type` there. `path` is the plaintext path for the audit line.
  struct NewName {
    std::shared_lock<std::shared_mutex> ns;
    ChildPath child;
    std::vector<std::string> path;
  };
  Result<NewName> PrepareNewName(InodeNumber parent, std::string_view name, ObjectType type,
                                 std::string_view attempt);
  // REQUIRES: namespace_mu_ held. The existing entry the request's view calls `name`
  // in `parent`: where it is stored, and what the store says of it (child.plain is its
  // real name), for the operations that remove a name.
  struct ExistingEntry {
    ChildPath child;
    ObjectInfo info;
  };
  Result<ExistingEntry> FindExisting(InodeNumber parent, std::string_view name);
  // REQUIRES: namespace_mu_ held. Creates a symlink entry `child` pointing at `target`.
  Status MakeSymlinkEntry(const ChildPath& child, std::string_view target);
  struct stat AttrOf(const ObjectInfo& info) const;
  // Gives a new object to the calling user when the daemon runs as root, with the
  // group and mode ext4 would give it (`mode` as requested; `is_dir` for directories).
  Status AssignOwner(const ChildPath& child, const Caller& caller, uint32_t mode, bool is_dir);
  // The object at `key` lost the name `link`; `last` when it has no name left.
  // `info` describes the object as it was; an fd still open on it reports that (with
  // st_nlink 0) once the last name is gone.
  void DropLink(const ObjectInfo& info, const std::shared_ptr<Inode>& parent,
                const std::string& stored, bool last);
  void MoveLink(const ObjectId& key, const std::shared_ptr<Inode>& from_parent,
                const std::string& from_stored, const std::shared_ptr<Inode>& to_parent,
                const std::string& to_stored, const std::string& to_plain);

  // filesystem_access.cc: the policy and the audit log, per request.
  // The plaintext path of an inode below the mount root, from its first links.
  Result<std::vector<std::string>> PlainPathOf(Inode& inode);
  // How many components deep the inode is (0 for the root); nullopt if it has no name.
  std::optional<size_t> DepthOf(Inode& inode);
  access::Decision DecideFor(const std::vector<std::string>& components, ObjectType type);
  // kNotFound (ENOENT) unless the caller may see the inode.
  Status CheckVisible(Inode& inode);
  // CheckVisible and CheckChangeable for an inode number (kStale if unknown).
  Status CheckVisibleNumber(InodeNumber ino);
  Status CheckChangeableNumber(InodeNumber ino, std::string_view attempt);
  // kNotFound (ENOENT, audited as a denied lookup) unless the caller may see the
  // existing entry `name` of type `type` in `parent`.
  Status CheckFound(Inode& parent, std::string_view name, ObjectType type);
  // Visible and writable for the caller, else ENOENT / EACCES (audited as denied).
  Status CheckChangeable(Inode& inode, std::string_view attempt);
  // Whether the caller may add or remove the entry `name` of type `type` in `parent`:
  // needs write on the parent's path and on the entry's. Fills `path` with the entry's
  // plaintext path (for the audit line).
  Status CheckEntryChange(Inode& parent, std::string_view name, ObjectType type,
                          std::string_view attempt, std::vector<std::string>* path = nullptr);
  // Leaves out of a listing of `dir` the entries the caller may not see.
  Result<DirSnapshot> FilterListing(Inode& dir, DirSnapshot entries);
  // The case code of a path ("" outside a case or without a case coder).
  std::string CaseCodeOf(const std::vector<std::string>& components) const;
  int CaseDepth() const;
  bool audit_enabled() const { return options_.access.audit != nullptr; }
  // Appends one audit line for the request this thread serves; kIoError (EIO) when
  // the log fails closed.
  Status Audit(access::AuditOp op, const std::vector<std::string>& components,
               std::string_view file_id = {}, int error = 0, std::string_view attempt = {},
               const std::vector<std::string>* to_components = nullptr);
  Status AuditInode(access::AuditOp op, Inode& inode, std::string_view file_id = {}, int error = 0);
  // The policy caches (CachedLookup): whether `inode` is a directory whose answers are
  // cached, a change that invalidates them, and the lookups and attributes themselves.
  bool CachesPolicyAnswers(Inode& inode);

  // filesystem_view.cc: the pseudonymized view (docs/access-policy.md, section 5).
  // How each directory's entries are shown there: computed from all its entries, so
  // that every caller sees the same names.
  struct ViewNames;
  enum class NameUse { kExisting, kNew };
  bool InPseudonymizedView() const;
  // REQUIRES: namespace_mu_ held. The real name behind `name` in `parent` as the
  // request's view shows it, or nullopt where `name` is the real name (outside the
  // pseudonymized view, which every lookup passes through, and above the case
  // folders). kNotFound for a name the view does not show; a new name (kNew) is stored
  // as typed, unless it is a real name the view shows otherwise.
  Result<std::optional<std::string>> RealNameInView(InodeNumber parent, std::string_view name,
                                                    NameUse use);
  // The view of `dir` with entries `entries` (all of them); null where names show as
  // they are.
  Result<std::shared_ptr<const ViewNames>> ViewNamesFromListing(
      Inode& dir, const std::vector<PlainDirEntry>& entries);
  // REQUIRES: namespace_mu_ held. As ViewNamesFromListing, listing `dir` (or reusing
  // a listing of it from moments ago).
  Result<std::shared_ptr<const ViewNames>> ViewNamesOf(Inode& dir);
  // `entries` with the view's names: `shown` set where it differs, and what the view
  // does not show left out.
  DirSnapshot ShowInView(const ViewNames& view, DirSnapshot entries) const;
  // A symlink's target as the request's view shows it: inside a case in the
  // pseudonymized view, with the patient's name replaced by the case code.
  Result<std::string> TargetInView(Inode& link, std::string target);
  void NoteNamespaceChange() { namespace_generation_.fetch_add(1); }
  // The lookup cache (CachedLookup): under a policy, the case directories; on a remote
  // store, every entry a lookup or listing found.
  struct CachedLookup;
  std::optional<CachedLookup> CachedChild(Inode& parent, std::string_view name);
  void RememberChild(Inode& parent, std::string_view name, const Entry& entry, uint64_t generation);
  // A cached lookup's answer, counted as a lookup, with the attributes the object has now.
  std::optional<Entry> KnownChild(Inode& parent, std::string_view name);
  // The attributes known without a store call: the open file's, or the cached ones.
  std::optional<struct stat> KnownAttr(Inode& inode);
  // Attributes read from the store moments ago, for the requests that follow each other
  // about one object (LOOKUP, then the GETATTR of OPEN's relatime check): a directory's
  // under a policy, and any object's on a store where a Stat is a round trip (OneDrive),
  // unless other writers share the store. Never while the object is open here.
  // A store whose calls are round trips, and no other writer but those its change feed
  // reports (no --shared-store): what this daemon read there stays right until it
  // changes something itself.
  bool OnlyWriterOfRemoteStore() const;
  bool CachesAttributes(Inode& inode);
  std::optional<struct stat> CachedAttr(Inode& inode);
  void RememberAttr(Inode& inode, const struct stat& attr, uint64_t generation);
  // A block, header or name that failed authentication while serving a request.
  void AuditTamper(Inode& inode, const Status& status, std::string_view file_id);
  // The open file of an inode, opened on first use; writable unless the mount or the
  // backing object forbids it.
  Result<std::shared_ptr<FileContent>> AcquireFile(Inode& inode, bool need_write);
  // The attributes of an object that lost its last name, if `inode` is one.
  std::optional<ObjectInfo> OrphanInfo(Inode& inode);
  // chmod, chown and utimens of an orphan: it has no store object left to change, so
  // only the attributes its open fds report change (what ext4 shows for them too).
  void ApplyToOrphan(Inode& inode, const AttrChanges& changes);
  AttrChanges WhatTheStoreKeeps(const AttrChanges& changes) const;
  void ReleaseFile(Inode& inode);
  // REQUIRES: inode.mu held, inode.file open read-only. Reopens its store object at
  // `path` for writing, if it is still the same object.
  bool OpensWritable(bool need_write) const;
  Status UpgradeToWritable(Inode& inode, const std::string& path);
  HandleId AddFileHandle(std::shared_ptr<Inode> inode, std::shared_ptr<FileContent> file,
                         int flags);
  Status TruncateInode(Inode& inode, uint64_t size, std::optional<HandleId> fh);
  Status CheckWritable() const;
  // kFileTooLarge (EFBIG) if a file would end past options_.max_file_size.
  Status CheckFileSize(uint64_t offset, uint64_t length) const;

  // Copies of the installed invalidator, so a change never races its replacement.
  KernelInvalidator Invalidator();
  std::mutex invalidator_mu_;
  KernelInvalidator invalidator_;  // guarded by invalidator_mu_

  std::unique_ptr<Format> format_;
  Store& store_;
  FsOptions options_;
  InodeTable inodes_;
  // Every store path is built by names_, under namespace_mu_ (shared at least).
  NameResolver names_;
  std::shared_mutex namespace_mu_;

  // Under a policy the kernel asks again for every directory at or above case depth on
  // every path walk (zero timeouts), once per caller. These answers are reused for up to
  // kPolicyCacheAge, the staleness the kernel's own caches allow without a policy, unless
  // the namespace changed meanwhile; the per-caller decision is still made every time.
  struct CachedLookup {
    InodeNumber child = 0;
    ObjectType type = ObjectType::kOther;
    struct stat attr {};
    uint64_t generation = 0;
    std::chrono::steady_clock::time_point at;
  };
  static constexpr std::chrono::milliseconds kPolicyCacheAge{1000};
  // On a remote store (without --shared-store) this daemon is the store's only writer,
  // or its change feed reports the others (StoreObjectChanged): attributes read there
  // stay right until a change of ours or of the feed's bumps the generation. The age
  // only bounds how long a change nobody reported can go unseen.
  static constexpr std::chrono::milliseconds kRemoteAttrCacheAge{60'000};
  // Counts completed namespace and attribute changes; a cached answer from an older
  // generation is not used.
  std::atomic<uint64_t> namespace_generation_{0};
  std::mutex lookup_cache_mu_;
  std::unordered_map<std::string, CachedLookup> lookup_cache_;  // guarded by lookup_cache_mu_
  std::mutex view_cache_mu_;
  // by directory inode; guarded by view_cache_mu_
  std::unordered_map<InodeNumber, std::shared_ptr<const ViewNames>> view_cache_;
  std::unique_ptr<HandleTable<FileHandle>> files_;
  std::unique_ptr<HandleTable<DirHandle>> dirs_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_FILESYSTEM_H_
