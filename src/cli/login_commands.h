// cadcanfs login / logout: the OneDrive sign-in and its encrypted token store.
#ifndef CADCANFS_CLI_LOGIN_COMMANDS_H_
#define CADCANFS_CLI_LOGIN_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "cadcanfs/graph/auth.h"
#include "cadcanfs/graph/token_store.h"
#include "cadcanfs/vault/key_source.h"

namespace cadcanfs::cli {

int RunLogin(const std::vector<std::string>& argv);
int RunLogout(const std::vector<std::string>& argv);

// The token store's key from KEYOPTS (a key file: a passphrase has no salt before the
// vault is reached). On failure prints the error, sets `exit_code`, returns nullopt.
std::optional<SecretBytes> TokenStoreKeyOrReport(const KeyOptions& keys, int& exit_code);

// Reads the stored sign-in at `token_file` with the key from `keys` (for the commands
// that reach OneDrive). On failure prints the one-sentence error, sets `exit_code`
// (exit_code::kTokenStoreUnreadable for a wrong key or a damaged file) and returns
// nullopt.
std::optional<graph::StoredLogin> LoadStoredLoginOrReport(const std::string& token_file,
                                                          const KeyOptions& keys, int& exit_code);

// Runs the device-code sign-in of `auth`, showing the code on stdout. Returns
// exit_code::kOk, or prints why it failed and returns exit_code::kLoginFailed.
int SignInWithDeviceCode(graph::Authenticator& auth);

// The login settings of --login-url, --tenant and --client-id, for a drive (`drive`:
// "me", empty or a drive id). A usage error's sentence in `error` for a refused URL.
graph::LoginSettings LoginSettingsFrom(const std::optional<std::string>& login_url,
                                       const std::optional<std::string>& tenant,
                                       const std::optional<std::string>& client_id,
                                       const std::string& drive, std::string& error);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_LOGIN_COMMANDS_H_
