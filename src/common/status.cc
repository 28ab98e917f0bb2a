#include "cadcanfs/common/status.h"

#include <cstring>

namespace cadcanfs {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "not found";
    case Code::kFileTooLarge:
      return "file too large";
    case Code::kRetryLater:
      return "store busy, retry later";
    case Code::kChangedElsewhere:
      return "changed elsewhere";
    case Code::kQuotaExceeded:
      return "quota exceeded";
    case Code::kReadOnly:
      return "read-only";
    case Code::kNotPermitted:
      return "operation not permitted";
    case Code::kBadHandle:
      return "bad handle";
    case Code::kInterrupted:
      return "interrupted";
    case Code::kAlreadyExists:
      return "already exists";
    case Code::kNotADirectory:
      return "not a directory";
    case Code::kIsADirectory:
      return "is a directory";
    case Code::kNotEmpty:
      return "directory not empty";
    case Code::kNameTooLong:
      return "name too long";
    case Code::kPermissionDenied:
      return "permission denied";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kIoError:
      return "I/O error";
    case Code::kAuthenticationFailed:
      return "authentication failed";
    case Code::kWrongKey:
      return "wrong key";
    case Code::kCorrupt:
      return "corrupt";
    case Code::kNoSpace:
      return "no space left";
    case Code::kUnsupported:
      return "unsupported";
    case Code::kCrossDevice:
      return "cross-device";
    case Code::kBusy:
      return "busy";
    case Code::kStale:
      return "stale handle";
    case Code::kInternal:
      return "internal error";
  }
  return "unknown";
}

namespace {

Code CodeFromErrno(int e) {
  switch (e) {
    case ENOENT:
      return Code::kNotFound;
    case EEXIST:
      return Code::kAlreadyExists;
    case ENOTDIR:
      return Code::kNotADirectory;
    case EISDIR:
      return Code::kIsADirectory;
    case ENOTEMPTY:
      return Code::kNotEmpty;
    case ENAMETOOLONG:
      return Code::kNameTooLong;
    case EACCES:
    case EPERM:
      return Code::kPermissionDenied;
    case EINVAL:
      return Code::kInvalidArgument;
    case ENOSPC:
    case EDQUOT:
      return Code::kNoSpace;
    case EXDEV:
      return Code::kCrossDevice;
    case EBUSY:
      return Code::kBusy;
    case ESTALE:
      return Code::kStale;
    case ENOTSUP:
      return Code::kUnsupported;
    case EFBIG:
      return Code::kFileTooLarge;
    default:
      return Code::kIoError;
  }
}

}  // namespace

Status Status::FromErrno(int sys_errno, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += std::strerror(sys_errno);
  return Status(CodeFromErrno(sys_errno), std::move(message), sys_errno);
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(rep_->code));
  if (!rep_->message.empty()) {
    out += ": ";
    out += rep_->message;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return Status();
  std::string message(context);
  message += ": ";
  message += rep_->message;
  return Status(rep_->code, std::move(message), rep_->sys_errno);
}

}  // namespace cadcanfs
