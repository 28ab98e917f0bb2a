// GraphClient against the Graph emulator: listing, downloads, uploads, faults, delta.
#include "cadcanfs/graph/graph_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "graph/emulator.h"

namespace cadcanfs::graph {
namespace {

using std::chrono::milliseconds;
using testing::SharedEmulator;

Bytes Pattern(size_t size, uint8_t seed) {
  Bytes data(size);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& byte : data) {
    x = x * 1664525u + 1013904223u;
    byte = static_cast<uint8_t>(x >> 24);
  }
  return data;
}

ContentReader ReaderOf(const Bytes& content) {
  return [&content](uint64_t offset, MutableByteSpan out) {
    if (offset + out.size() > content.size()) return Status::Error(Code::kInternal, "past end");
    if (!out.empty()) std::memcpy(out.data(), content.data() + offset, out.size());
    return Status::Ok();
  };
}

class GraphClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emu_.Control("POST", "/reset");
    auto http = HttpClient::Create(HttpClientOptions{});
    ASSERT_TRUE(http.ok());
    http_ = std::move(http).value();
    LoginSettings settings;
    settings.login_url = emu_.login_url();
    settings.client_id = "cadcanfs-test-client";
    auth_ = std::make_unique<Authenticator>(*http_, settings);
    auth_->SetRefreshToken(
        SecretBytes::CopyOf(AsBytes(emu_.IssueTokens()["refresh_token"].get<std::string>())));
    RetryPolicy policy;
    policy.initial_backoff = milliseconds(20);
    policy.max_backoff = milliseconds(200);
    pacer_ = std::make_unique<Pacer>(policy);
    options_.graph_url = emu_.graph_url();
    options_.fragment_size = 10 * kFragmentUnit;  // 3.2 MiB: a 12 MiB file takes 4
    client_ = std::make_unique<GraphClient>(*http_, *pacer_, *auth_, options_);
    folder_name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto folder = client_->CreateFolder(emu_.root_id(), folder_name_);
    ASSERT_TRUE(folder.ok()) << folder.status().ToString();
    folder_ = *folder;
    emu_.Control("POST", "/counters/reset");
  }

  DriveItem UploadNew(const std::string& name, const Bytes& content) {
    auto item = client_->UploadSimple(UploadTarget{"", folder_.id, name}, content);
    EXPECT_TRUE(item.ok()) << item.status().ToString();
    return item.ok() ? *item : DriveItem{};
  }

  Bytes RemoteContent(const std::string& name) {
    auto reply = emu_.Control("GET", "/remote/read?path=/" + folder_name_ + "/" + name);
    auto decoded = Base64Decode(reply["content_b64"].get<std::string>());
    return decoded.value_or(Bytes{});
  }

  nlohmann::json Counters() { return emu_.Control("GET", "/counters"); }

  // Faults that skip the first N requests of a kind count every request the emulator
  // serves, also one a previous test's abandoned connection delivers late (on a loaded
  // machine). Waits until the counters hold still, then starts from a clean slate.
  void WaitForQuietEmulator() {
    nlohmann::json last = Counters();
    for (int i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(milliseconds(150));
      nlohmann::json now = Counters();
      if (now == last) break;
      last = std::move(now);
    }
    emu_.Control("POST", "/counters/reset");
  }

  testing::Emulator& emu_ = SharedEmulator();
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Pacer> pacer_;
  GraphClientOptions options_;
  std::unique_ptr<GraphClient> client_;
  std::string folder_name_;
  DriveItem folder_;
};

TEST_F(GraphClientTest, Listing2500ChildrenCostsThreeRequests) {
  auto big = client_->ItemByPath("/big");
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_TRUE(big->is_folder);
  emu_.Control("POST", "/counters/reset");
  auto children = client_->ListChildren(big->id);
  ASSERT_TRUE(children.ok()) << children.status().ToString();
  ASSERT_EQ(children->size(), 2500u);
  EXPECT_EQ(emu_.Counter("graph.children"), 3);
  EXPECT_EQ(Counters()["graph_requests"], 3);
  for (const DriveItem& child : *children) {
    ASSERT_TRUE(child.is_file);
    ASSERT_FALSE(child.id.empty());
    ASSERT_FALSE(child.etag.empty());
    ASSERT_GT(child.size, 0);
    ASSERT_EQ(child.parent_id, big->id);
    ASSERT_NE(child.mtime, TimePoint{});
  }
}

