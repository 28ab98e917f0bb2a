// A typed conformance suite every Store implementation must pass. Each backend
// instantiates it with a factory (OneDrive will add its own against the emulator).
#include <gtest/gtest.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/store/caching_store.h"
#include "cadcanfs/store/local_store.h"
#include "cadcanfs/store/memory_store.h"
#include "cadcanfs/store/remote_like_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs {
namespace {

// Each factory also says whether its store follows OneDrive's rules rather than POSIX
// ones beyond what StoreCapabilities can say: paths limited to 400 characters, no atomic
// exchange, objects that die with their last name, WriteAtomic that keeps the id.
struct LocalStoreFactory {
  static constexpr bool kRemoteLike = false;
  testing::TempDir dir;
  std::unique_ptr<Store> Make() { return std::move(OpenLocalStore(dir.path())).value(); }
  // std::filesystem::remove_all cannot remove trees deeper than PATH_MAX; rm can.
  ~LocalStoreFactory() {
    std::string cmd = "rm -rf '" + dir.path() + "'";
    (void)std::system(cmd.c_str());
  }
};

struct MemoryStoreFactory {
  static constexpr bool kRemoteLike = false;
  std::unique_ptr<Store> Make() { return NewMemoryStore(); }
};

struct RemoteLikeStoreFactory {
  static constexpr bool kRemoteLike = true;
  std::unique_ptr<Store> Make() { return NewRemoteLikeStore(NewMemoryStore()); }
};

// The read cache in front of a remote store, as the mount stacks it.
struct CachingRemoteLikeStoreFactory {
  static constexpr bool kRemoteLike = true;
  std::unique_ptr<Store> Make() {
    return NewCachingStore(NewRemoteLikeStore(NewMemoryStore()),
                           CachingOptions{.budget_bytes = 4 << 20, .chunk_size = 64 << 10});
  }
};

// On a store without partial writes, what a writer wrote is visible only once committed.
void CommitIfStaged(Store& s, StoreFile& f) {
  if (!s.capabilities().partial_writes) {
    ASSERT_TRUE(f.Commit({}).ok());
  }
}

// ObjectIds compared and printed as hex, so that a failure shows which ids differ.
std::string Hex(const ObjectId& id) { return HexEncode(AsBytes(id.bytes())); }

bool SameTime(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// The fields every description of one object must agree on, whoever gives it.
void ExpectSameObject(const ObjectInfo& a, const ObjectInfo& b, const std::string& what) {
  EXPECT_EQ(Hex(a.id), Hex(b.id)) << what;
  EXPECT_EQ(a.inode_hint, b.inode_hint) << what;
  EXPECT_EQ(a.type, b.type) << what;
  EXPECT_EQ(a.size, b.size) << what;
  EXPECT_EQ(a.mode, b.mode) << what;
  EXPECT_EQ(a.nlink, b.nlink) << what;
}

// Every field, for two descriptions taken with nothing changing in between.
void ExpectSameInfo(const ObjectInfo& a, const ObjectInfo& b, const std::string& what) {
  ExpectSameObject(a, b, what);
  EXPECT_EQ(a.uid, b.uid) << what;
  EXPECT_EQ(a.gid, b.gid) << what;
  EXPECT_TRUE(SameTime(a.atime, b.atime)) << what;
  EXPECT_TRUE(SameTime(a.mtime, b.mtime)) << what;
  EXPECT_TRUE(SameTime(a.ctime, b.ctime)) << what;
  EXPECT_EQ(a.rdev, b.rdev) << what;
  EXPECT_EQ(a.etag, b.etag) << what;
}

const DirEntry* FindEntry(const std::vector<DirEntry>& entries, const std::string& name) {
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&name](const DirEntry& e) { return e.name == name; });
  return it == entries.end() ? nullptr : &*it;
}

// RenameMode::kExchange or, on a store without it (which must say kUnsupported), the
// same swap as three renames through a free name.
void Exchange(Store& s, bool atomic, const std::string& a, const std::string& b) {
  if (atomic) {
    ASSERT_TRUE(s.Rename(a, b, RenameMode::kExchange).ok());
    return;
  }
  ASSERT_EQ(s.Rename(a, b, RenameMode::kExchange).code(), Code::kUnsupported);
  ASSERT_TRUE(s.Rename(a, "swap-tmp", RenameMode::kNoReplace).ok());
  ASSERT_TRUE(s.Rename(b, a, RenameMode::kNoReplace).ok());
  ASSERT_TRUE(s.Rename("swap-tmp", b, RenameMode::kNoReplace).ok());
}

constexpr OpenOptions kCreateNew{.write = true, .create = true, .exclusive = true};

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
  ASSERT_TRUE((*f)->Commit({}).ok());
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
  if (TypeParam::kRemoteLike) {
    GTEST_SKIP() << "the store limits paths to 400 characters (RemoteLikeStoreTest covers it)";
  }
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
  ASSERT_TRUE((*f)->Commit({}).ok());
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

TYPED_TEST_P(StoreConformanceTest, ObjectIdentity) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  auto f = s.Open("d/a", kCreateNew);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(0, AsBytes("content")).ok());
  CommitIfStaged(s, **f);
  ASSERT_TRUE(s.WriteAtomic("d/b", AsBytes("other")).ok());
  auto a = s.Stat("d/a");
  auto b = s.Stat("d/b");
  auto d = s.Stat("d");
  ASSERT_TRUE(a.ok() && b.ok() && d.ok());
  EXPECT_FALSE(a->id.empty());
  EXPECT_NE(Hex(a->id), Hex(b->id));
  EXPECT_NE(Hex(a->id), Hex(d->id));
  EXPECT_NE(a->inode_hint, b->inode_hint);

  // The path, the open file and the listing describe one object alike.
  ExpectSameObject(*a, *(*f)->Stat(), "open file");
  auto listing = s.List("d");
  ASSERT_TRUE(listing.ok());
  const DirEntry* entry = FindEntry(*listing, "a");
  ASSERT_NE(entry, nullptr);
  ASSERT_TRUE(entry->info.has_value());
  ExpectSameObject(*a, *entry->info, "listing");

  if (s.capabilities().hard_links) {
    ASSERT_TRUE(s.Link("d/a", "h").ok());
    auto h = s.Stat("h");
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(Hex(h->id), Hex(a->id));
    EXPECT_EQ(h->inode_hint, a->inode_hint);
    EXPECT_EQ(h->nlink, 2u);
    ExpectSameObject(*s.Stat("d/a"), *h, "other name");
    ExpectSameObject(*h, *(*f)->Stat(), "open file, linked");
    auto root = s.List("");
    ASSERT_TRUE(root.ok());
    entry = FindEntry(*root, "h");
    ASSERT_NE(entry, nullptr);
    ASSERT_TRUE(entry->info.has_value());
    ExpectSameObject(*h, *entry->info, "listing, linked");
  }

  // A rename moves the name, not the object: files and directories keep their id.
  ASSERT_TRUE(s.Rename("d/a", "d/renamed", RenameMode::kNoReplace).ok());
  EXPECT_EQ(Hex(s.Stat("d/renamed")->id), Hex(a->id));
  ASSERT_TRUE(s.Rename("d", "e", RenameMode::kNoReplace).ok());
  EXPECT_EQ(Hex(s.Stat("e")->id), Hex(d->id));
  EXPECT_EQ(Hex(s.Stat("e/renamed")->id), Hex(a->id));
  EXPECT_EQ(Hex((*f)->Stat()->id), Hex(a->id));
}

