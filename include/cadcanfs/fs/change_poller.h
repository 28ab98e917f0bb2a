// ChangePoller: keeps a mount coherent with the store's other writers (a lab's other
// workstations on one OneDrive vault). Every `interval` it asks the store's change feed
// what changed (FileSystem::PollStoreChanges), which drops what the daemon and the
// kernel cached about it. A store without a feed stops it at once; a failed poll (the
// network) is logged and tried again at the next interval.
#ifndef CADCANFS_FS_CHANGE_POLLER_H_
#define CADCANFS_FS_CHANGE_POLLER_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "cadcanfs/fs/filesystem.h"

namespace cadcanfs {

inline constexpr std::chrono::milliseconds kDefaultPollInterval{10'000};

class ChangePoller {
 public:
  ChangePoller(FileSystem& fs, std::chrono::milliseconds interval);
  ~ChangePoller();  // stops the thread; a poll under way finishes first
  ChangePoller(const ChangePoller&) = delete;
  ChangePoller& operator=(const ChangePoller&) = delete;

  // Whether the thread still polls (false once the store said it has no feed).
  bool polling() const;

 private:
  void Run();

  FileSystem& fs_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  bool polling_ = true;    // guarded by mu_
  std::thread worker_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_CHANGE_POLLER_H_
