// cadcanfs login / logout: the OneDrive sign-in and its encrypted token store.
#ifndef CADCANFS_CLI_LOGIN_COMMANDS_H_
#define CADCANFS_CLI_LOGIN_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "cadcanfs/graph/token_store.h"
#include "cadcanfs/vault/key_source.h"

namespace cadcanfs::cli {

int RunLogin(const std::vector<std::string>& argv);
int RunLogout(const std::vector<std::string>& argv);

// Reads the stored sign-in at `token_file` with the key from `keys` (for the commands
// that reach OneDrive). On failure prints the one-sentence error, sets `exit_code`
// (exit_code::kTokenStoreUnreadable for a wrong key or a damaged file) and returns
// nullopt.
// The token store's key from KEYOPTS (a key file: a passphrase has no salt before the
// vault is reached). On failure prints the error, sets `exit_code`, returns nullopt.
std::optional<SecretBytes> TokenStoreKeyOrReport(const KeyOptions& keys, int& exit_code);

std::optional<graph::StoredLogin> LoadStoredLoginOrReport(const std::string& token_file,
                                                          const KeyOptions& keys, int& exit_code);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_LOGIN_COMMANDS_H_