TEST_F(GraphClientTest, PathsWithSpecialCharactersResolve) {
  const std::string name = "a b#c%d+e&f'(1).stl";
  const TimePoint mtime{std::chrono::seconds(1'600'000'000)};
  UploadOptions options;
  options.mtime = mtime;
  auto item = client_->UploadSimple(UploadTarget{"", folder_.id, name}, Pattern(100, 1), options);
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  auto found = client_->ItemByPath("/" + folder_name_ + "/" + name);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->id, item->id);
  EXPECT_EQ(found->name, name);
  EXPECT_EQ(found->size, 100);
  EXPECT_EQ(found->mtime, mtime);
  EXPECT_EQ(client_->ItemByPath("/" + folder_name_ + "/missing").status().code(), Code::kNotFound);
}

TEST_F(GraphClientTest, AddressesADriveById) {
  GraphClientOptions by_id = options_;
  by_id.drive_id = emu_.info()["drive_id"];
  GraphClient client(*http_, *pacer_, *auth_, by_id);
  EXPECT_NE(client.drive_base().find("/drives/"), std::string::npos);
  auto folder = client.ItemByPath("/" + folder_name_);
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  EXPECT_EQ(folder->id, folder_.id);
  auto children = client.ListChildren(folder_.id);
  ASSERT_TRUE(children.ok());
  EXPECT_TRUE(children->empty());
}

TEST_F(GraphClientTest, RangedDownloadFollowsTheRedirectWithoutAuthorization) {
  const Bytes content = Pattern(1 << 20, 2);
  DriveItem item = UploadNew("scan.stl", content);
  emu_.Control("POST", "/counters/reset");
  Bytes out(5000);
  auto n = client_->Download(item.id, 1000, out);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, out.size());
  EXPECT_EQ(0, std::memcmp(out.data(), content.data() + 1000, out.size()));
  // A second range reuses the download URL: no second /content request.
  n = client_->Download(item.id, content.size() - 100, out);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 100u);
  EXPECT_EQ(0, std::memcmp(out.data(), content.data() + content.size() - 100, 100));
  n = client_->Download(item.id, content.size(), out);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  auto counters = Counters();
  EXPECT_EQ(counters["requests"]["graph.content"], 1);
  EXPECT_EQ(counters["statuses"]["download 206"], 2);
  EXPECT_EQ(counters["auth_header_on_content_urls"]["download"], 0);
}

