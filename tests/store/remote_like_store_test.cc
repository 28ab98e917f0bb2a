// RemoteLikeStore's own behaviour: what makes it OneDrive-like beyond the Store
// conformance suite (which it passes too, in store_conformance_test.cc).
#include "cadcanfs/store/remote_like_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cadcanfs/common/bytes.h"
#include "cadcanfs/store/memory_store.h"

namespace cadcanfs {
namespace {

using std::chrono::milliseconds;

constexpr OpenOptions kCreateNew{.write = true, .create = true, .exclusive = true};
constexpr OpenOptions kWrite{.write = true};

class RemoteLikeStoreTest : public ::testing::Test {
 protected:
  explicit RemoteLikeStoreTest(RemoteLikeOptions options = {})
      : store_(NewRemoteLikeStore(NewMemoryStore(), options)), controls_(store_->controls()) {}

  std::string Content(const std::string& path) {
    auto bytes = store_->ReadSmall(path, 1 << 20);
    if (bytes.ok()) return std::string(AsChars(*bytes));
    std::string error = "error ";
    return error.append(bytes.status().ToString());
  }
  uint64_t Calls(RemoteCall kind) { return controls_->Calls(kind); }

  std::unique_ptr<RemoteLikeStore> store_;
  std::shared_ptr<RemoteLikeControls> controls_;
};

// a + b, built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + string&&.
std::string Cat(std::string a, std::string_view b) { return a.append(b); }

std::vector<std::string> Names(const std::vector<DirEntry>& entries) {
  std::vector<std::string> names;
  for (const DirEntry& e : entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  return names;
}

TEST_F(RemoteLikeStoreTest, WritesBecomeVisibleOnlyAtTheCommit) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("old content")).ok());
  auto reader = store_->Open("f", OpenOptions{});
  auto writer = store_->Open("f", kWrite);
  ASSERT_TRUE(reader.ok() && writer.ok());
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("NEW")).ok());
  ASSERT_TRUE((*writer)->WriteAt(11, AsBytes(" and more")).ok());

  // The writer reads its own buffer; nobody else sees it yet.
  Bytes out(20);
  EXPECT_EQ(*(*writer)->ReadAt(0, out), 20u);
  EXPECT_EQ(AsChars(out), "NEW content and more");
  EXPECT_EQ(*(*writer)->Size(), 20u);
  EXPECT_EQ((*writer)->Stat()->size, 20u);
  EXPECT_EQ(Content("f"), "old content");
  EXPECT_EQ(store_->Stat("f")->size, 11u);
  EXPECT_EQ(*(*reader)->ReadAt(0, out), 11u);

  ASSERT_TRUE((*writer)->Commit({}).ok());
  EXPECT_EQ(Content("f"), "NEW content and more");
  EXPECT_EQ(store_->Stat("f")->size, 20u);
  EXPECT_EQ(*(*reader)->ReadAt(0, out), 20u);
  EXPECT_EQ(AsChars(out), "NEW content and more");
}

TEST_F(RemoteLikeStoreTest, WritesWithoutSyncAreLost) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("kept")).ok());
  {
    auto writer = store_->Open("f", kWrite);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("lost bytes")).ok());
    ASSERT_TRUE((*writer)->Truncate(2).ok());
  }
  EXPECT_EQ(Content("f"), "kept");
  // A new file is created empty at open; its unsynced bytes are lost too.
  {
    auto writer = store_->Open("new", kCreateNew);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("never uploaded")).ok());
    EXPECT_EQ(store_->Stat("new")->size, 0u);
  }
  EXPECT_EQ(Content("new"), "");
  EXPECT_EQ(Calls(RemoteCall::kCommit), 0u);
}

