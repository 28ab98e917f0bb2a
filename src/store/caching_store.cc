#include "cadcanfs/store/caching_store.h"

#include <algorithm>
#include <atomic>
#include <compare>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cadcanfs/common/bytes.h"

namespace cadcanfs {

namespace {

// Read-ahead starts with this many chunks once reads are seen to be sequential.
constexpr size_t kInitialReadaheadChunks = 4;
// Reads that must continue each other before a reader counts as sequential: a vault
// reads its header and then the first block, which alone is no stream.
constexpr int kSequentialStreak = 2;
// The path and object tables are cleared past this size: versions are never reused,
// so forgetting costs at most a Stat, never a stale byte.
constexpr size_t kMaxTrackedObjects = 1 << 20;

struct ChunkKey {
  std::string id;
  uint64_t version = 0;
  uint64_t index = 0;
  auto operator<=>(const ChunkKey&) const = default;
};

// One aligned range of an object. `bytes` is complete once state is kReady; shorter
// than a chunk means the object ends there.
struct Chunk {
  enum class State { kLoading, kReady, kFailed };
  State state = State::kLoading;
  Bytes bytes;
  uint64_t charged = 0;  // bytes counted against the budget while mapped
  bool cached = false;   // mapped (and, once ready, in the LRU list)
  std::list<ChunkKey>::iterator lru;
  Status error;
};

// The chunks, the object versions and the read-ahead workers of one store. Open files
// share it, so it lives as long as the last of them.
class ChunkCache {
 public:
  explicit ChunkCache(const CachingOptions& options)
      : chunk_size_(options.chunk_size),
        budget_(options.budget_bytes),
        max_readahead_(std::max<size_t>(options.max_readahead_chunks, 1)) {
    for (size_t i = 0; i < options.prefetch_threads; ++i) {
      workers_.emplace_back([this] { WorkLoop(); });
    }
  }

  ~ChunkCache() { Shutdown(); }

  // Stops the workers; queued fetches fail, so anyone waiting on them reads directly.
  void Shutdown() {
    std::deque<Task> dropped;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      dropped.swap(queue_);
    }
    work_cv_.notify_all();
    for (std::thread& worker : workers_) worker.join();
    std::lock_guard lock(mu_);
    for (Task& task : dropped) {
      CompleteLocked(task.key, task.chunk,
                     Status::Error(Code::kRetryLater, "the cache was shut down"));
    }
  }

  size_t chunk_size() const { return chunk_size_; }
  size_t max_readahead() const { return max_readahead_; }

  CachingStats stats() const {
    std::lock_guard lock(mu_);
    CachingStats out = stats_;
    out.held_bytes = held_;
    return out;
  }

  // ---- Object versions and the path table

  // Records what a Stat or List said about the object at `path`.
  void Observe(std::string_view path, const ObjectInfo& info) {
    if (info.type != ObjectType::kFile || info.id.empty()) return;
    std::lock_guard lock(mu_);
    ObserveEtagLocked(info.id, info.etag);
    if (paths_.size() >= kMaxTrackedObjects) paths_.clear();
    paths_.insert_or_assign(std::string(path), info.id);
  }

  // Records what an open file's Stat said about its object.
  void ObserveEtag(const ObjectId& id, const std::string& etag) {
    std::lock_guard lock(mu_);
    ObserveEtagLocked(id, etag);
  }

  std::optional<ObjectId> IdOfPath(std::string_view path) const {
    std::lock_guard lock(mu_);
    auto it = paths_.find(path);
    if (it == paths_.end()) return std::nullopt;
    return it->second;
  }

  // Forgets `path` and every path below it.
  void ForgetPaths(std::string_view path) {
    std::lock_guard lock(mu_);
    if (path.empty()) {
      paths_.clear();
      return;
    }
    paths_.erase(std::string(path));
    // '/' + 1 == '0': the range holds exactly the paths below `path`.
    std::string below = std::string(path) + "/";
    std::string past = std::string(path) + "0";
    paths_.erase(paths_.lower_bound(below), paths_.lower_bound(past));
  }

