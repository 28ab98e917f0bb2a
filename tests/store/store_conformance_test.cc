// A typed conformance suite every Store implementation must pass. Each backend
// instantiates it with a factory (OneDrive will add its own against the emulator).
#include <gtest/gtest.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "cadcanfs/store/local_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

struct LocalStoreFactory {
  testing::TempDir dir;
  std::unique_ptr<Store> Make() { return std::move(OpenLocalStore(dir.path())).value(); }
  // std::filesystem::remove_all cannot remove trees deeper than PATH_MAX; rm can.
  ~LocalStoreFactory() {
    std::string cmd = "rm -rf '" + dir.path() + "'";
    (void)std::system(cmd.c_str());
  }
};

template <typename Factory>
class StoreConformanceTest : public ::testing::Test {
 protected:
  StoreConformanceTest() : store_(factory_.Make()) {}
  Factory factory_;
  std::unique_ptr<Store> store_;
};

TYPED_TEST_SUITE_P(StoreConformanceTest);

TYPED_TEST_P(StoreConformanceTest, WriteAtomicThenReadSmall) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.WriteAtomic("obj", AsBytes("hello")).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("obj", 100)), "hello");
  ASSERT_TRUE(s.WriteAtomic("obj", AsBytes("bye")).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("obj", 100)), "bye");
  EXPECT_EQ(s.WriteAtomic("obj", AsBytes("x"), true).code(), Code::kAlreadyExists);
  EXPECT_EQ(s.ReadSmall("obj", 2).status().code(), Code::kCorrupt);
  // No temporary files are left behind.
  EXPECT_EQ(s.List("")->size(), 1u);
}

TYPED_TEST_P(StoreConformanceTest, RangedReadsAndWrites) {
  Store& s = *this->store_;
  auto f = s.Open("f", OpenOptions{.write = true, .create = true, .exclusive = true});
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(0, AsBytes("0123456789")).ok());
  ASSERT_TRUE((*f)->WriteAt(4, AsBytes("ab")).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  Bytes out(20);
  EXPECT_EQ(*(*f)->ReadAt(2, out), 8u);
  EXPECT_EQ(AsChars(ByteSpan(out.data(), 8)), "23ab6789");
  ASSERT_TRUE((*f)->Truncate(3).ok());
  EXPECT_EQ(*(*f)->Size(), 3u);
  EXPECT_EQ(
      s.Open("f", OpenOptions{.write = true, .create = true, .exclusive = true}).status().code(),
      Code::kAlreadyExists);
}

TYPED_TEST_P(StoreConformanceTest, DirectoriesRenameAndRemove) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  EXPECT_EQ(s.MakeDir("d", 0700).code(), Code::kAlreadyExists);
  ASSERT_TRUE(s.WriteAtomic("d/x", AsBytes("1")).ok());
  EXPECT_EQ(s.RemoveDir("d").code(), Code::kNotEmpty);
  ASSERT_TRUE(s.WriteAtomic("y", AsBytes("2")).ok());
  EXPECT_EQ(s.Rename("y", "d/x", RenameMode::kNoReplace).code(), Code::kAlreadyExists);
  ASSERT_TRUE(s.Rename("y", "d/x", RenameMode::kReplace).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("d/x", 10)), "2");
  EXPECT_EQ(s.Stat("y").status().code(), Code::kNotFound);
  ASSERT_TRUE(s.Remove("d/x").ok());
  ASSERT_TRUE(s.RemoveDir("d").ok());
  EXPECT_EQ(s.Stat("d").status().code(), Code::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, MalformedPathsAreRefused) {
  Store& s = *this->store_;
  EXPECT_EQ(s.Stat("../etc").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.Stat("a//b").status().code(), Code::kInvalidArgument);
}

