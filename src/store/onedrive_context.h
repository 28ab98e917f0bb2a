// What the OneDrive store and its open files share: the Graph client, the options,
// the path table and the versions this store made itself, plus small conversions.
// Private to src/store.
#ifndef CADCANFS_STORE_ONEDRIVE_CONTEXT_H_
#define CADCANFS_STORE_ONEDRIVE_CONTEXT_H_

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cadcanfs/graph/graph_client.h"
#include "cadcanfs/store/onedrive_store.h"
#include "cadcanfs/store/store.h"
#include "onedrive_paths.h"

namespace cadcanfs::onedrive {

using graph::DriveItem;
using graph::GraphClient;
using graph::TimePoint;

inline constexpr uint32_t kFileMode = 0644;
inline constexpr uint32_t kDirectoryMode = 0755;

// kUnsupported: "a OneDrive store has no <what>".
Status Unsupported(const char* what);
// HTTP 412 to an If-Match, or a commit naming another version than its writer's.
Status ChangedElsewhere();
Status NotFound();
// A stable st_ino for an item id (FNV-1a), never 0.
uint64_t InodeHint(const std::string& id);
struct timespec WholeSeconds(TimePoint time);
// The new mtime of a utimensat(2)-style pair, or nullopt for UTIME_OMIT.
std::optional<TimePoint> RequestedMtime(const struct timespec times[2]);
// ObjectInfo::etag: a file's cTag, which changes with its content only, so that a
// rename or a time change (which change the eTag) does not fail a staged commit, as in
// RemoteLikeStore; If-Match accepts it as it accepts the eTag. Folders have no cTag on
// Business, and some replies omit it: then the eTag.
std::string VersionTag(const DriveItem& item);

// What a store call, a writer and a reader share; outlives the store for open files.
struct Context {
  Context(GraphClient& client_in, OneDriveStoreOptions options_in, DriveItem root)
      : client(client_in), options(options_in), root_id(root.id), table(std::move(root)) {}

  ObjectInfo Describe(const DriveItem& item) const {
    ObjectInfo info;
    info.type = item.is_folder ? ObjectType::kDirectory : ObjectType::kFile;
    info.size = item.is_folder ? 0 : static_cast<uint64_t>(std::max<int64_t>(item.size, 0));
    info.mode = item.is_folder ? kDirectoryMode : kFileMode;
    info.uid = options.uid;
    info.gid = options.gid;
    info.nlink = 1;
    info.mtime = WholeSeconds(item.mtime);
    info.atime = info.ctime = info.mtime;
    info.id = ObjectId(item.id);
    info.inode_hint = InodeHint(item.id);
    info.etag = VersionTag(item);
    return info;
  }

  // The item as this store just made it (an upload, mkdir, rename or time change):
  // the table holds it, and the change feed will not report it back as another's.
  void RecordOwn(std::string_view path, const DriveItem& item) {
    table.Remember(path, item);
    NoteOwn(item);
  }

  // As RecordOwn, for an open file: it may have been renamed since it was opened at
  // `path`, so the table refreshes the item where it knows it, else learns it at
  // `path` only if it is still there.
  void RecordOwnFromHandle(std::string_view path, const DriveItem& item) {
    NoteOwn(item);
    if (table.Refresh(item)) return;
    auto parent = table.Find(StoreParent(path));
    const bool same_parent =
        item.parent_id.empty() || (parent && parent->item.id == item.parent_id);
    if (same_parent && FoldStorePath(item.name) == FoldStorePath(StoreBaseName(path))) {
      table.Remember(path, item);
    }
  }

  void NoteOwn(const DriveItem& item) {
    std::lock_guard lock(own_mu);
    if (own_versions.size() >= kMaxOwnVersions) own_versions.clear();
    own_versions[item.id] = item.etag;
  }

  // Whether the change feed's `item` is a version this store made; forgets it.
  bool TakeOwn(const DriveItem& item) {
    std::lock_guard lock(own_mu);
    auto it = own_versions.find(item.id);
    if (it == own_versions.end() || it->second != item.etag) return false;
    own_versions.erase(it);
    return true;
  }

  // Own versions the change feed has not shown yet; beyond this, they are reported.
  static constexpr size_t kMaxOwnVersions = 100'000;

  GraphClient& client;
  const OneDriveStoreOptions options;
  const std::string root_id;
  OneDrivePathTable table;
  std::mutex own_mu;
  std::unordered_map<std::string, std::string> own_versions;  // id -> eTag, GUARDED_BY(own_mu)
};

// An open object for reading: ranged downloads of `item`, opened at `path`.
std::unique_ptr<StoreFile> NewReader(std::shared_ptr<Context> context, std::string path,
                                     const DriveItem& item);
// An open object for writing at `path`: `existing` is the item there, or nullopt to
// create `name` under `parent_id` at the first Commit. `start_empty`: O_TRUNC.
std::unique_ptr<StoreFile> NewWriter(std::shared_ptr<Context> context, std::string path,
                                     std::optional<DriveItem> existing, std::string parent_id,
                                     std::string name, bool start_empty);

}  // namespace cadcanfs::onedrive

#endif  // CADCANFS_STORE_ONEDRIVE_CONTEXT_H_
