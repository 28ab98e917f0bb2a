// OneDriveStore against the Graph emulator: attributes from listings, ranged reads,
// small and streamed uploads, conditional commits, OneDrive's names, folder operations,
// throttling and the change feed.
#include "cadcanfs/store/onedrive_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <unordered_set>

#include "graph/emulator.h"

namespace cadcanfs {
namespace {

using graph::testing::SharedEmulator;
using std::chrono::milliseconds;

constexpr uint64_t kTestFragment = 10 * graph::kFragmentUnit;  // 3.2 MiB

// "f0", "f1", ... (built by append: GCC 12 warns falsely about "f" + std::to_string).
std::string FileName(int i) {
  std::string name = "f";
  name.append(std::to_string(i));
  return name;
}

Bytes Pattern(size_t size, uint8_t seed) {
  Bytes data(size);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& byte : data) {
    x = x * 1664525u + 1013904223u;
    byte = static_cast<uint8_t>(x >> 24);
  }
  return data;
}

class OneDriveStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emu_.Control("POST", "/reset");
    auto http = graph::HttpClient::Create(graph::HttpClientOptions{});
    ASSERT_TRUE(http.ok());
    http_ = std::move(http).value();
    graph::LoginSettings settings;
    settings.login_url = emu_.login_url();
    settings.client_id = "cadcanfs-test-client";
    auth_ = std::make_unique<graph::Authenticator>(*http_, settings);
    auth_->SetRefreshToken(
        SecretBytes::CopyOf(AsBytes(emu_.IssueTokens()["refresh_token"].get<std::string>())));
    graph::RetryPolicy policy;
    policy.initial_backoff = milliseconds(20);
    policy.max_backoff = milliseconds(200);
    pacer_ = std::make_unique<graph::Pacer>(policy);
    graph::GraphClientOptions options;
    options.graph_url = emu_.graph_url();
    options.fragment_size = kTestFragment;
    options.delta_page_size = 1000;
    client_ = std::make_unique<graph::GraphClient>(*http_, *pacer_, *auth_, options);
    folder_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(client_->CreateFolder(emu_.root_id(), folder_).ok());
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
    emu_.Control("POST", "/counters/reset");
  }

  std::unique_ptr<Store> OpenStore(OneDriveStoreOptions options = {}) {
    options.uid = 1234;
    options.gid = 5678;
    options.fragment_size = kTestFragment;
    auto store = OpenOneDriveStore(*client_, "/" + folder_, options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // What "another client" sees in the drive.
  Bytes RemoteContent(const std::string& path) {
    auto reply = emu_.Control("GET", "/remote/read?path=/" + folder_ + "/" + path);
    return graph::Base64Decode(reply["content_b64"].get<std::string>()).value_or(Bytes{});
  }
  void RemoteWrite(const std::string& path, const std::string& text) {
    emu_.Control("POST", "/remote/write", {{"path", "/" + folder_ + "/" + path}, {"text", text}});
  }
  int64_t GraphRequests() { return emu_.Control("GET", "/counters")["graph_requests"]; }

  graph::testing::Emulator& emu_ = SharedEmulator();
  std::unique_ptr<graph::HttpClient> http_;
  std::unique_ptr<graph::Authenticator> auth_;
  std::unique_ptr<graph::Pacer> pacer_;
  std::unique_ptr<graph::GraphClient> client_;
  std::string folder_;
  std::unique_ptr<Store> store_;
};

// Writes `content` through a writer in `chunk`-sized sequential pieces and commits it.
Result<ObjectInfo> WriteWhole(Store& store, const std::string& path, const Bytes& content,
                              size_t chunk, bool declare_size) {
  CADCANFS_ASSIGN_OR_RETURN(
      std::unique_ptr<StoreFile> writer,
      store.Open(path, OpenOptions{.write = true, .create = true, .truncate = true}));
  if (declare_size) CADCANFS_RETURN_IF_ERROR(writer->Truncate(content.size()));
  for (size_t offset = 0; offset < content.size(); offset += chunk) {
    const size_t n = std::min(chunk, content.size() - offset);
    CADCANFS_RETURN_IF_ERROR(writer->WriteAt(offset, ByteSpan(content.data() + offset, n)));
  }
  return writer->Commit(std::nullopt);
}

TEST_F(OneDriveStoreTest, RootMustBeAnExistingFolder) {
  EXPECT_EQ(OpenOneDriveStore(*client_, "/" + folder_ + "/missing", {}).status().code(),
            Code::kNotFound);
  ASSERT_TRUE(store_->WriteAtomic("file", AsBytes("x")).ok());
  EXPECT_EQ(OpenOneDriveStore(*client_, "/" + folder_ + "/file", {}).status().code(),
            Code::kNotADirectory);
  StoreCapabilities caps = store_->capabilities();
  EXPECT_FALSE(caps.partial_writes);
  EXPECT_TRUE(caps.remote);
  EXPECT_TRUE(caps.case_insensitive);
  EXPECT_EQ(caps.max_path_length, 400u);
  EXPECT_FALSE(caps.symlinks || caps.hard_links || caps.xattrs || caps.special_files);
  EXPECT_EQ(store_->SetMode("file", 0600).code(), Code::kUnsupported);
  EXPECT_EQ(store_->Symlink("a", "b").code(), Code::kUnsupported);
}

TEST_F(OneDriveStoreTest, ListingCarriesAttributesWithoutPerChildCalls) {
  ASSERT_TRUE(store_->MakeDir("sub", 0700).ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store_->WriteAtomic(FileName(i), Pattern(100 + i, static_cast<uint8_t>(i))).ok());
  }
  auto fresh = OpenStore();  // knows only its root
  emu_.Control("POST", "/counters/reset");
  auto entries = fresh->List("");
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 21u);
  std::unordered_set<uint64_t> inodes;
  for (const DirEntry& entry : *entries) {
    ASSERT_TRUE(entry.info.has_value());
    const ObjectInfo& info = *entry.info;
    EXPECT_FALSE(info.id.empty());
    EXPECT_FALSE(info.etag.empty());
    EXPECT_NE(info.mtime.tv_sec, 0);
    EXPECT_EQ(info.uid, 1234u);
    EXPECT_EQ(info.gid, 5678u);
    EXPECT_EQ(info.nlink, 1u);
    inodes.insert(info.inode_hint);
    if (entry.name == "sub") {
      EXPECT_EQ(entry.type, ObjectType::kDirectory);
      EXPECT_EQ(info.mode, 0755u);
    } else {
      EXPECT_EQ(entry.type, ObjectType::kFile);
      EXPECT_EQ(info.mode, 0644u);
      EXPECT_EQ(info.size, 100u + std::stoul(entry.name.substr(1)));
    }
  }
  EXPECT_EQ(inodes.size(), 21u);
  // Stat of what was just listed, and opening it, cost nothing more.
  for (int i = 0; i < 20; ++i) {
    auto info = fresh->Stat(FileName(i));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->size, 100u + i);
  }
  auto reader = fresh->Open("f3", OpenOptions{});
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->Size().value(), 103u);
  EXPECT_EQ(GraphRequests(), 1);
  EXPECT_EQ(emu_.Counter("graph.children"), 1);
}