TEST_F(RemoteLikeStoreTest, AWriterDownloadsTheContentItStartsFromOnlyWhenNeeded) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("hello world")).ok());
  controls_->ResetCalls();
  {
    auto writer = store_->Open("f", kWrite);
    ASSERT_TRUE(writer.ok());
    EXPECT_EQ(*(*writer)->Size(), 11u);
    EXPECT_EQ(Calls(RemoteCall::kDownload), 0u);
    ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("J")).ok());
    ASSERT_TRUE((*writer)->WriteAt(6, AsBytes("W")).ok());
    EXPECT_EQ(Calls(RemoteCall::kDownload), 1u);
    ASSERT_TRUE((*writer)->Commit({}).ok());
  }
  EXPECT_EQ(Content("f"), "Jello World");
  EXPECT_EQ(Calls(RemoteCall::kOpenWrite), 1u);
  EXPECT_EQ(Calls(RemoteCall::kCommit), 1u);

  // Truncating to nothing first (O_TRUNC) needs none of the old content.
  controls_->ResetCalls();
  auto writer = store_->Open("f", kWrite);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Truncate(0).ok());
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("fresh")).ok());
  ASSERT_TRUE((*writer)->Commit({}).ok());
  EXPECT_EQ(Calls(RemoteCall::kDownload), 0u);
  EXPECT_EQ(Content("f"), "fresh");
  // A Sync with nothing new to upload costs nothing.
  ASSERT_TRUE((*writer)->Commit({}).ok());
  EXPECT_EQ(Calls(RemoteCall::kCommit), 1u);
}

TEST_F(RemoteLikeStoreTest, TheEtagChangesWithEveryCommitAndOnlyThen) {
  ASSERT_TRUE(store_->MakeDir("d", 0700).ok());
  auto writer = store_->Open("d/f", kCreateNew);
  ASSERT_TRUE(writer.ok());
  std::string e0 = store_->Stat("d/f")->etag;
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("one")).ok());
  EXPECT_EQ(store_->Stat("d/f")->etag, e0);
  ASSERT_TRUE((*writer)->Commit({}).ok());
  std::string e1 = store_->Stat("d/f")->etag;
  EXPECT_NE(e1, e0);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("two")).ok());
  ASSERT_TRUE((*writer)->Commit({}).ok());
  std::string e2 = store_->Stat("d/f")->etag;
  EXPECT_NE(e2, e1);

  // Reads, renames and times leave it alone.
  EXPECT_EQ(Content("d/f"), "two");
  ASSERT_TRUE(store_->Rename("d/f", "g", RenameMode::kNoReplace).ok());
  struct timespec times[2] = {{1000, 0}, {2000, 0}};
  ASSERT_TRUE(store_->SetTimes("g", times).ok());
  EXPECT_EQ(store_->Stat("g")->etag, e2);
  EXPECT_EQ((*writer)->Stat()->etag, e2);
  EXPECT_EQ(store_->List("")->size(), 2u);

  // A whole-object PUT changes it and keeps the item id.
  ObjectId id = store_->Stat("g")->id;
  ASSERT_TRUE(store_->WriteAtomic("g", AsBytes("three")).ok());
  EXPECT_NE(store_->Stat("g")->etag, e2);
  EXPECT_EQ(store_->Stat("g")->id, id);
}

TEST_F(RemoteLikeStoreTest, ACommitOverSomeoneElsesCommitIsChangedElsewhere) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("base")).ok());
  auto first = store_->Open("f", kWrite);
  auto second = store_->Open("f", kWrite);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE((*first)->WriteAt(0, AsBytes("FIRST")).ok());
  ASSERT_TRUE((*second)->WriteAt(0, AsBytes("SECOND")).ok());
  ASSERT_TRUE((*first)->Commit({}).ok());
  std::string etag = store_->Stat("f")->etag;
  EXPECT_EQ((*second)->Commit({}).status().code(), Code::kChangedElsewhere);
  EXPECT_EQ(Content("f"), "FIRST");
  EXPECT_EQ(store_->Stat("f")->etag, etag);
  // The winner may go on committing: its base is its own commit.
  ASSERT_TRUE((*first)->WriteAt(5, AsBytes("!")).ok());
  ASSERT_TRUE((*first)->Commit({}).ok());
  EXPECT_EQ(Content("f"), "FIRST!");

  // A WriteAtomic in between spoils a commit just the same.
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("put")).ok());
  ASSERT_TRUE((*first)->WriteAt(0, AsBytes("late")).ok());
  EXPECT_EQ((*first)->Commit({}).status().code(), Code::kChangedElsewhere);
  EXPECT_EQ(Content("f"), "put");
}