  // The object may have changed: its cached chunks are never served again.
  void Invalidate(const ObjectId& id) {
    std::lock_guard lock(mu_);
    InvalidateLocked(id);
  }

  // ---- Reads

  // Reads through the cache from `file`, the open object `id`.
  Result<size_t> Read(const std::shared_ptr<StoreFile>& file, const ObjectId& id, uint64_t offset,
                      MutableByteSpan out) {
    if (out.empty()) return size_t{0};
    const uint64_t first = offset / chunk_size_;
    const uint64_t last = (offset + out.size() - 1) / chunk_size_;
    std::vector<std::shared_ptr<Chunk>> chunks;
    std::vector<bool> mine;  // this call fetches the chunk (a claimed or uncached miss)
    uint64_t version;
    {
      std::lock_guard lock(mu_);
      version = VersionLocked(id);
      for (uint64_t index = first; index <= last; ++index) {
        ChunkKey key{id.bytes(), version, index};
        auto it = chunks_.find(key);
        if (it != chunks_.end()) {
          std::shared_ptr<Chunk> chunk = it->second;
          if (chunk->state == Chunk::State::kReady) {
            ++stats_.hits;
            lru_.splice(lru_.begin(), lru_, chunk->lru);
          } else {
            ++stats_.misses;
          }
          chunks.push_back(std::move(chunk));
          mine.push_back(false);
          continue;
        }
        ++stats_.misses;
        ++stats_.fetches;
        chunks.push_back(ClaimLocked(key));
        mine.push_back(true);
      }
    }
    Status fetched = FetchClaimedRuns(*file, ChunkKey{id.bytes(), version, first}, chunks, mine);
    if (!fetched.ok()) return fetched;
    CADCANFS_RETURN_IF_ERROR(AwaitOthers(*file, first, chunks, mine));
    return CopyOut(offset, first, chunks, out);
  }

  // Starts background fetches of chunks [first, last] of `id` that are neither held
  // nor in flight, as far as the budget allows.
  void Prefetch(const std::shared_ptr<StoreFile>& file, const ObjectId& id, uint64_t first,
                uint64_t last) {
    bool queued = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      const uint64_t version = VersionLocked(id);
      for (uint64_t index = first; index <= last; ++index) {
        ChunkKey key{id.bytes(), version, index};
        if (chunks_.contains(key)) continue;
        if (!ChargeLocked(chunk_size_)) break;
        auto chunk = std::make_shared<Chunk>();
        chunk->charged = chunk_size_;
        chunk->cached = true;
        chunks_.emplace(key, chunk);
        ++stats_.fetches;
        queue_.push_back(Task{file, key, std::move(chunk)});
        queued = true;
      }
    }
    if (queued) work_cv_.notify_all();
  }

 private:
  struct ObjectVersion {
    std::string etag;
    uint64_t version = 0;
  };
  struct Task {
    std::shared_ptr<StoreFile> file;
    ChunkKey key;
    std::shared_ptr<Chunk> chunk;
  };

  uint64_t VersionLocked(const ObjectId& id) {
    if (objects_.size() >= kMaxTrackedObjects) objects_.clear();
    auto [it, added] = objects_.try_emplace(id.bytes());
    if (added) it->second.version = next_version_++;
    return it->second.version;
  }

  void ObserveEtagLocked(const ObjectId& id, const std::string& etag) {
    VersionLocked(id);
    ObjectVersion& object = objects_[id.bytes()];
    if (!object.etag.empty() && object.etag != etag) InvalidateLocked(id);
    objects_[id.bytes()].etag = etag;
  }

  void InvalidateLocked(const ObjectId& id) {
    VersionLocked(id);
    objects_[id.bytes()].version = next_version_++;
    ++stats_.invalidated;
    // Ready chunks go now; fetches in flight see the new version when they land.
    auto it = chunks_.lower_bound(ChunkKey{id.bytes(), 0, 0});
    while (it != chunks_.end() && it->first.id == id.bytes()) {
      if (it->second->state != Chunk::State::kReady) {
        ++it;
        continue;
      }
      DropLocked(*it->second);
      it = chunks_.erase(it);
    }
  }

