// `cadcanfs status`: the daemon's control socket and what it answers (issue 10 §2,
// "an admin can see pending commits ... with no names").
#include "../../src/cli/status_command.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "../../src/cli/control_socket.h"
#include "cadcanfs/crypto/random.h"
#include "cadcanfs/store/memory_store.h"
#include "testing/forwarding_store.h"
#include "testing/temp_vault.h"

namespace cadcanfs::cli {
namespace {

using cadcanfs::testing::PatternBytes;
using cadcanfs::testing::TempDir;

TEST(ControlSocketTest, AnswersOneRequestPerConnectionAndGoesAwayWithItsServer) {
  TempDir dir;
  const std::string path = dir.path() + "/run/control.sock";
  int calls = 0;
  auto server = ControlServer::Start(path, [&calls](const nlohmann::json& request) {
    ++calls;
    return nlohmann::json{{"echo", request.value("op", "")}};
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir.path() + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  auto first = AskControlSocket(path, {{"op", "status"}});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->value("echo", ""), "status");
  auto second = AskControlSocket(path, {{"op", "again"}});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->value("echo", ""), "again");
  EXPECT_EQ(calls, 2);
  // Not an object with an "op": refused without reaching the handler.
  EXPECT_FALSE(AskControlSocket(path, nlohmann::json::array({1, 2})).ok());
  EXPECT_EQ(calls, 2);

  // A second daemon for the same mountpoint does not take a live socket over.
  auto rival = ControlServer::Start(path, [](const nlohmann::json&) { return nlohmann::json{}; });
  EXPECT_EQ(rival.status().code(), Code::kAlreadyExists);
  EXPECT_TRUE(AskControlSocket(path, {{"op", "status"}}).ok());

  server->reset();
  EXPECT_NE(stat(path.c_str(), &st), 0) << "the socket is removed with its server";
  EXPECT_EQ(AskControlSocket(path, {{"op", "status"}}).status().code(), Code::kNotFound);
}

TEST(ControlSocketTest, TheSocketIsNamedByAHashOfTheMountpointsRealPath) {
  TempDir dir;
  ASSERT_EQ(mkdir((dir.path() + "/Smith_Jane").c_str(), 0755), 0);
  auto direct = ControlSocketPathFor(dir.path() + "/Smith_Jane");
  auto roundabout = ControlSocketPathFor(dir.path() + "/./Smith_Jane/../Smith_Jane");
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  ASSERT_TRUE(roundabout.ok());
  EXPECT_EQ(*direct, *roundabout);
  EXPECT_EQ(direct->find("Smith"), std::string::npos);
  EXPECT_TRUE(direct->ends_with(".sock"));
  EXPECT_FALSE(ControlSocketPathFor(dir.path() + "/missing").ok());
}

TEST(StatusReplyTest, AStoreWrittenInPlaceOwesNothing) {
  const nlohmann::json reply = StatusReply("vault", nullptr);
  EXPECT_EQ(reply.value("format", ""), "vault");
  EXPECT_FALSE(reply.value("staging", true));
  EXPECT_EQ(reply.value("pending_commits", 99), 0);
}

// A commit the store keeps refusing: the reply counts it, its bytes and retries, and
// names it by stage id only.
class RefusingFile final : public cadcanfs::testing::ForwardingStoreFile {
 public:
  using ForwardingStoreFile::ForwardingStoreFile;
  Result<ObjectInfo> Commit(std::optional<std::string>) override {
    return Status::Error(Code::kRetryLater, "the store is throttling requests");
  }
};

class RefusingStore final : public cadcanfs::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<std::unique_ptr<StoreFile>> Open(std::string_view path,
                                          const OpenOptions& options) override {
    CADCANFS_ASSIGN_OR_RETURN(auto file, ForwardingStore::Open(path, options));
    if (!options.write || !refuse) return file;
    return std::unique_ptr<StoreFile>(std::make_unique<RefusingFile>(std::move(file)));
  }
  std::atomic<bool> refuse{false};
};

TEST(StatusReplyTest, PendingCommitsAreCountedWithoutNames) {
  TempDir dir;
  auto memory = NewMemoryStore();
  auto refusing = std::make_unique<RefusingStore>(*memory);
  RefusingStore* below = refusing.get();
  SecretBytes key(kStagingKeySize);
  ASSERT_TRUE(FillRandom(std::span<uint8_t>(key.data(), key.size())).ok());
  auto staging = OpenStagingStore(std::move(refusing),
                                  StagingOptions{.spill_dir = dir.path() + "/spill",
                                                 .key = std::move(key),
                                                 .first_retry = std::chrono::milliseconds(5),
                                                 .longest_retry = std::chrono::milliseconds(10)});
  ASSERT_TRUE(staging.ok()) << staging.status().ToString();
  {
    auto file = (*staging)->Open("Doe_John_crown.stl", OpenOptions{.write = true, .create = true});
    ASSERT_TRUE(file.ok());
    below->refuse = true;
    ASSERT_TRUE((*file)->WriteAt(0, PatternBytes(5000, 1)).ok());
  }
  EXPECT_EQ((*staging)->Drain(std::chrono::milliseconds(100)), 1u);

  const nlohmann::json reply = StatusReply("plain", staging->get());
  EXPECT_TRUE(reply.value("staging", false));
  EXPECT_EQ(reply.value("cache_dir", ""), dir.path() + "/spill");
  EXPECT_EQ(reply.value("pending_commits", 0), 1);
  EXPECT_EQ(reply.value("pending_bytes", 0), 5000);
  EXPECT_GT(reply.value("failed_attempts", 0), 0);
  ASSERT_TRUE(reply["last_error"].is_object());
  EXPECT_EQ(reply["last_error"].value("code", ""), CodeName(Code::kRetryLater));
  ASSERT_EQ(reply["pending"].size(), 1u);
  const std::string stage_id = reply["pending"][0].value("stage_id", "");
  EXPECT_EQ(stage_id.size(), 32u);
  struct stat st;
  EXPECT_EQ(stat((dir.path() + "/spill/" + stage_id + ".spill").c_str(), &st), 0)
      << "the stage id names the spill file an admin finds in the cache dir";
  EXPECT_EQ(reply.dump().find("Doe"), std::string::npos);

  below->refuse = false;
  EXPECT_EQ((*staging)->Drain(std::chrono::seconds(10)), 0u);
  EXPECT_EQ(StatusReply("plain", staging->get()).value("pending_commits", 99), 0);
}

}  // namespace
}  // namespace cadcanfs::cli
