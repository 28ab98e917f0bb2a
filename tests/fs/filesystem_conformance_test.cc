// One FileSystem, two formats (issue 10 §1): the same POSIX behaviour, checked without
// the kernel, over every pairing of format (encrypted vault, plain) and store (local
// directory, in memory). What a user sees through FileSystem must not depend on how
// the bytes are laid out below it; only what is at rest differs, and that has its own
// tests (vault, tamper and mount tests).
//
// A typed suite, as CryFS tests its stacked layers: each Setup builds a FileSystem and
// can build a fresh one over the same store ("remount"), so that every check of what
// was stored runs against nothing the first FileSystem cached.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/plain_format.h"
#include "cadcanfs/fs/vault_format.h"
#include "cadcanfs/store/local_store.h"
#include "cadcanfs/store/memory_store.h"
#include "cadcanfs/store/remote_like_store.h"
#include "cadcanfs/store/staging_store.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::PatternBytes;
using testing::TempDir;

// The store outlives every FileSystem built on it: each gets a forwarding view.
struct StoreBox {
  TempDir dir;  // holds the local store's root, the key file and the staging directory
  std::unique_ptr<Store> base;

  std::unique_ptr<Store> View() { return std::make_unique<testing::ForwardingStore>(*base); }
};

std::unique_ptr<Store> LocalStoreIn(const TempDir& dir) {
  const std::string root = dir.path() + "/store";
  mkdir(root.c_str(), 0700);
  auto store = OpenLocalStore(root);
  EXPECT_TRUE(store.ok());
  return std::move(store).value();
}

// A vault format over the box's store, in `kLayout`: initialized on first use, opened
// with its key.
template <VaultLayout kLayout>
struct VaultIn {
  static std::unique_ptr<Format> Open(StoreBox& box, std::unique_ptr<Store> store) {
    const std::string key_file = box.dir.path() + "/master.key";
    KeyOptions keys{key_file, std::nullopt};
    if (::access(key_file.c_str(), F_OK) != 0) {
      EXPECT_TRUE(WriteNewKeyFile(key_file).ok());
      auto key = LoadKeyForNewVault(keys);
      EXPECT_TRUE(Vault::Initialize(*store, *key, 4096, kLayout).ok());
    }
    auto config = Vault::ReadConfig(*store);
    EXPECT_TRUE(config.ok());
    auto key = LoadKeyForVault(keys, *config);
    auto vault = Vault::Open(std::move(store), std::move(key).value());
    EXPECT_TRUE(vault.ok()) << vault.status().ToString();
    return std::make_unique<VaultFormat>(std::move(vault).value());
  }
};

using VaultOn = VaultIn<VaultLayout::kTree>;
using FlatVaultOn = VaultIn<VaultLayout::kFlat>;

struct PlainOn {
  static std::unique_ptr<Format> Open(StoreBox&, std::unique_ptr<Store> store) {
    return std::make_unique<PlainFormat>(std::move(store));
  }
};

// kPosixExtras: symlinks, hard links, xattrs and atomic exchange. A store without them
// refuses each with kUnsupported (EOPNOTSUPP at the frontend) and changes nothing.
struct OnLocal {
  static constexpr bool kPosixExtras = true;
  static std::unique_ptr<Store> Make(const TempDir& dir) { return LocalStoreIn(dir); }
  static std::unique_ptr<Store> View(StoreBox& box) { return box.View(); }
};
struct OnMemory {
  static constexpr bool kPosixExtras = true;
  static std::unique_ptr<Store> Make(const TempDir&) { return NewMemoryStore(); }
  static std::unique_ptr<Store> View(StoreBox& box) { return box.View(); }
};
// What OneDrive will be: a store that replaces whole objects, with writes staged in
// front of it. Each remount opens a new StagingStore on the same spill directory, so
// commits still owed by the last one are recovered from its journal.
struct OnStagedRemote {
  static constexpr bool kPosixExtras = false;
  static std::unique_ptr<Store> Make(const TempDir&) {
    return NewRemoteLikeStore(NewMemoryStore());
  }
  static std::unique_ptr<Store> View(StoreBox& box) {
    SecretBytes key(kStagingKeySize);
    std::fill_n(key.data(), key.size(), uint8_t{7});
    auto staging = OpenStagingStore(
        box.View(), StagingOptions{.spill_dir = box.dir.path() + "/spill", .key = std::move(key)});
    EXPECT_TRUE(staging.ok()) << staging.status().ToString();
    return std::move(staging).value();
  }
};

