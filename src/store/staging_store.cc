#include "cadcanfs/store/staging_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/common/log.h"
#include "cadcanfs/common/unique_fd.h"
#include "cadcanfs/crypto/gcm.h"
#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/crypto/random.h"

namespace cadcanfs {

namespace {

constexpr uint64_t kStageBlock = 64 * 1024;
constexpr uint64_t kStoredStageBlock = kGcmNonceSize + kStageBlock + kGcmTagSize;
constexpr size_t kSaltSize = 16;
constexpr size_t kStageIdSize = 16;
constexpr char kSpillSuffix[] = ".spill";
constexpr char kJournalSuffix[] = ".journal";
// How often (in staged blocks, 1 MiB) a commit asks its writer where its upload stands.
constexpr uint64_t kBlocksPerUploadCheck = 16;
constexpr char kTempSuffix[] = ".tmp";
constexpr std::string_view kJournalMagic = "CCSTAGE1";

using Clock = std::chrono::steady_clock;

Status PreadAll(int fd, uint8_t* out, size_t length, uint64_t offset) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, out + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot read the staging file");
    if (n == 0)
      return Status::Error(Code::kCorrupt, "a staging file is shorter than it was written");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, const uint8_t* data, size_t length, uint64_t offset) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pwrite(fd, data + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot write the staging file");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

std::array<uint8_t, 8> BlockAad(uint64_t index) {
  std::array<uint8_t, 8> aad{};
  for (int i = 0; i < 8; ++i) aad[i] = static_cast<uint8_t>(index >> (8 * i));
  return aad;
}

// A journal entry: magic, nonce, GCM ciphertext of the JSON, tag; bound to its stage id.
Result<Bytes> SealJournal(const GcmKey& key, const std::string& id, const std::string& json) {
  Bytes out(kJournalMagic.size() + kGcmNonceSize + json.size() + kGcmTagSize);
  std::copy(kJournalMagic.begin(), kJournalMagic.end(), out.begin());
  uint8_t* nonce = out.data() + kJournalMagic.size();
  CADCANFS_RETURN_IF_ERROR(FillRandom(std::span<uint8_t>(nonce, kGcmNonceSize)));
  uint8_t* body = nonce + kGcmNonceSize;
  CADCANFS_RETURN_IF_ERROR(GcmSeal(key, ByteSpan(nonce, kGcmNonceSize), AsBytes(id), AsBytes(json),
                                   body, body + json.size()));
  return out;
}

Result<std::string> OpenJournal(const GcmKey& key, const std::string& id, ByteSpan sealed) {
  const size_t overhead = kJournalMagic.size() + kGcmNonceSize + kGcmTagSize;
  if (sealed.size() < overhead || std::string_view(reinterpret_cast<const char*>(sealed.data()),
                                                   kJournalMagic.size()) != kJournalMagic) {
    return Status::Error(Code::kCorrupt, "a staging journal entry is malformed");
  }
  const uint8_t* nonce = sealed.data() + kJournalMagic.size();
  const size_t length = sealed.size() - overhead;
  std::string json(length, '\0');
  CADCANFS_RETURN_IF_ERROR(GcmOpen(key, ByteSpan(nonce, kGcmNonceSize), AsBytes(id),
                                   ByteSpan(nonce + kGcmNonceSize, length),
                                   ByteSpan(nonce + kGcmNonceSize + length, kGcmTagSize),
                                   reinterpret_cast<uint8_t*>(json.data())));
  return json;
}

Status WriteDurably(int dir, const std::string& name, ByteSpan data) {
  int fd = openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "cannot write the staging journal");
  UniqueFd file(fd);
  CADCANFS_RETURN_IF_ERROR(PwriteAll(file.get(), data.data(), data.size(), 0));
  if (fdatasync(file.get()) != 0)
    return Status::FromErrno(errno, "cannot sync the staging journal");
  return Status::Ok();
}

Result<Bytes> ReadWhole(int dir, const std::string& name) {
  int fd = openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "cannot read the staging journal");
  UniqueFd file(fd);
  struct stat st;
  if (fstat(file.get(), &st) != 0) return Status::FromErrno(errno, "cannot stat a staging file");
  Bytes out(static_cast<size_t>(st.st_size));
  CADCANFS_RETURN_IF_ERROR(PreadAll(file.get(), out.data(), out.size(), 0));
  return out;
}

// atime and mtime as utimensat(2) takes them (UTIME_OMIT keeps one).
using StagedTimes = std::array<struct timespec, 2>;

// The journal's form of staged times: [atime s, ns, mtime s, ns].
nlohmann::json TimesJson(const StagedTimes& times) {
  return nlohmann::json::array(
      {times[0].tv_sec, times[0].tv_nsec, times[1].tv_sec, times[1].tv_nsec});
}

std::optional<StagedTimes> TimesFromJson(const nlohmann::json& entry) {
  auto it = entry.find("times");
  if (it == entry.end() || !it->is_array() || it->size() != 4) return std::nullopt;
  for (const auto& n : *it) {
    if (!n.is_number_integer()) return std::nullopt;
  }
  StagedTimes times{};
  times[0] = {static_cast<time_t>((*it)[0].get<int64_t>()), (*it)[1].get<long>()};
  times[1] = {static_cast<time_t>((*it)[2].get<int64_t>()), (*it)[3].get<long>()};
  return times;
}

// One object's staged content: the blocks written since the last commit, encrypted in
// a spill file, over the object as it was when staging began.
// What a Stage is made of, on creation or when recovered from its journal.
struct StageParts {
  std::string id;      // hex; names its spill and journal files
  int spill_dir = -1;  // not owned
  UniqueFd spill;
  std::array<uint8_t, kSaltSize> salt{};
  std::optional<GcmKey> key;  // always set before a Stage is made
  std::string path;
  std::unique_ptr<StoreFile> original;  // null for an object that did not exist
  std::string original_etag;
  uint64_t size = 0;
  uint64_t original_limit = 0;
  uint32_t mode = 0600;              // for a conflict copy
  std::optional<StagedTimes> times;  // set while staged; go with the commit
  std::string upload;                // where an interrupted upload stands (ResumeState)
};