TEST_F(OneDriveStoreTest, RangedReadsAtRandomOffsets) {
  const Bytes content = Pattern(1 << 20, 7);
  ASSERT_TRUE(store_->WriteAtomic("scan.stl", content).ok());
  auto reader = store_->Open("scan.stl", OpenOptions{});
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::mt19937 random(42);
  Bytes out(20'000);
  for (int i = 0; i < 20; ++i) {
    const uint64_t offset = random() % content.size();
    auto n = (*reader)->ReadAt(offset, out);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    const size_t expected = std::min<size_t>(out.size(), content.size() - offset);
    ASSERT_EQ(*n, expected);
    ASSERT_EQ(0, std::memcmp(out.data(), content.data() + offset, expected)) << offset;
  }
  EXPECT_EQ((*reader)->ReadAt(content.size(), out).value(), 0u);
  EXPECT_EQ(emu_.Control("GET", "/counters")["auth_header_on_content_urls"]["download"], 0);
}

TEST_F(OneDriveStoreTest, SmallWriteIsOneSimpleUploadAtCommit) {
  const Bytes content = Pattern(300'000, 1);
  auto writer = store_->Open("crown.stl", OpenOptions{.write = true, .create = true});
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  for (size_t offset = 0; offset < content.size(); offset += 65536) {
    const size_t n = std::min<size_t>(65536, content.size() - offset);
    ASSERT_TRUE((*writer)->WriteAt(offset, ByteSpan(content.data() + offset, n)).ok());
  }
  EXPECT_EQ((*writer)->WriteAt(10, AsBytes("x")).code(), Code::kUnsupported);
  EXPECT_EQ(emu_.Counter("graph.upload"), 0);  // nothing leaves before the commit
  auto committed = (*writer)->Commit(std::nullopt);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(committed->size, content.size());
  EXPECT_EQ(emu_.Counter("graph.upload"), 1);
  EXPECT_EQ(emu_.Counter("graph.session"), 0);
  EXPECT_EQ(RemoteContent("crown.stl"), content);
  auto stat = store_->Stat("crown.stl");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->etag, committed->etag);
  EXPECT_EQ(stat->id, committed->id);
}

TEST_F(OneDriveStoreTest, LargeWriteWithDeclaredSizeStreamsFragments) {
  const Bytes content = Pattern(12 << 20, 2);
  auto writer = store_->Open("big.bin", OpenOptions{.write = true, .create = true});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Truncate(content.size()).ok());
  const size_t chunk = 1 << 20;
  for (size_t offset = 0; offset < 8 * chunk; offset += chunk) {
    ASSERT_TRUE((*writer)->WriteAt(offset, ByteSpan(content.data() + offset, chunk)).ok());
  }
  // 8 MiB written: two 3.2 MiB fragments are already sent, and nothing is visible yet.
  EXPECT_EQ(emu_.Counter("upload.fragment"), 2);
  EXPECT_EQ(OpenStore()->Stat("big.bin").status().code(), Code::kNotFound);
  for (size_t offset = 8 * chunk; offset < content.size(); offset += chunk) {
    ASSERT_TRUE((*writer)->WriteAt(offset, ByteSpan(content.data() + offset, chunk)).ok());
  }
  auto committed = (*writer)->Commit(std::nullopt);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(committed->size, content.size());
  EXPECT_EQ(emu_.Counter("graph.session"), 1);
  EXPECT_EQ(emu_.Counter("upload.fragment"), 4);  // 3 x 3.2 MiB + the rest
  EXPECT_EQ(emu_.Control("GET", "/counters")["auth_header_on_content_urls"]["upload"], 0);
  EXPECT_EQ(RemoteContent("big.bin"), content);
}

