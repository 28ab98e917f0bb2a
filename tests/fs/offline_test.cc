// Import/export round trips, long names, and key rotation including a crash mid-way.
#include "cadcanfs/fs/offline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::MakeKeyFile;
using testing::PatternBytes;
using testing::ReadRaw;
using testing::TempDir;
using testing::TempVault;
using testing::WriteRaw;
namespace stdfs = std::filesystem;

void MakeTree(const std::string& root) {
  stdfs::create_directories(root + "/Doe, Jane #7/cbct");
  stdfs::create_directories(root + "/" + std::string(200, 'L') + "/inner");
  WriteRaw(root + "/Doe, Jane #7/cbct/slice 001.dcm", PatternBytes(70000, 1));
  WriteRaw(root + "/Doe, Jane #7/notes 100%.txt", PatternBytes(1, 2));
  WriteRaw(root + "/" + std::string(200, 'L') + "/inner/" + std::string(255, 'n'),
           PatternBytes(5000, 3));
  WriteRaw(root + "/empty", {});
  symlink("Doe, Jane #7/notes 100%.txt", (root + "/link").c_str());
}

bool TreesEqual(const std::string& a, const std::string& b) {
  std::string cmd = "diff -r --no-dereference '" + a + "' '" + b + "' >/dev/null";
  return system(cmd.c_str()) == 0;
}

TEST(OfflineTest, ImportExportRoundTripWithLongNames) {
  TempVault vault;
  TempDir work;
  MakeTree(work.path() + "/src");
  auto imported = ImportTree(vault.vault(), work.path() + "/src", "", true);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->files, 4u);
  EXPECT_TRUE(CheckVault(vault.vault()).problems.empty());
  auto exported = ExportTree(vault.vault(), "", work.path() + "/out");
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  EXPECT_TRUE(TreesEqual(work.path() + "/src", work.path() + "/out"));
}

TEST(OfflineTest, ExportOfOnePatientFolderOnly) {
  TempVault vault;
  TempDir work;
  MakeTree(work.path() + "/src");
  ASSERT_TRUE(ImportTree(vault.vault(), work.path() + "/src", "", true).ok());
  ASSERT_TRUE(ExportTree(vault.vault(), "Doe, Jane #7", work.path() + "/out").ok());
  EXPECT_TRUE(TreesEqual(work.path() + "/src/Doe, Jane #7", work.path() + "/out/Doe, Jane #7"));
  EXPECT_FALSE(stdfs::exists(work.path() + "/out/empty"));
}

TEST(OfflineTest, PathMappingBothWays) {
  TempVault vault;
  TempDir work;
  MakeTree(work.path() + "/src");
  ASSERT_TRUE(ImportTree(vault.vault(), work.path() + "/src", "", true).ok());
  auto cipher = vault.vault().CipherPathOf("Doe, Jane #7/cbct/slice 001.dcm");
  ASSERT_TRUE(cipher.ok());
  EXPECT_TRUE(stdfs::exists(vault.root() + "/" + *cipher));
  EXPECT_EQ(*vault.vault().PlainPathOf(*cipher), "Doe, Jane #7/cbct/slice 001.dcm");
}

TEST(OfflineTest, RenamingADirectoryDoesNotTouchItsChildren) {
  TempVault vault;
  TempDir work;
  MakeTree(work.path() + "/src");
  ASSERT_TRUE(ImportTree(vault.vault(), work.path() + "/src", "", true).ok());
  auto old_dir = vault.vault().CipherPathOf("Doe, Jane #7");
  auto root_id = vault.vault().ReadDirId("");
  auto new_name = vault.vault().EncryptName(*root_id, "Renamed");
  ASSERT_TRUE(
      vault.vault().store().Rename(*old_dir, new_name->stored, RenameMode::kNoReplace).ok());
  auto listing = vault.vault().ListDirectory(new_name->stored);
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->entries.size(), 2u);
  EXPECT_TRUE(listing->damaged.empty());
}

class RekeyTest : public ::testing::Test {
 protected:
  RekeyTest() {
    new_key_ = MakeKeyFile(work_, "new.key");
    MakeTree(work_.path() + "/src");
    EXPECT_TRUE(ImportTree(vault_.vault(), work_.path() + "/src", "", true).ok());
  }
  KeyOptions Old() { return KeyOptions{vault_.key_file(), std::nullopt}; }
  KeyOptions New() { return KeyOptions{new_key_, std::nullopt}; }
  Status ExportWith(const KeyOptions& keys, const std::string& out) {
    auto store = OpenLocalStore(vault_.root());
    CADCANFS_ASSIGN_OR_RETURN(VaultConfig config, Vault::ReadConfig(**store));
    CADCANFS_ASSIGN_OR_RETURN(LoadedKey key, LoadKeyForVault(keys, config));
    CADCANFS_ASSIGN_OR_RETURN(auto vault, Vault::Open(std::move(store).value(), std::move(key)));
    return ExportTree(*vault, "", out).status();
  }

  TempVault vault_;
  TempDir work_;
  std::string new_key_;
};

TEST_F(RekeyTest, AfterRotationOnlyTheNewKeyOpens) {
  auto store = OpenLocalStore(vault_.root());
  auto stats = RotateMasterKey(**store, Old(), New());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files_rewrapped, 4u);
  EXPECT_EQ(ExportWith(Old(), work_.path() + "/o1").code(), Code::kWrongKey);
  ASSERT_TRUE(ExportWith(New(), work_.path() + "/o2").ok());
  EXPECT_TRUE(TreesEqual(work_.path() + "/src", work_.path() + "/o2"));
  auto again = RotateMasterKey(**store, Old(), New());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_complete);
}

TEST_F(RekeyTest, CrashMidwayLeavesEverythingReadableAndARerunFinishes) {
  // Simulate a kill right after the second file's new slot hits the disk.
  struct Crash {};
  RekeyHooks hooks;
  hooks.after_new_slot = [](uint64_t done) {
    if (done == 2) throw Crash{};
  };
  auto store = OpenLocalStore(vault_.root());
  EXPECT_THROW((void)RotateMasterKey(**store, Old(), New(), hooks), Crash);
  // Every file opens with the old key, and with the new key where it was moved.
  ASSERT_TRUE(ExportWith(Old(), work_.path() + "/mid-old").ok());
  EXPECT_TRUE(TreesEqual(work_.path() + "/src", work_.path() + "/mid-old"));
  auto stats = RotateMasterKey(**store, Old(), New());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->files_rewrapped + stats->files_already_done, 4u);
  ASSERT_TRUE(ExportWith(New(), work_.path() + "/after").ok());
  EXPECT_TRUE(TreesEqual(work_.path() + "/src", work_.path() + "/after"));
  EXPECT_EQ(ExportWith(Old(), work_.path() + "/o1").code(), Code::kWrongKey);
}

TEST_F(RekeyTest, RotationToAPassphrase) {
  std::string pass = work_.path() + "/pass";
  WriteRaw(pass, Bytes{'c', 'o', 'r', 'r', 'e', 'c', 't', ' ', 'h', 'o', 'r', 's', 'e', '\n'});
  chmod(pass.c_str(), 0600);
  auto store = OpenLocalStore(vault_.root());
  KeyOptions pass_keys{std::nullopt, pass};
  ASSERT_TRUE(RotateMasterKey(**store, Old(), pass_keys).ok());
  ASSERT_TRUE(ExportWith(pass_keys, work_.path() + "/p").ok());
  EXPECT_TRUE(TreesEqual(work_.path() + "/src", work_.path() + "/p"));
}

}  // namespace
}  // namespace cadcanfs
