// PolicyHolder: the current access policy, replaced atomically on reload.
// PolicyWatcher: a thread that reloads it when the file changes or on request (SIGHUP).
//
// Every FUSE request takes one Current() snapshot and decides with it, so a request
// never sees half of an old and half of a new policy. A reload that fails (missing
// file, bad JSON, unknown user...) keeps the old policy and reports why; only the
// first load, at mount time, turns an error into a refusal.
//
// Thread safety: all PolicyHolder methods may be called concurrently. Reload() and
// ReloadIfChanged() serialise among themselves. PolicyWatcher::RequestReload() is
// async-signal-safe.
#ifndef CADCANFS_ACCESS_POLICY_HOLDER_H_
#define CADCANFS_ACCESS_POLICY_HOLDER_H_

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cadcanfs/access/policy.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/common/unique_fd.h"

namespace cadcanfs::access {

class PolicyHolder {
 public:
  // Loads `path`; an error is a refusal to start (CLI exit code 41).
  static Result<std::unique_ptr<PolicyHolder>> Load(std::string path,
                                                    IdLookup ids = SystemIdLookup());

  std::shared_ptr<const Policy> Current() const { return current_.load(); }
  // Counts successful loads, starting at 1; the frontend can use it to drop anything
  // it derived from an older policy.
  uint64_t generation() const { return generation_.load(); }

  // Reads and parses the file again. On error the current policy stays and the error
  // is returned. User and group names are resolved again too.
  Status Reload();
  // Reload() if the file's identity (device, inode, size, mtime, ctime) differs from
  // the last attempt's, successful or not; else OK without reading. So a broken file
  // is reported once, not at every poll.
  Status ReloadIfChanged();

 private:
  struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    timespec mtime{};
    timespec ctime{};
    bool operator==(const FileStamp& o) const;
  };
  PolicyHolder(std::string path, IdLookup ids) : path_(std::move(path)), ids_(std::move(ids)) {}
  FileStamp StampNow() const;
  Status ReloadLocked();

  const std::string path_;
  const IdLookup ids_;
  std::atomic<std::shared_ptr<const Policy>> current_;
  std::atomic<uint64_t> generation_{0};
  std::mutex reload_mutex_;
  FileStamp last_attempt_;  // GUARDED_BY(reload_mutex_)
};

class PolicyWatcher {
 public:
  // Called on the watcher thread after every reload attempt it makes, with its result,
  // so the daemon can log "policy reloaded" or why not (the Status carries no name).
  using ReloadReport = std::function<void(const Status&)>;

  // Watches the policy file's directory with inotify (so editors that save through a
  // rename are seen) and also checks the file every `poll_interval`.
  static Result<std::unique_ptr<PolicyWatcher>> Start(
      PolicyHolder& holder, const std::string& policy_path, ReloadReport report,
      std::chrono::milliseconds poll_interval = std::chrono::seconds(2));
  ~PolicyWatcher();  // stops and joins the thread

  // Asks the thread for a forced Reload(). Async-signal-safe: call it from SIGHUP.
  void RequestReload() noexcept;

 private:
  PolicyWatcher(PolicyHolder& holder, ReloadReport report, std::chrono::milliseconds poll)
      : holder_(holder), report_(std::move(report)), poll_interval_(poll) {}
  void Run();

  PolicyHolder& holder_;
  ReloadReport report_;
  std::chrono::milliseconds poll_interval_;
  UniqueFd inotify_;
  UniqueFd wake_;  // eventfd: RequestReload and the destructor
  std::atomic<bool> reload_requested_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace cadcanfs::access

#endif  // CADCANFS_ACCESS_POLICY_HOLDER_H_
