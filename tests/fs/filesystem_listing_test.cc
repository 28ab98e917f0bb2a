// Listings that carry attributes: readdirplus (and so `ls -l`) costs no store call per
// entry, which on OneDrive is one HTTP round trip each (issue 10, §2).
#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/plain_format.h"
#include "cadcanfs/fs/vault_format.h"
#include "cadcanfs/store/memory_store.h"
#include "cadcanfs/store/remote_like_store.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

struct OwnedStore {
  std::unique_ptr<Store> owned;
};

// Counts the calls that reach the store, by kind.
class CountingStore final : private OwnedStore, public testing::ForwardingStore {
 public:
  explicit CountingStore(std::unique_ptr<Store> base)
      : OwnedStore{std::move(base)}, ForwardingStore(*owned) {}
  Result<ObjectInfo> Stat(std::string_view path) override {
    ++stats;
    return ForwardingStore::Stat(path);
  }
  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    ++lists;
    return ForwardingStore::List(dir);
  }
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    ++opens;
    return ForwardingStore::Open(path, options);
  }
  Result<Bytes> ReadSmall(std::string_view path, size_t max_size) override {
    ++small_reads;
    return ForwardingStore::ReadSmall(path, max_size);
  }
  std::atomic<int> stats{0}, lists{0}, opens{0}, small_reads{0};
};

// Opens the vault of `tv` on `store` (the local store of its root, or a decorator of it).
std::unique_ptr<Vault> OpenVaultOn(const testing::TempVault& tv, std::unique_ptr<Store> store) {
  auto config = Vault::ReadConfig(*store);
  EXPECT_TRUE(config.ok());
  auto key = LoadKeyForVault(KeyOptions{tv.key_file(), std::nullopt}, *config);
  auto vault = Vault::Open(std::move(store), std::move(key).value());
  EXPECT_TRUE(vault.ok());
  return std::move(vault).value();
}

TEST(FileSystemListingTest, ReaddirPlusOfManyEntriesCostsNoStorePerEntry) {
  testing::TempVault tv(4096);
  constexpr int kEntries = 300;
  {
    FileSystem writer(std::make_unique<VaultFormat>(
                          OpenVaultOn(tv, std::move(OpenLocalStore(tv.root())).value())),
                      FsOptions{});
    for (int i = 0; i < kEntries; ++i) {
      auto created =
          writer.Create(kRootInode, "scan-" + std::to_string(i) + ".stl", 0644, O_RDWR, Caller{});
      ASSERT_TRUE(created.ok());
      ASSERT_TRUE(writer.Write(created->second, 0, testing::PatternBytes(i, i)).ok());
      writer.Release(created->second);
    }
    ASSERT_TRUE(writer.MakeDir(kRootInode, "case", 0755, Caller{}).ok());
  }

  auto counting = std::make_unique<CountingStore>(std::move(OpenLocalStore(tv.root())).value());
  CountingStore& store = *counting;
  FileSystem fs(std::make_unique<VaultFormat>(OpenVaultOn(tv, std::move(counting))), FsOptions{});
  store.stats = store.lists = store.opens = store.small_reads = 0;
  auto dir = fs.OpenDir(kRootInode);
  ASSERT_TRUE(dir.ok());
  auto listing = fs.ReadDir(*dir, 0);
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ((*listing)->size(), kEntries + 1u);
  std::map<std::string, off_t> sizes;
  for (const PlainDirEntry& entry : **listing) {
    auto looked_up = fs.LookupListed(kRootInode, entry);
    ASSERT_TRUE(looked_up.ok()) << looked_up.status().ToString();
    sizes[entry.name] = looked_up->attr.st_size;
  }
  fs.ReleaseDir(*dir);
  EXPECT_EQ(store.lists, 1);
  EXPECT_EQ(store.stats, 0) << "a Stat per listed entry";
  EXPECT_EQ(store.opens, 0);
  EXPECT_LE(store.small_reads, 1);  // the root's directory id, once
  EXPECT_EQ(sizes["scan-17.stl"], 17);
  EXPECT_EQ(sizes["scan-299.stl"], 299);
}

}  // namespace
}  // namespace cadcanfs

namespace cadcanfs {
namespace {

// On a store where every call is a round trip, the attributes a lookup read serve the
// requests that follow it (the GETATTR of OPEN's relatime check, of OPENDIR), as the
// kernel's attribute cache would, and this daemon's own changes show at once.
class RemoteAttributesTest : public ::testing::TestWithParam<bool> {
 protected:
  RemoteAttributesTest() : remote_(NewRemoteLikeStore(NewMemoryStore())) {
    EXPECT_TRUE(remote_->WriteAtomic("scan.stl", Bytes(100, 7)).ok());
    fs_ = std::make_unique<FileSystem>(
        std::make_unique<PlainFormat>(std::make_unique<testing::ForwardingStore>(*remote_)),
        FsOptions{.shared_store = GetParam()});
  }
  uint64_t Stats() { return remote_->controls()->Calls(RemoteCall::kStat); }

  std::unique_ptr<RemoteLikeStore> remote_;
  std::unique_ptr<FileSystem> fs_;
};

TEST_P(RemoteAttributesTest, ALookupServesTheGetattrThatFollows) {
  auto entry = fs_->Lookup(kRootInode, "scan.stl");
  ASSERT_TRUE(entry.ok()) << entry.status().ToString();
  const uint64_t before = Stats();
  auto attr = fs_->GetAttr(entry->ino);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->st_size, 100);
  // With other writers (--shared-store) every answer is read afresh.
  EXPECT_EQ(Stats() - before, GetParam() ? 1u : 0u);
}

TEST_P(RemoteAttributesTest, OwnChangesShowAtOnce) {
  auto entry = fs_->Lookup(kRootInode, "scan.stl");
  ASSERT_TRUE(entry.ok());
  AttrChanges changes;
  changes.mtime = timespec{1'700'000'000, 0};
  ASSERT_TRUE(fs_->SetAttr(entry->ino, changes, std::nullopt).ok());
  auto attr = fs_->GetAttr(entry->ino);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->st_mtim.tv_sec, 1'700'000'000);
}

INSTANTIATE_TEST_SUITE_P(SharedOrNot, RemoteAttributesTest, ::testing::Values(false, true),
                         [](const auto& info) {
                           return info.param ? "SharedStore" : "OnlyWriter";
                         });

}  // namespace
}  // namespace cadcanfs