TYPED_TEST_P(StoreConformanceTest, ListingsCarryInfoForEveryEntry) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.MakeDir("d", 0750).ok());
  ASSERT_TRUE(s.WriteAtomic("d/file", AsBytes("12345")).ok());
  ASSERT_TRUE(s.MakeDir("d/sub", 0700).ok());
  bool modes = s.capabilities().posix_attributes;
  EXPECT_EQ(s.SetMode("d/file", 0640).code(), modes ? Code::kOk : Code::kUnsupported);
  if (s.capabilities().symlinks) {
    ASSERT_TRUE(s.Symlink("some/target", "d/link").ok());
  }
  if (s.capabilities().special_files) {
    ASSERT_TRUE(s.MakeNode("d/fifo", ObjectType::kFifo, 0600, 0).ok());
  }
  if (s.capabilities().hard_links) {
    ASSERT_TRUE(s.Link("d/file", "d/hard").ok());
  }

  auto listing = s.List("d");
  ASSERT_TRUE(listing.ok());
  size_t expected =
      2 + s.capabilities().symlinks + s.capabilities().special_files + s.capabilities().hard_links;
  EXPECT_EQ(listing->size(), expected);
  for (const DirEntry& e : *listing) {
    ASSERT_TRUE(e.info.has_value()) << e.name;
    EXPECT_EQ(e.type, e.info->type) << e.name;
    auto stat = s.Stat("d/" + e.name);
    ASSERT_TRUE(stat.ok()) << e.name;
    ExpectSameInfo(*e.info, *stat, e.name);
  }
  EXPECT_EQ(FindEntry(*listing, "file")->info->size, 5u);
  EXPECT_EQ(FindEntry(*listing, "file")->info->mode, modes ? 0640u : 0644u);
  EXPECT_EQ(FindEntry(*listing, "sub")->type, ObjectType::kDirectory);
  if (s.capabilities().symlinks) {
    EXPECT_EQ(FindEntry(*listing, "link")->type, ObjectType::kSymlink);
    EXPECT_EQ(FindEntry(*listing, "link")->info->size, 11u);
  }

  // The root listing too.
  auto root = s.List("");
  ASSERT_TRUE(root.ok());
  auto d = s.Stat("d");
  ASSERT_EQ(root->size(), 1u);
  ASSERT_TRUE((*root)[0].info.has_value());
  ExpectSameInfo(*(*root)[0].info, *d, "d");
}

TYPED_TEST_P(StoreConformanceTest, NewObjectsBelongToTheCaller) {
  Store& s = *this->store_;
  if (!s.capabilities().posix_attributes) GTEST_SKIP() << "the store keeps no owners";
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("x")).ok());
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  ASSERT_TRUE(s.Open("d/g", kCreateNew).ok());
  for (const char* path : {"f", "d", "d/g"}) {
    auto info = s.Stat(path);
    ASSERT_TRUE(info.ok()) << path;
    EXPECT_EQ(info->uid, geteuid()) << path;
    EXPECT_EQ(info->gid, getegid()) << path;
  }
}

TYPED_TEST_P(StoreConformanceTest, EtagChangesWithContentAndMetadataOnly) {
  Store& s = *this->store_;
  auto f = s.Open("f", kCreateNew);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(0, AsBytes("0123456789")).ok());
  CommitIfStaged(s, **f);
  std::string e0 = s.Stat("f")->etag;
  EXPECT_FALSE(e0.empty());
  EXPECT_EQ(s.Stat("f")->etag, e0);

  // Reading, by any route, changes nothing.
  Bytes out(10);
  ASSERT_TRUE((*f)->ReadAt(0, out).ok());
  ASSERT_TRUE(s.ReadSmall("f", 100).ok());
  auto reader = s.Open("f", OpenOptions{});
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->ReadAt(3, out).ok());
  ASSERT_TRUE(s.List("").ok());
  EXPECT_EQ(s.Stat("f")->etag, e0);

  // An overwrite in place that keeps the size.
  ASSERT_TRUE((*f)->WriteAt(2, AsBytes("ab")).ok());
  CommitIfStaged(s, **f);
  std::string e1 = s.Stat("f")->etag;
  EXPECT_NE(e1, e0);
  ASSERT_TRUE((*f)->Truncate(4).ok());
  CommitIfStaged(s, **f);
  std::string e2 = s.Stat("f")->etag;
  EXPECT_NE(e2, e1);
  EXPECT_EQ((*f)->Stat()->etag, e2);
  if (!s.capabilities().posix_attributes) return;  // no metadata that could change it
  ASSERT_TRUE(s.SetMode("f", 0640).ok());
  std::string e3 = s.Stat("f")->etag;
  EXPECT_NE(e3, e2);
  ASSERT_TRUE((*f)->SetMode(0604).ok());
  std::string e4 = s.Stat("f")->etag;
  EXPECT_NE(e4, e3);
  EXPECT_EQ((*f)->Stat()->etag, e4);
  ASSERT_TRUE((*reader)->ReadAt(0, out).ok());
  EXPECT_EQ(s.Stat("f")->etag, e4);
}

TYPED_TEST_P(StoreConformanceTest, OpenFileOutlivesItsLastName) {
  if (TypeParam::kRemoteLike) {
    GTEST_SKIP() << "a remote object dies with its last name and WriteAtomic keeps its id "
                    "(RemoteLikeStoreTest covers both)";
  }
  Store& s = *this->store_;
  auto f = s.Open("f", kCreateNew);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(0, AsBytes("hello")).ok());
  ObjectId id = (*f)->Stat()->id;
  ASSERT_TRUE(s.Remove("f").ok());
  EXPECT_EQ(s.Stat("f").status().code(), Code::kNotFound);
  EXPECT_TRUE(s.List("")->empty());

  Bytes out(11);
  EXPECT_EQ(*(*f)->ReadAt(0, out), 5u);
  EXPECT_EQ(AsChars(ByteSpan(out.data(), 5)), "hello");
  ASSERT_TRUE((*f)->WriteAt(5, AsBytes(" world")).ok());
  EXPECT_EQ(*(*f)->Size(), 11u);
  EXPECT_EQ(*(*f)->ReadAt(0, out), 11u);
  EXPECT_EQ(AsChars(out), "hello world");
  auto info = (*f)->Stat();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->nlink, 0u);
  EXPECT_EQ(info->size, 11u);
  EXPECT_EQ(Hex(info->id), Hex(id));
  ASSERT_TRUE((*f)->SetMode(0640).ok());
  EXPECT_EQ((*f)->Stat()->mode, 0640u);
  ASSERT_TRUE((*f)->Truncate(5).ok());
  EXPECT_EQ((*f)->Stat()->size, 5u);
  ASSERT_TRUE((*f)->Commit({}).ok());

  // Replaced by WriteAtomic: the open file keeps the old object, the name the new.
  ASSERT_TRUE(s.WriteAtomic("g", AsBytes("old")).ok());
  auto g = s.Open("g", OpenOptions{});
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(s.WriteAtomic("g", AsBytes("brand new")).ok());
  Bytes old(10);
  EXPECT_EQ(*(*g)->ReadAt(0, old), 3u);
  EXPECT_EQ(AsChars(ByteSpan(old.data(), 3)), "old");
  EXPECT_EQ((*g)->Stat()->nlink, 0u);
  EXPECT_NE(Hex((*g)->Stat()->id), Hex(s.Stat("g")->id));
  EXPECT_EQ(AsChars(*s.ReadSmall("g", 100)), "brand new");
}

