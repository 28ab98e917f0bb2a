// CachingStore: a read cache of ciphertext in memory, in front of a remote store.
//
// It sits below the format (vault or plain), so it holds only what the store holds:
// ciphertext in a vault, and in plain mode the files as the remote folder already
// has them. The kernel page cache does this job for a local store, so the mount puts
// it only in front of stores without partial writes (OneDrive, remote-like:).
//
// What it caches
//   - Byte ranges of file objects, in aligned chunks of `chunk_size` bytes, keyed by
//     (ObjectId, version, chunk index). An object's version changes whenever its
//     content may have changed: a new eTag seen in any Stat or List that passes
//     through, or a write, commit, WriteAtomic, Remove or Rename onto it made through
//     this decorator. Chunks of an old version are dropped and never served again.
//   - The bytes held, plus the bytes of fetches in flight, stay within `budget_bytes`;
//     the least recently used chunks go first. A read that finds no room (every chunk
//     in flight) reads from the store without caching. A budget smaller than one
//     chunk (0 included) turns the cache off: every call passes straight through.
//   - Concurrent misses on one chunk fetch it once: the others wait for that fetch.
//
// Read-ahead
//   - StoreFile::Prefetch starts background fetches (a pool of `prefetch_threads`
//     per store) for the chunks of the range that are neither held nor in flight.
//   - A reader also detects sequential reads by itself (the plain format asks for no
//     read-ahead): once a read continues the previous one, it keeps the next chunks
//     requested, a window that starts at 4 chunks and doubles up to
//     `max_readahead_chunks`. Random reads fetch only the chunks they touch.
//   - Misses of one read that are adjacent are fetched with one ranged store read.
//
// How an open reader knows its object: Stat and List results passing through record
// path -> ObjectId, so an Open after a lookup costs no extra call; otherwise the open
// file is asked once (one Stat call). Files opened for writing pass through, and
// invalidate their object when they write, truncate or commit.
//
// Changes made to the store by someone else are seen when a Stat or List shows the
// new eTag (the FUSE layer's attribute timeouts bound how stale that can be).
//
// Thread safety: all methods may be called concurrently, as the Store interface says.
#ifndef CADCANFS_STORE_CACHING_STORE_H_
#define CADCANFS_STORE_CACHING_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cadcanfs/store/forwarding_store.h"
#include "cadcanfs/store/store.h"

namespace cadcanfs {

// What the mount uses in front of a remote store when --cache-size is not given.
inline constexpr uint64_t kDefaultRemoteCacheBytes = uint64_t{128} << 20;

struct CachingOptions {
  uint64_t budget_bytes = kDefaultRemoteCacheBytes;
  size_t chunk_size = 1 << 20;
  size_t prefetch_threads = 8;
  size_t max_readahead_chunks = 8;
};

// What the cache did since the store was made, for tests and benchmarks.
struct CachingStats {
  uint64_t hits = 0;         // chunks served from memory
  uint64_t misses = 0;       // chunks a reader had to fetch or wait for
  uint64_t fetches = 0;      // chunk fetches started (demand and read-ahead)
  uint64_t held_bytes = 0;   // bytes of chunks held now
  uint64_t peak_bytes = 0;   // most bytes held plus in flight at any time
  uint64_t invalidated = 0;  // object versions dropped
};

class CachingStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  virtual CachingStats stats() const = 0;
};

std::unique_ptr<CachingStore> NewCachingStore(std::unique_ptr<Store> base,
                                              CachingOptions options = {});

}  // namespace cadcanfs

#endif  // CADCANFS_STORE_CACHING_STORE_H_
