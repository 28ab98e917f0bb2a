// KernelNotifier: tells the kernel to drop what it caches about an inode or a name,
// from its own thread. A notification sent from inside a request on the same inode
// would wait for that request to finish (libfuse documents the deadlock), and a store's
// change feed must not wait on the kernel either, so both only queue here.
#ifndef CADCANFS_FS_FUSE_KERNEL_NOTIFIER_H_
#define CADCANFS_FS_FUSE_KERNEL_NOTIFIER_H_

#include <fuse_lowlevel.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace cadcanfs {

class KernelNotifier {
 public:
  explicit KernelNotifier(fuse_session* session);
  ~KernelNotifier();  // sends what is queued, then stops
  KernelNotifier(const KernelNotifier&) = delete;
  KernelNotifier& operator=(const KernelNotifier&) = delete;

  void InvalidateInode(fuse_ino_t ino);
  void InvalidateEntry(fuse_ino_t parent, std::string name);

 private:
  struct Notice {
    fuse_ino_t ino = 0;
    std::string name;  // empty: the inode itself; else a name in directory `ino`
  };
  void Enqueue(Notice notice);
  void Run();

  fuse_session* session_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Notice> queue_;  // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  std::thread worker_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_FUSE_KERNEL_NOTIFIER_H_
