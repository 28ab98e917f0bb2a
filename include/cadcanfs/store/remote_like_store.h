// RemoteLikeStore: a Store decorator that makes any store (normally a MemoryStore)
// behave like a OneDrive folder, so that the layers above can be tested against a
// remote store's rules, costs and failures without HTTP. See
// shared/reference/graph-api.md for the service it imitates.
//
// What it changes in the store it wraps:
//
// Writing (capabilities().partial_writes is false)
//   - A StoreFile opened for writing never touches the stored object. WriteAt and
//     Truncate land in a private, sparse upload buffer holding the whole object: an
//     unlinked file in a private directory under $TMPDIR (/tmp), so that a big
//     upload does not sit in memory (in memory if that directory cannot be made).
//   - Commit() is the commit: one whole-object replace of the stored object. Its new
//     content becomes visible to Stat, List, ReadSmall and readers only then, and
//     atomically (a ReadAt sees all of the old or all of the new content).
//   - A writer destroyed without Commit() loses its writes, as an upload session that
//     is never finished: the core must Commit before it releases a file. Abort()
//     drops the buffer: the writer starts again from the committed object.
//   - A writer opened on an existing object starts from its content. That content is
//     downloaded lazily (one kDownload call) on the first ReadAt, WriteAt or
//     Truncate that needs it; Truncate(0) first, or an empty object, costs nothing.
//   - ReadAt on a writer reads its own buffer. Size() and Stat() of a writer show its
//     pending size; Stat() of the store shows the committed object until Commit().
//   - Opening with `create` makes the empty object at once (a zero-byte upload), so
//     the name is visible, with size 0, before the first commit.
//   - A commit fails with kNotFound if the object lost its name (OneDrive deletes
//     the item; an open StoreFile does not keep it alive for writing).
//   - Readers read the committed content of the object, live: a commit made after a
//     reader opened is seen by its next ReadAt. Reads of a removed object keep
//     working (a download URL outlives the item for a while).
//
// eTags and conditional commits
//   - ObjectInfo::etag is the object's content version, formatted like a OneDrive
//     for Business eTag ("{item id},version"). Every commit and every WriteAtomic onto
//     the object changes it. Reads, renames and time changes do not (it acts as
//     OneDrive's cTag), so a rename does not spoil an open writer's commit.
//   - A commit is conditional on the eTag the writer started from (the If-Match of
//     the upload): if another writer or a WriteAtomic committed in between, Commit()
//     fails with kChangedElsewhere and changes nothing. After a successful commit the
//     writer's base is its own commit, so it may Commit again. Commit(eTag) is also conditional on
//     that eTag (If-Match), in the same request; opening with `truncate` starts the
//     buffer empty, with no download.
//
// Names (checked when a name is created: Open with create, WriteAtomic, MakeDir and
// the target of Rename; a lookup of a name that cannot exist simply finds nothing)
//   - Case-insensitive and case-preserving: "A.txt" and "a.txt" are one entry, a
//     lookup in any case finds it, creating one while the other exists is
//     kAlreadyExists, listings show the stored case, and a rename that changes only
//     the case works. Case is folded for ASCII letters only (ciphertext names are
//     ASCII; OneDrive folds all of Unicode, and "ae" equals "æ" there).
//   - kInvalidArgument for the names OneDrive refuses: any of " * : < > ? / \ |,
//     a leading or trailing space, a trailing dot, the reserved names CON, PRN, AUX,
//     NUL, COM0-COM9, LPT0-LPT9, .lock and desktop.ini (in any case), any name
//     containing "_vti_", any name starting with "~$", and a directory name starting
//     with "~". ("forms" at a SharePoint library root is not modelled.)
//   - kNameTooLong for a created path longer than max_path_length characters
//     (default 400, counted in UTF-16 code units as OneDrive counts them). Renaming a
//     folder is refused the same way if any path below it would pass the limit.
//
// What it lacks (capabilities say so, the calls return kUnsupported, count nothing)
//   - symlinks, hard links, FIFOs, sockets and devices, extended attributes;
//   - modes and owners: SetMode and SetOwner (on paths and open files);
//   - StoreFile::Reserve; Rename with RenameMode::kExchange (no atomic swap on the
//     service). capabilities() says so, and that names are case-insensitive with
//     max_path_length as the limit. Prefetch is accepted and does nothing.
//   - Stat and listings show mode 0644 for files and 0755 for directories, the
//     configured uid and gid, nlink 1 (0 for an open object that lost its name),
//     whole seconds, and atime and ctime equal to mtime.
//   - SetTimes is supported (fileSystemInfo): through an open writer it is also
//     applied again after its next commit, as an upload session carries it.
//
// Object identity: ObjectIds are OneDrive-like item id strings derived from the
// wrapped store's ids: stable across renames and never reused as long as the wrapped
// store never reuses its own (MemoryStore never does). WriteAtomic onto an existing
// file keeps its id, as a PUT to an existing item does.
//
// Costs, latency and faults (RemoteLikeControls, shared so a test can keep it after
// handing the store to the layer under test)
//   - Every request the service would see is one call of a RemoteCall kind, counted.
//     A listing costs one kList call per page of list_page_size entries (at least
//     one). Case-insensitive lookups cost nothing extra (the service does them).
//     Size() of an open reader is free (every ranged reply carries the total size);
//     SyncDir is free (OneDrive's entries are durable at once).
//   - Each call sleeps the configured latency before it takes any lock, so calls
//     from several threads overlap as HTTP requests do. The controls keep the most
//     ranged reads ever in flight at once (a read-ahead's parallelism).
//   - With RemoteLikeOptions::counts_file set, the store rewrites that file
//     atomically (a temporary file renamed over it) with its counters as one JSON
//     object, {"stat": N, ..., "total": N, "read-range-max-in-flight": N}, at most
//     every 100 ms while they change and once more when the store goes: so that a
//     benchmark can read a mounted daemon's calls from outside.
//   - Faults: the Nth call of a kind from now, or each call of a kind with a fixed
//     probability and seed, fails with a chosen Code (kRetryLater, kChangedElsewhere,
//     kQuotaExceeded, kIoError...). FaultTiming::kBeforeApplying fails the call with
//     nothing done (a dropped request, e.g. a commit that never lands);
//     kAfterApplying does the call and then reports the failure (a lost reply).
//
// Thread safety: safe for concurrent use, as the Store interface requires; a writer's
// WriteAt, ReadAt and Truncate may run concurrently with each other, not with its
// Commit.
#ifndef CADCANFS_STORE_REMOTE_LIKE_STORE_H_
#define CADCANFS_STORE_REMOTE_LIKE_STORE_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cadcanfs/common/status.h"
#include "cadcanfs/store/store.h"

