// Status and Result<T>: errors as values at every layer boundary.
//
// Thread safety: a Status is an immutable value; distinct objects may be used
// from distinct threads without synchronisation.
//
// An OK Status holds a null pointer and so costs nothing. Only errors allocate.
// Messages must never contain plaintext names, paths, content or key material:
// they can reach logs and terminals.
#ifndef CADCANFS_COMMON_STATUS_H_
#define CADCANFS_COMMON_STATUS_H_

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace cadcanfs {

// Domain error codes. The FUSE frontend maps them to errno in one place and the
// CLI maps them to exit codes in one place; nothing else interprets them.
enum class Code : unsigned char {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kNotADirectory,
  kIsADirectory,
  kNotEmpty,
  kNameTooLong,
  kPermissionDenied,
  kInvalidArgument,
  kIoError,
  kAuthenticationFailed,  // a MAC or AEAD tag did not verify: tampering or corruption
  kWrongKey,              // the supplied master key does not belong to this vault
  kCorrupt,               // a structure is malformed (bad magic, bad length, bad JSON)
  kNoSpace,
  kUnsupported,
  kCrossDevice,
  kBusy,
  kStale,
  kFileTooLarge,      // past the mount's file size limit (EFBIG)
  kRetryLater,        // the store is throttling or unavailable for now (429, 503)
  kChangedElsewhere,  // the object changed since it was read (eTag mismatch, 412)
  kQuotaExceeded,     // the store's quota is used up (507)
  kReadOnly,          // the mount or store refuses every change (EROFS)
  kNotPermitted,      // not allowed for anyone, whatever the permissions (EPERM)
  kBadHandle,         // an open handle that is unknown or not open for this (EBADF)
  kInterrupted,       // the caller gave up (FUSE_INTERRUPT): the work was stopped and undone
  kInternal,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  // `sys_errno` keeps the operating-system error that caused this status (0 if none),
  // so the frontend can return exactly what the backing filesystem said.
  static Status Error(Code code, std::string message, int sys_errno = 0) {
    assert(code != Code::kOk);
    return Status(code, std::move(message), sys_errno);
  }
  // Builds a status from an errno value set by a failed system call.
  static Status FromErrno(int sys_errno, std::string_view what);

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  int sys_errno() const { return rep_ ? rep_->sys_errno : 0; }
  const std::string& message() const;
  // "<CodeName>: <message>", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context` (which must be free of names).
  Status WithContext(std::string_view context) const;

 private:
  struct Rep {
    Code code;
    int sys_errno;
    std::string message;
  };
  Status(Code code, std::string message, int sys_errno)
      : rep_(std::make_unique<Rep>(Rep{code, sys_errno, std::move(message)})) {}

  std::unique_ptr<Rep> rep_;
};

// Result<T> holds either a value or a non-OK Status. C++20 has no std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok());
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace cadcanfs

// Propagates a non-OK Status out of the current function.
#define CADCANFS_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::cadcanfs::Status cadcanfs_status_ = (expr);        \
    if (!cadcanfs_status_.ok()) return cadcanfs_status_; \
  } while (0)

#define CADCANFS_CONCAT_INNER(a, b) a##b
#define CADCANFS_CONCAT(a, b) CADCANFS_CONCAT_INNER(a, b)

// Declares `lhs` from a Result expression, or returns its Status.
#define CADCANFS_ASSIGN_OR_RETURN(lhs, expr) \
  CADCANFS_ASSIGN_OR_RETURN_IMPL(CADCANFS_CONCAT(cadcanfs_result_, __LINE__), lhs, expr)
#define CADCANFS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // CADCANFS_COMMON_STATUS_H_
