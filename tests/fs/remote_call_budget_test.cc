// What the common operations cost on a store whose every call is a round trip (issue
// 10, "Performance"), counted without a kernel: the FileSystem is driven with the
// requests the kernel sends for `ls -l DIR` and for the first byte of a file, over the
// store stack a remote mount uses (staging over the read cache over the remote store).
// scripts/bench_remote.sh measures the same on a real mount, with latency.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/plain_format.h"
#include "cadcanfs/fs/vault_format.h"
#include "cadcanfs/store/caching_store.h"
#include "cadcanfs/store/memory_store.h"
#include "cadcanfs/store/remote_like_store.h"
#include "cadcanfs/store/staging_store.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

constexpr int kEntries = 2000;  // two pages of a Graph listing
constexpr size_t kBigFileBytes = 3 << 20;

enum class Mode { kPlain, kFlatVault };

class RemoteCallBudgetTest : public ::testing::TestWithParam<Mode> {
 protected:
  RemoteCallBudgetTest() : memory_(NewMemoryStore()) {
    if (GetParam() == Mode::kFlatVault) {
      key_file_ = testing::MakeKeyFile(dir_, "master.key");
      auto key = LoadKeyForNewVault(KeyOptions{key_file_, std::nullopt});
      EXPECT_TRUE(Vault::Initialize(*memory_, *key, 4096, VaultLayout::kFlat).ok());
    }
    Populate();
    Remount();
  }

  // The files, written straight to the memory store (through the format, for a vault).
  void Populate() {
    FileSystem fs(FormatOver(std::make_unique<testing::ForwardingStore>(*memory_)), FsOptions{});
    auto dir = fs.MakeDir(kRootInode, "slices", 0755, Caller{});
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    WriteFile(fs, dir->ino, "seed.dcm", Bytes(4096, 1));
    for (int i = 0; i < kEntries - 1; ++i) {
      WriteFile(fs, dir->ino, "slice" + std::to_string(i) + ".dcm", Bytes(64, 2));
    }
    WriteFile(fs, kRootInode, "volume.dcm", Bytes(kBigFileBytes, 3));
  }

  static void WriteFile(FileSystem& fs, InodeNumber parent, const std::string& name,
                        const Bytes& content) {
    auto created = fs.Create(parent, name, 0644, O_WRONLY, Caller{});
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    ASSERT_TRUE(fs.Write(created->second, 0, content).ok());
    fs.Release(created->second);
  }

  // A fresh mount over the remote stack, as `cadcanfs mount remote-like:...` builds it.
  void Remount() {
    fs_.reset();
    auto remote = NewRemoteLikeStore(std::make_unique<testing::ForwardingStore>(*memory_));
    controls_ = remote->controls();
    SecretBytes key(kStagingKeySize);
    std::fill_n(key.data(), key.size(), uint8_t{7});
    auto staging = OpenStagingStore(
        NewCachingStore(std::move(remote)),
        StagingOptions{.spill_dir = dir_.path() + "/spill", .key = std::move(key)});
    ASSERT_TRUE(staging.ok()) << staging.status().ToString();
    fs_ = std::make_unique<FileSystem>(FormatOver(std::move(staging).value()), FsOptions{});
    // What the FUSE frontend does once at mount, before it serves a request.
    ASSERT_TRUE(fs_->PrepareToServe().ok());
    controls_->ResetCalls();
  }

  std::unique_ptr<Format> FormatOver(std::unique_ptr<Store> store) {
    if (GetParam() == Mode::kPlain) return std::make_unique<PlainFormat>(std::move(store));
    KeyOptions keys{key_file_, std::nullopt};
    auto config = Vault::ReadConfig(*store);
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    auto key = LoadKeyForVault(keys, *config);
    auto vault = Vault::Open(std::move(store), std::move(key).value());
    EXPECT_TRUE(vault.ok()) << vault.status().ToString();
    return std::make_unique<VaultFormat>(std::move(vault).value());
  }

  std::string CallsByKind() const {
    std::string out;
    for (size_t kind = 0; kind < kRemoteCallKinds; ++kind) {
      const uint64_t n = controls_->Calls(static_cast<RemoteCall>(kind));
      if (n != 0) {
        out += std::string(RemoteCallName(static_cast<RemoteCall>(kind))) + "=" +
               std::to_string(n) + " ";
      }
    }
    return out;
  }

