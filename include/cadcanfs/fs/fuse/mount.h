// The FUSE frontend: serves a FileSystem at a mountpoint through libfuse's low-level,
// multithreaded API. This is the only code that sees libfuse or errno.
#ifndef CADCANFS_FS_FUSE_MOUNT_H_
#define CADCANFS_FS_FUSE_MOUNT_H_

#include <functional>
#include <string>
#include <vector>

#include "cadcanfs/access/audit_log.h"
#include "cadcanfs/access/policy_holder.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/fs/change_poller.h"
#include "cadcanfs/fs/filesystem.h"

namespace cadcanfs {

struct MountOptions {
  std::string mountpoint;
  bool allow_other = false;
  bool read_only = false;
  bool debug = false;  // log every operation (numbers and sizes, never names)
  bool writeback_cache = false;
  // The store has other writers (another workstation, a sync client): the kernel caches
  // no attributes, names, listings or pages across requests (gocryptfs -sharedstorage).
  bool shared_store = false;
  // How often the store's change feed (OneDrive's delta) is asked what other writers
  // changed; stores without a feed are never asked.
  std::chrono::milliseconds poll_interval = kDefaultPollInterval;
  std::vector<std::string> fuse_options;  // passed through as "-o" options
  // Runs once, on the first request after the kernel finished INIT (mount tuning that
  // INIT would otherwise undo, such as the readahead window).
  std::function<void()> after_init;
  // With a policy: SIGHUP reloads it (instead of unmounting). With an audit log:
  // SIGUSR1 rotates it. Both must outlive ServeMount.
  access::PolicyWatcher* policy_watcher = nullptr;
  access::AuditLog* audit_log = nullptr;
  // Also serves the pseudonymized view (docs/access-policy.md 5) at this mountpoint,
  // from the same filesystem, for as long as the main mount lives. Empty: none.
  std::string pseudonymized_mountpoint;
  // Also serves, for each of these users, a view of their own at their mountpoint
  // (docs/access-policy.md 7): only that user's requests are answered there, so its
  // kernel caches keep their answers as on a mount without a policy.
  struct UserView {
    std::string mountpoint;
    uid_t uid = 0;
  };
  std::vector<UserView> user_views;
};

// Mounts, calls `on_mounted` once the mount is live, and serves requests until the
// filesystem is unmounted or SIGTERM/SIGINT (or SIGHUP without a policy) arrives; then syncs every
// open file and unmounts. kBusy when the kernel refused the mount.
Status ServeMount(FileSystem& fs, const MountOptions& options,
                  const std::function<void()>& on_mounted);

// The errno a reply carries for `status`: the one place codes become errno.
int ErrnoOf(const Status& status);

}  // namespace cadcanfs

#endif  // CADCANFS_FS_FUSE_MOUNT_H_
