// Shared CLI plumbing: one-sentence errors with stable exit codes, and opening a
// vault from command-line key options.
#ifndef CADCANFS_CLI_SUPPORT_H_
#define CADCANFS_CLI_SUPPORT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "cadcanfs/common/status.h"
#include "cadcanfs/fs/vault.h"
#include "cadcanfs/fs/vault_lock.h"
#include "cadcanfs/store/staging_store.h"
#include "cadcanfs/vault/key_source.h"
#include "onedrive_setup.h"
#include "staging_setup.h"

namespace cadcanfs::cli {

// Where a failure happened decides its exit code (a kPermissionDenied while loading a
// key is a key problem; while writing output it is an I/O error).
enum class Stage { kVault, kKey, kConfig, kData };

// Prints "cadcanfs: <sentence>" to stderr and returns the exit code for `status`.
int Fail(const Status& status, Stage stage);
int UsageError(const std::string& message);
// `path` made absolute against the working directory: a daemon leaves it (chdir "/"),
// and files it writes later (a rotated token, the audit log) must land where meant.
std::string AbsolutePath(const std::string& path);

KeyOptions KeyOptionsFrom(const Args& args, const std::string& key_flag = "key-file",
                          const std::string& passphrase_flag = "passphrase-file");

// A store as a command names it: a path or URI (cadcanfs/store/open_store.h), and the
// sign-in flags that reach it when it is a onedrive: folder.
struct StoreLocation {
  std::string location;
  OneDriveAccess onedrive;
  bool create_folder = false;  // a onedrive: folder is made if missing (init)
};

// `location` with the OneDrive flags of `args` (kOneDriveFlags).
StoreLocation StoreLocationFrom(const Args& args, const std::string& location);

// Opens the store at `path`, reads the config and unlocks it with the key options.
// On failure prints the error and sets `exit_code`.
//
// Commands that change the vault pass `lock`: the vault's writer lock is taken into it
// once `path` is known to be a vault (so a mistyped path gets no lock file), before
// the config is read for use. Another holder means exit_code::kVaultInUse and
// "the vault is in use by pid N: unmount it first". Keep `*lock` alive as long as
// the vault is changed. `read_only_use` as for LockVaultOrReport. `wrap_store`, if set,
// puts a layer between the store and the vault once the key is known (the mount's
// write staging); it returns nullptr after reporting a failure into `exit_code`.
using StoreWrapper = std::function<std::unique_ptr<Store>(std::unique_ptr<Store> store,
                                                          const LoadedKey& key, int& exit_code)>;
std::unique_ptr<Vault> OpenVaultOrReport(const StoreLocation& where, const KeyOptions& keys,
                                         int& exit_code, std::optional<VaultLock>* lock = nullptr,
                                         bool read_only_use = false,
                                         const StoreWrapper& wrap_store = {});

// Opens the store `where` names. On failure prints the error, sets `exit_code` and
// returns nullptr.
std::unique_ptr<Store> OpenStoreOrReport(const StoreLocation& where, int& exit_code);

// Takes the writer lock of the vault at `location` into `lock`: a flock in a local
// vault, a lease kept in `store` (the vault's store, unstaged) otherwise
// (cadcanfs/fs/vault_lock.h). On failure prints the error, sets `exit_code` and
// returns false. With `read_only_use`, a vault on a read-only filesystem is accepted
// without a lock: no writer can exist there.
bool LockVaultOrReport(const std::string& location, const std::shared_ptr<Store>& store,
                       std::optional<VaultLock>& lock, int& exit_code, bool read_only_use = false);

// A unique_ptr<Store> that shares `store`: the vault and the lease of a remote vault
// use one store, so one sign-in and one connection.
std::unique_ptr<Store> ShareStore(std::shared_ptr<Store> store);

// The staged writes of a command that writes a vault (encrypt) on a store that cannot
// write in place: they are staged as a mount's are, in the default cache directory,
// and committed before the command ends.
class CommandStaging {
 public:
  CommandStaging() = default;
  CommandStaging(const CommandStaging&) = delete;
  CommandStaging& operator=(const CommandStaging&) = delete;

  // For OpenVaultOrReport: stages a store that cannot write in place.
  StoreWrapper Wrapper(const std::string& location);
  // Once the vault is open: conflict copies get encrypted names in it.
  void Attach(Vault& vault) { namer_->Attach(&vault); }
  // Waits until every staged write is in the store, saying every 10 s how much is
  // left, and detaches the vault. Returns exit_code::kOk, or reports why not (a store
  // that has refused every attempt for two minutes) and returns an error code; what is
  // left stays journalled and is committed by the next mount or writing command.
  int FinishOrReport();

 private:
  StagingStore* staging_ = nullptr;
  const std::shared_ptr<VaultConflictNamer> namer_ = std::make_shared<VaultConflictNamer>();
};

// Key options every keyed command accepts.
inline const std::set<std::string> kKeyFlags = {"key-file", "passphrase-file"};
// The sign-in flags every command that opens a store accepts (docs/cli.md, OneDrive).
inline const std::set<std::string> kOneDriveFlags = {"token-file", "graph-url", "drive",
                                                     "login-url",  "tenant",    "client-id"};
inline const std::set<std::string> kOneDriveSwitches = {"no-token-store"};

std::set<std::string> WithKeyFlags(std::set<std::string> extra);
// Key options and the OneDrive flags, with `extra`.
std::set<std::string> WithStoreFlags(std::set<std::string> extra);
// The OneDrive switches, with `extra`.
std::set<std::string> WithStoreSwitches(std::set<std::string> extra);

int RunKeygen(const std::vector<std::string>& argv);
int RunInit(const std::vector<std::string>& argv);
int RunInfo(const std::vector<std::string>& argv);
int RunEncrypt(const std::vector<std::string>& argv);
int RunDecrypt(const std::vector<std::string>& argv);
int RunMap(const std::vector<std::string>& argv);
int RunFsck(const std::vector<std::string>& argv);
int RunRekey(const std::vector<std::string>& argv);
int RunMount(const std::vector<std::string>& argv);
int RunUnmount(const std::vector<std::string>& argv);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_SUPPORT_H_
