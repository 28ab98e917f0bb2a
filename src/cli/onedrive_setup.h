// Opening a onedrive: location: the stored sign-in (decrypted with the key from
// KEYOPTS), one HTTP client, pacer and Graph client per drive, and the OneDrive store
// over the folder. The store returned owns all of them.
#ifndef CADCANFS_CLI_ONEDRIVE_SETUP_H_
#define CADCANFS_CLI_ONEDRIVE_SETUP_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "args.h"
#include "cadcanfs/store/store.h"
#include "cadcanfs/vault/key_source.h"

namespace cadcanfs::cli {

// How to reach OneDrive: from --token-file, --graph-url and --drive (or the config
// file's keys of the same names); with --no-token-store, from a device-code sign-in
// at start (--login-url, --tenant, --client-id) whose tokens stay in memory.
struct OneDriveAccess {
  std::optional<std::string> token_file;
  bool no_token_store = false;
  std::optional<std::string> login_url, tenant, client_id;  // for --no-token-store
  std::string graph_url;                                    // empty: the Graph service
  std::string drive;  // empty or "me": the signed-in user's drive; else a drive id
  KeyOptions keys;    // decrypt the token store
};

inline constexpr std::string_view kOneDriveScheme = "onedrive:";

bool IsOneDriveLocation(std::string_view location);

// The access flags of `args` (their values are checked when the store is opened).
OneDriveAccess OneDriveAccessFrom(const Args& args);

// Opens the folder `location` ("onedrive:/Some/Folder") names, creating it and its
// missing parents first with `create_folder` (init). On failure prints one sentence,
// sets `exit_code` and returns nullptr: a usage error for a missing --token-file or a
// refused URL, exit_code::kLoginFailed / kTokenStoreUnreadable for the sign-in,
// exit_code::kNoVault for a folder that does not exist.
std::unique_ptr<Store> OpenOneDriveOrReport(std::string_view location, const OneDriveAccess& access,
                                            int& exit_code, bool create_folder = false);

}  // namespace cadcanfs::cli

#endif  // CADCANFS_CLI_ONEDRIVE_SETUP_H_
