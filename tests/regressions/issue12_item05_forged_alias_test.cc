// Issue 12, item 5: a "lng-<sha256(E)>" entry whose sidecar holds a short encrypted
// name E was accepted as a second entry with E's plaintext name, and `decrypt` then
// followed symlinks on the way down, so a forged vault could make it write plaintext
// outside OUTDIR. Now such sidecars are refused, fsck reports two entries with one
// name, and the restore creates everything through descriptors without following links.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/store/local_store.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::PatternBytes;
using testing::TempDir;
using testing::TempVault;
namespace stdfs = std::filesystem;

bool DirIsEmpty(const std::string& dir) {
  return stdfs::is_directory(dir) && stdfs::directory_iterator(dir) == stdfs::directory_iterator();
}

// Makes directory `stored` in the vault root holding one file "payload".
void MakeDirWithPayload(Vault& vault, const std::string& stored) {
  auto id = vault.MakeDirectory(stored, 0755);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto name = vault.EncryptName(*id, "payload");
  ASSERT_TRUE(name.ok());
  auto file = vault.CreateFile(JoinStorePath(stored, name->stored), 0644);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Write(0, PatternBytes(1000, 7)).ok());
  ASSERT_TRUE((*file)->Sync().ok());
}

// Makes symlink `stored` in the vault root pointing at `target`.
void MakeSymlink(Vault& vault, const std::string& stored, const std::string& target) {
  auto root = vault.ReadDirId("");
  auto sealed = vault.names().EncryptSymlinkTarget(target);
  ASSERT_TRUE(sealed.ok());
  ASSERT_TRUE(vault.store().Symlink(*sealed, stored).ok());
}

struct Forgery {
  std::string short_name;  // the genuine entry name of "evil"
  std::string alias;       // lng-<sha256(short_name)>, with a sidecar holding short_name
};

// Writes the sidecar a forger (who has no key) can make for the short name of "evil".
Forgery ForgeAlias(Vault& vault) {
  auto root = vault.ReadDirId("");
  auto name = vault.EncryptName(*root, "evil");
  EXPECT_TRUE(name.ok());
  EXPECT_FALSE(name->is_long());
  Forgery f{name->stored, LongStoredName(name->encoded)};
  EXPECT_TRUE(vault.store().WriteAtomic(SidecarName(f.alias), AsBytes(name->encoded)).ok());
  return f;
}

TEST(Issue12Item05Test, ShortNameInALongNameSidecarIsRefused) {
  TempVault tv;
  Forgery f = ForgeAlias(tv.vault());
  ASSERT_TRUE(tv.vault().store().WriteAtomic(f.short_name, AsBytes("x")).ok());
  ASSERT_TRUE(tv.vault().store().WriteAtomic(f.alias, AsBytes("x")).ok());
  auto root = tv.vault().ReadDirId("");
  EXPECT_TRUE(tv.vault().DecryptStoredName("", *root, f.short_name).ok());
  auto forged = tv.vault().DecryptStoredName("", *root, f.alias);
  EXPECT_EQ(forged.status().code(), Code::kAuthenticationFailed);

  auto listing = tv.vault().ListDirectory("");
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->entries.size(), 1u);
  EXPECT_EQ(listing->entries[0].stored_name, f.short_name);
  ASSERT_EQ(listing->damaged.size(), 1u);
  EXPECT_EQ(listing->damaged[0].stored_name, f.alias);

  FsckReport report = CheckVault(tv.vault());
  bool alias_reported = false;
  for (const FsckProblem& p : report.problems) alias_reported |= p.cipher_path == f.alias;
  EXPECT_TRUE(alias_reported);
}

TEST(Issue12Item05Test, GenuineLongNamesStillWork) {
  TempVault tv;
  std::string long_name(200, 'L');
  std::string stored = tv.CreateFile(long_name, PatternBytes(10, 1));
  ASSERT_EQ(ClassifyStoredName(stored), StoredNameKind::kLongName);
  auto root = tv.vault().ReadDirId("");
  auto plain = tv.vault().DecryptStoredName("", *root, stored);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(*plain, long_name);
  EXPECT_TRUE(CheckVault(tv.vault()).problems.empty());
}

// Restoring either arrangement of a symlink and a directory that both claim the name
// "evil" must fail without writing a byte outside OUTDIR, whichever order the listing
// returns them in (one of the two arrangements is the dangerous order).
TEST(Issue12Item05Test, ForgedAliasOfASymlinkCannotWriteOutsideOutdir) {
  for (bool symlink_is_alias : {false, true}) {
    SCOPED_TRACE(symlink_is_alias ? "symlink is the alias" : "directory is the alias");
    TempVault tv;
    TempDir work;
    std::string outside = work.path() + "/outside";
    ASSERT_EQ(mkdir(outside.c_str(), 0700), 0);
    Forgery f = ForgeAlias(tv.vault());
    MakeSymlink(tv.vault(), symlink_is_alias ? f.alias : f.short_name, outside);
    MakeDirWithPayload(tv.vault(), symlink_is_alias ? f.short_name : f.alias);

    auto stats = ExportTree(tv.vault(), "", work.path() + "/out");
    EXPECT_FALSE(stats.ok());
    EXPECT_TRUE(DirIsEmpty(outside)) << "plaintext was written outside OUTDIR";
  }
}