TYPED_TEST_P(StoreConformanceTest, RenameMatrix) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.WriteAtomic("f1", AsBytes("one")).ok());
  ASSERT_TRUE(s.WriteAtomic("f2", AsBytes("two")).ok());
  ASSERT_TRUE(s.MakeDir("d1", 0700).ok());
  ASSERT_TRUE(s.MakeDir("d2", 0700).ok());
  ASSERT_TRUE(s.WriteAtomic("d2/x", AsBytes("x")).ok());
  ASSERT_TRUE(s.MakeDir("empty", 0700).ok());

  // A file replaces a file.
  ObjectId f1 = s.Stat("f1")->id;
  ASSERT_TRUE(s.Rename("f1", "f2", RenameMode::kReplace).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("f2", 10)), "one");
  EXPECT_EQ(Hex(s.Stat("f2")->id), Hex(f1));
  EXPECT_EQ(s.Stat("f1").status().code(), Code::kNotFound);

  // No-replace refuses a taken name and leaves both alone.
  ASSERT_TRUE(s.WriteAtomic("f1", AsBytes("again")).ok());
  EXPECT_EQ(s.Rename("f1", "f2", RenameMode::kNoReplace).code(), Code::kAlreadyExists);
  EXPECT_EQ(s.Rename("d1", "d2", RenameMode::kNoReplace).code(), Code::kAlreadyExists);
  EXPECT_EQ(AsChars(*s.ReadSmall("f1", 10)), "again");
  EXPECT_EQ(AsChars(*s.ReadSmall("f2", 10)), "one");

  // Type mismatches, and a directory over a non-empty one.
  EXPECT_EQ(s.Rename("f1", "d1", RenameMode::kReplace).code(), Code::kIsADirectory);
  EXPECT_EQ(s.Rename("d1", "f1", RenameMode::kReplace).code(), Code::kNotADirectory);
  EXPECT_EQ(s.Rename("d1", "d2", RenameMode::kReplace).code(), Code::kNotEmpty);
  EXPECT_EQ(s.Stat("d1")->type, ObjectType::kDirectory);
  EXPECT_EQ(AsChars(*s.ReadSmall("d2/x", 10)), "x");

  // A directory replaces an empty directory.
  ObjectId d1 = s.Stat("d1")->id;
  ASSERT_TRUE(s.Rename("d1", "empty", RenameMode::kReplace).ok());
  EXPECT_EQ(Hex(s.Stat("empty")->id), Hex(d1));
  EXPECT_EQ(s.Stat("d1").status().code(), Code::kNotFound);

  // Exchange swaps a file and a directory, contents and all.
  ObjectId file = s.Stat("f1")->id;
  ObjectId dir = s.Stat("d2")->id;
  const bool atomic_exchange = !TypeParam::kRemoteLike;
  Exchange(s, atomic_exchange, "f1", "d2");
  EXPECT_EQ(s.Stat("f1")->type, ObjectType::kDirectory);
  EXPECT_EQ(Hex(s.Stat("f1")->id), Hex(dir));
  EXPECT_EQ(s.Stat("d2")->type, ObjectType::kFile);
  EXPECT_EQ(Hex(s.Stat("d2")->id), Hex(file));
  EXPECT_EQ(AsChars(*s.ReadSmall("f1/x", 10)), "x");
  EXPECT_EQ(AsChars(*s.ReadSmall("d2", 10)), "again");
  // Exchange across directories.
  Exchange(s, atomic_exchange, "f2", "f1/x");
  EXPECT_EQ(AsChars(*s.ReadSmall("f1/x", 10)), "one");
  EXPECT_EQ(AsChars(*s.ReadSmall("f2", 10)), "x");

  // Missing source or, for an exchange, missing target.
  EXPECT_EQ(s.Rename("missing", "f2", RenameMode::kReplace).code(), Code::kNotFound);
  EXPECT_EQ(s.Rename("f2", "missing", RenameMode::kExchange).code(),
            atomic_exchange ? Code::kNotFound : Code::kUnsupported);
  EXPECT_EQ(s.Rename("f2", "nodir/f2", RenameMode::kReplace).code(), Code::kNotFound);

  // A directory cannot move into its own subtree, by any mode.
  ASSERT_TRUE(s.MakeDir("f1/sub", 0700).ok());
  EXPECT_EQ(s.Rename("f1", "f1/inner", RenameMode::kNoReplace).code(), Code::kInvalidArgument);
  EXPECT_EQ(s.Rename("f1", "f1/sub/deeper", RenameMode::kReplace).code(), Code::kInvalidArgument);
  EXPECT_EQ(s.Rename("f1", "f1/sub", RenameMode::kExchange).code(),
            atomic_exchange ? Code::kInvalidArgument : Code::kUnsupported);
  // Nor can an ancestor be replaced by something below it.
  EXPECT_FALSE(s.Rename("f1/sub", "f1", RenameMode::kReplace).ok());
  EXPECT_EQ(s.Stat("f1/sub")->type, ObjectType::kDirectory);

  // A name onto itself, and onto another name of the same object, change nothing.
  ASSERT_TRUE(s.Rename("f2", "f2", RenameMode::kReplace).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("f2", 10)), "x");
  if (s.capabilities().hard_links) {
    ASSERT_TRUE(s.Link("f2", "f1/hard").ok());
    ASSERT_TRUE(s.Rename("f2", "f1/hard", RenameMode::kReplace).ok());
    EXPECT_TRUE(s.Stat("f2").ok());
    EXPECT_TRUE(s.Stat("f1/hard").ok());
    EXPECT_EQ(s.Stat("f2")->nlink, 2u);
  }
}