  // Releases a mapped chunk's charge and LRU place (the caller unmaps it).
  void DropLocked(Chunk& chunk) {
    if (chunk.state == Chunk::State::kReady) lru_.erase(chunk.lru);
    held_ -= chunk.charged;
    chunk.charged = 0;
    chunk.cached = false;
  }

  // Makes room for `bytes` more, evicting the least recently used chunks.
  bool ChargeLocked(uint64_t bytes) {
    while (held_ + bytes > budget_ && !lru_.empty()) {
      auto it = chunks_.find(lru_.back());
      DropLocked(*it->second);
      chunks_.erase(it);
    }
    if (held_ + bytes > budget_) return false;
    held_ += bytes;
    stats_.peak_bytes = std::max(stats_.peak_bytes, held_);
    return true;
  }

  // A chunk this caller will fetch: in the cache if the budget has room, else its own.
  std::shared_ptr<Chunk> ClaimLocked(const ChunkKey& key) {
    auto chunk = std::make_shared<Chunk>();
    if (!stopping_ && ChargeLocked(chunk_size_)) {
      chunk->charged = chunk_size_;
      chunk->cached = true;
      chunks_.emplace(key, chunk);
    }
    return chunk;
  }

  // Settles a fetch: a failure unmaps it; a success joins the LRU unless its object
  // changed meanwhile. Wakes everyone waiting for a chunk.
  void CompleteLocked(const ChunkKey& key, const std::shared_ptr<Chunk>& chunk, Status status) {
    if (status.ok()) {
      chunk->state = Chunk::State::kReady;
    } else {
      chunk->state = Chunk::State::kFailed;
      chunk->error = std::move(status);
    }
    if (chunk->cached) {
      auto object = objects_.find(key.id);
      const bool current = object != objects_.end() && object->second.version == key.version;
      auto it = chunks_.find(key);
      if (chunk->state == Chunk::State::kReady && current) {
        held_ = held_ - chunk->charged + chunk->bytes.size();
        chunk->charged = chunk->bytes.size();
        lru_.push_front(key);
        chunk->lru = lru_.begin();
      } else {
        held_ -= chunk->charged;
        chunk->charged = 0;
        chunk->cached = false;
        if (it != chunks_.end() && it->second == chunk) chunks_.erase(it);
      }
    }
    loaded_cv_.notify_all();
  }

  // Fetches each run of adjacent chunks this call claimed with one ranged read;
  // `first` is the key of chunks[0].
  Status FetchClaimedRuns(StoreFile& file, const ChunkKey& first,
                          const std::vector<std::shared_ptr<Chunk>>& chunks,
                          const std::vector<bool>& mine) {
    Status result;
    for (size_t begin = 0; begin < chunks.size();) {
      if (!mine[begin]) {
        ++begin;
        continue;
      }
      size_t end = begin;
      while (end < chunks.size() && mine[end]) ++end;
      Status s = FetchRun(file, first.index + begin, chunks.begin() + static_cast<ptrdiff_t>(begin),
                          end - begin);
      std::lock_guard lock(mu_);
      for (size_t i = begin; i < end; ++i) {
        CompleteLocked(ChunkKey{first.id, first.version, first.index + i}, chunks[i], s);
      }
      if (!s.ok() && result.ok()) result = std::move(s);
      begin = end;
    }
    return result;
  }

  // One store read for `count` chunks starting at chunk `index`, split among them.
  Status FetchRun(StoreFile& file, uint64_t index,
                  std::vector<std::shared_ptr<Chunk>>::const_iterator chunks, size_t count) {
    const uint64_t start = index * chunk_size_;
    if (count == 1) {
      Chunk& chunk = **chunks;
      chunk.bytes.resize(chunk_size_);
      CADCANFS_ASSIGN_OR_RETURN(size_t n, file.ReadAt(start, chunk.bytes));
      chunk.bytes.resize(n);
      chunk.bytes.shrink_to_fit();
      return Status::Ok();
    }
    Bytes run(count * chunk_size_);
    CADCANFS_ASSIGN_OR_RETURN(size_t n, file.ReadAt(start, run));
    for (size_t i = 0; i < count; ++i) {
      const size_t from = std::min(n, i * chunk_size_);
      const size_t to = std::min(n, (i + 1) * chunk_size_);
      chunks[static_cast<ptrdiff_t>(i)]->bytes.assign(run.begin() + static_cast<ptrdiff_t>(from),
                                                      run.begin() + static_cast<ptrdiff_t>(to));
    }
    return Status::Ok();
  }