class Stage {
 public:
  explicit Stage(StageParts parts)
      : id_(std::move(parts.id)),
        spill_dir_(parts.spill_dir),
        spill_(std::move(parts.spill)),
        salt_(parts.salt),
        key_(std::move(*parts.key)),
        path_(std::move(parts.path)),
        original_(std::move(parts.original)),
        original_etag_(std::move(parts.original_etag)),
        size_(parts.size),
        original_limit_(parts.original_limit),
        mode_(parts.mode),
        times_(parts.times),
        upload_(std::move(parts.upload)),
        block_(kStageBlock),
        stored_(kStoredStageBlock) {}

  // A stage whose commit is still owed keeps its files for the next start; any other
  // leaves nothing behind.
  ~Stage() {
    std::fill(block_.begin(), block_.end(), 0);
    if (dirty_ && journaled_ && !orphaned_) return;
    (void)unlinkat(spill_dir_, (id_ + kSpillSuffix).c_str(), 0);
    (void)unlinkat(spill_dir_, (id_ + kJournalSuffix).c_str(), 0);
  }

  // Made from a journal: everything it holds is owed to the store.
  // Opened empty (O_TRUNC): the emptying is owed to the store like any write.
  void MarkDirty() {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }

  void MarkRecovered(std::vector<bool> staged) {
    std::lock_guard lock(mu_);
    staged_ = std::move(staged);
    dirty_ = true;
    journaled_ = true;
  }

  const std::string& id() const { return id_; }
  std::string path() const {
    std::lock_guard lock(mu_);
    return path_;
  }
  void SetPath(std::string path) {
    std::lock_guard lock(mu_);
    path_ = std::move(path);
  }
  uint64_t size() const {
    std::lock_guard lock(mu_);
    return size_;
  }
  bool dirty() const {
    std::lock_guard lock(mu_);
    return dirty_;
  }
  std::string original_etag() const {
    std::lock_guard lock(mu_);
    return original_etag_;
  }
  // Times set while changes are staged are held for the commit: set on the store's
  // object now, they would be lost to the upload that replaces it (OneDrive sends them
  // with the upload). False when nothing is staged: the store takes them itself.
  // A journalled stage gets them in its journal entry at once.
  Result<bool> HoldTimes(const struct timespec times[2], const GcmKey& journal_key) {
    std::lock_guard lock(mu_);
    if (!dirty_ || orphaned_) return false;
    StagedTimes held =
        times_.value_or(StagedTimes{timespec{0, UTIME_OMIT}, timespec{0, UTIME_OMIT}});
    for (int i = 0; i < 2; ++i) {
      if (times[i].tv_nsec == UTIME_OMIT) continue;
      held[i] = times[i];
      // "Now" is when it was asked, not when the commit runs.
      if (times[i].tv_nsec == UTIME_NOW) clock_gettime(CLOCK_REALTIME, &held[i]);
    }
    times_ = held;
    if (journaled_) CADCANFS_RETURN_IF_ERROR(WriteJournalLocked(journal_key));
    return true;
  }
  // The mtime held for the commit, if any.
  std::optional<struct timespec> held_mtime() const {
    std::lock_guard lock(mu_);
    if (!times_ || (*times_)[1].tv_nsec == UTIME_OMIT) return std::nullopt;
    return (*times_)[1];
  }

