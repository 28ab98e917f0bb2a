#include "cadcanfs/store/remote_like_store.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/store/local_store.h"
#include "cadcanfs/store/memory_store.h"

namespace cadcanfs {

// ---- Call counting, latency and faults

std::string_view RemoteCallName(RemoteCall kind) {
  static constexpr std::array<std::string_view, kRemoteCallKinds> kNames = {
      "stat",     "list",   "open-read",  "read-range",   "open-write",
      "download", "commit", "read-small", "write-atomic", "mkdir",
      "rmdir",    "remove", "rename",     "set-times",    "space"};
  return kNames[static_cast<size_t>(kind)];
}

uint64_t RemoteLikeControls::Calls(RemoteCall kind) const {
  return calls_[static_cast<size_t>(kind)].load();
}

uint64_t RemoteLikeControls::TotalCalls() const {
  uint64_t total = 0;
  for (const auto& count : calls_) total += count.load();
  return total;
}

void RemoteLikeControls::ResetCalls() {
  for (auto& count : calls_) count.store(0);
  max_reads_in_flight_.store(reads_in_flight_.load());
}

RemoteLikeControls::ReadInFlight::ReadInFlight(RemoteLikeControls& controls) : controls_(controls) {
  const uint64_t now = controls_.reads_in_flight_.fetch_add(1) + 1;
  uint64_t most = controls_.max_reads_in_flight_.load();
  while (now > most && !controls_.max_reads_in_flight_.compare_exchange_weak(most, now)) {
  }
}

RemoteLikeControls::ReadInFlight::~ReadInFlight() { controls_.reads_in_flight_.fetch_sub(1); }

std::string RemoteLikeControls::CountsJson() const {
  nlohmann::json counts = nlohmann::json::object();
  for (size_t kind = 0; kind < kRemoteCallKinds; ++kind) {
    counts[std::string(RemoteCallName(static_cast<RemoteCall>(kind)))] = calls_[kind].load();
  }
  counts["total"] = TotalCalls();
  counts["read-range-max-in-flight"] = MaxReadsInFlight();
  return counts.dump();
}

void RemoteLikeControls::FailNthCall(RemoteCall kind, uint64_t n, Code code, FaultTiming timing) {
  std::lock_guard lock(mu_);
  nth_rules_.push_back(NthRule{kind, std::max<uint64_t>(n, 1), code, timing});
}

void RemoteLikeControls::FailRandomly(RemoteCall kind, double probability, Code code, uint64_t seed,
                                      FaultTiming timing) {
  std::lock_guard lock(mu_);
  random_.seed(seed);
  random_rules_.push_back(RandomRule{kind, probability, code, timing});
}

void RemoteLikeControls::ClearFaults() {
  std::lock_guard lock(mu_);
  nth_rules_.clear();
  random_rules_.clear();
}

RemoteLikeControls::Fault RemoteLikeControls::MakeFault(Code code, FaultTiming timing) {
  Status status = Status::Error(code, "the remote-like store injected a fault into this call");
  Fault fault;
  if (timing == FaultTiming::kBeforeApplying) {
    fault.before = std::move(status);
  } else {
    fault.after = std::move(status);
  }
  return fault;
}

RemoteLikeControls::Fault RemoteLikeControls::DecideFault(RemoteCall kind) {
  std::lock_guard lock(mu_);
  for (auto it = nth_rules_.begin(); it != nth_rules_.end(); ++it) {
    if (it->kind != kind || --it->remaining > 0) continue;
    Fault fault = MakeFault(it->code, it->timing);
    nth_rules_.erase(it);
    return fault;
  }
  for (const RandomRule& rule : random_rules_) {
    if (rule.kind != kind) continue;
    if (std::uniform_real_distribution<double>(0.0, 1.0)(random_) < rule.probability) {
      return MakeFault(rule.code, rule.timing);
    }
  }
  return Fault{};
}

RemoteLikeControls::Fault RemoteLikeControls::Begin(RemoteCall kind) {
  calls_[static_cast<size_t>(kind)].fetch_add(1);
  Fault fault = DecideFault(kind);
  int64_t delay = latency_us_.load();
  if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
  return fault;
}

// ---- OneDrive's name rules

namespace {

char FoldAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Folded(std::string_view name) {
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(), FoldAscii);
  return out;
}

bool SameFolded(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return FoldAscii(x) == FoldAscii(y);
         });
}

bool IsReservedDeviceName(std::string_view folded) {
  for (std::string_view device : {"con", "prn", "aux", "nul"}) {
    if (folded == device) return true;
  }
  if (folded.size() == 4 && (folded.starts_with("com") || folded.starts_with("lpt"))) {
    return folded[3] >= '0' && folded[3] <= '9';
  }
  return false;
}

