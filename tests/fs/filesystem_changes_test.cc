// Changes another writer made, reported by store path (a store's change feed), drop
// what the kernel caches about them: the directory, the name and the object (issue 10,
// "coherence with other writers").
#include <fcntl.h>
#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/plain_format.h"
#include "cadcanfs/fs/vault_format.h"
#include "cadcanfs/store/memory_store.h"
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

}  // namespace
}  // namespace cadcanfs
