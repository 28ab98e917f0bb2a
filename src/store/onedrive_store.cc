#include "cadcanfs/store/onedrive_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_set>
#include <utility>

#include "cadcanfs/store/remote_like_store.h"
#include "onedrive_context.h"
#include "onedrive_paths.h"

namespace cadcanfs {
namespace {

using onedrive::Context;
using onedrive::DriveItem;
using onedrive::NotFound;
using onedrive::TimePoint;
using onedrive::Unsupported;

// What Space reports: the client has no quota call, and callers that check free space
// before writing must not refuse (as MemoryStore).
constexpr uint64_t kSpaceBlockSize = 4096;
constexpr uint64_t kSpaceTotalBlocks = (uint64_t{1} << 40) / kSpaceBlockSize;  // 1 TiB
constexpr uint64_t kSpaceTotalFiles = uint64_t{1} << 32;
constexpr std::chrono::seconds kSpaceFreshness{60};
// How much more ReadSmall asks for when an object is longer than last seen.
constexpr uint64_t kReadSmallStep = 1 << 20;

// `path` below `ancestor`, a prefix of it in whole components ("" is the root).
std::string RestBelow(std::string_view ancestor, std::string_view path) {
  return std::string(path.substr(ancestor.empty() ? 0 : ancestor.size() + 1));
}

class OneDriveStore final : public Store {
 public:
  explicit OneDriveStore(std::shared_ptr<Context> context) : context_(std::move(context)) {}

  StoreCapabilities capabilities() const override {
    return StoreCapabilities{.case_insensitive = true,
                             .max_path_length = context_->options.max_path_length,
                             .remote = true};
  }