Status InvalidName(const char* why) {
  return Status::Error(Code::kInvalidArgument, std::string("OneDrive refuses this name: ") + why);
}

}  // namespace

Status CheckRemoteName(std::string_view name, ObjectType type) {
  if (name.find_first_of("\"*:<>?/\\|") != std::string_view::npos) {
    return InvalidName("it holds one of \" * : < > ? / \\ |");
  }
  if (name.starts_with(' ') || name.ends_with(' ')) {
    return InvalidName("it starts or ends with a space");
  }
  if (name.ends_with('.')) return InvalidName("it ends with a dot");
  std::string folded = Folded(name);
  if (IsReservedDeviceName(folded) || folded == ".lock" || folded == "desktop.ini") {
    return InvalidName("it is reserved");
  }
  if (folded.find("_vti_") != std::string::npos) return InvalidName("it contains _vti_");
  if (name.starts_with("~$")) return InvalidName("it starts with ~$");
  if (type == ObjectType::kDirectory && name.starts_with('~')) {
    return InvalidName("a folder name starts with ~");
  }
  return Status::Ok();
}

namespace {

// What OneDrive counts as a path's length: UTF-16 code units.
size_t Utf16Length(std::string_view utf8) {
  size_t units = 0;
  for (char c : utf8) {
    auto byte = static_cast<unsigned char>(c);
    if ((byte & 0xC0) != 0x80) ++units;  // a UTF-8 lead byte starts one code point
    if (byte >= 0xF0) ++units;           // outside the BMP: a UTF-16 surrogate pair
  }
  return units;
}

Status PathTooLong(size_t max_length) {
  return Status::Error(Code::kNameTooLong, "the path is longer than the store allows (" +
                                               std::to_string(max_length) + " characters)");
}

}  // namespace

Status CheckRemotePathLength(std::string_view path, size_t max_length) {
  if (Utf16Length(path) > max_length) return PathTooLong(max_length);
  return Status::Ok();
}

namespace {

// ---- The decorator

constexpr mode_t kFileMode = 0644;
constexpr mode_t kDirectoryMode = 0755;
constexpr size_t kCopyChunk = 1 << 20;

Status Unsupported(const char* what) {
  return Status::Error(Code::kUnsupported, std::string("a OneDrive-like store has no ") + what);
}

// HTTP 412 to an If-Match.
Status ChangedElsewhere() {
  return Status::Error(Code::kChangedElsewhere,
                       "the object changed elsewhere since the writer's version");
}

// A call's own result, unless a fault injected after it took effect replaces it.
template <typename T>
Result<T> WithFault(const RemoteLikeControls::Fault& fault, Result<T> result) {
  if (result.ok() && !fault.after.ok()) return fault.after;
  return result;
}
Status WithFault(const RemoteLikeControls::Fault& fault, Status status) {
  if (status.ok() && !fault.after.ok()) return fault.after;
  return status;
}

bool AllZero(ByteSpan bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// Per object of the wrapped store: its content version (the eTag) and the lock that
// makes a commit atomic for readers.
struct ObjectState {
  std::shared_mutex content_mu;
  std::atomic<uint64_t> version{0};
};

class ObjectTable {
 public:
  std::shared_ptr<ObjectState> Get(const ObjectId& id) {
    std::lock_guard lock(mu_);
    auto& state = objects_[id];
    if (state == nullptr) state = std::make_shared<ObjectState>();
    return state;
  }
  uint64_t Version(const ObjectId& id) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(id);
    return it == objects_.end() ? 0 : it->second->version.load();
  }
  void Forget(const ObjectId& id) {
    std::lock_guard lock(mu_);
    objects_.erase(id);
  }

 private:
  std::mutex mu_;
  std::unordered_map<ObjectId, std::shared_ptr<ObjectState>, ObjectIdHash> objects_;
};

// How objects look from outside: OneDrive's ids, tags, modes and times. Open files
// hold a copy, so that they keep working after their store is gone.
class Presenter {
 public:
  Presenter(const RemoteLikeOptions& options, std::shared_ptr<ObjectTable> table)
      : options_(options), table_(std::move(table)) {}

  ObjectInfo Present(ObjectInfo base) const {
    ObjectInfo info = std::move(base);
    bool directory = info.type == ObjectType::kDirectory;
    if (!info.id.empty()) {
      std::string hex = HexEncode(AsBytes(info.id.bytes()));
      std::string etag = "{";
      etag.append(hex).append("},").append(std::to_string(table_->Version(info.id)));
      info.etag = std::move(etag);
      std::string item_id = "rl!";
      item_id.append(hex);
      info.id = ObjectId(std::move(item_id));
    }
    info.mode = directory ? kDirectoryMode : kFileMode;
    info.uid = options_.uid;
    info.gid = options_.gid;
    info.nlink = directory ? 1 : std::min<uint64_t>(info.nlink, 1);
    info.mtime.tv_nsec = 0;
    info.atime = info.ctime = info.mtime;
    return info;
  }