TYPED_TEST_P(StoreConformanceTest, Symlinks) {
  Store& s = *this->store_;
  if (!s.capabilities().symlinks) GTEST_SKIP() << "the store has no symlinks";
  const std::string target = "../some/target";
  ASSERT_TRUE(s.Symlink(target, "l").ok());
  EXPECT_EQ(*s.ReadLink("l"), target);
  auto info = s.Stat("l");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->type, ObjectType::kSymlink);
  EXPECT_EQ(info->size, target.size());
  EXPECT_EQ(s.Symlink("other", "l").code(), Code::kAlreadyExists);
  EXPECT_EQ(*s.ReadLink("l"), target);

  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("data")).ok());
  EXPECT_EQ(s.ReadLink("f").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.ReadLink("missing").status().code(), Code::kNotFound);
  // A symlink is never followed, whatever it points to.
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  ASSERT_TRUE(s.WriteAtomic("d/x", AsBytes("x")).ok());
  ASSERT_TRUE(s.Symlink("d", "ld").ok());
  EXPECT_FALSE(s.List("ld").ok());
  EXPECT_FALSE(s.Stat("ld/x").ok());
  EXPECT_FALSE(s.ReadSmall("ld/x", 10).ok());
  ASSERT_TRUE(s.Symlink("f", "lf").ok());
  EXPECT_FALSE(s.Open("lf", OpenOptions{}).ok());
  EXPECT_FALSE(s.ReadSmall("lf", 10).ok());

  ASSERT_TRUE(s.Remove("l").ok());
  EXPECT_EQ(s.Stat("l").status().code(), Code::kNotFound);
  EXPECT_EQ(AsChars(*s.ReadSmall("f", 10)), "data");
}

TYPED_TEST_P(StoreConformanceTest, HardLinks) {
  Store& s = *this->store_;
  if (!s.capabilities().hard_links) GTEST_SKIP() << "the store has no hard links";
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("data")).ok());
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  ASSERT_TRUE(s.Link("f", "d/g").ok());
  EXPECT_EQ(s.Stat("f")->nlink, 2u);
  EXPECT_EQ(s.Stat("d/g")->nlink, 2u);
  {
    auto g = s.Open("d/g", OpenOptions{.write = true});
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE((*g)->WriteAt(0, AsBytes("DA")).ok());
  }
  EXPECT_EQ(AsChars(*s.ReadSmall("f", 10)), "DAta");

  EXPECT_EQ(s.Link("f", "d/g").code(), Code::kAlreadyExists);
  EXPECT_EQ(s.Link("missing", "x").code(), Code::kNotFound);
  EXPECT_EQ(s.Link("d", "dl").code(), Code::kPermissionDenied);
  EXPECT_EQ(s.Link("f", "nodir/x").code(), Code::kNotFound);

  ASSERT_TRUE(s.Remove("f").ok());
  EXPECT_EQ(s.Stat("d/g")->nlink, 1u);
  EXPECT_EQ(AsChars(*s.ReadSmall("d/g", 10)), "DAta");

  if (s.capabilities().symlinks) {
    // link(2) links a symlink itself, not what it points to.
    ASSERT_TRUE(s.Symlink("d/g", "s").ok());
    ASSERT_TRUE(s.Link("s", "s2").ok());
    EXPECT_EQ(s.Stat("s2")->type, ObjectType::kSymlink);
    EXPECT_EQ(s.Stat("s2")->nlink, 2u);
    EXPECT_EQ(*s.ReadLink("s2"), "d/g");
  }
}

TYPED_TEST_P(StoreConformanceTest, Xattrs) {
  Store& s = *this->store_;
  if (!s.capabilities().xattrs) GTEST_SKIP() << "the store has no xattrs";
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("x")).ok());
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  Status set = s.SetXattr("f", "user.a", AsBytes("1"), 0);
  if (set.code() == Code::kUnsupported) GTEST_SKIP() << "no user xattrs under this store";
  ASSERT_TRUE(set.ok()) << set.ToString();
  EXPECT_EQ(AsChars(*s.GetXattr("f", "user.a")), "1");

  Status create = s.SetXattr("f", "user.a", AsBytes("2"), XATTR_CREATE);
  EXPECT_EQ(create.code(), Code::kAlreadyExists);
  Status replace = s.SetXattr("f", "user.b", AsBytes("3"), XATTR_REPLACE);
  EXPECT_EQ(replace.code(), Code::kNotFound);
  EXPECT_EQ(replace.sys_errno(), ENODATA);
  ASSERT_TRUE(s.SetXattr("f", "user.a", AsBytes("2"), XATTR_REPLACE).ok());
  EXPECT_EQ(AsChars(*s.GetXattr("f", "user.a")), "2");
  ASSERT_TRUE(s.SetXattr("f", "user.b", AsBytes("3"), XATTR_CREATE).ok());
  const Bytes binary = {0, 1, 0, 255};
  ASSERT_TRUE(s.SetXattr("f", "user.binary", binary, 0).ok());
  EXPECT_EQ(*s.GetXattr("f", "user.binary"), binary);
  ASSERT_TRUE(s.SetXattr("f", "user.empty", ByteSpan(), 0).ok());
  EXPECT_TRUE(s.GetXattr("f", "user.empty")->empty());

  auto names = s.ListXattrs("f");
  ASSERT_TRUE(names.ok());
  std::vector<std::string> user;
  for (const std::string& n : *names) {
    if (n.starts_with("user.")) user.push_back(n);  // the filesystem may add security.*
  }
  std::sort(user.begin(), user.end());
  EXPECT_EQ(user, (std::vector<std::string>{"user.a", "user.b", "user.binary", "user.empty"}));

  auto missing = s.GetXattr("f", "user.missing");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().sys_errno(), ENODATA);
  ASSERT_TRUE(s.RemoveXattr("f", "user.a").ok());
  Status again = s.RemoveXattr("f", "user.a");
  EXPECT_EQ(again.code(), Code::kNotFound);
  EXPECT_EQ(again.sys_errno(), ENODATA);
  EXPECT_EQ(s.GetXattr("f", "user.a").status().code(), Code::kNotFound);

  // Directories carry them too; a missing object is not found.
  ASSERT_TRUE(s.SetXattr("d", "user.dir", AsBytes("v"), 0).ok());
  EXPECT_EQ(AsChars(*s.GetXattr("d", "user.dir")), "v");
  EXPECT_EQ(s.GetXattr("nothing", "user.a").status().code(), Code::kNotFound);
  EXPECT_EQ(s.SetXattr("nothing", "user.a", AsBytes("v"), 0).code(), Code::kNotFound);
  if (s.capabilities().symlinks) {
    ASSERT_TRUE(s.Symlink("f", "l").ok());
    EXPECT_EQ(s.SetXattr("l", "user.a", AsBytes("v"), 0).code(), Code::kUnsupported);
    EXPECT_EQ(s.GetXattr("l", "user.a").status().code(), Code::kUnsupported);
  }
}