namespace cadcanfs {

// The requests a OneDrive client would send, one kind each.
enum class RemoteCall : unsigned char {
  kStat,         // Store::Stat, StoreFile::Stat (GET item)
  kList,         // one page of Store::List (GET children)
  kOpenRead,     // Store::Open for reading (GET /content, the 302)
  kReadRange,    // StoreFile::ReadAt of a reader (ranged GET of the download URL)
  kOpenWrite,    // Store::Open for writing (GET item; with create, a zero-byte PUT)
  kDownload,     // a writer fetching the existing content it starts from
  kCommit,       // StoreFile::Commit with pending writes (the upload session)
  kReadSmall,    // Store::ReadSmall (GET /content, whole)
  kWriteAtomic,  // Store::WriteAtomic (simple upload PUT)
  kMakeDir,      // Store::MakeDir (POST children, folder)
  kRemoveDir,    // Store::RemoveDir (DELETE)
  kRemove,       // Store::Remove (DELETE)
  kRename,       // Store::Rename (PATCH name and parentReference)
  kSetTimes,     // SetTimes (PATCH fileSystemInfo)
  kSpace,        // Store::Space (GET drive quota)
};
inline constexpr size_t kRemoteCallKinds = static_cast<size_t>(RemoteCall::kSpace) + 1;

// "stat", "list", "open-read", ...: for benchmark reports.
std::string_view RemoteCallName(RemoteCall kind);

// When an injected fault strikes.
enum class FaultTiming {
  kBeforeApplying,  // the call fails and changes nothing (a dropped request)
  kAfterApplying,   // the call takes effect, then fails (a lost reply)
};

struct RemoteLikeOptions {
  std::chrono::microseconds latency{0};  // added to every call
  size_t max_path_length = 400;          // OneDrive's limit for a whole path
  size_t list_page_size = 1000;          // the largest $top Graph accepts
  uid_t uid = 0;                         // what Stat reports as every object's owner
  gid_t gid = 0;
  std::string counts_file;  // empty: none (see above)
};

// Call counts, latency and fault injection of one RemoteLikeStore. Thread-safe.
class RemoteLikeControls {
 public:
  explicit RemoteLikeControls(std::chrono::microseconds latency) : latency_us_(latency.count()) {}