TEST_F(RemoteLikeStoreTest, ACommitToADeletedObjectIsNotFound) {
  auto writer = store_->Open("f", kCreateNew);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("orphan")).ok());
  ASSERT_TRUE(store_->Remove("f").ok());
  EXPECT_EQ((*writer)->Commit({}).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Stat("f").status().code(), Code::kNotFound);
}

TEST_F(RemoteLikeStoreTest, NamesAreCaseInsensitiveAndCasePreserving) {
  ASSERT_TRUE(store_->WriteAtomic("Scan.STL", AsBytes("v1")).ok());
  ObjectId id = store_->Stat("Scan.STL")->id;
  EXPECT_EQ(store_->Stat("scan.stl")->id, id);
  EXPECT_EQ(Content("SCAN.stl"), "v1");
  EXPECT_EQ(store_->Open("scan.stl", kCreateNew).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->MakeDir("SCAN.STL", 0700).code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->WriteAtomic("scan.stl", AsBytes("x"), true).code(), Code::kAlreadyExists);
  // Writing through another case writes the one entry, which keeps its stored case.
  ASSERT_TRUE(store_->WriteAtomic("scan.stl", AsBytes("v2")).ok());
  EXPECT_EQ(Names(*store_->List("")), std::vector<std::string>{"Scan.STL"});
  EXPECT_EQ(Content("Scan.STL"), "v2");

  // Directories too, at every level of a path.
  ASSERT_TRUE(store_->MakeDir("Patient", 0700).ok());
  ASSERT_TRUE(store_->MakeDir("patient/CBCT", 0700).ok());
  ASSERT_TRUE(store_->WriteAtomic("PATIENT/cbct/vol", AsBytes("dicom")).ok());
  EXPECT_EQ(Content("Patient/CBCT/vol"), "dicom");
  EXPECT_EQ(Names(*store_->List("pAtIeNt")), std::vector<std::string>{"CBCT"});

  // A rename that changes only the case.
  ASSERT_TRUE(store_->Rename("scan.stl", "SCAN.stl", RenameMode::kNoReplace).ok());
  EXPECT_EQ(Names(*store_->List("")), (std::vector<std::string>{"Patient", "SCAN.stl"}));
  EXPECT_EQ(store_->Stat("scan.STL")->id, id);

  // Onto another object stored in another case: refused, or replaced by the new case.
  ASSERT_TRUE(store_->WriteAtomic("other", AsBytes("other")).ok());
  EXPECT_EQ(store_->Rename("other", "scan.STL", RenameMode::kNoReplace).code(),
            Code::kAlreadyExists);
  ASSERT_TRUE(store_->Rename("other", "scan.STL", RenameMode::kReplace).ok());
  EXPECT_EQ(Names(*store_->List("")), (std::vector<std::string>{"Patient", "scan.STL"}));
  EXPECT_EQ(Content("Scan.stl"), "other");
  ASSERT_TRUE(store_->Remove("SCAN.STL").ok());
  ASSERT_TRUE(store_->Remove("patient/cbct/VOL").ok());
  ASSERT_TRUE(store_->RemoveDir("PATIENT/cbct").ok());
  EXPECT_TRUE(store_->List("patient")->empty());
}

TEST_F(RemoteLikeStoreTest, TwoCasesOfOneNameNeverBothGetCreated) {
  constexpr int kNames = 100;
  std::vector<std::atomic<int>> created(kNames);
  auto create = [&](bool upper) {
    for (int i = 0; i < kNames; ++i) {
      std::string name = Cat(upper ? "N" : "n", std::to_string(i));
      if (store_->Open(name, kCreateNew).ok()) ++created[i];
      if (store_->MakeDir(Cat(upper ? "D" : "d", std::to_string(i)), 0700).ok()) ++created[i];
    }
  };
  std::thread upper(create, true);
  create(false);
  upper.join();
  for (int i = 0; i < kNames; ++i) EXPECT_EQ(created[i], 2) << i;  // one file, one folder
  EXPECT_EQ(store_->List("")->size(), 2u * kNames);
}

