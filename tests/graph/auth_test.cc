// The device-code sign-in and token renewal against the Graph emulator.
#include "cadcanfs/graph/auth.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "cadcanfs/common/log.h"
#include "cadcanfs/graph/graph_client.h"
#include "graph/emulator.h"

namespace cadcanfs::graph {
namespace {

using std::chrono::milliseconds;
using testing::SharedEmulator;

GraphClientOptions OptionsFor(const std::string& graph_url) {
  GraphClientOptions options;
  options.graph_url = graph_url;
  return options;
}

std::string Text(const SecretBytes& secret) { return std::string(AsChars(secret.span())); }

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emu_.Control("POST", "/reset");
    emu_.Control("POST", "/settings",
                 {{"device_code_interval", 0.1}, {"slow_down_increment", 0.1}});
    auto http = HttpClient::Create(HttpClientOptions{});
    ASSERT_TRUE(http.ok());
    http_ = std::move(http).value();
    settings_.login_url = emu_.login_url();
    settings_.client_id = "cadcanfs-test-client";
    timing_.slow_down_increment = milliseconds(150);
  }

  std::unique_ptr<Authenticator> NewAuthenticator() {
    auto auth = std::make_unique<Authenticator>(*http_, settings_, timing_);
    auth->SetRefreshTokenSink([this](const SecretBytes& token) {
      refresh_tokens_.push_back(Text(token));
      return Status::Ok();
    });
    return auth;
  }

  // Signs in with a control-API action on the code as soon as it is shown.
  Status LoginWith(Authenticator& auth, const std::string& action, milliseconds delay) {
    std::thread actor;
    Status status = auth.LoginWithDeviceCode([&](const DeviceCodePrompt& prompt) {
      prompt_ = prompt;
      actor = std::thread([this, action, delay, code = prompt.user_code] {
        std::this_thread::sleep_for(delay);
        emu_.Control("POST", "/device/" + action, {{"user_code", code}});
      });
    });
    actor.join();
    return status;
  }

  int64_t TokenStatusCount(long status) {
    auto statuses = emu_.Control("GET", "/counters")["statuses"];
    const std::string key = "auth.token " + std::to_string(status);
    return statuses.contains(key) ? statuses[key].get<int64_t>() : 0;
  }

  testing::Emulator& emu_ = SharedEmulator();
  std::unique_ptr<HttpClient> http_;
  LoginSettings settings_;
  AuthTiming timing_;
  DeviceCodePrompt prompt_;
  std::vector<std::string> refresh_tokens_;
};

TEST_F(AuthTest, DeviceCodeLoginEndToEnd) {
  auto auth = NewAuthenticator();
  ASSERT_TRUE(LoginWith(*auth, "approve", milliseconds(350)).ok());
  EXPECT_FALSE(prompt_.user_code.empty());
  EXPECT_FALSE(prompt_.verification_uri.empty());
  EXPECT_GE(TokenStatusCount(400), 1);  // authorization_pending before the approval
  EXPECT_EQ(TokenStatusCount(200), 1);
  ASSERT_EQ(refresh_tokens_.size(), 1u);
  auto token = auth->AccessToken();
  ASSERT_TRUE(token.ok());
  Pacer pacer;
  GraphClient client(*http_, pacer, *auth, OptionsFor(emu_.graph_url()));
  auto root = client.ItemByPath("/");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(root->id, emu_.root_id());
}

TEST_F(AuthTest, SlowDownLengthensTheInterval) {
  emu_.Control("POST", "/faults", {{"fault", "slow_down"}, {"times", 1}});
  auto auth = NewAuthenticator();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(LoginWith(*auth, "approve", milliseconds(0)).ok());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(emu_.Control("GET", "/counters")["faults_fired"], 1);
  // The emulator sends a whole-second interval (0 here); after the slow_down the next
  // poll waits at least our 150 ms increment.
  EXPECT_GE(elapsed, milliseconds(150));
  EXPECT_EQ(TokenStatusCount(400), 1);
  EXPECT_EQ(TokenStatusCount(200), 1);
}

TEST_F(AuthTest, DeclinedLoginFails) {
  auto auth = NewAuthenticator();
  Status status = LoginWith(*auth, "decline", milliseconds(0));
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_NE(status.message().find("declined"), std::string::npos);
  EXPECT_TRUE(refresh_tokens_.empty());
}

