#include "cadcanfs/store/onedrive_store.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "cadcanfs/store/remote_like_store.h"
#include "onedrive_paths.h"

namespace cadcanfs {
namespace {

using graph::DriveItem;
using graph::GraphClient;
using graph::TimePoint;

constexpr uint32_t kFileMode = 0644;
constexpr uint32_t kDirectoryMode = 0755;
// What Space reports: the client has no quota call, and callers that check free space
// before writing must not refuse (as MemoryStore).
constexpr uint64_t kSpaceBlockSize = 4096;
constexpr uint64_t kSpaceTotalBlocks = (uint64_t{1} << 40) / kSpaceBlockSize;  // 1 TiB
constexpr uint64_t kSpaceTotalFiles = uint64_t{1} << 32;
// How much more ReadSmall asks for when an object is longer than last seen.
constexpr uint64_t kReadSmallStep = 1 << 20;

Status Unsupported(const char* what) {
  return Status::Error(Code::kUnsupported, std::string("a OneDrive store has no ") + what);
}

Status ChangedElsewhere() {
  return Status::Error(Code::kChangedElsewhere,
                       "the object changed elsewhere since the writer's version");
}

Status NotFound() { return Status::Error(Code::kNotFound, "no such object"); }

// A stable st_ino for an item id (FNV-1a), never 0.
uint64_t InodeHint(const std::string& id) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : id) hash = (hash ^ c) * 1099511628211ull;
  return hash == 0 ? 1 : hash;
}

struct timespec WholeSeconds(TimePoint time) {
  struct timespec out {};
  out.tv_sec = std::chrono::floor<std::chrono::seconds>(time.time_since_epoch()).count();
  return out;
}

// The new mtime of a utimensat(2)-style pair, or nullopt for UTIME_OMIT.
std::optional<TimePoint> RequestedMtime(const struct timespec times[2]) {
  if (times == nullptr || times[1].tv_nsec == UTIME_NOW) {
    return std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  }
  if (times[1].tv_nsec == UTIME_OMIT) return std::nullopt;
  return TimePoint(std::chrono::seconds(times[1].tv_sec) +
                   std::chrono::nanoseconds(times[1].tv_nsec));
}

// ObjectInfo::etag: a file's cTag, which changes with its content only, so that a
// rename or a time change (which change the eTag) does not fail a staged commit, as in
// RemoteLikeStore; If-Match accepts it as it accepts the eTag. Folders have no cTag on
// Business, and some replies omit it: then the eTag.
std::string VersionTag(const DriveItem& item) {
  return !item.is_folder && !item.ctag.empty() ? item.ctag : item.etag;
}

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

// Reads `out.size()` bytes at `offset` unless the object ends first.
Result<size_t> DownloadFully(GraphClient& client, const std::string& id, uint64_t offset,
                             MutableByteSpan out) {
  size_t done = 0;
  while (done < out.size()) {
    CADCANFS_ASSIGN_OR_RETURN(size_t got, client.Download(id, offset + done, out.subspan(done)));
    if (got == 0) break;
    done += got;
  }
  return done;
}

