#include <cerrno>

#include "cadcanfs/fs/fuse/mount.h"

namespace cadcanfs {

int ErrnoOf(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return 0;
    // Tampering and damage are EIO whatever the system said along the way.
    case Code::kAuthenticationFailed:
    case Code::kWrongKey:
    case Code::kCorrupt:
    case Code::kInternal:
      return EIO;
    default:
      break;
  }
  if (status.sys_errno() != 0) return status.sys_errno();
  switch (status.code()) {
    case Code::kNotFound:
      return ENOENT;
    case Code::kAlreadyExists:
      return EEXIST;
    case Code::kNotADirectory:
      return ENOTDIR;
    case Code::kIsADirectory:
      return EISDIR;
    case Code::kNotEmpty:
      return ENOTEMPTY;
    case Code::kNameTooLong:
      return ENAMETOOLONG;
    case Code::kPermissionDenied:
      return EACCES;
    case Code::kInvalidArgument:
      return EINVAL;
    case Code::kNoSpace:
      return ENOSPC;
    case Code::kUnsupported:
      return EOPNOTSUPP;
    case Code::kCrossDevice:
      return EXDEV;
    case Code::kBusy:
      return EBUSY;
    case Code::kStale:
      return ESTALE;
    case Code::kFileTooLarge:
      return EFBIG;
    // A store that is still busy after the retries: the operation failed, and EIO is
    // what applications handle (EAGAIN would make a blocking read look non-blocking).
    case Code::kRetryLater:
      return EIO;
    // Someone else changed the object first; like NFS, say the handle is stale.
    case Code::kChangedElsewhere:
      return ESTALE;
    // What a full disk says: applications handle it (OneDrive's 507 is a full drive).
    case Code::kQuotaExceeded:
      return ENOSPC;
    case Code::kReadOnly:
      return EROFS;
    case Code::kNotPermitted:
      return EPERM;
    case Code::kBadHandle:
      return EBADF;
    case Code::kInterrupted:
      return EINTR;
    default:
      return EIO;
  }
}

}  // namespace cadcanfs
