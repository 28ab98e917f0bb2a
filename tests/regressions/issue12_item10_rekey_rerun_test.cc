// Issue 12, item 10: a rekey K1->K2 interrupted after it had added K2 to the config,
// then rerun as K1->K3, ended with a config holding K2 and K3. The orphaned K2 entry
// wraps the name key, so K2 plus that config would decrypt every name for good. Now
// the rerun drops K2 from the config and from every header, and at every instant one
// key alone still opens the whole vault. If the interrupted run had already moved
// files off K1, the rerun refuses and changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>

#include "cadcanfs/fs/offline.h"
#include "cadcanfs/vault/file_header.h"
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

struct Crash {};

class Issue12Item10RekeyRerun : public ::testing::Test {
 protected:
  Issue12Item10RekeyRerun() {
    k2_ = MakeKeyFile(work_, "k2.key");
    k3_ = MakeKeyFile(work_, "k3.key");
    stdfs::create_directories(work_.path() + "/src/Doe, Jane/cbct");
    contents_ = {{"Doe, Jane/cbct/slice 1.dcm", PatternBytes(9000, 1)},
                 {"Doe, Jane/cbct/slice 2.dcm", PatternBytes(7000, 2)},
                 {"Doe, Jane/notes.txt", PatternBytes(10, 3)},
                 {"a.stl", PatternBytes(5000, 4)},
                 {std::string(200, 'L'), PatternBytes(100, 5)}};
    for (const auto& [path, bytes] : contents_) WriteRaw(work_.path() + "/src/" + path, bytes);
    NewVault();
  }
  // A fresh vault under K1 holding the source tree.
  void NewVault() {
    vault_ = std::make_unique<TempVault>();
    EXPECT_TRUE(ImportTree(vault_->vault(), work_.path() + "/src", "", true).ok());
    cipher_paths_.clear();
    for (const auto& [path, bytes] : contents_) {
      cipher_paths_.push_back(vault_->root() + "/" + *vault_->vault().CipherPathOf(path));
    }
  }
  KeyOptions K1() { return KeyOptions{vault_->key_file(), std::nullopt}; }
  KeyOptions K2() { return KeyOptions{k2_, std::nullopt}; }
  KeyOptions K3() { return KeyOptions{k3_, std::nullopt}; }
  static KekId IdOf(const KeyOptions& keys) { return LoadKeyForNewVault(keys)->master.id(); }

  Result<RekeyStats> Rekey(const KeyOptions& from, const KeyOptions& to,
                           const RekeyHooks& hooks = {}) {
    auto store = OpenLocalStore(vault_->root());
    return RotateMasterKey(**store, from, to, hooks);
  }
  // Runs a rekey that "crashes" after `n` files in pass A (or pass B).
  void CrashedRekey(const KeyOptions& from, const KeyOptions& to, uint64_t n, bool in_pass_b) {
    RekeyHooks hooks;
    auto crash = [n](uint64_t done) {
      if (done >= n) throw Crash{};
    };
    (in_pass_b ? hooks.after_old_slot_cleared : hooks.after_new_slot) = crash;
    EXPECT_THROW((void)Rekey(from, to, hooks), Crash);
  }

  std::vector<KekId> ConfigKeyIds() {
    auto store = OpenLocalStore(vault_->root());
    auto config = Vault::ReadConfig(**store);
    std::vector<KekId> ids;
    for (const KeyEntry& e : config->keys) ids.push_back(e.kek_id);
    return ids;
  }

  // How many file headers name `id` in a slot.
  size_t HeadersNaming(const KekId& id) {
    size_t count = 0;
    for (const std::string& path : cipher_paths_) {
      Bytes raw = ReadRaw(path);
      if (raw.size() < kFileHeaderSize) continue;
      ByteSpan header(raw.data(), kFileHeaderSize);
      if (PeekSlotKeyId(header, 0) == id || PeekSlotKeyId(header, 1) == id) count++;
    }
    return count;
  }

  // The config and every file open with `keys` alone.
  ::testing::AssertionResult EverythingOpensWith(const KeyOptions& keys) {
    return testing::AllFilesReadBackWith(vault_->root(), keys, contents_);
  }