TYPED_TEST_P(StoreConformanceTest, SetTimesHonoursOmitAndNow) {
  Store& s = *this->store_;
  if (!s.capabilities().posix_attributes) GTEST_SKIP() << "the store keeps no times";
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("x")).ok());
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  struct timespec both[2] = {{1000, 5}, {2000, 7}};
  ASSERT_TRUE(s.SetTimes("f", both).ok());
  auto info = s.Stat("f");
  EXPECT_TRUE(SameTime(info->atime, {1000, 5}));
  EXPECT_TRUE(SameTime(info->mtime, {2000, 7}));

  struct timespec mtime_only[2] = {{0, UTIME_OMIT}, {3000, 0}};
  ASSERT_TRUE(s.SetTimes("f", mtime_only).ok());
  info = s.Stat("f");
  EXPECT_TRUE(SameTime(info->atime, {1000, 5}));
  EXPECT_TRUE(SameTime(info->mtime, {3000, 0}));

  struct timespec atime_only[2] = {{4000, 0}, {0, UTIME_OMIT}};
  ASSERT_TRUE(s.SetTimes("f", atime_only).ok());
  info = s.Stat("f");
  EXPECT_TRUE(SameTime(info->atime, {4000, 0}));
  EXPECT_TRUE(SameTime(info->mtime, {3000, 0}));

  struct timespec neither[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  ASSERT_TRUE(s.SetTimes("f", neither).ok());
  auto unchanged = s.Stat("f");
  EXPECT_TRUE(SameTime(unchanged->atime, {4000, 0}));
  EXPECT_TRUE(SameTime(unchanged->mtime, {3000, 0}));

  time_t start = time(nullptr);
  struct timespec atime_now[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  ASSERT_TRUE(s.SetTimes("f", atime_now).ok());
  info = s.Stat("f");
  EXPECT_GE(info->atime.tv_sec, start - 1);
  EXPECT_LE(info->atime.tv_sec, time(nullptr) + 1);
  EXPECT_TRUE(SameTime(info->mtime, {3000, 0}));
  EXPECT_GE(info->ctime.tv_sec, start - 1);

  // Through an open file, and on a directory.
  auto f = s.Open("f", OpenOptions{.write = true});
  ASSERT_TRUE(f.ok());
  struct timespec file_mtime[2] = {{0, UTIME_OMIT}, {5000, 0}};
  ASSERT_TRUE((*f)->SetTimes(file_mtime).ok());
  EXPECT_TRUE(SameTime((*f)->Stat()->mtime, {5000, 0}));
  EXPECT_EQ((*f)->Stat()->atime.tv_sec, info->atime.tv_sec);
  ASSERT_TRUE(s.SetTimes("d", both).ok());
  EXPECT_TRUE(SameTime(s.Stat("d")->mtime, {2000, 7}));
  EXPECT_EQ(s.SetTimes("missing", both).code(), Code::kNotFound);
}

TYPED_TEST_P(StoreConformanceTest, SetOwnerKeepsWhatIsMinusOne) {
  Store& s = *this->store_;
  if (!s.capabilities().posix_attributes) GTEST_SKIP() << "the store keeps no owners";
  constexpr uid_t kKeepUid = static_cast<uid_t>(-1);
  constexpr gid_t kKeepGid = static_cast<gid_t>(-1);
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("x")).ok());
  auto before = s.Stat("f");
  ASSERT_TRUE(s.SetOwner("f", kKeepUid, kKeepGid).ok());
  EXPECT_EQ(s.Stat("f")->uid, before->uid);
  EXPECT_EQ(s.Stat("f")->gid, before->gid);
  ASSERT_TRUE(s.SetOwner("f", geteuid(), kKeepGid).ok());
  EXPECT_EQ(s.Stat("f")->gid, before->gid);
  ASSERT_TRUE(s.SetOwner("f", kKeepUid, getegid()).ok());
  EXPECT_EQ(s.Stat("f")->uid, before->uid);
  if (geteuid() != 0) {
    EXPECT_EQ(s.SetOwner("f", geteuid() + 1, kKeepGid).code(), Code::kPermissionDenied);
    return;
  }
  ASSERT_TRUE(s.SetOwner("f", 1234, kKeepGid).ok());
  EXPECT_EQ(s.Stat("f")->uid, 1234u);
  EXPECT_EQ(s.Stat("f")->gid, before->gid);
  ASSERT_TRUE(s.SetOwner("f", kKeepUid, 5678).ok());
  EXPECT_EQ(s.Stat("f")->uid, 1234u);
  EXPECT_EQ(s.Stat("f")->gid, 5678u);
  auto f = s.Open("f", OpenOptions{});
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->SetOwner(kKeepUid, 4321).ok());
  EXPECT_EQ((*f)->Stat()->uid, 1234u);
  EXPECT_EQ((*f)->Stat()->gid, 4321u);
}

TYPED_TEST_P(StoreConformanceTest, ErrorCodesOfCommonMistakes) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("x")).ok());
  ASSERT_TRUE(s.MakeDir("d", 0700).ok());
  EXPECT_EQ(s.Stat("missing").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Stat("f/x").status().code(), Code::kNotADirectory);
  EXPECT_EQ(s.List("f").status().code(), Code::kNotADirectory);
  EXPECT_EQ(s.List("missing").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Open("d", OpenOptions{}).status().code(), Code::kIsADirectory);
  EXPECT_EQ(s.Open("missing", OpenOptions{}).status().code(), Code::kNotFound);
  EXPECT_EQ(s.Open("d", kCreateNew).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(s.ReadSmall("d", 10).status().code(), Code::kIsADirectory);
  EXPECT_EQ(s.MakeDir("missing/x", 0700).code(), Code::kNotFound);
  EXPECT_EQ(s.MakeDir("f", 0700).code(), Code::kAlreadyExists);
  EXPECT_EQ(s.Remove("d").code(), Code::kIsADirectory);
  EXPECT_EQ(s.Remove("missing").code(), Code::kNotFound);
  EXPECT_EQ(s.RemoveDir("f").code(), Code::kNotADirectory);
  EXPECT_EQ(s.RemoveDir("missing").code(), Code::kNotFound);
  EXPECT_EQ(s.WriteAtomic("d", AsBytes("x")).code(), Code::kIsADirectory);
  EXPECT_EQ(s.WriteAtomic("f/x", AsBytes("x")).code(), Code::kNotADirectory);
  EXPECT_EQ(s.Stat(std::string(256, 'n')).status().code(), Code::kNameTooLong);
  // The root cannot be removed or replaced.
  EXPECT_FALSE(s.RemoveDir("").ok());
  EXPECT_FALSE(s.WriteAtomic("", AsBytes("x")).ok());
  // A file opened for reading refuses writes.
  auto r = s.Open("f", OpenOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)->WriteAt(0, AsBytes("y")).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("f", 10)), "x");
}