TEST_F(RemoteLikeStoreTest, ReadersSeeACommitWholeOrNotAtAll) {
  constexpr size_t kSize = 3 << 20;  // several pieces of a commit's copy
  ASSERT_TRUE(store_->WriteAtomic("f", Bytes(kSize, 'a')).ok());
  auto writer = store_->Open("f", kWrite);
  auto reader = store_->Open("f", OpenOptions{});
  ASSERT_TRUE(writer.ok() && reader.ok());
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  std::thread reading([&] {
    Bytes out(kSize);
    while (!done.load()) {
      auto n = (*reader)->ReadAt(0, out);
      bool whole = n.ok() && *n == kSize && (out[0] == 'a' || out[0] == 'b') &&
                   std::count(out.begin(), out.end(), out[0]) == static_cast<ptrdiff_t>(kSize);
      if (!whole) ++torn;
      ++reads;
    }
  });
  const Bytes a(kSize, 'a');
  const Bytes b(kSize, 'b');
  for (int i = 0; i < 20 || reads.load() < 20; ++i) {
    ASSERT_TRUE((*writer)->WriteAt(0, i % 2 ? a : b).ok());
    ASSERT_TRUE((*writer)->Commit({}).ok());
  }
  done.store(true);
  reading.join();
  EXPECT_EQ(torn.load(), 0);
}

TEST_F(RemoteLikeStoreTest, NamesOneDriveRefusesAreInvalid) {
  ASSERT_TRUE(store_->MakeDir("d", 0700).ok());
  ASSERT_TRUE(store_->WriteAtomic("d/ok", AsBytes("x")).ok());
  const std::vector<std::string> refused = {
      "a\"b",   "a*b",  "a:b",   "a<b",         "a>b",     "a?b",   "a\\b",      "a|b",  " lead",
      "trail ", "dot.", "CON",   "con",         "Prn",     "AUX",   "nul",       "COM0", "com9",
      "LPT1",   "lpt9", ".lock", "Desktop.ini", "x_vti_y", "_VTI_", "~$doc.docx"};
  for (const std::string& name : refused) {
    std::string path = "d/" + name;
    EXPECT_EQ(store_->WriteAtomic(path, AsBytes("x")).code(), Code::kInvalidArgument) << name;
    EXPECT_EQ(store_->MakeDir(path, 0700).code(), Code::kInvalidArgument) << name;
    EXPECT_EQ(store_->Open(path, kCreateNew).status().code(), Code::kInvalidArgument) << name;
    EXPECT_EQ(store_->Rename("d/ok", path, RenameMode::kNoReplace).code(), Code::kInvalidArgument)
        << name;
    // A lookup of a name that cannot exist finds nothing.
    EXPECT_EQ(store_->Stat(path).status().code(), Code::kNotFound) << name;
  }
  EXPECT_EQ(Names(*store_->List("d")), std::vector<std::string>{"ok"});
  Status why = CheckRemoteName("a:b", ObjectType::kFile);
  EXPECT_EQ(why.message().find("a:b"), std::string::npos) << "no name in messages";

  // A folder cannot start with "~"; a file can. Near misses of reserved names are fine.
  EXPECT_EQ(store_->MakeDir("d/~tmp", 0700).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Rename("d/ok", "d/~moved", RenameMode::kNoReplace).code(), Code::kOk);
  for (const char* name : {"~lock.file#", "CON.txt", "COM10", "console", ".locked",
                           "desktop.ini.bak", "a.b", "with space", "~file", "$~x", "vti"}) {
    EXPECT_TRUE(store_->WriteAtomic(std::string("d/") + name, AsBytes("x")).ok()) << name;
  }
}