 private:
  RemoteLikeOptions options_;
  std::shared_ptr<ObjectTable> table_;
};

// An open object for reading: ranged reads of its committed content. Opening it is
// the one round trip that fetched its metadata (on OneDrive, the item with its download
// URL), so it describes itself without another call.
class RemoteReader final : public WholeObjectFile {
 public:
  RemoteReader(std::unique_ptr<StoreFile> base, ObjectInfo opened,
               std::shared_ptr<ObjectState> state, std::shared_ptr<RemoteLikeControls> controls,
               Presenter presenter)
      : base_(std::move(base)),
        state_(std::move(state)),
        controls_(std::move(controls)),
        presenter_(std::move(presenter)),
        info_(presenter_.Present(std::move(opened))) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    if (out.empty()) return size_t{0};
    RemoteLikeControls::ReadInFlight in_flight(*controls_);
    auto fault = controls_->Begin(RemoteCall::kReadRange);
    if (!fault.before.ok()) return fault.before;
    std::shared_lock lock(state_->content_mu);
    return WithFault(fault, base_->ReadAt(offset, out));
  }
  Status WriteAt(uint64_t offset, ByteSpan data) override { return base_->WriteAt(offset, data); }
  Status Truncate(uint64_t size) override { return base_->Truncate(size); }
  // A reader has nothing to commit: it describes the object, checking the eTag.
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, Stat());
    if (if_match_etag && *if_match_etag != info.etag) return ChangedElsewhere();
    return info;
  }
  Status Checkpoint() override { return Status::Ok(); }
  Status Abort() override { return Status::Ok(); }
  Result<uint64_t> Size() override {
    std::shared_lock lock(state_->content_mu);
    return base_->Size();
  }
  Result<ObjectInfo> Stat() override {
    std::lock_guard lock(info_mu_);
    return info_;
  }
  // The reply of the PATCH is the item as changed.
  Status SetTimes(const struct timespec times[2]) override {
    auto fault = controls_->Begin(RemoteCall::kSetTimes);
    if (!fault.before.ok()) return fault.before;
    Status set = base_->SetTimes(times);
    if (set.ok()) {
      auto changed = base_->Stat();
      if (!changed.ok()) return changed.status();
      std::lock_guard lock(info_mu_);
      info_ = presenter_.Present(std::move(changed).value());
    }
    return WithFault(fault, std::move(set));
  }

 private:
  const std::unique_ptr<StoreFile> base_;
  const std::shared_ptr<ObjectState> state_;
  const std::shared_ptr<RemoteLikeControls> controls_;
  const Presenter presenter_;
  std::mutex info_mu_;
  ObjectInfo info_;  // guarded by info_mu_
};

