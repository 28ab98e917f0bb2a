// MemoryStore: a Store held entirely in memory, like LevelDB's memenv, so that the
// vault and the filesystem core can be unit-tested fast and without a disk.
//
// It has every capability LocalStore has and answers every call with the same result
// and the same Code and sys_errno that LocalStore gives on Linux (ext4), so that the
// layers above behave identically on both:
//   - objects are inodes: hard links share one, an open StoreFile keeps its object
//     alive after the last name is gone (nlink 0), and ObjectIds are never reused;
//   - renames follow renameat2(2), creations honour the process umask and set-group-ID
//     directories, timestamps follow Linux (relatime included), and the privileged
//     operations (chown, device nodes, trusted.* and security.* xattrs) need root;
//   - file content is sparse, so holes and large offsets cost nothing.
// It does not model read/write/search permission bits (every caller may read, write
// and search, as root may; LocalStore gives EACCES to others), disk quotas, ext4's
// per-inode xattr space, POSIX ACLs ("system.*" xattrs are unsupported), device
// drivers (a block device never opens, a character device always does) or
// durability (Sync and SyncDir do nothing).
//
// Thread safety: safe for concurrent use, as the Store interface requires.
#ifndef CADCANFS_STORE_MEMORY_STORE_H_
#define CADCANFS_STORE_MEMORY_STORE_H_

#include <memory>

#include "cadcanfs/store/store.h"

namespace cadcanfs {

// An empty store: a root directory and nothing else.
std::unique_ptr<Store> NewMemoryStore();

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_MEMORY_STORE_H_
