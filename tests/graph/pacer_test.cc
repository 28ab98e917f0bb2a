#include "cadcanfs/graph/pacer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cadcanfs::graph {
namespace {

HttpResponse Reply(long status, std::string body = {},
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse response;
  response.status = status;
  response.headers = std::move(headers);
  response.body.assign(body.begin(), body.end());
  return response;
}

// A clock that only moves when the pacer sleeps.
struct FakeTime {
  Clock::time_point now = Clock::from_time_t(1'700'000'000);
  Duration slept{0};
  std::vector<Duration> sleeps;
  PacerClock clock() {
    return PacerClock{[this] { return now; },
                      [this](Duration wait) {
                        now += wait;
                        slept += wait;
                        sleeps.push_back(wait);
                      }};
  }
};

// Replies from a script, one per attempt.
struct Script {
  std::vector<Result<HttpResponse>> replies;
  size_t calls = 0;
  std::function<Result<HttpResponse>()> attempt() {
    return [this]() -> Result<HttpResponse> { return replies.at(calls++); };
  }
};

TEST(PacerTest, ThrottleHonoursRetryAfterSeconds) {
  FakeTime time;
  Pacer pacer(RetryPolicy{}, time.clock());
  Script script{
      {Reply(429, "", {{"retry-after", "3"}}), Reply(503, "", {{"retry-after", "1"}}), Reply(200)}};
  auto result = pacer.Run(script.attempt());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(script.calls, 3u);
  EXPECT_EQ(time.slept, Duration(4000));
}

TEST(PacerTest, RetryAfterAsHttpDate) {
  const auto now = Clock::from_time_t(1'700'000'000);  // Tue, 14 Nov 2023 22:13:20 GMT
  auto wait =
      ParseRetryAfter(Reply(429, "", {{"retry-after", "Tue, 14 Nov 2023 22:13:27 GMT"}}), now);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, Duration(7000));
  EXPECT_FALSE(ParseRetryAfter(Reply(429), now).has_value());
  EXPECT_FALSE(ParseRetryAfter(Reply(429, "", {{"retry-after", "soon"}}), now).has_value());
}

TEST(PacerTest, ThrottleWithoutRetryAfterBacksOffWithJitterAndGrows) {
  FakeTime time;
  RetryPolicy policy;
  policy.initial_backoff = Duration(100);
  Pacer pacer(policy, time.clock());
  Script script{{Reply(429), Reply(509), Reply(429), Reply(200)}};
  ASSERT_TRUE(pacer.Run(script.attempt()).ok());
  ASSERT_EQ(time.sleeps.size(), 3u);
  // Equal jitter: between half and all of 100, 200, 400 ms.
  for (size_t i = 0; i < 3; ++i) {
    const int64_t full = 100 << i;
    EXPECT_GE(time.sleeps[i].count(), full / 2) << i;
    EXPECT_LE(time.sleeps[i].count(), full) << i;
  }
}

TEST(PacerTest, ServerErrorsStopAfterTheLimitAndMapToIoError) {
  FakeTime time;
  RetryPolicy policy;
  policy.max_attempts = 4;
  Pacer pacer(policy, time.clock());
  Script script{{Reply(500), Reply(502), Reply(504), Reply(500), Reply(200)}};
  auto result = pacer.Run(script.attempt());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, 500);
  EXPECT_EQ(script.calls, 4u);
  EXPECT_EQ(MapGraphError(*result).code(), Code::kIoError);
}

TEST(PacerTest, TransportFailuresAreRetriedThenReported) {
  FakeTime time;
  RetryPolicy policy;
  policy.max_attempts = 3;
  Pacer pacer(policy, time.clock());
  Script script{{Status::Error(Code::kIoError, "reset"), Status::Error(Code::kIoError, "reset"),
                 Status::Error(Code::kIoError, "reset")}};
  auto result = pacer.Run(script.attempt());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kIoError);
  EXPECT_EQ(script.calls, 3u);
}

TEST(PacerTest, EndlessThrottlingEndsInRetryLater) {
  FakeTime time;
  RetryPolicy policy;
  policy.max_throttled_attempts = 3;
  Pacer pacer(policy, time.clock());
  Script script{{Reply(429, "", {{"retry-after", "1"}}), Reply(429, "", {{"retry-after", "1"}}),
                 Reply(429, "", {{"retry-after", "1"}})}};
  auto result = pacer.Run(script.attempt());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(MapGraphError(*result).code(), Code::kRetryLater);
}

TEST(PacerTest, UnauthorizedRenewsTheTokenOnce) {
  FakeTime time;
  Pacer pacer(RetryPolicy{}, time.clock());
  int renewals = 0;
  auto renew = [&] {
    ++renewals;
    return Status::Ok();
  };
  Script once{{Reply(401), Reply(200)}};
  auto result = pacer.Run(once.attempt(), renew);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(renewals, 1);
  Script twice{{Reply(401), Reply(401), Reply(200)}};
  result = pacer.Run(twice.attempt(), renew);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, 401);
  EXPECT_EQ(renewals, 2);
  EXPECT_EQ(twice.calls, 2u);
}

TEST(PacerTest, GraphErrorsMapToDomainCodes) {
  auto error = [](const std::string& code, const std::string& inner = "") {
    std::string body = R"({"error":{"code":")" + code + R"(","message":"m")";
    if (!inner.empty()) body += R"(,"innerError":{"code":")" + inner + R"("})";
    return body + "}}";
  };
  EXPECT_EQ(MapGraphError(Reply(507, error("quotaLimitReached"))).code(), Code::kQuotaExceeded);
  EXPECT_EQ(MapGraphError(Reply(412, error("resourceModified"))).code(), Code::kChangedElsewhere);
  EXPECT_EQ(MapGraphError(Reply(404, error("itemNotFound"))).code(), Code::kNotFound);
  EXPECT_EQ(MapGraphError(Reply(409, error("nameAlreadyExists"))).code(), Code::kAlreadyExists);
  EXPECT_EQ(MapGraphError(Reply(409, error("resourceModified"))).code(), Code::kChangedElsewhere);
  EXPECT_EQ(MapGraphError(Reply(400, error("invalidRequest", "invalidPath"))).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(MapGraphError(Reply(400, error("invalidRequest", "pathIsTooLong"))).code(),
            Code::kNameTooLong);
  EXPECT_EQ(MapGraphError(Reply(429, error("activityLimitReached"))).code(), Code::kRetryLater);
  EXPECT_EQ(MapGraphError(Reply(500, "not json")).code(), Code::kIoError);
  EXPECT_EQ(MapGraphError(Reply(403)).code(), Code::kPermissionDenied);
}

TEST(HttpClientTest, PlainHttpOnlyToLoopback) {
  EXPECT_TRUE(CheckUrlAllowed("https://graph.microsoft.com/v1.0/me/drive").ok());
  EXPECT_TRUE(CheckUrlAllowed("http://127.0.0.1:8080/v1.0").ok());
  EXPECT_EQ(CheckUrlAllowed("http://graph.microsoft.com/v1.0").code(), Code::kInvalidArgument);
  EXPECT_EQ(CheckUrlAllowed("http://127.0.0.1.evil.example/").code(), Code::kInvalidArgument);
  EXPECT_EQ(CheckUrlAllowed("ftp://127.0.0.1/").code(), Code::kInvalidArgument);
  auto http = HttpClient::Create(HttpClientOptions{});
  ASSERT_TRUE(http.ok());
  HttpRequest request;
  request.url = "http://example.com/";
  auto reply = (*http)->Send(request);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cadcanfs::graph