// An open object for writing: a private upload buffer, committed whole by Commit().
class RemoteWriter final : public WholeObjectFile {
 public:
  RemoteWriter(std::unique_ptr<StoreFile> base, std::shared_ptr<ObjectState> state,
               std::unique_ptr<StoreFile> buffer, uint64_t committed_size, bool start_empty,
               std::shared_ptr<RemoteLikeControls> controls, Presenter presenter)
      : base_(std::move(base)),
        state_(std::move(state)),
        buffer_(std::move(buffer)),
        controls_(std::move(controls)),
        presenter_(std::move(presenter)),
        base_version_(state_->version.load()),
        committed_size_(committed_size),
        loaded_(committed_size == 0 || start_empty),
        dirty_(start_empty && committed_size != 0) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    std::shared_lock lock(sync_mu_);
    CADCANFS_RETURN_IF_ERROR(EnsureLoaded());
    return buffer_->ReadAt(offset, out);
  }

  Status WriteAt(uint64_t offset, ByteSpan data) override {
    if (data.empty()) return Status::Ok();
    std::shared_lock lock(sync_mu_);
    CADCANFS_RETURN_IF_ERROR(EnsureLoaded());
    dirty_.store(true);
    return buffer_->WriteAt(offset, data);
  }

  Status Truncate(uint64_t size) override {
    std::shared_lock lock(sync_mu_);
    // Truncating to nothing needs none of the old content: no download.
    if (size == 0 && !loaded_.load()) {
      std::lock_guard load(load_mu_);
      loaded_.store(true);
    }
    CADCANFS_RETURN_IF_ERROR(EnsureLoaded());
    dirty_.store(true);
    return buffer_->Truncate(size);
  }

  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    {
      std::unique_lock lock(sync_mu_);
      if (dirty_.load()) {
        auto fault = controls_->Begin(RemoteCall::kCommit);
        if (!fault.before.ok()) return fault.before;
        CADCANFS_RETURN_IF_ERROR(Upload(if_match_etag));
        CADCANFS_RETURN_IF_ERROR(WithFault(fault, Status::Ok()));
      } else if (if_match_etag) {
        CADCANFS_RETURN_IF_ERROR(CheckIfMatch(*if_match_etag));
      }
    }
    // The upload's reply describes the item: no further request.
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base_->Stat());
    CADCANFS_ASSIGN_OR_RETURN(info.size, Size());
    return presenter_.Present(std::move(info));
  }

  // The upload buffer lives in this process only: a crash loses it whatever is done.
  Status Checkpoint() override { return Status::Ok(); }

  // The upload session is dropped: the writer starts again from the committed object.
  Status Abort() override {
    std::unique_lock lock(sync_mu_);
    CADCANFS_RETURN_IF_ERROR(buffer_->Truncate(0));
    loaded_.store(committed_size_ == 0);
    dirty_.store(false);
    std::lock_guard times(times_mu_);
    pending_times_.reset();
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    std::shared_lock lock(sync_mu_);
    if (!loaded_.load()) return committed_size_;
    return buffer_->Size();
  }

  Result<ObjectInfo> Stat() override {
    auto fault = controls_->Begin(RemoteCall::kStat);
    if (!fault.before.ok()) return fault.before;
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base_->Stat());
    CADCANFS_ASSIGN_OR_RETURN(info.size, Size());
    return WithFault(fault, Result<ObjectInfo>(presenter_.Present(std::move(info))));
  }

  Status SetTimes(const struct timespec times[2]) override {
    auto fault = controls_->Begin(RemoteCall::kSetTimes);
    if (!fault.before.ok()) return fault.before;
    CADCANFS_RETURN_IF_ERROR(base_->SetTimes(times));
    std::lock_guard lock(times_mu_);
    if (times == nullptr) {
      pending_times_.reset();
    } else {
      pending_times_ = std::array<struct timespec, 2>{times[0], times[1]};
    }
    return WithFault(fault, Status::Ok());
  }

 private:
  // Fetches the committed content into the buffer once, on first need.
  Status EnsureLoaded() {
    if (loaded_.load()) return Status::Ok();
    std::lock_guard load(load_mu_);
    if (loaded_.load()) return Status::Ok();
    auto fault = controls_->Begin(RemoteCall::kDownload);
    if (!fault.before.ok()) return fault.before;
    std::shared_lock content(state_->content_mu);
    CADCANFS_RETURN_IF_ERROR(Copy(*base_, *buffer_));
    loaded_.store(true);
    return WithFault(fault, Status::Ok());
  }

  // Replaces `to`'s content with `from`'s, skipping runs of zeros so that a sparse
  // object stays sparse.
  static Status Copy(StoreFile& from, StoreFile& to) {
    CADCANFS_ASSIGN_OR_RETURN(uint64_t size, from.Size());
    CADCANFS_RETURN_IF_ERROR(to.Truncate(0));
    CADCANFS_RETURN_IF_ERROR(to.Truncate(size));
    Bytes chunk(static_cast<size_t>(std::min<uint64_t>(size, kCopyChunk)));
    for (uint64_t offset = 0; offset < size;) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), size - offset));
      CADCANFS_ASSIGN_OR_RETURN(size_t got,
                                from.ReadAt(offset, MutableByteSpan(chunk.data(), want)));
      if (got == 0) break;
      ByteSpan piece(chunk.data(), got);
      if (!AllZero(piece)) CADCANFS_RETURN_IF_ERROR(to.WriteAt(offset, piece));
      offset += got;
    }
    return Status::Ok();
  }

  // If-Match without an upload: the object's current eTag must be `etag`.
  Status CheckIfMatch(const std::string& etag) {
    std::shared_lock content(state_->content_mu);
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo current, base_->Stat());
    if (presenter_.Present(std::move(current)).etag != etag) return ChangedElsewhere();
    return Status::Ok();
  }

  // The upload: one whole-object replace, if the object is still the one this writer
  // started from and, with `if_match_etag`, the version that names. Callers hold
  // sync_mu_ exclusively.
  Status Upload(const std::optional<std::string>& if_match_etag) {
    std::unique_lock content(state_->content_mu);
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo current, base_->Stat());
    if (current.nlink == 0) {
      return Status::Error(Code::kNotFound, "the object was deleted before its upload finished");
    }
    if (state_->version.load() != base_version_) return ChangedElsewhere();
    if (if_match_etag && presenter_.Present(std::move(current)).etag != *if_match_etag) {
      return ChangedElsewhere();
    }
    CADCANFS_RETURN_IF_ERROR(Copy(*buffer_, *base_));
    {
      std::lock_guard lock(times_mu_);
      if (pending_times_) CADCANFS_RETURN_IF_ERROR(base_->SetTimes(pending_times_->data()));
    }
    base_version_ = state_->version.fetch_add(1) + 1;
    CADCANFS_ASSIGN_OR_RETURN(committed_size_, buffer_->Size());
    dirty_.store(false);
    return Status::Ok();
  }

  const std::unique_ptr<StoreFile> base_;  // the stored object, opened for writing
  const std::shared_ptr<ObjectState> state_;
  const std::unique_ptr<StoreFile> buffer_;  // the upload buffer, in a private MemoryStore
  const std::shared_ptr<RemoteLikeControls> controls_;
  const Presenter presenter_;

  // Shared by WriteAt, ReadAt and Truncate; exclusive for a commit.
  std::shared_mutex sync_mu_;
  std::mutex load_mu_;
  uint64_t base_version_;    // the eTag this writer's commit is conditional on
  uint64_t committed_size_;  // of the object as last downloaded or committed
  std::atomic<bool> loaded_;
  std::atomic<bool> dirty_{false};
  std::mutex times_mu_;
  std::optional<std::array<struct timespec, 2>> pending_times_;
};