// Issue 12, item 12 (store half): FIFOs, sockets and device nodes.
TYPED_TEST_P(StoreConformanceTest, SpecialFilesMakeNode) {
  Store& s = *this->store_;
  if (!s.capabilities().special_files) {
    EXPECT_EQ(s.MakeNode("p", ObjectType::kFifo, 0600, 0).code(), Code::kUnsupported);
    return;
  }
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  ASSERT_TRUE(s.MakeNode("d/fifo", ObjectType::kFifo, 0640, 0).ok());
  ASSERT_TRUE(s.MakeNode("d/sock", ObjectType::kSocket, 0600, 0).ok());
  EXPECT_EQ(s.MakeNode("d/fifo", ObjectType::kFifo, 0600, 0).code(), Code::kAlreadyExists);
  EXPECT_EQ(s.MakeNode("d/file", ObjectType::kFile, 0600, 0).code(), Code::kInvalidArgument);
  bool devices = geteuid() == 0;
  if (devices) {
    ASSERT_TRUE(s.MakeNode("d/chr", ObjectType::kCharDevice, 0600, makedev(1, 3)).ok());
    ASSERT_TRUE(s.MakeNode("d/blk", ObjectType::kBlockDevice, 0600, makedev(7, 200)).ok());
  } else {
    EXPECT_EQ(s.MakeNode("d/chr", ObjectType::kCharDevice, 0600, makedev(1, 3)).code(),
              Code::kPermissionDenied);
  }

  auto fifo = s.Stat("d/fifo");
  ASSERT_TRUE(fifo.ok());
  EXPECT_EQ(fifo->type, ObjectType::kFifo);
  EXPECT_EQ(fifo->rdev, 0u);
  EXPECT_EQ(s.Stat("d/sock")->type, ObjectType::kSocket);
  if (devices) {
    EXPECT_EQ(s.Stat("d/chr")->type, ObjectType::kCharDevice);
    EXPECT_EQ(s.Stat("d/chr")->rdev, makedev(1, 3));
    EXPECT_EQ(s.Stat("d/blk")->type, ObjectType::kBlockDevice);
    EXPECT_EQ(s.Stat("d/blk")->rdev, makedev(7, 200));
  }
  auto listing = s.List("d");
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->size(), devices ? 4u : 2u);
  for (const DirEntry& e : *listing) EXPECT_EQ(e.type, s.Stat("d/" + e.name)->type) << e.name;

  // chmod, chown, times, rename, link and unlink, as for any object.
  ASSERT_TRUE(s.SetMode("d/fifo", 0604).ok());
  EXPECT_EQ(s.Stat("d/fifo")->mode, 0604u);
  EXPECT_TRUE(s.SetOwner("d/fifo", getuid(), getgid()).ok());
  struct timespec times[2] = {{1000, 0}, {2000, 0}};
  ASSERT_TRUE(s.SetTimes("d/sock", times).ok());
  EXPECT_EQ(s.Stat("d/sock")->mtime.tv_sec, 2000);
  ASSERT_TRUE(s.Rename("d/fifo", "fifo2", RenameMode::kNoReplace).ok());
  ASSERT_TRUE(s.Link("fifo2", "d/fifo-link").ok());
  EXPECT_EQ(s.Stat("fifo2")->nlink, 2u);
  ASSERT_TRUE(s.Remove("fifo2").ok());
  EXPECT_EQ(s.Stat("d/fifo-link")->type, ObjectType::kFifo);
  // Opening a node as a file, or reading it as a small object, fails at once.
  EXPECT_EQ(s.Open("d/fifo-link", OpenOptions{}).status().code(), Code::kCorrupt);
  EXPECT_EQ(s.ReadSmall("d/fifo-link", 100).status().code(), Code::kCorrupt);
  if (devices) {
    EXPECT_EQ(s.Open("d/chr", OpenOptions{}).status().code(), Code::kCorrupt);
  }
}