  // The object is gone from the store: there is nothing left to commit to.
  void Orphan() {
    std::lock_guard lock(mu_);
    orphaned_ = true;
  }

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) {
    std::lock_guard lock(mu_);
    if (offset >= size_ || out.empty()) return size_t{0};
    const size_t length = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - offset));
    uint8_t* block = block_.data();
    size_t done = 0;
    while (done < length) {
      const uint64_t at = offset + done;
      const uint64_t index = at / kStageBlock;
      const uint64_t within = at % kStageBlock;
      const size_t take =
          static_cast<size_t>(std::min<uint64_t>(kStageBlock - within, length - done));
      CADCANFS_RETURN_IF_ERROR(LoadBlockLocked(index, block));
      std::memcpy(out.data() + done, block + within, take);
      done += take;
    }
    return length;
  }

  Status WriteAt(uint64_t offset, ByteSpan data) {
    std::lock_guard lock(mu_);
    uint8_t* block = block_.data();
    size_t done = 0;
    while (done < data.size()) {
      const uint64_t at = offset + done;
      const uint64_t index = at / kStageBlock;
      const uint64_t within = at % kStageBlock;
      const size_t take =
          static_cast<size_t>(std::min<uint64_t>(kStageBlock - within, data.size() - done));
      if (take < kStageBlock) CADCANFS_RETURN_IF_ERROR(LoadBlockLocked(index, block));
      std::memcpy(block + within, data.data() + done, take);
      CADCANFS_RETURN_IF_ERROR(StoreBlockLocked(index, block));
      done += take;
    }
    size_ = std::max(size_, offset + data.size());
    dirty_ = true;
    journaled_ = false;
    upload_.clear();  // an upload begun before carries other bytes
    return Status::Ok();
  }

  // Bytes past a shrink must read as zeros if the file grows again, so the block that
  // straddles the new end is staged with its tail cleared, and the original counts
  // only below the new end.
  Status Truncate(uint64_t new_size) {
    std::lock_guard lock(mu_);
    if (new_size < size_ && new_size % kStageBlock != 0) {
      const uint64_t index = new_size / kStageBlock;
      CADCANFS_RETURN_IF_ERROR(LoadBlockLocked(index, block_.data()));
      std::fill(block_.begin() + static_cast<ptrdiff_t>(new_size % kStageBlock), block_.end(), 0);
      CADCANFS_RETURN_IF_ERROR(StoreBlockLocked(index, block_.data()));
    }
    // Blocks past the end are dropped from the spill too: a recovery tells staged
    // blocks by their presence there.
    const uint64_t first_gone = (new_size + kStageBlock - 1) / kStageBlock;
    if (staged_.size() > first_gone) {
      staged_.resize(first_gone);
      if (ftruncate(spill_.get(), static_cast<off_t>(first_gone * kStoredStageBlock)) != 0) {
        return Status::FromErrno(errno, "cannot shorten the staging file");
      }
    }
    original_limit_ = std::min(original_limit_, new_size);
    size_ = new_size;
    dirty_ = true;
    journaled_ = false;
    upload_.clear();
    return Status::Ok();
  }

  // Writes the whole object to `store` and commits it on condition that the object is
  // still the version staging began from (If-Match); if someone else changed it
  // meanwhile, commits a conflict copy beside it instead and moves this stage there,
  // so later writes of its writers go there too. Then the stage is clean: what it held
  // is the object now. Returns the committed version.
  //
  // A long upload to a store that can resume one keeps where it stands in the journal
  // (`journal_key`), so that the commit after a restart continues it.
  Result<ObjectInfo> Commit(Store& store, const StagingOptions& options,
                            const GcmKey& journal_key) {
    std::lock_guard lock(mu_);
    if (orphaned_) return ObjectInfo{};  // gone from the store: nothing to commit to
    if (!dirty_) return CommittedLocked(store);
    auto committed =
        CommitToLocked(store, path_, /*create_exclusive=*/false, original_etag_, &journal_key);
    if (!committed.ok() && committed.status().code() == Code::kChangedElsewhere) {
      auto conflict = options.conflict_name ? options.conflict_name(path_)
                                            : Result<std::string>(PlainConflictName(path_));
      CADCANFS_RETURN_IF_ERROR(conflict.status());
      spdlog::warn(
          "staging: the object changed in the store meanwhile; committing a conflict copy");
      committed = CommitToLocked(store, *conflict, /*create_exclusive=*/true, "", nullptr);
      if (committed.ok()) path_ = *conflict;
    }
    CADCANFS_RETURN_IF_ERROR(committed.status());
    // The committed object is the new original; a store that replaces objects on
    // commit needs a reader of the new version.
    CADCANFS_ASSIGN_OR_RETURN(original_, store.Open(path_, OpenOptions{}));
    original_etag_ = committed->etag;
    original_limit_ = size_;
    ForgetStagedLocked();
    return committed;
  }

  // Drops every staged change: the stage reads as the object as committed again.
  Status Abort(Store& store) {
    std::lock_guard lock(mu_);
    if (!dirty_) return Status::Ok();
    if (original_ == nullptr) {
      auto reopened = store.Open(path_, OpenOptions{});
      if (reopened.ok()) original_ = std::move(reopened).value();
    }
    uint64_t committed_size = 0;
    if (original_ != nullptr) {
      CADCANFS_ASSIGN_OR_RETURN(committed_size, original_->Size());
    }
    size_ = original_limit_ = committed_size;
    ForgetStagedLocked();
    return Status::Ok();
  }

  // A hint that [offset, offset+length) will be read soon: the parts not staged come
  // from the original object, so it is passed on for those.
  void Prefetch(uint64_t offset, uint64_t length) {
    std::lock_guard lock(mu_);
    if (original_ == nullptr || length == 0) return;
    const uint64_t end = std::min(offset + length, original_limit_);
    uint64_t run_start = offset;
    for (uint64_t at = offset; at < end;) {
      const uint64_t index = at / kStageBlock;
      const uint64_t block_end = std::min((index + 1) * kStageBlock, end);
      const bool staged = index < staged_.size() && staged_[index];
      if (staged) {
        if (at > run_start) original_->Prefetch(run_start, at - run_start);
        run_start = block_end;
      }
      at = block_end;
    }
    if (end > run_start) original_->Prefetch(run_start, end - run_start);
  }

  // Makes the staged state survive a crash: the blocks durable, then the journal
  // entry that says where they go, atomically replaced.
  Status Persist(const GcmKey& journal_key) {
    std::lock_guard lock(mu_);
    if (!dirty_ || journaled_ || orphaned_) return Status::Ok();
    if (fdatasync(spill_.get()) != 0)
      return Status::FromErrno(errno, "cannot sync the staging file");
    return WriteJournalLocked(journal_key);
  }

 private:
  // Replaces the journal entry with one that describes the stage as it is now.
  Status WriteJournalLocked(const GcmKey& journal_key) {
    nlohmann::json entry = {{"v", 1},
                            {"path", path_},
                            {"size", size_},
                            {"original_limit", original_limit_},
                            {"etag", original_etag_},
                            {"mode", mode_},
                            {"salt", HexEncode(salt_)}};
    if (times_) entry["times"] = TimesJson(*times_);
    if (!upload_.empty()) entry["upload"] = upload_;
    CADCANFS_ASSIGN_OR_RETURN(Bytes sealed, SealJournal(journal_key, id_, entry.dump()));
    const std::string temp = id_ + kJournalSuffix + kTempSuffix;
    CADCANFS_RETURN_IF_ERROR(WriteDurably(spill_dir_, temp, sealed));
    if (renameat(spill_dir_, temp.c_str(), spill_dir_, (id_ + kJournalSuffix).c_str()) != 0) {
      return Status::FromErrno(errno, "cannot write the staging journal");
    }
    if (fsync(spill_dir_) != 0)
      return Status::FromErrno(errno, "cannot sync the staging directory");
    journaled_ = true;
    return Status::Ok();
  }

  // Writes the staged object to `path` and commits it, if `if_match` is not empty on
  // that condition. A store that writes in place cannot hold the writes back until the
  // commit: there the condition is checked before the first write too.
  //
  // With `journal_key` (the stage's own object), an upload the store can resume keeps
  // where it stands in the journal, and a failed one the writer did not cancel (it still
  // says where it stands) is resumed by the next attempt, here or after a restart.
  Result<ObjectInfo> CommitToLocked(Store& store, const std::string& path, bool create_exclusive,
                                    const std::string& if_match, const GcmKey* journal_key) {
    const bool in_place = store.capabilities().partial_writes;
    std::optional<std::string> condition;
    if (!if_match.empty()) condition = if_match;
    if (in_place && condition) {
      auto current = store.Stat(path);
      if (current.ok() && current->etag != *condition) {
        return Status::Error(Code::kChangedElsewhere, "the object changed in the store meanwhile");
      }
    }
    OpenOptions target{.write = true, .truncate = !in_place};
    if (create_exclusive) {
      target.create = target.exclusive = true;
      target.mode = mode_;
    }
    auto writer = store.Open(path, target);
    if (!writer.ok() && writer.status().code() == Code::kNotFound && !create_exclusive) {
      // The object went away meanwhile: ours recreates it, with no version to match.
      target.create = true;
      condition.reset();
      writer = store.Open(path, target);
    }
    CADCANFS_RETURN_IF_ERROR(writer.status());
    Result<ObjectInfo> committed =
        WriteAndCommitLocked(**writer, in_place, create_exclusive, condition, journal_key);
    if (!committed.ok() && !in_place && journal_key != nullptr) {
      upload_ = (*writer)->ResumeState();
      if (journaled_) (void)WriteJournalLocked(*journal_key);
    }
    return committed;
  }

  Result<ObjectInfo> WriteAndCommitLocked(StoreFile& writer, bool in_place, bool create_exclusive,
                                          const std::optional<std::string>& condition,
                                          const GcmKey* journal_key) {
    // A whole-object store learns the size first: an upload session must be told it
    // before its first fragment, so that it can stream with one fragment in memory.
    uint64_t from = 0;
    if (!in_place) {
      CADCANFS_RETURN_IF_ERROR(writer.Truncate(size_));
      if (!upload_.empty() && journal_key != nullptr) from = writer.ResumeUpload(upload_);
    }
    for (uint64_t at = from; at < size_;) {
      const uint64_t index = at / kStageBlock;
      const uint64_t within = at % kStageBlock;
      CADCANFS_RETURN_IF_ERROR(LoadBlockLocked(index, block_.data()));
      const uint64_t block_end = std::min(kStageBlock, size_ - index * kStageBlock);
      CADCANFS_RETURN_IF_ERROR(
          writer.WriteAt(at, ByteSpan(block_.data() + within, block_end - within)));
      at = index * kStageBlock + block_end;
      if (journal_key != nullptr && index % kBlocksPerUploadCheck == 0) {
        KeepUploadStateLocked(writer, *journal_key);
      }
    }
    if (in_place) {
      CADCANFS_RETURN_IF_ERROR(writer.Truncate(size_));
      // The bytes are in the object now, whatever the commit answers: a retry must not
      // take them for a change made elsewhere.
      auto written = writer.Stat();
      if (written.ok() && !create_exclusive) original_etag_ = written->etag;
    }
    if (times_) CADCANFS_RETURN_IF_ERROR(writer.SetTimes(times_->data()));
    return writer.Commit(condition);
  }

  // Journals where the writer's upload stands when that changed, so that a restart
  // resumes it. Only a journalled stage has anything a restart would commit.
  void KeepUploadStateLocked(StoreFile& writer, const GcmKey& journal_key) {
    if (!journaled_) return;
    std::string state = writer.ResumeState();
    if (state == upload_) return;
    upload_ = std::move(state);
    if (Status s = WriteJournalLocked(journal_key); !s.ok()) {
      spdlog::warn("staging: where an upload stands was not journalled: {}", s.message());
    }
  }

  // The object as committed, when nothing is owed.
  Result<ObjectInfo> CommittedLocked(Store& store) {
    if (original_ != nullptr) return original_->Stat();
    return store.Stat(path_);
  }

  // After a commit or an abort: the spill holds nothing and no journal entry is owed.
  void ForgetStagedLocked() {
    staged_.clear();
    (void)!ftruncate(spill_.get(), 0);  // the space of what is committed goes back
    (void)unlinkat(spill_dir_, (id_ + kJournalSuffix).c_str(), 0);
    dirty_ = false;
    journaled_ = false;
    times_.reset();
    upload_.clear();
  }

  // The block's current plaintext: staged, from the original object, or zeros.
  Status LoadBlockLocked(uint64_t index, uint8_t* plain) {
    if (index < staged_.size() && staged_[index]) {
      std::vector<uint8_t>& stored = stored_;
      CADCANFS_RETURN_IF_ERROR(
          PreadAll(spill_.get(), stored.data(), stored.size(), index * kStoredStageBlock));
      const auto aad = BlockAad(index);
      return GcmOpen(key_, ByteSpan(stored.data(), kGcmNonceSize), aad,
                     ByteSpan(stored.data() + kGcmNonceSize, kStageBlock),
                     ByteSpan(stored.data() + kGcmNonceSize + kStageBlock, kGcmTagSize), plain);
    }
    std::memset(plain, 0, kStageBlock);
    const uint64_t start = index * kStageBlock;
    if (original_ == nullptr || start >= original_limit_) return Status::Ok();
    const size_t wanted = static_cast<size_t>(std::min(kStageBlock, original_limit_ - start));
    CADCANFS_ASSIGN_OR_RETURN(size_t n, original_->ReadAt(start, MutableByteSpan(plain, wanted)));
    (void)n;  // an original shorter than it was reads as zeros past its end
    return Status::Ok();
  }

  Status StoreBlockLocked(uint64_t index, const uint8_t* plain) {
    std::vector<uint8_t>& stored = stored_;
    CADCANFS_RETURN_IF_ERROR(FillRandom(std::span<uint8_t>(stored.data(), kGcmNonceSize)));
    const auto aad = BlockAad(index);
    CADCANFS_RETURN_IF_ERROR(GcmSeal(key_, ByteSpan(stored.data(), kGcmNonceSize), aad,
                                     ByteSpan(plain, kStageBlock), stored.data() + kGcmNonceSize,
                                     stored.data() + kGcmNonceSize + kStageBlock));
    CADCANFS_RETURN_IF_ERROR(
        PwriteAll(spill_.get(), stored.data(), stored.size(), index * kStoredStageBlock));
    if (staged_.size() <= index) staged_.resize(index + 1, false);
    staged_[index] = true;
    return Status::Ok();
  }

  mutable std::mutex mu_;
  const std::string id_;
  const int spill_dir_;
  UniqueFd spill_;
  const std::array<uint8_t, kSaltSize> salt_;
  GcmKey key_;
  std::string path_;
  std::unique_ptr<StoreFile> original_;  // null for an object that did not exist
  std::string original_etag_;            // empty: the store keeps no eTags
  uint64_t size_;
  uint64_t original_limit_;  // the original's bytes count only below this
  const uint32_t mode_;
  std::optional<StagedTimes> times_;  // held for the commit (HoldTimes)
  std::string upload_;                // the store's ResumeState of this stage's upload, journalled
  // Scratch for one block's plaintext and its sealed form, so that steady-state I/O
  // allocates nothing.
  std::vector<uint8_t> block_;
  std::vector<uint8_t> stored_;
  std::vector<bool> staged_;
  bool dirty_ = false;
  bool journaled_ = false;  // the journal describes the current staged state
  bool orphaned_ = false;
};