// Keeps `path` holding the controls' counters for readers outside the process.
class CountsFileWriter {
 public:
  CountsFileWriter(std::string path, std::shared_ptr<RemoteLikeControls> controls)
      : path_(std::move(path)), controls_(std::move(controls)), thread_([this] { Loop(); }) {}

  ~CountsFileWriter() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    WriteIfChanged();
  }

 private:
  static constexpr std::chrono::milliseconds kPeriod{100};

  void Loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      WriteIfChanged();
      lock.lock();
      wake_.wait_for(lock, kPeriod, [this] { return stopping_; });
    }
  }

  // A temporary file renamed over the old one: a reader sees a whole snapshot.
  void WriteIfChanged() {
    std::string counts = controls_->CountsJson();
    if (counts == written_) return;
    const std::string temporary = path_ + ".tmp";
    {
      std::ofstream out(temporary, std::ios::trunc);
      out << counts << "\n";
      if (!out.flush()) return;
    }
    if (std::rename(temporary.c_str(), path_.c_str()) == 0) written_ = std::move(counts);
  }

  const std::string path_;
  const std::shared_ptr<RemoteLikeControls> controls_;
  std::string written_;  // only the writer's thread, then the destructor, touch it
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

class RemoteLikeStoreImpl final : public RemoteLikeStore {
 public:
  RemoteLikeStoreImpl(std::unique_ptr<Store> base, RemoteLikeOptions options)
      : base_(std::move(base)),
        options_(options),
        controls_(std::make_shared<RemoteLikeControls>(options.latency)),
        objects_(std::make_shared<ObjectTable>()),
        presenter_(options_, objects_),
        buffers_(NewUploadBufferStore(buffer_dir_)),
        counts_writer_(options_.counts_file.empty()
                           ? nullptr
                           : std::make_unique<CountsFileWriter>(options_.counts_file, controls_)) {}

  ~RemoteLikeStoreImpl() override {
    if (!buffer_dir_.empty()) (void)rmdir(buffer_dir_.c_str());
  }

  std::shared_ptr<RemoteLikeControls> controls() const override { return controls_; }

  StoreCapabilities capabilities() const override {
    return StoreCapabilities{
        .case_insensitive = true, .max_path_length = options_.max_path_length, .remote = true};
  }

