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
#include "cadcanfs/vault/key_source.h"
#include "onedrive_setup.h"

namespace cadcanfs::cli {

// Where a failure happened decides its exit code (a kPermissionDenied while loading a
// key is a key problem; while writing output it is an I/O error).
enum class Stage { kVault, kKey, kConfig, kData };

// Prints "cadcanfs: <sentence>" to stderr and returns the exit code for `status`.
int Fail(const Status& status, Stage stage);
int UsageError(const std::string& message);

KeyOptions KeyOptionsFrom(const Args& args, const std::string& key_flag = "key-file",
                          const std::string& passphrase_flag = "passphrase-file");

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
std::unique_ptr<Vault> OpenVaultOrReport(const std::string& path, const KeyOptions& keys,
                                         int& exit_code, std::optional<VaultLock>* lock = nullptr,
                                         bool read_only_use = false,
                                         const StoreWrapper& wrap_store = {});

// Opens the store at `location` (a path or URI, see cadcanfs/store/open_store.h; a
// onedrive: folder through `onedrive`, the command's sign-in flags). On failure prints
// the error, sets `exit_code` and returns nullptr.
std::unique_ptr<Store> OpenStoreOrReport(const std::string& location, int& exit_code,
                                         const OneDriveAccess* onedrive = nullptr);

// Takes the writer lock of the vault at `path` into `lock`: a flock in a local vault, a
// lease in the store otherwise (cadcanfs/fs/vault_lock.h). On failure prints the
// error, sets `exit_code` and returns false. With `read_only_use`, a vault on a
// read-only filesystem is accepted without a lock: no writer can exist there.
bool LockVaultOrReport(const std::string& path, std::optional<VaultLock>& lock, int& exit_code,
                       bool read_only_use = false);

// Key options every keyed command accepts.
inline const std::set<std::string> kKeyFlags = {"key-file", "passphrase-file"};

std::set<std::string> WithKeyFlags(std::set<std::string> extra);

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
