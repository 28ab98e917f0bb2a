#include "support.h"

#include <cerrno>
#include <chrono>
#include <iostream>

#include "cadcanfs/common/log.h"
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

std::unique_ptr<Store> OpenStoreOrReport(const std::string& location, int& exit_code,
                                         const OneDriveAccess* onedrive) {
  if (onedrive != nullptr && IsOneDriveLocation(location)) {
    return OpenOneDriveOrReport(location, *onedrive, exit_code);
  }
  auto store = OpenStore(location);
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

// A local vault is locked with flock; a store with no local path holds a lease, taken
// through a store of its own (the vault's store may stage writes, a lease may not wait).
Result<VaultLock> AcquireVaultLock(const std::string& location) {
  CADCANFS_ASSIGN_OR_RETURN(std::optional<std::string> local, LocalPathOfStore(location));
  if (local) return VaultLock::Acquire(*local, kLockPatience);
  CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenStore(location));
  return VaultLock::AcquireLease(std::shared_ptr<Store>(std::move(store)), kLockPatience);
}

}  // namespace

bool LockVaultOrReport(const std::string& location, std::optional<VaultLock>& lock, int& exit_code,
                       bool read_only_use) {
  auto acquired = AcquireVaultLock(location);
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

std::unique_ptr<Vault> OpenVaultOrReport(const std::string& path, const KeyOptions& keys,
                                         int& exit_code, std::optional<VaultLock>* lock,
                                         bool read_only_use, const StoreWrapper& wrap_store) {
  std::unique_ptr<Store> store = OpenStoreOrReport(path, exit_code);
  if (!store) return nullptr;
  auto config = Vault::ReadConfig(*store);
  if (!config.ok()) {
    exit_code = Fail(config.status(), Stage::kVault);
    return nullptr;
  }
  if (lock != nullptr) {
    if (!LockVaultOrReport(path, *lock, exit_code, read_only_use)) return nullptr;
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
