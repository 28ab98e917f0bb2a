// Offline vault operations used by the CLI: import a plaintext tree, export
// (restore) plaintext, check every byte (fsck), and rotate the master key.
//
// Thread safety: each function runs on one thread; do not run two against one vault.
#ifndef CADCANFS_FS_OFFLINE_H_
#define CADCANFS_FS_OFFLINE_H_

#include <functional>
#include <string>
#include <vector>

#include "cadcanfs/common/status.h"
#include "cadcanfs/fs/vault.h"
#include "cadcanfs/vault/key_source.h"

namespace cadcanfs {

struct TransferStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t bytes = 0;
};

// Copies the local plaintext path `source` (file, directory or symlink) into the
// vault directory `plain_dest` (created if missing) under its own base name, or, for
// a directory, copies its contents when `contents_only` is set.
Result<TransferStats> ImportTree(Vault& vault, const std::string& source,
                                 std::string_view plain_dest, bool contents_only);

// Writes plaintext for `plain_path` ("" for the whole vault) below local `out_dir`,
// keeping the vault-relative structure. Stops at the first damaged item.
Result<TransferStats> ExportTree(Vault& vault, std::string_view plain_path,
                                 const std::string& out_dir);

struct FsckProblem {
  std::string cipher_path;
  std::string plain_path;  // empty when the name does not decrypt
  Status status;
};

struct FsckReport {
  uint64_t files_checked = 0;
  uint64_t directories_checked = 0;
  std::vector<FsckProblem> problems;
};

// Authenticates every directory id, name, sidecar, header, block and symlink.
FsckReport CheckVault(Vault& vault);

struct RekeyHooks {
  // Called in pass A after each file's new key slot is durable (old slots are still there);
  // tests use it to simulate a crash at the worst moment.
  std::function<void(uint64_t files_done)> after_new_slot;
};

struct RekeyStats {
  uint64_t files_rewrapped = 0;
  uint64_t files_already_done = 0;
  bool already_complete = false;
};

// Rewraps every file key and the name key from `old_keys` to `new_keys`. Crash-safe
// and restartable; see docs/vault-format.md "Key rotation".
Result<RekeyStats> RotateMasterKey(Store& store, const KeyOptions& old_keys,
                                   const KeyOptions& new_keys, const RekeyHooks& hooks = {});

}  // namespace cadcanfs

#endif  // CADCANFS_FS_OFFLINE_H_