// A backend listing that names one entry twice: two entries with one plaintext name.
class DuplicatingStore : public testing::ForwardingStore {
 public:
  DuplicatingStore(Store& base, std::string twice)
      : ForwardingStore(base), twice_(std::move(twice)) {}
  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    CADCANFS_ASSIGN_OR_RETURN(auto entries, ForwardingStore::List(dir));
    std::vector<DirEntry> out = entries;
    for (const DirEntry& e : entries) {
      if (e.name == twice_) out.push_back(e);
    }
    return out;
  }

 private:
  std::string twice_;
};

TEST(Issue12Item05Test, TwoEntriesWithOneNameAreAnFsckError) {
  TempVault tv;
  std::string stored = tv.CreateFile("Doe, Jane.stl", PatternBytes(10, 1));
  auto local = OpenLocalStore(tv.root());
  ASSERT_TRUE(local.ok());
  auto dup = std::make_unique<DuplicatingStore>(**local, stored);
  auto config = Vault::ReadConfig(*dup);
  auto key = LoadKeyForVault(KeyOptions{tv.key_file(), std::nullopt}, *config);
  auto vault = Vault::Open(std::move(dup), std::move(key).value());
  ASSERT_TRUE(vault.ok());

  FsckReport report = CheckVault(**vault);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].cipher_path, stored);
  EXPECT_EQ(report.problems[0].status.code(), Code::kCorrupt);

  TempDir work;
  EXPECT_FALSE(ExportTree(**vault, "", work.path() + "/out").ok());
}

// What is already in OUTDIR is never followed either: a symlink where a directory of
// a partial or full restore belongs is an error.
TEST(Issue12Item05Test, RestoreNeverFollowsASymlinkAlreadyInOutdir) {
  TempVault tv;
  TempDir work;
  std::string src = work.path() + "/src";
  stdfs::create_directories(src + "/Doe, Jane/cbct");
  testing::WriteRaw(src + "/Doe, Jane/cbct/scan.stl", PatternBytes(5000, 3));
  testing::WriteRaw(src + "/top.txt", PatternBytes(10, 4));
  ASSERT_TRUE(ImportTree(tv.vault(), src, "", true).ok());

  std::string outside = work.path() + "/outside";
  ASSERT_EQ(mkdir(outside.c_str(), 0700), 0);
  std::string out = work.path() + "/out";
  ASSERT_EQ(mkdir(out.c_str(), 0700), 0);
  ASSERT_EQ(symlink(outside.c_str(), (out + "/Doe, Jane").c_str()), 0);

  EXPECT_FALSE(ExportTree(tv.vault(), "Doe, Jane/cbct", out).ok());
  EXPECT_TRUE(DirIsEmpty(outside));
  EXPECT_FALSE(ExportTree(tv.vault(), "Doe, Jane/cbct/scan.stl", out).ok());
  EXPECT_TRUE(DirIsEmpty(outside));
  EXPECT_FALSE(ExportTree(tv.vault(), "", out).ok());
  EXPECT_TRUE(DirIsEmpty(outside));

  // One level down as well, with a real first component.
  ASSERT_EQ(unlink((out + "/Doe, Jane").c_str()), 0);
  ASSERT_EQ(mkdir((out + "/Doe, Jane").c_str(), 0700), 0);
  ASSERT_EQ(symlink(outside.c_str(), (out + "/Doe, Jane/cbct").c_str()), 0);
  EXPECT_FALSE(ExportTree(tv.vault(), "Doe, Jane/cbct/scan.stl", out).ok());
  EXPECT_FALSE(ExportTree(tv.vault(), "Doe, Jane", out).ok());
  EXPECT_TRUE(DirIsEmpty(outside));

  // A file whose name is taken by a symlink replaces the link, never writes through it.
  std::string victim = outside + "/victim";
  testing::WriteRaw(victim, PatternBytes(3, 9));
  // The full restore above may have written top.txt before it stopped (listing order
  // follows the encrypted names, so it differs from vault to vault).
  (void)unlink((out + "/top.txt").c_str());
  ASSERT_EQ(symlink(victim.c_str(), (out + "/top.txt").c_str()), 0);
  auto file = ExportTree(tv.vault(), "top.txt", out);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(testing::ReadRaw(victim), PatternBytes(3, 9));
  EXPECT_FALSE(stdfs::is_symlink(out + "/top.txt"));
  EXPECT_EQ(testing::ReadRaw(out + "/top.txt"), PatternBytes(10, 4));
}

}  // namespace
}  // namespace cadcanfs
