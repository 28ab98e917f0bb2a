// The OneDrive store's table from store paths to the driveItems last seen there, and
// the drive tree it follows through the change feed. Private to src/store.
//
// Thread safety: both classes lock internally; every method may be called
// concurrently.
#ifndef CADCANFS_STORE_ONEDRIVE_PATHS_H_
#define CADCANFS_STORE_ONEDRIVE_PATHS_H_

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cadcanfs/graph/graph_client.h"

namespace cadcanfs {

// ASCII-folded, as OneDrive compares names (ciphertext names are ASCII).
std::string FoldStorePath(std::string_view path);

class OneDrivePathTable {
 public:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    graph::DriveItem item;
    Clock::time_point filled;
  };

  explicit OneDrivePathTable(graph::DriveItem root);

  std::optional<Entry> Find(std::string_view path) const;
  // Whether the table holds `path` (Find without the copy).
  bool Knows(std::string_view path) const;
  void Remember(std::string_view path, const graph::DriveItem& item);
  // Learns only the id of the folder at `path` (from its children's parent id): enough
  // to address it, while Stat, finding the entry stale, asks for the rest.
  void RememberFolderId(std::string_view path, const std::string& id);
  // Refreshes every entry of the item's id wherever it is; false if there was none.
  bool Refresh(const graph::DriveItem& item);
  // Forgets what is known below the folder `dir` under names not in `names` (folded):
  // a listing of `dir` shows they are gone.
  void ForgetChildrenExcept(std::string_view dir, const std::unordered_set<std::string>& names);
  // Forgets `path` and every path below it (never the root itself).
  void Forget(std::string_view path);
  // Forgets every entry but the root.
  void ForgetAll();
  // The longest known prefix of `path` (whole components; at least the root "").
  std::pair<std::string, Entry> DeepestKnown(std::string_view path) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_), by folded path
};

// The items under the store root as the change feed last described them: enough to
// tell the store path of a changed item, before and after the change.
class OneDriveTree {
 public:
  // Starts over from a full enumeration of the drive (parents before children).
  void Reset(const std::string& root_id, const std::vector<graph::DriveItem>& items);
  // One item's change as seen under the root: where it was and where it is now.
  struct Change {
    std::optional<std::string> old_path;  // it was under the root there
    std::optional<std::string> new_path;  // it is under the root here
    const graph::DriveItem* item = nullptr;
  };
  // Applies incremental changes (their last states). A folder whose name and place
  // did not change is left out: it shows up only because something below it changed.
  std::vector<Change> Apply(const std::vector<graph::DriveItem>& changes);

 private:
  struct Node {
    std::string name;
    std::string parent_id;
  };
  // Adds `item` if its parent is the root or a known node; false if not under the root.
  bool Place(const graph::DriveItem& item);
  std::optional<std::string> PathOf(const std::string& id) const;

  std::mutex mu_;
  std::string root_id_;
  std::unordered_map<std::string, Node> nodes_;  // id -> node, under the root only
};

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_ONEDRIVE_PATHS_H_