  Result<ObjectInfo> Stat(std::string_view path) override {
    auto fault = controls_->Begin(RemoteCall::kStat);
    if (!fault.before.ok()) return fault.before;
    std::shared_lock names(names_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string actual, Resolve(path));
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base_->Stat(actual));
    return WithFault(fault, Result<ObjectInfo>(presenter_.Present(std::move(info))));
  }

  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    auto fault = controls_->Begin(RemoteCall::kList);
    if (!fault.before.ok()) return fault.before;
    std::vector<DirEntry> entries;
    {
      std::shared_lock names(names_mu_);
      CADCANFS_ASSIGN_OR_RETURN(std::string actual, Resolve(dir));
      CADCANFS_ASSIGN_OR_RETURN(entries, base_->List(actual));
      for (DirEntry& entry : entries) {
        if (!entry.info) {
          CADCANFS_ASSIGN_OR_RETURN(entry.info, base_->Stat(JoinStorePath(actual, entry.name)));
        }
        entry.info = presenter_.Present(std::move(*entry.info));
      }
    }
    // Every further page is one more request.
    size_t page = std::max<size_t>(options_.list_page_size, 1);
    for (size_t listed = page; listed < entries.size(); listed += page) {
      auto next = controls_->Begin(RemoteCall::kList);
      if (!next.before.ok()) return next.before;
      if (!next.after.ok()) return next.after;
    }
    return WithFault(fault, Result<std::vector<DirEntry>>(std::move(entries)));
  }

  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    if (options.write || options.create) return OpenForWriting(path, options);
    auto fault = controls_->Begin(RemoteCall::kOpenRead);
    if (!fault.before.ok()) return fault.before;
    std::shared_lock names(names_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string actual, Resolve(path));
    CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> file, base_->Open(actual, OpenOptions{}));
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, file->Stat());
    std::shared_ptr<ObjectState> state = objects_->Get(info.id);
    std::unique_ptr<StoreFile> reader = std::make_unique<RemoteReader>(
        std::move(file), std::move(info), std::move(state), controls_, presenter_);
    return WithFault(fault, Result<std::unique_ptr<StoreFile>>(std::move(reader)));
  }

  Result<Bytes> ReadSmall(std::string_view path, size_t max_size) override {
    auto fault = controls_->Begin(RemoteCall::kReadSmall);
    if (!fault.before.ok()) return fault.before;
    std::shared_lock names(names_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string actual, Resolve(path));
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base_->Stat(actual));
    std::shared_ptr<ObjectState> state = objects_->Get(info.id);
    std::shared_lock content(state->content_mu);
    return WithFault(fault, base_->ReadSmall(actual, max_size));
  }

  Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive) override {
    auto fault = controls_->Begin(RemoteCall::kWriteAtomic);
    if (!fault.before.ok()) return fault.before;
    std::unique_lock names(names_mu_);
    if (path.empty()) return base_->WriteAtomic(path, data, exclusive);
    CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveTarget(path));
    if (!target.existing) {
      CADCANFS_RETURN_IF_ERROR(CheckNewName(path, ObjectType::kFile));
      return WithFault(fault, base_->WriteAtomic(target.Requested(), data, /*exclusive=*/true));
    }
    if (exclusive) return Status::Error(Code::kAlreadyExists, "the object already exists");
    // A PUT onto an existing item replaces its content and keeps its id.
    std::string actual = target.Existing();
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base_->Stat(actual));
    if (info.type == ObjectType::kDirectory) {
      return Status::Error(Code::kIsADirectory, "the object is a directory");
    }
    CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> file,
                              base_->Open(actual, OpenOptions{.write = true}));
    std::shared_ptr<ObjectState> state = objects_->Get(info.id);
    std::unique_lock content(state->content_mu);
    CADCANFS_RETURN_IF_ERROR(file->Truncate(0));
    CADCANFS_RETURN_IF_ERROR(file->WriteAt(0, data));
    state->version.fetch_add(1);
    return WithFault(fault, Status::Ok());
  }

  Status MakeDir(std::string_view path, uint32_t) override {
    auto fault = controls_->Begin(RemoteCall::kMakeDir);
    if (!fault.before.ok()) return fault.before;
    std::unique_lock names(names_mu_);
    if (path.empty()) return base_->MakeDir(path, kDirectoryMode);
    CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveTarget(path));
    if (target.existing) return Status::Error(Code::kAlreadyExists, "the name is taken");
    CADCANFS_RETURN_IF_ERROR(CheckNewName(path, ObjectType::kDirectory));
    return WithFault(fault, base_->MakeDir(target.Requested(), kDirectoryMode));
  }

  Status RemoveDir(std::string_view path) override {
    auto fault = controls_->Begin(RemoteCall::kRemoveDir);
    if (!fault.before.ok()) return fault.before;
    std::unique_lock names(names_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string actual, Resolve(path));
    return WithFault(fault, base_->RemoveDir(actual));
  }

  Status Remove(std::string_view path) override {
    auto fault = controls_->Begin(RemoteCall::kRemove);
    if (!fault.before.ok()) return fault.before;
    std::unique_lock names(names_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string actual, Resolve(path));
    auto info = base_->Stat(actual);
    CADCANFS_RETURN_IF_ERROR(base_->Remove(actual));
    if (info.ok()) objects_->Forget(info->id);
    return WithFault(fault, Status::Ok());
  }

  Status Rename(std::string_view from, std::string_view to, RenameMode mode) override {
    if (mode == RenameMode::kExchange) return Unsupported("atomic exchange of two names");
    auto fault = controls_->Begin(RemoteCall::kRename);
    if (!fault.before.ok()) return fault.before;
    std::unique_lock names(names_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string source, Resolve(from));
    if (to.empty()) return base_->Rename(source, to, mode);
    CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveTarget(to));
    std::string requested = target.Requested();
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base_->Stat(source));
    if (!target.existing) CADCANFS_RETURN_IF_ERROR(CheckNewName(to, info.type));
    if (info.type == ObjectType::kDirectory) CADCANFS_RETURN_IF_ERROR(CheckMovedTree(source, to));
    if (!target.existing) return WithFault(fault, base_->Rename(source, requested, mode));
    std::string existing = target.Existing();
    if (existing == source || existing == requested) {
      // Onto itself (maybe in another case), or onto another object in the same case.
      return WithFault(fault, base_->Rename(source, requested, mode));
    }
    // Onto another object stored in another case: replace it, then take the new case.
    if (mode == RenameMode::kNoReplace) {
      return Status::Error(Code::kAlreadyExists, "the name is taken");
    }
    CADCANFS_RETURN_IF_ERROR(base_->Rename(source, existing, mode));
    return WithFault(fault, base_->Rename(existing, requested, RenameMode::kNoReplace));
  }

  Status SyncDir(std::string_view dir) override {
    std::shared_lock names(names_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string actual, Resolve(dir));
    return base_->SyncDir(actual);
  }

  Status Symlink(std::string_view, std::string_view) override { return Unsupported("symlinks"); }
  Result<std::string> ReadLink(std::string_view) override { return Unsupported("symlinks"); }
  Status Link(std::string_view, std::string_view) override { return Unsupported("hard links"); }
  Status MakeNode(std::string_view, ObjectType, uint32_t, uint64_t) override {
    return Unsupported("special files");
  }
  Status SetMode(std::string_view, uint32_t) override { return Unsupported("file modes"); }
  Status SetOwner(std::string_view, uid_t, gid_t) override { return Unsupported("file owners"); }

  Status SetTimes(std::string_view path, const struct timespec times[2]) override {
    auto fault = controls_->Begin(RemoteCall::kSetTimes);
    if (!fault.before.ok()) return fault.before;
    std::shared_lock names(names_mu_);
    CADCANFS_ASSIGN_OR_RETURN(std::string actual, Resolve(path));
    return WithFault(fault, base_->SetTimes(actual, times));
  }

  Result<StoreSpace> Space() override {
    auto fault = controls_->Begin(RemoteCall::kSpace);
    if (!fault.before.ok()) return fault.before;
    return WithFault(fault, base_->Space());
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

 private:
  // Where a name is to be created: its parent as stored, the name as asked, and the
  // stored name of an entry that already holds it in any case.
  struct Target {
    std::string parent;
    std::string name;
    std::optional<std::string> existing;
    std::string Requested() const { return JoinStorePath(parent, name); }
    std::string Existing() const { return JoinStorePath(parent, *existing); }
  };

  // The stored name of `name` in the stored directory `dir`, matching case exactly
  // first, or nullopt. Callers hold names_mu_.
  Result<std::optional<std::string>> FindChild(const std::string& dir, std::string_view name) {
    CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, base_->List(dir));
    std::optional<std::string> found;
    for (DirEntry& entry : entries) {
      if (entry.name == name) return std::optional<std::string>(std::move(entry.name));
      if (!found && SameFolded(entry.name, name)) found = std::move(entry.name);
    }
    return found;
  }

  // The stored path of an existing object named `path` in any case. Callers hold
  // names_mu_.
  Result<std::string> Resolve(std::string_view path) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    if (path.empty()) return std::string();
    auto exact = base_->Stat(path);
    if (exact.ok()) return std::string(path);
    if (exact.status().code() != Code::kNotFound) return exact.status();
    std::string actual;
    size_t start = 0;
    while (start <= path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string_view::npos) slash = path.size();
      CADCANFS_ASSIGN_OR_RETURN(std::optional<std::string> name,
                                FindChild(actual, path.substr(start, slash - start)));
      if (!name) return Status::Error(Code::kNotFound, "no such object");
      actual = JoinStorePath(actual, *name);
      start = slash + 1;
    }
    return actual;
  }

  // Callers hold names_mu_ exclusively; `path` is not the root.
  Result<Target> ResolveTarget(std::string_view path) {
    CADCANFS_RETURN_IF_ERROR(ValidateStorePath(path));
    Target target;
    CADCANFS_ASSIGN_OR_RETURN(target.parent, Resolve(StoreParent(path)));
    target.name = std::string(StoreBaseName(path));
    CADCANFS_ASSIGN_OR_RETURN(target.existing, FindChild(target.parent, target.name));
    return target;
  }

  // The longest path below the stored directory `dir`, relative to it, in UTF-16 code
  // units (0 if it is empty). Callers hold names_mu_.
  Result<size_t> LongestPathBelow(const std::string& dir) {
    CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, base_->List(dir));
    size_t longest = 0;
    for (const DirEntry& entry : entries) {
      size_t length = Utf16Length(entry.name);
      if (entry.type == ObjectType::kDirectory) {
        CADCANFS_ASSIGN_OR_RETURN(size_t below, LongestPathBelow(JoinStorePath(dir, entry.name)));
        if (below > 0) length += 1 + below;
      }
      longest = std::max(longest, length);
    }
    return longest;
  }

  // A folder moved to `to` must not take anything below it past the path limit.
  Status CheckMovedTree(const std::string& source, std::string_view to) {
    CADCANFS_ASSIGN_OR_RETURN(size_t below, LongestPathBelow(source));
    if (below > 0 && Utf16Length(to) + 1 + below > options_.max_path_length) {
      return PathTooLong(options_.max_path_length);
    }
    return Status::Ok();
  }

  Status CheckNewName(std::string_view path, ObjectType type) const {
    CADCANFS_RETURN_IF_ERROR(CheckRemoteName(StoreBaseName(path), type));
    return CheckRemotePathLength(path, options_.max_path_length);
  }

  Result<std::unique_ptr<StoreFile>> OpenForWriting(std::string_view path,
                                                    const OpenOptions& options) {
    auto fault = controls_->Begin(RemoteCall::kOpenWrite);
    if (!fault.before.ok()) return fault.before;
    std::unique_ptr<StoreFile> file;
    {
      std::unique_lock names(names_mu_);
      if (path.empty()) return base_->Open(path, options);
      CADCANFS_ASSIGN_OR_RETURN(Target target, ResolveTarget(path));
      if (target.existing) {
        if (options.create && options.exclusive) {
          return Status::Error(Code::kAlreadyExists, "the object already exists");
        }
        CADCANFS_ASSIGN_OR_RETURN(file, base_->Open(target.Existing(), OpenOptions{.write = true}));
      } else {
        if (!options.create) return Status::Error(Code::kNotFound, "no such object");
        CADCANFS_RETURN_IF_ERROR(CheckNewName(path, ObjectType::kFile));
        CADCANFS_ASSIGN_OR_RETURN(
            file, base_->Open(target.Requested(),
                              OpenOptions{.write = true, .create = true, .exclusive = true}));
      }
    }
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, file->Stat());
    std::shared_ptr<ObjectState> state = objects_->Get(info.id);
    if (!options.write) {
      std::unique_ptr<StoreFile> reader = std::make_unique<RemoteReader>(
          std::move(file), info, std::move(state), controls_, presenter_);
      return WithFault(fault, Result<std::unique_ptr<StoreFile>>(std::move(reader)));
    }
    CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> buffer, NewUploadBuffer());
    uint64_t committed_size;
    {
      std::shared_lock content(state->content_mu);
      CADCANFS_ASSIGN_OR_RETURN(committed_size, file->Size());
    }
    std::unique_ptr<StoreFile> writer =
        std::make_unique<RemoteWriter>(std::move(file), std::move(state), std::move(buffer),
                                       committed_size, options.truncate, controls_, presenter_);
    return WithFault(fault, Result<std::unique_ptr<StoreFile>>(std::move(writer)));
  }

  // Where upload buffers live: unlinked files in a private temporary directory, so that
  // a 2 GiB upload does not sit in memory (as an upload session streams its chunks),
  // or memory if no such directory can be made. Sets `dir` to the directory made.
  static std::unique_ptr<Store> NewUploadBufferStore(std::string& dir) {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp") +
                          "/cadcanfs-remote-like-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) {
      auto store = OpenLocalStore(pattern);
      if (store.ok()) {
        dir = pattern;
        return std::move(store).value();
      }
      (void)rmdir(pattern.c_str());
    }
    return NewMemoryStore();
  }

  // A sparse file with no name: it lives as long as its writer.
  Result<std::unique_ptr<StoreFile>> NewUploadBuffer() {
    std::string name = "upload-" + std::to_string(next_buffer_.fetch_add(1));
    CADCANFS_ASSIGN_OR_RETURN(
        std::unique_ptr<StoreFile> buffer,
        buffers_->Open(name, OpenOptions{.write = true, .create = true, .exclusive = true}));
    CADCANFS_RETURN_IF_ERROR(buffers_->Remove(name));
    return buffer;
  }

  const std::unique_ptr<Store> base_;
  const RemoteLikeOptions options_;
  const std::shared_ptr<RemoteLikeControls> controls_;
  const std::shared_ptr<ObjectTable> objects_;
  const Presenter presenter_;
  // Guards the namespace: a case-insensitive check and the change it allows happen
  // as one step. Shared for lookups, exclusive for changes of names.
  std::shared_mutex names_mu_;
  std::string buffer_dir_;  // the private directory of upload buffers, if on disk
  const std::unique_ptr<Store> buffers_;
  std::atomic<uint64_t> next_buffer_{0};
  const std::unique_ptr<CountsFileWriter> counts_writer_;
};

}  // namespace

std::unique_ptr<RemoteLikeStore> NewRemoteLikeStore(std::unique_ptr<Store> base,
                                                    RemoteLikeOptions options) {
  return std::make_unique<RemoteLikeStoreImpl>(std::move(base), options);
}

}  // namespace cadcanfs
