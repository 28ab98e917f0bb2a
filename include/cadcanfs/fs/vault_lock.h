// VaultLock: the single-writer lock of a vault, local or remote.
//
// A vault may be changed by one process at a time. A second writer is not merely
// slow but destructive: a rekey under a live mount moves every header to the new key
// while the daemon keeps wrapping new files under the old one, and those files are
// lost once the old key is destroyed. So every writer (the mount daemon for its whole
// life, rekey, encrypt) holds this lock; read-only commands (info, fsck, decrypt,
// map) do not take it and keep working while the vault is mounted.
//
// Two implementations share this one shape, chosen by the store:
//
// - A local vault (Acquire): flock(LOCK_EX | LOCK_NB) on "cadcanfs.lock" in the vault
//   root. The kernel drops it when the holder exits, however it exits, so a lock file
//   left behind by `kill -9` or a power cut never blocks the next writer. The holder
//   writes its pid into the file only so a refused writer can say who holds the vault;
//   the file's content carries no meaning for locking, with one exception: a holder
//   that lets go cleanly empties the file, so a pid still there when the next writer
//   takes the lock means its holder died while holding it.
//
// - A remote store (AcquireLease), which has no flock: a lease object, also named
//   "cadcanfs.lock", holding a random holder id, the host, its boot id, the pid, the
//   session's start and an expiry (docs/vault-format.md §6). It is created with an
//   exclusive WriteAtomic, renewed by a background thread well before it expires, and
//   removed at a clean release. A lease past its expiry, or one whose holder ran on
//   this machine since its last boot and is gone, can be taken over; that takeover
//   replaces the object and reads it back after a pause, so two takers racing for the
//   same dead lease normally see each other (the remaining window is documented).
//   A lease left in the store (expired or with a dead holder) is the mark of a holder
//   that never released it cleanly.
//
// Either way, work an unclean holder had under way may be half done (a resize torn by
// the crash, docs/vault-format.md §6), and the next writer settles it before serving
// (Vault::SettleInterruptedWrites). Until a holder says it has (MarkRecovered), the
// mark stays, with the dead session's start.
//
// Thread safety: a VaultLock is owned by one thread; Acquire may be called from any.
#ifndef CADCANFS_FS_VAULT_LOCK_H_
#define CADCANFS_FS_VAULT_LOCK_H_

#include <time.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cadcanfs/common/status.h"
#include "cadcanfs/store/store.h"

namespace cadcanfs {

// Timings of a lease (defaults for a real remote store; tests shorten them).
struct LeaseOptions {
  // How long a lease stays valid without renewal, by the holder's wall clock.
  std::chrono::milliseconds duration{std::chrono::seconds(90)};
  // How often the holder renews it: a third of the duration survives two failed
  // renewals in a row (a store throttling us for a minute).
  std::chrono::milliseconds renew_every{std::chrono::seconds(30)};
  // After replacing a dead holder's lease, how long to wait before reading it back to
  // see whether another taker replaced it in the meantime.
  std::chrono::milliseconds takeover_check{300};
  // Identifies this machine since its boot, to tell a dead local holder from a live
  // one; empty: /proc/sys/kernel/random/boot_id.
  std::string boot_id;
};

class VaultLock {
 public:
  // What keeps a lock held; one implementation per kind of store.
  class Holder {
   public:
    virtual ~Holder() = default;
    // The interrupted session's work is settled: only this session's changes need
    // settling from now on.
    virtual void MarkRecovered() = 0;
    // Lets go of the lock; `clean` unless an interrupted session is still unsettled.
    virtual void Release(bool clean) = 0;
  };

  // Takes the writer lock of the local vault at `vault_root`, creating the lock file
  // if needed. A held lock is retried for up to `patience`: a daemon still exiting
  // right after `unmount` returned should not fail the `rekey` that follows. Errors:
  //   kBusy   another process holds it; the message is the sentence for the user,
  //           "the vault is in use by pid N: unmount it first";
  //   others  the lock file cannot be created or opened, or is not a plain regular
  //           file (a symlink, FIFO or hard-linked file planted under its name).
  static Result<VaultLock> Acquire(const std::string& vault_root,
                                   std::chrono::milliseconds patience = {});

  // Takes the writer lease of the vault in `store` (a store with no local path), and
  // keeps renewing it until released. `store` must reach the store directly, not
  // through write staging: a lease write must land at once. Errors:
  //   kBusy   another live holder has it: "the vault is in use by pid N: unmount it
  //           first", with " on HOST" after the pid when it runs elsewhere;
  //   others  the store's error reading or writing the lease.
  static Result<VaultLock> AcquireLease(std::shared_ptr<Store> store,
                                        std::chrono::milliseconds patience = {},
                                        LeaseOptions options = {});

  VaultLock(VaultLock&& other) noexcept;
  VaultLock& operator=(VaultLock&& other) noexcept;
  VaultLock(const VaultLock&) = delete;
  VaultLock& operator=(const VaultLock&) = delete;
  // Releases the lock, marking the release clean unless an interrupted session is
  // still unsettled (the mark stays; see above).
  ~VaultLock();

  // Set when the previous holder died holding the lock: no later than the time it took
  // the lock, by the vault store's clock, so that only objects changed since then need
  // settling.
  const std::optional<struct timespec>& interrupted_session_start() const {
    return interrupted_session_start_;
  }
  // The interrupted session's work is settled: a clean release may clear the mark.
  void MarkRecovered();

 private:
  VaultLock(std::unique_ptr<Holder> holder, std::optional<struct timespec> interrupted)
      : holder_(std::move(holder)), interrupted_session_start_(interrupted) {}
  void Release();
  std::unique_ptr<Holder> holder_;
  std::optional<struct timespec> interrupted_session_start_;
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_VAULT_LOCK_H_