template <typename FormatT, typename StoreT>
struct Setup {
  static constexpr bool kPosixExtras = StoreT::kPosixExtras;
  static std::unique_ptr<Format> Open(StoreBox& box) {
    return FormatT::Open(box, StoreT::View(box));
  }
  static std::unique_ptr<Store> MakeStore(const TempDir& dir) { return StoreT::Make(dir); }
};

using VaultLocal = Setup<VaultOn, OnLocal>;
using VaultMemory = Setup<VaultOn, OnMemory>;
using VaultStagedRemote = Setup<VaultOn, OnStagedRemote>;
using FlatVaultLocal = Setup<FlatVaultOn, OnLocal>;
using FlatVaultStagedRemote = Setup<FlatVaultOn, OnStagedRemote>;
using PlainLocal = Setup<PlainOn, OnLocal>;
using PlainMemory = Setup<PlainOn, OnMemory>;
using PlainStagedRemote = Setup<PlainOn, OnStagedRemote>;

template <typename SetupT>
class FileSystemConformanceTest : public ::testing::Test {
 protected:
  FileSystemConformanceTest() {
    box_.base = SetupT::MakeStore(box_.dir);
    Remount();
  }

  // A fresh FileSystem over the same store: nothing it answers comes from a cache.
  void Remount() {
    fs_.reset();
    fs_ = std::make_unique<FileSystem>(SetupT::Open(box_), FsOptions{});
  }

  FileSystem& fs() { return *fs_; }

  InodeNumber MakeDir(InodeNumber parent, const std::string& name) {
    auto entry = fs_->MakeDir(parent, name, 0755, caller_);
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    return entry.ok() ? entry->ino : 0;
  }

  InodeNumber Put(InodeNumber parent, const std::string& name, const Bytes& data) {
    auto created = fs_->Create(parent, name, 0644, O_WRONLY | O_CREAT | O_EXCL, caller_);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (!created.ok()) return 0;
    auto [entry, fh] = *created;
    if (!data.empty()) {
      auto n = fs_->Write(fh, 0, data);
      EXPECT_TRUE(n.ok() && *n == data.size());
    }
    EXPECT_TRUE(fs_->Fsync(fh).ok());
    fs_->Release(fh);
    return entry.ino;
  }

  // The content of `path` ("a/b/c"), looked up from the root, or an error.
  Result<Bytes> Get(const std::string& path) {
    CADCANFS_ASSIGN_OR_RETURN(InodeNumber ino, Resolve(path));
    CADCANFS_ASSIGN_OR_RETURN(HandleId fh, fs_->Open(ino, O_RDONLY));
    CADCANFS_ASSIGN_OR_RETURN(struct stat st, fs_->GetAttr(ino));
    Bytes out(static_cast<size_t>(st.st_size) + 1);
    auto n = fs_->Read(fh, 0, out);
    fs_->Release(fh);
    CADCANFS_RETURN_IF_ERROR(n.status());
    out.resize(*n);
    return out;
  }

  Result<InodeNumber> Resolve(const std::string& path) {
    InodeNumber ino = kRootInode;
    size_t start = 0;
    while (start < path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      CADCANFS_ASSIGN_OR_RETURN(Entry e, fs_->Lookup(ino, path.substr(start, slash - start)));
      ino = e.ino;
      start = slash + 1;
    }
    return ino;
  }

  std::set<std::string> Names(InodeNumber dir) {
    std::set<std::string> names;
    auto dh = fs_->OpenDir(dir);
    EXPECT_TRUE(dh.ok());
    if (!dh.ok()) return names;
    auto listing = fs_->ReadDir(*dh, 0);
    EXPECT_TRUE(listing.ok());
    if (listing.ok()) {
      for (const PlainDirEntry& e : **listing) names.insert(e.name);
    }
    fs_->ReleaseDir(*dh);
    return names;
  }

