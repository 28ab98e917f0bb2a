#include "staging_setup.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/store/caching_store.h"
#include "exit_codes.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

// Enough of the hash to keep two vaults' spills apart; the location itself (a path
// or a OneDrive folder) never appears on disk.
constexpr size_t kLocationTagBytes = 8;

// mkdir -p with mode 0700 for what it creates.
Status MakePrivateDirectories(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "cannot create the cache directory");
    }
    if (slash == std::string::npos) return Status::Ok();
  }
}

// The staging store over `store`, spilling into a directory of `cache_dir` named after
// the store's location, sealed with `master`'s staging key.
std::unique_ptr<StagingStore> OpenSpillOrReport(
    std::unique_ptr<Store> store, const std::string& location, const MasterKey& master,
    const std::optional<std::string>& cache_dir,
    std::function<Result<std::string>(std::string_view)> conflict_name, int& exit_code) {
  const std::string cache = cache_dir.value_or(DefaultCacheDir());
  if (Status s = MakePrivateDirectories(cache); !s.ok()) {
    exit_code = Fail(s, Stage::kData);
    return nullptr;
  }
  // The store, not how it is reached: options after '?' (a test latency) do not count,
  // so that a mount with other options still finds what the last one left staged.
  const Digest tag = Sha256(AsBytes(std::string_view(location).substr(0, location.find('?'))));
  const std::string spill =
      cache + "/staging-" + HexEncode(ByteSpan(tag.data(), kLocationTagBytes));
  StagingOptions options{.spill_dir = spill,
                         .key = SecretBytes::CopyOf(std::span<const uint8_t>(
                             master.staging_key().data(), master.staging_key().size())),
                         .conflict_name = std::move(conflict_name)};
  auto staging = OpenStagingStore(std::move(store), std::move(options));
  if (!staging.ok()) {
    exit_code =
        Fail(staging.status().WithContext("cannot open the staging directory"), Stage::kData);
    return nullptr;
  }
  return std::move(staging).value();
}

}  // namespace

std::string DefaultCacheDir() {
  if (geteuid() == 0) return "/var/cache/cadcanfs";
  if (const char* xdg = getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return std::string(xdg) + "/cadcanfs";
  }
  const char* home = getenv("HOME");
  return std::string(home != nullptr ? home : "/tmp") + "/.cache/cadcanfs";
}

std::unique_ptr<Store> CacheReadsOf(std::unique_ptr<Store> store,
                                    std::optional<uint64_t> cache_bytes) {
  if (store->capabilities().partial_writes) return store;
  const uint64_t budget = cache_bytes.value_or(kDefaultRemoteCacheBytes);
  if (budget == 0) return store;
  return NewCachingStore(std::move(store), CachingOptions{.budget_bytes = budget});
}

std::unique_ptr<StagingStore> StageWritesOrReport(std::unique_ptr<Store> store,
                                                  const std::string& location,
                                                  const KeyOptions& keys,
                                                  const std::optional<std::string>& cache_dir,
                                                  int& exit_code) {
  if (keys.passphrase_file) {
    exit_code = Fail(Status::Error(Code::kInvalidArgument,
                                   "staging writes for this store needs --key-file: a plain "
                                   "mount has no vault to keep a passphrase's salt"),
                     Stage::kKey);
    return nullptr;
  }
  auto key = LoadKeyForNewVault(keys);
  if (!key.ok()) {
    exit_code = Fail(key.status(), Stage::kKey);
    return nullptr;
  }
  return OpenSpillOrReport(std::move(store), location, key->master, cache_dir, {}, exit_code);
}

void VaultConflictNamer::Attach(Vault* vault) {
  std::lock_guard lock(mu_);
  vault_ = vault;
}

Result<std::string> VaultConflictNamer::NameFor(std::string_view cipher_path) {
  std::lock_guard lock(mu_);
  if (vault_ == nullptr) {
    return Status::Error(Code::kRetryLater, "the vault is not open to name a conflict copy");
  }
  const std::string parent(StoreParent(cipher_path));
  CADCANFS_ASSIGN_OR_RETURN(DirId dir, vault_->ReadDirId(parent));
  CADCANFS_ASSIGN_OR_RETURN(std::string name,
                            vault_->DecryptStoredName(parent, dir, StoreBaseName(cipher_path)));
  CADCANFS_ASSIGN_OR_RETURN(EncryptedName conflict,
                            vault_->EncryptName(dir, PlainConflictName(name)));
  CADCANFS_RETURN_IF_ERROR(vault_->PrepareEntry(parent, conflict));
  return JoinStorePath(parent, conflict.stored);
}

std::unique_ptr<StagingStore> StageVaultWritesOrReport(std::unique_ptr<Store> store,
                                                       const std::string& location,
                                                       const MasterKey& master,
                                                       const std::optional<std::string>& cache_dir,
                                                       std::shared_ptr<VaultConflictNamer> namer,
                                                       int& exit_code) {
  auto conflict_name = [namer = std::move(namer)](std::string_view cipher_path) {
    return namer->NameFor(cipher_path);
  };
  return OpenSpillOrReport(std::move(store), location, master, cache_dir, std::move(conflict_name),
                           exit_code);
}

}  // namespace cadcanfs::cli
