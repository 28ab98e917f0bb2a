// VaultLock: the single-writer lock of a local vault.
//
// A vault may be changed by one process at a time. A second writer is not merely
// slow but destructive: a rekey under a live mount moves every header to the new key
// while the daemon keeps wrapping new files under the old one, and those files are
// lost once the old key is destroyed. So every writer (the mount daemon for its whole
// life, rekey, encrypt) holds this lock; read-only commands (info, fsck, decrypt,
// map) do not take it and keep working while the vault is mounted.
//
// The lock is flock(LOCK_EX | LOCK_NB) on "cadcanfs.lock" in the vault root. The
// kernel drops it when the holder exits, however it exits, so a lock file left behind
// by `kill -9` or a power cut never blocks the next writer. The holder writes its pid
// into the file only so a refused writer can say who holds the vault; the file's
// content carries no meaning for locking, with one exception: a holder that lets go
// cleanly empties the file, so a pid still there when the next writer takes the lock
// means its holder died while holding it. Work it had under way may be half done
// (a resize torn by the crash, docs/vault-format.md §6), and the next writer settles
// it before serving (Vault::SettleInterruptedWrites). Until a holder says it has
// (MarkRecovered), the mark stays, with the dead session's start as the file's mtime.
//
// Only local vaults exist today. A remote store (OneDrive) has no flock: it will need
// a lease object in the store instead (created with a conditional write, renewed while
// held, taken over only after it expires), behind the same Acquire/release shape.
//
// Thread safety: a VaultLock is owned by one thread; Acquire may be called from any.
#ifndef CADCANFS_FS_VAULT_LOCK_H_
#define CADCANFS_FS_VAULT_LOCK_H_

#include <time.h>

#include <chrono>
#include <optional>
#include <string>

#include "cadcanfs/common/status.h"

namespace cadcanfs {

class VaultLock {
 public:
  // Takes the writer lock of the local vault at `vault_root`, creating the lock file
  // if needed. A held lock is retried for up to `patience`: a daemon still exiting
  // right after `unmount` returned should not fail the `rekey` that follows. Errors:
  //   kBusy   another process holds it; the message is the sentence for the user,
  //           "the vault is in use by pid N: unmount it first";
  //   others  the lock file cannot be created or opened, or is not a plain regular
  //           file (a symlink, FIFO or hard-linked file planted under its name).
  static Result<VaultLock> Acquire(const std::string& vault_root,
                                   std::chrono::milliseconds patience = {});

  VaultLock(VaultLock&& other) noexcept;
  VaultLock& operator=(VaultLock&& other) noexcept;
  VaultLock(const VaultLock&) = delete;
  VaultLock& operator=(const VaultLock&) = delete;
  // Releases the lock, marking the release clean unless an interrupted session is
  // still unsettled (the lock file stays; see above).
  ~VaultLock();

  // Set when the previous holder died holding the lock: the time it took the lock,
  // by the vault filesystem's clock (the lock file's mtime), so that only objects
  // changed since then need settling.
  const std::optional<struct timespec>& interrupted_session_start() const {
    return interrupted_session_start_;
  }
  // The interrupted session's work is settled: a clean release may clear the mark.
  void MarkRecovered();

 private:
  VaultLock(int fd, bool writable, std::optional<struct timespec> interrupted)
      : fd_(fd), writable_(writable), interrupted_session_start_(interrupted) {}
  void Release();
  int fd_ = -1;
  bool writable_ = false;
  std::optional<struct timespec> interrupted_session_start_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_VAULT_LOCK_H_