  std::unique_ptr<TempVault> vault_;
  TempDir work_;
  std::string k2_;
  std::string k3_;
  std::map<std::string, Bytes> contents_;
  std::vector<std::string> cipher_paths_;
};

TEST_F(Issue12Item10RekeyRerun, ARerunWithAnotherKeyLeavesNoOrphanedKey) {
  CrashedRekey(K1(), K2(), 2, /*in_pass_b=*/false);
  ASSERT_EQ(ConfigKeyIds().size(), 2u);
  ASSERT_EQ(HeadersNaming(IdOf(K2())), 2u);

  auto stats = Rekey(K1(), K3());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(ConfigKeyIds(), std::vector<KekId>{IdOf(K3())}) << "an orphaned key entry is left";
  EXPECT_EQ(HeadersNaming(IdOf(K2())), 0u);
  EXPECT_EQ(HeadersNaming(IdOf(K1())), 0u);
  EXPECT_EQ(HeadersNaming(IdOf(K3())), contents_.size());
  EXPECT_TRUE(EverythingOpensWith(K3()));
  EXPECT_FALSE(EverythingOpensWith(K1()));
  EXPECT_FALSE(EverythingOpensWith(K2()));
}

// Every crash point of the second run, in both passes: one key alone opens everything,
// K2's entry is gone from the config from the first write on, and a rerun finishes.
TEST_F(Issue12Item10RekeyRerun, EveryInstantOfTheRerunIsCrashSafe) {
  for (bool in_pass_b : {false, true}) {
    for (uint64_t n = 1; n <= contents_.size(); ++n) {
      SCOPED_TRACE(std::string(in_pass_b ? "pass B" : "pass A") + " crash after " +
                   std::to_string(n));
      NewVault();
      CrashedRekey(K1(), K2(), 2, /*in_pass_b=*/false);
      CrashedRekey(K1(), K3(), n, in_pass_b);
      std::vector<KekId> ids = ConfigKeyIds();
      EXPECT_EQ(std::count(ids.begin(), ids.end(), IdOf(K2())), 0);
      EXPECT_TRUE(EverythingOpensWith(in_pass_b ? K3() : K1()));
      auto stats = Rekey(K1(), K3());
      ASSERT_TRUE(stats.ok()) << stats.status().ToString();
      EXPECT_EQ(ConfigKeyIds(), std::vector<KekId>{IdOf(K3())});
      EXPECT_EQ(HeadersNaming(IdOf(K2())), 0u);
      EXPECT_TRUE(EverythingOpensWith(K3()));
    }
  }
}

// The first run got into pass B: some files open with K2 only, so K1 no longer opens
// everything and K2 may not go. The rerun with K3 must refuse and touch nothing.
TEST_F(Issue12Item10RekeyRerun, ARerunIsRefusedOnceTheInterruptedRunLeftTheOldKey) {
  CrashedRekey(K1(), K2(), 2, /*in_pass_b=*/true);
  Bytes config_before = ReadRaw(vault_->root() + "/cadcanfs.conf");
  std::vector<Bytes> files_before;
  for (const std::string& path : cipher_paths_) files_before.push_back(ReadRaw(path));

  auto stats = Rekey(K1(), K3());
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Code::kWrongKey);
  EXPECT_NE(stats.status().message().find(HexEncode(IdOf(K2()))), std::string::npos)
      << stats.status().message();
  EXPECT_EQ(ReadRaw(vault_->root() + "/cadcanfs.conf"), config_before);
  for (size_t i = 0; i < cipher_paths_.size(); ++i) {
    EXPECT_EQ(ReadRaw(cipher_paths_[i]), files_before[i]);
  }
  // Finishing the interrupted run, then rotating on, works.
  ASSERT_TRUE(Rekey(K1(), K2()).ok());
  ASSERT_TRUE(Rekey(K2(), K3()).ok());
  EXPECT_EQ(ConfigKeyIds(), std::vector<KekId>{IdOf(K3())});
  EXPECT_TRUE(EverythingOpensWith(K3()));
}

}  // namespace
}  // namespace cadcanfs