TEST_F(GraphClientTest, DownloadHandlesAServerThatIgnoresRange) {
  const Bytes content = Pattern(300'000, 3);
  DriveItem item = UploadNew("ignored.bin", content);
  emu_.Control("POST", "/faults", {{"fault", "ignore_range"}, {"times", 1}});
  Bytes out(1000);
  auto n = client_->Download(item.id, 250'000, out);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, out.size());
  EXPECT_EQ(0, std::memcmp(out.data(), content.data() + 250'000, out.size()));
  EXPECT_EQ(Counters()["statuses"]["download 200"], 1);
}

TEST_F(GraphClientTest, DownloadGetsAFreshUrlAfterExpiry) {
  const Bytes content = Pattern(10'000, 4);
  DriveItem item = UploadNew("expiring.bin", content);
  Bytes out(100);
  ASSERT_TRUE(client_->Download(item.id, 0, out).ok());
  emu_.Control("POST", "/download-urls/expire");
  auto n = client_->Download(item.id, 5000, out);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, 100u);
  EXPECT_EQ(0, std::memcmp(out.data(), content.data() + 5000, 100));
  EXPECT_EQ(emu_.Counter("graph.content"), 2);
  EXPECT_EQ(Counters()["auth_header_on_content_urls"]["download"], 0);
}

TEST_F(GraphClientTest, SimpleUploadHonoursIfMatchAndConflictBehavior) {
  DriveItem item = UploadNew("crown.stl", Pattern(1000, 5));
  UploadOptions replace;
  replace.if_match = item.etag;
  auto replaced = client_->UploadSimple(UploadTarget{item.id, "", ""}, Pattern(2000, 6), replace);
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_EQ(replaced->size, 2000);
  EXPECT_EQ(RemoteContent("crown.stl"), Pattern(2000, 6));
  // The old eTag no longer matches.
  auto stale = client_->UploadSimple(UploadTarget{item.id, "", ""}, Pattern(10, 7), replace);
  EXPECT_EQ(stale.status().code(), Code::kChangedElsewhere);
  UploadOptions fail;
  fail.conflict = ConflictBehavior::kFail;
  auto clash =
      client_->UploadSimple(UploadTarget{"", folder_.id, "CROWN.stl"}, Pattern(10, 8), fail);
  EXPECT_EQ(clash.status().code(), Code::kAlreadyExists);
  // An empty file goes by simple PUT.
  auto empty = client_->Upload(UploadTarget{"", folder_.id, "empty"}, 0, ReaderOf(Bytes{}));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->size, 0);
}

TEST_F(GraphClientTest, UploadSessionSurvivesADroppedConnectionAndALostReply) {
  const Bytes content = Pattern(12 * 1024 * 1024 + 12345, 9);
  emu_.Control("POST", "/faults", {{"fault", "drop"}, {"store", true}, {"times", 1}});
  WaitForQuietEmulator();
  emu_.Control("POST", "/faults", {{"fault", "lose_reply"}, {"skip", 1}, {"times", 1}});
  UploadOptions options;
  options.mtime = TimePoint{std::chrono::seconds(1'650'000'000)};
  auto item = client_->Upload(UploadTarget{"", folder_.id, "model.stl"}, content.size(),
                              ReaderOf(content), options);
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  EXPECT_EQ(item->size, static_cast<int64_t>(content.size()));
  EXPECT_EQ(item->mtime, *options.mtime);
  // The emulator hashed what it stored: equal hashes mean equal content.
  EXPECT_EQ(item->quick_xor_hash, QuickXorHashBase64(content));
  auto counters = Counters();
  EXPECT_EQ(counters["faults_fired"], 2);
  EXPECT_EQ(counters["auth_header_on_content_urls"]["upload"], 0);
  EXPECT_GE(counters["requests"]["upload.status"], 1);  // asked where to resume
}

TEST_F(GraphClientTest, UploadSessionIsRecreatedWhenItVanishes) {
  const Bytes content = Pattern(5 * 1024 * 1024, 10);
  WaitForQuietEmulator();
  emu_.Control("POST", "/faults",
               {{"fault", "session_gone"}, {"on", "upload.fragment"}, {"skip", 1}, {"times", 1}});
  emu_.Control("POST", "/faults", {{"fault", "omit_hashes"}});
  auto item =
      client_->Upload(UploadTarget{"", folder_.id, "gone.bin"}, content.size(), ReaderOf(content));
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  EXPECT_TRUE(item->quick_xor_hash.empty());  // a reply without hashes is accepted
  EXPECT_EQ(RemoteContent("gone.bin"), content);
  EXPECT_EQ(emu_.Counter("graph.session"), 2);
}

TEST_F(GraphClientTest, FinalFragmentWhoseReplyWasLostCountsAsCommitted) {
  const Bytes content = Pattern(5 * 1024 * 1024, 19);  // two fragments
  WaitForQuietEmulator();
  emu_.Control("POST", "/faults", {{"fault", "lose_reply"}, {"skip", 1}, {"times", 1}});
  UploadOptions fail;
  fail.conflict = ConflictBehavior::kFail;  // a second upload would clash with the first
  auto item = client_->Upload(UploadTarget{"", folder_.id, "last.bin"}, content.size(),
                              ReaderOf(content), fail);
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  EXPECT_EQ(item->quick_xor_hash, QuickXorHashBase64(content));
  EXPECT_EQ(emu_.Counter("graph.session"), 1);
  EXPECT_EQ(Counters()["faults_fired"], 1);
}

TEST_F(GraphClientTest, UploadSessionStateResumesAfterARestart) {
  const Bytes content = Pattern(5 * 1024 * 1024, 11);
  auto state = client_->CreateUploadSession(UploadTarget{"", folder_.id, "resumed.bin"},
                                            content.size(), UploadOptions{});
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  // Stop after the first fragment, as if the daemon died; persist the state.
  std::string saved;
  int fragments = 0;
  auto stopping_reader = [&](uint64_t offset, MutableByteSpan out) {
    if (++fragments > 1) return Status::Error(Code::kInterrupted, "daemon stopped");
    return ReaderOf(content)(offset, out);
  };
  auto first = client_->ContinueUploadSession(
      *state, stopping_reader, [&](const UploadSessionState& s) { saved = s.Serialize(); });
  ASSERT_EQ(first.status().code(), Code::kInterrupted);
  auto restored = UploadSessionState::Deserialize(saved);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->next_offset, options_.fragment_size);
  auto item = client_->ContinueUploadSession(*restored, ReaderOf(content));
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  EXPECT_EQ(item->quick_xor_hash, QuickXorHashBase64(content));
  EXPECT_EQ(RemoteContent("resumed.bin"), content);
  // A cancelled session is gone.
  auto another = client_->CreateUploadSession(UploadTarget{"", folder_.id, "cancelled.bin"},
                                              content.size(), UploadOptions{});
  ASSERT_TRUE(another.ok());
  ASSERT_TRUE(client_->CancelUploadSession(*another).ok());
  EXPECT_EQ(emu_.Counter("upload.cancel"), 1);
}

TEST_F(GraphClientTest, ThrottledListingCompletes) {
  UploadNew("one", Pattern(10, 12));
  emu_.Control("POST", "/faults", {{"fault", "429"}, {"on", "graph.children"}, {"retry_after", 1}});
  emu_.Control("POST", "/faults", {{"fault", "429"}, {"on", "graph.children"}});
  emu_.Control("POST", "/faults", {{"fault", "503"}, {"on", "graph.children"}});
  const auto start = std::chrono::steady_clock::now();
  auto children = client_->ListChildren(folder_.id);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(children.ok()) << children.status().ToString();
  EXPECT_EQ(children->size(), 1u);
  EXPECT_EQ(Counters()["faults_fired"], 3);
  EXPECT_GE(elapsed, milliseconds(1000));  // Retry-After: 1 was honoured
  EXPECT_LT(elapsed, milliseconds(5000));
}

TEST_F(GraphClientTest, ThrottledUploadCompletes) {
  const Bytes content = Pattern(5 * 1024 * 1024, 13);
  emu_.Control("POST", "/faults", {{"fault", "429"}, {"on", "graph.session"}, {"retry_after", 1}});
  emu_.Control("POST", "/faults", {{"fault", "503"}, {"on", "upload.fragment"}, {"store", true}});
  auto item = client_->Upload(UploadTarget{"", folder_.id, "throttled.bin"}, content.size(),
                              ReaderOf(content));
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  EXPECT_EQ(RemoteContent("throttled.bin"), content);
  EXPECT_EQ(Counters()["faults_fired"], 2);
}

TEST_F(GraphClientTest, QuotaExceededIsReported) {
  emu_.Control("POST", "/settings", {{"quota_bytes", 1}});
  auto simple = client_->UploadSimple(UploadTarget{"", folder_.id, "small"}, Pattern(1000, 14));
  EXPECT_EQ(simple.status().code(), Code::kQuotaExceeded);
  const Bytes big = Pattern(5 * 1024 * 1024, 15);
  auto session = client_->Upload(UploadTarget{"", folder_.id, "big"}, big.size(), ReaderOf(big));
  EXPECT_EQ(session.status().code(), Code::kQuotaExceeded);
}

TEST_F(GraphClientTest, NameRulesAreEnforced) {
  for (const char* bad :
       {"a:b", "CON", "lpt1.txt", "trailing.", " leading", "x_vti_y", "desktop.ini", "~$lock"}) {
    auto created = client_->CreateFolder(folder_.id, bad);
    EXPECT_EQ(created.status().code(), Code::kInvalidArgument) << bad;
  }
  ASSERT_TRUE(client_->CreateFolder(folder_.id, "Case").ok());
  EXPECT_EQ(client_->CreateFolder(folder_.id, "case").status().code(), Code::kAlreadyExists);
  emu_.Control("POST", "/settings", {{"max_path_length", 40}});
  auto deep = client_->CreateFolder(folder_.id, std::string(40, 'x'));
  EXPECT_EQ(deep.status().code(), Code::kNameTooLong);
}

TEST_F(GraphClientTest, RenameMoveAndDeleteWithIfMatch) {
  const TimePoint mtime{std::chrono::seconds(1'500'000'000)};
  UploadOptions options;
  options.mtime = mtime;
  auto file =
      client_->UploadSimple(UploadTarget{"", folder_.id, "old.stl"}, Pattern(10, 16), options);
  ASSERT_TRUE(file.ok());
  auto sub = client_->CreateFolder(folder_.id, "sub");
  ASSERT_TRUE(sub.ok());
  ItemUpdate move;
  move.new_name = "new.stl";
  move.new_parent_id = sub->id;
  move.mtime = mtime;
  move.if_match = file->etag;
  auto moved = client_->Update(file->id, move);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->id, file->id);
  EXPECT_EQ(moved->name, "new.stl");
  EXPECT_EQ(moved->parent_id, sub->id);
  EXPECT_EQ(moved->mtime, mtime);
  EXPECT_EQ(client_->Update(file->id, move).status().code(), Code::kChangedElsewhere);
  EXPECT_EQ(client_->Delete(file->id, file->etag).code(), Code::kChangedElsewhere);
  EXPECT_TRUE(client_->Delete(file->id, moved->etag).ok());
  EXPECT_EQ(client_->Item(file->id).status().code(), Code::kNotFound);
}

TEST_F(GraphClientTest, DeltaPagesKeepsTheLastStateAndResyncsOn410) {
  GraphClientOptions paged = options_;
  paged.delta_page_size = 1000;
  GraphClient client(*http_, *pacer_, *auth_, paged);
  auto full = client.Delta("");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_FALSE(full->delta_link.empty());
  EXPECT_GE(emu_.Counter("graph.delta"), 3);  // 2500+ items in pages of 1000
  bool saw_folder = false;
  for (const DriveItem& item : full->changes) saw_folder = saw_folder || item.id == folder_.id;
  EXPECT_TRUE(saw_folder);

  DriveItem file = UploadNew("a.stl", Pattern(10, 17));
  DriveItem doomed = UploadNew("doomed.stl", Pattern(10, 18));
  emu_.Control("POST", "/remote/write", {{"path", "/" + folder_name_ + "/a.stl"}, {"text", "v2"}});
  emu_.Control("POST", "/remote/rename",
               {{"path", "/" + folder_name_ + "/a.stl"}, {"new_name", "b.stl"}});
  emu_.Control("POST", "/remote/delete", {{"path", "/" + folder_name_ + "/doomed.stl"}});
  auto changes = client.Delta(full->delta_link);
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  int file_entries = 0;
  bool doomed_deleted = false;
  for (const DriveItem& item : changes->changes) {
    if (item.id == file.id) {
      ++file_entries;
      EXPECT_EQ(item.name, "b.stl");
      EXPECT_EQ(item.size, 2);
    }
    if (item.id == doomed.id) doomed_deleted = item.deleted;
  }
  EXPECT_EQ(file_entries, 1);
  EXPECT_TRUE(doomed_deleted);

  emu_.Control("POST", "/delta/expire");
  auto gone = client.Delta(changes->delta_link);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_TRUE(gone->resync_required);
  auto resynced = client.Delta(gone->resync_link);
  ASSERT_TRUE(resynced.ok()) << resynced.status().ToString();
  EXPECT_FALSE(resynced->resync_required);
  EXPECT_FALSE(resynced->delta_link.empty());
  EXPECT_GT(resynced->changes.size(), 2500u);
}

}  // namespace
}  // namespace cadcanfs::graph
