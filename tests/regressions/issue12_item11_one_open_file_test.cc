// Issue 12, item 11: a read-only open followed by a read-write open replaced the inode's
// open file object, so the read-only handles kept a stale size and read spurious EIO.
// One open file object per inode, whatever the order of opens.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>

#include "cadcanfs/fs/filesystem.h"
#include "cadcanfs/fs/vault_format.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

using testing::PatternBytes;

// A store that refuses to open objects for writing while `deny_writes` is set, as a
// non-root daemon is refused a backing file that is chmod a-w.
struct OwnedStore {
  std::unique_ptr<Store> owned;
};
class DenyWritesStore final : private OwnedStore, public testing::ForwardingStore {
 public:
  DenyWritesStore(std::unique_ptr<Store> base, std::atomic<bool>& deny_writes)
      : OwnedStore{std::move(base)}, ForwardingStore(*owned), deny_writes_(deny_writes) {}
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    if (options.write && !options.create && deny_writes_) {
      return Status::Error(Code::kPermissionDenied, "read-only object", EACCES);
    }
    return ForwardingStore::Open(path, options);
  }

 private:
  std::atomic<bool>& deny_writes_;
};

TEST(Issue12Item11Test, ReadOnlyHandlesSeeWritesMadeThroughALaterReadWriteOpen) {
  testing::TempVault tv(4096);
  std::atomic<bool> deny_writes{false};
  auto store = OpenLocalStore(tv.root());
  ASSERT_TRUE(store.ok());
  auto config = Vault::ReadConfig(**store);
  auto key = LoadKeyForVault(KeyOptions{tv.key_file(), std::nullopt}, *config);
  auto vault = Vault::Open(std::make_unique<DenyWritesStore>(std::move(*store), deny_writes),
                           std::move(key).value());
  ASSERT_TRUE(vault.ok()) << vault.status().ToString();
  FileSystem fs(std::make_unique<VaultFormat>(std::move(vault).value()), FsOptions{});

  auto created = fs.Create(kRootInode, "scan.stl", 0644, O_RDWR, Caller{});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const InodeNumber ino = created->first.ino;
  const Bytes first = PatternBytes(10, 1);
  ASSERT_TRUE(fs.Write(created->second, 0, first).ok());
  fs.Release(created->second);

  deny_writes = true;
  auto reader = fs.Open(ino, O_RDONLY);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  deny_writes = false;
  auto writer = fs.Open(ino, O_RDWR);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();

  // Grow the file well past the reader's view of it, through the writer.
  const Bytes more = PatternBytes(3 * 4096 + 5, 2);
  ASSERT_TRUE(fs.Write(*writer, first.size(), more).ok());
  Bytes back(first.size() + more.size());
  auto n = fs.Read(*reader, 0, back);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, back.size());
  EXPECT_TRUE(std::equal(first.begin(), first.end(), back.begin()));
  EXPECT_TRUE(std::equal(more.begin(), more.end(), back.begin() + first.size()));

  // And the other way round: a truncate through the writer is what the reader sees.
  ASSERT_TRUE(fs.SetAttr(ino, AttrChanges{.size = 4}, *writer).ok());
  Bytes cut(100);
  n = fs.Read(*reader, 0, cut);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 4u);
  fs.Release(*reader);
  fs.Release(*writer);
}

}  // namespace
}  // namespace cadcanfs