  Result<ObjectInfo> Stat(std::string_view path) override {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    if (auto known = context_->table.Find(path)) {
      if (OneDrivePathTable::Clock::now() - known->filled < context_->options.stat_freshness) {
        return context_->Describe(known->item);
      }
      Result<DriveItem> fresh = context_->client.Item(known->item.id);
      if (fresh.ok()) {
        context_->table.Remember(path, *fresh);
        return context_->Describe(*fresh);
      }
      if (fresh.status().code() != Code::kNotFound || path.empty()) return fresh.status();
      context_->table.Forget(path);  // gone or replaced: look the name up again
    }
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item, Resolve(path));
    return context_->Describe(item);
  }

  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    CADCANFS_ASSIGN_OR_RETURN(std::vector<DriveItem> children, ListFolder(dir));
    std::vector<DirEntry> entries;
    entries.reserve(children.size());
    std::unordered_set<std::string> names;
    for (const DriveItem& child : children) {
      if (child.name.empty()) continue;
      names.insert(FoldStorePath(child.name));
      context_->table.Remember(JoinStorePath(dir, child.name), child);
      ObjectInfo info = context_->Describe(child);
      entries.push_back(DirEntry{child.name, info.type, std::move(info)});
    }
    context_->table.ForgetChildrenExcept(dir, names);
    return entries;
  }

  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    if (options.write || options.create) return OpenForWriting(path, options);
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item, ResolveFile(path));
    return std::unique_ptr<StoreFile>(onedrive::NewReader(context_, std::string(path), item));
  }

  // Sized by the size last seen, and read on while the object turns out longer. An
  // object the table does not know is read by its path, with no lookup first.
  Result<Bytes> ReadSmall(std::string_view path, size_t max_size) override {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    const uint64_t limit = static_cast<uint64_t>(max_size) + 1;  // one more byte tells "too big"
    Bytes content;
    if (!path.empty() && !context_->table.Knows(path)) {
      Result<Bytes> unlooked = ReadSmallByPath(path, limit);
      if (unlooked.ok() || unlooked.status().code() == Code::kNotFound) {
        CADCANFS_ASSIGN_OR_RETURN(content, std::move(unlooked));
        return content.size() > max_size ? TooBig() : Result<Bytes>(std::move(content));
      }
      // A folder there (or a refusal): the lookup below says which.
    }
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item, ResolveFile(path));
    uint64_t want =
        std::min<uint64_t>(limit, static_cast<uint64_t>(std::max<int64_t>(item.size, 0)) + 1);
    while (want > 0) {
      const size_t start = content.size();
      content.resize(start + static_cast<size_t>(want));
      CADCANFS_ASSIGN_OR_RETURN(
          size_t got,
          context_->client.Download(
              item.id, start, MutableByteSpan(content.data() + start, static_cast<size_t>(want))));
      content.resize(start + got);
      if (got < want) break;
      want = std::min<uint64_t>(limit - content.size(), kReadSmallStep);
    }
    if (content.size() > max_size) return TooBig();
    return content;
  }

  Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive) override {
    CADCANFS_ASSIGN_OR_RETURN(Target target,
                              exclusive ? ResolveNewTarget(path) : ResolveTarget(path));
    graph::UploadTarget upload;
    graph::UploadOptions options;
    if (target.existing) {
      if (exclusive) return Status::Error(Code::kAlreadyExists, "the object already exists");
      if (target.existing->is_folder) {
        return Status::Error(Code::kIsADirectory, "the object is a directory");
      }
      upload.item_id = target.existing->id;
    } else {
      CADCANFS_RETURN_IF_ERROR(CheckNewName(path, ObjectType::kFile));
      upload.parent_id = target.parent.id;
      upload.name = std::string(StoreBaseName(path));
      options.conflict =
          exclusive ? graph::ConflictBehavior::kFail : graph::ConflictBehavior::kReplace;
    }
    auto reader = [data](uint64_t offset, MutableByteSpan out) -> Status {
      if (offset + out.size() > data.size()) {
        return Status::Error(Code::kInternal, "the upload asked past the object's end");
      }
      if (!out.empty()) std::memcpy(out.data(), data.data() + offset, out.size());
      return Status::Ok();
    };
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item,
                              context_->client.Upload(upload, data.size(), reader, options));
    context_->RecordOwn(path, item);
    return Status::Ok();
  }

  Status MakeDir(std::string_view path, uint32_t) override {
    CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveNewTarget(path));
    if (target.existing) return Status::Error(Code::kAlreadyExists, "the name is taken");
    CADCANFS_RETURN_IF_ERROR(CheckNewName(path, ObjectType::kDirectory));
    CADCANFS_ASSIGN_OR_RETURN(
        DriveItem folder,
        context_->client.CreateFolder(target.parent.id, std::string(StoreBaseName(path))));
    context_->RecordOwn(path, folder);
    return Status::Ok();
  }

  Status RemoveDir(std::string_view path) override {
    if (path.empty()) return Status::Error(Code::kBusy, "the store root cannot be removed");
    CADCANFS_ASSIGN_OR_RETURN(DriveItem folder, ResolveFolder(path));
    CADCANFS_ASSIGN_OR_RETURN(std::vector<DriveItem> children,
                              context_->client.ListChildren(folder.id));
    if (!children.empty()) return Status::Error(Code::kNotEmpty, "the directory is not empty");
    CADCANFS_RETURN_IF_ERROR(ForgetIfGone(path, context_->client.Delete(folder.id)));
    context_->table.Forget(path);
    return Status::Ok();
  }

  Status Remove(std::string_view path) override {
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item, ResolveFile(path));
    CADCANFS_RETURN_IF_ERROR(ForgetIfGone(path, context_->client.Delete(item.id)));
    context_->table.Forget(path);
    return Status::Ok();
  }

  Status Rename(std::string_view from, std::string_view to, RenameMode mode) override {
    if (mode == RenameMode::kExchange) return Unsupported("atomic exchange of two names");
    if (from.empty() || to.empty()) {
      return Status::Error(Code::kBusy, "the store root cannot be renamed");
    }
    CADCANFS_ASSIGN_OR_RETURN(DriveItem source, Resolve(from));
    CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveTarget(to));
    const ObjectType type = source.is_folder ? ObjectType::kDirectory : ObjectType::kFile;
    graph::ItemUpdate update;
    update.new_name = std::string(StoreBaseName(to));
    update.new_parent_id = target.parent.id;
    update.mtime = source.mtime;  // a move resets the mtime unless it is sent again
    update.conflict = graph::ConflictBehavior::kFail;
    if (target.existing && target.existing->id != source.id) {
      if (mode == RenameMode::kNoReplace) {
        return Status::Error(Code::kAlreadyExists, "the name is taken");
      }
      CADCANFS_RETURN_IF_ERROR(CheckReplaceable(source, *target.existing));
      update.conflict = graph::ConflictBehavior::kReplace;
    } else {
      CADCANFS_RETURN_IF_ERROR(CheckNewName(to, type));
    }
    CADCANFS_ASSIGN_OR_RETURN(DriveItem moved, context_->client.Update(source.id, update));
    context_->table.Forget(from);
    context_->table.Forget(to);
    context_->RecordOwn(to, moved);
    return Status::Ok();
  }

  // OneDrive's entries are durable once the request returns.
  Status SyncDir(std::string_view dir) override { return ValidateStorePath(dir); }

  Status Symlink(std::string_view, std::string_view) override { return Unsupported("symlinks"); }
  Result<std::string> ReadLink(std::string_view) override { return Unsupported("symlinks"); }
  Status Link(std::string_view, std::string_view) override { return Unsupported("hard links"); }
  Status MakeNode(std::string_view, ObjectType, uint32_t, uint64_t) override {
    return Unsupported("special files");
  }
  Status SetMode(std::string_view, uint32_t) override { return Unsupported("file modes"); }
  Status SetOwner(std::string_view, uid_t, gid_t) override { return Unsupported("file owners"); }

  Status SetTimes(std::string_view path, const struct timespec times[2]) override {
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item, Resolve(path));
    std::optional<TimePoint> mtime = onedrive::RequestedMtime(times);
    if (!mtime) return Status::Ok();
    CADCANFS_ASSIGN_OR_RETURN(DriveItem changed,
                              context_->client.Update(item.id, graph::ItemUpdate{.mtime = mtime}));
    context_->RecordOwn(path, changed);
    return Status::Ok();
  }

  // The drive's quota, asked at most once a minute (df in a loop costs no requests); a
  // drive that shows none reports 1 TiB free.
  Result<StoreSpace> Space() override {
    std::lock_guard lock(space_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!space_ || now - space_at_ >= kSpaceFreshness) {
      CADCANFS_ASSIGN_OR_RETURN(std::optional<graph::DriveQuota> quota, context_->client.Quota());
      StoreSpace space;
      space.block_size = kSpaceBlockSize;
      space.total_blocks = space.free_blocks = space.available_blocks = kSpaceTotalBlocks;
      space.total_files = space.free_files = kSpaceTotalFiles;
      if (quota) {
        space.total_blocks = quota->total / kSpaceBlockSize;
        space.free_blocks = space.available_blocks = quota->remaining / kSpaceBlockSize;
      }
      space_ = space;
      space_at_ = now;
    }
    return *space_;
  }

  Result<Bytes> GetXattr(std::string_view, std::string_view) override {
    return Unsupported("extended attributes");
  }
  Status SetXattr(std::string_view, std::string_view, ByteSpan, int) override {
    return Unsupported("extended attributes");
  }
  Result<std::vector<std::string>> ListXattrs(std::string_view) override {
    return Unsupported("extended attributes");
  }
  Status RemoveXattr(std::string_view, std::string_view) override {
    return Unsupported("extended attributes");
  }

  Result<std::vector<std::string>> PollChanges() override {
    std::lock_guard lock(changes_mu_);
    if (!tracking_) {
      CADCANFS_RETURN_IF_ERROR(StartTracking());
      return std::vector<std::string>{};
    }
    CADCANFS_ASSIGN_OR_RETURN(graph::DeltaResult delta, context_->client.Delta(delta_link_));
    if (delta.resync_required) {
      spdlog::info("onedrive: the change feed asks for a resync; every cached entry is dropped");
      context_->table.ForgetAll();
      CADCANFS_RETURN_IF_ERROR(StartTracking());
      return std::vector<std::string>{""};
    }
    delta_link_ = delta.delta_link;
    std::vector<std::string> changed;
    for (const OneDriveTree::Change& change : tree_.Apply(delta.changes)) {
      if (change.new_path && context_->TakeOwn(*change.item)) continue;
      for (const auto& path : {change.old_path, change.new_path}) {
        if (!path) continue;
        context_->table.Forget(*path);
        if (std::find(changed.begin(), changed.end(), *path) == changed.end()) {
          changed.push_back(*path);
        }
      }
    }
    return changed;
  }

 private:
  // Where a name is to be made: its parent folder, and what holds the name already in
  // any case.
  struct Target {
    DriveItem parent;
    std::optional<DriveItem> existing;
  };

  static Status TooBig() { return Status::Error(Code::kCorrupt, "object is larger than expected"); }

  // The first `limit` bytes of the file at `path`, addressed by its path below the
  // deepest known folder: no lookup of the item first (a vault reads a directory's id
  // file this way the first time it lists the directory).
  Result<Bytes> ReadSmallByPath(std::string_view path, uint64_t limit) {
    std::optional<PathBelowFolder> below = UnknownPathBelowFolder(path);
    if (!below) return Status::Error(Code::kNotADirectory, "not a folder");
    Bytes content(static_cast<size_t>(limit));
    CADCANFS_ASSIGN_OR_RETURN(
        size_t got, context_->client.DownloadAt(below->folder_id, below->rest, 0,
                                                MutableByteSpan(content.data(), content.size())));
    content.resize(got);
    return content;
  }

  // The children of the folder at `dir`. A folder the table does not know is listed by
  // its path, with no lookup first, and learnt from its children's parent id (a vault
  // lists a directory's entries folder this way the first time); an empty listing there
  // may be a file's, so the folder is then looked up.
  Result<std::vector<DriveItem>> ListFolder(std::string_view dir) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(dir));
    std::optional<PathBelowFolder> below;
    if (!dir.empty() && !context_->table.Knows(dir)) below = UnknownPathBelowFolder(dir);
    if (below) {
      CADCANFS_ASSIGN_OR_RETURN(graph::FolderListing listing,
                                context_->client.ListChildrenAt(below->folder_id, below->rest));
      if (!listing.folder_id.empty()) {
        context_->table.RememberFolderId(dir, listing.folder_id);
        return std::move(listing.children);
      }
    }
    CADCANFS_ASSIGN_OR_RETURN(DriveItem folder, ResolveFolder(dir));
    return context_->client.ListChildren(folder.id);
  }

  // Where a path the table does not know is addressed from: the deepest folder it
  // knows above the path, and the rest of the path below that folder; nullopt below a
  // file.
  struct PathBelowFolder {
    std::string folder_id;
    std::string rest;
  };
  std::optional<PathBelowFolder> UnknownPathBelowFolder(std::string_view path) {
    auto [known_path, known] = context_->table.DeepestKnown(path);
    if (!known.item.is_folder) return std::nullopt;
    return PathBelowFolder{std::move(known.item.id), RestBelow(known_path, path)};
  }

  // The item at `path`, from the table or looked up from the deepest known ancestor.
  Result<DriveItem> Resolve(std::string_view path) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    auto [known_path, known] = context_->table.DeepestKnown(path);
    // Several unknown components (a vault's cadcanfs.dirs/xx/<id> at first use) cost
    // one GET for all of them; only a miss is walked component by component, to tell
    // a missing name from one below a file.
    if (known.item.is_folder && known_path.size() < path.size()) {
      const std::string rest = RestBelow(known_path, path);
      if (rest.find('/') != std::string::npos) {
        Result<DriveItem> found = context_->client.DescendantByPath(known.item.id, rest);
        if (found.ok()) {
          context_->table.Remember(path, *found);
          return found;
        }
        if (found.status().code() != Code::kNotFound) return found.status();
      }
    }
    DriveItem item = std::move(known.item);
    std::string resolved = known_path;  // folded, as far as known
    while (resolved.size() < path.size()) {
      const size_t start = resolved.empty() ? 0 : resolved.size() + 1;
      const size_t slash = path.find('/', start);
      const std::string_view name = path.substr(
          start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      if (!item.is_folder) return Status::Error(Code::kNotADirectory, "a path component is a file");
      // A name OneDrive refuses cannot exist: no request.
      if (!CheckRemoteName(name, ObjectType::kFile).ok()) return NotFound();
      CADCANFS_ASSIGN_OR_RETURN(item, context_->client.ChildByName(item.id, std::string(name)));
      resolved = std::string(path.substr(0, start + name.size()));
      context_->table.Remember(resolved, item);
    }
    return item;
  }

  Result<DriveItem> ResolveFolder(std::string_view path) {
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item, Resolve(path));
    if (!item.is_folder)
      return Status::Error(Code::kNotADirectory, "the object is not a directory");
    return item;
  }

  Result<DriveItem> ResolveFile(std::string_view path) {
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item, Resolve(path));
    if (item.is_folder) return Status::Error(Code::kIsADirectory, "the object is a directory");
    return item;
  }

  // `path` is not the root.
  Result<Target> ResolveTarget(std::string_view path) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    if (path.empty()) return Status::Error(Code::kBusy, "the store root cannot be replaced");
    Target target;
    CADCANFS_ASSIGN_OR_RETURN(target.parent, ResolveFolder(StoreParent(path)));
    Result<DriveItem> existing = Resolve(path);
    if (existing.ok()) {
      target.existing = std::move(existing).value();
    } else if (existing.status().code() != Code::kNotFound) {
      return existing.status();
    }
    return target;
  }

  // As ResolveTarget for a call that creates `path` with conflictBehavior fail: a name
  // not known to exist costs no lookup, since the service refuses a taken one (409,
  // kAlreadyExists) anyway. Half the requests of a vault's mkdir were such lookups.
  Result<Target> ResolveNewTarget(std::string_view path) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    if (path.empty()) return Status::Error(Code::kBusy, "the store root cannot be replaced");
    Target target;
    CADCANFS_ASSIGN_OR_RETURN(target.parent, ResolveFolder(StoreParent(path)));
    if (auto known = context_->table.Find(path)) target.existing = std::move(known->item);
    return target;
  }

  Status CheckNewName(std::string_view path, ObjectType type) const {
    CADCANFS_RETURN_IF_ERROR(CheckRemoteName(StoreBaseName(path), type));
    return CheckRemotePathLength(path, context_->options.max_path_length);
  }

  // Rename's replace rules, as rename(2): a file over a file, a folder over an empty one.
  Status CheckReplaceable(const DriveItem& source, const DriveItem& existing) {
    if (source.is_folder && !existing.is_folder) {
      return Status::Error(Code::kNotADirectory, "a directory cannot replace a file");
    }
    if (!source.is_folder && existing.is_folder) {
      return Status::Error(Code::kIsADirectory, "a file cannot replace a directory");
    }
    if (existing.is_folder) {
      CADCANFS_ASSIGN_OR_RETURN(std::vector<DriveItem> children,
                                context_->client.ListChildren(existing.id));
      if (!children.empty()) return Status::Error(Code::kNotEmpty, "the directory is not empty");
    }
    return Status::Ok();
  }

  // A delete that finds the item gone forgets it too.
  Status ForgetIfGone(std::string_view path, Status deleted) {
    if (deleted.code() == Code::kNotFound) context_->table.Forget(path);
    return deleted;
  }

  Result<std::unique_ptr<StoreFile>> OpenForWriting(std::string_view path,
                                                    const OpenOptions& options) {
    CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveTarget(path));
    if (target.existing) {
      if (options.create && options.exclusive) {
        return Status::Error(Code::kAlreadyExists, "the object already exists");
      }
      if (target.existing->is_folder) {
        return Status::Error(Code::kIsADirectory, "the object is a directory");
      }
      return onedrive::NewWriter(context_, std::string(path), target.existing, "", "",
                                 options.truncate);
    }
    if (!options.create) return NotFound();
    CADCANFS_RETURN_IF_ERROR(CheckNewName(path, ObjectType::kFile));
    return onedrive::NewWriter(context_, std::string(path), std::nullopt, target.parent.id,
                               std::string(StoreBaseName(path)), /*start_empty=*/true);
  }

  // Takes the drive's current state as the starting point. Callers hold changes_mu_.
  Status StartTracking() {
    CADCANFS_ASSIGN_OR_RETURN(graph::DeltaResult full, context_->client.Delta(""));
    if (full.resync_required) {
      return Status::Error(Code::kRetryLater, "OneDrive refused to start a change feed");
    }
    tree_.Reset(context_->root_id, full.changes);
    delta_link_ = full.delta_link;
    tracking_ = true;
    return Status::Ok();
  }

  const std::shared_ptr<Context> context_;
  std::mutex changes_mu_;  // one poll at a time
  bool tracking_ = false;  // GUARDED_BY(changes_mu_)
  std::string delta_link_;
  OneDriveTree tree_;
  std::mutex space_mu_;
  std::optional<StoreSpace> space_;                 // GUARDED_BY(space_mu_)
  std::chrono::steady_clock::time_point space_at_;  // GUARDED_BY(space_mu_)
};

}  // namespace

Result<std::unique_ptr<Store>> OpenOneDriveStore(graph::GraphClient& client, std::string root_path,
                                                 OneDriveStoreOptions options) {
  CADCANFS_ASSIGN_OR_RETURN(DriveItem root, client.ItemByPath(root_path));
  if (!root.is_folder) {
    return Status::Error(Code::kNotADirectory, "the OneDrive mount root is not a folder");
  }
  if (options.fragment_size == 0) options.fragment_size = graph::kDefaultFragmentSize;
  auto context = std::make_shared<Context>(client, options, std::move(root));
  return std::unique_ptr<Store>(std::make_unique<OneDriveStore>(std::move(context)));
}

}  // namespace cadcanfs
