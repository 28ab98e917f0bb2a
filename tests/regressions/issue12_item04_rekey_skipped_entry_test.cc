// Issue 12, item 4 (the rekey part): rekey walked the ciphertext tree by the types the
// store listed and silently passed over an entry of type "other" (a DT_UNKNOWN from
// XFS with ftype=0, NFS or FUSE). It then reported success and dropped the old key,
// though that entry may be a file, or a directory of files, still under it. Now the
// walk counts what it cannot classify and stops before the old key leaves the config.
// FIFOs, sockets and device nodes carry no key: they are counted, not failures.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>

#include "cadcanfs/fs/offline.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::ForwardingStore;
using testing::MakeKeyFile;
using testing::PatternBytes;
using testing::TempDir;
using testing::TempVault;
using testing::WriteRaw;
namespace stdfs = std::filesystem;

// Reports one stored name with a type of the test's choosing, as a filesystem that
// returns DT_UNKNOWN (or a store that cannot tell) would.
class TypeOverrideStore : public ForwardingStore {
 public:
  TypeOverrideStore(Store& base, std::string name, ObjectType type)
      : ForwardingStore(base), name_(std::move(name)), type_(type) {}
  Result<std::vector<DirEntry>> List(std::string_view dir) override {
    auto entries = ForwardingStore::List(dir);
    if (entries.ok()) {
      for (DirEntry& e : *entries) {
        if (e.name == name_) e.type = type_;
      }
    }
    return entries;
  }

 private:
  std::string name_;
  ObjectType type_;
};

class Issue12Item04RekeySkippedEntry : public ::testing::Test {
 protected:
  Issue12Item04RekeySkippedEntry() {
    new_key_ = MakeKeyFile(work_, "new.key");
    stdfs::create_directories(work_.path() + "/src/Doe, Jane/cbct");
    contents_ = {{"Doe, Jane/cbct/slice 1.dcm", PatternBytes(9000, 1)},
                 {"Doe, Jane/notes.txt", PatternBytes(10, 2)},
                 {"top.stl", PatternBytes(5000, 3)}};
    for (const auto& [path, bytes] : contents_) WriteRaw(work_.path() + "/src/" + path, bytes);
    EXPECT_TRUE(ImportTree(vault_.vault(), work_.path() + "/src", "", true).ok());
  }
  KeyOptions Old() { return KeyOptions{vault_.key_file(), std::nullopt}; }
  KeyOptions New() { return KeyOptions{new_key_, std::nullopt}; }

  // The config and every file open with `keys` alone.
  ::testing::AssertionResult EverythingOpensWith(const KeyOptions& keys) {
    return testing::AllFilesReadBackWith(vault_.root(), keys, contents_);
  }

  std::string StoredNameOf(const std::string& plain) {
    auto cipher = vault_.vault().CipherPathOf(plain);
    EXPECT_TRUE(cipher.ok());
    return std::string(StoreBaseName(*cipher));
  }

  void ExpectStoppedWithOldKeyKept(ObjectType reported_type, const std::string& plain) {
    auto base = OpenLocalStore(vault_.root());
    TypeOverrideStore store(**base, StoredNameOf(plain), reported_type);
    auto stats = RotateMasterKey(store, Old(), New());
    ASSERT_FALSE(stats.ok()) << "rekey reported success with an entry it could not classify";
    EXPECT_EQ(stats.status().code(), Code::kUnsupported);
    EXPECT_NE(stats.status().message().find("incomplete: 1 entries"), std::string::npos)
        << stats.status().message();
    EXPECT_TRUE(EverythingOpensWith(Old()));
    // Once the store reports types again, a rerun finishes.
    auto rerun = RotateMasterKey(**base, Old(), New());
    ASSERT_TRUE(rerun.ok()) << rerun.status().ToString();
    EXPECT_TRUE(EverythingOpensWith(New()));
    EXPECT_FALSE(EverythingOpensWith(Old()));
  }

  TempVault vault_;
  TempDir work_;
  std::string new_key_;
  std::map<std::string, Bytes> contents_;
};

TEST_F(Issue12Item04RekeySkippedEntry, AFileOfUnknownTypeStopsRekeyBeforeTheOldKeyGoes) {
  ExpectStoppedWithOldKeyKept(ObjectType::kOther, "top.stl");
}

TEST_F(Issue12Item04RekeySkippedEntry, ADirectoryOfUnknownTypeStopsRekeyBeforeTheOldKeyGoes) {
  ExpectStoppedWithOldKeyKept(ObjectType::kOther, "Doe, Jane");
}

TEST_F(Issue12Item04RekeySkippedEntry, SpecialNodesAreCountedAndNeedNoKey) {
  auto root_id = vault_.vault().ReadDirId("");
  ASSERT_TRUE(root_id.ok());
  auto name = vault_.vault().EncryptName(*root_id, "build.fifo");
  ASSERT_TRUE(name.ok());
  ASSERT_EQ(mkfifo((vault_.root() + "/" + name->stored).c_str(), 0600), 0);
  auto base = OpenLocalStore(vault_.root());
  // Whatever the store's own listing says about FIFOs, this one is reported as one.
  TypeOverrideStore store(**base, name->stored, ObjectType::kFifo);
  auto stats = RotateMasterKey(store, Old(), New());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->special_nodes, 1u);
  EXPECT_EQ(stats->files_rewrapped, contents_.size());
  EXPECT_TRUE(EverythingOpensWith(New()));
}

}  // namespace
}  // namespace cadcanfs