TEST_F(AuthTest, ExpiredCodeFails) {
  auto auth = NewAuthenticator();
  Status status = LoginWith(*auth, "expire", milliseconds(0));
  EXPECT_EQ(status.code(), Code::kStale);
  EXPECT_NE(status.message().find("expired"), std::string::npos);
}

TEST_F(AuthTest, RefreshTokenRotatesWhenTokensExpireMidSequence) {
  auto tokens = emu_.IssueTokens();
  auto auth = NewAuthenticator();
  std::string first = tokens["refresh_token"];
  auth->SetRefreshToken(SecretBytes::CopyOf(AsBytes(first)));
  Pacer pacer;
  GraphClient client(*http_, pacer, *auth, OptionsFor(emu_.graph_url()));
  ASSERT_TRUE(client.ItemByPath("/").ok());
  ASSERT_EQ(refresh_tokens_.size(), 1u);
  EXPECT_NE(refresh_tokens_[0], first);
  for (int round = 0; round < 2; ++round) {
    emu_.Control("POST", "/tokens/expire");
    // The emulator refuses a used refresh token, so this works only with the rotated one.
    auto children = client.ListChildren(emu_.root_id());
    ASSERT_TRUE(children.ok()) << children.status().ToString();
  }
  ASSERT_EQ(refresh_tokens_.size(), 3u);
  EXPECT_NE(refresh_tokens_[1], refresh_tokens_[0]);
  EXPECT_NE(refresh_tokens_[2], refresh_tokens_[1]);
}

TEST_F(AuthTest, AccessTokenRenewedBeforeItExpires) {
  emu_.Control("POST", "/settings", {{"access_token_ttl", 1.0}});
  auto auth = NewAuthenticator();
  auth->SetRefreshToken(
      SecretBytes::CopyOf(AsBytes(emu_.IssueTokens()["refresh_token"].get<std::string>())));
  auto first = auth->AccessToken();
  ASSERT_TRUE(first.ok());
  auto again = auth->AccessToken();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Text(*first), Text(*again));           // still fresh: no renewal
  std::this_thread::sleep_for(milliseconds(850));  // past 80 % of 1 s
  auto renewed = auth->AccessToken();
  ASSERT_TRUE(renewed.ok());
  EXPECT_NE(Text(*first), Text(*renewed));
  EXPECT_EQ(emu_.Counter("auth.token"), 2);
}

// Two processes share a token file (a daemon and a command run beside it): when one
// rotates the refresh token, the other, refused, takes the successor from the file.
TEST_F(AuthTest, ARefusedRefreshTokenIsRetriedOnceWithTheStoredOne) {
  const std::string issued = emu_.IssueTokens()["refresh_token"];
  std::string stored = issued;  // the shared token file
  auto share = [&stored](Authenticator& auth) {
    auth.SetRefreshToken(SecretBytes::CopyOf(AsBytes(stored)));
    auth.SetRefreshTokenSink([&stored](const SecretBytes& token) {
      stored = Text(token);
      return Status::Ok();
    });
    auth.SetRefreshTokenSource(
        [&stored]() -> std::optional<SecretBytes> { return SecretBytes::CopyOf(AsBytes(stored)); });
  };
  Authenticator daemon(*http_, settings_, timing_);
  Authenticator command(*http_, settings_, timing_);
  share(daemon);
  share(command);  // both hold the issued token
  ASSERT_TRUE(daemon.AccessToken().ok());
  EXPECT_NE(stored, issued) << "the daemon rotated it";
  auto token = command.AccessToken();
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(TokenStatusCount(400), 1) << "the issued token was refused once";

  AuthTiming brief = timing_;
  brief.rotation_wait = milliseconds(200);
  brief.rotation_poll = milliseconds(10);
  Authenticator alone(*http_, settings_, brief);
  alone.SetRefreshToken(SecretBytes::CopyOf(AsBytes(issued)));
  int looks = 0;
  alone.SetRefreshTokenSource([&issued, &looks]() -> std::optional<SecretBytes> {
    ++looks;
    return SecretBytes::CopyOf(AsBytes(issued));
  });
  auto refused = alone.AccessToken();
  ASSERT_FALSE(refused.ok()) << "the same token is not tried twice";
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_GT(looks, 1) << "the file was looked at again while a successor could arrive";
  EXPECT_EQ(TokenStatusCount(400), 2);
}