  // Waits for the fetches other callers or the workers run; one that failed is
  // fetched again here, uncached.
  Status AwaitOthers(StoreFile& file, uint64_t first, std::vector<std::shared_ptr<Chunk>>& chunks,
                     const std::vector<bool>& mine) {
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (mine[i]) continue;
      {
        std::unique_lock lock(mu_);
        loaded_cv_.wait(lock, [&] { return chunks[i]->state != Chunk::State::kLoading; });
        if (chunks[i]->state == Chunk::State::kReady) continue;
      }
      auto own = std::make_shared<Chunk>();
      std::vector<std::shared_ptr<Chunk>> single{own};
      CADCANFS_RETURN_IF_ERROR(FetchRun(file, first + i, single.cbegin(), 1));
      own->state = Chunk::State::kReady;
      chunks[i] = std::move(own);
    }
    return Status::Ok();
  }

  Result<size_t> CopyOut(uint64_t offset, uint64_t first,
                         const std::vector<std::shared_ptr<Chunk>>& chunks, MutableByteSpan out) {
    size_t copied = 0;
    for (size_t i = 0; i < chunks.size() && copied < out.size(); ++i) {
      const Bytes& bytes = chunks[i]->bytes;
      const uint64_t chunk_start = (first + i) * chunk_size_;
      const uint64_t from = offset + copied - chunk_start;
      if (from >= bytes.size()) break;
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(bytes.size() - from, out.size() - copied));
      std::memcpy(out.data() + copied, bytes.data() + from, n);
      copied += n;
      if (bytes.size() < chunk_size_) break;  // the object ends in this chunk
    }
    return copied;
  }

  void WorkLoop() {
    for (;;) {
      Task task;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      std::vector<std::shared_ptr<Chunk>> single{task.chunk};
      Status s = FetchRun(*task.file, task.key.index, single.cbegin(), 1);
      std::lock_guard lock(mu_);
      CompleteLocked(task.key, task.chunk, std::move(s));
    }
  }

  const size_t chunk_size_;
  const uint64_t budget_;
  const size_t max_readahead_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable loaded_cv_;
  std::condition_variable work_cv_;
  std::map<ChunkKey, std::shared_ptr<Chunk>> chunks_;  // ordered: an object's are adjacent
  std::list<ChunkKey> lru_;                            // ready chunks, most recent first
  uint64_t held_ = 0;                                  // charged bytes, in flight included
  std::unordered_map<std::string, ObjectVersion> objects_;
  uint64_t next_version_ = 1;
  std::map<std::string, ObjectId, std::less<>> paths_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  CachingStats stats_;
  std::vector<std::thread> workers_;
};

