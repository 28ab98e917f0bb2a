// InodeTable: the mounted filesystem's inodes, as libfuse's passthrough_hp keeps them,
// with three changes: numbers come from a 64-bit counter and are never reused; a
// separate index maps store object ids to numbers, so hard links share one inode;
// and an unknown number is reported, never dereferenced.
//
// An inode remembers the names it was reached by (parent inode + stored ciphertext
// name), because stores are path-addressed; the first link is the one paths use. Each
// link also keeps its plaintext name, from which the access policy reads the path.
//
// An inode the kernel forgot is retired rather than dropped, while its object still has
// a name: file handles (name_to_handle_at, an NFS re-export) carry the inode number, and
// the kernel resolves one it no longer caches by asking for "." of that number. The
// most recently retired kMaxRetired inodes stay resolvable; older ones are dropped.
//
// Thread safety: InodeTable methods may be called concurrently. Lock order:
// FileSystem's namespace lock, then InodeTable::mu_, then Inode::mu.
#ifndef CADCANFS_FS_INODE_TABLE_H_
#define CADCANFS_FS_INODE_TABLE_H_

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cadcanfs/fs/format.h"
#include "cadcanfs/store/store.h"
#include "cadcanfs/vault/names.h"

namespace cadcanfs {

using InodeNumber = uint64_t;
inline constexpr InodeNumber kRootInode = 1;  // FUSE_ROOT_ID

struct Inode;

struct InodeLink {
  std::shared_ptr<Inode> parent;
  std::string stored;  // the entry's ciphertext name in the parent's directory
  // The entry's plaintext name, as the kernel gave it at lookup or create: the access
  // policy decides on plaintext paths, which the store cannot give back cheaply.
  std::string plain;
};

struct Inode {
  Inode(InodeNumber n, ObjectType t, ObjectId k) : number(n), type(t), key(std::move(k)) {}

  const InodeNumber number;
  const ObjectType type;
  const ObjectId key;                // the store object's identity (empty for the root)
  std::atomic<uint64_t> lookups{0};  // the kernel's lookup count

  std::mutex mu;
  std::vector<InodeLink> links;       // guarded by mu; empty for the root and when unlinked
  std::optional<DirId> dir_id;        // guarded by mu; directories, once read
  std::shared_ptr<FileContent> file;  // guarded by mu; shared by all open handles
  uint32_t open_count = 0;            // guarded by mu
  // guarded by mu: the attributes the object had when it lost its last name (st_nlink
  // 0), which an fd still open on it reports, as on ext4.
  std::optional<ObjectInfo> orphan;
  // guarded by mu: the object's attributes as last read from the store, with the
  // namespace generation and time they were read (FileSystem::CachedAttr): a directory's
  // at or above case depth under a policy, or any object's on a remote store.
  std::optional<struct stat> cached_attr;
  uint64_t cached_attr_generation = 0;
  std::chrono::steady_clock::time_point cached_attr_at;
};

class InodeTable {
 public:
  InodeTable();

  std::shared_ptr<Inode> root() const { return root_; }
  // The inode with this number, or nullptr if the kernel holds no reference to it.
  std::shared_ptr<Inode> Find(InodeNumber number);
  // The inode currently mapped to a store object, or nullptr.
  std::shared_ptr<Inode> FindByKey(const ObjectId& key);
  // Finds or makes the inode for `key`, makes `link` its first name and counts one
  // kernel lookup.
  std::shared_ptr<Inode> Record(const ObjectId& key, ObjectType type, InodeLink link);
  // The inode with this number, counting one kernel lookup, even if the kernel had
  // forgotten it (a file handle being opened); nullptr if it is not known any more.
  std::shared_ptr<Inode> Revive(InodeNumber number);
  // Drops `n` kernel lookups; at zero the inode is retired (or dropped if it has no name).
  void Forget(InodeNumber number, uint64_t n);
  // The store object lost its last name: unmap its key, so that an id the
  // store reuses gets a fresh inode.
  void Detach(const Inode& inode);
  size_t size();

 private:
  // REQUIRES: mu_ held. Takes `number` off the retired list, if it is on it.
  void UnretireLocked(InodeNumber number);
  // REQUIRES: mu_ held. Removes the inode from both indexes.
  void DropLocked(const Inode& inode);

  static constexpr size_t kMaxRetired = 65536;

  std::mutex mu_;
  std::shared_ptr<Inode> root_;
  std::list<InodeNumber> retired_;  // guarded by mu_; oldest first
  std::unordered_map<InodeNumber, std::list<InodeNumber>::iterator> retired_at_;  // guarded by mu_
  std::unordered_map<InodeNumber, std::shared_ptr<Inode>> by_number_;             // guarded by mu_
  std::unordered_map<ObjectId, InodeNumber, ObjectIdHash> by_key_;                // guarded by mu_
  InodeNumber next_number_ = kRootInode + 1;                                      // guarded by mu_
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_INODE_TABLE_H_