// An open object for reading: ranged downloads of the item opened.
class OneDriveReader final : public StoreFile {
 public:
  OneDriveReader(std::shared_ptr<Context> context, std::string path, const DriveItem& item)
      : context_(std::move(context)),
        path_(std::move(path)),
        id_(item.id),
        info_(context_->Describe(item)) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    return DownloadFully(context_->client, id_, offset, out);
  }
  Status WriteAt(uint64_t, ByteSpan) override { return NotForWriting(); }
  Status Truncate(uint64_t) override { return NotForWriting(); }
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, Stat());
    if (if_match_etag && *if_match_etag != info.etag) return ChangedElsewhere();
    return info;
  }
  Status Checkpoint() override { return Status::Ok(); }
  Status Abort() override { return Status::Ok(); }
  Result<uint64_t> Size() override {
    std::lock_guard lock(mu_);
    return info_.size;
  }
  Result<ObjectInfo> Stat() override {
    std::lock_guard lock(mu_);
    return info_;
  }
  Status Reserve(uint64_t, uint64_t) override { return Unsupported("space reservation"); }
  void Prefetch(uint64_t, uint64_t) override {}
  Status SetMode(uint32_t) override { return Unsupported("file modes"); }
  Status SetOwner(uid_t, gid_t) override { return Unsupported("file owners"); }
  Status SetTimes(const struct timespec times[2]) override {
    std::optional<TimePoint> mtime = RequestedMtime(times);
    if (!mtime) return Status::Ok();
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item,
                              context_->client.Update(id_, graph::ItemUpdate{.mtime = mtime}));
    context_->RecordOwnFromHandle(path_, item);
    std::lock_guard lock(mu_);
    info_ = context_->Describe(item);
    return Status::Ok();
  }

 private:
  static Status NotForWriting() {
    return Status::Error(Code::kBadHandle, "the object is open for reading only");
  }

  const std::shared_ptr<Context> context_;
  const std::string path_;  // where it was opened, for the table
  const std::string id_;
  std::mutex mu_;
  ObjectInfo info_;  // GUARDED_BY(mu_)
};

// An open object for writing: the whole object, sequentially, uploaded at Commit (or
// streamed fragment by fragment when its size was declared first).
class OneDriveWriter final : public StoreFile {
 public:
  // `existing`: the item at `path`, or nullopt to create `name` under `parent_id`.
  OneDriveWriter(std::shared_ptr<Context> context, std::string path,
                 std::optional<DriveItem> existing, std::string parent_id, std::string name,
                 bool start_empty)
      : context_(std::move(context)), path_(std::move(path)) {
    if (existing) {
      Rebase(*existing);
      dirty_ = start_empty && existing->size != 0;
    } else {
      target_.parent_id = std::move(parent_id);
      target_.name = std::move(name);
      info_.type = ObjectType::kFile;
      info_.mode = kFileMode;
      info_.uid = context_->options.uid;
      info_.gid = context_->options.gid;
      info_.nlink = 1;
      dirty_ = true;  // a new name exists once committed, even empty
    }
  }