  StoreBox box_;
  std::unique_ptr<FileSystem> fs_;
  Caller caller_{0, 0};
};

using Setups = ::testing::Types<VaultLocal, VaultMemory, VaultStagedRemote, FlatVaultLocal,
                                FlatVaultStagedRemote, PlainLocal, PlainMemory, PlainStagedRemote>;
class SetupNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, VaultLocal>) return "VaultOnLocal";
    if (std::is_same_v<T, VaultMemory>) return "VaultOnMemory";
    if (std::is_same_v<T, VaultStagedRemote>) return "VaultOnStagedRemote";
    if (std::is_same_v<T, FlatVaultLocal>) return "FlatVaultOnLocal";
    if (std::is_same_v<T, FlatVaultStagedRemote>) return "FlatVaultOnStagedRemote";
    if (std::is_same_v<T, PlainLocal>) return "PlainOnLocal";
    if (std::is_same_v<T, PlainMemory>) return "PlainOnMemory";
    return "PlainOnStagedRemote";
  }
};
TYPED_TEST_SUITE(FileSystemConformanceTest, Setups, SetupNames);

TYPED_TEST(FileSystemConformanceTest, FilesReadBackAfterARemount) {
  const Bytes small = PatternBytes(10, 1);
  const Bytes large = PatternBytes(3 * 65536 + 17, 2);
  InodeNumber dir = this->MakeDir(kRootInode, "Doe, Jane");
  this->Put(dir, "scan.stl", large);
  this->Put(kRootInode, "note.txt", small);
  this->Put(kRootInode, "empty", {});
  this->Remount();
  EXPECT_EQ(*this->Get("Doe, Jane/scan.stl"), large);
  EXPECT_EQ(*this->Get("note.txt"), small);
  EXPECT_EQ(*this->Get("empty"), Bytes{});
  EXPECT_EQ(this->Names(kRootInode), (std::set<std::string>{"Doe, Jane", "note.txt", "empty"}));
  auto st = this->fs().GetAttr(*this->Resolve("Doe, Jane/scan.stl"));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, static_cast<off_t>(large.size()));
  EXPECT_TRUE(S_ISREG(st->st_mode));
}

TYPED_TEST(FileSystemConformanceTest, RandomWritesAndTruncatesMatchAModel) {
  InodeNumber ino = this->Put(kRootInode, "f", {});
  auto fh = this->fs().Open(ino, O_RDWR);
  ASSERT_TRUE(fh.ok());
  Bytes model;
  uint32_t seed = 7;
  for (int step = 0; step < 200; ++step) {
    seed = seed * 1103515245u + 12345u;
    const uint64_t offset = (seed >> 8) % 150000;
    const size_t length = 1 + (seed >> 4) % 9000;
    if (step % 10 == 9) {
      ASSERT_TRUE(this->fs().SetAttr(ino, AttrChanges{.size = offset}, *fh).ok());
      model.resize(offset);
      continue;
    }
    const Bytes data = PatternBytes(length, seed);
    auto n = this->fs().Write(*fh, offset, data);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (model.size() < offset + length) model.resize(offset + length);
    std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(offset));
  }
  ASSERT_TRUE(this->fs().Fsync(*fh).ok());
  this->fs().Release(*fh);
  this->Remount();
  EXPECT_EQ(*this->Get("f"), model);
}

TYPED_TEST(FileSystemConformanceTest, AppendOpensWriteAtTheEnd) {
  InodeNumber ino = this->Put(kRootInode, "log", PatternBytes(100, 3));
  auto fh = this->fs().Open(ino, O_WRONLY | O_APPEND);
  ASSERT_TRUE(fh.ok());
  ASSERT_TRUE(this->fs().Write(*fh, 0, PatternBytes(50, 4)).ok());
  this->fs().Release(*fh);
  Bytes expected = PatternBytes(100, 3);
  Bytes tail = PatternBytes(50, 4);
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(*this->Get("log"), expected);
}

