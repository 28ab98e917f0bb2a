// The store's ForwardingStore and ForwardingStoreFile, under the names tests use: a
// test overrides just the calls it wants to fail or observe, or takes a view of a
// store that outlives several FileSystems (a remount).
#ifndef CADCANFS_TESTS_TESTING_FORWARDING_STORE_H_
#define CADCANFS_TESTS_TESTING_FORWARDING_STORE_H_

#include "cadcanfs/store/forwarding_store.h"

namespace cadcanfs::testing {

using cadcanfs::ForwardingStore;
using cadcanfs::ForwardingStoreFile;

}  // namespace cadcanfs::testing

#endif  // CADCANFS_TESTS_TESTING_FORWARDING_STORE_H_
