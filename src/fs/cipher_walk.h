// A walk over every object in a vault's store, by stored name alone: no key, no
// decryption, the same in the tree and the flat layout. For the whole-vault passes
// that touch each file once and need no plaintext names (rekey, crash recovery,
// measuring a restore). Passes that need names walk directories through the Vault.
#ifndef CADCANFS_SRC_FS_CIPHER_WALK_H_
#define CADCANFS_SRC_FS_CIPHER_WALK_H_

#include <functional>
#include <string>

#include "cadcanfs/common/status.h"
#include "cadcanfs/store/store.h"
#include "cadcanfs/vault/names.h"

namespace cadcanfs {

// Visits every entry below store directory `dir` that is not itself a directory cadcanfs
// made (those it descends into: encrypted and long-named directories, and the flat
// layout's directory tree), with the entry's path and the kind of its name. A visitor
// error stops the walk and is returned.
using StoredEntryVisitor =
    std::function<Status(const std::string& path, const DirEntry& entry, StoredNameKind kind)>;
Status ForEachStoredEntry(Store& store, const std::string& dir, const StoredEntryVisitor& visit);

// True for the names of objects that hold user content: encrypted and long names.
inline bool IsContentName(StoredNameKind kind) {
  return kind == StoredNameKind::kEncrypted || kind == StoredNameKind::kLongName;
}

}  // namespace cadcanfs

#endif  // CADCANFS_SRC_FS_CIPHER_WALK_H_
