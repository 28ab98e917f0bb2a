#include "cipher_walk.h"

namespace cadcanfs {

Status ForEachStoredEntry(Store& store, const std::string& dir, const StoredEntryVisitor& visit) {
  CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, store.List(dir));
  for (const DirEntry& e : entries) {
    const StoredNameKind kind = ClassifyStoredName(e.name);
    const std::string path = JoinStorePath(dir, e.name);
    const bool ours = IsContentName(kind) || kind == StoredNameKind::kFlatDirs;
    if (e.type == ObjectType::kDirectory && ours) {
      CADCANFS_RETURN_IF_ERROR(ForEachStoredEntry(store, path, visit));
    } else {
      CADCANFS_RETURN_IF_ERROR(visit(path, e, kind));
    }
  }
  return Status::Ok();
}

}  // namespace cadcanfs