TEST_F(OneDriveStoreTest, LargeWriteWithoutDeclaredSizeUploadsAtCommit) {
  const Bytes content = Pattern(5 << 20, 3);
  auto committed = WriteWhole(*store_, "five.bin", content, 1 << 20, /*declare_size=*/false);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(committed->size, content.size());
  EXPECT_EQ(emu_.Counter("graph.session"), 1);
  EXPECT_EQ(emu_.Counter("upload.fragment"), 2);
  EXPECT_EQ(RemoteContent("five.bin"), content);
}

TEST_F(OneDriveStoreTest, ZeroByteFileExistsAfterItsCommit) {
  auto writer =
      store_->Open("empty", OpenOptions{.write = true, .create = true, .exclusive = true});
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  auto committed = (*writer)->Commit(std::nullopt);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(committed->size, 0u);
  auto stat = OpenStore()->Stat("empty");
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->type, ObjectType::kFile);
  EXPECT_EQ(stat->size, 0u);
  EXPECT_EQ(store_->Open("EMPTY", OpenOptions{.write = true, .create = true, .exclusive = true})
                .status()
                .code(),
            Code::kAlreadyExists);
}

TEST_F(OneDriveStoreTest, CommitIsConditionalOnTheWritersVersion) {
  ASSERT_TRUE(store_->WriteAtomic("case.json", AsBytes("v1")).ok());
  const std::string v1 = store_->Stat("case.json")->etag;
  auto writer = store_->Open("case.json", OpenOptions{.write = true, .truncate = true});
  ASSERT_TRUE(writer.ok());
  RemoteWrite("case.json", "theirs");  // another workstation saves first
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("mine")).ok());
  EXPECT_EQ((*writer)->Commit(v1).status().code(), Code::kChangedElsewhere);
  EXPECT_EQ(RemoteContent("case.json"), Bytes(AsBytes("theirs").begin(), AsBytes("theirs").end()));
  // A commit naming another version fails before any upload.
  auto second = store_->Open("case.json", OpenOptions{.write = true, .truncate = true});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*second)->WriteAt(0, AsBytes("again")).ok());
  EXPECT_EQ((*second)->Commit(v1).status().code(), Code::kChangedElsewhere);
}

