// The flat vault layout (docs/vault-format.md §1): a plaintext tree of any depth on a
// store that refuses paths longer than 400 characters, as OneDrive does.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/fs/vault.h"
#include "cadcanfs/store/memory_store.h"
#include "cadcanfs/store/remote_like_store.h"
#include "cadcanfs/vault/key_source.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::TempDir;
namespace stdfs = std::filesystem;

constexpr int kDepth = 20;
constexpr size_t kNameLength = 60;

// A 60-character directory name for one level of the deep tree.
std::string LevelName(int level) {
  std::string name = "Patient folder level " + std::to_string(level) + " ";
  name.resize(kNameLength, 'x');
  return name;
}

std::string DeepPlainDir() {
  std::string path = LevelName(0);
  for (int level = 1; level < kDepth; ++level) {
    path.append("/");
    path.append(LevelName(level));
  }
  return path;
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FlatLayoutTest : public ::testing::Test {
 protected:
  FlatLayoutTest() : remote_(NewRemoteLikeStore(NewMemoryStore())) {
    key_file_ = testing::MakeKeyFile(dir_, "master.key");
  }

  // A vault in `layout` on the remote-like store (created on first use).
  std::unique_ptr<Vault> OpenVault(VaultLayout layout = VaultLayout::kFlat) {
    KeyOptions keys{key_file_, std::nullopt};
    if (!Vault::ReadConfig(*remote_).ok()) {
      auto key = LoadKeyForNewVault(keys);
      EXPECT_TRUE(Vault::Initialize(*remote_, *key, 4096, layout).ok());
    }
    auto config = Vault::ReadConfig(*remote_);
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    auto key = LoadKeyForVault(keys, *config);
    auto vault =
        Vault::Open(std::make_unique<testing::ForwardingStore>(*remote_), std::move(key).value());
    EXPECT_TRUE(vault.ok()) << vault.status().ToString();
    return std::move(vault).value();
  }

  // A local plaintext tree: kDepth levels of 60-character folder names, a scan at the
  // bottom and one at the top.
  std::string MakeDeepSource() {
    const std::string source = dir_.path() + "/source";
    const std::string deep = source + "/" + DeepPlainDir();
    stdfs::create_directories(deep);
    std::ofstream(deep + "/upper jaw scan.stl") << std::string(70000, 's') << "end";
    std::ofstream(source + "/notes.txt") << "top";
    return source;
  }

  TempDir dir_;
  std::string key_file_;
  std::unique_ptr<RemoteLikeStore> remote_;
};

TEST_F(FlatLayoutTest, DeepTreeRoundTripsOnAStoreLimitedTo400Characters) {
  const std::string source = MakeDeepSource();
  auto vault = OpenVault();
  auto imported = ImportTree(*vault, source, "", /*contents_only=*/true);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->files, 2u);

  const std::string out = dir_.path() + "/restored";
  mkdir(out.c_str(), 0700);
  auto exported = ExportTree(*vault, "", out);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  const std::string scan = "/" + DeepPlainDir() + "/upper jaw scan.stl";
  EXPECT_EQ(ReadWhole(out + scan), ReadWhole(source + scan));
  EXPECT_EQ(ReadWhole(out + "/notes.txt"), "top");
  EXPECT_TRUE(CheckVault(*vault).problems.empty());
}

TEST_F(FlatLayoutTest, TheSameTreeDoesNotFitInTheTreeLayout) {
  // What the flat layout is for: the tree layout's ciphertext path outgrows the limit.
  const std::string source = MakeDeepSource();
  auto vault = OpenVault(VaultLayout::kTree);
  auto imported = ImportTree(*vault, source, "", /*contents_only=*/true);
  ASSERT_FALSE(imported.ok());
  EXPECT_EQ(imported.status().code(), Code::kNameTooLong);
}

TEST_F(FlatLayoutTest, EveryStorePathHasTheSameShapeWhateverTheDepth) {
  auto vault = OpenVault();
  ASSERT_TRUE(ImportTree(*vault, MakeDeepSource(), "", true).ok());
  auto cipher = vault->CipherPathOf(DeepPlainDir() + "/upper jaw scan.stl");
  ASSERT_TRUE(cipher.ok()) << cipher.status().ToString();
  // cadcanfs.dirs / 2 / 30 / name
  EXPECT_EQ(std::count(cipher->begin(), cipher->end(), '/'), 3);
  EXPECT_EQ(cipher->rfind(kFlatDirsName, 0), 0u);
}

TEST_F(FlatLayoutTest, MapWorksBothWays) {
  auto vault = OpenVault();
  ASSERT_TRUE(ImportTree(*vault, MakeDeepSource(), "", true).ok());
  for (const std::string& plain : {DeepPlainDir() + "/upper jaw scan.stl", DeepPlainDir(),
                                   LevelName(0), std::string("notes.txt")}) {
    auto cipher = vault->CipherPathOf(plain);
    ASSERT_TRUE(cipher.ok()) << cipher.status().ToString();
    auto back = vault->PlainPathOf(*cipher);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, plain);
  }
  auto stray =
      vault->PlainPathOf(std::string(kFlatDirsName) + "/ab/" + std::string(30, 'c') + "/x");
  EXPECT_EQ(stray.status().code(), Code::kNotFound);
  EXPECT_EQ(vault->PlainPathOf("cadcanfs.conf").status().code(), Code::kNotFound);
}