// The process that redeemed the shared token saves its successor a moment after the
// service answered it: the refused one waits for the file to change, not giving up on
// the first look (a remount right after an unmount met this).
TEST_F(AuthTest, ARefusedRefreshTokenAwaitsTheSuccessorBeingSaved) {
  const std::string issued = emu_.IssueTokens()["refresh_token"];
  std::string successor;
  Authenticator daemon(*http_, settings_, timing_);
  daemon.SetRefreshToken(SecretBytes::CopyOf(AsBytes(issued)));
  daemon.SetRefreshTokenSink([&successor](const SecretBytes& token) {
    successor = Text(token);
    return Status::Ok();
  });
  ASSERT_TRUE(daemon.AccessToken().ok());

  AuthTiming brief = timing_;
  brief.rotation_poll = milliseconds(10);
  Authenticator command(*http_, settings_, brief);
  command.SetRefreshToken(SecretBytes::CopyOf(AsBytes(issued)));
  int looks = 0;
  command.SetRefreshTokenSource([&]() -> std::optional<SecretBytes> {
    return SecretBytes::CopyOf(AsBytes(++looks < 4 ? issued : successor));
  });
  auto token = command.AccessToken();
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(looks, 4) << "the successor is taken as soon as the file holds it";
  EXPECT_EQ(TokenStatusCount(400), 1);
}

TEST_F(AuthTest, RevokedRefreshTokenAsksForLoginAgain) {
  auto auth = NewAuthenticator();
  auth->SetRefreshToken(
      SecretBytes::CopyOf(AsBytes(emu_.IssueTokens()["refresh_token"].get<std::string>())));
  ASSERT_TRUE(auth->AccessToken().ok());
  emu_.Control("POST", "/tokens/revoke-refresh");
  emu_.Control("POST", "/tokens/expire");
  Pacer pacer;
  GraphClient client(*http_, pacer, *auth, OptionsFor(emu_.graph_url()));
  auto root = client.ItemByPath("/");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), Code::kPermissionDenied);
  EXPECT_NE(root.status().message().find("login again"), std::string::npos);
}

TEST_F(AuthTest, NoTokenReachesTheLogEvenAtDebug) {
  InitLogging(LogOptions{LogTarget::kStderr, spdlog::level::trace});
  ::testing::internal::CaptureStderr();
  emu_.Control("POST", "/faults", {{"fault", "slow_down"}, {"times", 1}});
  auto auth = NewAuthenticator();
  Status login = LoginWith(*auth, "approve", milliseconds(0));
  auto access = auth->AccessToken();
  emu_.Control("POST", "/tokens/expire");
  Pacer pacer;
  GraphClient client(*http_, pacer, *auth, OptionsFor(emu_.graph_url()));
  auto root = client.ItemByPath("/");
  auto renewed = auth->AccessToken();
  spdlog::default_logger()->flush();
  const std::string log = ::testing::internal::GetCapturedStderr();
  InitLogging(LogOptions{});
  ASSERT_TRUE(login.ok());
  ASSERT_TRUE(access.ok());
  ASSERT_TRUE(root.ok());
  ASSERT_TRUE(renewed.ok());
  ASSERT_EQ(refresh_tokens_.size(), 2u);
  // The flow did log at debug level, and none of it is secret.
  EXPECT_NE(log.find("access token renewed"), std::string::npos) << log;
  EXPECT_NE(log.find("slowed down"), std::string::npos) << log;
  for (const std::string& secret :
       {Text(*access), Text(*renewed), refresh_tokens_[0], refresh_tokens_[1]}) {
    ASSERT_FALSE(secret.empty());
    EXPECT_EQ(log.find(secret), std::string::npos);
    EXPECT_EQ(log.find(secret.substr(0, 12)), std::string::npos);
  }
  EXPECT_EQ(log.find(prompt_.user_code), std::string::npos);
  EXPECT_EQ(log.find("Bearer"), std::string::npos);
  EXPECT_EQ(log.find("Authorization"), std::string::npos);
}

}  // namespace
}  // namespace cadcanfs::graph