// An object open for reading, through the cache.
class CachedReader final : public ForwardingStoreFile {
 public:
  CachedReader(std::shared_ptr<StoreFile> base, std::shared_ptr<ChunkCache> cache, ObjectId id)
      : ForwardingStoreFile(std::move(base)), cache_(std::move(cache)), id_(std::move(id)) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    CADCANFS_ASSIGN_OR_RETURN(size_t n, cache_->Read(shared_base(), id_, offset, out));
    ReadAheadIfSequential(offset, n);
    return n;
  }

  void Prefetch(uint64_t offset, uint64_t length) override {
    if (length == 0) return;
    auto size = KnownSize();
    if (!size.ok() || offset >= *size) return;
    const uint64_t end = std::min(*size, offset + length);
    const uint64_t chunk = cache_->chunk_size();
    const uint64_t first = offset / chunk;
    const uint64_t last = std::min((end - 1) / chunk, first + 2 * cache_->max_readahead() - 1);
    cache_->Prefetch(shared_base(), id_, first, last);
  }

  Result<ObjectInfo> Stat() override {
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base().Stat());
    cache_->ObserveEtag(id_, info.etag);
    return info;
  }

 private:
  // Once reads keep landing at the front of what was read, keeps a window of chunks
  // past that front requested, doubling it up to the maximum. The kernel's readahead
  // sends a stream's reads on several FUSE threads, so they arrive a little out of
  // order: "at the front" allows two chunks either way.
  void ReadAheadIfSequential(uint64_t offset, size_t n) {
    uint64_t from = 0;
    uint64_t to = 0;
    {
      std::lock_guard lock(mu_);
      const uint64_t chunk = cache_->chunk_size();
      const uint64_t slack = 2 * chunk;
      const bool at_front = front_ != 0 && offset + slack >= front_ && offset <= front_ + slack;
      front_ = at_front ? std::max(front_, offset + n) : offset + n;
      streak_ = at_front ? streak_ + 1 : 0;
      if (streak_ < kSequentialStreak || n == 0) {
        window_ = 0;
        return;
      }
      window_ =
          window_ == 0 ? kInitialReadaheadChunks : std::min(window_ * 2, cache_->max_readahead());
      from = (front_ - 1) / chunk + 1;
      to = from + window_ - 1;
    }
    auto size = KnownSize();
    if (!size.ok() || *size == 0) return;
    to = std::min(to, (*size - 1) / cache_->chunk_size());
    if (from <= to) cache_->Prefetch(shared_base(), id_, from, to);
  }

  // A reader reads one version of the object, whose size does not change: asked once,
  // not on every read of a stream.
  Result<uint64_t> KnownSize() {
    const int64_t known = size_.load(std::memory_order_relaxed);
    if (known >= 0) return static_cast<uint64_t>(known);
    CADCANFS_ASSIGN_OR_RETURN(uint64_t size, base().Size());
    size_.store(static_cast<int64_t>(size), std::memory_order_relaxed);
    return size;
  }

  const std::shared_ptr<ChunkCache> cache_;
  const ObjectId id_;
  std::atomic<int64_t> size_{-1};  // -1 until KnownSize asked the file
  std::mutex mu_;                  // guards the sequential-read state
  uint64_t front_ = 0;             // the end of the furthest read of the current stream
  int streak_ = 0;
  size_t window_ = 0;
};

// An object open for writing: passes through, and retires the object's cached
// chunks when it changes.
class CachedWriter final : public ForwardingStoreFile {
 public:
  CachedWriter(std::unique_ptr<StoreFile> base, std::shared_ptr<ChunkCache> cache,
               std::optional<ObjectId> id, bool writes_in_place)
      : ForwardingStoreFile(std::move(base)),
        cache_(std::move(cache)),
        id_(std::move(id)),
        writes_in_place_(writes_in_place) {}

  Status WriteAt(uint64_t offset, ByteSpan data) override {
    Status s = base().WriteAt(offset, data);
    Changed();
    return s;
  }
  Status Truncate(uint64_t size) override {
    Status s = base().Truncate(size);
    Changed();
    return s;
  }
  // Invalidates even when the commit reports failure: a lost reply may hide one that
  // landed.
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override {
    Result<ObjectInfo> committed = base().Commit(std::move(if_match_etag));
    InvalidateIfDirty();
    return committed;
  }
  // Dropped writes never reached the store; what is cached of it stays true.
  Status Abort() override {
    Status s = base().Abort();
    std::lock_guard lock(mu_);
    dirty_ = false;
    return s;
  }

 private:
  void InvalidateIfDirty() {
    bool dirty;
    {
      std::lock_guard lock(mu_);
      dirty = dirty_;
      dirty_ = false;
    }
    if (dirty) InvalidateObject();
  }

  // A store that writes in place shows a write at once; others only at the commit.
  void Changed() {
    {
      std::lock_guard lock(mu_);
      dirty_ = true;
    }
    if (writes_in_place_) InvalidateObject();
  }