TEST_F(RemoteLikeStoreTest, PathsAreLimitedTo400Characters) {
  // 3 + 1 + 396 = 400 characters: the limit itself is fine.
  ASSERT_TRUE(store_->MakeDir("dir", 0700).ok());
  std::string at_limit = "dir/" + std::string(396 - 255 - 1, 'a') + "/" + std::string(255, 'b');
  ASSERT_EQ(at_limit.size(), 400u);
  ASSERT_TRUE(store_->MakeDir(std::string(StoreParent(at_limit)), 0700).ok());
  ASSERT_TRUE(store_->WriteAtomic(at_limit, AsBytes("x")).ok());

  // One character more in the parent: 401.
  std::string longer_parent = "dir/" + std::string(396 - 255, 'a');
  ASSERT_TRUE(store_->MakeDir(longer_parent, 0700).ok());
  std::string over = longer_parent + "/" + std::string(255, 'c');
  ASSERT_EQ(over.size(), 401u);
  EXPECT_EQ(store_->WriteAtomic(over, AsBytes("x")).code(), Code::kNameTooLong);
  EXPECT_EQ(store_->Open(over, kCreateNew).status().code(), Code::kNameTooLong);
  EXPECT_EQ(store_->Rename(at_limit, over, RenameMode::kNoReplace).code(), Code::kNameTooLong);
  EXPECT_EQ(store_->MakeDir(over, 0700).code(), Code::kNameTooLong);

  // A folder whose move would take a path below it past the limit stays where it is.
  std::string folder = std::string(StoreParent(at_limit));  // 144 characters, 400 below
  EXPECT_EQ(store_->Rename(folder, folder + "x", RenameMode::kNoReplace).code(),
            Code::kNameTooLong);
  EXPECT_EQ(store_->Rename("dir", "dir2", RenameMode::kNoReplace).code(), Code::kNameTooLong);
  EXPECT_EQ(Content(at_limit), "x");
  ASSERT_TRUE(store_->Rename("dir", "DIR", RenameMode::kNoReplace).ok());
  ASSERT_TRUE(store_->Rename("DIR", "d", RenameMode::kNoReplace).ok());
  EXPECT_EQ(Content(Cat("d", at_limit.substr(3))), "x");
  EXPECT_EQ(store_->Stat(over).status().code(), Code::kNotFound);

  // Characters, not bytes: "é" is one (two UTF-8 bytes), a character outside the Basic
  // Multilingual Plane two (UTF-16 surrogates), as OneDrive counts.
  std::string accents;
  for (int i = 0; i < 400; ++i) accents += "\xC3\xA9";  // é
  EXPECT_TRUE(CheckRemotePathLength(accents, 400).ok());
  EXPECT_EQ(CheckRemotePathLength(accents + "x", 400).code(), Code::kNameTooLong);
  std::string emoji;
  for (int i = 0; i < 200; ++i) emoji += "\xF0\x9F\xA6\xB7";  // U+1F9B7, a tooth
  EXPECT_TRUE(CheckRemotePathLength(emoji, 400).ok());
  EXPECT_EQ(CheckRemotePathLength(emoji + "x", 400).code(), Code::kNameTooLong);
}

