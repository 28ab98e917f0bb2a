// Issue 12, item 1, for vaults written before the fix: format v1 sealed symlink targets
// to their directory. The golden v1 vault (tests/golden/v1) must still read, and its
// first writer upgrades it, after which its symlinks can move between directories.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "cadcanfs/fs/offline.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

namespace stdfs = std::filesystem;

class GoldenV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    stdfs::copy(std::string(CADCANFS_SOURCE_DIR) + "/tests/golden/v1", work_.path(),
                stdfs::copy_options::recursive | stdfs::copy_options::copy_symlinks);
    key_ = work_.path() + "/master.key";
    ASSERT_EQ(chmod(key_.c_str(), 0600), 0);
    root_ = work_.path() + "/vault";
  }

  std::unique_ptr<Vault> Open() {
    auto store = OpenLocalStore(root_);
    auto config = Vault::ReadConfig(**store);
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    auto key = LoadKeyForVault(KeyOptions{key_, std::nullopt}, *config);
    auto vault = Vault::Open(std::move(store).value(), std::move(key).value());
    EXPECT_TRUE(vault.ok()) << vault.status().ToString();
    return std::move(vault).value();
  }

  std::string ReadLinkPlain(Vault& vault, const std::string& plain) {
    auto cipher = vault.CipherPathOf(plain);
    if (!cipher.ok()) return "error: " + cipher.status().ToString();
    auto dir = vault.ReadDirId(std::string(StoreParent(*cipher)));
    auto stored = vault.store().ReadLink(*cipher);
    if (!dir.ok() || !stored.ok()) return "error";
    auto target = vault.names().DecryptSymlinkTarget(*dir, *stored);
    return target.ok() ? *target : "error: " + target.status().ToString();
  }

  testing::TempDir work_;
  std::string key_;
  std::string root_;
};

TEST_F(GoldenV1Test, ReadsAsItIs) {
  auto vault = Open();
  EXPECT_EQ(vault->config().version, 1);
  EXPECT_EQ(ReadLinkPlain(*vault, "Doe, Jane/latest"), "cbct/scan.stl");
  testing::TempDir out;
  auto stats = ExportTree(*vault, "", out.path());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  std::ifstream scan(out.path() + "/Doe, Jane/cbct/scan.stl");
  std::string line;
  std::getline(scan, line);
  EXPECT_EQ(line, "scan bytes");
  EXPECT_EQ(stdfs::read_symlink(out.path() + "/other/link-to-cbct"), "../Doe, Jane/cbct");
  EXPECT_TRUE(CheckVault(*vault).problems.empty());
}

TEST_F(GoldenV1Test, TheFirstWriterUpgradesItAndSymlinksCanMove) {
  {
    auto vault = Open();
    ASSERT_TRUE(vault->UpgradeFormat().ok());
    EXPECT_EQ(vault->config().version, kTreeLayoutVersion);
  }
  auto vault = Open();  // the upgraded config opens with the same key
  EXPECT_EQ(vault->config().version, kTreeLayoutVersion);
  EXPECT_TRUE(CheckVault(*vault).problems.empty());
  // Move "Doe, Jane/latest" into "other" at the store level, as a mount's rename does.
  auto from = vault->CipherPathOf("Doe, Jane/latest");
  auto other = vault->CipherPathOf("other");
  auto other_dir = vault->ReadDirId(*other);
  auto name = vault->EncryptName(*other_dir, "latest");
  ASSERT_TRUE(from.ok() && other.ok() && name.ok());
  ASSERT_TRUE(vault->store()
                  .Rename(*from, JoinStorePath(*other, name->stored), RenameMode::kNoReplace)
                  .ok());
  EXPECT_EQ(ReadLinkPlain(*vault, "other/latest"), "cbct/scan.stl");
  EXPECT_EQ(ReadLinkPlain(*vault, "other/link-to-cbct"), "../Doe, Jane/cbct");
  EXPECT_TRUE(CheckVault(*vault).problems.empty());
  // A second upgrade has nothing left to do.
  EXPECT_TRUE(vault->UpgradeFormat().ok());
}

}  // namespace
}  // namespace cadcanfs
