// Staging for stores that cannot write in place: where the spill directory lives and
// which key seals it, for the mount command.
#ifndef CADCANFS_CLI_STAGING_SETUP_H_
#define CADCANFS_CLI_STAGING_SETUP_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cadcanfs/fs/vault.h"
#include "cadcanfs/store/staging_store.h"
#include "cadcanfs/vault/key_source.h"

namespace cadcanfs::cli {

// /var/cache/cadcanfs for root; $XDG_CACHE_HOME/cadcanfs (or ~/.cache/cadcanfs) else.
std::string DefaultCacheDir();

// Puts a CachingStore in front of a store that cannot write in place (a remote one),
// holding up to `cache_bytes` (kDefaultRemoteCacheBytes if unset; 0 turns it off).
// A local store is returned as it is: the kernel page cache serves it.
std::unique_ptr<Store> CacheReadsOf(std::unique_ptr<Store> store,
                                    std::optional<uint64_t> cache_bytes);

// Puts a StagingStore in front of `store` (at `location`), spilling into a directory
// of `cache_dir` (DefaultCacheDir() if unset) named after a hash of the location, and
// sealing with the staging key of the master key that `keys` name. A plain mount has
// no vault to keep a passphrase's salt, so it needs a key file or credential. On
// failure prints the error, sets `exit_code` and returns nullptr.
std::unique_ptr<StagingStore> StageWritesOrReport(std::unique_ptr<Store> store,
                                                  const std::string& location,
                                                  const KeyOptions& keys,
                                                  const std::optional<std::string>& cache_dir,
                                                  int& exit_code);

// Names a vault's conflict copies: encrypted, in the directory of the object they copy.
// The vault is opened on top of the staging store, so it is attached once open and
// detached before it closes; a conflict met meanwhile fails its commit, which stays
// journalled and is retried.
class VaultConflictNamer {
 public:
  void Attach(Vault* vault);
  void Detach() { Attach(nullptr); }
  // The stored path of the conflict copy of the ciphertext object at `cipher_path`.
  Result<std::string> NameFor(std::string_view cipher_path);

 private:
  std::mutex mu_;
  Vault* vault_ = nullptr;
};

// As StageWritesOrReport, for a vault: sealed with the staging key of the vault's
// `master` key, conflict copies named by `namer`.
std::unique_ptr<StagingStore> StageVaultWritesOrReport(std::unique_ptr<Store> store,
                                                       const std::string& location,
                                                       const MasterKey& master,
                                                       const std::optional<std::string>& cache_dir,
                                                       std::shared_ptr<VaultConflictNamer> namer,
                                                       int& exit_code);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_STAGING_SETUP_H_