TEST_F(OneDriveStoreTest, RenameAndTimesLeaveTheContentVersion) {
  ASSERT_TRUE(store_->WriteAtomic("a.json", AsBytes("v1")).ok());
  const std::string v1 = store_->Stat("a.json")->etag;
  auto writer = store_->Open("a.json", OpenOptions{.write = true, .truncate = true});
  ASSERT_TRUE(writer.ok());
  // A staged file renamed, and its time set, before its upload still commits.
  ASSERT_TRUE(store_->Rename("a.json", "b.json", RenameMode::kNoReplace).ok());
  const struct timespec times[2] = {{0, UTIME_OMIT}, {1'600'000'000, 0}};
  ASSERT_TRUE(store_->SetTimes("b.json", times).ok());
  EXPECT_EQ(OpenStore()->Stat("b.json")->etag, v1);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes("v2")).ok());
  auto committed = (*writer)->Commit(v1);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_NE(committed->etag, v1);
  EXPECT_EQ(RemoteContent("b.json"), Bytes(AsBytes("v2").begin(), AsBytes("v2").end()));
  // The commit does not bring the old name back.
  EXPECT_EQ(store_->Stat("a.json").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Stat("b.json")->etag, committed->etag);
}

TEST_F(OneDriveStoreTest, NamesAreCaseInsensitive) {
  ASSERT_TRUE(store_->WriteAtomic("Crown.STL", AsBytes("abc")).ok());
  auto fresh = OpenStore();
  auto found = fresh->Stat("crown.stl");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->size, 3u);
  EXPECT_EQ(fresh->ReadSmall("CROWN.stl", 100).value(),
            Bytes(AsBytes("abc").begin(), AsBytes("abc").end()));
  EXPECT_EQ(fresh->WriteAtomic("crown.stl", AsBytes("x"), /*exclusive=*/true).code(),
            Code::kAlreadyExists);
  EXPECT_EQ(fresh->MakeDir("CROWN.stl", 0755).code(), Code::kAlreadyExists);
  auto entries = fresh->List("");
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].name, "Crown.STL");  // the stored case
}

TEST_F(OneDriveStoreTest, MakeDirAndRemoveDirOnlyWhenEmpty) {
  ASSERT_TRUE(store_->MakeDir("d", 0755).ok());
  EXPECT_EQ(store_->MakeDir("d", 0755).code(), Code::kAlreadyExists);
  ASSERT_TRUE(store_->WriteAtomic("d/f", AsBytes("x")).ok());
  EXPECT_EQ(store_->RemoveDir("d").code(), Code::kNotEmpty);
  EXPECT_EQ(store_->Remove("d").code(), Code::kIsADirectory);
  EXPECT_EQ(store_->RemoveDir("d/f").code(), Code::kNotADirectory);
  ASSERT_TRUE(store_->Remove("d/f").ok());
  EXPECT_EQ(store_->Stat("d/f").status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->RemoveDir("d").ok());
  EXPECT_EQ(OpenStore()->Stat("d").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Remove("d").code(), Code::kNotFound);
}

