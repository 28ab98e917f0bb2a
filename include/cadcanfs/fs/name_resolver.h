// NameResolver: from an inode to its store object, the one place that knows how.
//
// An inode's store path is its first link's stored name in the place where its parent
// keeps its entries: the parent's own store entry in a tree (a tree vault, a plain
// folder), or a place derived from the parent's directory state in a flat vault
// (Format::entries_by_state). A later backend that addresses objects by item id
// (OneDrive) changes only this class.
//
// Thread safety: callers hold the filesystem's namespace lock (shared is enough), so
// no rename moves a link while a path is built; inode fields are read under their mutex.
#ifndef CADCANFS_FS_NAME_RESOLVER_H_
#define CADCANFS_FS_NAME_RESOLVER_H_

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cadcanfs/common/status.h"
#include "cadcanfs/fs/format.h"
#include "cadcanfs/fs/inode_table.h"

namespace cadcanfs {

// A name in a directory, resolved for the store.
struct ChildPath {
  std::shared_ptr<Inode> parent;
  DirState dir{};           // the parent's directory state (its vault directory id)
  std::string entries_dir;  // the store directory holding the parent's entries
  std::string plain;        // the name as the caller gave it
  EncryptedName name;       // as stored
  std::string path;         // entries_dir + the stored name
};

class NameResolver {
 public:
  NameResolver(InodeTable& inodes, Format& format) : inodes_(inodes), format_(format) {}

  // Where the inode's entry is in the store ("" for the root).
  Result<std::string> PathOf(Inode& inode);
  // PathOf an inode number; kStale if the kernel holds no reference to it.
  Result<std::string> PathOf(InodeNumber ino);
  // Where a directory's entries are in the store.
  Result<std::string> EntriesDirOf(Inode& dir);
  // A directory's state, read once and then kept on the inode.
  Result<DirState> DirStateOf(Inode& dir);
  // `name` (as the caller gave it) in the directory `parent`.
  Result<ChildPath> ResolveChild(InodeNumber parent, std::string_view name);
  // An entry a listing of `parent` returned, already decoded.
  Result<ChildPath> ListedChild(InodeNumber parent, const PlainDirEntry& entry);
  // The directory whose entries live in `entries_dir`, as last computed by EntriesDirOf
  // and still true; nullptr if none the table holds (a store reports changes by path).
  std::shared_ptr<Inode> DirectoryWithEntriesIn(const std::string& entries_dir);

 private:
  // `depth` counts the links climbed so far: a cycle in a damaged table ends as kStale.
  Result<std::string> PathOf(Inode& inode, size_t depth);
  Result<std::string> EntriesDirOf(Inode& dir, size_t depth);
  Result<DirState> DirStateOf(Inode& dir, size_t depth);
  // The tree case: the stored names of every link up to the root, joined.
  Result<std::string> ClimbToRoot(Inode& inode);
  Result<std::shared_ptr<Inode>> DirectoryInode(InodeNumber ino);

  void RememberEntriesDir(Inode& dir, const std::string& entries_dir);

  InodeTable& inodes_;
  Format& format_;
  std::mutex places_mu_;
  // Where directories' entries were last found, for DirectoryWithEntriesIn.
  std::unordered_map<std::string, std::weak_ptr<Inode>> by_entries_dir_;  // guarded
  size_t places_since_prune_ = 0;                                         // guarded
};

}  // namespace cadcanfs

#endif  // CADCANFS_FS_NAME_RESOLVER_H_