TYPED_TEST_P(StoreConformanceTest, ConcurrentRangedReadsAndWrites) {
  Store& s = *this->store_;
  auto f = s.Open("f", kCreateNew);
  ASSERT_TRUE(f.ok());
  auto reader = s.Open("f", OpenOptions{});
  ASSERT_TRUE(reader.ok());
  constexpr int kThreads = 4;
  constexpr int kPieces = 64;
  constexpr size_t kPiece = 4096;
  // Thread t owns pieces t, t + kThreads, ...: the ranges interleave, so the file grows
  // under several writers at once.
  auto pattern = [](int piece) {
    Bytes bytes(kPiece);
    for (size_t i = 0; i < kPiece; ++i) bytes[i] = static_cast<uint8_t>(piece * 31 + i * 7);
    return bytes;
  };
  // Without partial writes, the reader sees the pieces only once they are committed.
  const bool in_place = s.capabilities().partial_writes;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      StoreFile& writer = **f;
      StoreFile& other = **reader;
      Bytes back(kPiece);
      for (int i = 0; i < kPieces; ++i) {
        int piece = i * kThreads + t;
        Bytes bytes = pattern(piece);
        uint64_t offset = static_cast<uint64_t>(piece) * kPiece;
        if (!writer.WriteAt(offset, bytes).ok()) ++failures;
        // Read back through both files while the others keep writing.
        auto n = writer.ReadAt(offset, back);
        if (!n.ok() || *n != kPiece || back != bytes) ++failures;
        if (!in_place) continue;
        n = other.ReadAt(offset, back);
        if (!n.ok() || *n != kPiece || back != bytes) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  CommitIfStaged(s, **f);
  EXPECT_EQ(*(*f)->Size(), kThreads * kPieces * kPiece);
  Bytes back(kPiece);
  for (int piece = 0; piece < kThreads * kPieces; ++piece) {
    ASSERT_EQ(*(*reader)->ReadAt(static_cast<uint64_t>(piece) * kPiece, back), kPiece);
    ASSERT_EQ(back, pattern(piece)) << "piece " << piece;
  }
}

// The writer contract: Commit(eTag) is If-Match. It commits when the object is still
// the version the caller read and refuses with kChangedElsewhere when someone else
// changed it, with or without writes of its own (a store that cannot hold writes back
// has landed them anyway; one that can, has committed nothing).
TYPED_TEST_P(StoreConformanceTest, CommitIsConditionalOnTheEtag) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("one")).ok());
  const std::string read_etag = s.Stat("f")->etag;
  auto writer = s.Open("f", OpenOptions{.write = true});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("two")).ok());
  auto committed = (*writer)->Commit(read_etag);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(committed->etag, s.Stat("f")->etag) << "Commit describes the version it made";
  EXPECT_EQ(committed->size, 3u);
  EXPECT_EQ(AsChars(*s.ReadSmall("f", 100)), "two");

  const std::string stale = s.Stat("f")->etag;
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("three")).ok());  // someone else
  const std::string current = s.Stat("f")->etag;
  ASSERT_NE(current, stale);
  auto second = s.Open("f", OpenOptions{.write = true});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->Commit(stale).status().code(), Code::kChangedElsewhere)
      << "with nothing written the condition is still checked";
  ASSERT_TRUE((*second)->WriteAt(0, AsBytes("four!")).ok());
  EXPECT_EQ((*second)->Commit(stale).status().code(), Code::kChangedElsewhere);
  if (!s.capabilities().partial_writes) {
    EXPECT_EQ(AsChars(*s.ReadSmall("f", 100)), "three") << "a refused commit changes nothing";
  }
  ASSERT_TRUE((*second)->Commit(current).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("f", 100)), "four!");
}

TYPED_TEST_P(StoreConformanceTest, AbortDropsUncommittedWritesWhereTheStoreCan) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("keep")).ok());
  auto writer = s.Open("f", OpenOptions{.write = true});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("lost!")).ok());
  const Status aborted = (*writer)->Abort();
  if (s.capabilities().partial_writes) {
    EXPECT_EQ(aborted.code(), Code::kUnsupported) << "writes in place cannot be taken back";
    return;
  }
  ASSERT_TRUE(aborted.ok()) << aborted.ToString();
  Bytes out(10);
  EXPECT_EQ(*(*writer)->ReadAt(0, out), 4u);
  EXPECT_EQ(AsChars(ByteSpan(out.data(), 4)), "keep");
  ASSERT_TRUE((*writer)->Commit({}).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("f", 100)), "keep");
  ASSERT_TRUE((*writer)->WriteAt(4, AsBytes("s")).ok());
  ASSERT_TRUE((*writer)->Commit({}).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("f", 100)), "keeps") << "the writer still works after Abort";
}

TYPED_TEST_P(StoreConformanceTest, TruncateOnOpenStartsEmptyWithoutADownload) {
  Store& s = *this->store_;
  ASSERT_TRUE(s.WriteAtomic("f", AsBytes("old content")).ok());
  auto* remote = dynamic_cast<RemoteLikeStore*>(&s);
  if (remote != nullptr) remote->controls()->ResetCalls();
  auto writer = s.Open("f", OpenOptions{.write = true, .truncate = true});
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(*(*writer)->Size(), 0u);
  Bytes out(20);
  EXPECT_EQ(*(*writer)->ReadAt(0, out), 0u);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("new")).ok());
  ASSERT_TRUE((*writer)->Commit({}).ok());
  EXPECT_EQ(AsChars(*s.ReadSmall("f", 100)), "new");
  if (remote != nullptr) {
    EXPECT_EQ(remote->controls()->Calls(RemoteCall::kDownload), 0u);
  }

  // Opened with truncate and committed with nothing written: the object is empty.
  auto emptied = s.Open("f", OpenOptions{.write = true, .truncate = true});
  ASSERT_TRUE(emptied.ok());
  ASSERT_TRUE((*emptied)->Commit({}).ok());
  EXPECT_EQ(s.Stat("f")->size, 0u);
}

// Each capability is checked against what the store does.
TYPED_TEST_P(StoreConformanceTest, CapabilitiesSayWhatTheStoreDoes) {
  Store& s = *this->store_;
  const StoreCapabilities caps = s.capabilities();
  auto f = s.Open("f", kCreateNew);
  ASSERT_TRUE(f.ok());
  const Status reserved = (*f)->Reserve(0, 4096);
  EXPECT_EQ(reserved.ok(), caps.reserve) << reserved.ToString();
  if (!caps.reserve) {
    EXPECT_EQ(reserved.code(), Code::kUnsupported);
  }
  if (!caps.handle_attributes) {
    EXPECT_FALSE((*f)->SetMode(0600).ok());
  }
  ASSERT_TRUE((*f)->Commit({}).ok());
  f->reset();

  ASSERT_TRUE(s.WriteAtomic("a", AsBytes("A")).ok());
  ASSERT_TRUE(s.WriteAtomic("b", AsBytes("B")).ok());
  const Status exchanged = s.Rename("a", "b", RenameMode::kExchange);
  EXPECT_EQ(exchanged.ok(), caps.atomic_exchange) << exchanged.ToString();
  if (caps.atomic_exchange) {
    EXPECT_EQ(AsChars(*s.ReadSmall("a", 10)), "B");
  } else {
    EXPECT_EQ(exchanged.code(), Code::kUnsupported);
  }

  ASSERT_TRUE(s.WriteAtomic("MixedCase", AsBytes("x")).ok());
  EXPECT_EQ(s.Stat("mixedcase").ok(), caps.case_insensitive);

  if (caps.max_path_length == 0) return;
  // A path of exactly the limit is accepted, one character more refused.
  const size_t limit = caps.max_path_length;
  const std::string dir(limit / 2, 'd');
  ASSERT_TRUE(s.MakeDir(dir, 0755).ok());
  const std::string fits = dir + "/" + std::string(limit - dir.size() - 1, 'f');
  ASSERT_EQ(fits.size(), limit);
  EXPECT_TRUE(s.WriteAtomic(fits, AsBytes("x")).ok());
  EXPECT_EQ(s.WriteAtomic(fits + "g", AsBytes("x")).code(), Code::kNameTooLong);
}