TEST_F(OneDriveStoreTest, RenameReplacesOnlyWhenAsked) {
  ASSERT_TRUE(store_->WriteAtomic("a", AsBytes("aaa")).ok());
  ASSERT_TRUE(store_->WriteAtomic("b", AsBytes("b")).ok());
  ASSERT_TRUE(store_->MakeDir("dir", 0755).ok());
  const struct timespec times[2] = {{0, UTIME_OMIT}, {1'500'000'000, 0}};
  ASSERT_TRUE(store_->SetTimes("a", times).ok());
  EXPECT_EQ(store_->Rename("a", "b", RenameMode::kNoReplace).code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->Rename("a", "b", RenameMode::kExchange).code(), Code::kUnsupported);
  EXPECT_EQ(store_->Rename("a", "dir", RenameMode::kReplace).code(), Code::kIsADirectory);
  ASSERT_TRUE(store_->Rename("a", "B", RenameMode::kReplace).ok());
  EXPECT_EQ(store_->Stat("a").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ReadSmall("b", 10).value(),
            Bytes(AsBytes("aaa").begin(), AsBytes("aaa").end()));
  // A move keeps the mtime (Graph resets it unless it is sent again).
  ASSERT_TRUE(store_->Rename("b", "dir/moved", RenameMode::kNoReplace).ok());
  auto moved = OpenStore()->Stat("dir/moved");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->mtime.tv_sec, 1'500'000'000);
  EXPECT_EQ(moved->size, 3u);
  // A case-only rename works.
  ASSERT_TRUE(store_->Rename("dir/moved", "dir/MOVED", RenameMode::kNoReplace).ok());
  auto entries = OpenStore()->List("dir");
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].name, "MOVED");
}

TEST_F(OneDriveStoreTest, NamesAndPathsOneDriveRefuses) {
  EXPECT_EQ(store_->WriteAtomic("bad:name", AsBytes("x")).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->MakeDir("CON", 0755).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Open("trailing.", OpenOptions{.write = true, .create = true}).status().code(),
            Code::kInvalidArgument);
  ASSERT_TRUE(store_->WriteAtomic("ok", AsBytes("x")).ok());
  EXPECT_EQ(store_->Rename("ok", "desktop.ini", RenameMode::kNoReplace).code(),
            Code::kInvalidArgument);
  // A lookup of a name that cannot exist finds nothing, without a request.
  emu_.Control("POST", "/counters/reset");
  EXPECT_EQ(store_->Stat("what?").status().code(), Code::kNotFound);
  EXPECT_EQ(GraphRequests(), 0);
  const std::string long_name(200, 'n');
  ASSERT_TRUE(store_->MakeDir(long_name, 0755).ok());
  EXPECT_EQ(store_->WriteAtomic(long_name + "/" + long_name, AsBytes("x")).code(),
            Code::kNameTooLong);
}

TEST_F(OneDriveStoreTest, ThrottledListingCompletes) {
  ASSERT_TRUE(store_->WriteAtomic("x", AsBytes("1")).ok());
  emu_.Control("POST", "/faults", {{"fault", "429"}, {"on", "graph.children"}, {"times", 2}});
  auto entries = store_->List("");
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  EXPECT_EQ(entries->size(), 1u);
  EXPECT_EQ(emu_.Counter("graph.children"), 3);
}

TEST_F(OneDriveStoreTest, SpaceIsTheDrivesQuotaAskedOnceAMinute) {
  emu_.Control("POST", "/settings", {{"quota_bytes", 1 << 30}});
  ASSERT_TRUE(store_->WriteAtomic("x", Bytes(40960, 7)).ok());
  auto space = store_->Space();
  ASSERT_TRUE(space.ok()) << space.status().ToString();
  EXPECT_EQ(space->total_blocks * space->block_size, uint64_t{1} << 30);
  const uint64_t free_bytes = space->available_blocks * space->block_size;
  // The drive also holds what earlier tests of this process wrote.
  EXPECT_LE(free_bytes, (uint64_t{1} << 30) - 40960);
  EXPECT_GT(free_bytes, 0u);
  ASSERT_TRUE(store_->Space().ok());
  EXPECT_EQ(emu_.Counter("graph.drive"), 1) << "the second df asked nothing";
}