  void SetLatency(std::chrono::microseconds latency) { latency_us_.store(latency.count()); }
  std::chrono::microseconds latency() const {
    return std::chrono::microseconds(latency_us_.load());
  }

  // Calls of `kind` (or of every kind) since the store was made or the last reset,
  // failed ones included.
  uint64_t Calls(RemoteCall kind) const;
  uint64_t TotalCalls() const;
  void ResetCalls();
  // The most ranged reads (kReadRange) in flight at once since the last reset.
  uint64_t MaxReadsInFlight() const { return max_reads_in_flight_.load(); }
  // The counters as the counts file holds them.
  std::string CountsJson() const;

  // For the store: holds one ranged read in flight for its lifetime.
  class ReadInFlight {
   public:
    explicit ReadInFlight(RemoteLikeControls& controls);
    ~ReadInFlight();
    ReadInFlight(const ReadInFlight&) = delete;
    ReadInFlight& operator=(const ReadInFlight&) = delete;

   private:
    RemoteLikeControls& controls_;
  };

  // The `n`th call of `kind` from now (1: the next one) fails with `code`.
  void FailNthCall(RemoteCall kind, uint64_t n, Code code,
                   FaultTiming timing = FaultTiming::kBeforeApplying);
  // Every call of `kind` fails with `code` with `probability`, drawn from a generator
  // seeded with `seed`, so a run is reproducible.
  void FailRandomly(RemoteCall kind, double probability, Code code, uint64_t seed,
                    FaultTiming timing = FaultTiming::kBeforeApplying);
  void ClearFaults();

  // For the store: what an injected fault does to one call.
  struct Fault {
    Status before;  // not OK: fail the call at once
    Status after;   // not OK: do the call, then fail it
  };
  // Counts one call of `kind`, decides its fault, then sleeps the latency. The caller
  // must hold no lock.
  Fault Begin(RemoteCall kind);

 private:
  struct NthRule {
    RemoteCall kind;
    uint64_t remaining;
    Code code;
    FaultTiming timing;
  };
  struct RandomRule {
    RemoteCall kind;
    double probability;
    Code code;
    FaultTiming timing;
  };
  static Fault MakeFault(Code code, FaultTiming timing);
  Fault DecideFault(RemoteCall kind);

  std::atomic<int64_t> latency_us_;
  std::array<std::atomic<uint64_t>, kRemoteCallKinds> calls_{};
  std::atomic<uint64_t> reads_in_flight_{0};
  std::atomic<uint64_t> max_reads_in_flight_{0};
  std::mutex mu_;  // guards the rules and the generator
  std::vector<NthRule> nth_rules_;
  std::vector<RandomRule> random_rules_;
  std::mt19937_64 random_;
};

class RemoteLikeStore : public Store {
 public:
  virtual std::shared_ptr<RemoteLikeControls> controls() const = 0;
};

// Wraps `base`, which must not be changed by anyone else while the decorator lives.
std::unique_ptr<RemoteLikeStore> NewRemoteLikeStore(std::unique_ptr<Store> base,
                                                    RemoteLikeOptions options = {});

// OneDrive's rules for one new name (see above): kInvalidArgument, one sentence.
Status CheckRemoteName(std::string_view name, ObjectType type);
// kNameTooLong if `path` is longer than `max_length` UTF-16 code units.
Status CheckRemotePathLength(std::string_view path, size_t max_length);

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_REMOTE_LIKE_STORE_H_