TYPED_TEST(FileSystemConformanceTest, RenamesMoveReplaceAndExchange) {
  InodeNumber a = this->MakeDir(kRootInode, "a");
  InodeNumber b = this->MakeDir(kRootInode, "b");
  this->Put(a, "x", PatternBytes(10, 5));
  this->Put(b, "y", PatternBytes(20, 6));
  this->Put(b, "z", PatternBytes(30, 7));
  ASSERT_TRUE(this->fs().Rename(a, "x", b, "x2", RenameMode::kNoReplace).ok());
  EXPECT_EQ(this->fs().Rename(b, "x2", b, "y", RenameMode::kNoReplace).code(),
            Code::kAlreadyExists);
  ASSERT_TRUE(this->fs().Rename(b, "x2", b, "y", RenameMode::kReplace).ok());
  ASSERT_TRUE(this->fs().Rename(kRootInode, "b", kRootInode, "c", RenameMode::kNoReplace).ok());
  this->Remount();
  EXPECT_EQ(this->Names(kRootInode), (std::set<std::string>{"a", "c"}));
  EXPECT_EQ(*this->Get("c/y"), PatternBytes(10, 5));
  EXPECT_EQ(*this->Get("c/z"), PatternBytes(30, 7));
  EXPECT_TRUE(this->Names(*this->Resolve("a")).empty());
}

TYPED_TEST(FileSystemConformanceTest, ExchangeSwapsOrIsRefusedWhole) {
  this->Put(kRootInode, "y", PatternBytes(20, 6));
  this->Put(kRootInode, "z", PatternBytes(30, 7));
  Status exchanged = this->fs().Rename(kRootInode, "y", kRootInode, "z", RenameMode::kExchange);
  this->Remount();
  if (TypeParam::kPosixExtras) {
    ASSERT_TRUE(exchanged.ok()) << exchanged.ToString();
    EXPECT_EQ(*this->Get("y"), PatternBytes(30, 7));
    EXPECT_EQ(*this->Get("z"), PatternBytes(20, 6));
  } else {
    EXPECT_EQ(exchanged.code(), Code::kUnsupported);
    EXPECT_EQ(*this->Get("y"), PatternBytes(20, 6));
    EXPECT_EQ(*this->Get("z"), PatternBytes(30, 7));
  }
}

TYPED_TEST(FileSystemConformanceTest, RemovalsAndTheirErrors) {
  InodeNumber d = this->MakeDir(kRootInode, "d");
  this->Put(d, "f", PatternBytes(5, 8));
  EXPECT_EQ(this->fs().RemoveDir(kRootInode, "d").code(), Code::kNotEmpty);
  EXPECT_EQ(this->fs().Unlink(kRootInode, "missing").code(), Code::kNotFound);
  EXPECT_EQ(this->fs().Lookup(kRootInode, "missing").status().code(), Code::kNotFound);
  ASSERT_TRUE(this->fs().Unlink(d, "f").ok());
  ASSERT_TRUE(this->fs().RemoveDir(kRootInode, "d").ok());
  EXPECT_EQ(this->fs().MakeDir(kRootInode, "", 0755, this->caller_).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      this->fs().MakeDir(kRootInode, std::string(256, 'n'), 0755, this->caller_).status().code(),
      Code::kNameTooLong);
  this->Remount();
  EXPECT_TRUE(this->Names(kRootInode).empty());
}

TYPED_TEST(FileSystemConformanceTest, ReplacingAnEmptyDirectoryByRename) {
  this->MakeDir(kRootInode, "src");
  this->MakeDir(kRootInode, "dst");
  ASSERT_TRUE(this->fs().Rename(kRootInode, "src", kRootInode, "dst", RenameMode::kReplace).ok());
  InodeNumber full = this->MakeDir(kRootInode, "full");
  this->Put(full, "f", {});
  this->MakeDir(kRootInode, "other");
  EXPECT_EQ(this->fs().Rename(kRootInode, "other", kRootInode, "full", RenameMode::kReplace).code(),
            Code::kNotEmpty);
  this->Remount();
  EXPECT_EQ(this->Names(kRootInode), (std::set<std::string>{"dst", "full", "other"}));
  EXPECT_EQ(this->Names(*this->Resolve("full")), (std::set<std::string>{"f"}));
}

