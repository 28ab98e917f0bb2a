// Changes another writer made, reported by store path (a store's change feed), drop
// what the kernel caches about them: the directory, the name and the object (issue 10,
// "coherence with other writers").
#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "cadcanfs/fs/change_poller.h"
#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/plain_format.h"
#include "cadcanfs/fs/vault_format.h"
#include "cadcanfs/store/memory_store.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

// What the FileSystem asked the kernel to drop.
struct Dropped {
  std::set<InodeNumber> inodes;
  std::set<std::pair<InodeNumber, std::string>> entries;
};

FileSystem::KernelInvalidator RecordInto(Dropped& dropped) {
  return {[&dropped](InodeNumber ino) { dropped.inodes.insert(ino); },
          [&dropped](InodeNumber parent, const std::string& name) {
            dropped.entries.insert({parent, name});
          }};
}

std::unique_ptr<Format> FlatVaultOn(testing::TempDir& dir, std::unique_ptr<Store> store) {
  const std::string key_file = testing::MakeKeyFile(dir, "master.key");
  KeyOptions keys{key_file, std::nullopt};
  auto key = LoadKeyForNewVault(keys);
  EXPECT_TRUE(Vault::Initialize(*store, *key, 4096, VaultLayout::kFlat).ok());
  auto vault = Vault::Open(std::move(store), std::move(key).value());
  EXPECT_TRUE(vault.ok()) << vault.status().ToString();
  return std::make_unique<VaultFormat>(std::move(vault).value());
}

class StoreChangesTest : public ::testing::TestWithParam<bool> {
 protected:
  StoreChangesTest() {
    auto store = NewMemoryStore();
    format_ = GetParam() ? FlatVaultOn(dir_, std::move(store))
                         : std::make_unique<PlainFormat>(std::move(store));
    format_view_ = format_.get();
    fs_ = std::make_unique<FileSystem>(std::move(format_), FsOptions{});
    fs_->SetKernelInvalidator(RecordInto(dropped_));
  }

  // The store path of plaintext `name` in `dir`, as another writer would change it.
  std::string StorePathOf(std::string_view dir_path, const std::string& name) {
    if (!GetParam()) return dir_path.empty() ? name : std::string(dir_path) + "/" + name;
    auto& vault = static_cast<VaultFormat*>(format_view_)->vault();
    auto cipher = vault.CipherPathOf(dir_path.empty() ? name : std::string(dir_path) + "/" + name);
    EXPECT_TRUE(cipher.ok()) << cipher.status().ToString();
    return *cipher;
  }

  testing::TempDir dir_;
  std::unique_ptr<Format> format_;
  Format* format_view_ = nullptr;
  std::unique_ptr<FileSystem> fs_;
  Dropped dropped_;
};

TEST_P(StoreChangesTest, AChangedFileDropsItsDirectoryNameAndPages) {
  auto dir = fs_->MakeDir(kRootInode, "case", 0755, Caller{});
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  auto made = fs_->Create(dir->ino, "scan.stl", 0644, O_RDWR, Caller{});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  fs_->Release(made->second);

  fs_->StoreObjectChanged(StorePathOf("case", "scan.stl"));
  EXPECT_TRUE(dropped_.inodes.count(dir->ino));
  EXPECT_TRUE(dropped_.inodes.count(made->first.ino));
  EXPECT_TRUE(dropped_.entries.count({dir->ino, "scan.stl"}));
}

TEST_P(StoreChangesTest, ANewNameDropsTheDirectoryAndTheNegativeEntry) {
  auto dir = fs_->MakeDir(kRootInode, "case", 0755, Caller{});
  ASSERT_TRUE(dir.ok());
  // The kernel looked the name up before it existed: it may hold a negative entry.
  EXPECT_EQ(fs_->Lookup(dir->ino, "from another workstation.ply").status().code(), Code::kNotFound);
  fs_->StoreObjectChanged(StorePathOf("case", "from another workstation.ply"));
  EXPECT_TRUE(dropped_.inodes.count(dir->ino));
  EXPECT_TRUE(dropped_.entries.count({dir->ino, "from another workstation.ply"}));
}

