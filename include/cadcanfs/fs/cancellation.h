// Cancellation of long operations: whether the caller of the request a thread serves
// has given up on it (FUSE_INTERRUPT, sent when the calling process is killed or takes
// a signal). The FUSE frontend installs a check for each request; the core polls it
// between batches of work and, when it fires, undoes what it did and stops.
//
// Thread safety: a scope belongs to the thread that made it.
#ifndef CADCANFS_FS_CANCELLATION_H_
#define CADCANFS_FS_CANCELLATION_H_

#include <functional>

namespace cadcanfs {

class CancelScope {
 public:
  explicit CancelScope(std::function<bool()> cancelled);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  // Whether the request this thread serves was given up; false outside any scope.
  static bool Cancelled();

 private:
  std::function<bool()> cancelled_;
  CancelScope* outer_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_CANCELLATION_H_