TEST_F(OneDriveStoreTest, PollChangesReportsOtherWritersChanges) {
  ASSERT_TRUE(store_->MakeDir("d", 0755).ok());
  ASSERT_TRUE(store_->WriteAtomic("d/renamed-remotely", AsBytes("1")).ok());
  ASSERT_TRUE(store_->WriteAtomic("deleted-remotely", AsBytes("2")).ok());
  auto first = store_->PollChanges();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->empty());
  // Our own change is not reported back.
  ASSERT_TRUE(store_->WriteAtomic("ours", AsBytes("3")).ok());
  auto own = store_->PollChanges();
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_TRUE(own->empty()) << (*own)[0];
  emu_.Control("POST", "/remote/rename",
               {{"path", "/" + folder_ + "/d/renamed-remotely"}, {"new_name", "new-name"}});
  emu_.Control("POST", "/remote/delete", {{"path", "/" + folder_ + "/deleted-remotely"}});
  RemoteWrite("ours", "theirs now");
  // A change this store's listing saw already is still reported (the kernel may hold
  // the old content).
  RemoteWrite("d/seen-by-listing", "x");
  ASSERT_TRUE(store_->List("d").ok());
  auto changes = store_->PollChanges();
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  std::vector<std::string> got = *changes;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"d/new-name", "d/renamed-remotely", "d/seen-by-listing",
                                           "deleted-remotely", "ours"}));
  // The table forgot them: the next stat asks again and sees the new content.
  EXPECT_EQ(store_->Stat("deleted-remotely").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Stat("ours")->size, 10u);
  emu_.Control("POST", "/delta/expire");
  auto resync = store_->PollChanges();
  ASSERT_TRUE(resync.ok()) << resync.status().ToString();
  EXPECT_EQ(*resync, std::vector<std::string>{""});
  auto quiet = store_->PollChanges();
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  EXPECT_TRUE(quiet->empty());
}

TEST_F(OneDriveStoreTest, PollChangesFollowsMovesAcrossTheRoot) {
  const std::string outside = folder_ + "-outside";
  ASSERT_TRUE(client_->CreateFolder(emu_.root_id(), outside).ok());
  ASSERT_TRUE(store_->WriteAtomic("leaving", AsBytes("1")).ok());
  emu_.Control("POST", "/remote/write", {{"path", "/" + outside + "/arriving"}, {"text", "2"}});
  ASSERT_TRUE(store_->PollChanges().ok());
  emu_.Control("POST", "/remote/move",
               {{"path", "/" + folder_ + "/leaving"}, {"new_parent", "/" + outside}});
  emu_.Control("POST", "/remote/move",
               {{"path", "/" + outside + "/arriving"}, {"new_parent", "/" + folder_}});
  // A new folder with a file in it, made elsewhere.
  emu_.Control("POST", "/remote/mkdir", {{"path", "/" + folder_ + "/newdir"}});
  RemoteWrite("newdir/inner", "3");
  auto changes = store_->PollChanges();
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  std::vector<std::string> got = *changes;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"arriving", "leaving", "newdir", "newdir/inner"}));
}

TEST_F(OneDriveStoreTest, StatRefreshesAnEntryOlderThanItsFreshness) {
  auto store = OpenStore(OneDriveStoreOptions{.stat_freshness = milliseconds(0)});
  ASSERT_TRUE(store->WriteAtomic("f", AsBytes("12")).ok());
  RemoteWrite("f", "12345");
  auto info = store->Stat("f");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 5u);
  // Removed and made again by another client: a new id under the same name.
  emu_.Control("POST", "/remote/delete", {{"path", "/" + folder_ + "/f"}});
  RemoteWrite("f", "1");
  info = store->Stat("f");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 1u);
}

