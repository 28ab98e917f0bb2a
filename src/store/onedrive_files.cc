#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

#include "onedrive_context.h"

namespace cadcanfs::onedrive {

Status Unsupported(const char* what) {
  return Status::Error(Code::kUnsupported, std::string("a OneDrive store has no ") + what);
}

Status ChangedElsewhere() {
  return Status::Error(Code::kChangedElsewhere,
                       "the object changed elsewhere since the writer's version");
}

Status NotFound() { return Status::Error(Code::kNotFound, "no such object"); }

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

std::optional<TimePoint> RequestedMtime(const struct timespec times[2]) {
  if (times == nullptr || times[1].tv_nsec == UTIME_NOW) {
    return std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  }
  if (times[1].tv_nsec == UTIME_OMIT) return std::nullopt;
  return TimePoint(std::chrono::seconds(times[1].tv_sec) +
                   std::chrono::nanoseconds(times[1].tv_nsec));
}

std::string VersionTag(const DriveItem& item) {
  return !item.is_folder && !item.ctag.empty() ? item.ctag : item.etag;
}

namespace {

// An open object for reading: ranged downloads of the item opened.
class OneDriveReader final : public WholeObjectFile {
 public:
  OneDriveReader(std::shared_ptr<Context> context, std::string path, const DriveItem& item)
      : context_(std::move(context)),
        path_(std::move(path)),
        id_(item.id),
        info_(context_->Describe(item)) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    return context_->client.Download(id_, offset, out);
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
class OneDriveWriter final : public WholeObjectFile {
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

  // A session someone may still continue (its state was handed out for the journal)
  // is left to expire; any other is cancelled.
  ~OneDriveWriter() override {
    if (session_handed_out_) return;
    CancelSession();
    CancelLeftSession();
  }

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    std::unique_lock lock(mu_);
    if (!dirty_) {
      if (target_.item_id.empty()) return size_t{0};
      const std::string id = target_.item_id;
      lock.unlock();
      return context_->client.Download(id, offset, out);
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
    session_.reset();  // finished: nothing left to cancel
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

  // The running upload session, for the staging journal (it holds the session's
  // pre-authenticated URL: the journal is encrypted).
  // After a failed upload it is the session the writer had to leave: a new writer
  // continues it from where the service stands.
  std::string ResumeState() override {
    std::lock_guard lock(mu_);
    const std::optional<graph::UploadSessionState>& session = session_ ? session_ : left_session_;
    if (!session) return std::string();
    session_handed_out_ = true;
    return session->Serialize();
  }

  // Continues the session `state` describes, if it uploads this object at the size
  // declared: the bytes before its next offset are with the service already. If the
  // service holds more than the state says (a fragment landed after it was saved),
  // the first fragment sent gets 416 and the session continues from the service's
  // offset; a session gone (expired, cancelled) makes this upload fail, and the next
  // attempt starts over.
  uint64_t ResumeUpload(std::string_view state) override {
    std::lock_guard lock(mu_);
    if (session_ || written_ != 0 || !declared_size_) return 0;
    Result<graph::UploadSessionState> resumed = graph::UploadSessionState::Deserialize(state);
    if (!resumed.ok() || resumed->total_size != *declared_size_ ||
        !SameUploadTarget(resumed->target) ||
        resumed->expires_at <= std::chrono::system_clock::now()) {
      return 0;
    }
    session_ = std::move(resumed).value();
    window_start_ = written_ = session_->next_offset;
    dirty_ = true;
    mtime_sent_ = session_->options.mtime.has_value();
    return written_;
  }

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

  bool SameUploadTarget(const graph::UploadTarget& other) const {
    if (!target_.item_id.empty()) return other.item_id == target_.item_id;
    return other.item_id.empty() && other.parent_id == target_.parent_id &&
           other.name == target_.name;
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
    Cancel(*session_);
    session_.reset();
  }

  void CancelLeftSession() {
    if (!left_session_) return;
    Cancel(*left_session_);
    left_session_.reset();
  }

  void Cancel(const graph::UploadSessionState& session) {
    Status cancelled = context_->client.CancelUploadSession(session);
    if (!cancelled.ok())
      spdlog::debug("onedrive: upload session not cancelled: {}", cancelled.message());
  }

  // A failed upload keeps its session: the service holds what it confirmed, and the
  // failure may pass (a dropped link, throttling). While every byte is still held, a
  // later Commit continues it; once some were let go, this writer can only start
  // again from nothing, but a new writer fed from where the service stands can
  // continue the session through ResumeState.
  void AfterFailedUpload() {
    if (window_start_ == 0) return;
    std::optional<graph::UploadSessionState> left = std::move(session_);
    session_.reset();
    ResetUpload();
    left_session_ = std::move(left);
    broken_ = true;
  }

  // Drops what was written and any session; the writer starts again from its base.
  void ResetUpload() {
    CancelSession();
    CancelLeftSession();
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
  // A session a failed upload left with bytes this writer no longer holds, for
  // ResumeState; cancelled once this writer starts again or goes unless handed out.
  std::optional<graph::UploadSessionState> left_session_;
  bool session_handed_out_ = false;  // ResumeState gave a session away
  bool paused_ = false;              // the session stopped for want of bytes, not for an error
  bool broken_ = false;              // an upload failed with bytes already let go
  std::optional<TimePoint> pending_mtime_;
  bool mtime_sent_ = false;  // the upload carries pending_mtime_
};

}  // namespace

std::unique_ptr<StoreFile> NewReader(std::shared_ptr<Context> context, std::string path,
                                     const DriveItem& item) {
  return std::make_unique<OneDriveReader>(std::move(context), std::move(path), item);
}

std::unique_ptr<StoreFile> NewWriter(std::shared_ptr<Context> context, std::string path,
                                     std::optional<DriveItem> existing, std::string parent_id,
                                     std::string name, bool start_empty) {
  return std::make_unique<OneDriveWriter>(std::move(context), std::move(path), std::move(existing),
                                          std::move(parent_id), std::move(name), start_empty);
}

}  // namespace cadcanfs::onedrive
