// Internal to the FUSE frontend: one function per low-level operation, grouped by
// theme (entries and attributes, files, directories), plus the shared reply helpers.
// Each operation decodes its request, calls one FileSystem method and replies once.
#ifndef CADCANFS_FS_FUSE_FUSE_OPS_H_
#define CADCANFS_FS_FUSE_FUSE_OPS_H_

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <mutex>
#include <new>
#include <optional>
#include <unordered_map>
#include <vector>

#include "cadcanfs/fs/cancellation.h"
#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/fuse/mount.h"

namespace cadcanfs::fuse_ops {

// The supplementary groups of recent callers. fuse_req_getgroups reads /proc on every
// call, and a path walk under a policy sends several requests per system call; a
// process's groups rarely change, and a change is seen within kMaxAge.
class GroupsCache {
 public:
  static constexpr std::chrono::milliseconds kMaxAge{1000};
  std::vector<gid_t> Get(fuse_req_t req);

 private:
  struct Cached {
    uid_t uid;
    gid_t gid;
    std::chrono::steady_clock::time_point at;
    std::vector<gid_t> groups;
  };
  static constexpr size_t kMaxEntries = 4096;
  std::mutex mu_;
  std::unordered_map<pid_t, Cached> by_pid_;  // guarded by mu_
};

// What every request can reach through fuse_req_userdata.
struct Context {
  FileSystem* fs = nullptr;
  const MountOptions* options = nullptr;
  double entry_timeout = 1.0;
  double attr_timeout = 1.0;
  bool writeback = false;  // the kernel granted writeback caching
  std::once_flag after_init_once;
  GroupsCache groups;  // callers' supplementary groups, for the access policy
  // A further session beside the main one (a view): it keeps no pages across opens,
  // since another session may have written the file since, and the main session's
  // cached pages of a file written here are dropped (`invalidate_in_peer`).
  bool further_session = false;
  std::function<void(fuse_ino_t)> invalidate_in_peer;
  bool pseudonymized_view = false;  // case codes for patient names
  // A user's own view (mount --user-view): only this user's requests are served, so
  // its kernel caches hold one caller's answers and keep them as without a policy.
  std::optional<uid_t> only_uid;
};

inline Context& Ctx(fuse_req_t req) { return *static_cast<Context*>(fuse_req_userdata(req)); }

// Called by the operations the kernel sends first after INIT (getattr, lookup).
inline void RunAfterInitOnce(fuse_req_t req) {
  Context& ctx = Ctx(req);
  std::call_once(ctx.after_init_once, [&ctx] {
    if (ctx.options->after_init) ctx.options->after_init();
  });
}
inline FileSystem& Fs(fuse_req_t req) { return *Ctx(req).fs; }

// The open flags the filesystem should honour. With writeback caching the kernel
// places appended data itself and writes pages back at their own offsets, through
// whichever handle it picks: an O_APPEND handle would move them to the end of file.
inline int OpenFlagsOf(fuse_req_t req, const fuse_file_info* fi) {
  return Ctx(req).writeback ? fi->flags & ~O_APPEND : fi->flags;
}

inline void ReplyStatus(fuse_req_t req, const Status& s) { fuse_reply_err(req, ErrnoOf(s)); }

// Who sent `req`, for the access policy and the audit log. The supplementary groups
// cost a read of /proc, so they are fetched only when a policy decides.
RequestCredentials CredentialsOf(fuse_req_t req);

// The timeouts of a reply about `ino`: the entry timeout is zero where the answer
// differs per caller, so that the kernel never serves one user's lookup to another
// (docs/access-policy.md 7).
double EntryTimeoutFor(fuse_req_t req, fuse_ino_t ino);
double AttrTimeoutFor(fuse_req_t req, fuse_ino_t ino);

// Runs an operation body; no exception may cross into libfuse. Long work in the core
// stops when the caller gives up on the request (FUSE_INTERRUPT). Used directly by the
// operations on an open handle (READ, WRITE, FLUSH, FSYNC, FALLOCATE, RELEASE and their
// directory counterparts): the kernel sends some without the opener's credentials
// (RELEASE, writeback WRITEs), and a handle exists only where its open was allowed.
template <typename Body>
void GuardedAnyCaller(fuse_req_t req, Body&& body) {
  try {
    CancelScope scope([req] { return fuse_req_interrupted(req) != 0; });
    RequestScope caller(CredentialsOf(req));
    body();
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  } catch (...) {
    spdlog::error("unexpected exception in a filesystem operation");
    fuse_reply_err(req, EIO);
  }
}

// GuardedAnyCaller, for a request that names or opens something. In a user's own view
// another user's such request is refused: it would fill the view's caches with what
// that user may see (or show them the owner's).
template <typename Body>
void Guarded(fuse_req_t req, Body&& body) {
  if (Ctx(req).only_uid && fuse_req_ctx(req)->uid != *Ctx(req).only_uid) {
    fuse_reply_err(req, EACCES);
    return;
  }
  GuardedAnyCaller(req, std::forward<Body>(body));
}

// Guarded, or GuardedAnyCaller where the request comes through an open handle `fi`
// (fstat, ftruncate, and the time updates the kernel's writeback sends as root).
template <typename Body>
void GuardedUnlessHandle(fuse_req_t req, const fuse_file_info* fi, Body&& body) {
  if (fi != nullptr) return GuardedAnyCaller(req, std::forward<Body>(body));
  Guarded(req, std::forward<Body>(body));
}

Caller CallerOf(fuse_req_t req);
// Whether the caller of `req` is in group `gid` (primary or supplementary).
bool InGroup(fuse_req_t req, gid_t gid);
// The setuid and setgid bits a write or truncate by the caller of `req` clears on a
// file with attributes `before`, as on ext4 (PrivilegeBitsToClear).
uint32_t PrivilegeBitsToClearFor(fuse_req_t req, const struct stat& before);
fuse_entry_param EntryParam(fuse_req_t req, const Entry& entry);
void ReplyEntry(fuse_req_t req, const Result<Entry>& entry);

// fuse_ops_entry.cc
void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets);
void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void ReadLink(fuse_req_t req, fuse_ino_t ino);
void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
void MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name);
void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name);
void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags);
void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);
void StatFs(fuse_req_t req, fuse_ino_t ino);
void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags);
void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name);

// fuse_ops_file.cc
void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info* fi);
void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
               fuse_file_info* fi);

// fuse_ops_dir.cc
void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);

}  // namespace cadcanfs::fuse_ops

#endif  // CADCANFS_FS_FUSE_FUSE_OPS_H_