TEST_F(RemoteLikeStoreTest, WhatOneDriveLacksIsUnsupported) {
  StoreCapabilities caps = store_->capabilities();
  EXPECT_FALSE(caps.partial_writes || caps.symlinks || caps.hard_links || caps.posix_attributes ||
               caps.xattrs || caps.special_files);
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("x")).ok());
  ASSERT_TRUE(store_->MakeDir("d", 0700).ok());
  controls_->ResetCalls();
  EXPECT_EQ(store_->Symlink("f", "l").code(), Code::kUnsupported);
  EXPECT_EQ(store_->ReadLink("f").status().code(), Code::kUnsupported);
  EXPECT_EQ(store_->Link("f", "h").code(), Code::kUnsupported);
  EXPECT_EQ(store_->MakeNode("p", ObjectType::kFifo, 0600, 0).code(), Code::kUnsupported);
  EXPECT_EQ(store_->SetMode("f", 0600).code(), Code::kUnsupported);
  EXPECT_EQ(store_->SetOwner("f", 0, 0).code(), Code::kUnsupported);
  EXPECT_EQ(store_->SetXattr("f", "user.a", AsBytes("v"), 0).code(), Code::kUnsupported);
  EXPECT_EQ(store_->GetXattr("f", "user.a").status().code(), Code::kUnsupported);
  EXPECT_EQ(store_->ListXattrs("f").status().code(), Code::kUnsupported);
  EXPECT_EQ(store_->RemoveXattr("f", "user.a").code(), Code::kUnsupported);
  EXPECT_EQ(store_->Rename("f", "d", RenameMode::kExchange).code(), Code::kUnsupported);
  EXPECT_EQ(controls_->TotalCalls(), 0u);
  auto file = store_->Open("f", kWrite);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->SetMode(0600).code(), Code::kUnsupported);
  EXPECT_EQ((*file)->SetOwner(0, 0).code(), Code::kUnsupported);
  EXPECT_EQ((*file)->Reserve(0, 4096).code(), Code::kUnsupported);
  EXPECT_EQ(store_->Stat("l").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Stat("h").status().code(), Code::kNotFound);
}

class RemoteLikeStoreOwnerTest : public RemoteLikeStoreTest {
 protected:
  RemoteLikeStoreOwnerTest() : RemoteLikeStoreTest(RemoteLikeOptions{.uid = 1000, .gid = 1001}) {}
};

TEST_F(RemoteLikeStoreOwnerTest, StatShowsFixedModesOwnersAndWholeSeconds) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("x")).ok());
  ASSERT_TRUE(store_->MakeDir("d", 0700).ok());
  struct timespec times[2] = {{1000, 123}, {2000, 456789}};
  ASSERT_TRUE(store_->SetTimes("f", times).ok());
  auto f = store_->Stat("f");
  auto d = store_->Stat("d");
  ASSERT_TRUE(f.ok() && d.ok());
  EXPECT_EQ(f->mode, 0644u);
  EXPECT_EQ(d->mode, 0755u);
  for (const ObjectInfo* info : {&*f, &*d}) {
    EXPECT_EQ(info->uid, 1000u);
    EXPECT_EQ(info->gid, 1001u);
    EXPECT_EQ(info->nlink, 1u);
    EXPECT_EQ(info->mtime.tv_nsec, 0);
    EXPECT_EQ(info->atime.tv_sec, info->mtime.tv_sec);
  }
  EXPECT_EQ(f->mtime.tv_sec, 2000);

  // Times set through a writer survive its commit, as fileSystemInfo in an upload.
  auto writer = store_->Open("f", kWrite);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("changed")).ok());
  struct timespec mtime[2] = {{0, UTIME_OMIT}, {3000, 0}};
  ASSERT_TRUE((*writer)->SetTimes(mtime).ok());
  ASSERT_TRUE((*writer)->Commit({}).ok());
  EXPECT_EQ(store_->Stat("f")->mtime.tv_sec, 3000);
  EXPECT_EQ(Content("f"), "changed");
}

TEST_F(RemoteLikeStoreTest, OpenFilesOutliveTheirStore) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("content")).ok());
  auto reader = store_->Open("f", OpenOptions{});
  auto writer = store_->Open("f", kWrite);
  ASSERT_TRUE(reader.ok() && writer.ok());
  store_.reset();
  Bytes out(7);
  EXPECT_EQ(*(*reader)->ReadAt(0, out), 7u);
  EXPECT_EQ(AsChars(out), "content");
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("C")).ok());
  auto info = (*writer)->Stat();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 7u);
  EXPECT_EQ(info->mode, 0644u);
  EXPECT_EQ(controls_->Calls(RemoteCall::kDownload), 1u) << "the controls outlive it too";
}

