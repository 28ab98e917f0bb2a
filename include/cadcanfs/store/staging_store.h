// StagingStore: random-access writes over a store that can only replace whole objects.
//
// OneDrive (and the RemoteLikeStore that imitates it in tests) cannot change bytes in
// place: an upload replaces the object. A CAD program, though, saves in place at
// random offsets. This decorator lets the filesystem core write as it always does:
//   - Writes land in a local spill file in `spill_dir`, never whole files in memory, so
//     a 2 GiB CBCT export stages with bounded memory. Only the blocks a writer touches
//     are staged; the others are read from the store object as it was at open.
//   - Every staged byte is encrypted: AES-256-GCM in 64 KiB blocks under a key derived
//     from the staging key (itself derived from the master key by the caller) and a
//     random salt per staged file. Nothing in the spill directory reads without the key,
//     in vault mode and in plain mode alike.
//   - Commit points: Commit() (fsync) returns once the store holds the whole object. The
//     last handle to go away without a Commit queues the commit for a background thread,
//     so close(2) never waits for an upload; a commit that fails is retried with
//     backoff. Until it lands, Open and Stat of that path see the staged version.
//   - Drain() waits for the queue (unmount), and status() reports what is pending:
//     counts, bytes, age and the last error, never a name.
//   - Crash safety: at Checkpoint() (close(2) of a writer, FUSE flush) and when the
//     last writer goes away, the staged blocks are made durable and a journal entry is
//     written next to them (sealed like the blocks: it holds the
//     store path, which is a plaintext name in plain mode). Opening the store again with
//     the same key finds every journalled stage and queues its commit before anything
//     reads the path. A stage never checkpointed whose file was still open at the
//     crash had promised nothing (no fsync, no close) and is dropped. Writes made after
//     a checkpoint by a handle still open at the crash may be partly in what recovery
//     commits, as unsynced writes may be in a local file after a crash.
//   - Commits go to the store as Commit(eTag staging began from): a store that says
//     kChangedElsewhere (its If-Match failed) gets ours as a conflict copy beside the
//     object instead, named by `conflict_name`; neither version is lost. Over a store
//     that writes in place, the eTag is also checked before the first write.
//   - Abort() of a staged file drops its staged blocks; Prefetch passes the ranges
//     that are not staged on to the object below.
//
// Renames and removals go to the store and move or drop the staged state with them.
//
// The spill directory holds, per stage, "<id>.spill" (the blocks) and, once queued,
// "<id>.journal"; ids are random, so no name says what is being written.
//
// Thread safety: all methods may be called concurrently.
#ifndef CADCANFS_STORE_STAGING_STORE_H_
#define CADCANFS_STORE_STAGING_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cadcanfs/common/status.h"
#include "cadcanfs/crypto/secret.h"
#include "cadcanfs/store/forwarding_store.h"
#include "cadcanfs/store/store.h"

namespace cadcanfs {

inline constexpr size_t kStagingKeySize = 32;

struct StagingOptions {
  std::string spill_dir;  // created with mode 0700 if missing; must be a local directory
  SecretBytes key;        // kStagingKeySize bytes
  // Backoff between attempts of a failing background commit: doubles from `first`
  // up to `longest`.
  std::chrono::milliseconds first_retry{100};
  std::chrono::milliseconds longest_retry{std::chrono::seconds(30)};
  // The store path for a conflict copy of `store_path` (same directory). The default
  // names it as OneDrive does, "name (conflicted copy YYYY-MM-DD host).ext"; a vault
  // supplies one that encrypts that name.
  std::function<Result<std::string>(std::string_view store_path)> conflict_name;
};

// "dir/name (conflicted copy 2026-12-02 host).ext" for "dir/name.ext", in UTC.
std::string PlainConflictName(std::string_view store_path);

// One pending commit, named by its stage id (the name of its spill file), never by path.
struct PendingCommit {
  std::string stage_id;
  uint64_t bytes = 0;
  std::chrono::seconds age{0};
  uint64_t failed_attempts = 0;
};

struct StagingStatus {
  uint64_t pending_commits = 0;  // queued or being retried
  uint64_t pending_bytes = 0;    // their sizes
  std::chrono::seconds oldest_age{0};
  uint64_t failed_attempts = 0;  // since the store was opened: the retries
  std::string last_error;        // the last failure's message (no names), or empty
  Code last_error_code = Code::kOk;
  std::string spill_dir;               // the cache directory in use
  std::vector<PendingCommit> pending;  // oldest first
};

class StagingStore;

// Wraps `base`. kInvalidArgument if the key has the wrong size; an I/O error if the
// spill directory cannot be made or is not private (mode 0700, owned by us).
Result<std::unique_ptr<StagingStore>> OpenStagingStore(std::unique_ptr<Store> base,
                                                       StagingOptions options);

class StagingStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  // Waits for the queue to empty, for up to `timeout`; returns how many commits are
  // still pending then (0: every staged change is in the store).
  virtual uint64_t Drain(std::chrono::milliseconds timeout) = 0;
  virtual StagingStatus status() const = 0;
};

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_STAGING_STORE_H_
