// LocalStore: a Store over a directory on a local or network filesystem.
//
// Every path is resolved below the root with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), so a symlink planted in the vault cannot redirect an
// operation outside it (the gocryptfs #165/#177 class of races).
//
// Thread safety: safe for concurrent use.
#ifndef CADCANFS_STORE_LOCAL_STORE_H_
#define CADCANFS_STORE_LOCAL_STORE_H_

#include <memory>
#include <string>

#include "cadcanfs/store/store.h"

namespace cadcanfs {

// Opens `root`, which must be an existing directory.
Result<std::unique_ptr<Store>> OpenLocalStore(const std::string& root);

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_LOCAL_STORE_H_