TEST_F(OneDriveStoreTest, ListingForgetsWhatIsGone) {
  ASSERT_TRUE(store_->MakeDir("d", 0755).ok());
  ASSERT_TRUE(store_->WriteAtomic("d/x", AsBytes("1")).ok());
  ASSERT_TRUE(store_->WriteAtomic("d/y", AsBytes("2")).ok());
  emu_.Control("POST", "/remote/delete", {{"path", "/" + folder_ + "/d/x"}});
  auto entries = store_->List("D");
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].name, "y");
  // Within the stat freshness, the listing's word counts: x is gone, y is there.
  EXPECT_EQ(store_->Stat("d/x").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->Stat("d/y").ok());
}

// A vault's first listing of a directory reads its id file and lists its entries
// folder, neither of which the store has seen: each is addressed by its path, with no
// lookup first (issue 8's "ls -l at most 3 requests" counts these).
TEST_F(OneDriveStoreTest, UnknownFolderAndSmallFileAreReadByPathWithoutLookups) {
  for (const char* dir : {"dirs", "dirs/ab", "dirs/ab/entries", "dirs/ab/empty"}) {
    emu_.Control("POST", "/remote/mkdir", {{"path", "/" + folder_ + "/" + dir}});
  }
  RemoteWrite("dirs/ab/entries/id", "0123456789abcdef");
  RemoteWrite("dirs/ab/entries/other", "x");
  auto fresh = OpenStore();
  emu_.Control("POST", "/counters/reset");
  auto id = fresh->ReadSmall("dirs/ab/entries/id", 16);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(std::string(id->begin(), id->end()), "0123456789abcdef");
  EXPECT_EQ(GraphRequests(), 1) << "one /content by path, then its download";
  EXPECT_EQ(emu_.Counter("graph.item"), 0);

  auto fresh2 = OpenStore();
  emu_.Control("POST", "/counters/reset");
  auto entries = fresh2->List("dirs/ab/entries");
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  EXPECT_EQ(entries->size(), 2u);
  EXPECT_EQ(GraphRequests(), 1) << "one listing by path";
  // What the listing taught: the folder's id, and its children's items.
  auto child = fresh2->ReadSmall("dirs/ab/entries/other", 1);
  ASSERT_TRUE(child.ok());
  auto folder = fresh2->Stat("dirs/ab/entries");
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  EXPECT_EQ(folder->type, ObjectType::kDirectory);
  EXPECT_NE(folder->mtime.tv_sec, 0) << "the folder's attributes were asked for, not made up";

  // What a path alone cannot tell is looked up: an empty folder, a file listed, a
  // folder read, a name that is not there.
  auto empty = fresh2->List("dirs/ab/empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(fresh2->List("dirs/ab/entries/id").status().code(), Code::kNotADirectory);
  EXPECT_EQ(fresh2->ReadSmall("dirs/ab", 100).status().code(), Code::kIsADirectory);
  EXPECT_EQ(fresh2->ReadSmall("dirs/ab/missing", 100).status().code(), Code::kNotFound);
  EXPECT_EQ(fresh2->List("dirs/missing").status().code(), Code::kNotFound);
  EXPECT_EQ(fresh2->ReadSmall("dirs/ab/entries/id", 15).status().code(), Code::kCorrupt)
      << "longer than the caller allows";
}

// An upload that fails after part of it was sent keeps its session for the next writer
// (the staging store journals ResumeState and retries with a new one): fed from where
// the service stands, it finishes the same session instead of sending everything again.
TEST_F(OneDriveStoreTest, AFailedStreamedUploadIsContinuedByANewWriter) {
  const Bytes content = Pattern(12 << 20, 6);
  std::string state;
  {
    auto writer = store_->Open("resumed.bin", OpenOptions{.write = true, .create = true});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Truncate(content.size()).ok());
    // The second fragment fails more often than the client retries.
    emu_.Control("POST", "/faults",
                 {{"fault", "500"}, {"on", "upload.fragment"}, {"skip", 1}, {"times", 9}});
    EXPECT_EQ((*writer)->WriteAt(0, content).code(), Code::kIoError);
    state = (*writer)->ResumeState();
    ASSERT_FALSE(state.empty()) << "the failed upload's session is handed on";
  }
  EXPECT_EQ(emu_.Counter("upload.cancel"), 0) << "a session handed on is not cancelled";
  auto writer = store_->Open("resumed.bin", OpenOptions{.write = true, .create = true});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Truncate(content.size()).ok());
  const uint64_t from = (*writer)->ResumeUpload(state);
  EXPECT_EQ(from, kTestFragment) << "the first fragment is with the service";
  ASSERT_TRUE(
      (*writer)->WriteAt(from, ByteSpan(content.data() + from, content.size() - from)).ok());
  auto committed = (*writer)->Commit(std::nullopt);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(RemoteContent("resumed.bin"), content);
  EXPECT_EQ(emu_.Counter("graph.session"), 1) << "one session from start to end";
  EXPECT_EQ(emu_.Counter("upload.cancel"), 0) << "a finished session is not cancelled";
}