  void InvalidateObject() {
    std::optional<ObjectId> id;
    {
      std::lock_guard lock(mu_);
      id = id_;
    }
    if (!id) {
      // Opened by a path the cache had not seen: ask once which object this is.
      auto info = base().Stat();
      if (!info.ok()) return;
      id = info->id;
      std::lock_guard lock(mu_);
      id_ = id;
    }
    cache_->Invalidate(*id);
  }

  const std::shared_ptr<ChunkCache> cache_;
  std::mutex mu_;  // guards id_ and dirty_
  std::optional<ObjectId> id_;
  bool dirty_ = false;
  const bool writes_in_place_;
};

class CachingStoreImpl final : public CachingStore {
 public:
  CachingStoreImpl(std::unique_ptr<Store> base, const CachingOptions& options)
      : CachingStore(std::move(base)),
        enabled_(options.budget_bytes >= options.chunk_size && options.chunk_size > 0),
        cache_(enabled_ ? std::make_shared<ChunkCache>(options) : nullptr) {}

  // The workers read from files of the base store: they stop before it goes.
  ~CachingStoreImpl() override {
    if (cache_) cache_->Shutdown();
  }

  CachingStats stats() const override { return cache_ ? cache_->stats() : CachingStats{}; }

  Result<ObjectInfo> Stat(std::string_view path) override {
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base().Stat(path));
    if (cache_) cache_->Observe(path, info);
    return info;
  }

  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, base().List(dir));
    if (cache_) {
      for (const DirEntry& entry : entries) {
        if (entry.info) cache_->Observe(JoinStorePath(dir, entry.name), *entry.info);
      }
    }
    return entries;
  }

  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    CADCANFS_ASSIGN_OR_RETURN(std::unique_ptr<StoreFile> file, base().Open(path, options));
    if (!cache_) return file;
    if (options.write || options.create) {
      std::unique_ptr<StoreFile> writer = std::make_unique<CachedWriter>(
          std::move(file), cache_, cache_->IdOfPath(path), base().capabilities().partial_writes);
      return writer;
    }
    std::optional<ObjectId> id = cache_->IdOfPath(path);
    if (!id) {
      auto info = file->Stat();
      if (!info.ok() || info->id.empty()) return file;  // readable, just not cacheable
      cache_->Observe(path, *info);
      id = info->id;
    }
    std::unique_ptr<StoreFile> reader =
        std::make_unique<CachedReader>(std::move(file), cache_, std::move(*id));
    return reader;
  }

  Status WriteAtomic(std::string_view path, ByteSpan data, bool exclusive) override {
    Status s = base().WriteAtomic(path, data, exclusive);
    ForgetObjectAt(path);
    return s;
  }

  Status Remove(std::string_view path) override {
    Status s = base().Remove(path);
    ForgetObjectAt(path);
    return s;
  }

  Status RemoveDir(std::string_view path) override {
    Status s = base().RemoveDir(path);
    if (cache_) cache_->ForgetPaths(path);
    return s;
  }

  // Whatever `to` named is replaced; both names (and all below them) are stale.
  Status Rename(std::string_view from, std::string_view to, RenameMode mode) override {
    Status s = base().Rename(from, to, mode);
    if (cache_) {
      if (auto replaced = cache_->IdOfPath(to)) cache_->Invalidate(*replaced);
      cache_->ForgetPaths(from);
      cache_->ForgetPaths(to);
    }
    return s;
  }

 private:
  // The object `path` named may hold other content now, or be gone.
  void ForgetObjectAt(std::string_view path) {
    if (!cache_) return;
    if (auto id = cache_->IdOfPath(path)) cache_->Invalidate(*id);
    cache_->ForgetPaths(path);
  }

  const bool enabled_;
  const std::shared_ptr<ChunkCache> cache_;  // null when the budget holds no chunk
};

}  // namespace

std::unique_ptr<CachingStore> NewCachingStore(std::unique_ptr<Store> base, CachingOptions options) {
  return std::make_unique<CachingStoreImpl>(std::move(base), options);
}

}  // namespace cadcanfs