TEST_F(FlatLayoutTest, RenamingADirectoryLeavesWhatIsBelowItInPlace) {
  auto vault = OpenVault();
  ASSERT_TRUE(ImportTree(*vault, MakeDeepSource(), "", true).ok());
  const std::string below = "/" + LevelName(1) + "/" + LevelName(2);
  auto before = vault->CipherPathOf(LevelName(0) + below);
  ASSERT_TRUE(before.ok());
  auto from = vault->CipherPathOf(LevelName(0));
  auto root = vault->ReadDirId("");
  auto renamed = vault->EncryptName(*root, "renamed");
  ASSERT_TRUE(from.ok() && root.ok() && renamed.ok());
  const std::string to = JoinStorePath(*vault->FlatEntriesDir(*root), renamed->stored);
  ASSERT_TRUE(vault->store().Rename(*from, to, RenameMode::kNoReplace).ok());
  // One rename of one entry: the entries below keep their store paths.
  auto after = vault->CipherPathOf("renamed" + below);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, *before);
  EXPECT_TRUE(CheckVault(*vault).problems.empty());
}

TEST_F(FlatLayoutTest, FsckReportsEntriesDirectoriesOfNoDirectory) {
  auto vault = OpenVault();
  ASSERT_TRUE(ImportTree(*vault, MakeDeepSource(), "", true).ok());
  // As an mkdir that died between its two steps leaves it.
  const std::string stray = std::string(kFlatDirsName) + "/zz/" + std::string(30, 'q');
  // The fan-out directory may hold real entries directories already (1 run in 50).
  Status fanout = vault->store().MakeDir(std::string(kFlatDirsName) + "/zz", 0700);
  ASSERT_TRUE(fanout.ok() || fanout.code() == Code::kAlreadyExists) << fanout.ToString();
  ASSERT_TRUE(vault->store().MakeDir(stray, 0700).ok());
  FsckReport report = CheckVault(*vault);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].cipher_path, stray);
}

TEST_F(FlatLayoutTest, EntriesSwappedBetweenDirectoriesAreDamage) {
  auto vault = OpenVault();
  ASSERT_TRUE(ImportTree(*vault, MakeDeepSource(), "", true).ok());
  auto level0 = vault->CipherPathOf(LevelName(0));
  auto level1 = vault->CipherPathOf(LevelName(0) + "/" + LevelName(1));
  ASSERT_TRUE(level0.ok() && level1.ok());
  auto entries0 = vault->EntriesDirOf(*level0);
  auto id1 = vault->ReadDirId(*level1);
  ASSERT_TRUE(entries0.ok() && id1.ok());
  // The store swaps in another directory's id copy: the listing refuses it.
  ASSERT_TRUE(
      vault->store().WriteAtomic(JoinStorePath(*entries0, kDirIdFileName), *id1, false).ok());
  EXPECT_EQ(vault->ListDirectory(*entries0).status().code(), Code::kCorrupt);
  EXPECT_FALSE(CheckVault(*vault).problems.empty());
}

TEST_F(FlatLayoutTest, RemovingTheLastDirectoryLeavesNoEntriesDirectory) {
  auto vault = OpenVault();
  auto root = vault->ReadDirId("");
  auto name = vault->EncryptName(*root, "case");
  ASSERT_TRUE(root.ok() && name.ok());
  const std::string entry = JoinStorePath(*vault->FlatEntriesDir(*root), name->stored);
  auto id = vault->MakeDirectory(entry, 0755);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(vault->store().Stat(*vault->FlatEntriesDir(*id)).ok());
  ASSERT_TRUE(vault->RemoveDirectory(entry, *id).ok());
  EXPECT_EQ(vault->store().Stat(*vault->FlatEntriesDir(*id)).status().code(), Code::kNotFound);
  EXPECT_TRUE(CheckVault(*vault).problems.empty());
}

TEST(FlatLayoutConfigTest, VersionThreeNamesItsLayoutAndTheMacCoversIt) {
  VaultConfig config;
  config.version = kFlatLayoutVersion;
  config.layout = VaultLayout::kFlat;
  config.keys.push_back(KeyEntry{.wrapped_name_key = Bytes(72, 1)});
  const std::string text = SerializeConfig(config);
  auto parsed = ParseConfig(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->layout, VaultLayout::kFlat);
  EXPECT_NE(CanonicalConfigBytes(*parsed, parsed->keys[0]).find("layout=flat\n"),
            std::string::npos);

  // Version 3 without a layout, or a layout in version 2, is not a config we write.
  std::string no_layout = text;
  no_layout.erase(no_layout.find("\"layout\""), std::string("\"layout\": \"flat\",").size());
  EXPECT_EQ(ParseConfig(no_layout).status().code(), Code::kCorrupt);
  std::string tree = text;
  tree.replace(tree.find("\"flat\""), 6, "\"tree\"");
  EXPECT_EQ(ParseConfig(tree).status().code(), Code::kCorrupt);
  VaultConfig v2;
  v2.keys = config.keys;
  EXPECT_EQ(CanonicalConfigBytes(v2, v2.keys[0]).find("layout"), std::string::npos);
  std::string v2_with_layout = SerializeConfig(v2);
  v2_with_layout.insert(v2_with_layout.find("\"keys\""), "\"layout\": \"flat\",\n  ");
  EXPECT_EQ(ParseConfig(v2_with_layout).status().code(), Code::kCorrupt);
}

}  // namespace
}  // namespace cadcanfs