  testing::TempDir dir_;
  std::string key_file_;
  std::unique_ptr<Store> memory_;
  std::shared_ptr<RemoteLikeControls> controls_;
  std::unique_ptr<FileSystem> fs_;
};

// `ls -l DIR` on a cold mount: the kernel checks the root, looks DIR up, opens it and
// reads it with readdirplus, which carries every entry's attributes, so no entry is
// looked up or stat'ed on its own.
TEST_P(RemoteCallBudgetTest, ListingTwoThousandEntriesWithAttributes) {
  ASSERT_TRUE(fs_->GetAttr(kRootInode).ok());
  auto dir = fs_->Lookup(kRootInode, "slices");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  ASSERT_TRUE(fs_->GetAttr(dir->ino).ok());
  auto handle = fs_->OpenDir(dir->ino);
  ASSERT_TRUE(handle.ok());
  auto listing = fs_->ReadDir(*handle, 0);
  ASSERT_TRUE(listing.ok()) << listing.status().ToString();
  ASSERT_EQ((*listing)->size(), static_cast<size_t>(kEntries));
  for (const PlainDirEntry& entry : **listing) {
    auto found = fs_->LookupListed(dir->ino, entry);
    ASSERT_TRUE(found.ok());
    if (entry.name == "seed.dcm") {
      EXPECT_EQ(found->attr.st_size, 4096);
    }
  }
  fs_->ReleaseDir(*handle);
  // Plain: one call finds the directory, and two pages of 1,000 (Graph's most) list it.
  // A vault also reads the directory's id, which names where its entries live, and its
  // entries directory holds a copy of that id: 2,001 stored entries, three pages.
  const bool plain = GetParam() == Mode::kPlain;
  EXPECT_EQ(controls_->Calls(RemoteCall::kList), plain ? 2u : 3u) << CallsByKind();
  EXPECT_EQ(controls_->TotalCalls(), plain ? 3u : 5u) << CallsByKind();

  // The same again, as `ls -l` would repeat it: only the listing is read afresh.
  controls_->ResetCalls();
  ASSERT_TRUE(fs_->Lookup(kRootInode, "slices").ok());
  handle = fs_->OpenDir(dir->ino);
  ASSERT_TRUE(handle.ok());
  ASSERT_TRUE(fs_->ReadDir(*handle, 0).ok());
  fs_->ReleaseDir(*handle);
  EXPECT_EQ(controls_->TotalCalls(), plain ? 2u : 3u) << CallsByKind();
}

// The first byte of a big file once the kernel has looked it up: one call opens it (on
// OneDrive, the item with its download URL), one ranged read fetches the start.
TEST_P(RemoteCallBudgetTest, FirstByteOfABigFile) {
  auto file = fs_->Lookup(kRootInode, "volume.dcm");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->attr.st_size, static_cast<off_t>(kBigFileBytes));
  controls_->ResetCalls();
  auto handle = fs_->Open(file->ino, O_RDONLY);
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  uint8_t byte = 0;
  auto read = fs_->Read(*handle, 0, std::span<uint8_t>(&byte, 1));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, 1u);
  EXPECT_EQ(byte, 3);
  EXPECT_LE(controls_->TotalCalls(), 2u) << CallsByKind();
  fs_->Release(*handle);
}

// Opening for reading first and for writing later still writes (the open upgrades).
TEST_P(RemoteCallBudgetTest, AReadOpenUpgradesWhenAWriterComes) {
  auto file = fs_->Lookup(kRootInode, "volume.dcm");
  ASSERT_TRUE(file.ok());
  auto reader = fs_->Open(file->ino, O_RDONLY);
  ASSERT_TRUE(reader.ok());
  auto writer = fs_->Open(file->ino, O_RDWR);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  const Bytes patch(10, 9);
  ASSERT_TRUE(fs_->Write(*writer, 100, patch).ok());
  Bytes back(10);
  auto read = fs_->Read(*reader, 100, back);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(back, patch);
  fs_->Release(*writer);
  fs_->Release(*reader);
}

INSTANTIATE_TEST_SUITE_P(Formats, RemoteCallBudgetTest,
                         ::testing::Values(Mode::kPlain, Mode::kFlatVault), [](const auto& info) {
                           return info.param == Mode::kPlain ? "Plain" : "FlatVault";
                         });

}  // namespace
}  // namespace cadcanfs