// What the store's answer about a staged object must show of the stage: its size, and
// the mtime its commit will set.
void ShowStaged(const Stage& stage, ObjectInfo& info) {
  info.size = stage.size();
  if (std::optional<struct timespec> mtime = stage.held_mtime()) info.mtime = *mtime;
}

class StagingStoreImpl;

// A handle on a Stage. The last writable handle to go away queues the commit.
class StagedFile final : public StoreFile {
 public:
  StagedFile(StagingStoreImpl& owner, std::shared_ptr<Stage> stage, bool writable);
  ~StagedFile() override;

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    return stage_->ReadAt(offset, out);
  }
  Status WriteAt(uint64_t offset, ByteSpan data) override {
    if (!writable_) return Status::Error(Code::kBadHandle, "not open for writing");
    return stage_->WriteAt(offset, data);
  }
  Status Truncate(uint64_t size) override {
    if (!writable_) return Status::Error(Code::kBadHandle, "not open for writing");
    return stage_->Truncate(size);
  }
  Result<ObjectInfo> Commit(std::optional<std::string> if_match_etag) override;
  Status Checkpoint() override;
  Status Abort() override;
  Result<uint64_t> Size() override { return stage_->size(); }
  Result<ObjectInfo> Stat() override;
  Status Reserve(uint64_t, uint64_t) override {
    return Status::Error(Code::kUnsupported, "a staged file reserves no space");
  }
  void Prefetch(uint64_t offset, uint64_t length) override { stage_->Prefetch(offset, length); }
  Status SetMode(uint32_t mode) override;
  Status SetOwner(uid_t uid, gid_t gid) override;
  Status SetTimes(const struct timespec times[2]) override;

 private:
  StagingStoreImpl& owner_;
  std::shared_ptr<Stage> stage_;
  bool writable_;
};

