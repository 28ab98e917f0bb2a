#include "support.h"

#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <iostream>

#include "cadcanfs/common/log.h"
#include "cadcanfs/store/forwarding_store.h"
#include "cadcanfs/store/open_store.h"
#include "exit_codes.h"

namespace cadcanfs::cli {

namespace {

int ExitCodeFor(const Status& status, Stage stage) {
  switch (status.code()) {
    case Code::kWrongKey:
      return exit_code::kWrongKey;
    case Code::kNotEmpty:
      return exit_code::kNotEmpty;
    case Code::kAlreadyExists:
      return exit_code::kExists;
    default:
      break;
  }
  switch (stage) {
    case Stage::kVault:
      return status.code() == Code::kNotFound || status.code() == Code::kNotADirectory
                 ? exit_code::kNoVault
             : status.code() == Code::kCorrupt || status.code() == Code::kUnsupported
                 ? exit_code::kBadConfig
                 : exit_code::kIoError;
    case Stage::kKey:
      return exit_code::kKeyProblem;
    case Stage::kConfig:
      return exit_code::kBadConfig;
    case Stage::kData:
      if (status.code() == Code::kNotFound) return exit_code::kNotFound;
      if (status.code() == Code::kInternal) return exit_code::kInternal;
      return exit_code::kIoError;
  }
  return exit_code::kInternal;
}

}  // namespace

int Fail(const Status& status, Stage stage) {
  std::cerr << "cadcanfs: " << status.message() << "\n";
  return ExitCodeFor(status, stage);
}

std::string AbsolutePath(const std::string& path) {
  char cwd[PATH_MAX];
  if (path.empty() || path[0] == '/' || getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

int UsageError(const std::string& message) {
  std::cerr << "cadcanfs: " << message << " (see cadcanfs --help)\n";
  return exit_code::kUsage;
}

KeyOptions KeyOptionsFrom(const Args& args, const std::string& key_flag,
                          const std::string& passphrase_flag) {
  return KeyOptions{args.Value(key_flag), args.Value(passphrase_flag)};
}

std::set<std::string> WithKeyFlags(std::set<std::string> extra) {
  extra.insert(kKeyFlags.begin(), kKeyFlags.end());
  return extra;
}

// How long a writer waits for the lock's holder to go away: long enough for a daemon
// to finish exiting after `unmount` returned (so `unmount && rekey` works), short
// enough that a refusal on a mounted vault still comes at once to a person.
constexpr std::chrono::milliseconds kLockPatience{2000};

StoreLocation StoreLocationFrom(const Args& args, const std::string& location) {
  return StoreLocation{location, OneDriveAccessFrom(args)};
}

std::set<std::string> WithStoreFlags(std::set<std::string> extra) {
  extra.insert(kOneDriveFlags.begin(), kOneDriveFlags.end());
  return WithKeyFlags(std::move(extra));
}

std::set<std::string> WithStoreSwitches(std::set<std::string> extra) {
  extra.insert(kOneDriveSwitches.begin(), kOneDriveSwitches.end());
  return extra;
}

std::unique_ptr<Store> OpenStoreOrReport(const StoreLocation& where, int& exit_code) {
  if (IsOneDriveLocation(where.location)) {
    return OpenOneDriveOrReport(where.location, where.onedrive, exit_code, where.create_folder);
  }
  auto store = OpenStore(where.location);
  if (store.ok()) return std::move(store).value();
  switch (store.status().code()) {
    case Code::kInvalidArgument:  // a location that names no store we know
      exit_code = UsageError(store.status().message());
      break;
    case Code::kNotFound:
      exit_code = Fail(
          Status::Error(Code::kNotFound, "the vault directory does not exist or cannot be opened"),
          Stage::kVault);
      break;
    default:  // a kind of store this build cannot open: there is no vault for it here
      std::cerr << "cadcanfs: " << store.status().message() << "\n";
      exit_code = exit_code::kNoVault;
      break;
  }
  return nullptr;
}

namespace {

// A view that keeps a shared store alive.
class SharedStoreView final : public ForwardingStore {
 public:
  explicit SharedStoreView(std::shared_ptr<Store> store)
      : ForwardingStore(*store), store_(std::move(store)) {}

 private:
  const std::shared_ptr<Store> store_;
};

// A local vault is locked with flock; a store with no local path holds a lease in the
// vault's own store, below any staging (a lease may not wait in a queue).
Result<VaultLock> AcquireVaultLock(const std::string& location,
                                   const std::shared_ptr<Store>& store) {
  CADCANFS_ASSIGN_OR_RETURN(std::optional<std::string> local, LocalPathOfStore(location));
  if (local) return VaultLock::Acquire(*local, kLockPatience);
  return VaultLock::AcquireLease(store, kLockPatience);
}

}  // namespace

std::unique_ptr<Store> ShareStore(std::shared_ptr<Store> store) {
  return std::make_unique<SharedStoreView>(std::move(store));
}

bool LockVaultOrReport(const std::string& location, const std::shared_ptr<Store>& store,
                       std::optional<VaultLock>& lock, int& exit_code, bool read_only_use) {
  auto acquired = AcquireVaultLock(location, store);
  if (acquired.ok()) {
    lock.emplace(std::move(acquired).value());
    return true;
  }
  const Status& s = acquired.status();
  if (read_only_use && s.sys_errno() == EROFS) return true;
  std::cerr << "cadcanfs: " << s.message() << "\n";
  exit_code = s.code() == Code::kBusy ? exit_code::kVaultInUse : exit_code::kIoError;
  return false;
}

StoreWrapper CommandStaging::Wrapper(const std::string& location) {
  return [this, location](std::unique_ptr<Store> store, const LoadedKey& key,
                          int& exit_code) -> std::unique_ptr<Store> {
    if (store->capabilities().partial_writes) return store;
    std::unique_ptr<StagingStore> staged = StageVaultWritesOrReport(
        std::move(store), location, key.master, std::nullopt, namer_, exit_code);
    staging_ = staged.get();
    return staged;
  };
}

int CommandStaging::FinishOrReport() {
  if (staging_ == nullptr) return exit_code::kOk;
  // A store that keeps refusing (a revoked sign-in, a full drive) is given up on after
  // this long without progress: the journal keeps the writes for the next mount.
  constexpr std::chrono::minutes kPatience{2};
  auto last_report = std::chrono::steady_clock::now();
  auto last_progress = last_report;
  uint64_t pending = UINT64_MAX;
  while (uint64_t left = staging_->Drain(std::chrono::seconds(1))) {
    const auto now = std::chrono::steady_clock::now();
    const StagingStatus status = staging_->status();
    if (left < pending) {
      pending = left;
      last_progress = now;
    } else if (now - last_progress > kPatience && !status.last_error.empty()) {
      namer_->Detach();
      std::cerr << "cadcanfs: " << left << " writes could not be committed to the store ("
                << status.last_error << "); they stay journalled and the next mount commits them\n";
      return exit_code::kIoError;
    }
    if (now - last_report < std::chrono::seconds(10)) continue;
    last_report = now;
    std::cerr << "cadcanfs: waiting for " << left << " uploads (" << status.pending_bytes
              << " bytes)"
              << (status.last_error.empty() ? "" : "; last error: " + status.last_error) << "\n";
  }
  namer_->Detach();
  return exit_code::kOk;
}

// A writer that died holding the lock may have left resizes half done; they are
// settled before anything else reads the vault through this process.
bool SettleAfterCrashOrReport(Vault& vault, VaultLock& lock, int& exit_code) {
  const std::optional<struct timespec>& since = lock.interrupted_session_start();
  if (!since) return true;
  auto settled = vault.SettleInterruptedWrites(*since);
  if (!settled.ok()) {
    exit_code =
        Fail(settled.status().WithContext("cannot settle the writes an earlier crash interrupted"),
             Stage::kData);
    return false;
  }
  spdlog::warn("recovered after an unclean stop: {} interrupted writes settled", *settled);
  lock.MarkRecovered();
  return true;
}

std::unique_ptr<Vault> OpenVaultOrReport(const StoreLocation& where, const KeyOptions& keys,
                                         int& exit_code, std::optional<VaultLock>* lock,
                                         bool read_only_use, const StoreWrapper& wrap_store) {
  std::shared_ptr<Store> shared = OpenStoreOrReport(where, exit_code);
  if (!shared) return nullptr;
  std::unique_ptr<Store> store = ShareStore(shared);
  auto config = Vault::ReadConfig(*store);
  if (!config.ok()) {
    exit_code = Fail(config.status(), Stage::kVault);
    return nullptr;
  }
  if (lock != nullptr) {
    if (!LockVaultOrReport(where.location, shared, *lock, exit_code, read_only_use)) {
      return nullptr;
    }
    // The previous holder (a rekey) may have changed the config before it let go.
    config = Vault::ReadConfig(*store);
    if (!config.ok()) {
      exit_code = Fail(config.status(), Stage::kVault);
      return nullptr;
    }
  }
  auto key = LoadKeyForVault(keys, *config);
  if (!key.ok()) {
    exit_code = Fail(key.status(), Stage::kKey);
    return nullptr;
  }
  if (wrap_store) {
    store = wrap_store(std::move(store), *key, exit_code);
    if (!store) return nullptr;
  }
  auto vault = Vault::Open(std::move(store), std::move(key).value());
  if (!vault.ok()) {
    exit_code = Fail(vault.status(), Stage::kConfig);
    return nullptr;
  }
  // A writer brings an older vault to the current format first.
  if (lock != nullptr && !read_only_use) {
    if (Status s = (*vault)->UpgradeFormat(); !s.ok()) {
      exit_code = Fail(s.WithContext("cannot upgrade the vault format"), Stage::kData);
      return nullptr;
    }
    if (!SettleAfterCrashOrReport(**vault, **lock, exit_code)) return nullptr;
  }
  return std::move(vault).value();
}

}  // namespace cadcanfs::cli