REGISTER_TYPED_TEST_SUITE_P(StoreConformanceTest, WriteAtomicThenReadSmall, RangedReadsAndWrites,
                            DirectoriesRenameAndRemove, MalformedPathsAreRefused,
                            SpecialFilesMakeNode, DeepPathsLongerThanPathMax, ObjectIdentity,
                            ListingsCarryInfoForEveryEntry, NewObjectsBelongToTheCaller,
                            EtagChangesWithContentAndMetadataOnly, OpenFileOutlivesItsLastName,
                            RenameMatrix, Symlinks, HardLinks, Xattrs, SetTimesHonoursOmitAndNow,
                            SetOwnerKeepsWhatIsMinusOne, ErrorCodesOfCommonMistakes,
                            ConcurrentRangedReadsAndWrites, CommitIsConditionalOnTheEtag,
                            AbortDropsUncommittedWritesWhereTheStoreCan,
                            TruncateOnOpenStartsEmptyWithoutADownload,
                            CapabilitiesSayWhatTheStoreDoes);

using StoreFactories = ::testing::Types<LocalStoreFactory, MemoryStoreFactory,
                                        RemoteLikeStoreFactory, CachingRemoteLikeStoreFactory>;
INSTANTIATE_TYPED_TEST_SUITE_P(All, StoreConformanceTest, StoreFactories);

TEST(LocalStoreSpecificTest, SymlinksInsideTheVaultAreNeverFollowed) {
  testing::TempDir dir;
  ASSERT_EQ(symlink("/etc", (dir.path() + "/escape").c_str()), 0);
  auto store = OpenLocalStore(dir.path());
  EXPECT_FALSE((*store)->ReadSmall("escape/hostname", 1000).ok());
  EXPECT_FALSE((*store)->List("escape").ok());
}

// MemoryStore answers every call as LocalStore does, errors included: one random
// sequence of calls over a small set of names runs against both, and every answer
// (Code, sys_errno and value) is compared.
TEST(MemoryStoreSpecificTest, AnswersEveryCallLikeLocalStore) {
  LocalStoreFactory local_factory;
  std::unique_ptr<Store> local = local_factory.Make();
  std::unique_ptr<Store> memory = NewMemoryStore();
  const std::vector<std::string> paths = {"",    "a",   "b",     "c",   "a/x",
                                          "a/y", "b/x", "a/x/z", "c/x", std::string(256, 'n')};
  const std::vector<std::string> xattr_names = {"user.a",   "user.b", "trusted.t", "security.s",
                                                "system.x", "bogus",  "user.",     ""};
  std::mt19937 rng(20240611);
  auto pick = [&](const std::vector<std::string>& from) { return from[rng() % from.size()]; };
  // Any mode bits, but the owner keeps full access: MemoryStore does not model
  // permission bits (EACCES), which only a caller other than root meets.
  auto RandomMode = [&rng] { return static_cast<uint32_t>(rng() % 010000) | 0700; };
  auto describe = [](const Status& st) {
    return std::string(CodeName(st.code())) + "/" + std::to_string(st.sys_errno());
  };
  auto info_text = [](const ObjectInfo& i) {
    return std::to_string(static_cast<int>(i.type)) + " size " + std::to_string(i.size) + " mode " +
           std::to_string(i.mode) + " nlink " + std::to_string(i.nlink) + " uid " +
           std::to_string(i.uid) + " gid " + std::to_string(i.gid);
  };
  for (int step = 0; step < 20000; ++step) {
    int op = static_cast<int>(rng() % 22);
    std::string p = pick(paths);
    std::string q = pick(paths);
    std::string what = "step " + std::to_string(step) + " op " + std::to_string(op) + " '" +
                       p.substr(0, 8) + "' '" + q.substr(0, 8) + "'";
    std::string l;
    std::string m;
    switch (op) {
      case 0: {
        std::string data(rng() % 10, 'd');
        bool exclusive = rng() % 2;
        l = describe(local->WriteAtomic(p, AsBytes(data), exclusive));
        m = describe(memory->WriteAtomic(p, AsBytes(data), exclusive));
        break;
      }
      case 1: {
        OpenOptions options{
            .write = true, .create = true, .exclusive = rng() % 2 == 0, .mode = RandomMode()};
        uint64_t offset = rng() % 8;
        auto lf = local->Open(p, options);
        auto mf = memory->Open(p, options);
        l = describe(lf.status());
        m = describe(mf.status());
        if (lf.ok() && mf.ok()) {
          uint64_t size = rng() % 8;
          uint32_t mode = RandomMode();
          for (bool is_local : {true, false}) {
            StoreFile& file = is_local ? **lf : **mf;
            std::string& out = is_local ? l : m;
            out += describe(file.WriteAt(offset, AsBytes("w")));
            out += describe(file.Truncate(size));
            out += describe(file.SetMode(mode));
            auto info = file.Stat();
            out += describe(info.status()) + (info.ok() ? info_text(*info) : "");
          }
        }
        break;
      }
      case 2: {
        uint32_t mode = RandomMode();
        l = describe(local->MakeDir(p, mode));
        m = describe(memory->MakeDir(p, mode));
        break;
      }
      case 3:
        l = describe(local->RemoveDir(p));
        m = describe(memory->RemoveDir(p));
        break;
      case 4:
        l = describe(local->Remove(p));
        m = describe(memory->Remove(p));
        break;
      case 5: {
        RenameMode mode = static_cast<RenameMode>(rng() % 3);
        l = describe(local->Rename(p, q, mode));
        m = describe(memory->Rename(p, q, mode));
        break;
      }
      case 6:
        l = describe(local->Symlink("t", p));
        m = describe(memory->Symlink("t", p));
        break;
      case 7: {
        auto lr = local->ReadLink(p);
        auto mr = memory->ReadLink(p);
        l = describe(lr.status()) + (lr.ok() ? *lr : "");
        m = describe(mr.status()) + (mr.ok() ? *mr : "");
        break;
      }
      case 8:
        l = describe(local->Link(p, q));
        m = describe(memory->Link(p, q));
        break;
      case 9: {
        const ObjectType kTypes[] = {ObjectType::kFifo, ObjectType::kSocket,
                                     ObjectType::kCharDevice, ObjectType::kBlockDevice,
                                     ObjectType::kFile};
        ObjectType type = kTypes[rng() % 5];
        uint32_t mode = RandomMode();
        l = describe(local->MakeNode(p, type, mode, makedev(1, 3)));
        m = describe(memory->MakeNode(p, type, mode, makedev(1, 3)));
        break;
      }
      case 10: {
        uint32_t mode = RandomMode();
        l = describe(local->SetMode(p, mode));
        m = describe(memory->SetMode(p, mode));
        break;
      }
      case 11: {
        auto li = local->Stat(p);
        auto mi = memory->Stat(p);
        l = describe(li.status()) + (li.ok() ? info_text(*li) : "");
        m = describe(mi.status()) + (mi.ok() ? info_text(*mi) : "");
        break;
      }
      case 12: {
        auto ll = local->List(p);
        auto ml = memory->List(p);
        auto text = [&](const Result<std::vector<DirEntry>>& list) {
          std::string out = describe(list.status());
          if (!list.ok()) return out;
          std::vector<std::string> lines;
          for (const DirEntry& e : *list) {
            lines.push_back(e.name.substr(0, 8) + ":" + (e.info ? info_text(*e.info) : "none"));
          }
          std::sort(lines.begin(), lines.end());
          for (const std::string& line : lines) out += " " + line;
          return out;
        };
        l = text(ll);
        m = text(ml);
        break;
      }
      case 13: {
        size_t max = rng() % 12;
        auto lr = local->ReadSmall(p, max);
        auto mr = memory->ReadSmall(p, max);
        l = describe(lr.status()) + (lr.ok() ? std::string(AsChars(*lr)) : "");
        m = describe(mr.status()) + (mr.ok() ? std::string(AsChars(*mr)) : "");
        break;
      }
      case 14: {
        std::string name = pick(xattr_names);
        int flags = static_cast<int>(rng() % 4);
        l = describe(local->SetXattr(p, name, AsBytes("v"), flags));
        m = describe(memory->SetXattr(p, name, AsBytes("v"), flags));
        break;
      }
      case 15: {
        std::string name = pick(xattr_names);
        auto lr = local->GetXattr(p, name);
        auto mr = memory->GetXattr(p, name);
        l = describe(lr.status()) + (lr.ok() ? std::string(AsChars(*lr)) : "");
        m = describe(mr.status()) + (mr.ok() ? std::string(AsChars(*mr)) : "");
        break;
      }
      case 16: {
        std::string name = pick(xattr_names);
        l = describe(local->RemoveXattr(p, name));
        m = describe(memory->RemoveXattr(p, name));
        break;
      }
      case 17: {
        auto text = [&](Result<std::vector<std::string>> names) {
          std::string out = describe(names.status());
          if (!names.ok()) return out;
          std::sort(names->begin(), names->end());
          for (const std::string& n : *names) out += " " + n;
          return out;
        };
        l = text(local->ListXattrs(p));
        m = text(memory->ListXattrs(p));
        break;
      }
      case 18: {
        const long kNsecs[] = {0, 5, UTIME_NOW, UTIME_OMIT, 1000000000L};
        struct timespec times[2] = {{1000, kNsecs[rng() % 5]}, {2000, kNsecs[rng() % 5]}};
        l = describe(local->SetTimes(p, times));
        m = describe(memory->SetTimes(p, times));
        break;
      }
      case 19: {
        const uid_t kIds[] = {static_cast<uid_t>(-1), 0, 1000};
        uid_t uid = kIds[rng() % 3];
        gid_t gid = kIds[rng() % 3];
        l = describe(local->SetOwner(p, uid, gid));
        m = describe(memory->SetOwner(p, uid, gid));
        break;
      }
      case 20: {
        auto lf = local->Open(p, OpenOptions{});
        auto mf = memory->Open(p, OpenOptions{});
        l = describe(lf.status());
        m = describe(mf.status());
        if (lf.ok() && mf.ok()) {
          Bytes lb(16);
          Bytes mb(16);
          auto ln = (*lf)->ReadAt(0, lb);
          auto mn = (*mf)->ReadAt(0, mb);
          lb.resize(ln.ok() ? *ln : 0);
          mb.resize(mn.ok() ? *mn : 0);
          l += std::string(AsChars(lb)) + describe((*lf)->WriteAt(0, AsBytes("x"))) +
               describe((*lf)->Truncate(0)) + describe((*lf)->Reserve(0, 10));
          m += std::string(AsChars(mb)) + describe((*mf)->WriteAt(0, AsBytes("x"))) +
               describe((*mf)->Truncate(0)) + describe((*mf)->Reserve(0, 10));
        }
        break;
      }
      default:
        l = describe(local->SyncDir(p));
        m = describe(memory->SyncDir(p));
        break;
    }
    ASSERT_EQ(l, m) << what;
  }
}