struct Pending {
  std::shared_ptr<Stage> stage;
  Clock::time_point queued;
  Clock::time_point due;
  std::chrono::milliseconds backoff{0};
  uint64_t failed_attempts = 0;
};

class StagingStoreImpl final : public StagingStore {
 public:
  StagingStoreImpl(std::unique_ptr<Store> base, StagingOptions options, UniqueFd spill_dir,
                   GcmKey journal_key)
      : StagingStore(std::move(base)),
        options_(std::move(options)),
        spill_dir_(std::move(spill_dir)),
        journal_key_(std::move(journal_key)),
        committer_([this] { CommitLoop(); }) {}

  ~StagingStoreImpl() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
    committer_.join();
    if (!queue_.empty()) {
      spdlog::warn("staging: {} commits were still pending at shutdown", queue_.size());
    }
  }

  // ---- StagingStore ----
  uint64_t Drain(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    drained_.wait_for(lock, timeout, [this] { return queue_.empty() && !in_flight_; });
    return queue_.size() + (in_flight_ ? 1 : 0);
  }

  StagingStatus status() const override {
    std::lock_guard lock(mu_);
    StagingStatus out;
    const auto now = Clock::now();
    auto describe = [now](const Pending& p, uint64_t bytes) {
      return PendingCommit{.stage_id = p.stage->id(),
                           .bytes = bytes,
                           .age = std::chrono::duration_cast<std::chrono::seconds>(now - p.queued),
                           .failed_attempts = p.failed_attempts};
    };
    // The stage being committed is locked for its upload: its size is the one taken
    // when it left the queue.
    if (in_flight_) out.pending.push_back(describe(*in_flight_, in_flight_bytes_));
    for (const Pending& p : queue_) out.pending.push_back(describe(p, p.stage->size()));
    out.pending_commits = out.pending.size();
    for (const PendingCommit& p : out.pending) {
      out.pending_bytes += p.bytes;
      out.oldest_age = std::max(out.oldest_age, p.age);
    }
    std::sort(out.pending.begin(), out.pending.end(),
              [](const PendingCommit& a, const PendingCommit& b) { return a.age > b.age; });
    out.failed_attempts = failed_attempts_;
    out.last_error = last_error_;
    out.last_error_code = last_error_code_;
    out.spill_dir = options_.spill_dir;
    return out;
  }

  // ---- Store: what staging changes ----
  StoreCapabilities capabilities() const override {
    StoreCapabilities caps = base().capabilities();
    caps.partial_writes = true;
    // A staged file's metadata calls go to its path, and it reserves nothing.
    caps.reserve = false;
    caps.handle_attributes = false;
    caps.deferred_commits = true;
    return caps;
  }

  // A staged object's size is its stage's, committed or not. The stage is taken before
  // the store is asked: a commit that lands in between would otherwise leave the
  // store's older answer standing, with no stage left to correct it.
  Result<ObjectInfo> Stat(std::string_view path) override {
    std::shared_ptr<Stage> stage = LiveStage(path);
    CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, base().Stat(path));
    if (stage) ShowStaged(*stage, info);
    return info;
  }

  // Times set on a staged object wait for its commit (Stage::HoldTimes).
  Status SetTimes(std::string_view path, const struct timespec times[2]) override {
    if (std::shared_ptr<Stage> stage = LiveStage(path)) {
      CADCANFS_ASSIGN_OR_RETURN(bool held, stage->HoldTimes(times, journal_key_));
      if (held) return Status::Ok();
    }
    return base().SetTimes(path, times);
  }

  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    std::unordered_map<std::string, std::shared_ptr<Stage>> staged = StagesIn(dir);
    CADCANFS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, base().List(dir));
    if (staged.empty()) return entries;
    for (DirEntry& e : entries) {
      if (!e.info) continue;
      if (auto it = staged.find(e.name); it != staged.end()) ShowStaged(*it->second, *e.info);
    }
    return entries;
  }

  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    std::shared_ptr<Stage> stage = LiveStage(path);
    if (!options.write) {
      if (stage && stage->dirty()) return Handle(std::move(stage), false);
      return base().Open(path, options);
    }
    if (stage) {
      if (options.create && options.exclusive) {
        return Status::Error(Code::kAlreadyExists, "object exists");
      }
      if (options.truncate) CADCANFS_RETURN_IF_ERROR(stage->Truncate(0));
      return Handle(std::move(stage), true);
    }
    if (options.create) {
      // The object exists in the store from creation on, empty, as a new file does.
      auto created = base().Open(path, options);
      if (!created.ok() &&
          !(created.status().code() == Code::kAlreadyExists && !options.exclusive)) {
        return created.status();
      }
      if (created.ok()) CADCANFS_RETURN_IF_ERROR((*created)->Commit(std::nullopt).status());
    }
    CADCANFS_ASSIGN_OR_RETURN(stage, NewStage(path, options.truncate));
    return Handle(std::move(stage), true);
  }

  Status Rename(std::string_view from, std::string_view to, RenameMode mode) override {
    CADCANFS_RETURN_IF_ERROR(base().Rename(from, to, mode));
    std::lock_guard lock(mu_);
    MoveStagesLocked(std::string(from), std::string(to), mode == RenameMode::kExchange);
    return Status::Ok();
  }

  Status Remove(std::string_view path) override {
    CADCANFS_RETURN_IF_ERROR(base().Remove(path));
    std::lock_guard lock(mu_);
    auto it = stages_.find(std::string(path));
    if (it != stages_.end()) {
      if (std::shared_ptr<Stage> stage = it->second.lock()) stage->Orphan();
      stages_.erase(it);
    }
    return Status::Ok();
  }

  // ---- for StagedFile ----
  using StagingStore::base;
  const StagingOptions& options() const { return options_; }
  const GcmKey& journal_key() const { return journal_key_; }

  // close(2) of a writer (FUSE flush): the staged state is journalled now, so that a
  // crash before the last release cannot lose a file its program already closed.
  Status Checkpoint(const std::shared_ptr<Stage>& stage) {
    if (!stage->dirty()) return Status::Ok();
    return stage->Persist(journal_key_);
  }

  void WriterOpened(const std::shared_ptr<Stage>& stage) {
    std::lock_guard lock(mu_);
    ++writers_[stage.get()];
  }

  // The last writer is gone: a stage with uncommitted changes is journalled, so that
  // a crash cannot lose it, and goes on the queue.
  void WriterClosed(const std::shared_ptr<Stage>& stage) {
    {
      std::lock_guard lock(mu_);
      auto it = writers_.find(stage.get());
      if (it != writers_.end() && --it->second > 0) return;
      if (it != writers_.end()) writers_.erase(it);
    }
    if (!stage->dirty()) return;
    if (Status s = stage->Persist(journal_key_); !s.ok()) {
      spdlog::warn("staging: a staged file could not be journalled: {}", s.message());
    }
    Enqueue(stage);
  }

  // Finds the stages a previous process journalled but did not commit, and queues them
  // before anyone can read their paths; drops what it never promised to keep.
  Status Recover() {
    std::vector<std::string> journals, others;
    CADCANFS_RETURN_IF_ERROR(ListSpillDirectory(journals, others));
    for (const std::string& name : others) {
      const std::string id = name.substr(0, name.find('.'));
      const bool journalled =
          std::find(journals.begin(), journals.end(), id + kJournalSuffix) != journals.end();
      if (!journalled || name.ends_with(kTempSuffix)) {
        (void)unlinkat(spill_dir_.get(), name.c_str(), 0);
      }
    }
    for (const std::string& name : journals) {
      const std::string id = name.substr(0, name.size() - std::strlen(kJournalSuffix));
      CADCANFS_ASSIGN_OR_RETURN(std::shared_ptr<Stage> stage, RecoverStage(id));
      {
        std::lock_guard lock(mu_);
        stages_[stage->path()] = stage;
      }
      Enqueue(stage);
    }
    if (!journals.empty()) {
      spdlog::warn("staging: {} staged files from an earlier run are queued for commit",
                   journals.size());
    }
    return Status::Ok();
  }

 private:
  // The live stages of the entries of `dir`, by entry name.
  std::unordered_map<std::string, std::shared_ptr<Stage>> StagesIn(std::string_view dir) {
    std::unordered_map<std::string, std::shared_ptr<Stage>> staged;
    std::lock_guard lock(mu_);
    for (const auto& [path, weak] : stages_) {
      if (StoreParent(path) != dir) continue;
      if (std::shared_ptr<Stage> stage = weak.lock()) {
        staged.emplace(std::string(StoreBaseName(path)), std::move(stage));
      }
    }
    return staged;
  }

  std::shared_ptr<Stage> LiveStage(std::string_view path) {
    std::lock_guard lock(mu_);
    auto it = stages_.find(std::string(path));
    return it == stages_.end() ? nullptr : it->second.lock();
  }

  std::unique_ptr<StoreFile> Handle(std::shared_ptr<Stage> stage, bool writable) {
    return std::make_unique<StagedFile>(*this, std::move(stage), writable);
  }

  void Enqueue(const std::shared_ptr<Stage>& stage) {
    {
      std::lock_guard lock(mu_);
      const auto now = Clock::now();
      queue_.push_back(Pending{stage, now, now, options_.first_retry});
    }
    changed_.notify_all();
  }

  Status ListSpillDirectory(std::vector<std::string>& journals, std::vector<std::string>& others) {
    int fd = openat(spill_dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "cannot list the staging directory");
    DIR* dir = fdopendir(fd);
    if (dir == nullptr) {
      close(fd);
      return Status::FromErrno(errno, "cannot list the staging directory");
    }
    for (dirent* e = readdir(dir); e != nullptr; e = readdir(dir)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      (name.ends_with(kJournalSuffix) ? journals : others).push_back(name);
    }
    closedir(dir);
    return Status::Ok();
  }

  // Rebuilds a stage from its journal entry and spill file. A block is staged iff its
  // place in the spill file holds anything: unwritten places of a sparse file read as
  // zeros, and a sealed block never is all zeros (its nonce is random).
  Result<std::shared_ptr<Stage>> RecoverStage(const std::string& id) {
    CADCANFS_ASSIGN_OR_RETURN(Bytes sealed, ReadWhole(spill_dir_.get(), id + kJournalSuffix));
    CADCANFS_ASSIGN_OR_RETURN(std::string json, OpenJournal(journal_key_, id, sealed));
    const nlohmann::json entry = nlohmann::json::parse(json, nullptr, false);
    std::optional<Bytes> salt;
    if (entry.is_object() && entry.value("v", 0) == 1) salt = HexDecode(entry.value("salt", ""));
    if (!salt || salt->size() != kSaltSize) {
      return Status::Error(Code::kCorrupt, "a staging journal entry is malformed");
    }
    StageParts parts{.id = id, .spill_dir = spill_dir_.get()};
    std::copy(salt->begin(), salt->end(), parts.salt.begin());
    CADCANFS_ASSIGN_OR_RETURN(SecretBytes key, FileKey(parts.salt));
    parts.key.emplace(std::move(key));
    parts.path = entry.value("path", "");
    parts.size = entry.value("size", uint64_t{0});
    parts.original_limit = entry.value("original_limit", uint64_t{0});
    parts.original_etag = entry.value("etag", "");
    parts.mode = entry.value("mode", uint32_t{0600});
    parts.times = TimesFromJson(entry);
    parts.upload = entry.value("upload", "");
    int fd = openat(spill_dir_.get(), (id + kSpillSuffix).c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "cannot open a staging file");
    parts.spill = UniqueFd(fd);
    auto original = base().Open(parts.path, OpenOptions{});
    if (original.ok()) parts.original = std::move(original).value();
    CADCANFS_ASSIGN_OR_RETURN(std::vector<bool> staged, StagedBlocksIn(parts.spill.get()));
    auto stage = std::make_shared<Stage>(std::move(parts));
    stage->MarkRecovered(std::move(staged));
    return stage;
  }

  static Result<std::vector<bool>> StagedBlocksIn(int spill) {
    struct stat st;
    if (fstat(spill, &st) != 0) return Status::FromErrno(errno, "cannot stat a staging file");
    std::vector<bool> staged(static_cast<size_t>(st.st_size) / kStoredStageBlock, false);
    std::vector<uint8_t> stored(kStoredStageBlock);
    for (size_t index = 0; index < staged.size(); ++index) {
      CADCANFS_RETURN_IF_ERROR(
          PreadAll(spill, stored.data(), stored.size(), index * kStoredStageBlock));
      staged[index] = std::any_of(stored.begin(), stored.end(), [](uint8_t b) { return b != 0; });
    }
    return staged;
  }

  Result<SecretBytes> FileKey(const std::array<uint8_t, kSaltSize>& salt) {
    return HkdfSha256(options_.key, "cadcanfs v1 staged file " + HexEncode(salt), kGcmKeySize);
  }

  // A stage over the object at `path` as it is now: a reader of it and its eTag, and a
  // spill file of a random name under a key of its own. Starting `empty` (O_TRUNC)
  // needs no reader, only the eTag the commit is conditional on.
  Result<std::shared_ptr<Stage>> NewStage(std::string_view path, bool empty) {
    StageParts parts{.spill_dir = spill_dir_.get(), .path = std::string(path)};
    ObjectInfo info;
    if (empty) {
      CADCANFS_ASSIGN_OR_RETURN(info, base().Stat(path));
    } else {
      CADCANFS_ASSIGN_OR_RETURN(parts.original, base().Open(path, OpenOptions{}));
      CADCANFS_ASSIGN_OR_RETURN(info, parts.original->Stat());
      parts.size = parts.original_limit = info.size;
    }
    parts.original_etag = info.etag;
    parts.mode = info.mode;
    std::array<uint8_t, kStageIdSize> id{};
    CADCANFS_RETURN_IF_ERROR(FillRandom(id));
    parts.id = HexEncode(id);
    int fd = openat(spill_dir_.get(), (parts.id + kSpillSuffix).c_str(),
                    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FromErrno(errno, "cannot create a staging file");
    parts.spill = UniqueFd(fd);
    CADCANFS_RETURN_IF_ERROR(FillRandom(parts.salt));
    CADCANFS_ASSIGN_OR_RETURN(SecretBytes key, FileKey(parts.salt));
    parts.key.emplace(std::move(key));
    auto stage = std::make_shared<Stage>(std::move(parts));
    if (empty) stage->MarkDirty();
    std::lock_guard lock(mu_);
    auto [it, inserted] = stages_.try_emplace(std::string(path), stage);
    if (!inserted) {
      // Another thread staged this object meanwhile: share its stage.
      if (std::shared_ptr<Stage> live = it->second.lock()) return live;
      it->second = stage;
    }
    return stage;
  }

  // After a rename of `from` to `to`, stages below `from` follow it (and the other way
  // round for an exchange). A stage at the replaced `to` is orphaned.
  void MoveStagesLocked(const std::string& from, const std::string& to, bool exchange) {
    std::unordered_map<std::string, std::weak_ptr<Stage>> moved;
    auto under = [](const std::string& path, const std::string& dir) {
      return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                             path[dir.size()] == '/');
    };
    for (auto it = stages_.begin(); it != stages_.end();) {
      std::string path = it->first;
      std::string renamed;
      if (under(path, from)) {
        renamed = to + path.substr(from.size());
      } else if (under(path, to)) {
        if (!exchange) {
          if (std::shared_ptr<Stage> stage = it->second.lock()) stage->Orphan();
          it = stages_.erase(it);
          continue;
        }
        renamed = from + path.substr(to.size());
      } else {
        ++it;
        continue;
      }
      if (std::shared_ptr<Stage> stage = it->second.lock()) stage->SetPath(renamed);
      moved[renamed] = it->second;
      it = stages_.erase(it);
    }
    for (auto& [path, stage] : moved) stages_[path] = std::move(stage);
  }

  void CommitLoop() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (stopping_) return;
      if (queue_.empty()) {
        changed_.wait(lock);
        continue;
      }
      auto next =
          std::min_element(queue_.begin(), queue_.end(),
                           [](const Pending& a, const Pending& b) { return a.due < b.due; });
      if (next->due > Clock::now()) {
        changed_.wait_until(lock, next->due);
        continue;
      }
      in_flight_ = std::move(*next);
      queue_.erase(next);
      in_flight_bytes_ = in_flight_->stage->size();
      const std::shared_ptr<Stage> stage = in_flight_->stage;
      lock.unlock();
      Status s = stage->Commit(base(), options_, journal_key_).status();
      lock.lock();
      Pending pending = std::move(*in_flight_);
      in_flight_.reset();
      if (!s.ok()) {
        ++failed_attempts_;
        last_error_ = s.message();
        last_error_code_ = s.code();
        ++pending.failed_attempts;
        spdlog::warn("staging: the commit of stage {} failed, retrying in {} ms: {}",
                     pending.stage->id(), pending.backoff.count(), s.message());
        pending.due = Clock::now() + pending.backoff;
        pending.backoff = std::min(pending.backoff * 2, options_.longest_retry);
        queue_.push_back(std::move(pending));
      }
      drained_.notify_all();
    }
  }

  const StagingOptions options_;
  UniqueFd spill_dir_;
  const GcmKey journal_key_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<Stage>> stages_;  // by store path
  std::unordered_map<const Stage*, int> writers_;                 // open writable handles
  std::deque<Pending> queue_;
  std::optional<Pending> in_flight_;  // the commit under way, out of the queue
  uint64_t in_flight_bytes_ = 0;
  uint64_t failed_attempts_ = 0;
  std::string last_error_;
  Code last_error_code_ = Code::kOk;
  bool stopping_ = false;
  std::condition_variable changed_;
  std::condition_variable drained_;
  std::thread committer_;  // last: it starts running in the constructor
};

