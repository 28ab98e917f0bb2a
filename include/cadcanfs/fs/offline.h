// Offline vault operations used by the CLI: import a plaintext tree, export
// (restore) plaintext, check every byte (fsck), and rotate the master key.
//
// Thread safety: each function runs on one thread; do not run two against one vault.
//
// Progress: the long operations take an optional ProgressObserver, told counts only
// (never a name). The totals to show them against come from the Measure* functions, a
// walk of the tree that reads no content.
#ifndef CADCANFS_FS_OFFLINE_H_
#define CADCANFS_FS_OFFLINE_H_

#include <functional>
#include <string>
#include <vector>

#include "cadcanfs/common/status.h"
#include "cadcanfs/fs/vault.h"
#include "cadcanfs/vault/key_source.h"

namespace cadcanfs {

// Observes an offline operation as it goes, for a progress display. It receives counts
// only, never names or paths, on the operation's own thread. Every method is a no-op
// by default.
class ProgressObserver {
 public:
  virtual ~ProgressObserver() = default;
  // A pass over the files starts (rekey makes two or three); counts restart from zero.
  virtual void OnPass(unsigned /*pass*/, unsigned /*passes*/) {}
  // `bytes` more plaintext bytes were copied or checked.
  virtual void OnBytes(uint64_t /*bytes*/) {}
  // One more regular file is done.
  virtual void OnFileDone() {}
};

// The work ahead of an operation: regular files and their plaintext bytes.
struct WorkTotals {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

// Regular files below the local plaintext path `source` (itself if a file), by lstat.
// Entries that cannot be read are left out: totals are only for display.
WorkTotals MeasureSourceTree(const std::string& source);

// Regular files below the vault path `plain_path` ("" for the whole vault), with
// plaintext sizes computed from ciphertext sizes. Lists directories; reads no file.
Result<WorkTotals> MeasureVaultTree(Vault& vault, std::string_view plain_path);

// Regular files (ciphertext objects with a header) in the whole store; bytes stay 0.
Result<WorkTotals> CountCipherFiles(Store& store);

struct TransferStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t special_files = 0;  // FIFOs, sockets and device nodes
  uint64_t bytes = 0;
  // Entries left out: of a type that cannot be copied (or is unknown), or device nodes
  // without the privilege to create them. Non-zero means the copy is incomplete.
  uint64_t skipped = 0;
};

// Copies the local plaintext path `source` (file, directory, symlink, FIFO, socket or
// device node) into the vault directory `plain_dest` (created if missing) under its own
// base name, or, for a directory, copies its contents when `contents_only` is set.
Result<TransferStats> ImportTree(Vault& vault, const std::string& source,
                                 std::string_view plain_dest, bool contents_only,
                                 ProgressObserver* progress = nullptr);

// Writes plaintext for `plain_path` ("" for the whole vault) below local `out_dir`,
// keeping the vault-relative structure. Stops at the first damaged item.
//
// Everything is created relative to directory descriptors opened below `out_dir` (the
// only path that is followed), never through a symlink: whatever the vault holds, and
// whatever already is in `out_dir`, nothing is written outside it. An existing
// non-directory where a directory belongs is an error.
Result<TransferStats> ExportTree(Vault& vault, std::string_view plain_path,
                                 const std::string& out_dir, ProgressObserver* progress = nullptr);

struct FsckProblem {
  std::string cipher_path;
  std::string plain_path;  // empty when the name does not decrypt
  std::string file_id;     // "fid:<hex>" of a damaged file whose header opens, else empty
  Status status;
};

struct FsckReport {
  uint64_t files_checked = 0;
  uint64_t directories_checked = 0;
  std::vector<FsckProblem> problems;
};

// Authenticates every directory id, name, sidecar, header, block and symlink.
FsckReport CheckVault(Vault& vault, ProgressObserver* progress = nullptr);

struct RekeyHooks {
  // Called in pass A after each file's new key slot is durable (old slots are still there);
  // tests use it to simulate a crash at the worst moment.
  std::function<void(uint64_t files_done)> after_new_slot;
  // Called in pass B after each file's old slot was zeroed and synced.
  std::function<void(uint64_t files_done)> after_old_slot_cleared;
  // Told of each pass and each file visited in it (not owned; may be null).
  ProgressObserver* progress = nullptr;
};

struct RekeyStats {
  uint64_t files_rewrapped = 0;
  uint64_t files_already_done = 0;
  // Entries that carry no key and are rightly left as they are: symlinks (their
  // targets are sealed under the name key) and FIFOs, sockets and device nodes.
  uint64_t symlinks = 0;
  uint64_t special_nodes = 0;
  // Entries whose names are not cadcanfs names (fsck lists them); never rewrapped.
  uint64_t foreign_entries = 0;
  bool already_complete = false;
};

// Rewraps every file key, and the name key in the config (the name key itself is
// kept), from `old_keys` to `new_keys`. Crash-safe and restartable; see
// docs/vault-format.md "Key rotation". The caller must hold the vault's writer lock
// (cadcanfs/fs/vault_lock.h).
//
// A rerun with a different new key after an interrupted run drops the interrupted
// run's key from the config and from every header, once it has checked that the old
// key still opens every file. Errors besides those of the store and the keys:
//   kUnsupported  an entry's type could not be told (the store reported kOther), so
//                 it may be a file still under the old key: nothing was removed, the
//                 old key is still needed, and the message counts the entries;
//   kWrongKey     the old key does not open every file (an interrupted rotation to
//                 another key got past its pass A: finish that one first).
Result<RekeyStats> RotateMasterKey(Store& store, const KeyOptions& old_keys,
                                   const KeyOptions& new_keys, const RekeyHooks& hooks = {});

}  // namespace cadcanfs

#endif  // CADCANFS_FS_OFFLINE_H_
