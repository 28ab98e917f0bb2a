// OneDriveStore: a Store over one OneDrive folder (the mount root), through Graph.
//
// It behaves like RemoteLikeStore (remote_like_store.h) where the two overlap: the same
// capabilities, name rules, path limit, modes and error codes. What is particular:
//
// Identity and lookups
//   - Items are addressed by id once known. A table maps store paths (ASCII-folded:
//     OneDrive is case-insensitive) to the last known driveItem; every listing, stat,
//     upload, mkdir and rename fills it. An unknown path is resolved component by
//     component from its deepest known ancestor, one child GET per missing component.
//   - Stat answers from the table only while its entry is younger than
//     `stat_freshness`, else it costs one GET. Open, List and the changing calls trust
//     the table (the change feed drops what other writers changed).
//   - ObjectInfo::id is the item id, inode_hint a hash of the id, and etag a file's
//     cTag (its content version: a rename or a time change, which change the eTag,
//     leave it, as RemoteLikeStore's etag) or a folder's eTag. If-Match takes either.
//
// Writing (capabilities().partial_writes is false; no byte is ever written to disk)
//   - A writer takes the whole object sequentially from offset 0: a WriteAt anywhere
//     but the current end is kUnsupported. The upload replaces the whole object at
//     Commit, which returns the new version; nothing is visible before.
//   - Below 4 MiB (and for 0 bytes) the bytes wait in memory for one simple PUT at
//     Commit. An upload session needs the total size before its first fragment: a
//     writer told the size first (Truncate(n) before any write) streams each full
//     fragment as it fills and holds at most one fragment; without it the whole
//     object waits in memory for Commit.
//   - A commit is conditional on the version the writer started from (If-Match), and
//     on Commit's own etag, which must be that one: else kChangedElsewhere. A new name is
//     created at its first Commit (0 bytes too) with conflictBehavior fail.
//   - Abort cancels the upload session and drops the buffer.
//
// Change feed: PollChanges tracks the drive's delta (the first call enumerates it)
// and reports the store paths under the root that other writers changed.
//
// Thread safety: Store methods may be called concurrently; one StoreFile serialises
// its own calls.
#ifndef CADCANFS_STORE_ONEDRIVE_STORE_H_
#define CADCANFS_STORE_ONEDRIVE_STORE_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cadcanfs/common/status.h"
#include "cadcanfs/graph/graph_client.h"
#include "cadcanfs/store/store.h"

namespace cadcanfs {

struct OneDriveStoreOptions {
  uid_t uid = 0;  // what Stat reports as every object's owner (the mounting user)
  gid_t gid = 0;
  size_t max_path_length = 400;  // OneDrive's limit for a whole path
  // How long a table entry answers Stat without a request.
  std::chrono::milliseconds stat_freshness{1000};
  // Bytes a streaming writer gathers before it sends them: the client's fragment size.
  uint64_t fragment_size = graph::kDefaultFragmentSize;
};

// The store rooted at the folder `root_path` of the client's drive ("" or "/" is the
// drive's root). kNotFound if it is missing, kNotADirectory if it is a file.
// REQUIRES: `client` outlives the store and every StoreFile it opens.
Result<std::unique_ptr<Store>> OpenOneDriveStore(graph::GraphClient& client, std::string root_path,
                                                 OneDriveStoreOptions options = {});

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_ONEDRIVE_STORE_H_