TEST_F(RemoteLikeStoreTest, ObjectIdsAreStableItemIds) {
  ASSERT_TRUE(store_->MakeDir("a", 0700).ok());
  ASSERT_TRUE(store_->MakeDir("b", 0700).ok());
  ASSERT_TRUE(store_->WriteAtomic("a/f", AsBytes("x")).ok());
  ObjectId file = store_->Stat("a/f")->id;
  ObjectId dir = store_->Stat("a")->id;
  EXPECT_TRUE(file.bytes().starts_with("rl!")) << "printable, like an item id";
  EXPECT_NE(file, dir);
  EXPECT_NE(file, store_->Stat("b")->id);
  ASSERT_TRUE(store_->Rename("a/f", "b/g", RenameMode::kNoReplace).ok());
  ASSERT_TRUE(store_->Rename("a", "c", RenameMode::kNoReplace).ok());
  EXPECT_EQ(store_->Stat("b/g")->id, file);
  EXPECT_EQ(store_->Stat("c")->id, dir);
  // A new object at an old name is a new item.
  ASSERT_TRUE(store_->Remove("b/g").ok());
  ASSERT_TRUE(store_->WriteAtomic("b/g", AsBytes("y")).ok());
  EXPECT_NE(store_->Stat("b/g")->id, file);
}

TEST_F(RemoteLikeStoreTest, CallsAreCountedByKind) {
  ASSERT_TRUE(store_->MakeDir("big", 0700).ok());
  for (int i = 0; i < 2001; ++i) {
    ASSERT_TRUE(store_->WriteAtomic("big/" + std::to_string(i), AsBytes("x")).ok());
  }
  EXPECT_EQ(Calls(RemoteCall::kMakeDir), 1u);
  EXPECT_EQ(Calls(RemoteCall::kWriteAtomic), 2001u);

  // `ls -l`: one request per page of 1000, and every entry carries its attributes.
  controls_->ResetCalls();
  auto listing = store_->List("big");
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->size(), 2001u);
  for (const DirEntry& e : *listing) ASSERT_TRUE(e.info.has_value()) << e.name;
  EXPECT_EQ(Calls(RemoteCall::kList), 3u);
  EXPECT_EQ(controls_->TotalCalls(), 3u);

  // The first byte: one open, one ranged read.
  ASSERT_TRUE(store_->WriteAtomic("file", AsBytes("0123456789")).ok());
  ASSERT_TRUE(store_->MakeDir("empty", 0700).ok());
  controls_->ResetCalls();
  auto reader = store_->Open("file", OpenOptions{});
  ASSERT_TRUE(reader.ok());
  Bytes out(1);
  ASSERT_EQ(*(*reader)->ReadAt(0, out), 1u);
  EXPECT_EQ(*(*reader)->Size(), 10u);
  EXPECT_EQ(Calls(RemoteCall::kOpenRead), 1u);
  EXPECT_EQ(Calls(RemoteCall::kReadRange), 1u);
  EXPECT_EQ(controls_->TotalCalls(), 2u);

  // Everything else, one each.
  controls_->ResetCalls();
  ASSERT_TRUE(store_->Stat("file").ok());
  ASSERT_TRUE(store_->ReadSmall("file", 100).ok());
  ASSERT_TRUE(store_->Rename("file", "moved", RenameMode::kNoReplace).ok());
  ASSERT_TRUE(store_->Remove("moved").ok());
  ASSERT_TRUE(store_->RemoveDir("empty").ok());
  ASSERT_TRUE(store_->Space().ok());
  for (RemoteCall kind : {RemoteCall::kStat, RemoteCall::kReadSmall, RemoteCall::kRename,
                          RemoteCall::kRemove, RemoteCall::kRemoveDir, RemoteCall::kSpace}) {
    EXPECT_EQ(Calls(kind), 1u) << RemoteCallName(kind);
  }
  EXPECT_EQ(controls_->TotalCalls(), 6u);
}