TYPED_TEST(FileSystemConformanceTest, SymlinksLinksAndXattrsAreRefusedWithoutTheStore) {
  if (TypeParam::kPosixExtras) GTEST_SKIP() << "the store has them (next test)";
  InodeNumber f = this->Put(kRootInode, "f", PatternBytes(9, 9));
  EXPECT_EQ(this->fs().Symlink(kRootInode, "l", "f", this->caller_).status().code(),
            Code::kUnsupported);
  EXPECT_EQ(this->fs().Link(f, kRootInode, "f2").status().code(), Code::kUnsupported);
  EXPECT_EQ(this->fs().SetXattr(f, "user.case", PatternBytes(4, 1), 0).code(), Code::kUnsupported);
  this->Remount();
  EXPECT_EQ(this->Names(kRootInode), (std::set<std::string>{"f"}));
}

TYPED_TEST(FileSystemConformanceTest, SymlinksLinksAndXattrs) {
  if (!TypeParam::kPosixExtras) GTEST_SKIP() << "the store has none (previous test)";
  InodeNumber d = this->MakeDir(kRootInode, "d");
  auto link = this->fs().Symlink(d, "l", "../target with spaces", this->caller_);
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  EXPECT_EQ(link->attr.st_size, static_cast<off_t>(std::string("../target with spaces").size()));
  InodeNumber f = this->Put(kRootInode, "f", PatternBytes(9, 9));
  ASSERT_TRUE(this->fs().Link(f, d, "f2").ok());
  const Bytes value = PatternBytes(40, 10);
  ASSERT_TRUE(this->fs().SetXattr(f, "user.case", value, 0).ok());
  EXPECT_EQ(this->fs().SetXattr(f, "trusted.x", value, 0).code(), Code::kUnsupported);
  ASSERT_TRUE(this->fs().Rename(d, "l", kRootInode, "l", RenameMode::kNoReplace).ok());
  this->Remount();
  EXPECT_EQ(*this->fs().ReadLink(*this->Resolve("l")), "../target with spaces");
  EXPECT_EQ(*this->Get("d/f2"), PatternBytes(9, 9));
  InodeNumber again = *this->Resolve("f");
  EXPECT_EQ(*this->fs().GetXattr(again, "user.case"), value);
  EXPECT_EQ(*this->fs().ListXattrs(again), std::vector<std::string>{"user.case"});
  ASSERT_TRUE(this->fs().RemoveXattr(again, "user.case").ok());
  EXPECT_EQ(this->fs().GetXattr(again, "user.case").status().code(), Code::kNotFound);
  EXPECT_EQ(this->fs().GetAttr(again)->st_nlink, 2u);
}

TYPED_TEST(FileSystemConformanceTest, AllocateGrowsOrReservesAsAsked) {
  InodeNumber ino = this->Put(kRootInode, "f", PatternBytes(1000, 11));
  auto fh = this->fs().Open(ino, O_RDWR);
  ASSERT_TRUE(fh.ok());
  ASSERT_TRUE(this->fs().Allocate(*fh, FALLOC_FL_KEEP_SIZE, 0, 100000).ok());
  EXPECT_EQ(this->fs().GetAttr(ino)->st_size, 1000);
  ASSERT_TRUE(this->fs().Allocate(*fh, 0, 500, 5000).ok());
  EXPECT_EQ(this->fs().GetAttr(ino)->st_size, 5500);
  this->fs().Release(*fh);
  this->Remount();
  Bytes expected = PatternBytes(1000, 11);
  expected.resize(5500, 0);
  EXPECT_EQ(*this->Get("f"), expected);
}

TYPED_TEST(FileSystemConformanceTest, AnOpenFileSurvivesItsUnlink) {
  InodeNumber ino = this->Put(kRootInode, "f", PatternBytes(3000, 12));
  auto fh = this->fs().Open(ino, O_RDWR);
  ASSERT_TRUE(fh.ok());
  ASSERT_TRUE(this->fs().Unlink(kRootInode, "f").ok());
  ASSERT_TRUE(this->fs().Write(*fh, 3000, PatternBytes(10, 13)).ok());
  Bytes out(4000);
  auto n = this->fs().Read(*fh, 0, out);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3010u);
  this->fs().Release(*fh);
  EXPECT_TRUE(this->Names(kRootInode).empty());
}

}  // namespace
}  // namespace cadcanfs