TEST_P(StoreChangesTest, ADirectoryTheKernelWasNeverShownDropsNothing) {
  fs_->StoreObjectChanged(GetParam()
                              ? std::string(kFlatDirsName) + "/ab/" + std::string(30, 'c') + "/x"
                              : std::string("never/looked/up"));
  EXPECT_TRUE(dropped_.inodes.empty());
  EXPECT_TRUE(dropped_.entries.empty());
}

TEST_P(StoreChangesTest, WithoutAnInvalidatorNothingIsSent) {
  fs_->SetKernelInvalidator({});
  auto dir = fs_->MakeDir(kRootInode, "case", 0755, Caller{});
  ASSERT_TRUE(dir.ok());
  fs_->StoreObjectChanged(StorePathOf("case", "x"));
  EXPECT_TRUE(dropped_.inodes.empty());
}

INSTANTIATE_TEST_SUITE_P(Formats, StoreChangesTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "FlatVault" : "Plain"; });

// A store whose change feed reports what the test says another writer changed.
class FeedStore : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void Report(std::string store_path) {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(store_path));
  }
  Result<std::vector<std::string>> PollChanges() override {
    std::lock_guard lock(mu_);
    return std::exchange(pending_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::string> pending_;
};

class ChangeFeedTest : public ::testing::Test {
 protected:
  ChangeFeedTest() {
    auto feed = std::make_unique<FeedStore>(NewMemoryStore());
    feed_ = feed.get();
    fs_ = std::make_unique<FileSystem>(std::make_unique<PlainFormat>(std::move(feed)), FsOptions{});
    fs_->SetKernelInvalidator(RecordInto(dropped_));
    auto dir = fs_->MakeDir(kRootInode, "case", 0755, Caller{});
    EXPECT_TRUE(dir.ok());
    dir_ino_ = dir->ino;
    // The kernel looked into the folder, so it may cache names there.
    EXPECT_EQ(fs_->Lookup(dir_ino_, "not yet there.stl").status().code(), Code::kNotFound);
  }

  FeedStore* feed_ = nullptr;
  std::unique_ptr<FileSystem> fs_;
  Dropped dropped_;
  InodeNumber dir_ino_ = 0;
};

TEST_F(ChangeFeedTest, APollPassesOnEveryReportedPath) {
  feed_->Report("case/renamed by the lab.stl");
  feed_->Report("case/removed.ply");
  auto changed = fs_->PollStoreChanges();
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, 2u);
  EXPECT_TRUE(dropped_.entries.count({dir_ino_, "renamed by the lab.stl"}));
  EXPECT_TRUE(dropped_.entries.count({dir_ino_, "removed.ply"}));
  EXPECT_EQ(*fs_->PollStoreChanges(), 0u);  // each change is reported once
}

TEST_F(ChangeFeedTest, ThePollerPassesChangesOnWithinAnInterval) {
  // The poller's thread drops the entry: record it under a lock the test reads under.
  std::mutex mu;
  std::set<std::string> dropped_names;
  fs_->SetKernelInvalidator({[](InodeNumber) {},
                             [&](InodeNumber, const std::string& name) {
                               std::lock_guard lock(mu);
                               dropped_names.insert(name);
                             }});
  auto dropped = [&] {
    std::lock_guard lock(mu);
    return dropped_names.count("from another workstation.stl") == 1;
  };
  ChangePoller poller(*fs_, std::chrono::milliseconds(10));
  feed_->Report("case/from another workstation.stl");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!dropped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(dropped());
  EXPECT_TRUE(poller.polling());
}

TEST(ChangePollerTest, AStoreWithoutAFeedStopsThePoller) {
  FileSystem fs(std::make_unique<PlainFormat>(NewMemoryStore()), FsOptions{});
  ChangePoller poller(fs, std::chrono::milliseconds(10));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (poller.polling() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(poller.polling());
}

}  // namespace
}  // namespace cadcanfs