TEST_F(RemoteLikeStoreTest, InjectedFaultsFailTheChosenCall) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("v0")).ok());
  auto writer = store_->Open("f", kWrite);
  ASSERT_TRUE(writer.ok());

  // The second commit from now is dropped: it fails and lands nothing.
  controls_->FailNthCall(RemoteCall::kCommit, 2, Code::kRetryLater);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("v1")).ok());
  ASSERT_TRUE((*writer)->Commit({}).ok());
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("v2")).ok());
  EXPECT_EQ((*writer)->Commit({}).status().code(), Code::kRetryLater);
  EXPECT_EQ(Content("f"), "v1");
  ASSERT_TRUE((*writer)->Commit({}).ok()) << "a retry succeeds";
  EXPECT_EQ(Content("f"), "v2");

  // A lost reply: the commit lands, the caller hears of a failure.
  controls_->FailNthCall(RemoteCall::kCommit, 1, Code::kIoError, FaultTiming::kAfterApplying);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("v3")).ok());
  EXPECT_EQ((*writer)->Commit({}).status().code(), Code::kIoError);
  EXPECT_EQ(Content("f"), "v3");

  // Any kind, any code; one rule fires once.
  controls_->FailNthCall(RemoteCall::kStat, 1, Code::kQuotaExceeded);
  controls_->FailNthCall(RemoteCall::kMakeDir, 1, Code::kChangedElsewhere);
  EXPECT_EQ(store_->Stat("f").status().code(), Code::kQuotaExceeded);
  EXPECT_TRUE(store_->Stat("f").ok());
  EXPECT_EQ(store_->MakeDir("d", 0700).code(), Code::kChangedElsewhere);
  EXPECT_EQ(store_->Stat("d").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->MakeDir("d", 0700).ok());
}

TEST_F(RemoteLikeStoreTest, RandomFaultsAreReproducibleFromTheirSeed) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("x")).ok());
  auto pattern = [this](uint64_t seed) {
    controls_->ClearFaults();
    controls_->FailRandomly(RemoteCall::kStat, 0.3, Code::kRetryLater, seed);
    std::string outcome;
    for (int i = 0; i < 200; ++i) {
      auto info = store_->Stat("f");
      EXPECT_TRUE(info.ok() || info.status().code() == Code::kRetryLater);
      outcome += info.ok() ? '.' : 'F';
    }
    return outcome;
  };
  std::string first = pattern(42);
  EXPECT_EQ(pattern(42), first);
  EXPECT_NE(pattern(7), first);
  size_t failures = std::count(first.begin(), first.end(), 'F');
  EXPECT_GT(failures, 30u);
  EXPECT_LT(failures, 90u);
  controls_->ClearFaults();
  EXPECT_TRUE(store_->Stat("f").ok());
  EXPECT_TRUE(store_->ReadSmall("f", 10).ok()) << "other kinds were never affected";
}

class RemoteLikeStoreLatencyTest : public RemoteLikeStoreTest {
 protected:
  RemoteLikeStoreLatencyTest()
      : RemoteLikeStoreTest(RemoteLikeOptions{.latency = std::chrono::milliseconds(50)}) {}
};

TEST_F(RemoteLikeStoreLatencyTest, CallsOverlapAcrossThreads) {
  ASSERT_TRUE(store_->WriteAtomic("f", AsBytes("0123456789")).ok());
  auto reader = store_->Open("f", OpenOptions{});
  ASSERT_TRUE(reader.ok());
  auto start = std::chrono::steady_clock::now();
  std::thread other([this] { EXPECT_TRUE(store_->Stat("f").ok()); });
  Bytes out(4);
  EXPECT_EQ(*(*reader)->ReadAt(0, out), 4u);
  other.join();
  auto elapsed = std::chrono::steady_clock::now() - start;
  // Each call waits 50 ms; together they take about 50, not 100.
  EXPECT_GE(elapsed, milliseconds(50));
  EXPECT_LT(elapsed, milliseconds(90));

  // The latency can change at any time, for instance after a fast setup.
  controls_->SetLatency(std::chrono::microseconds(0));
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(store_->Stat("f").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(50));
}

}  // namespace
}  // namespace cadcanfs