StagedFile::StagedFile(StagingStoreImpl& owner, std::shared_ptr<Stage> stage, bool writable)
    : owner_(owner), stage_(std::move(stage)), writable_(writable) {
  if (writable_) owner_.WriterOpened(stage_);
}

StagedFile::~StagedFile() {
  if (writable_) owner_.WriterClosed(stage_);
}

// The condition a caller gives is checked against what the stage began from: staged
// writes are this writer's own, not a change made elsewhere.
Result<ObjectInfo> StagedFile::Commit(std::optional<std::string> if_match_etag) {
  if (if_match_etag && stage_->original_etag() != *if_match_etag) {
    return Status::Error(Code::kChangedElsewhere, "the object changed in the store meanwhile");
  }
  return stage_->Commit(owner_.base(), owner_.options(), owner_.journal_key());
}

Status StagedFile::Checkpoint() {
  if (!writable_) return Status::Ok();
  return owner_.Checkpoint(stage_);
}

Status StagedFile::Abort() {
  if (!writable_) return Status::Error(Code::kBadHandle, "not open for writing");
  return stage_->Abort(owner_.base());
}

Result<ObjectInfo> StagedFile::Stat() {
  CADCANFS_ASSIGN_OR_RETURN(ObjectInfo info, owner_.base().Stat(stage_->path()));
  ShowStaged(*stage_, info);
  return info;
}