TEST(MemoryStoreSpecificTest, ObjectIdsAreNeverReused) {
  auto s = NewMemoryStore();
  ASSERT_TRUE(s->WriteAtomic("f", AsBytes("x")).ok());
  ObjectInfo first = *s->Stat("f");
  ASSERT_TRUE(s->Remove("f").ok());
  ASSERT_TRUE(s->WriteAtomic("f", AsBytes("x")).ok());
  ObjectInfo second = *s->Stat("f");
  EXPECT_NE(Hex(first.id), Hex(second.id));
  EXPECT_NE(first.inode_hint, second.inode_hint);
  EXPECT_NE(first.etag, second.etag);
  // Two stores never hand out one id either.
  auto other = NewMemoryStore();
  ASSERT_TRUE(other->WriteAtomic("f", AsBytes("x")).ok());
  EXPECT_NE(Hex(other->Stat("f")->id), Hex(second.id));
}

TEST(MemoryStoreSpecificTest, AnOpenFileOutlivesTheStore) {
  auto s = NewMemoryStore();
  auto f = s->Open("f", kCreateNew);
  ASSERT_TRUE(f.ok());
  s.reset();
  ASSERT_TRUE((*f)->WriteAt(0, AsBytes("still here")).ok());
  Bytes out(10);
  EXPECT_EQ(*(*f)->ReadAt(0, out), 10u);
  EXPECT_EQ((*f)->Stat()->nlink, 1u);
}

TEST(MemoryStoreSpecificTest, ContentIsSparse) {
  auto s = NewMemoryStore();
  auto f = s->Open("f", kCreateNew);
  ASSERT_TRUE(f.ok());
  // A terabyte-sized hole costs nothing, and reads as zeros.
  constexpr uint64_t kFar = uint64_t{1} << 40;
  ASSERT_TRUE((*f)->WriteAt(kFar, AsBytes("end")).ok());
  EXPECT_EQ(*(*f)->Size(), kFar + 3);
  Bytes out(8, 0xff);
  EXPECT_EQ(*(*f)->ReadAt(kFar - 5, out), 8u);
  EXPECT_EQ(out, (Bytes{0, 0, 0, 0, 0, 'e', 'n', 'd'}));
  // Cut in the middle of a chunk and regrown: the cut bytes read as zeros.
  ASSERT_TRUE((*f)->WriteAt(0, AsBytes("0123456789")).ok());
  ASSERT_TRUE((*f)->Truncate(4).ok());
  ASSERT_TRUE((*f)->Truncate(10).ok());
  Bytes head(10);
  EXPECT_EQ(*(*f)->ReadAt(0, head), 10u);
  EXPECT_EQ(head, (Bytes{'0', '1', '2', '3', 0, 0, 0, 0, 0, 0}));
  auto space = s->Space();
  ASSERT_TRUE(space.ok());
  EXPECT_GT(space->available_blocks, space->total_blocks / 2);
  // Past ext4's largest file, as LocalStore would refuse it.
  EXPECT_FALSE((*f)->WriteAt(uint64_t{1} << 50, AsBytes("x")).ok());
}

}  // namespace
}  // namespace cadcanfs
