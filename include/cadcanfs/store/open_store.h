// OpenStore: the one place a store is chosen from what the user typed.
//
//   /srv/vault, ./vault       a local directory (LocalStore)
//   file:///srv/vault         the same, as a URI
//   onedrive:/Vaults/Office   a OneDrive folder: it needs a sign-in, so the CLI opens it
//                             (src/cli/onedrive_setup.h); here it is kUnsupported
//   remote-like:/srv/test[?latency_ms=20]
//                             a local directory behaving as OneDrive does (RemoteLikeStore:
//                             whole-object commits, its name rules, no POSIX extras), to
//                             test and demonstrate the remote path without a network
//
// Thread safety: pure functions.
#ifndef CADCANFS_STORE_OPEN_STORE_H_
#define CADCANFS_STORE_OPEN_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cadcanfs/store/store.h"

namespace cadcanfs {

// The local directory a store location names, or nullopt for a remote store (the vault
// lock and other local-only features need it). kInvalidArgument for an unknown scheme.
Result<std::optional<std::string>> LocalPathOfStore(std::string_view location);

// Opens the store at `location`. kNotFound if a local directory does not exist.
Result<std::unique_ptr<Store>> OpenStore(std::string_view location);

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_OPEN_STORE_H_