Status StagedFile::SetMode(uint32_t mode) { return owner_.base().SetMode(stage_->path(), mode); }
Status StagedFile::SetOwner(uid_t uid, gid_t gid) {
  return owner_.base().SetOwner(stage_->path(), uid, gid);
}
Status StagedFile::SetTimes(const struct timespec times[2]) {
  CADCANFS_ASSIGN_OR_RETURN(bool held, stage_->HoldTimes(times, owner_.journal_key()));
  if (held) return Status::Ok();
  return owner_.base().SetTimes(stage_->path(), times);
}

// The spill directory holds only ciphertext, but its names and sizes still say that
// something is being written: it must be ours alone.
Result<UniqueFd> OpenPrivateDirectory(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "cannot create the staging directory");
  }
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "cannot open the staging directory");
  UniqueFd dir(fd);
  struct stat st;
  if (fstat(dir.get(), &st) != 0)
    return Status::FromErrno(errno, "cannot stat the staging directory");
  if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    return Status::Error(Code::kPermissionDenied,
                         "the staging directory must be private (mode 0700, owned by this user)");
  }
  return dir;
}

}  // namespace

Result<std::unique_ptr<StagingStore>> OpenStagingStore(std::unique_ptr<Store> base,
                                                       StagingOptions options) {
  if (options.key.size() != kStagingKeySize) {
    return Status::Error(Code::kInvalidArgument, "the staging key has the wrong size");
  }
  CADCANFS_ASSIGN_OR_RETURN(UniqueFd dir, OpenPrivateDirectory(options.spill_dir));
  CADCANFS_ASSIGN_OR_RETURN(SecretBytes journal_key,
                            HkdfSha256(options.key, "cadcanfs v1 staging journal", kGcmKeySize));
  auto store = std::make_unique<StagingStoreImpl>(std::move(base), std::move(options),
                                                  std::move(dir), GcmKey(std::move(journal_key)));
  CADCANFS_RETURN_IF_ERROR(store->Recover());
  return std::unique_ptr<StagingStore>(std::move(store));
}

std::string PlainConflictName(std::string_view store_path) {
  const std::string_view dir = StoreParent(store_path);
  const std::string_view name = StoreBaseName(store_path);
  const size_t dot = name.rfind('.');
  const bool has_ext = dot != std::string_view::npos && dot > 0;
  const std::string_view stem = has_ext ? name.substr(0, dot) : name;
  const std::string_view ext = has_ext ? name.substr(dot) : std::string_view();
  char date[16] = {};
  const time_t now = time(nullptr);
  struct tm utc;
  gmtime_r(&now, &utc);
  strftime(date, sizeof(date), "%Y-%m-%d", &utc);
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  std::string copy = std::string(stem) + " (conflicted copy " + date + " " + host + ")";
  copy += ext;
  return JoinStorePath(dir, copy);
}

}  // namespace cadcanfs
