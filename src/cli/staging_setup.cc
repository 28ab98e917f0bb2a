#include "staging_setup.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/crypto/kdf.h"
#include "cadcanfs/store/caching_store.h"
#include "exit_codes.h"
#include "support.h"

namespace cadcanfs::cli {

namespace {

// Enough of the hash to keep two vaults' spills apart; the location itself (a path
// or a OneDrive folder) never appears on disk.
constexpr size_t kLocationTagBytes = 8;

// mkdir -p with mode 0700 for what it creates.
Status MakePrivateDirectories(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "cannot create the cache directory");
    }
    if (slash == std::string::npos) return Status::Ok();
  }
}

}  // namespace

std::string DefaultCacheDir() {
  if (geteuid() == 0) return "/var/cache/cadcanfs";
  if (const char* xdg = getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return std::string(xdg) + "/cadcanfs";
  }
  const char* home = getenv("HOME");
  return std::string(home != nullptr ? home : "/tmp") + "/.cache/cadcanfs";
}

std::unique_ptr<Store> CacheReadsOf(std::unique_ptr<Store> store,
                                    std::optional<uint64_t> cache_bytes) {
  if (store->capabilities().partial_writes) return store;
  const uint64_t budget = cache_bytes.value_or(kDefaultRemoteCacheBytes);
  if (budget == 0) return store;
  return NewCachingStore(std::move(store), CachingOptions{.budget_bytes = budget});
}

std::unique_ptr<StagingStore> StageWritesOrReport(std::unique_ptr<Store> store,
                                                  const std::string& location,
                                                  const KeyOptions& keys,
                                                  const std::optional<std::string>& cache_dir,
                                                  int& exit_code) {
  if (keys.passphrase_file) {
    exit_code = Fail(Status::Error(Code::kInvalidArgument,
                                   "staging writes for this store needs --key-file: a plain "
                                   "mount has no vault to keep a passphrase's salt"),
                     Stage::kKey);
    return nullptr;
  }
  auto key = LoadKeyForNewVault(keys);
  if (!key.ok()) {
    exit_code = Fail(key.status(), Stage::kKey);
    return nullptr;
  }
  const std::string cache = cache_dir.value_or(DefaultCacheDir());
  if (Status s = MakePrivateDirectories(cache); !s.ok()) {
    exit_code = Fail(s, Stage::kData);
    return nullptr;
  }
  // The store, not how it is reached: options after '?' (a test latency) do not count,
  // so that a mount with other options still finds what the last one left staged.
  const Digest tag = Sha256(AsBytes(std::string_view(location).substr(0, location.find('?'))));
  const std::string spill =
      cache + "/staging-" + HexEncode(ByteSpan(tag.data(), kLocationTagBytes));
  StagingOptions options{.spill_dir = spill,
                         .key = SecretBytes::CopyOf(std::span<const uint8_t>(
                             key->master.staging_key().data(), key->master.staging_key().size()))};
  auto staging = OpenStagingStore(std::move(store), std::move(options));
  if (!staging.ok()) {
    exit_code =
        Fail(staging.status().WithContext("cannot open the staging directory"), Stage::kData);
    return nullptr;
  }
  return std::move(staging).value();
}

}  // namespace cadcanfs::cli