  ~OneDriveWriter() override { CancelSession(); }

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    std::unique_lock lock(mu_);
    if (!dirty_) {
      if (target_.item_id.empty()) return size_t{0};
      const std::string id = target_.item_id;
      lock.unlock();
      return DownloadFully(context_->client, id, offset, out);
    }
    // What is still held in memory can be read back; what was sent cannot.
    const uint64_t end = std::max(written_, declared_size_.value_or(0));
    if (offset >= end) return size_t{0};
    if (offset < window_start_) {
      return Status::Error(Code::kUnsupported,
                           "a OneDrive writer cannot read back bytes it has already uploaded");
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), end - offset));
    std::memset(out.data(), 0, n);
    if (offset < written_) {
      const size_t held = static_cast<size_t>(std::min<uint64_t>(n, written_ - offset));
      std::memcpy(out.data(), window_.data() + (offset - window_start_), held);
    }
    return n;
  }

  Status WriteAt(uint64_t offset, ByteSpan data) override {
    if (data.empty()) return Status::Ok();
    std::lock_guard lock(mu_);
    if (offset != written_) {
      return Status::Error(Code::kUnsupported,
                           "a OneDrive writer takes the object sequentially from its start");
    }
    broken_ = false;  // written again from its start
    const uint64_t end = written_ + data.size();
    if (declared_size_ && end > *declared_size_) {
      if (session_) {
        return Status::Error(Code::kUnsupported,
                             "the write goes past the size the upload was started with");
      }
      declared_size_ = end;
    }
    const uint64_t before = written_;
    window_.insert(window_.end(), data.begin(), data.end());
    written_ = end;
    dirty_ = true;
    Status sent = SendFullFragments();
    if (!sent.ok() && !broken_) {
      // Nothing was let go: the caller may send this write again.
      window_.resize(static_cast<size_t>(before - window_start_));
      written_ = before;
    }
    return sent;
  }

  // Before any write, declares the object's final size, so that a large upload can
  // stream; after writes, only shortens what is still held or extends with zeros.
  Status Truncate(uint64_t size) override {
    std::lock_guard lock(mu_);
    if (session_) {
      if (size == *declared_size_) return Status::Ok();
      return Status::Error(Code::kUnsupported, "the size of a running upload cannot change");
    }
    if (size < written_) {
      window_.resize(static_cast<size_t>(size));
      written_ = size;
    }
    declared_size_ = size;
    dirty_ = true;
    broken_ = false;
    return Status::Ok();
  }

  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    std::lock_guard lock(mu_);
    if (if_match_etag && !base_etag_.empty() && *if_match_etag != base_etag_) {
      AfterFailedUpload();
      return ChangedElsewhere();
    }
    if (broken_) {
      return Status::Error(Code::kIoError,
                           "an upload failed after part of it was sent: the object must be "
                           "written again");
    }
    if (!dirty_) {
      if (if_match_etag) {
        CADCANFS_ASSIGN_OR_RETURN(DriveItem current, context_->client.Item(target_.item_id));
        if (VersionTag(current) != *if_match_etag) return ChangedElsewhere();
        Rebase(current);
      }
      return info_;
    }
    if (if_match_etag && base_etag_.empty()) if_match_ = *if_match_etag;
    Result<DriveItem> uploaded = Upload();
    if (!uploaded.ok()) {
      AfterFailedUpload();
      return uploaded.status();
    }
    DriveItem item = std::move(uploaded).value();
    if (pending_mtime_ && !mtime_sent_) {
      // The upload is committed whatever this answers: a failure costs only the time.
      Result<DriveItem> timed =
          context_->client.Update(item.id, graph::ItemUpdate{.mtime = pending_mtime_});
      if (timed.ok()) {
        item = std::move(timed).value();
      } else {
        spdlog::warn("onedrive: the modification time of an upload was not set: {}",
                     timed.status().message());
      }
    }
    context_->RecordOwnFromHandle(path_, item);
    Rebase(item);
    ResetUpload();
    dirty_ = false;
    return info_;
  }

  Status Checkpoint() override { return Status::Ok(); }

  Status Abort() override {
    std::lock_guard lock(mu_);
    ResetUpload();
    broken_ = false;
    dirty_ = target_.item_id.empty();
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    std::lock_guard lock(mu_);
    return SizeLocked();
  }

  Result<ObjectInfo> Stat() override {
    std::lock_guard lock(mu_);
    ObjectInfo info = info_;
    info.size = SizeLocked();
    return info;
  }

  Status Reserve(uint64_t, uint64_t) override { return Unsupported("space reservation"); }
  void Prefetch(uint64_t, uint64_t) override {}
  Status SetMode(uint32_t) override { return Unsupported("file modes"); }
  Status SetOwner(uid_t, gid_t) override { return Unsupported("file owners"); }

  // Sent with the upload when one is pending (a PATCH would make a second version),
  // else at once.
  Status SetTimes(const struct timespec times[2]) override {
    std::optional<TimePoint> mtime = RequestedMtime(times);
    if (!mtime) return Status::Ok();
    std::lock_guard lock(mu_);
    if (dirty_ || target_.item_id.empty()) {
      pending_mtime_ = mtime;
      info_.mtime = WholeSeconds(*mtime);
      return Status::Ok();
    }
    CADCANFS_ASSIGN_OR_RETURN(
        DriveItem item,
        context_->client.Update(target_.item_id, graph::ItemUpdate{.mtime = mtime}));
    context_->RecordOwnFromHandle(path_, item);
    Rebase(item);
    return Status::Ok();
  }

 private:
  uint64_t SizeLocked() const {
    if (!dirty_) return info_.size;
    return std::max(written_, declared_size_.value_or(0));
  }

  // After a commit (or at open): the writer's base is this version of the item.
  void Rebase(const DriveItem& item) {
    target_ = graph::UploadTarget{.item_id = item.id};
    base_etag_ = VersionTag(item);
    info_ = context_->Describe(item);
  }

  graph::UploadOptions OptionsForUpload() const {
    graph::UploadOptions options;
    options.if_match = base_etag_.empty() ? if_match_ : base_etag_;
    if (target_.item_id.empty()) options.conflict = graph::ConflictBehavior::kFail;
    options.mtime = pending_mtime_;
    return options;
  }

  // Streams every full fragment of a declared large upload, keeping the last one back
  // for Commit (the upload must not finish before it).
  Status SendFullFragments() {
    if (!declared_size_ || *declared_size_ < graph::kSimpleUploadMax) return Status::Ok();
    if (written_ - window_start_ < context_->options.fragment_size) return Status::Ok();
    if (!session_) {
      graph::UploadOptions options = OptionsForUpload();
      CADCANFS_ASSIGN_OR_RETURN(
          graph::UploadSessionState state,
          context_->client.CreateUploadSession(target_, *declared_size_, options));
      session_ = std::move(state);
      mtime_sent_ = pending_mtime_.has_value();
    }
    Result<DriveItem> sent = RunSession(/*final=*/false);
    if (sent.ok()) {
      return Status::Error(Code::kInternal, "the upload finished before its commit");
    }
    if (paused_) return Status::Ok();
    AfterFailedUpload();
    return sent.status();
  }

  // Sends the session's fragments while their bytes are held; `final` pads the object
  // with zeros to its declared size and finishes it.
  Result<DriveItem> RunSession(bool final) {
    paused_ = false;
    const uint64_t total = session_->total_size;
    auto reader = [this, final, total](uint64_t offset, MutableByteSpan out) -> Status {
      if (offset < window_start_) {
        return Status::Error(Code::kIoError,
                             "the upload restarted from bytes this writer no longer holds");
      }
      // The service has every byte before `offset`: stop holding them.
      const uint64_t confirmed = std::min(offset, written_) - window_start_;
      window_.erase(window_.begin(), window_.begin() + static_cast<ptrdiff_t>(confirmed));
      window_start_ += confirmed;
      const uint64_t end = offset + out.size();
      if (!final && (end > written_ || end >= total)) {
        paused_ = true;
        return Status::Error(Code::kBusy, "the upload waits for more bytes");
      }
      std::memset(out.data(), 0, out.size());
      if (offset < written_) {
        const size_t held = static_cast<size_t>(std::min<uint64_t>(out.size(), written_ - offset));
        std::memcpy(out.data(), window_.data() + (offset - window_start_), held);
      }
      return Status::Ok();
    };
    return context_->client.ContinueUploadSession(*session_, reader);
  }

  // The upload of everything written: a simple PUT below 4 MiB, else a session.
  Result<DriveItem> Upload() {
    const uint64_t total = std::max(written_, declared_size_.value_or(0));
    if (!session_ && total < graph::kSimpleUploadMax) {
      window_.resize(static_cast<size_t>(total));
      graph::UploadOptions options = OptionsForUpload();
      mtime_sent_ = pending_mtime_.has_value();
      return context_->client.UploadSimple(target_, window_, options);
    }
    if (!session_) {
      graph::UploadOptions options = OptionsForUpload();
      CADCANFS_ASSIGN_OR_RETURN(graph::UploadSessionState state,
                                context_->client.CreateUploadSession(target_, total, options));
      session_ = std::move(state);
      mtime_sent_ = pending_mtime_.has_value();
    }
    return RunSession(/*final=*/true);
  }

  void CancelSession() {
    if (!session_) return;
    Status cancelled = context_->client.CancelUploadSession(*session_);
    if (!cancelled.ok())
      spdlog::debug("onedrive: upload session not cancelled: {}", cancelled.message());
    session_.reset();
  }

  // A failed upload: a later Commit may retry it while every byte is still held;
  // once some were let go, only writing the object again can.
  void AfterFailedUpload() {
    CancelSession();
    if (window_start_ == 0) return;
    ResetUpload();
    broken_ = true;
  }

  // Drops what was written and any session; the writer starts again from its base.
  void ResetUpload() {
    CancelSession();
    window_.clear();
    window_.shrink_to_fit();
    window_start_ = 0;
    written_ = 0;
    declared_size_.reset();
    if_match_.clear();
    pending_mtime_.reset();
    mtime_sent_ = false;
  }

  const std::shared_ptr<Context> context_;
  const std::string path_;  // where the writer was opened, for the table
  std::mutex mu_;
  // Everything below is GUARDED_BY(mu_).
  graph::UploadTarget target_;  // the item, or a new name under a parent
  std::string base_etag_;       // the version the commit replaces (If-Match)
  std::string if_match_;        // Commit's eTag for a writer without a base
  ObjectInfo info_;             // the base version
  bool dirty_ = false;          // a commit has something to upload
  uint64_t written_ = 0;        // the end of the bytes written
  std::optional<uint64_t> declared_size_;
  Bytes window_;  // bytes [window_start_, written_) not yet confirmed sent
  uint64_t window_start_ = 0;
  std::optional<graph::UploadSessionState> session_;
  bool paused_ = false;  // the session stopped for want of bytes, not for an error
  bool broken_ = false;  // an upload failed with bytes already let go
  std::optional<TimePoint> pending_mtime_;
  bool mtime_sent_ = false;  // the upload carries pending_mtime_
};

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
    CADCANFS_ASSIGN_OR_RETURN(DriveItem folder, ResolveFolder(dir));
    CADCANFS_ASSIGN_OR_RETURN(std::vector<DriveItem> children,
                              context_->client.ListChildren(folder.id));
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
    return std::unique_ptr<StoreFile>(
        std::make_unique<OneDriveReader>(context_, std::string(path), item));
  }

  // Sized by the size last seen, and read on while the object turns out longer.
  Result<Bytes> ReadSmall(std::string_view path, size_t max_size) override {
    CADCANFS_ASSIGN_OR_RETURN(DriveItem item, ResolveFile(path));
    const uint64_t limit = static_cast<uint64_t>(max_size) + 1;  // one more byte tells "too big"
    Bytes content;
    uint64_t want =
        std::min<uint64_t>(limit, static_cast<uint64_t>(std::max<int64_t>(item.size, 0)) + 1);
    while (want > 0) {
      const size_t start = content.size();
      content.resize(start + static_cast<size_t>(want));
      CADCANFS_ASSIGN_OR_RETURN(
          size_t got,
          DownloadFully(context_->client, item.id, start,
                        MutableByteSpan(content.data() + start, static_cast<size_t>(want))));
      content.resize(start + got);
      if (got < want) break;
      want = std::min<uint64_t>(limit - content.size(), kReadSmallStep);
    }
    if (content.size() > max_size) {
      return Status::Error(Code::kCorrupt, "object is larger than expected");
    }
    return content;
  }

  Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive) override {
    CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveTarget(path));
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
    CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveTarget(path));
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
    std::optional<TimePoint> mtime = RequestedMtime(times);
    if (!mtime) return Status::Ok();
    CADCANFS_ASSIGN_OR_RETURN(DriveItem changed,
                              context_->client.Update(item.id, graph::ItemUpdate{.mtime = mtime}));
    context_->RecordOwn(path, changed);
    return Status::Ok();
  }

  Result<StoreSpace> Space() override {
    StoreSpace space;
    space.block_size = kSpaceBlockSize;
    space.total_blocks = space.free_blocks = space.available_blocks = kSpaceTotalBlocks;
    space.total_files = space.free_files = kSpaceTotalFiles;
    return space;
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

  // The item at `path`, from the table or looked up from the deepest known ancestor.
  Result<DriveItem> Resolve(std::string_view path) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    auto [known_path, known] = context_->table.DeepestKnown(path);
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
      return std::unique_ptr<StoreFile>(std::make_unique<OneDriveWriter>(
          context_, std::string(path), target.existing, "", "", options.truncate));
    }
    if (!options.create) return NotFound();
    CADCANFS_RETURN_IF_ERROR(CheckNewName(path, ObjectType::kFile));
    return std::unique_ptr<StoreFile>(
        std::make_unique<OneDriveWriter>(context_, std::string(path), std::nullopt,
                                         target.parent.id, std::string(StoreBaseName(path)),
                                         /*start_empty=*/true));
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