TEST_F(OneDriveStoreTest, AbortDropsTheUpload) {
  ASSERT_TRUE(store_->WriteAtomic("kept", AsBytes("old")).ok());
  auto writer = store_->Open("kept", OpenOptions{.write = true, .truncate = true});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Truncate(6 << 20).ok());
  const Bytes content = Pattern(4 << 20, 9);
  ASSERT_TRUE((*writer)->WriteAt(0, content).ok());
  EXPECT_EQ(emu_.Counter("graph.session"), 1);
  ASSERT_TRUE((*writer)->Abort().ok());
  EXPECT_EQ(emu_.Counter("upload.cancel"), 1);
  EXPECT_EQ(RemoteContent("kept"), Bytes(AsBytes("old").begin(), AsBytes("old").end()));
}

TEST_F(OneDriveStoreTest, FailedCommitKeepsHeldBytesForARetry) {
  auto writer = store_->Open("retry.bin", OpenOptions{.write = true, .create = true});
  ASSERT_TRUE(writer.ok());
  const Bytes content = Pattern(5000, 4);
  ASSERT_TRUE((*writer)->WriteAt(0, content).ok());
  emu_.Control("POST", "/faults", {{"fault", "412"}, {"on", "graph.upload"}, {"times", 1}});
  EXPECT_EQ((*writer)->Commit(std::nullopt).status().code(), Code::kChangedElsewhere);
  auto committed = (*writer)->Commit(std::nullopt);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(RemoteContent("retry.bin"), content);
}

TEST_F(OneDriveStoreTest, StreamedUploadThatLosesItsSessionMustBeWrittenAgain) {
  ASSERT_TRUE(store_->WriteAtomic("stream.bin", AsBytes("old")).ok());
  const Bytes content = Pattern(8 << 20, 5);
  const size_t half = 4 << 20;
  auto writer = store_->Open("stream.bin", OpenOptions{.write = true, .truncate = true});
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Truncate(content.size()).ok());
  ASSERT_TRUE((*writer)->WriteAt(0, ByteSpan(content.data(), half)).ok());
  EXPECT_EQ(emu_.Counter("upload.fragment"), 1);
  // The session is lost; a new one would need the bytes already let go.
  emu_.Control("POST", "/upload-sessions/expire");
  EXPECT_EQ((*writer)->WriteAt(half, ByteSpan(content.data() + half, half)).code(), Code::kIoError);
  EXPECT_EQ((*writer)->Commit(std::nullopt).status().code(), Code::kIoError);
  EXPECT_EQ(RemoteContent("stream.bin"), Bytes(AsBytes("old").begin(), AsBytes("old").end()));
  // Written again from the start, it commits.
  ASSERT_TRUE((*writer)->Truncate(content.size()).ok());
  ASSERT_TRUE((*writer)->WriteAt(0, content).ok());
  auto committed = (*writer)->Commit(std::nullopt);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(RemoteContent("stream.bin"), content);
}

}  // namespace
}  // namespace cadcanfs