// Issue 12, item 13 (store half): every operation on a path longer than PATH_MAX.
TYPED_TEST_P(StoreConformanceTest, DeepPathsLongerThanPathMax) {
  Store& s = *this->store_;
  constexpr int kLevels = 25;  // 25 names of 250 bytes: a 6274-byte path
  std::string dir;
  for (int i = 0; i < kLevels; ++i) {
    dir = JoinStorePath(dir, std::string(249, 'a' + i % 26) + std::to_string(i % 10));
    ASSERT_TRUE(s.MakeDir(dir, 0700).ok()) << "level " << i;
  }
  ASSERT_GT(dir.size(), 6000u);
  std::string other = JoinStorePath(StoreParent(dir), std::string(250, 'z'));
  ASSERT_TRUE(s.MakeDir(other, 0700).ok());

  std::string small = dir + "/small";
  ASSERT_TRUE(s.WriteAtomic(small, AsBytes("hello")).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall(small, 100)), "hello");
  auto f = s.Open(dir + "/file", OpenOptions{.write = true, .create = true, .exclusive = true});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->WriteAt(0, AsBytes("0123456789")).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  f->reset();
  auto r = s.Open(dir + "/file", OpenOptions{});
  ASSERT_TRUE(r.ok());
  Bytes out(10);
  EXPECT_EQ(*(*r)->ReadAt(0, out), 10u);
  EXPECT_EQ(s.Stat(dir + "/file")->size, 10u);
  EXPECT_EQ(s.List(dir)->size(), 2u);
  ASSERT_TRUE(s.SyncDir(dir).ok());

  ASSERT_TRUE(s.SetMode(dir + "/file", 0640).ok());
  EXPECT_EQ(s.Stat(dir + "/file")->mode, 0640u);
  EXPECT_TRUE(s.SetOwner(dir + "/file", getuid(), getgid()).ok());
  struct timespec times[2] = {{1000, 0}, {2000, 0}};
  ASSERT_TRUE(s.SetTimes(dir + "/file", times).ok());
  EXPECT_EQ(s.Stat(dir + "/file")->mtime.tv_sec, 2000);

  ASSERT_TRUE(s.Symlink("target", dir + "/link").ok());
  EXPECT_EQ(*s.ReadLink(dir + "/link"), "target");
  // Across two deep parents.
  ASSERT_TRUE(s.Link(dir + "/file", other + "/hard").ok());
  EXPECT_EQ(s.Stat(dir + "/file")->nlink, 2u);
  ASSERT_TRUE(s.Rename(dir + "/small", other + "/moved", RenameMode::kNoReplace).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall(other + "/moved", 100)), "hello");
  ASSERT_TRUE(s.WriteAtomic(other + "/moved", AsBytes("again"), false).ok());
  ASSERT_TRUE(s.Rename(other + "/moved", dir + "/file", RenameMode::kExchange).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall(dir + "/file", 100)), "again");

  if (s.capabilities().xattrs) {
    Status set = s.SetXattr(dir + "/file", "user.test", AsBytes("v"), 0);
    if (set.code() != Code::kUnsupported) {
      ASSERT_TRUE(set.ok()) << set.ToString();
      EXPECT_EQ(AsChars(*s.GetXattr(dir + "/file", "user.test")), "v");
      auto names = s.ListXattrs(dir + "/file");
      ASSERT_TRUE(names.ok());
      EXPECT_NE(std::find(names->begin(), names->end(), "user.test"), names->end());
      ASSERT_TRUE(s.RemoveXattr(dir + "/file", "user.test").ok());
      EXPECT_EQ(s.GetXattr(dir + "/file", "user.test").status().code(), Code::kNotFound);
    }
  }
  if (s.capabilities().special_files) {
    ASSERT_TRUE(s.MakeNode(dir + "/fifo", ObjectType::kFifo, 0600, 0).ok());
    EXPECT_EQ(s.Stat(dir + "/fifo")->type, ObjectType::kFifo);
    ASSERT_TRUE(s.Remove(dir + "/fifo").ok());
  }
  ASSERT_TRUE(s.Space().ok());

  // Tear it all down through the store.
  for (const char* name : {"/file", "/link"}) ASSERT_TRUE(s.Remove(dir + name).ok());
  for (const char* name : {"/moved", "/hard"}) ASSERT_TRUE(s.Remove(other + name).ok());
  ASSERT_TRUE(s.RemoveDir(other).ok());
  while (!dir.empty()) {
    ASSERT_TRUE(s.RemoveDir(dir).ok());
    dir = std::string(StoreParent(dir));
  }
  EXPECT_TRUE(s.List("")->empty());
}

REGISTER_TYPED_TEST_SUITE_P(StoreConformanceTest, WriteAtomicThenReadSmall, RangedReadsAndWrites,
                            DirectoriesRenameAndRemove, MalformedPathsAreRefused,
                            SpecialFilesMakeNode, DeepPathsLongerThanPathMax);

using StoreFactories = ::testing::Types<LocalStoreFactory>;
INSTANTIATE_TYPED_TEST_SUITE_P(All, StoreConformanceTest, StoreFactories);

TEST(LocalStoreSpecificTest, SymlinksInsideTheVaultAreNeverFollowed) {
  testing::TempDir dir;
  ASSERT_EQ(symlink("/etc", (dir.path() + "/escape").c_str()), 0);
  auto store = OpenLocalStore(dir.path());
  EXPECT_FALSE((*store)->ReadSmall("escape/hostname", 1000).ok());
  EXPECT_FALSE((*store)->List("escape").ok());
}

}  // namespace
}  // namespace cadcanfs
